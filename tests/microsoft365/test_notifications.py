"""Graph change notifications, named: the platform subscribes each chosen folder and the calendar to the
connection's own URL, passes Graph's validation handshake at once, refuses a notification without the connection's
clientState, reads a notified change through the mailbox's delta from its own position (no run), renews what a
lifecycle notification asks for, and a disconnect deletes only its own subscriptions."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from dagster import DagsterInstance
from fastapi.testclient import TestClient
from sqlalchemy import select

from providers.microsoft365.sandbox_credentials import DEMO_MAILBOX
from providers.sandbox_kit.serve import ServedApp
from tests.helpers import bearer, make_tenant
from tests.microsoft365.conftest import SLUG, Microsoft, connect, records, sync
from vrtx_pipelines.config import Settings
from vrtx_pipelines.credentials.vault import vault_from_settings
from vrtx_pipelines.db.models import WebhookInbox, utcnow
from vrtx_pipelines.db.session import engine_for, session_factory, session_scope
from vrtx_pipelines.registry import get_provider
from vrtx_pipelines.webhooks.apply import DagsterReporter, WebhookApplier
from vrtx_pipelines.webhooks.dispatch import claim_batches
from vrtx_pipelines.webhooks.watches import renew_watches, watch_state, watch_until

pytestmark = pytest.mark.dagster
MAILBOX = DEMO_MAILBOX.lower()


@pytest.fixture
def served_api(api: TestClient) -> Iterator[str]:
    with ServedApp(api.app) as served:
        yield served.base_url


@pytest.fixture
def public(settings: Settings, served_api: str) -> Settings:
    """The settings with the served API as the public URL Graph is given."""
    return settings.model_copy(update={"public_url": served_api})


def renew(settings: Settings, **kwargs: Any) -> Any:
    return renew_watches(settings, vault_from_settings(settings), get_provider(SLUG), **kwargs)


def inbox(settings: Settings) -> list[WebhookInbox]:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        return list(session.scalars(select(WebhookInbox).order_by(WebhookInbox.id)))


def applier(settings: Settings) -> WebhookApplier:
    return WebhookApplier(
        session_factory(engine_for(settings.sqlalchemy_url)), vault_from_settings(settings), settings,
        reporter=DagsterReporter(from_environment=False),
    )  # fmt: skip


def claimed(settings: Settings) -> Any:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        (batch,) = claim_batches(session, get_provider(SLUG))
    return batch


def subscription_state(settings: Settings, tenant: str = "acme") -> list[dict[str, Any]]:
    from vrtx_pipelines.db.models import TenantIntegration

    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        found = session.scalars(select(TenantIntegration).where(TenantIntegration.tenant_id == tenant)).one()
        return list(watch_state(found.meta).get("subscriptions") or [])


def test_the_validation_handshake_is_answered_at_once_as_plain_text_and_stores_nothing(
    api: TestClient, settings: Settings
) -> None:
    make_tenant(settings, "acme")
    token = "Validation: Testing client application reachability for subscription Request-Id: 1f2e-3d4c"
    started = time.monotonic()
    answer = api.post(f"/api/v1/webhooks/{SLUG}/acme", params={"validationToken": token},
                      headers={"Content-Type": "text/plain; charset=utf-8"})  # fmt: skip
    elapsed = time.monotonic() - started
    assert answer.status_code == 200 and answer.text == token and elapsed < 1.0  # Graph allows 10 s
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert api.post(f"/api/v1/webhooks/{SLUG}/acme", params={"validationToken": "x" * 5000}).status_code == 400
    assert inbox(settings) == []


def test_a_watch_subscribes_each_folder_and_the_calendar_and_a_new_message_lands_without_a_run(
    api: TestClient, settings: Settings, public: Settings, microsoft: Microsoft, instance: DagsterInstance
) -> None:
    token = make_tenant(settings, "acme")
    connect(settings, "acme")
    sync(settings, instance, ["messages", "events"])

    assert renew(public).started == 1

    subscribed = microsoft.sandbox.subscriptions(MAILBOX)
    assert sorted(str(s["resource"]).lower() for s in subscribed) == [
        "me/events", "me/mailfolders('inbox')/messages", "me/mailfolders('sentitems')/messages",
    ]  # fmt: skip
    assert {s["notificationUrl"] for s in subscribed} == {f"{public.public_url}/api/v1/webhooks/{SLUG}/acme"}
    until = watch_until_of(settings)
    assert until is not None and timedelta(days=6) < until - utcnow() < timedelta(days=7)
    assert renew(public).current == 1  # renewed a day before it ends, not on every tick

    listed = records(api, token, "messages")
    seen, cursor = {r["external_id"] for r in listed["records"]}, listed["next_cursor"]
    for round_ in range(2):  # the second reads on from the position the first moved to
        new = microsoft.sandbox.deliver(MAILBOX, sender="ann@example.org", subject=f"Hello {round_}", text="Hi")
        assert microsoft.sandbox.notifications.sender.flush()
        kinds = {(e.event_type, e.payload["entity"]) for e in inbox(settings) if e.status == "received"}
        assert kinds == {("messages.created", "messages")}, round_
        batch = claimed(settings)
        assert (batch.tenant_id, batch.entities) == ("acme", ("messages",))  # the delta pull it launches
        (applied,) = applier(settings).apply(get_provider(SLUG), batch)
        assert (applied.entity, applied.changed) == ("messages", 1), round_
        now = {r["external_id"] for r in records(api, token, "messages")["records"]}
        assert now - seen == {new}, round_  # in the records API with no pull run
        seen = now
    (read,) = microsoft.sandbox.touch(MAILBOX, "messages", 1)  # a message from before the watch, read now
    assert microsoft.sandbox.notifications.sender.flush()
    (applied,) = applier(settings).apply(get_provider(SLUG), claimed(settings))
    assert (applied.entity, applied.changed) == ("messages", 1)
    assert read in {r["external_id"] for r in records(api, token, "messages", cursor)["records"]}


def watch_until_of(settings: Settings, tenant: str = "acme") -> Any:
    from vrtx_pipelines.db.models import TenantIntegration

    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        return watch_until(session.scalars(select(TenantIntegration).where(TenantIntegration.tenant_id == tenant))
                           .one())  # fmt: skip


def test_a_notification_without_the_connections_client_state_is_401_and_stores_nothing(
    api: TestClient, settings: Settings, public: Settings, microsoft: Microsoft
) -> None:
    for tenant in ("acme", "other"):
        make_tenant(settings, tenant)
        connect(settings, tenant)
    assert renew(public).started == 2
    secret = str(microsoft.sandbox.subscriptions(MAILBOX)[0]["clientState"])
    mine = [s for s in microsoft.sandbox.subscriptions(MAILBOX) if str(s["notificationUrl"]).endswith("/acme")]
    assert mine and all(s["clientState"] == mine[0]["clientState"] for s in mine)

    def body(*states: str) -> bytes:
        items = [
            {
                "subscriptionId": str(mine[0]["id"]),
                "changeType": "created",
                "clientState": state,
                "resource": "Users/x/Messages/AAkALgAA",
                "tenantId": "t",
                "resourceData": {"@odata.type": "#Microsoft.Graph.Message", "id": "AAkALgAA"},
            }
            for state in states
        ]
        return json.dumps({"value": items}).encode()  # fmt: skip

    url = f"/api/v1/webhooks/{SLUG}/acme"
    good = str(mine[0]["clientState"])
    other = next(str(s["clientState"]) for s in microsoft.sandbox.subscriptions(MAILBOX) if s["clientState"] != good)
    assert api.post(url, content=body("guess")).status_code == 401
    assert api.post(url, content=body(good, "guess")).status_code == 401  # one bad notification refuses them all
    assert api.post(url, content=body(other)).status_code == 401  # another tenant's secret, same mailbox
    assert api.post(url, content=b'{"value": []}').status_code == 401
    assert inbox(settings) == [] and secret
    assert api.post(url, content=body(good)).status_code == 202  # queued: the worker applies it
    assert api.post(url, content=body(good)).status_code == 202  # Graph redelivers: stored once
    assert len(inbox(settings)) == 1


def test_lifecycle_notifications_renew_or_recreate_the_subscriptions_at_once(
    api: TestClient, settings: Settings, public: Settings, microsoft: Microsoft
) -> None:
    make_tenant(settings, "acme")
    connect(settings, "acme")
    assert renew(public).started == 1
    subscriptions = {str(s["resource"]).lower(): s for s in microsoft.sandbox.subscriptions(MAILBOX)}
    inbox_subscription = subscriptions["me/mailfolders('inbox')/messages"]

    microsoft.sandbox.lifecycle(str(inbox_subscription["id"]), "reauthorizationRequired")
    assert microsoft.sandbox.notifications.sender.flush()
    (event,) = inbox(settings)
    assert event.event_type == "subscription.reauthorizationRequired" and event.payload["renews_watch"] is True
    applier(public).apply(get_provider(SLUG), claimed(settings))
    after = {str(s["resource"]).lower(): s for s in microsoft.sandbox.subscriptions(MAILBOX)}
    renewed = after["me/mailfolders('inbox')/messages"]
    assert renewed["id"] == inbox_subscription["id"] and renewed["reauthorizationRequired"] is False

    microsoft.sandbox.remove_subscription(str(inbox_subscription["id"]))
    assert microsoft.sandbox.notifications.sender.flush()
    applier(public).apply(get_provider(SLUG), claimed(settings))
    recreated = {str(s["resource"]).lower(): s for s in microsoft.sandbox.subscriptions(MAILBOX)}
    assert set(recreated) == set(subscriptions)
    assert recreated["me/mailfolders('inbox')/messages"]["id"] != inbox_subscription["id"]
    assert {s["id"] for s in subscription_state(settings)} == {s["id"] for s in recreated.values()}


def test_disconnecting_deletes_only_the_connections_own_subscriptions(
    api: TestClient, settings: Settings, public: Settings, microsoft: Microsoft
) -> None:
    tokens = {tenant: make_tenant(settings, tenant) for tenant in ("a", "b")}
    for tenant in tokens:
        connect(settings, tenant)
    assert renew(public).started == 2
    assert len(microsoft.sandbox.subscriptions(MAILBOX)) == 6

    assert api.delete(f"/api/v1/integrations/{SLUG}/disconnect", headers=bearer(tokens["b"])).status_code == 200

    left = microsoft.sandbox.subscriptions(MAILBOX)
    assert len(left) == 3 and all(str(s["notificationUrl"]).endswith("/a") for s in left)
