"""Microsoft 365 rows (``source``) -> canonical EmailMessage and CalendarEvent."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from providers.kit.values import timestamp
from vrtx_pipelines.records.addresses import address_key
from vrtx_pipelines.records.canonical import (
    ACTIVITY_MODELS,
    Attendee,
    CalendarEvent,
    CanonicalModel,
    Deleted,
    EmailMessage,
    EventTime,
    Participant,
)

Response = Literal["needs_action", "accepted", "declined", "tentative"]
# https://learn.microsoft.com/en-us/graph/api/resources/responsestatus: the organiser's own answer is "organizer".
RESPONSES: dict[str, Response] = {
    "none": "needs_action", "notResponded": "needs_action", "organizer": "accepted", "accepted": "accepted",
    "tentativelyAccepted": "tentative", "declined": "declined",
}  # fmt: skip
DAYS = {"sunday": "SU", "monday": "MO", "tuesday": "TU", "wednesday": "WE", "thursday": "TH", "friday": "FR",
        "saturday": "SA"}  # fmt: skip
WEEK_INDEX = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
FREQUENCIES = {"daily": "DAILY", "weekly": "WEEKLY", "absoluteMonthly": "MONTHLY", "relativeMonthly": "MONTHLY",
               "absoluteYearly": "YEARLY", "relativeYearly": "YEARLY"}  # fmt: skip


def _person(value: Any) -> Participant | None:
    if not isinstance(value, Mapping) or address_key(str(value.get("address") or "")) is None:
        return None
    return Participant(address=str(value["address"]), name=value.get("name") or None)


def _people(values: Any) -> list[Participant]:
    return [found for found in (_person(value) for value in values or []) if found is not None]


def to_message(row: Mapping[str, Any]) -> CanonicalModel:
    if row.get("deleted"):
        return Deleted(external_id=str(row["id"]))
    mailbox = str(row.get("mailbox") or "")
    sender = _person(row.get("from")) or _person(row.get("sender"))
    folder = str(row.get("folder") or "")
    outbound = folder == "sentitems" or (sender is not None and address_key(sender.address) == address_key(mailbox))
    return EmailMessage(
        external_id=str(row["id"]),
        updated_at=timestamp(row.get("last_modified_at")),
        version=row.get("change_key") or None,
        mailbox=mailbox,
        thread_id=row.get("conversation_id"),
        message_id=row.get("internet_message_id"),
        sender=sender,
        to=_people(row.get("to")),
        cc=_people(row.get("cc")),
        bcc=_people(row.get("bcc")),
        subject=str(row.get("subject") or ""),
        sent_at=timestamp(row.get("sent_at")) or timestamp(row.get("received_at")),
        direction="outbound" if outbound else "inbound",
        snippet=str(row.get("body_preview") or ""),
        labels=[label for label in (folder, *(row.get("categories") or [])) if label],
        body_text=row.get("body_text"),  # sealed values (source.message_row): the records API opens them
        body_html=row.get("body_html"),
    )


def _time(value: Any, zone: Any, all_day: bool) -> EventTime:
    """Graph's ``dateTimeTimeZone``, asked for in UTC (``Prefer: outlook.timezone``); an all-day event's days."""
    when = value if isinstance(value, Mapping) else {}
    at = timestamp(when.get("dateTime"))
    if all_day and at is not None:
        return EventTime(day=at.date())
    return EventTime(at=at, time_zone=str(zone)[:100] if zone else when.get("timeZone"))


def rrule(recurrence: Any) -> list[str]:
    """Graph's ``patternedRecurrence`` as an iCalendar RRULE (RFC 5545), the canonical form."""
    if not isinstance(recurrence, Mapping):
        return []
    pattern, span = recurrence.get("pattern"), recurrence.get("range") or {}
    if not isinstance(pattern, Mapping) or pattern.get("type") not in FREQUENCIES:
        return []
    kind = str(pattern["type"])
    parts = [f"FREQ={FREQUENCIES[kind]}", f"INTERVAL={int(pattern.get('interval') or 1)}"]
    days = [DAYS[d] for d in pattern.get("daysOfWeek") or [] if d in DAYS]
    if kind.startswith("relative") and days:
        index = WEEK_INDEX.get(str(pattern.get("index") or "first"), 1)
        parts.append("BYDAY=" + ",".join(f"{index}{day}" for day in days))
    elif kind == "weekly" and days:
        parts.append("BYDAY=" + ",".join(days))
    if kind.endswith("Yearly") and pattern.get("month"):
        parts.append(f"BYMONTH={int(pattern['month'])}")
    if kind.startswith("absolute") and pattern.get("dayOfMonth"):
        parts.append(f"BYMONTHDAY={int(pattern['dayOfMonth'])}")
    if span.get("type") == "endDate" and span.get("endDate"):
        parts.append("UNTIL=" + str(span["endDate"]).replace("-", ""))
    elif span.get("type") == "numbered" and span.get("numberOfOccurrences"):
        parts.append(f"COUNT={int(span['numberOfOccurrences'])}")
    return ["RRULE:" + ";".join(parts)]


def to_event(row: Mapping[str, Any]) -> CanonicalModel:
    if row.get("deleted"):
        return Deleted(external_id=str(row["id"]))
    organizer = _person(row.get("organizer"))
    attendees = [
        Attendee(
            address=str(item["address"]), name=item.get("name") or None,
            response_status=RESPONSES.get(str(item.get("response")), "needs_action"),
            organizer=organizer is not None and address_key(str(item["address"])) == address_key(organizer.address),
            optional=item.get("type") == "optional",
        )
        for item in row.get("attendees") or []
        if isinstance(item, Mapping) and address_key(str(item.get("address") or "")) is not None
    ]  # fmt: skip
    all_day, zone = bool(row.get("is_all_day")), row.get("original_start_time_zone")
    return CalendarEvent(
        external_id=str(row["id"]),
        updated_at=timestamp(row.get("last_modified_at")),
        version=row.get("change_key") or None,
        calendar_id="primary",
        title=str(row.get("subject") or ""),
        description=row.get("body_preview") or None,
        location=row.get("location"),
        organizer=organizer,
        attendees=attendees,
        start=_time(row.get("start"), zone, all_day),
        end=_time(row.get("end"), zone, all_day),
        status="tentative" if row.get("show_as") == "tentative" else "confirmed",
        conference_url=row.get("online_meeting_url"),
        html_link=row.get("web_link"),
        recurrence=rrule(row.get("recurrence")),
        recurring_event_id=row.get("series_master_id"),
        ical_uid=row.get("ical_uid"),
    )


MAPPERS: dict[str, Callable[[Mapping[str, Any]], CanonicalModel]] = {"messages": to_message, "events": to_event}
MODELS = ACTIVITY_MODELS
