"""Graph's shapes -> canonical records: recurrence patterns as RRULEs, all-day events as days, attendees' answers,
a message's direction from its folder and sender, and calendar windows that roll forward."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from providers.kit.governor import RateGovernor
from providers.kit.streams import ChangesExpired
from providers.microsoft365.client import GraphClient
from providers.microsoft365.mappers import rrule, to_event, to_message
from providers.microsoft365.source import STREAMS, CalendarWindow, event_row, message_row, message_select
from vrtx_pipelines.records.canonical import CalendarEvent, Deleted, EmailMessage

MAILBOX = "jordan.lee@vrtx-demo.example"


def client(settings: dict[str, Any] | None = None) -> GraphClient:
    return GraphClient(httpx.Client(), base_url="https://graph.microsoft.com/v1.0", governor=RateGovernor(),
                       tenant_id=MAILBOX, settings=settings or {})  # fmt: skip


@pytest.mark.parametrize(
    ("recurrence", "expected"),
    [
        ({"pattern": {"type": "daily", "interval": 2}, "range": {"type": "noEnd"}}, "FREQ=DAILY;INTERVAL=2"),
        ({"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "thursday"]},
          "range": {"type": "endDate", "endDate": "2027-03-31"}}, "FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,TH;UNTIL=20270331"),
        ({"pattern": {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 15},
          "range": {"type": "numbered", "numberOfOccurrences": 6}}, "FREQ=MONTHLY;INTERVAL=1;BYMONTHDAY=15;COUNT=6"),
        ({"pattern": {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["friday"], "index": "last"},
          "range": {"type": "noEnd"}}, "FREQ=MONTHLY;INTERVAL=1;BYDAY=-1FR"),
        ({"pattern": {"type": "absoluteYearly", "interval": 1, "month": 7, "dayOfMonth": 4},
          "range": {"type": "noEnd"}}, "FREQ=YEARLY;INTERVAL=1;BYMONTH=7;BYMONTHDAY=4"),
    ],
)  # fmt: skip
def test_graph_recurrence_patterns_become_rrules(recurrence: dict[str, Any], expected: str) -> None:
    assert rrule(recurrence) == [f"RRULE:{expected}"]


def test_no_or_unknown_recurrence_is_no_rule() -> None:
    assert rrule(None) == [] and rrule({"pattern": {"type": "hourly"}}) == [] and rrule("weekly") == []


def test_an_event_maps_times_attendees_answers_and_its_meeting_link() -> None:
    row = event_row({
        "id": "AAkALgE1", "subject": "Quarterly review", "isAllDay": False, "showAs": "tentative",
        "start": {"dateTime": "2026-12-09T10:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-12-09T10:30:00.0000000", "timeZone": "UTC"},
        "originalStartTimeZone": "GMT Standard Time", "lastModifiedDateTime": "2026-12-01T08:00:00Z",
        "organizer": {"emailAddress": {"name": "Jordan Lee", "address": "Jordan.Lee@vrtx-demo.example"}},
        "attendees": [
            {"type": "required", "status": {"response": "organizer"},
             "emailAddress": {"name": "Jordan Lee", "address": "jordan.lee@vrtx-demo.example"}},
            {"type": "optional", "status": {"response": "tentativelyAccepted"},
             "emailAddress": {"name": "Ada", "address": "ada@example.com"}},
            {"type": "required", "status": {"response": "none"}, "emailAddress": {"name": "No address"}},
        ],
        "onlineMeeting": {"joinUrl": "https://teams.microsoft.com/l/meetup-join/x"},
    }, MAILBOX)  # fmt: skip
    event = to_event(row)
    assert isinstance(event, CalendarEvent)
    assert event.start.at == datetime(2026, 12, 9, 10, tzinfo=UTC) and event.start.time_zone == "GMT Standard Time"
    assert [(a.address, a.response_status, a.organizer, a.optional) for a in event.attendees] == [
        ("jordan.lee@vrtx-demo.example", "accepted", True, False),
        ("ada@example.com", "tentative", False, True),
    ]
    assert event.status == "tentative" and event.conference_url == "https://teams.microsoft.com/l/meetup-join/x"


def test_an_all_day_event_is_whole_days_and_a_cancelled_one_is_deleted() -> None:
    day = {"id": "AAkALgE2", "isAllDay": True, "start": {"dateTime": "2026-12-24T00:00:00.0000000", "timeZone":
           "UTC"}, "end": {"dateTime": "2026-12-27T00:00:00.0000000", "timeZone": "UTC"}}  # fmt: skip
    event = to_event(event_row(day, MAILBOX))
    assert isinstance(event, CalendarEvent)
    assert (event.start.day, event.end.day) == (date(2026, 12, 24), date(2026, 12, 27))
    assert isinstance(to_event(event_row({**day, "isCancelled": True}, MAILBOX)), Deleted)


def test_a_message_from_sent_items_or_the_mailbox_itself_is_outbound() -> None:
    message = {"id": "AAkALgM1", "subject": "Your quote", "conversationId": "AAQk1",
               "from": {"emailAddress": {"name": "Jordan Lee", "address": "JORDAN.LEE@vrtx-demo.example"}},
               "toRecipients": [{"emailAddress": {"name": "Ada", "address": "ada@example.com"}}],
               "sentDateTime": "2026-12-01T09:00:00Z", "categories": ["Clients"]}  # fmt: skip
    for folder in ("inbox", "sentitems"):
        mapped = to_message(message_row(message, MAILBOX, folder, client()))
        assert isinstance(mapped, EmailMessage) and mapped.direction == "outbound"
        assert mapped.labels == [folder, "Clients"] and mapped.thread_id == "AAQk1"
    inbound = {**message, "from": {"emailAddress": {"address": "ada@example.com"}}}
    assert to_message(message_row(inbound, MAILBOX, "inbox", client())).direction == "inbound"  # type: ignore[union-attr]


def test_bodies_are_neither_asked_for_nor_kept_unless_the_connection_seals_them() -> None:
    message = {"id": "AAkALgM2", "body": {"contentType": "html", "content": "<p>terms</p>"}}
    assert "body_html" not in message_row(message, MAILBOX, "inbox", client())
    sealing = client()
    sealing.seal = lambda entity, record, field, text: f"sealed:{record}:{field}"
    assert "body" not in message_select(client()).split(",") and "body" in message_select(sealing).split(",")
    assert message_row(message, MAILBOX, "inbox", sealing)["body_html"] == "sealed:AAkALgM2:body_html"


def test_a_calendar_window_running_out_is_listed_again_rolled_forward() -> None:
    (stream,) = (s for s in STREAMS if s.name == "events")
    soon = (datetime.now(UTC) + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with pytest.raises(ChangesExpired, match="rolled forward"):
        CalendarWindow().changes(client(), stream, {"link": "https://graph.microsoft.com/v1.0/x", "until": soon}, None)
    with pytest.raises(ChangesExpired, match="no calendar delta link"):
        CalendarWindow().changes(client(), stream, {"until": soon}, None)
