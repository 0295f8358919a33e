"""ASP.NET's JSON dates, ``/Date(1541176290160+0000)/``, as .NET-built APIs send them (Xero among others).

Milliseconds since the Unix epoch (always UTC), then an optional offset that only says where the value came from:
it never shifts the instant. Negative ticks appear for dates before 1970.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

_MS_JSON_RE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def is_ms_json_date(value: object) -> bool:
    return isinstance(value, str) and _MS_JSON_RE.match(value) is not None


def parse_ms_json_date(value: str) -> datetime:
    """``/Date(1541176290160+0000)/`` -> ``2018-11-02 16:31:30.160000+00:00`` (timezone-aware UTC)."""
    match = _MS_JSON_RE.match(value)
    if match is None:
        raise ValueError(f"not an MS-JSON date: {value!r}")
    # timedelta, not fromtimestamp: the latter rejects some pre-1970 values on some platforms.
    return _EPOCH + timedelta(milliseconds=int(match.group(1)))


def convert_ms_json_dates(value: Any) -> Any:
    """A copy of a decoded object with every MS-JSON string (at any depth) turned into a UTC datetime."""
    if isinstance(value, dict):
        return {key: convert_ms_json_dates(item) for key, item in value.items()}
    if isinstance(value, list):
        return [convert_ms_json_dates(item) for item in value]
    if isinstance(value, str) and value.startswith("/Date(") and is_ms_json_date(value):
        return parse_ms_json_date(value)
    return value


def convert_dates_hook(obj: dict[str, Any]) -> dict[str, Any]:
    """``json.loads`` object hook: MS-JSON date strings become UTC datetimes as each object is decoded.

    Same result as ``convert_ms_json_dates`` on the decoded body, in the decoder's own pass: a second
    recursive walk cost seconds on 100,000 Xero invoices (bench/pull.py).
    """
    for key, value in obj.items():
        if type(value) is str and value.startswith("/Date(") and is_ms_json_date(value):
            obj[key] = parse_ms_json_date(value)
    return obj
