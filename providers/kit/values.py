"""Small coercions every mapper needs, between a provider's decoded JSON and the canonical models."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

# A JSON object as mappers accept it. dict first: decoded JSON is dicts, and the abstract Mapping check alone cost
# a tenth of mapping a Xero invoice.
OBJECT = (dict, Mapping)


class UnmappableRecord(ValueError):
    """A provider record with no canonical counterpart (Xero: a payment that settles no invoice, or a deleted one):
    the pull loads the raw row and counts it, but makes no canonical record of it."""


def text(value: Any) -> str | None:
    """Text with surrounding blanks removed; None for None and for empty text (providers send "" for unset)."""
    if value is None:
        return None
    stripped = str(value).strip()
    return stripped or None


def uuid_text(value: str) -> str | None:
    """An id that is a UUID (GUID), in its canonical form; None for anything else (it names no record)."""
    try:
        return str(UUID(value))
    except (ValueError, TypeError, AttributeError):
        return None


def required(raw: Mapping[str, Any], key: str) -> str:
    """``raw[key]`` as text; a ``ValueError`` when the record has none (it has no canonical form)."""
    value = text(raw.get(key))
    if value is None:
        raise ValueError(f"the record has no {key}")
    return value


def decimal(value: Any) -> Decimal | None:
    """An amount as ``Decimal``: None for None and "", never through a float's binary error."""
    if type(value) is Decimal:  # what clients decode money to: the common case, checked first
        return value
    if value is None or value == "":
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise TypeError(f"not an amount: {value!r}")
    return Decimal(str(value))


def records(value: Any) -> list[Mapping[str, Any]]:
    """The objects of a JSON list (anything else in it, or a value that is no list, gives nothing)."""
    return [item for item in value if isinstance(item, OBJECT)] if isinstance(value, list) else []


def json_number(value: Decimal) -> float | int:
    """A ``Decimal`` as a JSON number the way providers' SDKs send one; integral values stay integers."""
    return int(value) if value == value.to_integral_value() else float(value)


def setting(settings: Mapping[str, Any], name: str) -> str | None:
    """A connection setting as text, None when unset or blank."""
    value = settings.get(name)
    return str(value).strip() or None if value is not None else None


def utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken as UTC. ``ValueError`` for one with no UTC equivalent
    (``9999-12-31T23:59:59-23:59`` is in the year 10000 in UTC)."""
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value.isoformat()} has no UTC equivalent") from None


def iso_utc(value: str) -> datetime:
    """ISO 8601 text (``2019-11-14T18:10:38Z``, ``2018-10-20T00:00:00``) as aware UTC; no offset is UTC."""
    return utc(datetime.fromisoformat(value))


def timestamp(value: Any, parse: Callable[[str], datetime] = iso_utc) -> datetime | None:
    """Any timestamp (a datetime, a date: its midnight, or text read by ``parse``) as aware UTC; None for None
    and ""."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        return parse(value)
    raise TypeError(f"not a timestamp: {value!r}")


def calendar_date(value: Any, parse: Callable[[str], datetime] = iso_utc) -> date | None:
    """The calendar date of a date field (a date as it is; a timestamp's UTC date)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    instant = timestamp(value, parse)
    return instant.date() if instant is not None else None


def iso_milliseconds(value: datetime) -> str:
    """ISO 8601 in UTC with milliseconds (``2024-05-01T09:30:00.123+00:00``); naive is taken as UTC."""
    return utc(value).isoformat(timespec="milliseconds")
