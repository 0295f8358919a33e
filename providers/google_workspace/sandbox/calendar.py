"""Google Calendar API v3 answers (https://developers.google.com/calendar/api/v3/reference) over a user's
calendars: calendarList, events list with ``pageToken``/``syncToken`` (an unknown or invalidated token: 410
``fullSyncRequired``), get, insert, patch, update, delete (a cancelled tombstone, as Google keeps one).

Recurring events are kept as series: ``singleEvents=true`` is refused (deviation: Google expands instances).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from providers.google_workspace.sandbox.errors import GoogleError
from providers.google_workspace.sandbox_credentials import DEMO_CONTACTS

Body = dict[str, Any]
MAX_RESULTS = 2500
_TITLES = ("Quarterly review", "Product demo", "Contract walkthrough", "Kickoff call", "Onboarding session")
_WRITABLE = {"summary", "description", "location", "start", "end", "attendees", "recurrence", "status",
             "conferenceData", "transparency", "visibility", "reminders", "colorId", "guestsCanModify"}  # fmt: skip


@dataclass
class Calendar:
    id: str
    owner: str
    events: dict[str, Body] = field(default_factory=dict)  # by id, in insertion order
    sequence: int = 0  # grows with every change: an event's "updated" order and sync tokens' position
    changed_at: dict[str, int] = field(default_factory=dict)  # event id -> sequence of its last change
    token_epoch: int = 0  # bumped to invalidate every sync token given so far
    # Told of every change of its events (under the sandbox's lock): its push channels are notified.
    on_change: Callable[[Calendar], None] | None = field(default=None, repr=False)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def seed_events(calendar: Calendar, seed: int, count: int, now: float) -> None:
    base = datetime.fromtimestamp(now, UTC).replace(minute=0, second=0, microsecond=0)
    for n in range(count):
        name, address = DEMO_CONTACTS[(n * 3 + seed) % len(DEMO_CONTACTS)]
        event_id = hashlib.sha256(f"event:{seed}:{calendar.id}:{n}".encode()).hexdigest()[:26]
        start = base + timedelta(days=n - count // 2, hours=9 + n % 6)
        event: Body = {
            "summary": f"{_TITLES[n % len(_TITLES)]} with {name}",
            "location": "Video call" if n % 2 else "Head office, room 4",
            "attendees": [
                {"email": calendar.owner, "organizer": True, "self": True, "responseStatus": "accepted"},
                {"email": address, "displayName": name,
                 "responseStatus": ("accepted", "tentative", "needsAction", "declined")[n % 4]},
            ],
        }  # fmt: skip
        if n % 7 == 3:
            event["start"] = {"date": start.date().isoformat()}
            event["end"] = {"date": (start.date() + timedelta(days=1)).isoformat()}
            event["summary"] = f"Offsite with {name}"
        else:
            event["start"] = {"dateTime": start.isoformat(), "timeZone": "Europe/London"}
            event["end"] = {"dateTime": (start + timedelta(minutes=45)).isoformat(), "timeZone": "Europe/London"}
        if n % 5 == 1:
            event["recurrence"] = ["RRULE:FREQ=WEEKLY;COUNT=6"]
        if n % 2:
            event["hangoutLink"] = f"https://meet.google.com/{event_id[:3]}-{event_id[3:7]}-{event_id[7:10]}"
        store(calendar, event_id, event, now, created=True)


def store(calendar: Calendar, event_id: str, fields: Body, now: float, *, created: bool) -> Body:
    calendar.sequence += 1
    previous = calendar.events.get(event_id, {})
    stamp = _iso(datetime.fromtimestamp(now, UTC))
    event: Body = {
        **previous,
        **fields,
        "kind": "calendar#event",
        "id": event_id,
        "etag": f'"{calendar.sequence:016d}"',
        "status": fields.get("status", previous.get("status", "confirmed")),
        "htmlLink": f"https://www.google.com/calendar/event?eid={base64.urlsafe_b64encode(event_id.encode()).decode()}",
        "created": previous.get("created", stamp) if not created else stamp,
        "updated": stamp,
        "creator": {"email": calendar.owner, "self": True},
        "organizer": {"email": calendar.owner, "self": True},
        "iCalUID": previous.get("iCalUID", f"{event_id}@google.com"),
        "sequence": previous.get("sequence", -1) + 1,
        "eventType": "default",
    }
    calendar.events.pop(event_id, None)  # re-inserted last: the listing's order is the order of change
    calendar.events[event_id] = event
    calendar.changed_at[event_id] = calendar.sequence
    if calendar.on_change is not None:
        calendar.on_change(calendar)
    return event


def _validated(body: Any, *, partial: bool) -> Body:
    if not isinstance(body, dict):
        raise GoogleError(400, "Parse Error", "parseError")
    unknown = set(body) - _WRITABLE - {"id", "kind", "etag", "htmlLink", "iCalUID", "organizer", "creator",
                                        "created", "updated", "sequence", "hangoutLink", "eventType"}  # fmt: skip
    if unknown:
        raise GoogleError(400, f"Invalid field: {sorted(unknown)[0]}", "invalid")
    fields = {key: value for key, value in body.items() if key in _WRITABLE}
    if not partial:
        for key in ("start", "end"):
            if key not in fields:
                raise GoogleError(400, "Missing end time." if key == "end" else "Missing start time.", "required")
    for key in ("start", "end"):
        if key in fields:
            when = fields[key]
            if not isinstance(when, dict) or not (("dateTime" in when) ^ ("date" in when)):
                raise GoogleError(400, "Invalid start time." if key == "start" else "Invalid end time.", "invalid")
            try:
                if "dateTime" in when:
                    datetime.fromisoformat(str(when["dateTime"]).replace("Z", "+00:00"))
                else:
                    datetime.strptime(str(when["date"]), "%Y-%m-%d")
            except ValueError:
                raise GoogleError(400, f"Invalid {key} time.", "invalid") from None
    for attendee in fields.get("attendees") or []:
        if not isinstance(attendee, dict) or "@" not in str(attendee.get("email", "")):
            raise GoogleError(400, "Invalid attendee email.", "invalid")
        attendee.setdefault("responseStatus", "needsAction")
    if "conferenceData" in fields:
        request = (fields["conferenceData"] or {}).get("createRequest")
        if request:
            code = secrets.token_hex(5)
            uri = f"https://meet.google.com/{code[:3]}-{code[3:7]}-{code[7:]}"
            fields["conferenceData"] = {
                "conferenceId": code,
                "conferenceSolution": {"key": {"type": "hangoutsMeet"}, "name": "Google Meet"},
                "entryPoints": [{"entryPointType": "video", "uri": uri, "label": uri.removeprefix("https://")}],
                "createRequest": {**request, "status": {"statusCode": "success"}},
            }
            fields["hangoutLink"] = uri
    return fields


def calendar_list(calendars: Mapping[str, Calendar], owner: str) -> Body:
    items = [
        {"kind": "calendar#calendarListEntry", "id": cal.id, "summary": owner if cal.id == owner else cal.id,
         "primary": cal.id == owner, "accessRole": "owner", "timeZone": "Europe/London"}
        for cal in calendars.values()
    ]  # fmt: skip
    return {"kind": "calendar#calendarList", "etag": '"p1"', "items": items}


def _sync_token(calendar: Calendar, position: int) -> str:
    return base64.urlsafe_b64encode(f"s:{calendar.token_epoch}:{position}".encode()).decode().rstrip("=")


def _read_token(calendar: Calendar, token: str, kind: str) -> int:
    try:
        prefix, epoch, position = base64.urlsafe_b64decode(token.encode() + b"==").decode().split(":")
        if prefix != kind or int(epoch) != calendar.token_epoch:
            raise ValueError(token)
        return int(position)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        if kind == "s":
            raise GoogleError(
                410, "Sync token is no longer valid, a full sync is required.", "fullSyncRequired"
            ) from None
        raise GoogleError(400, "Invalid pageToken", "invalid") from None


def list_events(calendar: Calendar, params: Mapping[str, str]) -> Body:
    raw_size = params.get("maxResults", "250")
    if not raw_size.isdigit() or not 1 <= int(raw_size) <= MAX_RESULTS:
        raise GoogleError(400, "Invalid value for maxResults", "invalid")
    size = int(raw_size)
    sync_token = params.get("syncToken")
    if sync_token and any(params.get(k) for k in ("timeMin", "timeMax", "q", "orderBy", "updatedMin")):
        raise GoogleError(400, "Invalid combination of parameters with syncToken", "invalid")
    if params.get("singleEvents", "false").lower() == "true":
        raise GoogleError(400, "singleEvents=true is not supported by this sandbox: series are kept whole", "invalid")
    since = _read_token(calendar, sync_token, "s") if sync_token else None
    show_deleted = since is not None or params.get("showDeleted", "false").lower() == "true"
    time_min = _instant(params.get("timeMin"))
    time_max = _instant(params.get("timeMax"))
    chosen = []
    for event in calendar.events.values():
        if since is not None and calendar.changed_at[event["id"]] <= since:
            continue
        if event["status"] == "cancelled" and not show_deleted:
            continue
        if since is None and not _overlaps(event, time_min, time_max):
            continue
        chosen.append(event)
    page_token = params.get("pageToken")
    offset = _read_token(calendar, page_token, "p") if page_token else 0
    page = chosen[offset : offset + size]
    body: Body = {"kind": "calendar#events", "etag": f'"{calendar.sequence}"', "summary": calendar.id,
                  "updated": _iso(datetime.now(UTC)), "timeZone": "Europe/London", "accessRole": "owner",
                  "items": [_shown(event) for event in page]}  # fmt: skip
    if offset + size < len(chosen):
        body["nextPageToken"] = (
            base64.urlsafe_b64encode(f"p:{calendar.token_epoch}:{offset + size}".encode()).decode().rstrip("=")
        )
    else:
        body["nextSyncToken"] = _sync_token(calendar, calendar.sequence)
    return body


def _shown(event: Body) -> Body:
    if event["status"] == "cancelled":
        return {"kind": "calendar#event", "etag": event["etag"], "id": event["id"], "status": "cancelled"}
    return event


def _instant(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        found = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise GoogleError(400, "Bad Request", "badRequest") from None
    if found.tzinfo is None:
        raise GoogleError(400, "Bad Request", "badRequest")
    return found


def _bounds(event: Body) -> tuple[datetime, datetime]:
    def at(when: Body) -> datetime:
        if "dateTime" in when:
            return datetime.fromisoformat(str(when["dateTime"]).replace("Z", "+00:00")).astimezone(UTC)
        return datetime.strptime(str(when["date"]), "%Y-%m-%d").replace(tzinfo=UTC)

    return at(event["start"]), at(event["end"])


def _overlaps(event: Body, time_min: datetime | None, time_max: datetime | None) -> bool:
    start, end = _bounds(event)
    if event.get("recurrence"):
        end = datetime.max.replace(tzinfo=UTC)  # a series reaches on: its instances may fall in the window
    return (time_min is None or end > time_min) and (time_max is None or start < time_max)


def get_event(calendar: Calendar, event_id: str) -> Body:
    event = calendar.events.get(event_id)
    if event is None:
        raise GoogleError.not_found()
    return event


def insert_event(calendar: Calendar, body: Any, now: float) -> Body:
    fields = _validated(body, partial=False)
    requested = body.get("id") if isinstance(body, dict) else None
    if requested is not None:
        if (
            not isinstance(requested, str)
            or not 5 <= len(requested) <= 1024
            or not all(c in "0123456789abcdefghijklmnopqrstuv" for c in requested)
        ):
            raise GoogleError(400, "Invalid resource id value.", "invalid")
        if requested in calendar.events:
            raise GoogleError(409, "The requested identifier already exists.", "duplicate")
    event_id = requested or secrets.token_hex(13)
    return store(calendar, event_id, fields, now, created=True)


def update_event(calendar: Calendar, event_id: str, body: Any, now: float, *, partial: bool) -> Body:
    current = get_event(calendar, event_id)
    fields = _validated(body, partial=partial)
    if not partial:
        kept = {key: current[key] for key in ("created", "iCalUID") if key in current}
        calendar.events[event_id] = {k: v for k, v in current.items() if k not in _WRITABLE} | kept
    return store(calendar, event_id, fields, now, created=False)


def delete_event(calendar: Calendar, event_id: str, now: float) -> None:
    event = get_event(calendar, event_id)
    if event["status"] == "cancelled":
        raise GoogleError(410, "Resource has been deleted", "deleted")
    store(calendar, event_id, {"status": "cancelled"}, now, created=False)
