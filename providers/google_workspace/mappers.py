"""Google rows (``source``) -> canonical EmailMessage and CalendarEvent."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from email.utils import getaddresses
from typing import Any, Literal

from vrtx_pipelines.records.addresses import address_key
from vrtx_pipelines.records.canonical import (
    ACTIVITY_MODELS,
    Attachment,
    Attendee,
    CalendarEvent,
    CanonicalModel,
    Deleted,
    EmailMessage,
    EventTime,
    Participant,
)

Response = Literal["needs_action", "accepted", "declined", "tentative"]
RESPONSES: dict[str, Response] = {
    "needsAction": "needs_action", "accepted": "accepted", "declined": "declined", "tentative": "tentative",
}  # fmt: skip
STATUSES: dict[str, Literal["confirmed", "tentative", "cancelled"]] = {
    "confirmed": "confirmed", "tentative": "tentative", "cancelled": "cancelled",
}  # fmt: skip


def participants(header: Any) -> list[Participant]:
    found = []
    for name, address in getaddresses([str(header)] if header else []):
        if address_key(address) is not None:
            found.append(Participant(address=address, name=name or None))
    return found


def _stamp(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


def to_message(row: Mapping[str, Any]) -> CanonicalModel:
    if row.get("deleted"):
        return Deleted(external_id=str(row["id"]))
    mailbox = str(row.get("mailbox") or "")
    senders = participants(row.get("from"))
    labels = [str(label) for label in row.get("label_ids") or []]
    sender = senders[0] if senders else None
    outbound = "SENT" in labels or (sender is not None and address_key(sender.address) == address_key(mailbox))
    return EmailMessage(
        external_id=str(row["id"]),
        updated_at=_stamp(row.get("internal_date")),
        version=str(row.get("history_id") or "") or None,
        mailbox=mailbox,
        thread_id=row.get("thread_id"),
        message_id=row.get("message_id"),
        in_reply_to=row.get("in_reply_to"),
        sender=sender,
        to=participants(row.get("to")),
        cc=participants(row.get("cc")),
        bcc=participants(row.get("bcc")),
        subject=str(row.get("subject") or ""),
        sent_at=_stamp(row.get("internal_date")),
        direction="outbound" if outbound else "inbound",
        snippet=str(row.get("snippet") or ""),
        labels=labels,
        body_text=row.get("body_text"),  # sealed values (source.bodies): the records API opens them for the tenant
        body_html=row.get("body_html"),
        attachments=[Attachment(**item) for item in row.get("attachments") or []],
    )


def _time(value: Any) -> EventTime:
    when = value if isinstance(value, Mapping) else {}
    if when.get("date"):
        return EventTime(day=date.fromisoformat(str(when["date"])))
    return EventTime(at=_stamp(when.get("dateTime")), time_zone=when.get("timeZone"))


def _person(value: Any) -> Participant | None:
    if not isinstance(value, Mapping) or address_key(str(value.get("email", ""))) is None:
        return None
    return Participant(address=str(value["email"]), name=value.get("displayName"))


def to_event(row: Mapping[str, Any]) -> CanonicalModel:
    if row.get("deleted"):
        return Deleted(external_id=str(row["id"]))
    attendees = [
        Attendee(
            address=str(item["email"]), name=item.get("displayName"),
            response_status=RESPONSES.get(str(item.get("responseStatus")), "needs_action"),
            organizer=bool(item.get("organizer")), optional=bool(item.get("optional")),
        )
        for item in row.get("attendees") or []
        if isinstance(item, Mapping) and address_key(str(item.get("email", ""))) is not None
    ]  # fmt: skip
    return CalendarEvent(
        external_id=str(row["id"]),
        updated_at=_stamp(row.get("updated")),
        calendar_id=str(row.get("calendar_id") or "primary"),
        title=str(row.get("summary") or ""),
        description=row.get("description"),
        location=row.get("location"),
        organizer=_person(row.get("organizer")),
        attendees=attendees,
        start=_time(row.get("start")),
        end=_time(row.get("end")),
        status=STATUSES.get(str(row.get("status")), "confirmed"),
        conference_url=row.get("conference_url"),
        html_link=row.get("html_link"),
        recurrence=[str(rule) for rule in row.get("recurrence") or []],
        recurring_event_id=row.get("recurring_event_id"),
        ical_uid=row.get("ical_uid"),
    )


MAPPERS: dict[str, Callable[[Mapping[str, Any]], CanonicalModel]] = {"messages": to_message, "events": to_event}
MODELS = ACTIVITY_MODELS
