"""Microsoft 365's pull quirks through the real Dagster assets: delta links per folder and their ``@removed``
entries, moves between folders, an expired delta token (410), the calendar view's window, Outlook's throttling and
its four calls per mailbox, and bodies kept only sealed."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance
from fastapi.testclient import TestClient

from providers.microsoft365.sandbox_credentials import DEMO_MAILBOX
from tests.helpers import bearer
from tests.microsoft365.conftest import SLUG, Microsoft, by_id, records, sync, warehouse
from tests.provider_driver import full_sync_reason
from vrtx_pipelines.config import Settings
from vrtx_pipelines.records.sealed import PREFIX

pytestmark = pytest.mark.dagster
MAILBOX = DEMO_MAILBOX.lower()


def test_delta_links_bring_only_new_changed_and_removed_messages(
    api: TestClient, settings: Settings, microsoft: Microsoft, instance: DagsterInstance, connected: str
) -> None:
    sandbox = microsoft.sandbox
    first = sync(settings, instance, ["messages"])
    held = sandbox.count(MAILBOX, "messages")
    assert first["messages"]["rows_loaded"] == held > 0
    cursor = records(api, connected, "messages")["next_cursor"]
    new = sandbox.deliver(MAILBOX, sender="olivia.smith@northwind.example", subject="Order 42", text="A quote?")
    (read,) = sandbox.touch(MAILBOX, "messages", 1)
    listed = [key for key in by_id(api, connected, "messages") if key not in (read,)]
    gone, archived = listed[3], listed[4]
    sandbox.delete_message(MAILBOX, gone)
    sandbox.move_message(MAILBOX, archived, "archive")  # not a chosen folder: it leaves VRTX

    second = sync(settings, instance, ["messages"])

    assert second["messages"]["rows_loaded"] == 4  # from the delta links: nothing listed again
    changed = {r["external_id"]: r for r in records(api, connected, "messages", cursor)["records"]}
    assert set(changed) == {new, read, gone, archived}
    assert changed[new]["data"]["subject"] == "Order 42" and changed[new]["data"]["direction"] == "inbound"
    assert changed[new]["data"]["sender"]["address"] == "olivia.smith@northwind.example"
    assert changed[gone]["deleted"] and changed[archived]["deleted"]
    assert not changed[read]["deleted"]
    assert sync(settings, instance, ["messages"])["messages"]["rows_loaded"] == 0
    assert warehouse(settings, "SELECT COUNT(*) FROM messages")[0][0] == sandbox.count(MAILBOX, "messages")


def test_a_message_moved_between_chosen_folders_keeps_its_id_and_its_record(
    api: TestClient, settings: Settings, microsoft: Microsoft, instance: DagsterInstance, connected: str
) -> None:
    sync(settings, instance, ["messages"])
    inbound = next(k for k, r in by_id(api, connected, "messages").items() if "inbox" in r["data"]["labels"])
    microsoft.sandbox.move_message(MAILBOX, inbound, "sentitems")  # removed from inbox, arrives in sent items

    sync(settings, instance, ["messages"])

    moved = by_id(api, connected, "messages")[inbound]
    assert not moved["deleted"] and "sentitems" in moved["data"]["labels"]
    assert warehouse(settings, "SELECT COUNT(*) FROM messages")[0][0] == microsoft.sandbox.count(MAILBOX, "messages")


def test_an_expired_delta_token_lists_the_folders_again_and_the_sync_log_says_so(
    api: TestClient, settings: Settings, microsoft: Microsoft, instance: DagsterInstance, connected: str
) -> None:
    sync(settings, instance, ["messages"])
    microsoft.sandbox.deliver(MAILBOX, sender="ann@example.org", subject="Hello", text="Hi")
    microsoft.sandbox.expire_delta(MAILBOX)

    result = sync(settings, instance, ["messages"])

    held = microsoft.sandbox.count(MAILBOX, "messages")
    assert result["messages"]["rows_loaded"] == held
    sync_type, reason = full_sync_reason(settings, instance)
    assert sync_type == "full" and "no longer keeps" in reason and "410" in reason
    ids = [r["external_id"] for r in records(api, connected, "messages")["records"]]
    assert len(ids) == len(set(ids)) == held


def test_calendar_delta_brings_new_retitled_and_deleted_events(
    api: TestClient, settings: Settings, microsoft: Microsoft, instance: DagsterInstance, connected: str
) -> None:
    sandbox = microsoft.sandbox
    assert sync(settings, instance, ["events"])["events"]["rows_loaded"] == sandbox.count(MAILBOX, "events")
    cursor = records(api, connected, "events")["next_cursor"]
    (retitled,) = sandbox.touch(MAILBOX, "events", 1)
    (booked,) = sandbox.create(MAILBOX, "events", 1)
    gone = next(key for key in by_id(api, connected, "events") if key != retitled)
    sandbox.delete_event(MAILBOX, gone)

    assert sync(settings, instance, ["events"])["events"]["rows_loaded"] == 3

    changed = {r["external_id"]: r for r in records(api, connected, "events", cursor)["records"]}
    assert set(changed) == {retitled, booked, gone} and changed[gone]["deleted"]
    event = changed[booked]["data"]
    assert event["start"]["at"] and event["end"]["at"] > event["start"]["at"]


def test_throttling_is_waited_out_and_never_more_than_four_calls_are_in_flight(
    api: TestClient, settings: Settings, microsoft: Microsoft, instance: DagsterInstance, connected: str
) -> None:
    microsoft.knobs.rate_limit_next, microsoft.knobs.retry_after_s = 3, 1
    sync(settings, instance, ["messages", "events"])
    for key in list(by_id(api, connected, "messages"))[:12]:
        microsoft.sandbox.delete_message(MAILBOX, key)  # each removal is checked: one $batch, retries alone

    result = sync(settings, instance, ["messages"])

    assert microsoft.knobs.rate_limit_next == 0 and result["messages"]["rows_loaded"] == 12
    assert 0 < microsoft.sandbox.stats[MAILBOX].max_in_flight <= 4
    status = api.get(f"/api/v1/integrations/{SLUG}/status", headers=bearer(connected)).json()
    assert status["last_error"] is None


def test_kept_bodies_are_sealed_in_the_warehouse_and_plain_in_the_records_api(
    api: TestClient, settings: Settings, microsoft: Microsoft, instance: DagsterInstance, connected: str
) -> None:
    answer = api.put(
        f"/api/v1/integrations/{SLUG}/settings", json={"message_bodies": "encrypted"}, headers=bearer(connected)
    )
    assert answer.status_code == 200, answer.text
    secret = "Confidential: 42 widgets at cost, delivery on the 9th."
    new = microsoft.sandbox.deliver(MAILBOX, sender="olivia.smith@northwind.example", subject="Terms",
                                    text="Dear Alex, thank you for your call. " * 8 + secret)  # fmt: skip

    sync(settings, instance, ["messages"])

    bodies = [value for row in by_id(api, connected, "messages").values() for value in
              (row["data"].get("body_text"), row["data"].get("body_html")) if value]  # fmt: skip
    assert any(secret in body for body in bodies)
    ((html,),) = warehouse(
        settings,
        f"SELECT body_html FROM messages WHERE id = '{new}'",  # noqa: S608 -- an id we made
    )
    assert str(html).startswith(PREFIX)  # Outlook gives the body as html
    assert secret not in str(warehouse(settings, "SELECT * FROM messages"))


def test_outlook_messages_and_meetings_join_their_contacts_timeline(
    api: TestClient, settings: Settings, microsoft: Microsoft, instance: DagsterInstance, connected: str
) -> None:
    from tests.google_workspace.test_contacts import put, spellings, timeline

    sync(settings, instance, ["messages", "events"])
    people = [p for r in by_id(api, connected, "messages").values() for p in [r["data"]["sender"], *r["data"]["to"]]
              if p and p["address"].lower() != MAILBOX]  # fmt: skip
    address = people[0]["address"]
    assert put(api, connected, "c-1", "A contact", address.upper()).status_code == 200

    items = timeline(api, connected, "c-1")

    assert items and {i["integration"] for i in items} == {SLUG}
    assert all(address.lower() in {s.lower() for s in spellings(i)} for i in items)
    assert [i["at"] for i in items] == sorted((i["at"] for i in items), reverse=True)
