"""Xero's date formats: MS-JSON ``/Date(1541176290160+0000)/`` values and their ``...DateString`` companions.

API doc: https://developer.xero.com/documentation/api/accounting/requests-and-responses (JSON dates)
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

# Milliseconds since the Unix epoch (always UTC), then an optional offset that only says where the value
# came from: it never shifts the instant. Negative ticks appear for dates before 1970.
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


def parse_date_string(value: str) -> datetime:
    """A ``DateString``/``UpdatedDateUTCString`` (``2018-10-20T00:00:00``, ``2019-11-14T18:10:38Z``).

    Xero writes no offset on ``DateString`` values; they are read as UTC so the result is always aware.
    """
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def to_utc_datetime(value: Any) -> datetime | None:
    """Any Xero timestamp (MS-JSON, ISO string or datetime) as an aware UTC datetime; None for empty values."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        return parse_ms_json_date(value) if is_ms_json_date(value) else parse_date_string(value)
    raise TypeError(f"not a Xero date: {value!r}")


def to_date(value: Any) -> date | None:
    """The calendar date of a Xero date field. Xero sends dates as midnight UTC, so the UTC date is the date."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    instant = to_utc_datetime(value)
    return instant.date() if instant is not None else None


def convert_ms_json_dates(value: Any) -> Any:
    """A copy of a decoded Xero object with every MS-JSON string (at any depth) turned into a UTC datetime."""
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
    recursive walk cost seconds on 100,000 invoices (bench/pull.py).
    """
    for key, value in obj.items():
        if type(value) is str and value.startswith("/Date(") and is_ms_json_date(value):
            obj[key] = parse_ms_json_date(value)
    return obj


def format_if_modified_since(value: datetime) -> str:
    """The ``If-Modified-Since`` header: ISO 8601 in UTC with milliseconds (``2024-05-01T09:30:00.123+00:00``).

    Naive datetimes are taken as UTC. Milliseconds matter: ``UpdatedDateUTC`` carries them, and dropping them
    would re-fetch every record changed earlier in the same second.
    """
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return aware.isoformat(timespec="milliseconds")
