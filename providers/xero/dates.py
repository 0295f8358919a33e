"""Xero's date formats: MS-JSON ``/Date(1541176290160+0000)/`` values (``providers.kit.ms_json_dates``) and their
``...DateString`` companions.

API doc: https://developer.xero.com/documentation/api/accounting/requests-and-responses (JSON dates)
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from providers.kit.ms_json_dates import is_ms_json_date, parse_ms_json_date
from providers.kit.values import calendar_date, iso_milliseconds, iso_utc, timestamp

# ``DateString``/``UpdatedDateUTCString`` companions (``2018-10-20T00:00:00``): Xero writes no offset, so UTC.
parse_date_string = iso_utc


def _parse(value: str) -> datetime:
    return parse_ms_json_date(value) if is_ms_json_date(value) else iso_utc(value)


def to_utc_datetime(value: Any) -> datetime | None:
    """Any Xero timestamp (MS-JSON, ISO string or datetime) as an aware UTC datetime; None for empty values."""
    return timestamp(value, _parse)


def to_date(value: Any) -> date | None:
    """The calendar date of a Xero date field. Xero sends dates as midnight UTC, so the UTC date is the date."""
    return calendar_date(value, _parse)


# The If-Modified-Since header. Milliseconds matter: UpdatedDateUTC carries them, and dropping them would re-fetch
# every record changed earlier in the same second.
format_if_modified_since = iso_milliseconds
