"""The formula language of field mappings: a small, safe expression language with its own parser.

User text is never handed to Python's ``eval``/``exec``/``compile``: a tokenizer and a Pratt parser build a tree of
five node kinds (literal, variable, unary, binary, call of a whitelisted function), so attribute access (``a.b``),
subscripts (``x[0]``), lambdas, comprehensions, keyword arguments and dunder tricks (``__import__('os')``) cannot
even be written. Everything is bounded: source length, node count, nesting depth, evaluation steps, string size and
the size of numbers (``Decimal`` arithmetic in a context that traps overflow; there is no power operator).

Grammar (lowest precedence first)::

    expr     := or
    or       := and ("or" and)*
    and      := not ("and" not)*
    not      := "not" not | compare
    compare  := sum (("==" | "!=" | "<" | "<=" | ">" | ">=") sum)?
    sum      := product (("+" | "-") product)*
    product  := unary (("*" | "/" | "%") unary)*
    unary    := "-" unary | primary
    primary  := NUMBER | STRING | "true" | "false" | "null" | NAME | NAME "(" args? ")" | "(" expr ")"

Strings use double or single quotes with ``\\"``, ``\\'``, ``\\\\``, ``\\n`` and ``\\t`` escapes. ``+`` is numeric
only: strings are joined with ``concat``. Every error carries the 0-based character position it is about.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

MAX_SOURCE_CHARS = 1_000
MAX_NODES = 200
MAX_DEPTH = 32
MAX_STEPS = 5_000
MAX_STRING_CHARS = 10_000
# Numbers: 34 significant digits, and no value beyond 10**30: a formula cannot grow a number without bound.
NUMBER_CONTEXT = decimal.Context(
    prec=34,
    Emax=30,
    Emin=-30,
    traps=[decimal.Overflow, decimal.DivisionByZero, decimal.InvalidOperation],
)

# Value types the checker reasons about; "any" is a value whose type is only known when it runs.
STRING, NUMBER, BOOLEAN, DATE, DATETIME, NULL, ANY = "string", "number", "boolean", "date", "datetime", "null", "any"


class ExpressionError(ValueError):
    """A formula that cannot be parsed, checked or evaluated; ``position`` is the 0-based character offset."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} (at character {position})")
        self.message = message
        self.position = position


# --- tokens ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: str  # number | string | name | op | end
    text: str
    position: int
    value: Any = None


_OPERATORS = ("==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "/", "%", "(", ")", ",")
_KEYWORDS = {"and", "or", "not", "true", "false", "null"}
_FORBIDDEN = {
    ".": "attribute access is not allowed",
    "[": "indexing is not allowed",
    "]": "indexing is not allowed",
    "{": "braces are not allowed",
    "}": "braces are not allowed",
    ":": "':' is not allowed (no lambdas or slices)",
    "=": "'=' is not an operator here: compare with '=='",
    "`": "backticks are not allowed",
}
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "n": "\n", "t": "\t"}


def tokenize(source: str) -> list[Token]:
    if len(source) > MAX_SOURCE_CHARS:
        raise ExpressionError(f"the formula is longer than {MAX_SOURCE_CHARS} characters", MAX_SOURCE_CHARS)
    tokens: list[Token] = []
    i = 0
    while i < len(source):
        char = source[i]
        if char.isspace():
            i += 1
        elif char.isdigit():
            start = i
            while i < len(source) and source[i].isdigit():
                i += 1
            if i < len(source) - 1 and source[i] == "." and source[i + 1].isdigit():
                i += 1
                while i < len(source) and source[i].isdigit():
                    i += 1
            if i < len(source) and (source[i].isalpha() or source[i] == "_"):
                raise ExpressionError(f"unexpected {source[i]!r} after a number", i)
            tokens.append(Token("number", source[start:i], start, Decimal(source[start:i])))
        elif char in "\"'":
            text, end = _string(source, i)
            tokens.append(Token("string", source[i:end], i, text))
            i = end
        elif char.isalpha() or char == "_":
            start = i
            while i < len(source) and (source[i].isalnum() or source[i] == "_"):
                i += 1
            tokens.append(Token("name", source[start:i], start))
        else:
            operator = next((op for op in _OPERATORS if source.startswith(op, i)), None)
            if operator is None:
                if source.startswith("**", i):
                    raise ExpressionError("there is no power operator", i)
                raise ExpressionError(_FORBIDDEN.get(char, f"unexpected character {char!r}"), i)
            if operator == "*" and source.startswith("**", i):
                raise ExpressionError("there is no power operator", i)
            tokens.append(Token("op", operator, i))
            i += len(operator)
    tokens.append(Token("end", "", len(source)))
    return tokens


def _string(source: str, start: int) -> tuple[str, int]:
    quote = source[start]
    parts: list[str] = []
    i = start + 1
    while i < len(source):
        char = source[i]
        if char == quote:
            return "".join(parts), i + 1
        if char == "\\":
            if i + 1 >= len(source) or source[i + 1] not in _ESCAPES:
                raise ExpressionError("unknown escape in a string", i)
            parts.append(_ESCAPES[source[i + 1]])
            i += 2
            continue
        parts.append(char)
        i += 1
    raise ExpressionError("the string is never closed", start)


# --- the tree ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    position: int


@dataclass(frozen=True)
class Literal(Node):
    value: Any


@dataclass(frozen=True)
class Variable(Node):
    name: str


@dataclass(frozen=True)
class Unary(Node):
    operator: str  # "-" | "not"
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    operator: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Call(Node):
    name: str
    args: tuple[Node, ...]


_BINARY_PRECEDENCE = {
    "or": 1,
    "and": 2,
    "==": 4,
    "!=": 4,
    "<": 4,
    "<=": 4,
    ">": 4,
    ">=": 4,
    "+": 5,
    "-": 5,
    "*": 6,
    "/": 6,
    "%": 6,
}
_NOT_PRECEDENCE = 3
_COMPARISONS = {"==", "!=", "<", "<=", ">", ">="}


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.index = 0
        self.nodes = 0

    def peek(self) -> Token:
        return self.tokens[self.index]

    def take(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def expect(self, text: str) -> Token:
        token = self.take()
        if token.text != text or token.kind not in ("op",):
            found = "the end of the formula" if token.kind == "end" else repr(token.text)
            raise ExpressionError(f"expected {text!r}, found {found}", token.position)
        return token

    def count(self, node: Node) -> Node:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ExpressionError(f"the formula has more than {MAX_NODES} parts", node.position)
        return node

    def expression(self, min_precedence: int = 0, depth: int = 0) -> Node:
        if depth > MAX_DEPTH:
            raise ExpressionError(f"the formula nests deeper than {MAX_DEPTH} levels", self.peek().position)
        left = self.prefix(depth)
        while True:
            token = self.peek()
            operator = token.text if token.kind in ("op", "name") else ""
            precedence = _BINARY_PRECEDENCE.get(operator)
            if precedence is None or precedence <= min_precedence:
                return left
            self.take()
            right = self.expression(precedence, depth + 1)
            if operator in _COMPARISONS and self.peek().text in _COMPARISONS and self.peek().kind == "op":
                raise ExpressionError("comparisons cannot be chained: use 'and'", self.peek().position)
            left = self.count(Binary(token.position, operator, left, right))

    def prefix(self, depth: int) -> Node:
        token = self.take()
        if token.kind == "number":
            return self.count(Literal(token.position, token.value))
        if token.kind == "string":
            return self.count(Literal(token.position, token.value))
        if token.kind == "op" and token.text == "-":
            return self.count(Unary(token.position, "-", self.expression(6, depth + 1)))
        if token.kind == "op" and token.text == "(":
            inner = self.expression(0, depth + 1)
            self.expect(")")
            return inner
        if token.kind == "name":
            return self.name(token, depth)
        found = "the end of the formula" if token.kind == "end" else repr(token.text)
        raise ExpressionError(f"expected a value, found {found}", token.position)

    def name(self, token: Token, depth: int) -> Node:
        word = token.text
        if word == "not":
            return self.count(Unary(token.position, "not", self.expression(_NOT_PRECEDENCE, depth + 1)))
        if word in ("true", "false"):
            return self.count(Literal(token.position, word == "true"))
        if word == "null":
            return self.count(Literal(token.position, None))
        if word in ("and", "or"):
            raise ExpressionError(f"expected a value, found {word!r}", token.position)
        if word == "lambda":
            raise ExpressionError("lambdas are not allowed", token.position)
        if self.peek().kind == "op" and self.peek().text == "(":
            self.take()
            args: list[Node] = []
            if not (self.peek().kind == "op" and self.peek().text == ")"):
                while True:
                    if self.peek().kind == "name" and self.tokens[self.index + 1].text == "=":
                        raise ExpressionError("keyword arguments are not allowed", self.peek().position)
                    args.append(self.expression(0, depth + 1))
                    if self.peek().kind == "op" and self.peek().text == ",":
                        self.take()
                        continue
                    break
            self.expect(")")
            return self.count(Call(token.position, word, tuple(args)))
        return self.count(Variable(token.position, word))


def parse(source: str) -> Node:
    """The formula's tree; raises ``ExpressionError`` with the position of the first problem."""
    if not source.strip():
        raise ExpressionError("the formula is empty", 0)
    parser = _Parser(tokenize(source))
    node = parser.expression()
    trailing = parser.peek()
    if trailing.kind != "end":
        raise ExpressionError(f"unexpected {trailing.text!r}", trailing.position)
    return node


# --- runtime values ----------------------------------------------------------------------------------------


def value_type(value: Any) -> str:
    if value is None:
        return NULL
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, Decimal | int | float):
        return NUMBER
    if isinstance(value, str):
        return STRING
    if isinstance(value, datetime):
        return DATETIME
    if isinstance(value, date):
        return DATE
    return ANY


def to_value(value: Any) -> Any:
    """A record's value as the language sees it: numbers become ``Decimal`` (floats through their text)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(str(value))
    return value


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        text = format(value, "f")
        return text
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def truthy(value: Any) -> bool:
    return value not in (None, False, "") and not (isinstance(value, Decimal) and value == 0)


def checked_string(text: str, position: int) -> str:
    if len(text) > MAX_STRING_CHARS:
        raise ExpressionError(f"a text would be longer than {MAX_STRING_CHARS} characters", position)
    return text


def utc_today() -> date:
    return datetime.now(UTC).date()


Resolver = Callable[[str], Any]


@dataclass(frozen=True)
class Scope:
    """What a formula can read: its variables, and ``field("Dotted.Path")`` lookups in the source record."""

    variables: Mapping[str, Any]
    lookup: Resolver
