"""Gmail push notifications, named: the platform keeps a watch on each connected mailbox, Pub/Sub's pushes are
verified by Google's keys (the sandbox's, at its certs URL), routed by mailbox and turned into the incremental
pull of that mailbox; anything not signed by those keys, for this audience, from this service account, is 401."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from dagster import DagsterInstance
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import select

from api.routes.webhooks import receiver_for
from providers.google_workspace.sandbox_credentials import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_PUSH_AUDIENCE,
    DEMO_PUSH_SERVICE_ACCOUNT,
    DEMO_TOPIC,
)
from providers.sandbox_kit.serve import ServedApp
from tests.google_workspace.conftest import SLUG, Google, connect, records, sync
from tests.helpers import bearer, make_tenant
from vrtx_pipelines.config import Settings
from vrtx_pipelines.credentials.stored import read_credentials
from vrtx_pipelines.credentials.vault import vault_from_settings
from vrtx_pipelines.db.models import TenantIntegration, WebhookInbox, utcnow
from vrtx_pipelines.db.session import engine_for, session_factory, session_scope
from vrtx_pipelines.registry import get_provider
from vrtx_pipelines.webhooks.apply import DagsterReporter, WebhookApplier
from vrtx_pipelines.webhooks.config import subscribe_demo_webhooks
from vrtx_pipelines.webhooks.dispatch import claim_batches
from vrtx_pipelines.webhooks.keys import PublicKeys
from vrtx_pipelines.webhooks.watches import renew_watches, watch_until

pytestmark = pytest.mark.dagster
APP_URL = f"/api/v1/webhooks/{SLUG}"
OTHER_MAILBOX = "jordan.lee@vrtx-demo.example"


@pytest.fixture
def oauth_clients() -> dict[str, dict[str, str]]:
    return {
        SLUG: {
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
            "pubsub_topic": DEMO_TOPIC,
            "push_audience": DEMO_PUSH_AUDIENCE,
            "push_service_account": DEMO_PUSH_SERVICE_ACCOUNT,
        }
    }


@pytest.fixture
def served_api(api: TestClient) -> Iterator[str]:
    with ServedApp(api.app) as served:
        yield served.base_url


def renew(settings: Settings, **kwargs: Any) -> Any:
    return renew_watches(settings, vault_from_settings(settings), get_provider(SLUG), **kwargs)


def inbox(settings: Settings) -> list[WebhookInbox]:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        return list(session.scalars(select(WebhookInbox).order_by(WebhookInbox.id)))


def connection(settings: Settings, tenant_id: str) -> TenantIntegration:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        found = session.scalars(select(TenantIntegration).where(TenantIntegration.tenant_id == tenant_id)).one()
        session.expunge(found)
        return found


def synced_tenant(settings: Settings, instance: DagsterInstance, entity: str) -> str:
    """Tenant acme connected to the sandbox's mailbox and ``entity`` pulled once; its API token."""
    token = make_tenant(settings, "acme")
    connect(settings, "acme")
    sync(settings, instance, [entity])
    return token


def envelope(address: str, history_id: int = 12345, message_id: str = "9001") -> bytes:
    data = base64.b64encode(json.dumps({"emailAddress": address, "historyId": history_id}).encode()).decode()
    published = utcnow().isoformat(timespec="milliseconds").replace("+00:00", "Z")
    message = {"data": data, "messageId": message_id, "publishTime": published, "attributes": {}}
    return json.dumps({"message": message, "subscription": "projects/vrtx-demo/subscriptions/s1"}).encode()


def test_a_watched_mailboxs_new_message_is_pushed_verified_routed_and_pulled(
    api: TestClient, settings: Settings, google: Google, instance: DagsterInstance, served_api: str
) -> None:
    token = synced_tenant(settings, instance, "messages")
    before = records(api, token, "messages")["records"]

    tick = renew(settings)

    assert (tick.started, tick.failed) == (1, 0)
    watch = google.sandbox.mailbox(google.mailbox).watch
    assert watch is not None and watch.topic == DEMO_TOPIC and set(watch.label_ids) == {"INBOX", "SENT"}
    until = watch_until(connection(settings, "acme"))
    assert until is not None and until > utcnow() + timedelta(days=6)
    assert renew(settings).current == 1  # renewed daily, not on every tick
    google.sandbox.subscribe_push(served_api + APP_URL)

    (new_id,) = google.sandbox.create(google.mailbox, "messages", 1)

    assert google.sandbox.pubsub.flush() and google.sandbox.pubsub.delivered() == 1
    (event,) = inbox(settings)
    assert (event.event_type, event.payload["entity"], event.status) == ("mailbox.changed", "messages", "received")
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        (batch,) = claim_batches(session, get_provider(SLUG))
    assert (batch.tenant_id, batch.entities) == ("acme", ("messages",))  # the run a notification launches
    sync(settings, instance, list(batch.entities))
    after = records(api, token, "messages")["records"]
    assert {r["external_id"] for r in after} - {r["external_id"] for r in before} == {new_id}


def test_the_dev_platforms_demo_subscription_pushes_the_mailboxs_changes_to_the_tenants_endpoint(
    settings: Settings, google: Google, served_api: str
) -> None:
    make_tenant(settings, "acme")
    connect(settings, "acme")
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        sandboxes = {SLUG: google.served.app}
        subscribed = subscribe_demo_webhooks(
            session, vault_from_settings(settings), settings, "acme", sandboxes, served_api
        )
    assert subscribed == [SLUG]  # what `vrtx dev` does for each sandbox that sends webhooks
    assert renew(settings).started == 1

    google.sandbox.create(google.mailbox, "messages", 1)

    assert google.sandbox.pubsub.flush() and google.sandbox.pubsub.delivered() == 1
    (event,) = inbox(settings)
    assert (event.event_type, event.payload["entity"]) == ("mailbox.changed", "messages")


def test_a_redelivered_pubsub_message_is_stored_once_and_another_mailbox_reaches_no_other_tenant(
    api: TestClient, settings: Settings, google: Google
) -> None:
    make_tenant(settings, "acme")
    connect(settings, "acme")
    headers = {"authorization": f"Bearer {google.sandbox.push_token(DEMO_PUSH_AUDIENCE)}"}

    for _ in range(2):  # Pub/Sub delivers at least once
        assert api.post(APP_URL, content=envelope(google.mailbox.upper()), headers=headers).status_code == 200
    assert api.post(APP_URL, content=envelope(OTHER_MAILBOX, message_id="9002"), headers=headers).status_code == 200

    (stored,) = inbox(settings)
    assert stored.provider_event_id == "9001" and stored.tenant_integration_id == connection(settings, "acme").id


@pytest.mark.parametrize(
    "forgery",
    [
        "no token",
        "another audience",
        "another service account",
        "expired",
        "signed by another key",
        "alg none",
        "not a JWT",
    ],
)
def test_a_push_not_signed_by_google_for_our_audience_and_account_is_401_and_stores_nothing(
    api: TestClient, settings: Settings, google: Google, forgery: str
) -> None:
    make_tenant(settings, "acme")
    connect(settings, "acme")
    sandbox = google.sandbox
    now = int(sandbox.clock())
    claims = {"aud": DEMO_PUSH_AUDIENCE, "email": DEMO_PUSH_SERVICE_ACCOUNT, "email_verified": True,
              "iss": "https://accounts.google.com", "iat": now, "exp": now + 3600, "sub": "1"}  # fmt: skip
    stranger = RSAKey.generate_key(2048, parameters={"kid": sandbox.signing_key.kid, "alg": "RS256"})
    header = {"alg": "RS256", "kid": sandbox.signing_key.kid}
    unsigned = base64.urlsafe_b64encode(json.dumps({"alg": "none"}).encode()).decode().rstrip("=")
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    token = {
        "no token": None,
        "another audience": sandbox.push_token("https://elsewhere.example/push"),
        "another service account": sandbox.push_token(DEMO_PUSH_AUDIENCE, email="someone@evil.iam.gserviceaccount.com"),
        "expired": jwt.encode(header, {**claims, "iat": now - 7200, "exp": now - 3600}, sandbox.signing_key),
        "signed by another key": jwt.encode(header, claims, stranger),
        "alg none": f"{unsigned}.{body}.",
        "not a JWT": "x" * 40,
    }[forgery]
    headers = {"authorization": f"Bearer {token}"} if token else {}

    answer = api.post(APP_URL, content=envelope(google.mailbox), headers=headers)

    assert (answer.status_code, answer.content) == (401, b"")
    assert inbox(settings) == []


def test_a_verified_push_that_is_not_a_gmail_notification_is_400(
    api: TestClient, settings: Settings, google: Google
) -> None:
    headers = {"authorization": f"Bearer {google.sandbox.push_token(DEMO_PUSH_AUDIENCE)}"}
    bad_data = json.dumps({"message": {"data": "%%%", "messageId": "1", "publishTime": "2026-12-07T00:00:00Z"}})
    for body in (b"{", b'{"message": 1}', bad_data.encode(), b"[" * 5000):
        answer = api.post(APP_URL, content=body, headers=headers)
        assert answer.status_code == 400, (body[:20], answer.text)
        assert answer.json()["error"]["code"] == "webhook_malformed"
    assert inbox(settings) == []


def refresh_token_of(settings: Settings, tenant_id: str) -> str:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        found = session.scalars(select(TenantIntegration).where(TenantIntegration.tenant_id == tenant_id)).one()
        return str(read_credentials(vault_from_settings(settings), found, SLUG)["refresh_token"])


def refreshes(google: Google, refresh_token: str) -> bool:
    """Whether the refresh token still refreshes at Google's token endpoint (its grant lives)."""
    answer = httpx.post(
        f"{google.served.base_url}/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": DEMO_CLIENT_ID,
              "client_secret": DEMO_CLIENT_SECRET},
    )  # fmt: skip
    return answer.status_code == 200


def test_disconnecting_one_of_two_tenants_on_the_same_mailbox_keeps_the_others_grant_and_watch(
    api: TestClient, settings: Settings, google: Google, instance: DagsterInstance
) -> None:
    tokens = {tenant: make_tenant(settings, tenant) for tenant in ("a", "b")}
    for tenant in tokens:
        connect(settings, tenant)
    assert renew(settings).started == 2
    box = google.sandbox.mailbox(google.mailbox)
    a_refresh = refresh_token_of(settings, "a")

    gone = api.delete(f"/api/v1/integrations/{SLUG}/disconnect", headers=bearer(tokens["b"]))

    assert gone.status_code == 200, gone.text
    assert refreshes(google, a_refresh)  # one authorization at Google for both: b's disconnect did not revoke it
    assert box.watch is not None  # a's notifications go on
    assert sync(settings, instance, ["messages"], tenant="a")["messages"]["rows_loaded"] > 0
    assert api.get(f"/api/v1/integrations/{SLUG}/status", headers=bearer(tokens["a"])).json()["status"] == "connected"

    assert api.delete(f"/api/v1/integrations/{SLUG}/disconnect", headers=bearer(tokens["a"])).status_code == 200

    assert box.watch is None  # the last connection to the mailbox stops the watch, then revokes the grant
    assert not refreshes(google, a_refresh)


def test_without_a_topic_the_mailbox_is_not_watched_and_its_calendar_still_is(
    api: TestClient, settings: Settings, google: Google
) -> None:
    make_tenant(settings, "acme")
    connect(settings, "acme")
    bare = settings.model_copy(update={"oauth_clients": {SLUG: {"client_id": DEMO_CLIENT_ID,
                                                                "client_secret": DEMO_CLIENT_SECRET}}})  # fmt: skip

    tick = renew_watches(bare, vault_from_settings(bare), get_provider(SLUG))

    assert (tick.started, tick.failed) == (1, 0)
    assert google.sandbox.mailbox(google.mailbox).watch is None
    assert [c.calendar_key for c in google.sandbox.channels.open.values()] == [f"{google.mailbox}/{google.mailbox}"]


def test_a_push_signed_with_a_key_google_published_since_verifies_after_one_fetch_of_the_certs(
    api: TestClient, settings: Settings, google: Google
) -> None:
    make_tenant(settings, "acme")
    connect(settings, "acme")
    clock = [0.0]
    receiver_for(api.app.state).keys = PublicKeys(clock=lambda: clock[0])
    headers = {"authorization": f"Bearer {google.sandbox.push_token(DEMO_PUSH_AUDIENCE)}"}
    assert api.post(APP_URL, content=envelope(google.mailbox), headers=headers).status_code == 200
    certs_before = google.sandbox.certs_served

    google.sandbox.rotate_signing_key()
    clock[0] += 120  # the cached set is still within its max-age
    rotated = {"authorization": f"Bearer {google.sandbox.push_token(DEMO_PUSH_AUDIENCE)}"}
    answer = api.post(APP_URL, content=envelope(google.mailbox, message_id="9002"), headers=rotated)

    assert answer.status_code == 200
    assert [e.provider_event_id for e in inbox(settings)] == ["9001", "9002"]
    assert google.sandbox.certs_served == certs_before + 1  # fetched again once, not per delivery


def channel_headers(channel_id: str, token: str, state: str = "exists", number: int = 2) -> dict[str, str]:
    return {"x-goog-channel-id": channel_id, "x-goog-channel-token": token, "x-goog-resource-state": state,
            "x-goog-message-number": str(number), "x-goog-resource-id": "r1"}  # fmt: skip


def test_a_calendar_change_is_notified_on_the_connections_own_channel_and_pulls_the_events(
    api: TestClient, settings: Settings, google: Google, instance: DagsterInstance, served_api: str
) -> None:
    token = synced_tenant(settings, instance, "events")
    public = settings.model_copy(update={"public_url": served_api})

    assert renew(public).started == 1
    (channel,) = google.sandbox.channels.open.values()
    assert channel.token and channel.subscription.url == f"{served_api}/api/v1/webhooks/{SLUG}/acme"
    assert google.sandbox.channels.sender.flush() and inbox(settings) == []  # "sync" only opens the channel
    (new_id,) = google.sandbox.create(google.mailbox, "events", 1)

    assert google.sandbox.channels.sender.flush()
    (event,) = inbox(settings)
    assert (event.event_type, event.payload["entity"]) == ("calendar.changed", "events")
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        (batch,) = claim_batches(session, get_provider(SLUG))
    assert (batch.tenant_id, batch.entities) == ("acme", ("events",))
    sync(settings, instance, list(batch.entities))
    assert new_id in {r["external_id"] for r in records(api, token, "events")["records"]}


def test_the_fast_path_reads_a_notified_calendars_changes_from_its_own_sync_tokens_without_a_run(
    api: TestClient, settings: Settings, google: Google, instance: DagsterInstance, served_api: str
) -> None:
    token = synced_tenant(settings, instance, "events")
    assert renew(settings.model_copy(update={"public_url": served_api})).started == 1
    assert google.sandbox.channels.sender.flush()
    applier = WebhookApplier(
        session_factory(engine_for(settings.sqlalchemy_url)), vault_from_settings(settings), settings,
        reporter=DagsterReporter(from_environment=False),
    )  # fmt: skip

    for round_ in range(2):  # the second reads on from the tokens the first moved to
        (changed,) = (
            google.sandbox.touch(google.mailbox, "events", 1)
            if round_
            else google.sandbox.create(google.mailbox, "events", 1)
        )
        assert google.sandbox.channels.sender.flush()
        with session_scope(engine_for(settings.sqlalchemy_url)) as session:
            (batch,) = claim_batches(session, get_provider(SLUG))
        (applied,) = applier.apply(get_provider(SLUG), batch)

        assert (applied.entity, applied.changed) == ("events", 1), round_
        shown = {r["external_id"]: r["data"] for r in records(api, token, "events")["records"]}
        assert changed in shown, round_  # in the records API with no pull run
    assert shown[changed]["title"].endswith("(moved)")


def test_a_channel_notification_without_the_connections_token_is_401(
    api: TestClient, settings: Settings, google: Google
) -> None:
    for tenant in ("acme", "other"):
        make_tenant(settings, tenant)
    connect(settings, "acme")
    assert renew(settings).started == 1
    (channel,) = google.sandbox.channels.open.values()
    assert channel.token is not None
    url = f"/api/v1/webhooks/{SLUG}/acme"

    assert api.post(url, headers=channel_headers(channel.id, "guess")).status_code == 401
    assert api.post(url, headers={**channel_headers(channel.id, ""), "x-goog-channel-token": ""}).status_code == 401
    assert api.post(APP_URL, headers=channel_headers(channel.id, channel.token)).status_code == 401  # per connection
    assert (
        api.post(f"/api/v1/webhooks/{SLUG}/other", headers=channel_headers(channel.id, channel.token)).status_code
        == 401
    )
    assert inbox(settings) == []
    assert api.post(url, headers=channel_headers(channel.id, channel.token)).status_code == 200
    assert api.post(url, headers=channel_headers(channel.id, channel.token)).status_code == 200  # a resend: one event
    assert len(inbox(settings)) == 1
    bad = api.post(url, headers=channel_headers(channel.id, channel.token, state="weird"))
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "webhook_malformed"


def test_a_renewal_opens_a_new_channel_before_closing_the_old_and_a_disconnect_closes_its_own(
    api: TestClient, settings: Settings, google: Google
) -> None:
    tokens = {tenant: make_tenant(settings, tenant) for tenant in ("a", "b")}
    for tenant in tokens:
        connect(settings, tenant)
    assert renew(settings).started == 2
    first = {c.id: c.subscription.url.rsplit("/", 1)[-1] for c in google.sandbox.channels.open.values()}
    assert sorted(first.values()) == ["a", "b"]

    assert renew(settings).current == 2  # not due yet
    assert renew(settings, now=utcnow() + timedelta(days=2)).started == 2  # due: under 6 days left

    renewed = {c.id: c.subscription.url.rsplit("/", 1)[-1] for c in google.sandbox.channels.open.values()}
    assert sorted(renewed.values()) == ["a", "b"] and not set(renewed) & set(first)
    assert api.delete(f"/api/v1/integrations/{SLUG}/disconnect", headers=bearer(tokens["b"])).status_code == 200
    assert [c.subscription.url.rsplit("/", 1)[-1] for c in google.sandbox.channels.open.values()] == ["a"]


def test_the_fast_path_reads_a_notified_mailboxs_changes_from_its_own_position_without_a_run(
    api: TestClient, settings: Settings, google: Google, instance: DagsterInstance, served_api: str
) -> None:
    token = synced_tenant(settings, instance, "messages")
    assert renew(settings).started == 1
    google.sandbox.subscribe_push(served_api + APP_URL)
    applier = WebhookApplier(
        session_factory(engine_for(settings.sqlalchemy_url)), vault_from_settings(settings), settings,
        reporter=DagsterReporter(from_environment=False),
    )  # fmt: skip
    seen = {r["external_id"] for r in records(api, token, "messages")["records"]}

    for round_ in range(2):  # the second reads on from where the first left its position
        (new_id,) = google.sandbox.create(google.mailbox, "messages", 1)
        assert google.sandbox.pubsub.flush()
        with session_scope(engine_for(settings.sqlalchemy_url)) as session:
            (batch,) = claim_batches(session, get_provider(SLUG))
        (applied,) = applier.apply(get_provider(SLUG), batch)

        assert (applied.entity, applied.changed) == ("messages", 1), round_
        now = {r["external_id"] for r in records(api, token, "messages")["records"]}
        assert now - seen == {new_id}  # in the records API with no pull run
        seen = now
