"""Google Workspace's pull quirks through the real Dagster assets: Gmail's history ids and their 404, Calendar's
sync tokens and their 410, deletes and messages leaving the synced labels, a dead grant, and bodies that never
land anywhere."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance
from fastapi.testclient import TestClient
from sqlalchemy import select

from providers.google_workspace.sandbox_credentials import DEMO_MAILBOX
from tests.google_workspace.conftest import SLUG, Google, by_id, records, sync
from tests.helpers import bearer
from tests.provider_driver import full_sync_reason
from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.models import OutboundEvent
from vrtx_pipelines.db.session import engine_for, session_scope
from vrtx_pipelines.errors import IntegrationError
from vrtx_pipelines.warehouse import pipeline_for

pytestmark = pytest.mark.dagster


def test_history_ids_bring_only_new_changed_and_deleted_messages(
    api: TestClient, settings: Settings, google: Google, instance: DagsterInstance, connected: str
) -> None:
    first = sync(settings, instance, ["messages"])
    assert first["messages"]["rows_loaded"] == google.sandbox.count(DEMO_MAILBOX, "messages") == 120
    cursor = records(api, connected, "messages")["next_cursor"]
    new = google.sandbox.deliver(DEMO_MAILBOX, sender="Olivia Smith <olivia.smith@northwind.example>",
                                 subject="Order 42", text="Please send the quote.")  # fmt: skip
    (starred,) = google.sandbox.touch(DEMO_MAILBOX, "messages", 1)
    listed = list(by_id(api, connected, "messages"))
    gone, trashed = listed[5], listed[6]
    google.sandbox.delete_message(DEMO_MAILBOX, gone)
    google.sandbox.mailbox(DEMO_MAILBOX).relabel(trashed, {"TRASH"}, {"INBOX", "SENT"})

    second = sync(settings, instance, ["messages"])

    assert second["messages"]["rows_loaded"] == 4  # from history: nothing listed again
    changed = {r["external_id"]: r for r in records(api, connected, "messages", cursor)["records"]}
    assert set(changed) == {new, starred, gone, trashed}
    assert changed[new]["data"]["subject"] == "Order 42" and changed[new]["data"]["direction"] == "inbound"
    assert "STARRED" in changed[starred]["data"]["labels"]
    assert changed[gone]["deleted"] and changed[trashed]["deleted"]  # left every synced label: gone from VRTX
    assert sync(settings, instance, ["messages"])["messages"]["rows_loaded"] == 0


def test_a_stale_history_id_lists_the_window_again_and_the_sync_log_says_so(
    api: TestClient, settings: Settings, google: Google, instance: DagsterInstance, connected: str
) -> None:
    sync(settings, instance, ["messages"])
    google.sandbox.deliver(DEMO_MAILBOX, sender="ann@example.org", subject="Hello", text="Hi")
    google.sandbox.expire_history(DEMO_MAILBOX)

    result = sync(settings, instance, ["messages"])

    assert result["messages"]["rows_loaded"] == 121  # the whole window, the new one with it
    sync_type, reason = full_sync_reason(settings, instance)
    assert sync_type == "full" and "no longer has the history" in reason and "404" in reason
    ids = [r["external_id"] for r in records(api, connected, "messages")["records"]]
    assert len(ids) == len(set(ids)) == 121


def test_a_voided_calendar_sync_token_lists_the_calendar_again_and_the_sync_log_says_so(
    api: TestClient, settings: Settings, google: Google, instance: DagsterInstance, connected: str
) -> None:
    sync(settings, instance, ["events"])
    (cancelled,) = google.sandbox.touch(DEMO_MAILBOX, "events", 1)
    calendar = google.sandbox.calendar(DEMO_MAILBOX)
    with google.sandbox.lock:
        from providers.google_workspace.sandbox.calendar import delete_event

        delete_event(calendar, cancelled.split(":", 1)[1], google.sandbox.clock())
    assert sync(settings, instance, ["events"])["events"]["rows_loaded"] == 1  # the cancellation, by sync token
    assert by_id(api, connected, "events")[cancelled]["deleted"] is True
    google.sandbox.invalidate_sync_tokens(DEMO_MAILBOX)

    result = sync(settings, instance, ["events"])

    assert result["events"]["rows_loaded"] == google.sandbox.count(DEMO_MAILBOX, "events")
    sync_type, reason = full_sync_reason(settings, instance)
    assert sync_type == "full" and "410" in reason
    event = next(r["data"] for r in by_id(api, connected, "events").values() if not r["deleted"])
    assert event["attendees"] and (event["start"]["at"] or event["start"]["day"])


def test_a_grant_revoked_at_google_turns_the_connection_expired_with_an_event(
    api: TestClient, settings: Settings, google: Google, instance: DagsterInstance, connected: str
) -> None:
    google.sandbox.revoke_user(DEMO_MAILBOX)  # the user changed their password
    google.knobs.expire_tokens = True  # the access token runs out: the refresh meets invalid_grant

    with pytest.raises(IntegrationError):
        sync(settings, instance, ["messages"])

    status = api.get(f"/api/v1/integrations/{SLUG}/status", headers=bearer(connected)).json()
    assert status["status"] == "expired"
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        kinds = [e.event_type for e in session.scalars(select(OutboundEvent).where(OutboundEvent.tenant_id == "acme"))]
    assert "integration.expired" in kinds


def test_no_body_or_attachment_content_lands_in_the_warehouse_or_the_records(
    api: TestClient, settings: Settings, google: Google, instance: DagsterInstance, connected: str
) -> None:
    sync(settings, instance, ["messages"])
    # The html body, an attachment's content, and the text body past its snippet (Gmail's first 200 characters).
    markers = ("<p>Hi", "%PDF-1.4 sandbox", "in the body only")
    pipeline = pipeline_for(settings, SLUG, "acme")
    with pipeline.sql_client() as client:
        for table in pipeline.default_schema.data_table_names():
            dump = str(client.execute_sql(f"SELECT * FROM {table}"))  # noqa: S608 -- the pipeline's own tables
            assert not any(marker in dump for marker in markers), table
    stored = records(api, connected, "messages")["records"]
    assert not any(marker in str(stored) for marker in markers)
    with_attachment = [r["data"] for r in stored if r["data"]["attachments"]]
    assert with_attachment and all(a["filename"].endswith(".pdf") for r in with_attachment for a in r["attachments"])
    assert not any(r["data"].get("body_text") or r["data"].get("body_html") for r in stored)
