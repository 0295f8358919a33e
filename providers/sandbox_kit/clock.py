"""Time in a sandbox: every expiry, rate-limit window and change stamp reads an injected clock (``time.time`` by
default, a ``ManualClock`` in tests, which move time instead of sleeping), plus the conversions sandboxes share."""

from __future__ import annotations

import email.utils
import re
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], float]  # seconds since the epoch
MINUTE_S = 60.0
DAY_S = 86_400.0
DAY_MS = 86_400_000
_EXTRA_DIGITS = re.compile(r"(\.\d{6})\d+")


class ManualClock:
    """A clock that stands still until moved: ``clock.advance(1800)`` expires a 30-minute token."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:  # 2027-01-15
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def ms_at(year: int, month: int, day: int) -> int:
    """Midnight UTC of a date, in milliseconds since the epoch."""
    return int(datetime(year, month, day, tzinfo=UTC).timestamp() * 1000)


def ms_of(moment: datetime) -> int:
    """Milliseconds since the epoch, rounded down (a record at exactly a cut-off is not *after* it); naive is UTC."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    delta = aware - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def floor_day(ms: int) -> int:
    return ms - ms % DAY_MS


def parse_if_modified_since(value: str | None) -> int | None:
    """``If-Modified-Since`` in ms: ISO 8601 as several APIs document it (``2020-02-06T12:17:43.202-08:00``, naive
    is UTC, digits past microseconds ignored) or an RFC 1123 HTTP-date. Unreadable is None: RFC 9110 section
    13.1.3 says to ignore the header then."""
    if not value or not value.strip():
        return None
    text = value.strip()
    iso = _EXTRA_DIGITS.sub(r"\1", text.replace("Z", "+00:00").replace("z", "+00:00"))
    try:
        return ms_of(datetime.fromisoformat(iso))
    except ValueError:
        pass
    try:
        return ms_of(email.utils.parsedate_to_datetime(text))
    except (TypeError, ValueError, IndexError):
        return None
