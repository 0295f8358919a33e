"""Microsoft 365 pushes: an email sent from the CRM, a reply that threads in Outlook, a resend after lost answers
that sends nothing twice, Graph's refusal as a failed push in its words, and a meeting booked once, moved and
cancelled; the next pull reads the pushed records back as no change."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from dagster import DagsterInstance
from fastapi.testclient import TestClient

from providers.microsoft365.meetings import patterned, transaction_id_for
from providers.microsoft365.sandbox.mailbox import Content
from providers.microsoft365.sandbox_credentials import DEMO_MAILBOX
from tests.helpers import bearer
from tests.microsoft365.conftest import DRIVER, SLUG, Microsoft, by_id, records, sync
from vrtx_pipelines.config import Settings

pytestmark = pytest.mark.dagster
push, drain = DRIVER.push, DRIVER.drain
BOX = DEMO_MAILBOX.lower()
MEETING = {"id": "crm-meeting-7", "title": "Contract review", "location": "Video call",
           "start": {"at": "2026-12-15T09:00:00+00:00", "time_zone": "Europe/London"},
           "end": {"at": "2026-12-15T09:45:00+00:00", "time_zone": "Europe/London"},
           "attendees": [{"address": "olivia.smith@northwind.example", "name": "Olivia Smith"}]}  # fmt: skip


def state(api: TestClient, token: str, push_id: int, instance: DagsterInstance) -> dict[str, Any]:
    drain(instance)
    found: dict[str, Any] = api.get(f"/api/v1/integrations/{SLUG}/push/{push_id}", headers=bearer(token)).json()
    return found


def done(api: TestClient, token: str, push_id: int, instance: DagsterInstance) -> dict[str, Any]:
    found = state(api, token, push_id, instance)
    assert found["status"] == "done", found
    return found


def retried(api: TestClient, token: str, push_id: int, instance: DagsterInstance) -> dict[str, Any]:
    """The push once its retries (2 s, then 4 s apart: the core's backoff) have run, polled with a deadline."""
    deadline = time.monotonic() + 30
    while (found := state(api, token, push_id, instance))["status"] != "done" and time.monotonic() < deadline:
        assert found["status"] in ("pending", "running", "retrying"), found
    assert found["status"] == "done", found
    return found


def content(microsoft: Microsoft, graph_id: str) -> tuple[str, Content]:
    """The folder a message is in and what it says, as the sandbox holds it."""
    box = microsoft.sandbox.mailbox(BOX)
    found = box.ids.message_seq(graph_id)
    item = box.item(found[0]) if found else None
    assert item is not None, graph_id
    return item.folder, box.content(item)


def in_folder(microsoft: Microsoft, folder: str) -> int:
    return len(microsoft.sandbox.mailbox(BOX).listing(folder))


def test_a_reply_sent_from_the_crm_threads_with_the_message_it_answers_in_outlook(
    api: TestClient, settings: Settings, microsoft: Microsoft, instance: DagsterInstance, connected: str
) -> None:
    sync(settings, instance, ["messages"])
    inbound = next(r for r in by_id(api, connected, "messages").values() if r["data"]["direction"] == "inbound")
    reply = {"id": "crm-reply-1", "to": [inbound["data"]["sender"]], "body_text": "Thanks, agreed.",
             "reply_to": inbound["external_id"]}  # fmt: skip

    sent = done(api, connected, push(api, connected, "message", "create", reply, "reply-1"), instance)

    folder, message = content(microsoft, sent["external_id"])
    box = microsoft.sandbox.mailbox(BOX)
    assert folder == "sentitems" and not message.is_draft
    assert box.ids.conversation(message.thread) == inbound["data"]["thread_id"]
    assert message.references[-1] == inbound["data"]["message_id"]  # In-Reply-To, and the end of References
    assert message.subject.lower().startswith("re: ") and message.body == ("text", "Thanks, agreed.")
    assert message.message_id.startswith("<vrtx-")  # derived from the push's key (message_id_for)
    record = by_id(api, connected, "messages")[sent["external_id"]]["data"]  # readable at once, before a pull
    assert record["direction"] == "outbound" and record["thread_id"] == inbound["data"]["thread_id"]


def test_a_send_resent_after_lost_answers_is_found_by_its_message_id_and_not_sent_twice(
    api: TestClient, settings: Settings, microsoft: Microsoft, instance: DagsterInstance, connected: str
) -> None:
    sent_before, drafts_before = in_folder(microsoft, "sentitems"), in_folder(microsoft, "drafts")
    # Graph makes the draft and the answer is lost; the retry finds the draft, sends it, and that answer is lost
    # too; the next retry finds the message sent.
    microsoft.knobs.lose_write_responses = 2
    data = {"id": "crm-email-9", "to": [{"address": "ada@example.com"}], "subject": "Quote", "body_text": "Here."}
    sent = retried(api, connected, push(api, connected, "message", "create", data, "lost-1"), instance)
    assert in_folder(microsoft, "sentitems") == sent_before + 1 and in_folder(microsoft, "drafts") == drafts_before
    folder, message = content(microsoft, sent["external_id"])
    # The core's key for this push at the provider, which every attempt shares, names the message.
    assert folder == "sentitems" and message.message_id.startswith("<vrtx-")
    assert message.message_id.endswith(f"@{DEMO_MAILBOX.rpartition('@')[2]}>")


def test_graphs_refusal_is_a_failed_push_in_its_words_and_a_reply_to_a_stranger_is_refused_clearly(
    api: TestClient, settings: Settings, microsoft: Microsoft, instance: DagsterInstance, connected: str
) -> None:
    sent_before = in_folder(microsoft, "sentitems")
    bad = {"id": "crm-email-2", "to": [{"address": "not-an-address"}], "subject": "Hi", "body_text": "Hello."}
    failed = state(api, connected, push(api, connected, "message", "create", bad, "bad-1"), instance)
    assert failed["status"] == "failed" and failed["provider_status"] == 400, failed
    assert "not-an-address" in failed["error"] and "not resolved" in failed["error"]
    stranger = {"id": "crm-email-3", "to": [{"address": "ada@example.com"}], "body_text": "Re.",
                "reply_to": "AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0AAAAAAAAAAAAAAAAAAAAAAA=="}  # fmt: skip
    refused = state(api, connected, push(api, connected, "message", "create", stranger, "stray-1"), instance)
    assert refused["status"] == "failed" and "is not in the mailbox" in refused["error"], refused
    assert in_folder(microsoft, "sentitems") == sent_before


def test_a_meeting_is_booked_once_though_its_answer_is_lost_moved_and_cancelled(
    api: TestClient, settings: Settings, microsoft: Microsoft, instance: DagsterInstance, connected: str
) -> None:
    calendar = microsoft.sandbox.calendars[BOX]
    live = len(calendar.live())
    microsoft.knobs.lose_write_responses = 1  # Graph books it, the answer never arrives: the push is retried
    booked = retried(api, connected, push(api, connected, "event", "create", MEETING, "book-7"), instance)
    assert len(calendar.live()) == live + 1  # the retry's POST carried the same transactionId
    event = calendar.find(booked["external_id"])
    assert event.transaction_id and uuid.UUID(event.transaction_id).version == 5  # derived from the push's key
    assert event.time_zone == "Europe/London"
    assert [(a[1], a[0]) for a in event.attendees] == [("olivia.smith@northwind.example", "Olivia Smith")]
    assert event.location == "Video call" and event.start_ms == 1_797_325_200_000  # 09:00 UTC

    moved = {**MEETING, "start": {"at": "2026-12-16T09:00:00+00:00"}, "end": {"at": "2026-12-16T09:45:00+00:00"}}
    done(api, connected, push(api, connected, "event", "update", moved, "move-7"), instance)
    assert calendar.find(booked["external_id"]).start_ms == 1_797_325_200_000 + 86_400_000
    cancelled = done(api, connected, push(api, connected, "event", "cancel", {"id": "crm-meeting-7"}, "cancel-7"),
                     instance)  # fmt: skip
    assert cancelled["external_id"] == booked["external_id"] and len(calendar.live()) == live
    sync(settings, instance, ["events"])
    assert by_id(api, connected, "events")[booked["external_id"]]["deleted"] is True


def test_the_next_pull_reads_the_pushed_message_and_meeting_back_as_no_change(
    api: TestClient, settings: Settings, microsoft: Microsoft, instance: DagsterInstance, connected: str
) -> None:
    sync(settings, instance, ["messages", "events"])
    data = {"id": "crm-email-5", "to": [{"address": "ada@example.com"}], "subject": "Agenda", "body_text": "See you."}
    sent = done(api, connected, push(api, connected, "message", "create", data, "echo-mail"), instance)
    booked = done(api, connected, push(api, connected, "event", "create", MEETING, "echo-meeting"), instance)
    cursors = {entity: records(api, connected, entity)["next_cursor"] for entity in ("messages", "events")}

    loaded = sync(settings, instance, ["messages", "events"])

    assert loaded["messages"]["rows_loaded"] >= 1 and loaded["events"]["rows_loaded"] >= 1  # Graph named them
    for entity, external_id in (("messages", sent["external_id"]), ("events", booked["external_id"])):
        changed = [r["external_id"] for r in records(api, connected, entity, cursors[entity])["records"]]
        assert external_id not in changed, entity


def test_the_transaction_id_a_push_derives_is_stable_per_key() -> None:
    assert transaction_id_for("k1") == transaction_id_for("k1") != transaction_id_for("k2")
    assert uuid.UUID(transaction_id_for("k1")).version == 5


def test_rrules_become_graphs_patterned_recurrence() -> None:
    from datetime import date

    start = date(2026, 12, 14)  # a Monday
    assert patterned(["RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE;COUNT=6"], start) == {
        "pattern": {"interval": 2, "type": "weekly", "daysOfWeek": ["monday", "wednesday"]},
        "range": {"type": "numbered", "startDate": "2026-12-14", "numberOfOccurrences": 6},
    }
    assert patterned(["RRULE:FREQ=MONTHLY;BYDAY=-1FR;UNTIL=20270630T000000Z"], start) == {
        "pattern": {"interval": 1, "type": "relativeMonthly", "daysOfWeek": ["friday"], "index": "last"},
        "range": {"type": "endDate", "startDate": "2026-12-14", "endDate": "2027-06-30"},
    }
    assert patterned(["RRULE:FREQ=WEEKLY"], start)["pattern"]["daysOfWeek"] == ["monday"]  # type: ignore[index]
