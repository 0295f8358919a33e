"""Xero's ``where``/``order`` query language and ``If-Modified-Since``, as far as the sandbox serves them.

``where`` is the .NET Dynamic-LINQ-like filter of the Accounting API (https://developer.xero.com/documentation/api/
accounting/requests-and-responses#retrieving-a-filtered-set-of-results): comparisons (``== != <> > >= < <=``) of a
field path with a literal (``"text"``, numbers, ``true``/``false``, ``null``, ``DateTime(2024,01,01[,h,m,s])``,
``DateTime.Parse("2024-01-01T00:00:00")``, ``Guid("...")``), ``AND``/``&&``, ``OR``/``||``, ``NOT``/``!``,
parentheses and the string methods ``Contains``/``StartsWith``/``EndsWith``/``ToString``/``ToLower``/``ToUpper``.
A malformed filter is Xero's ``400 {"ErrorNumber": 16, "Type": "QueryParseException", "Message": ...}`` (as seen
in XeroAPI/xero-php-oauth2#307 and freakboy3742/pyxero#272/#217).

Top-level ``UpdatedDateUTC`` bounds are lifted out as a millisecond range the store answers by index arithmetic;
whatever else remains is evaluated per record.
"""

from __future__ import annotations

import email.utils
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from providers.xero.sandbox_catalog import QUERY_FIELDS

Record = dict[str, Any]
Predicate = Callable[[Record], bool]
_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"]|"")*")|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>==|!=|<>|>=|<=|&&|\|\||[=<>!(),.])'
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*))"
)
_CMP = {"==", "=", "!=", "<>", ">", ">=", "<", "<="}


class QueryParseError(ValueError):
    """Xero's QueryParseException: the message is what Xero puts in ``Message``."""


@dataclass(frozen=True)
class Filter:
    """A parsed ``where``: the UpdatedDateUTC range [lo_ms, hi_ms] (inclusive, None = open) and the rest."""

    lo_ms: int | None
    hi_ms: int | None
    predicate: Predicate | None


def ms_of(moment: datetime) -> int:
    """Milliseconds since the epoch, rounded down (a record at exactly the cut-off is not *after* it)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    delta = aware - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def parse_if_modified_since(value: str | None) -> int | None:
    """``If-Modified-Since`` as ms: ISO 8601 as Xero documents (``2020-02-06T12:17:43.202-08:00``, naive = UTC)
    or an RFC 1123 HTTP-date. An unreadable value is ignored, as RFC 9110 section 13.1.3 asks."""
    if not value or not value.strip():
        return None
    text = value.strip()
    iso = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00").replace("z", "+00:00"))
    try:
        return ms_of(datetime.fromisoformat(iso))
    except ValueError:
        pass
    try:
        return ms_of(email.utils.parsedate_to_datetime(text))
    except (TypeError, ValueError, IndexError):
        return None


def parse_where(entity: str, text: str | None) -> Filter:
    if text is None or not text.strip():
        return Filter(None, None, None)
    node = _Parser(entity, text).parse()
    lo: int | None = None
    hi: int | None = None
    rest: list[_Node] = []
    for conjunct in _conjuncts(node):
        bound = _date_bound(conjunct)
        if bound is None:
            rest.append(conjunct)
            continue
        op, ms = bound
        if op in (">", ">="):
            lo = max(lo if lo is not None else ms, ms + (op == ">"))
        elif op in ("<", "<="):
            hi = min(hi if hi is not None else ms, ms - (op == "<"))
        else:  # ==
            lo, hi = max(lo if lo is not None else ms, ms), min(hi if hi is not None else ms, ms)
    if not rest:
        return Filter(lo, hi, None)
    return Filter(lo, hi, lambda record: all(_truthy(node.value(record)) for node in rest))


def parse_order(entity: str, text: str | None) -> list[tuple[str, bool]]:
    """``order`` as [(field, descending)]: ``UpdatedDateUTC DESC``, ``Name ASC, Date``..."""
    if text is None or not text.strip():
        return []
    type_name, fields = QUERY_FIELDS[entity]
    canonical = {name.lower(): name for name in fields}
    keys = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].upper() not in ("ASC", "DESC")):
            raise QueryParseError("Syntax error in order by clause")
        field = canonical.get(words[0].lower())
        if field is None:
            raise QueryParseError(f"No property or field '{words[0]}' exists in type '{type_name}'")
        keys.append((field, len(words) == 2 and words[1].upper() == "DESC"))
    return keys


def sort_value(value: Any) -> tuple[int, Any]:
    """A total order across Xero field values (None first, MS-JSON dates by instant, text case-insensitive)."""
    value = _plain(value)
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, int | float):
        return (2, value)
    if isinstance(value, datetime):
        return (3, value)
    return (4, str(value).casefold())


# --- evaluation -------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, str):
        match = _MS_DATE.match(value)
        if match:
            return datetime.fromtimestamp(int(match.group(1)) / 1000, UTC)
    return value


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int | float):
        return "Decimal"
    if isinstance(value, datetime):
        return "DateTime"
    return "String"


def _truthy(value: Any) -> bool:
    if not isinstance(value, bool):
        raise QueryParseError("Expression of type 'Boolean' expected")
    return value


def _compare(op: str, left: Any, right: Any) -> bool:
    if left is None or right is None:
        if op in ("==", "="):
            return left is right
        if op in ("!=", "<>"):
            return left is not right
        return False
    if _kind(left) != _kind(right):
        raise QueryParseError(f"Operator '{op}' incompatible with operand types '{_kind(left)}' and '{_kind(right)}'")
    if isinstance(left, str):  # Xero's text comparisons ignore case (SQL collation)
        left, right = left.casefold(), right.casefold()
    if op in ("==", "="):
        return bool(left == right)
    if op in ("!=", "<>"):
        return bool(left != right)
    return bool({">": left > right, ">=": left >= right, "<": left < right, "<=": left <= right}[op])


class _Node:
    def value(self, record: Record) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class _Literal(_Node):
    literal: Any

    def value(self, record: Record) -> Any:
        return self.literal


@dataclass(frozen=True)
class _Field(_Node):
    path: tuple[str, ...]
    methods: tuple[tuple[str, tuple[Any, ...]], ...]

    def value(self, record: Record) -> Any:
        current: Any = record
        for name in self.path:
            current = current.get(name) if isinstance(current, dict) else None
        current = _plain(current)
        for method, args in self.methods:
            current = _call(method, current, args)
        return current


@dataclass(frozen=True)
class _Compare(_Node):
    op: str
    left: _Node
    right: _Node

    def value(self, record: Record) -> Any:
        return _compare(self.op, self.left.value(record), self.right.value(record))


@dataclass(frozen=True)
class _Logic(_Node):
    op: str  # "and" | "or" | "not"
    parts: tuple[_Node, ...]

    def value(self, record: Record) -> Any:
        if self.op == "not":
            return not _truthy(self.parts[0].value(record))
        if self.op == "and":
            return all(_truthy(part.value(record)) for part in self.parts)
        return any(_truthy(part.value(record)) for part in self.parts)


def _call(method: str, value: Any, args: tuple[Any, ...]) -> Any:
    name = method.lower()
    if name == "tostring":
        return None if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    if value is None:
        return None
    text = str(value)
    if name in ("tolower", "toupper"):
        return text.lower() if name == "tolower" else text.upper()
    if name in ("contains", "startswith", "endswith") and len(args) == 1 and isinstance(args[0], str):
        needle, hay = args[0].casefold(), text.casefold()
        return (
            needle in hay
            if name == "contains"
            else hay.startswith(needle)
            if name == "startswith"
            else hay.endswith(needle)
        )
    raise QueryParseError(f"No applicable method '{method}' exists in type 'String'")


def _conjuncts(node: _Node) -> list[_Node]:
    if isinstance(node, _Logic) and node.op == "and":
        return [part for sub in node.parts for part in _conjuncts(sub)]
    return [node]


def _date_bound(node: _Node) -> tuple[str, int] | None:
    if not isinstance(node, _Compare) or node.op in ("!=", "<>"):
        return None
    flipped = {">": "<", ">=": "<=", "<": ">", "<=": ">=", "==": "==", "=": "=="}
    left, right, op = node.left, node.right, node.op
    if isinstance(left, _Literal):
        left, right, op = right, left, flipped[op]
    if (
        isinstance(left, _Field)
        and left.path == ("UpdatedDateUTC",)
        and not left.methods
        and isinstance(right, _Literal)
        and isinstance(right.literal, datetime)
    ):
        return ("==" if op == "=" else op), ms_of(right.literal)
    return None


class _Parser:
    def __init__(self, entity: str, text: str) -> None:
        self.type_name, fields = QUERY_FIELDS[entity]
        self.fields = {name.lower(): name for name in fields}
        self.tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(text):
            if not text[position:].strip():
                break
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                raise QueryParseError(f"Syntax error '{text[position:].strip()[:1]}'")
            kind = match.lastgroup or "op"
            self.tokens.append((kind, match.group(kind)))
            position = match.end()
        self.at = 0

    def parse(self) -> _Node:
        node = self._or()
        if self.at != len(self.tokens):
            raise QueryParseError("Syntax error")
        return node

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def _take(self, value: str | None = None) -> tuple[str, str]:
        token = self._peek()
        if token is None or (value is not None and token[1] != value):
            raise QueryParseError(f"'{value}' expected" if value else "Expression expected")
        self.at += 1
        return token

    def _word(self, *words: str) -> bool:
        token = self._peek()
        if token is not None and (token[1] in words or (token[0] == "name" and token[1].upper() in words)):
            self.at += 1
            return True
        return False

    def _or(self) -> _Node:
        parts = [self._and()]
        while self._word("||", "OR"):
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else _Logic("or", tuple(parts))

    def _and(self) -> _Node:
        parts = [self._not()]
        while self._word("&&", "AND"):
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else _Logic("and", tuple(parts))

    def _not(self) -> _Node:
        if self._word("!", "NOT"):
            return _Logic("not", (self._not(),))
        left = self._operand()
        token = self._peek()
        if token is not None and token[0] == "op" and token[1] in _CMP:
            self.at += 1
            return _Compare(token[1], left, self._operand())
        return left

    def _operand(self) -> _Node:
        kind, text = self._take()
        if text == "(" and kind == "op":
            node = self._or()
            self._take(")")
            return node
        if kind == "str":
            return _Literal(text[1:-1].replace('""', '"'))
        if kind == "num":
            return _Literal(float(text))
        if kind != "name":
            raise QueryParseError("Expression expected")
        lowered = text.lower()
        if lowered in ("true", "false"):
            return _Literal(lowered == "true")
        if lowered == "null":
            return _Literal(None)
        if lowered == "datetime":
            return _Literal(self._datetime())
        if lowered == "guid":
            return _Literal(self._guid())
        return self._field(text)

    def _args(self) -> list[Any]:
        self._take("(")
        args: list[Any] = []
        while self._peek() is not None and self._peek() != ("op", ")"):
            kind, text = self._take()
            if kind == "str":
                args.append(text[1:-1].replace('""', '"'))
            elif kind == "num":
                args.append(float(text))
            elif text != ",":
                raise QueryParseError("Expression expected")
        self._take(")")
        return args

    def _datetime(self) -> datetime:
        if self._peek() == ("op", "."):
            self.at += 1
            if self._take()[1].lower() != "parse":
                raise QueryParseError("No applicable method exists in type 'DateTime'")
            args = self._args()
            try:
                parsed = datetime.fromisoformat(str(args[0]).replace("Z", "+00:00"))
            except (ValueError, IndexError) as exc:
                raise QueryParseError("String was not recognized as a valid DateTime.") from exc
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        numbers = self._args()
        if not 3 <= len(numbers) <= 6 or not all(isinstance(n, float) and n.is_integer() for n in numbers):
            raise QueryParseError("No applicable constructor exists in type 'DateTime'")
        try:
            parts = [int(n) for n in numbers] + [0] * (6 - len(numbers))
            return datetime(parts[0], parts[1], parts[2], parts[3], parts[4], parts[5], tzinfo=UTC)
        except ValueError as exc:
            raise QueryParseError("Year, Month, and Day parameters describe an un-representable DateTime.") from exc

    def _guid(self) -> str:
        args = self._args()
        try:
            return str(uuid.UUID(str(args[0])))
        except (ValueError, IndexError) as exc:
            raise QueryParseError(
                "Guid should contain 32 digits with 4 dashes (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)."
            ) from exc

    def _field(self, first: str) -> _Field:
        name = self.fields.get(first.lower())
        if name is None:
            raise QueryParseError(f"No property or field '{first}' exists in type '{self.type_name}'")
        path = [name]
        methods: list[tuple[str, tuple[Any, ...]]] = []
        while self._peek() == ("op", "."):
            self.at += 1
            _, member = self._take()
            if self._peek() == ("op", "("):
                methods.append((member, tuple(self._args())))
            elif methods:
                raise QueryParseError(f"No property or field '{member}' exists in type 'String'")
            else:
                path.append(member)
        return _Field(tuple(path), tuple(methods))
