"""Opaque page cursors (url-safe base64 of ``<version><sep><values>``) and the bounds of what they may carry.

Every value read back from a client is checked before it reaches a query: an id beyond what a BIGINT (and
SQLite's INTEGER) holds, or an instant that cannot be expressed in UTC, is a refused cursor (422), never a
database or overflow error.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

from vrtx_pipelines.errors import ValidationFailed

MAX_ROW_ID = 2**63 - 1  # the largest BIGINT, and of SQLite's INTEGER: a bigger id names no row


class InvalidCursor(ValidationFailed):
    def __init__(self, field: str = "cursor") -> None:
        super().__init__(
            "the cursor is not one this API gave out", details=[{"field": field, "message": "invalid cursor"}]
        )


def encode(version: str, *values: object, sep: str = ":") -> str:
    return base64.urlsafe_b64encode(sep.join([version, *map(str, values)]).encode()).decode().rstrip("=")


def decode(cursor: str, version: str, count: int, *, sep: str = ":") -> list[str]:
    """The ``count`` values of a cursor of ``version``; ``InvalidCursor`` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, ValueError):
        raise InvalidCursor() from None
    found, *values = raw.split(sep, count)
    if found != version or len(values) != count:
        raise InvalidCursor()
    return values


def row_id(value: str) -> int:
    """A row id read from a cursor: ASCII digits, at most ``MAX_ROW_ID``."""
    if not (value.isascii() and value.isdigit()) or len(value) > 19 or int(value) > MAX_ROW_ID:
        raise InvalidCursor()
    return int(value)


def utc_instant(value: datetime) -> datetime:
    """``value`` in UTC (naive is UTC); ``ValueError`` when it has no UTC equivalent (``9999-12-31T23:59-23:59``)."""
    try:
        return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    except OverflowError:
        raise ValueError("the date-time is out of range once converted to UTC") from None


def instant(value: str) -> datetime:
    """A date-time read from a cursor, in UTC."""
    try:
        return utc_instant(datetime.fromisoformat(value))
    except ValueError:
        raise InvalidCursor() from None
