"""How the core books meetings on a Microsoft 365 calendar: an ``event`` created, updated (moved) or cancelled.

API docs: https://learn.microsoft.com/en-us/graph/api/user-post-events, .../event-update, .../event-cancel;
properties: https://learn.microsoft.com/en-us/graph/api/resources/event (Calendars.ReadWrite).

- create: ``POST /me/events`` with a ``transactionId`` derived from the push's key, which Graph keeps "to avoid
  redundant POST operations in case of client retries": a resent create answers the event the first one made.
  Attendees are invited by Graph itself once the event has them.
- update: ``PATCH`` of the linked event; upsert creates or updates as the link says (``pushes.create_or_update``).
- cancel: ``POST .../cancel`` (organiser only; Graph mails the attendees and moves the event to Deleted Items), so
  the outcome is the event deleted; a resent cancel meets a 404 and means the same.
- Times are sent as wall-clock ``dateTime`` in the event's zone (IANA names, as the canonical record holds them;
  an instant without a zone Graph can read is sent in UTC); RRULEs as Graph's ``patternedRecurrence``.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, date
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from providers.base import PushOutcome, PushRequest
from providers.errors import ProviderError, ProviderRejected
from providers.kit import pushes
from providers.kit.client import ApiClient
from vrtx_pipelines.records.canonical import Attendee, CalendarEvent, EventTime

from .mappers import DAYS, WEEK_INDEX, to_event
from .source import event_row

PROVIDER = "Microsoft 365"
GRAPH_DAYS = {code: name for name, code in DAYS.items()}
GRAPH_INDEX = {number: name for name, number in WEEK_INDEX.items()}


def transaction_id_for(key: str) -> str:
    """The event's ``transactionId``: the same for every attempt of the push."""
    return str(uuid.UUID(bytes=pushes.key_digest(key)[:16], version=5))  # name-based: shaped as uuid5


def _path(event_id: str) -> str:
    return f"me/events/{quote(event_id, safe='')}"


def _when(at: EventTime) -> dict[str, Any]:
    if at.day is not None:
        return {"dateTime": f"{at.day.isoformat()}T00:00:00", "timeZone": "UTC"}
    if at.at is None:
        raise ProviderRejected("An event's start and end need a time or a day.")
    instant = at.at if at.at.tzinfo else at.at.replace(tzinfo=UTC)
    zone = at.time_zone or "UTC"
    try:
        local = instant.astimezone(ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError):
        zone, local = "UTC", instant.astimezone(UTC)
    return {"dateTime": local.replace(tzinfo=None).isoformat(timespec="seconds"), "timeZone": zone}


def _invitee(attendee: Attendee) -> dict[str, Any]:
    address = {"address": attendee.address, **({"name": attendee.name} if attendee.name else {})}
    return {"emailAddress": address, "type": "optional" if attendee.optional else "required"}


def _weekdays(value: str) -> list[tuple[int | None, str]]:
    """RRULE ``BYDAY`` entries as (week index or None, Graph's day name)."""
    found = []
    for entry in filter(None, value.split(",")):
        code, index = entry[-2:].upper(), entry[:-2]
        if code not in GRAPH_DAYS or not re.fullmatch(r"[+-]?\d*", index):
            raise ProviderRejected(f"The recurrence day '{entry}' is not one Microsoft 365 takes.")
        found.append((int(index) if index.lstrip("+-") else None, GRAPH_DAYS[code]))
    return found


def patterned(rules: list[str], start: date) -> dict[str, Any] | None:
    """An RRULE (RFC 5545) as Graph's ``patternedRecurrence``, the inverse of ``mappers.rrule``; EXDATE and RDATE
    have no Graph form and are refused."""
    if not rules:
        return None
    if len(rules) > 1 or not rules[0].upper().startswith("RRULE:"):
        raise ProviderRejected("Microsoft 365 takes one RRULE per event (no EXDATE or RDATE).")
    parts = dict(part.split("=", 1) for part in rules[0][6:].upper().split(";") if "=" in part)
    days = _weekdays(parts.get("BYDAY", ""))
    pattern: dict[str, Any] = {"interval": int(parts.get("INTERVAL") or 1)}
    frequency = parts.get("FREQ")
    if frequency == "DAILY":
        pattern["type"] = "daily"
    elif frequency == "WEEKLY":
        weekday = GRAPH_DAYS[list(DAYS.values())[(start.weekday() + 1) % 7]]
        pattern |= {"type": "weekly", "daysOfWeek": [name for _, name in days] or [weekday]}
    elif frequency in ("MONTHLY", "YEARLY"):
        kind = "Monthly" if frequency == "MONTHLY" else "Yearly"
        if days and days[0][0] is not None:
            index = GRAPH_INDEX.get(days[0][0])
            if index is None:
                raise ProviderRejected("Microsoft 365 takes week indexes 1 to 4 and -1 (last) only.")
            pattern |= {"type": f"relative{kind}", "daysOfWeek": [name for _, name in days], "index": index}
        else:
            pattern |= {"type": f"absolute{kind}", "dayOfMonth": int(parts.get("BYMONTHDAY") or start.day)}
        if kind == "Yearly":
            pattern["month"] = int(parts.get("BYMONTH") or start.month)
    else:
        raise ProviderRejected(f"Microsoft 365 takes daily, weekly, monthly or yearly recurrence, not {frequency}.")
    span: dict[str, Any] = {"type": "noEnd", "startDate": start.isoformat()}
    if parts.get("UNTIL"):
        until = parts["UNTIL"][:8]
        span |= {"type": "endDate", "endDate": f"{until[:4]}-{until[4:6]}-{until[6:8]}"}
    elif parts.get("COUNT"):
        span |= {"type": "numbered", "numberOfOccurrences": int(parts["COUNT"])}
    return {"pattern": pattern, "range": span}


def event_body(event: CalendarEvent) -> dict[str, Any]:
    if (event.start.day is None) != (event.end.day is None):
        raise ProviderRejected("An event's start and end are both days (all day) or both times.")
    start = _when(event.start)
    body: dict[str, Any] = {
        "subject": event.title,
        "start": start,
        "end": _when(event.end),
        "isAllDay": event.start.day is not None,
        "attendees": [_invitee(attendee) for attendee in event.attendees],
        "showAs": "tentative" if event.status == "tentative" else "busy",
    }
    if event.description is not None:
        body["body"] = {"contentType": "text", "content": event.description}
    if event.location is not None:
        body["location"] = {"displayName": event.location}
    recurrence = patterned(event.recurrence, date.fromisoformat(start["dateTime"][:10]))
    if recurrence is not None:
        body["recurrence"] = recurrence
    return body


def _outcome(client: ApiClient, found: dict[str, Any]) -> PushOutcome:
    row = event_row(found, str(client.tenant_id or ""))
    sample = {"id": found.get("id"), "transactionId": found.get("transactionId")}
    return pushes.outcome(str(row["id"]), to_event(row), row, sample)


def _cancel(client: ApiClient, request: PushRequest) -> PushOutcome:
    event_id = pushes.require_link(request, PROVIDER)
    try:
        client.send("POST", f"{_path(event_id)}/cancel", headers={"Content-Type": "application/json"},
                    content=json.dumps({}).encode())  # fmt: skip
    except ProviderError as exc:
        if exc.status != 404:  # cancelled already (gone from the calendar): a resent cancel
            raise
    row = {"id": event_id, "mailbox": str(client.tenant_id or ""), "deleted": True}
    return pushes.outcome(event_id, to_event(row), row, {"id": event_id, "cancelled": True})


def push_event(client: ApiClient, request: PushRequest) -> PushOutcome:
    if request.operation == "cancel":
        return _cancel(client, request)
    body = pushes.with_overrides(event_body(CalendarEvent.model_validate(request.payload)), request.overrides)

    def create() -> PushOutcome:
        return _outcome(client, client.write("POST", "me/events", {**body, "transactionId": transaction_id_for(
            request.idempotency_key)}))  # fmt: skip

    def update(linked: str) -> PushOutcome:
        return _outcome(client, client.write("PATCH", _path(linked), body))

    return pushes.create_or_update(request, PROVIDER, create=create, update=update)
