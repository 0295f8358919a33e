"""A user's primary Outlook calendar and Graph's calendarView delta over it
(https://learn.microsoft.com/en-us/graph/api/event-delta, .../graph/delta-query-events).

The first request names the window (``startDateTime``, ``endDateTime``: both required, else 400); the tokens carry
it. A round answers the events overlapping the window; the next round answers events changed since, and as
``@removed`` (reason ``deleted``) those deleted or moved out of the window, as Graph does. ``$select``, ``$filter``,
``$orderby``, ``$expand`` and ``$search`` are refused: the docs say calendarView delta supports none of them.

Deviations: no occurrences (a recurring event is its series master only), times are UTC whatever
``Prefer: outlook.timezone`` says, and the user is the organiser of every event.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from providers.google_workspace.sandbox_credentials import DEMO_CONTACTS
from providers.microsoft365.sandbox.delta import (
    Body,
    Key,
    Preferences,
    Tokens,
    envelope,
    page_after,
    page_size,
    preference_applied,
    removed,
)
from providers.microsoft365.sandbox.errors import GraphError
from providers.microsoft365.sandbox.ids import MailboxIds, change_key
from providers.microsoft365.sandbox.mail import METADATA, Reply, iso, recipient

EVENT = "#microsoft.graph.event"
_TITLES = ("Quarterly review", "Product demo", "Contract walkthrough", "Kickoff call", "Onboarding session")
_RESPONSES = ("accepted", "tentativelyAccepted", "none", "declined", "notResponded")
_NO_TIME = "0001-01-01T00:00:00Z"  # Graph's time of a response never given
_REFUSED = ("$select", "$filter", "$orderby", "$expand", "$search")
NOT_TRACKED = GraphError(400, "ErrorInvalidUrlQuery", "The following parameters are not supported with change tracking "
                         "over the 'Events' resource: '$orderby, $filter, $select, $expand, $search'.")  # fmt: skip
WINDOW_REQUIRED = GraphError(400, "ErrorInvalidParameter", "This request requires a time window specified by the query "
                             "string parameters StartDateTime and EndDateTime.")  # fmt: skip


@dataclass
class Event:
    seq: int
    subject: str
    start_ms: int
    end_ms: int
    all_day: bool
    location: str
    online: bool
    attendees: tuple[tuple[str, str, str], ...]  # (name, address, response)
    created_ms: int
    modified_ms: int
    version: int = 0
    changed: int = 0  # the calendar's sequence at its last change
    deleted: bool = False
    # What a client writes (``bookings``); seeded events keep the defaults.
    body: tuple[str, str] | None = None  # (contentType, content); None: a one-line agenda
    optional: frozenset[str] = frozenset()  # attendees' addresses (lower case) invited as optional
    time_zone: str = "UTC"  # the zone the start was written in: originalStartTimeZone
    recurrence: Body | None = None  # Graph's patternedRecurrence as written
    show_as: str | None = None
    transaction_id: str | None = None


@dataclass
class Calendar:
    owner: tuple[str, str]  # (name, address)
    ids: MailboxIds
    events: dict[int, Event] = field(default_factory=dict)
    sequence: int = 0
    epoch: int = 0  # bumped to void every delta token given so far
    # Told of every change under the sandbox's lock (the event as it is now): what change notifications are made of.
    on_change: Callable[[Event], None] | None = field(default=None, repr=False, compare=False)

    def seed(self, count: int, seed: int, now_ms: int) -> None:
        base = datetime.fromtimestamp(now_ms / 1000, UTC).replace(minute=0, second=0, microsecond=0)
        for n in range(count):
            name, address = DEMO_CONTACTS[(n * 3 + seed) % len(DEMO_CONTACTS)]
            start = base + timedelta(days=n - count // 2, hours=9 + n % 6 - base.hour)
            all_day = n % 7 == 3
            if all_day:
                start = start.replace(hour=0)
            end = start + (timedelta(days=1) if all_day else timedelta(minutes=45))
            title = f"Offsite with {name}" if all_day else f"{_TITLES[n % len(_TITLES)]} with {name}"
            attendees: tuple[tuple[str, str, str], ...] = ((name, address, _RESPONSES[n % len(_RESPONSES)]),)
            if n % 4 == 2:
                other = DEMO_CONTACTS[(n * 3 + seed + 5) % len(DEMO_CONTACTS)]
                attendees += ((other[0], other[1], "notResponded"),)
            self.add(Event(len(self.events) + 1, title, _ms(start), _ms(end), all_day,
                           "Microsoft Teams Meeting" if n % 2 else "Head office, room 4", n % 2 == 1, attendees,
                           now_ms - 86_400_000, now_ms - 86_400_000))  # fmt: skip

    def add(self, event: Event) -> Event:
        self.events[event.seq] = event
        return self.changed(event, event.modified_ms)

    def changed(self, event: Event, now_ms: int) -> Event:
        self.sequence += 1
        event.changed, event.version, event.modified_ms = self.sequence, event.version + 1, now_ms
        if self.on_change is not None:
            self.on_change(event)
        return event

    def live(self) -> list[Event]:
        return [event for event in self.events.values() if not event.deleted]

    def find(self, event_id: str) -> Event:
        seq = self.ids.event_seq(event_id)
        event = self.events.get(seq) if seq is not None else None
        if event is None or event.deleted:
            raise KeyError(event_id)
        return event


def preview(content: str) -> str:
    """A body's ``bodyPreview``: its text without markup, up to 255 characters."""
    return " ".join(re.sub(r"<[^>]+>", " ", content).split())[:255]


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _when(ms: int) -> Body:
    return {"dateTime": datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000"),
            "timeZone": "UTC"}  # fmt: skip


def event_resource(calendar: Calendar, event: Event) -> Body:
    """The event resource as calendarView answers it (https://learn.microsoft.com/en-us/graph/api/resources/event)."""
    event_id, key = calendar.ids.event(event.seq), change_key("event", event.seq, event.version)
    digest = hashlib.sha256(f"{calendar.ids.address}:{event.seq}".encode()).hexdigest()[:32].upper()
    join = f"https://teams.microsoft.com/l/meetup-join/19%3ameeting_{digest[:24]}%40thread.v2/0"
    location = {"displayName": event.location, "locationType": "default", "uniqueId": event.location,
                "uniqueIdType": "private"}  # fmt: skip
    attendees = [
        {"type": "optional" if address.lower() in event.optional else "required",
         "status": {"response": response, "time": _NO_TIME if response == "none" else iso(event.created_ms)},
         "emailAddress": {"name": name, "address": address}}
        for name, address, response in event.attendees
    ]  # fmt: skip
    text = f"Agenda: {event.subject.lower()}."
    body = {"contentType": "html", "content": f"<html><body><p>{text}</p></body></html>"}
    if event.body is not None:
        body = {"contentType": event.body[0], "content": event.body[1]}
        text = preview(event.body[1])
    return {
        "@odata.type": EVENT, "@odata.etag": f'W/"{key}"', "id": event_id,
        "createdDateTime": iso(event.created_ms), "lastModifiedDateTime": iso(event.modified_ms), "changeKey": key,
        "categories": [], "transactionId": event.transaction_id, "originalStartTimeZone": event.time_zone,
        "originalEndTimeZone": event.time_zone,
        "iCalUId": f"040000008200E00074C5B7101A82E00800000000{digest}", "reminderMinutesBeforeStart": 15,
        "isReminderOn": not event.all_day, "hasAttachments": False, "subject": event.subject, "bodyPreview": text,
        "importance": "normal", "sensitivity": "normal", "isAllDay": event.all_day, "isCancelled": False,
        "isOrganizer": True, "responseRequested": True, "seriesMasterId": None,
        "showAs": event.show_as or ("free" if event.all_day else "busy"),
        "type": "seriesMaster" if event.recurrence else "singleInstance",
        "webLink": f"https://outlook.office365.com/owa/?itemid={quote(event_id, safe='')}&exvsurl=1"
                   "&path=/calendar/item",
        "onlineMeetingUrl": None, "isOnlineMeeting": event.online,
        "onlineMeetingProvider": "teamsForBusiness" if event.online else "unknown", "allowNewTimeProposals": True,
        "isDraft": False, "hideAttendees": False,
        "responseStatus": {"response": "organizer", "time": _NO_TIME},
        "body": body,
        "start": _when(event.start_ms), "end": _when(event.end_ms), "location": location, "locations": [location],
        "recurrence": event.recurrence, "attendees": attendees, "organizer": recipient(calendar.owner),
        "onlineMeeting": {"joinUrl": join} if event.online else None,
    }  # fmt: skip


def _window(params: Mapping[str, str]) -> Body:
    lowered = {key.lower(): value for key, value in params.items()}
    for refused in _REFUSED:
        if refused in lowered:
            raise NOT_TRACKED
    start, end = lowered.get("startdatetime"), lowered.get("enddatetime")
    if not start or not end:
        raise WINDOW_REQUIRED
    bounds = []
    for value in (start, end):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise GraphError(400, "ErrorInvalidParameter", f"The value '{value}' of parameter 'StartDateTime' or "
                             "'EndDateTime' is invalid.") from None  # fmt: skip
        bounds.append(_ms(moment if moment.tzinfo else moment.replace(tzinfo=UTC)))
    query: Body = {"window": bounds}
    if "$top" in lowered and lowered["$top"].isdigit():
        query["top"] = int(lowered["$top"])
    return query


def calendar_view_delta(
    calendar: Calendar, tokens: Tokens, params: Mapping[str, str], prefs: Preferences, link_base: str
) -> Reply:
    """One page of a calendarView delta round."""
    continued = "$skiptoken" in params or "$deltatoken" in params
    done = tokens.round(params, f"{calendar.ids.address}/calendarView", calendar.epoch, calendar.sequence,
                        {} if continued else _window(params))  # fmt: skip
    lo, hi = done.query["window"]

    def inside(event: Event) -> bool:
        return not event.deleted and event.start_ms < hi and event.end_ms > lo

    order: list[tuple[Key, Any]]
    if done.since is None:
        order = sorted(([e.start_ms, e.seq], e) for e in calendar.events.values() if inside(e))
    else:
        since = done.since
        order = sorted(([e.changed, e.seq], e) for e in calendar.events.values() if since < e.changed <= done.upto)
    size = page_size(prefs, done.query)
    chosen, more = page_after(order, done.cursor, size)
    rows = [event_resource(calendar, e) if inside(e) else removed(EVENT, calendar.ids.event(e.seq)) for _, e in chosen]
    body = envelope(tokens, done, rows, chosen[-1][0] if more else None, f"{METADATA}#Collection(event)", link_base)
    return body, preference_applied(prefs, size)
