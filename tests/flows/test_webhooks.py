"""Webhooks, for every provider that sends them: the sandbox's own signed deliveries of a change reach the API
served over real HTTP and are stored once (naming the changed record, where the provider's notifications do); a
delivery signed with another secret is refused and stores nothing; the same delivery again is stored once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from providers.sandbox_kit.serve import ServedApp
from tests.flows.harness import Flows, Started
from tests.helpers import bearer
from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.models import WebhookInbox
from vrtx_pipelines.db.session import engine_for, session_scope

CAPABILITY = "webhooks"
SECRET = "flow-webhook-key-" + "k" * 40


def stored(settings: Settings) -> list[dict[str, Any]]:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        return [dict(row.payload) for row in session.scalars(select(WebhookInbox).order_by(WebhookInbox.id))]


@pytest.fixture
def endpoint(api: TestClient, flows: Flows, token: str) -> Iterator[str]:
    """The tenant's webhook URL on the API served over loopback, with its signing secret set through the API."""
    flows.connect(api, token)
    answer = api.put(f"/api/v1/integrations/{flows.slug}/webhook", json={"secret": SECRET}, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    path = httpx.URL(answer.json()["endpoint_url"]).path
    with ServedApp(api.app) as server:
        yield server.base_url + path


def deliver_a_change(started: Started, flows: Flows, url: str, secret: str) -> str:
    """Subscribe the sandbox to ``url`` with ``secret``, change one record, and wait for the delivery."""
    flows.subscribe_webhooks(started, url, secret)
    (changed,) = started.sandbox.touch(started.tenant, flows.sandbox_entity(flows.webhook_entity), 1)
    assert flows.webhook_sender(started).flush(30)
    return str(changed)


def test_a_signed_delivery_of_a_change_is_stored(
    settings: Settings, flows: Flows, started: Started, endpoint: str
) -> None:
    changed = deliver_a_change(started, flows, endpoint, SECRET)
    rows = stored(settings)
    assert [row["external_id"] for row in rows] == [changed if flows.webhook_names_record else None]
    assert flows.webhook_entity in rows[0]["entities"]


def test_a_delivery_signed_with_another_secret_is_refused_and_stores_nothing(
    settings: Settings, flows: Flows, started: Started, endpoint: str
) -> None:
    deliver_a_change(started, flows, endpoint, "not-" + SECRET)
    stats = flows.webhook_sender(started).stats
    assert stats.failed >= 1 and stats.delivered == 0  # a channel's opening handshake is refused too
    assert stored(settings) == []


def test_the_same_delivery_again_is_stored_once(
    settings: Settings, flows: Flows, started: Started, endpoint: str
) -> None:
    deliver_a_change(started, flows, endpoint, SECRET)
    last = flows.webhook_sender(started).stats.recent[-1]
    again = httpx.post(last.url, content=last.body, headers=dict(last.headers))
    assert 200 <= again.status_code < 300, again.text
    assert len(stored(settings)) == 1
