"""Graph's calendar writes over a user's primary calendar: events created (``POST /me/events``), read and updated
(``GET``/``PATCH /me/events/{id}``), cancelled by their organiser (``POST .../cancel``) and deleted.

https://learn.microsoft.com/en-us/graph/api/user-post-events, .../event-update, .../event-cancel, .../event-delete;
properties: https://learn.microsoft.com/en-us/graph/api/resources/event. ``start``/``end`` are wall-clock
``dateTime`` in ``timeZone`` (IANA or the common Windows names); answers are in UTC (the sandbox's calendarView
deviation). ``transactionId`` is the client's key "to avoid redundant POST operations in case of client retries":
a create repeating a live event's transactionId makes nothing and answers that event (201), and the id cannot be
changed later. Cancel (organiser only; the sandbox's user organises every event) moves the event to Deleted Items:
gone from the calendar (a GET answers 404) and ``@removed`` in calendarView delta, as a delete.

Deviations: attendees get no mail; a recurring event is stored as its series master only (no occurrences).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from providers.microsoft365.sandbox.calendar import Calendar, Event, event_resource
from providers.microsoft365.sandbox.delta import Body
from providers.microsoft365.sandbox.drafts import parameter
from providers.microsoft365.sandbox.errors import GraphError
from providers.microsoft365.sandbox.ids import well_formed
from providers.microsoft365.sandbox.mail import MALFORMED, METADATA, NOT_FOUND

WRITABLE = frozenset({
    "subject", "body", "start", "end", "location", "attendees", "isOnlineMeeting", "recurrence", "transactionId",
    "showAs", "isAllDay", "importance", "sensitivity", "categories", "isReminderOn", "reminderMinutesBeforeStart",
    "allowNewTimeProposals", "responseRequested", "onlineMeetingProvider",
})  # fmt: skip
WINDOWS_ZONES = {  # the Windows names clients send most (https://learn.microsoft.com/en-us/graph/api/resources/datetimetimezone)
    "GMT Standard Time": "Europe/London", "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris", "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago", "Pacific Standard Time": "America/Los_Angeles",
    "AUS Eastern Standard Time": "Australia/Sydney", "Tokyo Standard Time": "Asia/Tokyo",
}  # fmt: skip
PATTERNS = frozenset({"daily", "weekly", "absoluteMonthly", "relativeMonthly", "absoluteYearly", "relativeYearly"})
RANGES = frozenset({"endDate", "noEnd", "numbered"})
SHOW_AS = frozenset({"free", "tentative", "busy", "oof", "workingElsewhere", "unknown"})


def _bad(text: str, code: str = "ErrorInvalidRequest") -> GraphError:
    return GraphError(400, code, text)


def _fields(body: Any) -> dict[str, Any]:
    if not isinstance(body, Mapping):
        raise GraphError(400, "RequestBodyRead", "Cannot read the request body: a JSON object is expected.")
    for name in body:
        if not name.startswith("@odata.") and name not in WRITABLE:
            raise GraphError(400, "RequestBodyRead", f"The property '{name}' does not exist on type "
                             "'Microsoft.OutlookServices.Event'. Make sure to only use property names that are "
                             "defined by the type or mark the type as open type.")  # fmt: skip
    return dict(body)


def _instant(value: Any, name: str) -> tuple[int, str, bool]:
    """A ``dateTimeTimeZone`` as (UTC ms, its zone as written, whether it is a midnight)."""
    if not isinstance(value, Mapping) or not isinstance(value.get("dateTime"), str):
        raise _bad(f"The '{name}' property needs a dateTime and a timeZone.")
    zone_name = str(value.get("timeZone") or "UTC")
    try:
        zone = UTC if zone_name.upper() in ("UTC", "ETC/UTC") else ZoneInfo(WINDOWS_ZONES.get(zone_name, zone_name))
    except (ZoneInfoNotFoundError, ValueError):
        raise _bad(f"A valid TimeZone value must be specified. The following TimeZone value is not supported: "
                   f"'{zone_name}'.", "TimeZoneNotSupportedException") from None  # fmt: skip
    try:
        local = datetime.fromisoformat(value["dateTime"][:26].rstrip("Z"))
    except ValueError:
        raise _bad(f"Cannot convert the literal '{value['dateTime']}' to the expected type 'Edm.DateTime'.",
                   "RequestBodyRead") from None  # fmt: skip
    moment = local.replace(tzinfo=zone) if local.tzinfo is None else local
    midnight = (local.hour, local.minute, local.second, local.microsecond) == (0, 0, 0, 0)
    return int(moment.timestamp() * 1000), zone_name, midnight


def _attendees(values: Any) -> tuple[tuple[tuple[str, str, str], ...], frozenset[str]]:
    if not isinstance(values, list):
        raise _bad("The 'attendees' property must be a collection.")
    people, optional = [], set()
    for value in values:
        address = value.get("emailAddress") if isinstance(value, Mapping) else None
        if not isinstance(address, Mapping) or not isinstance(address.get("address"), str):
            raise _bad("Each attendee needs an emailAddress with an address.")
        kind = str(value.get("type") or "required")
        if kind not in ("required", "optional", "resource"):
            raise _bad(f"The attendee type '{kind}' is not valid.", "RequestBodyRead")
        people.append((str(address.get("name") or address["address"]), address["address"], "none"))
        if kind == "optional":
            optional.add(address["address"].lower())
    return tuple(people), frozenset(optional)


def _recurrence(value: Any) -> Body | None:
    if value is None:
        return None
    pattern = value.get("pattern") if isinstance(value, Mapping) else None
    span = value.get("range") if isinstance(value, Mapping) else None
    if not isinstance(pattern, Mapping) or pattern.get("type") not in PATTERNS:
        raise _bad("The recurrence pattern's type is not valid.")
    if not isinstance(span, Mapping) or span.get("type") not in RANGES or not span.get("startDate"):
        raise _bad("The recurrence range needs a type and a startDate.")
    if int(pattern.get("interval") or 0) < 1:
        raise _bad("The recurrence pattern's interval must be at least 1.")
    return {"pattern": dict(pattern), "range": dict(span)}


def apply(event: Event, fields: Mapping[str, Any]) -> Event:
    """``event`` with the written ``fields``, checked as Graph checks them."""
    changed = replace(event)
    if "subject" in fields:
        changed.subject = str(fields["subject"] or "")
    if "body" in fields:
        body = fields["body"] if isinstance(fields["body"], Mapping) else {}
        kind = str(body.get("contentType") or "text").lower()
        if kind not in ("text", "html"):
            raise _bad("The body's contentType must be text or html.")
        changed.body = (kind, str(body.get("content") or ""))
    if "location" in fields:
        location = fields["location"] if isinstance(fields["location"], Mapping) else {}
        changed.location = str(location.get("displayName") or "")
    if "attendees" in fields:
        changed.attendees, changed.optional = _attendees(fields["attendees"])
    if "isOnlineMeeting" in fields:
        changed.online = bool(fields["isOnlineMeeting"])
    if "isAllDay" in fields:
        changed.all_day = bool(fields["isAllDay"])
    if "showAs" in fields:
        if fields["showAs"] not in SHOW_AS:
            raise _bad(f"The showAs value '{fields['showAs']}' is not valid.", "RequestBodyRead")
        changed.show_as = str(fields["showAs"])
    if "recurrence" in fields:
        changed.recurrence = _recurrence(fields["recurrence"])
    midnights = True
    for name in ("start", "end"):
        if name in fields:
            at, zone, midnight = _instant(fields[name], name)
            midnights = midnights and midnight
            if name == "start":
                changed.start_ms, changed.time_zone = at, zone
            else:
                changed.end_ms = at
    if changed.end_ms < changed.start_ms:
        raise _bad("The end date occurs before the start date.", "ErrorCalendarEndDateIsEarlierThanStartDate")
    if changed.all_day and not midnights:
        raise _bad("The start and end of an all-day event must be at midnight.", "ErrorPropertyValidationFailure")
    return changed


def _answer(calendar: Calendar, user_id: str, event: Event) -> Body:
    context = f"{METADATA}#users('{user_id}')/events/$entity"
    resource = event_resource(calendar, event)
    resource.pop("@odata.type", None)
    return {"@odata.context": context} | resource


def create(calendar: Calendar, user_id: str, body: Any, now_ms: int) -> Body:
    """``POST /me/events``: a new event, or the live one an earlier POST made with the same ``transactionId``."""
    fields = _fields(body)
    transaction = fields.get("transactionId")
    if transaction is not None:
        for event in calendar.live():
            if event.transaction_id == str(transaction):
                return _answer(calendar, user_id, event)
    if "start" not in fields or "end" not in fields:
        raise _bad("The event's start and end are required.")
    blank = Event(len(calendar.events) + 1, "", now_ms, now_ms, False, "", False, (), now_ms, now_ms,
                  transaction_id=str(transaction) if transaction is not None else None)  # fmt: skip
    return _answer(calendar, user_id, calendar.add(apply(blank, fields)))


def find(calendar: Calendar, event_id: str) -> Event:
    try:
        return calendar.find(event_id)
    except KeyError:
        raise NOT_FOUND if well_formed(event_id) else MALFORMED from None


def get(calendar: Calendar, user_id: str, event_id: str) -> Body:
    return _answer(calendar, user_id, find(calendar, event_id))


def update(calendar: Calendar, user_id: str, event_id: str, body: Any, now_ms: int) -> Body:
    """``PATCH /me/events/{id}``: the written properties changed; the transactionId stays as created."""
    event, fields = find(calendar, event_id), _fields(body)
    if "transactionId" in fields and fields["transactionId"] != event.transaction_id:
        raise _bad("The transactionId of an event cannot be changed.")
    changed = apply(event, fields)
    calendar.events[event.seq] = changed
    return _answer(calendar, user_id, calendar.changed(changed, now_ms))


def cancel(calendar: Calendar, event_id: str, body: Any, now_ms: int) -> None:
    """``POST /me/events/{id}/cancel`` (``{"comment"}``, optional): cancelled, out of the calendar."""
    event = find(calendar, event_id)
    comment = parameter(body, "comment")
    if body is not None and (not isinstance(body, Mapping) or not isinstance(comment, str | None)):
        raise _bad("The cancel action takes an optional comment (a string).")
    event.deleted = True
    calendar.changed(event, now_ms)


def delete(calendar: Calendar, event_id: str, now_ms: int) -> None:
    event = find(calendar, event_id)
    event.deleted = True
    calendar.changed(event, now_ms)
