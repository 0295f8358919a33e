"""Filter and order expressions of list endpoints (Xero's ``where``, OData's ``$filter``, QuickBooks' ``WHERE``):
a ``Dialect`` says how the provider spells them, the parser turns text into nodes evaluated per record, and the
bounds on the change-time field are lifted out so the store answers them by index arithmetic.

Grammar: ``or := and (OR and)*``, ``and := not (AND not)*``, ``not := NOT not | operand [comparison operand]``,
``operand := ( or ) | string | number | keyword | constructor(...) | field(.member)*(.Method(args))*``. A dialect
names the words and symbols of each (``&&``/``AND``, ``==``/``eq``...), the keyword literals, the constructors
(``DateTime(2024,1,1)``), the string syntax, the methods (``.StartsWith("x")``), how a record's value is decoded
before it is compared (date strings), and every error message, so a bad filter is answered in the provider's words.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from providers.sandbox_kit.clock import ms_of

Record = dict[str, Any]
Predicate = Callable[[Record], bool]


class FilterError(ValueError):
    """A filter the provider would refuse: the message is what the provider says."""


@dataclass(frozen=True)
class Messages:
    """What the provider answers; ``{name}``, ``{type}``, ``{char}``, ``{token}``, ``{op}``, ``{left}``, ``{right}``
    are filled in. ``kinds`` names value kinds (boolean, number, datetime, text) in ``incompatible``."""

    unknown_field: str = "unknown field '{name}'"
    unknown_member: str = "unknown field '{name}'"
    bad_character: str = "unexpected '{char}'"
    trailing: str = "syntax error"
    expected: str = "'{token}' expected"
    expression_expected: str = "expression expected"
    incompatible: str = "'{op}' cannot compare {left} with {right}"
    boolean_expected: str = "a condition was expected"
    order_syntax: str = "syntax error in order"
    kinds: Mapping[str, str] = field(
        default_factory=lambda: {"boolean": "boolean", "number": "number", "datetime": "date-time", "text": "text"}
    )


Constructor = Callable[["Parser"], Any]  # parses its own arguments (the name is taken), returns the literal
Method = Callable[[str, Any, tuple[Any, ...]], Any]  # (method name as written, value, arguments) -> result


@dataclass(frozen=True)
class Dialect:
    type_name: str  # what errors call the record type ("Invoice")
    fields: frozenset[str]  # top-level field names (matched without case)
    comparisons: Mapping[str, str] = field(
        default_factory=lambda: {
            "==": "==",
            "=": "==",
            "!=": "!=",
            "<>": "!=",
            ">": ">",
            ">=": ">=",
            "<": "<",
            "<=": "<=",
        }
    )
    and_words: tuple[str, ...] = ("&&", "AND")
    or_words: tuple[str, ...] = ("||", "OR")
    not_words: tuple[str, ...] = ("!", "NOT")
    keywords: Mapping[str, Any] = field(default_factory=lambda: {"true": True, "false": False, "null": None})
    constructors: Mapping[str, Constructor] = field(default_factory=dict)  # lower-case name -> constructor
    string: str = r'"(?:[^"]|"")*"'  # a string literal's pattern, and how it reads:
    unquote: Callable[[str], str] = lambda text: text[1:-1].replace('""', '"')
    method: Method | None = None  # None: fields take no methods
    plain: Callable[[Any], Any] = lambda value: value  # a record's value as compared (decode date strings here)
    literal: Callable[[str], Any] = lambda text: text  # a string literal's value (QuickBooks: '2024-06-01T...' times)
    in_word: str | None = None  # ``field IN (a, b)`` (QuickBooks), matched without case
    like_word: str | None = None  # ``field LIKE '%text%'`` (QuickBooks: ``%`` is any run of characters)
    fold_case: bool = True  # text compares without case
    messages: Messages = field(default_factory=Messages)

    def fail(self, template: str, **values: str) -> FilterError:
        return FilterError(template.format(type=self.type_name, **values))


@dataclass(frozen=True)
class Filter:
    """A parsed filter: the change-time range [lo_ms, hi_ms] (inclusive, None = open) and the rest, if any."""

    lo_ms: int | None
    hi_ms: int | None
    predicate: Predicate | None


def parse_filter(dialect: Dialect, text: str | None, change_field: str | None = None) -> Filter:
    """``text`` as a filter; top-level bounds (ANDed) on ``change_field`` against date-times become the range."""
    if text is None or not text.strip():
        return Filter(None, None, None)
    node = Parser(dialect, text).parse()
    lo: int | None = None
    hi: int | None = None
    rest: list[Node] = []
    change_path = tuple(change_field.split(".")) if change_field else None
    for conjunct in _conjuncts(node):
        bound = _bound(conjunct, change_path)
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
    return Filter(lo, hi, lambda record: all(_truthy(dialect, node.value(record)) for node in rest))


def parse_order(dialect: Dialect, text: str | None) -> list[tuple[str, bool]]:
    """``Name ASC, Date DESC`` as [(field, descending)], fields in their canonical spelling."""
    if text is None or not text.strip():
        return []
    canonical = {name.lower(): name for name in dialect.fields}
    keys = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].upper() not in ("ASC", "DESC")):
            raise dialect.fail(dialect.messages.order_syntax)
        name = canonical.get(words[0].lower())
        if name is None:
            raise dialect.fail(dialect.messages.unknown_field, name=words[0])
        keys.append((name, len(words) == 2 and words[1].upper() == "DESC"))
    return keys


# --- nodes --------------------------------------------------------------------------------------------------


class Node:
    def value(self, record: Record) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Literal(Node):
    literal: Any

    def value(self, record: Record) -> Any:
        return self.literal


@dataclass(frozen=True)
class Field(Node):
    dialect: Dialect
    path: tuple[str, ...]
    methods: tuple[tuple[str, tuple[Any, ...]], ...]

    def value(self, record: Record) -> Any:
        current: Any = record
        for name in self.path:
            current = current.get(name) if isinstance(current, dict) else None
        current = self.dialect.plain(current)
        for method, args in self.methods:
            assert self.dialect.method is not None
            current = self.dialect.method(method, current, args)
        return current


@dataclass(frozen=True)
class Compare(Node):
    dialect: Dialect
    op: str  # as written, for messages
    left: Node
    right: Node

    def value(self, record: Record) -> Any:
        return _compare(self.dialect, self.op, self.left.value(record), self.right.value(record))


@dataclass(frozen=True)
class Logic(Node):
    dialect: Dialect
    op: str  # "and" | "or" | "not"
    parts: tuple[Node, ...]

    def value(self, record: Record) -> Any:
        if self.op == "not":
            return not _truthy(self.dialect, self.parts[0].value(record))
        if self.op == "and":
            return all(_truthy(self.dialect, part.value(record)) for part in self.parts)
        return any(_truthy(self.dialect, part.value(record)) for part in self.parts)


def kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, datetime):
        return "datetime"
    return "text"


def _truthy(dialect: Dialect, value: Any) -> bool:
    if not isinstance(value, bool):
        raise dialect.fail(dialect.messages.boolean_expected)
    return value


def _compare(dialect: Dialect, op: str, left: Any, right: Any) -> bool:
    canonical = dialect.comparisons.get(op, op.lower())
    if canonical == "like":
        if not isinstance(left, str) or not isinstance(right, str):
            return False
        return _like(right, dialect.fold_case).match(left) is not None
    if left is None or right is None:
        if canonical == "==":
            return left is right
        if canonical == "!=":
            return left is not right
        return False
    if kind(left) != kind(right):
        kinds = dialect.messages.kinds
        raise dialect.fail(dialect.messages.incompatible, op=op, left=kinds[kind(left)], right=kinds[kind(right)])
    if isinstance(left, str) and dialect.fold_case:
        left, right = left.casefold(), right.casefold()
    if canonical == "==":
        return bool(left == right)
    if canonical == "!=":
        return bool(left != right)
    return bool({">": left > right, ">=": left >= right, "<": left < right, "<=": left <= right}[canonical])


def _like(pattern: str, fold: bool) -> re.Pattern[str]:
    parts = (re.escape(part) for part in pattern.split("%"))
    return re.compile(".*".join(parts) + r"\Z", (re.IGNORECASE | re.DOTALL) if fold else re.DOTALL)


@dataclass(frozen=True)
class In(Node):
    dialect: Dialect
    left: Node
    choices: tuple[Node, ...]

    def value(self, record: Record) -> Any:
        value = self.left.value(record)
        return any(_compare(self.dialect, "==", value, choice.value(record)) for choice in self.choices)


def _conjuncts(node: Node) -> list[Node]:
    if isinstance(node, Logic) and node.op == "and":
        return [part for sub in node.parts for part in _conjuncts(sub)]
    return [node]


def _bound(node: Node, change_path: tuple[str, ...] | None) -> tuple[str, int] | None:
    if change_path is None or not isinstance(node, Compare):
        return None
    op = node.dialect.comparisons.get(node.op, "like")
    if op in ("!=", "like"):
        return None
    left, right = node.left, node.right
    if isinstance(left, Literal):
        left, right, op = right, left, {">": "<", ">=": "<=", "<": ">", "<=": ">=", "==": "=="}[op]
    if (
        isinstance(left, Field)
        and left.path == change_path
        and not left.methods
        and isinstance(right, Literal)
        and isinstance(right.literal, datetime)
    ):
        return op, ms_of(right.literal)
    return None


# --- the parser ---------------------------------------------------------------------------------------------


class Parser:
    """Recursive descent over the dialect's tokens; constructors use ``peek``, ``take`` and ``arguments``."""

    def __init__(self, dialect: Dialect, text: str) -> None:
        self.dialect = dialect
        self.messages = dialect.messages
        self._fields = {name.lower(): name for name in dialect.fields}
        symbols = {*dialect.comparisons, *dialect.and_words, *dialect.or_words, *dialect.not_words, "(", ")", ",", "."}
        ops = "|".join(re.escape(s) for s in sorted((s for s in symbols if not s.isalpha()), key=len, reverse=True))
        pattern = re.compile(
            rf"\s*(?:(?P<str>{dialect.string})|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>{ops})|(?P<name>[A-Za-z_][A-Za-z0-9_]*))"
        )
        self.tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(text):
            if not text[position:].strip():
                break
            match = pattern.match(text, position)
            if match is None or match.end() == position:
                raise dialect.fail(self.messages.bad_character, char=text[position:].strip()[:1])
            category = match.lastgroup or "op"
            self.tokens.append((category, match.group(category)))
            position = match.end()
        self.at = 0

    def parse(self) -> Node:
        node = self._or()
        if self.at != len(self.tokens):
            raise self.dialect.fail(self.messages.trailing)
        return node

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            if value is not None:
                raise self.dialect.fail(self.messages.expected, token=value)
            raise self.dialect.fail(self.messages.expression_expected)
        self.at += 1
        return token

    def arguments(self) -> list[Any]:
        """``(literal, literal, ...)``: strings read by the dialect, numbers as floats."""
        self.take("(")
        args: list[Any] = []
        while self.peek() is not None and self.peek() != ("op", ")"):
            category, text = self.take()
            if category == "str":
                args.append(self.dialect.unquote(text))
            elif category == "num":
                args.append(float(text))
            elif text != ",":
                raise self.dialect.fail(self.messages.expression_expected)
        self.take(")")
        return args

    def _word(self, words: tuple[str, ...]) -> bool:
        token = self.peek()
        if token is not None and (token[1] in words or (token[0] == "name" and token[1].upper() in words)):
            self.at += 1
            return True
        return False

    def _or(self) -> Node:
        parts = [self._and()]
        while self._word(self.dialect.or_words):
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else Logic(self.dialect, "or", tuple(parts))

    def _and(self) -> Node:
        parts = [self._not()]
        while self._word(self.dialect.and_words):
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else Logic(self.dialect, "and", tuple(parts))

    def _not(self) -> Node:
        if self._word(self.dialect.not_words):
            return Logic(self.dialect, "not", (self._not(),))
        left = self._operand()
        token = self.peek()
        if token is not None and token[1] in self.dialect.comparisons and (token[0] == "op" or token[1].isalpha()):
            self.at += 1
            return Compare(self.dialect, token[1], left, self._operand())
        word = token[1].upper() if token is not None and token[0] == "name" else None
        if word is not None and word == (self.dialect.like_word or "").upper():
            self.at += 1
            return Compare(self.dialect, "LIKE", left, self._operand())
        if word is not None and word == (self.dialect.in_word or "").upper():
            self.at += 1
            self.take("(")
            choices = [self._operand()]
            while self.peek() == ("op", ","):
                self.at += 1
                choices.append(self._operand())
            self.take(")")
            return In(self.dialect, left, tuple(choices))
        return left

    def _operand(self) -> Node:
        category, text = self.take()
        if text == "(" and category == "op":
            node = self._or()
            self.take(")")
            return node
        if category == "str":
            return Literal(self.dialect.literal(self.dialect.unquote(text)))
        if category == "num":
            return Literal(float(text))
        if category != "name":
            raise self.dialect.fail(self.messages.expression_expected)
        lowered = text.lower()
        if lowered in self.dialect.keywords:
            return Literal(self.dialect.keywords[lowered])
        if lowered in self.dialect.constructors:
            return Literal(self.dialect.constructors[lowered](self))
        return self._field(text)

    def _field(self, first: str) -> Field:
        name = self._fields.get(first.lower())
        if name is None:
            raise self.dialect.fail(self.messages.unknown_field, name=first)
        path = [name]
        methods: list[tuple[str, tuple[Any, ...]]] = []
        while self.peek() == ("op", "."):
            self.at += 1
            _, member = self.take()
            if self.peek() == ("op", "(") and self.dialect.method is not None:
                methods.append((member, tuple(self.arguments())))
            elif methods:
                raise self.dialect.fail(self.messages.unknown_member, name=member)
            else:
                path.append(member)
        return Field(self.dialect, tuple(path), tuple(methods))
