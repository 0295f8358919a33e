"""What sandboxes do with write requests: read the values sent (text, numbers, dates) the lenient way APIs do,
find a batch's elements, validate every element before committing any, and merge what was sent into what is
stored. The rules of each entity (and the error words) are the provider's."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from providers.sandbox_kit.clock import floor_day
from providers.sandbox_kit.store import Record

Commit = Callable[[], Record]
Prepared = Commit | list[str]  # what one element becomes: a commit to run, or its validation messages


def text(value: Any) -> str | None:
    """A sent value as text, stripped; None when absent or blank."""
    if value is None:
        return None
    stripped = str(value).strip()
    return stripped or None


def number(value: Any, default: Decimal) -> Decimal:
    """A sent number (JSON number or numeric text) exactly; ``default`` when absent. Raises ValueError (booleans)
    or decimal.InvalidOperation (anything else that is not a number)."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise ValueError("not a number")
    return Decimal(str(value))


def half_up(value: Decimal) -> int:
    """Rounded to a whole number half up, as accounting rounds cents."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def iso_day_ms(value: str) -> int:
    """An ISO 8601 date or date-time (naive is UTC) as ms at midnight UTC of its day; ValueError if not one."""
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return floor_day(int(parsed.timestamp() * 1000))


def decode(body: bytes) -> Any:
    """A JSON body with its numbers exact (Decimal); ValueError if it is not JSON."""
    return json.loads(body or b"null", parse_float=Decimal)


def jsonable(value: Any) -> Any:
    """A decoded body as JSON again (echoing what was sent): Decimals become numbers."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


def batch_elements(decoded: Any, key: str) -> list[dict[str, Any]] | None:
    """The elements of ``{"<key>": [...]}`` (the key matched without case) or of one bare object, as clients send
    either; None when the body is neither."""
    if not isinstance(decoded, dict):
        return None
    found = next((v for k, v in decoded.items() if k.lower() == key.lower()), None)
    if found is None:
        return [decoded] if decoded else None
    if not isinstance(found, list) or not all(isinstance(e, dict) for e in found):
        return None
    return found


def prepare_all(elements: Sequence[dict[str, Any]], prepare: Callable[[dict[str, Any]], Prepared]) -> list[Prepared]:
    """Every element validated before any is committed: a batch either is all valid or says what is not."""
    return [prepare(element) for element in elements]


def commit_all(
    elements: Sequence[dict[str, Any]],
    prepared: Sequence[Prepared],
    *,
    partial: bool,
    refused: Callable[[dict[str, Any], list[str]], Record],
) -> list[Record] | None:
    """A validated batch committed: when an element failed, nothing (None) unless ``partial``, in which case the
    valid elements are committed and each refused one answered as ``refused(element, messages)``."""
    if not partial and any(isinstance(p, list) for p in prepared):
        return None
    return [refused(e, p) if isinstance(p, list) else p() for e, p in zip(elements, prepared, strict=True)]


def merge_by(current: Sequence[Any], sent: Sequence[Any], kind: str, fields: Sequence[str]) -> list[Any]:
    """Sub-records (addresses, phones) merged by their ``kind`` field: one of each kind, a sent one replacing the
    stored one of its kind whole (its listed ``fields`` only, as text)."""
    merged: dict[str, dict[str, Any]] = {str(item.get(kind)): dict(item) for item in current if isinstance(item, dict)}
    for item in sent:
        if not isinstance(item, dict) or not text(item.get(kind)):
            continue
        key = str(item[kind]).upper()
        merged[key] = {kind: key, **{f: text(item.get(f)) or "" for f in fields if f in item}}
    return list(merged.values())


def merge_text(record: Record, element: Mapping[str, Any], fields: Sequence[str]) -> None:
    """The listed text fields that were sent replace the stored ones (blank clears)."""
    for name in fields:
        if name in element:
            record[name] = text(element[name]) or ""
