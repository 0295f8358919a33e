"""The formula language's functions: the whole whitelist, with arity, argument types and result type.

Functions are plain Python over the language's values (``None``, ``bool``, ``Decimal``, ``str``, ``date``,
``datetime``). Most pass ``null`` through (``upper(null)`` is ``null``); ``concat`` and ``text`` read it as "".
``if`` and ``field`` are handled by the evaluator itself (``if`` evaluates one branch only; ``field`` reads a
dotted path of the source record and takes a string literal).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from vrtx_pipelines.mapping.expressions import (
    ANY,
    BOOLEAN,
    DATE,
    DATETIME,
    MAX_STRING_CHARS,
    NUMBER,
    STRING,
    ExpressionError,
    as_text,
    utc_today,
    value_type,
)

# date_format accepts these strftime directives only: enough for any date layout, none that reads the locale
# or the platform's time zone in surprising ways.
_DATE_DIRECTIVES = set("YymdHMSbBaAjIpz%")
_DIRECTIVE = re.compile(r"%(.)")


@dataclass(frozen=True)
class Function:
    min_args: int
    max_args: int | None  # None: any number (bounded by the formula's size)
    # Accepted types per argument position (the last entry repeats); ANY accepts everything.
    arg_types: Sequence[tuple[str, ...]]
    returns: str
    run: Callable[[list[Any], int], Any]

    def accepted(self, index: int) -> tuple[str, ...]:
        if not self.arg_types:
            return (ANY,)
        return self.arg_types[min(index, len(self.arg_types) - 1)]


def _concat(args: list[Any], _position: int) -> str:
    return "".join(as_text(arg) for arg in args)


def _text_case(transform: Callable[[str], str]) -> Callable[[list[Any], int], Any]:
    return lambda args, _position: None if args[0] is None else transform(args[0])


def _round(args: list[Any], position: int) -> Decimal | None:
    if args[0] is None:
        return None
    places = args[1] if len(args) > 1 and args[1] is not None else Decimal(0)
    if places != places.to_integral_value() or not 0 <= places <= 10:
        raise ExpressionError("round() takes 0 to 10 decimal places", position)
    value: Decimal = args[0].quantize(Decimal(1).scaleb(-int(places)), rounding=ROUND_HALF_UP)
    return value


def _coalesce(args: list[Any], _position: int) -> Any:
    return next((arg for arg in args if arg is not None and arg != ""), None)


def _substr(args: list[Any], position: int) -> str | None:
    if args[0] is None:
        return None
    start = _index(args[1], position)
    if len(args) > 2 and args[2] is not None:
        return str(args[0][start : start + _index(args[2], position)])
    return str(args[0][start:])


def _index(value: Any, position: int) -> int:
    if value is None or value != value.to_integral_value() or value < 0 or value > MAX_STRING_CHARS:
        raise ExpressionError(f"positions and lengths are whole numbers from 0 to {MAX_STRING_CHARS}", position)
    return int(value)


def _replace(args: list[Any], position: int) -> str | None:
    if args[0] is None:
        return None
    old, new = as_text(args[1]), as_text(args[2])
    if not old:
        raise ExpressionError("replace() needs a text to look for", position)
    # Checked before building it: replacing every character with a long text is the classic blow-up.
    if len(args[0]) + args[0].count(old) * max(0, len(new) - len(old)) > MAX_STRING_CHARS:
        raise ExpressionError(f"a text would be longer than {MAX_STRING_CHARS} characters", position)
    return str(args[0].replace(old, new))


def _len(args: list[Any], _position: int) -> Decimal:
    return Decimal(len(args[0] or ""))


def _number(args: list[Any], position: int) -> Decimal | None:
    value = args[0]
    if value is None or isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        return Decimal(int(value))
    text = str(value).strip().replace(",", "")
    if not re.fullmatch(r"-?\d{1,30}(\.\d{1,30})?", text):
        raise ExpressionError(f"{str(value)[:40]!r} is not a number", position)
    try:
        return Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover -- the pattern above admits only valid numbers
        raise ExpressionError(f"{text!r} is not a number", position) from exc


def _text(args: list[Any], _position: int) -> str:
    return as_text(args[0])


def _as_date(value: Any, position: int) -> date | datetime:
    if isinstance(value, date):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise ExpressionError(f"{str(value)[:40]!r} is not a date (expected YYYY-MM-DD)", position) from exc


def _date_format(args: list[Any], position: int) -> str | None:
    if args[0] is None:
        return None
    layout = args[1]
    for match in _DIRECTIVE.finditer(layout):
        if match.group(1) not in _DATE_DIRECTIVES:
            raise ExpressionError(f"date_format() does not know %{match.group(1)}", position)
    if layout.count("%") > 50 or len(layout) > 200:
        raise ExpressionError("the date layout is too long", position)
    return _as_date(args[0], position).strftime(layout)


def _date(args: list[Any], position: int) -> date | None:
    if args[0] is None:
        return None
    value = _as_date(args[0], position)
    return value.date() if isinstance(value, datetime) else value


def _today(_args: list[Any], _position: int) -> date:
    return utc_today()


def _abs(args: list[Any], _position: int) -> Decimal | None:
    return None if args[0] is None else abs(args[0])


_TEXT = (STRING,)
_NUM = (NUMBER,)
_WHEN = (DATE, DATETIME, STRING)

FUNCTIONS: dict[str, Function] = {
    "concat": Function(1, 20, [(ANY,)], STRING, _concat),
    "upper": Function(1, 1, [_TEXT], STRING, _text_case(str.upper)),
    "lower": Function(1, 1, [_TEXT], STRING, _text_case(str.lower)),
    "trim": Function(1, 1, [_TEXT], STRING, _text_case(str.strip)),
    "round": Function(1, 2, [_NUM, _NUM], NUMBER, _round),
    "abs": Function(1, 1, [_NUM], NUMBER, _abs),
    "coalesce": Function(1, 20, [(ANY,)], ANY, _coalesce),
    "if": Function(3, 3, [(ANY,)], ANY, lambda args, _p: None),  # evaluated lazily by the evaluator
    "substr": Function(2, 3, [_TEXT, _NUM, _NUM], STRING, _substr),
    "replace": Function(3, 3, [_TEXT, (ANY,), (ANY,)], STRING, _replace),
    "len": Function(1, 1, [_TEXT], NUMBER, _len),
    "number": Function(1, 1, [(STRING, NUMBER, BOOLEAN)], NUMBER, _number),
    "text": Function(1, 1, [(ANY,)], STRING, _text),
    "date_format": Function(2, 2, [_WHEN, _TEXT], STRING, _date_format),
    "date": Function(1, 1, [_WHEN], DATE, _date),
    "today": Function(0, 0, [], DATE, _today),
    "field": Function(1, 1, [_TEXT], ANY, lambda args, _p: None),  # resolved by the evaluator
}


def check_argument(name: str, index: int, value: Any, position: int) -> None:
    """A run-time value of the wrong type for a function argument (``null`` is always accepted)."""
    kind = value_type(value)
    accepted = FUNCTIONS[name].accepted(index)
    if kind in ("null",) or ANY in accepted or kind in accepted:
        return
    raise ExpressionError(f"{name}() takes {' or '.join(accepted)} as argument {index + 1}, not {kind}", position)
