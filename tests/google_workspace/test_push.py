"""Google pushes: an email sent from the CRM, a reply that threads with the message it answers, a resend that
never sends twice, and a meeting booked, moved and cancelled with its invitees."""

from __future__ import annotations

import email
from email import policy
from typing import Any

import pytest
from dagster import DagsterInstance
from fastapi.testclient import TestClient

from providers.google_workspace.push import event_id_for
from providers.google_workspace.sandbox_credentials import DEMO_MAILBOX
from providers.kit.pushes import message_id_for
from tests.google_workspace.conftest import DRIVER, SLUG, Google, by_id, sync
from tests.helpers import bearer
from vrtx_pipelines.config import Settings

pytestmark = pytest.mark.dagster
push, drain = DRIVER.push, DRIVER.drain


def done(api: TestClient, token: str, push_id: int, instance: DagsterInstance) -> dict[str, Any]:
    drain(instance)
    answer = api.get(f"/api/v1/integrations/{SLUG}/push/{push_id}", headers=bearer(token)).json()
    assert answer["status"] == "done", answer
    found: dict[str, Any] = answer
    return found


def test_a_reply_sent_from_the_crm_threads_with_the_message_it_answers_in_gmail(
    api: TestClient, settings: Settings, google: Google, instance: DagsterInstance, connected: str
) -> None:
    sync(settings, instance, ["messages"])
    inbound = next(r for r in by_id(api, connected, "messages").values() if r["data"]["direction"] == "inbound")
    reply = {"id": "crm-reply-1", "to": [inbound["data"]["sender"]], "body_text": "Thanks, agreed.",
             "reply_to": inbound["external_id"]}  # fmt: skip

    sent = done(api, connected, push(api, connected, "message", "create", reply, "reply-1"), instance)

    box = google.sandbox.mailbox(DEMO_MAILBOX)
    message = box.get(sent["external_id"])
    assert message is not None and message.thread_id == inbound["data"]["thread_id"] and "SENT" in message.labels
    mail = email.message_from_bytes(message.mime, policy=policy.default)
    assert mail["In-Reply-To"] == inbound["data"]["message_id"]
    assert inbound["data"]["message_id"] in str(mail["References"])
    assert str(mail["Subject"]).startswith("Re: ") and mail["From"].addresses[0].addr_spec == DEMO_MAILBOX
    assert mail.get_body(("plain",)).get_content().strip() == "Thanks, agreed."  # type: ignore[union-attr]
    record = by_id(api, connected, "messages")[sent["external_id"]]["data"]  # readable at once, before a pull
    assert record["direction"] == "outbound" and record["thread_id"] == inbound["data"]["thread_id"]


def test_a_send_resent_after_a_lost_answer_is_found_by_its_message_id_and_not_sent_twice(
    api: TestClient, settings: Settings, google: Google, instance: DagsterInstance, connected: str
) -> None:
    before = google.sandbox.count(DEMO_MAILBOX, "messages")
    google.knobs.lose_write_responses = 1  # Gmail sends it, the answer never arrives: the push is retried
    data = {"id": "crm-email-9", "to": [{"address": "ada@example.com"}], "subject": "Quote", "body_text": "Here."}
    push_id = push(api, connected, "message", "create", data, "lost-1")
    for _ in range(3):
        drain(instance)
    sent = done(api, connected, push_id, instance)
    assert google.sandbox.count(DEMO_MAILBOX, "messages") == before + 1
    message = google.sandbox.mailbox(DEMO_MAILBOX).get(sent["external_id"])
    assert message is not None
    mail = email.message_from_bytes(message.mime, policy=policy.default)
    # The core's key for this push at the provider, which every attempt shares, names the message.
    assert str(mail["Message-ID"]).startswith("<vrtx-") and str(mail["Message-ID"]).endswith("@vrtx-demo.example>")


def test_a_meeting_is_booked_with_invitations_moved_and_cancelled(
    api: TestClient, settings: Settings, google: Google, instance: DagsterInstance, connected: str
) -> None:
    meeting = {"id": "crm-meeting-7", "title": "Contract review", "location": "Video call",
               "start": {"at": "2026-12-15T09:00:00+00:00", "time_zone": "Europe/London"},
               "end": {"at": "2026-12-15T09:45:00+00:00", "time_zone": "Europe/London"},
               "attendees": [{"address": "olivia.smith@northwind.example", "name": "Olivia Smith"}]}  # fmt: skip
    booked = done(api, connected, push(api, connected, "event", "create", meeting, "book-7"), instance)
    calendar_id, _, event_id = booked["external_id"].partition(":")
    assert calendar_id == "primary" and event_id.startswith("crm")  # an id derived from the push's key
    calendar = google.sandbox.calendar(DEMO_MAILBOX)
    event = calendar.events[event_id]
    assert event["attendees"][0]["email"] == "olivia.smith@northwind.example"
    assert event["start"] == {"dateTime": "2026-12-15T09:00:00+00:00", "timeZone": "Europe/London"}

    moved = {**meeting, "start": {"at": "2026-12-16T09:00:00+00:00"}, "end": {"at": "2026-12-16T09:45:00+00:00"}}
    done(api, connected, push(api, connected, "event", "update", moved, "move-7"), instance)
    assert calendar.events[event_id]["start"]["dateTime"] == "2026-12-16T09:00:00+00:00"
    done(api, connected, push(api, connected, "event", "cancel", {"id": "crm-meeting-7"}, "cancel-7"), instance)
    assert calendar.events[event_id]["status"] == "cancelled"
    sync(settings, instance, ["events"])
    assert by_id(api, connected, "events")[booked["external_id"]]["deleted"] is True


def test_the_ids_a_push_derives_are_stable_and_what_google_accepts() -> None:
    assert (
        message_id_for("k1", DEMO_MAILBOX) == message_id_for("k1", DEMO_MAILBOX) != message_id_for("k2", DEMO_MAILBOX)
    )
    event_id = event_id_for("k1")
    assert event_id == event_id_for("k1") and 5 <= len(event_id) <= 1024
    assert set(event_id) <= set("0123456789abcdefghijklmnopqrstuv")  # Calendar's base32hex ids
