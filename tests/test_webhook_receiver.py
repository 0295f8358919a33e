"""The receiving path under concurrency: deliveries share commits, each is answered only once its events are
stored, a duplicate racing its original is stored once, and one delivery that cannot be stored fails alone.
SQLite and PostgreSQL."""
# ruff: noqa: F811 -- fixtures are imported from tests/test_webhooks.py and tests/xero/conftest.py

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.routes.webhooks import receiver_for
from providers.xero.webhooks import sign as signature
from tests.test_webhooks import KEY, Xero, acme, api, inbox, post, xero_event, xero_payload  # noqa: F401
from tests.test_webhooks_fastpath import worker  # noqa: F401 -- fixture
from tests.xero.conftest import base_urls, oauth_clients, xero  # noqa: F401 -- fixtures
from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.models import TenantIntegration, WebhookInbox, utcnow
from vrtx_pipelines.db.session import engine_for, session_scope
from vrtx_pipelines.webhooks.dispatch import RELEASED
from vrtx_pipelines.webhooks.receiver import InboxWriter
from vrtx_pipelines.webhooks.worker import WebhookWorker

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Runs the coroutine on its own event loop in a fresh thread: the test's thread may have a loop running
    already (Playwright's sync API leaves one when the browser tests ran first)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def deliver_all(api: TestClient, bodies: list[bytes]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=api.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        return await asyncio.gather(
            *(
                client.post(
                    "/api/v1/webhooks/xero/acme",
                    content=body,
                    headers={"x-xero-signature": signature(body, KEY), "Content-Type": "application/json"},
                )
                for body in bodies
            )
        )


def test_concurrent_deliveries_share_commits_and_are_answered_once_stored(
    api: TestClient, settings: Settings, xero: Xero, acme: str
) -> None:
    org = xero[2]
    distinct = [xero_payload(org, xero_event(org, "INVOICE", f"inv-{n}")) for n in range(150)]
    racing = [xero_payload(org, xero_event(org, "CONTACT", "same-contact"))] * 10  # one event, ten deliveries
    answers = run(deliver_all(api, distinct + racing))
    assert [(a.status_code, a.content) for a in answers] == [(200, b"")] * 160
    # No waiting: every 200 was sent after the commit that stored its events.
    rows = inbox(settings)
    assert len(rows) == 151
    assert sorted(r.payload["external_id"] for r in rows) == sorted([f"inv-{n}" for n in range(150)] + ["same-contact"])
    writer = receiver_for(api.app.state).writer  # type: ignore[attr-defined]
    assert writer.deliveries == 160
    assert writer.commits < writer.deliveries, "deliveries arriving together share a commit"


def test_a_delivery_that_cannot_be_stored_fails_alone_and_the_rest_of_its_group_is_stored(
    api: TestClient, settings: Settings, xero: Xero, acme: str
) -> None:
    engine = engine_for(settings.sqlalchemy_url)
    with session_scope(engine) as session:
        connection_id = session.scalar(select(TenantIntegration.id).where(TenantIntegration.tenant_id == "acme"))
        missing = (session.scalar(select(func.max(TenantIntegration.id))) or 0) + 1000
    assert connection_id is not None

    def item(connection: int, event_id: str) -> list[dict[str, Any]]:
        return [
            {
                "tenant_integration_id": connection,
                "provider_event_id": event_id,
                "event_type": "invoice.update",
                "status": "received",
                "received_at": utcnow(),
                "payload": {"entities": ["invoices"], "external_id": event_id},
            }
        ]

    writer = InboxWriter(engine)

    async def write_together() -> list[Any]:
        # A connection that no longer exists (deleted while its delivery was in flight) breaks its insert.
        items = [item(connection_id, "good-1"), item(missing, "orphan"), item(connection_id, "good-2")]
        return await asyncio.gather(*(writer.write(i) for i in items), return_exceptions=True)

    try:
        first, orphan, second = run(write_together())
    finally:
        writer.close()
    assert (first, second) == (1, 1)
    assert isinstance(orphan, Exception)
    assert sorted(r.provider_event_id for r in inbox(settings)) == ["good-1", "good-2"]


def test_events_handed_back_to_the_sensor_are_not_applied_again_by_the_next_delivery(
    api: TestClient,
    settings: Settings,
    xero: Xero,
    acme: str,
    worker: WebhookWorker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sandbox, _served, org = xero
    caplog.set_level(logging.INFO, logger="vrtx.webhooks")
    for changed in (sandbox.touch(org, "contacts", 1)[0], sandbox.touch(org, "contacts", 1)[0]):
        assert post(api, xero_payload(org, xero_event(org, "CONTACT", changed)), KEY).status_code == 200
        assert worker.wait_idle()
    applied = [r.getMessage() for r in caplog.records if "webhook fast path applied" in r.getMessage()]
    # The webserver is unreachable: each event is applied, then released to the sensor, and only once.
    assert len(applied) == 2 and all(" events=1 " in line for line in applied), applied
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        states = session.execute(select(WebhookInbox.status, WebhookInbox.run_id)).all()
    assert sorted(states) == [("received", RELEASED)] * 2
