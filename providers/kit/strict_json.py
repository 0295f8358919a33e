"""JSON from outside (webhook bodies, API request bodies) parsed within limits, so a body cannot exhaust the parser
or carry what the rest of the platform cannot store.

Refused, each with ``JSONRefused`` (a ``ValueError``) and a reason: more than ``max_bytes``; a byte-order mark or
anything but UTF-8 (RFC 8259 section 8.1); nesting deeper than ``max_depth`` (checked before parsing: the standard
parser recurses, and 5,000 levels end in a RecursionError); ``NaN``, ``Infinity`` and numbers that overflow to
them; ``\\u0000`` and lone UTF-16 surrogates in strings, which PostgreSQL's ``jsonb`` and UTF-8 cannot hold.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 64

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
# An escape (after an even run of backslashes) of NUL or of a UTF-16 surrogate; valid high-low pairs are taken out
# before looking, so any surrogate found is a lone one.
_UNSTORABLE = re.compile(r"(?<!\\)(?:\\\\)*\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")
_SURROGATE_PAIR = re.compile(r"(?<!\\)((?:\\\\)*)\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}")


class JSONRefused(ValueError):
    """A body this parser will not accept; ``reason`` is a short phrase for the error message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _depth_exceeds(text: str, max_depth: int) -> bool:
    if text.count("{") + text.count("[") <= max_depth:
        return False  # the common case, without a scan
    depth = 0
    for bracket in _BRACKET.finditer(_STRING.sub('""', text)):
        if bracket[0] in "[{":
            depth += 1
            if depth > max_depth:
                return True
        else:
            depth -= 1
    return False


def _unstorable(text: str) -> bool:
    if "\\u" not in text:
        return False
    return _UNSTORABLE.search(_SURROGATE_PAIR.sub(r"\1", text)) is not None


def _refuse_constant(name: str) -> Any:
    raise JSONRefused(f"{name} is not a JSON number")


def loads(
    body: bytes | str,
    *,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    parse_float: Callable[[str], Any] = float,
    object_hook: Callable[[dict[str, Any]], Any] | None = None,
) -> Any:
    """``body`` parsed, or ``JSONRefused`` (see the module's docstring)."""
    if len(body) > max_bytes:
        raise JSONRefused(f"the body is larger than {max_bytes} bytes")
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            raise JSONRefused("the body is not UTF-8") from None
    if body.startswith("\ufeff"):
        raise JSONRefused("the body starts with a byte-order mark")
    if _depth_exceeds(body, max_depth):
        raise JSONRefused(f"the body nests deeper than {max_depth} levels")
    if _unstorable(body):
        raise JSONRefused("a string holds \\u0000 or a lone surrogate")

    def finite(text: str) -> Any:
        value = parse_float(text)
        if isinstance(value, float) and not math.isfinite(value):
            raise JSONRefused(f"the number {text[:20]} is out of range")
        return value

    try:
        return json.loads(body, parse_float=finite, parse_constant=_refuse_constant, object_hook=object_hook)
    except JSONRefused:
        raise
    except RecursionError:  # a max_depth above what the interpreter allows
        raise JSONRefused("the body nests too deeply") from None
    except ValueError as exc:  # JSONDecodeError, or an integer beyond Python's digit limit
        raise JSONRefused(f"the body is not valid JSON ({str(exc).split(':')[0]})") from None
