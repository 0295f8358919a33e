"""The kit's strict JSON parser: what it refuses (size, depth, BOM, non-UTF-8, NaN/Infinity, NUL and lone
surrogates) and what it still reads as the standard parser does."""

from __future__ import annotations

from decimal import Decimal

import pytest

from providers.kit.strict_json import MAX_DEPTH, JSONRefused, loads

REFUSED = {
    "a byte-order mark": b"\xef\xbb\xbf{}",
    "NaN": b'{"amount": NaN}',
    "Infinity": b"[Infinity]",
    "-Infinity": b"[-Infinity]",
    "a number overflowing to infinity": b"[1e999]",
    "an integer beyond the digit limit": b"[" + b"7" * 5000 + b"]",
    "5,000 levels of arrays": b"[" * 5000 + b"]" * 5000,
    "5,000 levels of objects": b'{"a":' * 5000 + b"1" + b"}" * 5000,
    "one level too deep": b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1),
    "an escaped NUL": rb'{"id": "a\u0000b"}',
    "an escaped NUL after an escaped backslash": rb'["\\\u0000"]',
    "a lone high surrogate": rb'["\ud83d"]',
    "a lone low surrogate": rb'["\ude00"]',
    "a low surrogate after a literal backslash-u text": rb'["\\ud83d\ude00"]',
    "not UTF-8": b'{"name": "\xff"}',
    "UTF-16": '{"a": 1}'.encode("utf-16"),
    "truncated": b'{"a": [1, 2',
    "over the size limit": b'"' + b"x" * (1024 * 1024) + b'"',
}


@pytest.mark.parametrize("body", REFUSED.values(), ids=REFUSED.keys())
def test_refused_bodies_raise_a_value_error_that_says_why(body: bytes) -> None:
    with pytest.raises(JSONRefused) as refused:
        loads(body)
    assert isinstance(refused.value, ValueError) and refused.value.reason


def test_what_the_standard_parser_reads_is_read_the_same() -> None:
    assert loads(b'{"a": [1, 2.5, "x", null, true]}') == {"a": [1, 2.5, "x", None, True]}
    assert loads(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None
    assert loads('["' + "[" * 500 + '"]') == ["[" * 500]  # brackets inside strings are not nesting
    assert loads(rb'["\ud83d\ude00", "\\u0000"]') == ["\U0001f600", "\\u0000"]  # a pair; an escaped backslash
    assert loads(b'{"total": 10.10}', parse_float=Decimal) == {"total": Decimal("10.10")}
    assert loads("caf\u00e9".join(['"', '"']).encode()) == "caf\u00e9"


def test_limits_can_be_set_per_call() -> None:
    with pytest.raises(JSONRefused, match="larger than 10 bytes"):
        loads(b'{"a": "0123456789"}', max_bytes=10)
    with pytest.raises(JSONRefused, match="deeper than 2"):
        loads(b"[[[1]]]", max_depth=2)


def test_quickbooks_webhook_bodies_go_through_the_strict_parser() -> None:
    """A deep, BOM-led or NaN-bearing body is a clear ValueError (a 400), never a RecursionError (a 500)."""
    from providers.quickbooks.webhooks import parse

    for body in (b"[" * 5000 + b"]" * 5000, b"\xef\xbb\xbf" + b'{"eventNotifications": []}', b'[{"id": NaN}]'):
        with pytest.raises(ValueError):
            parse(body)
