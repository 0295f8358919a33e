"""The webhook fast path: a change made in Xero shows in the records API within seconds with no Dagster run at
all (records fetched by id and applied in the API process), the events still go to the targeted pull, a failing
fetch loses nothing, one tenant's events never touch another's records, and each fast apply is a runless
materialization in Dagster. SQLite and PostgreSQL; the Xero sandbox and the API over real HTTP on loopback."""
# ruff: noqa: F811 -- the Xero fixtures are imported from tests/xero/conftest.py and used by name

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from dagster import AssetKey, SensorResult, materialize
from dagster._core.test_utils import instance_for_test
from fastapi.testclient import TestClient
from sqlalchemy import select

from providers.sandbox_kit.serve import ServedApp, free_port
from providers.xero.mappers import to_invoice
from tests.helpers import bearer, make_tenant, running_worker
from tests.test_webhooks import KEY, OTHER_KEY, Xero, acme, api, inbox, post, xero_event, xero_payload  # noqa: F401
from tests.test_webhooks_dispatch import tick
from tests.xero.conftest import base_urls, connect_xero, oauth_clients, xero  # noqa: F401
from vrtx_pipelines.config import Settings
from vrtx_pipelines.credentials.vault import vault_from_settings
from vrtx_pipelines.db.models import CanonicalRecord, OutboundEvent
from vrtx_pipelines.db.session import engine_for, session_factory, session_scope
from vrtx_pipelines.orchestration.pulls import build_pull_assets
from vrtx_pipelines.records.store import canonical_json
from vrtx_pipelines.registry import get_provider
from vrtx_pipelines.webhooks.apply import DagsterReporter, WebhookApplier
from vrtx_pipelines.webhooks.dispatch import RELEASED, claim_batches
from vrtx_pipelines.webhooks.launch import GraphQLRunLauncher, ImmediateDispatcher
from vrtx_pipelines.webhooks.worker import WebhookWorker, build_worker

XERO = get_provider("xero")
VISIBLE_WITHIN_S = 5.0


@pytest.fixture
def worker(settings: Settings) -> Iterator[WebhookWorker]:
    """The webhook worker with the fast path on, its run launcher pointed at a closed port."""
    sessions = session_factory(engine_for(settings.sqlalchemy_url))
    # No Dagster anywhere (as an API deployed without DAGSTER_HOME): nothing is recorded there.
    reporter = DagsterReporter(from_environment=False)
    applier = WebhookApplier(sessions, vault_from_settings(settings), settings, reporter=reporter)
    launcher = GraphQLRunLauncher(f"http://127.0.0.1:{free_port()}", timeout_s=2)
    with running_worker(ImmediateDispatcher(sessions, launcher, applier=applier)) as worker:
        yield worker


def poll(condition: Any, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout_s} s")


def record_over_http(base_url: str, token: str, entity: str, external_id: str) -> dict[str, Any] | None:
    answer = httpx.get(
        f"{base_url}/api/v1/integrations/xero/records/{entity}",
        params={"limit": "1000"},
        headers=bearer(token),
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    return next((r for r in answer.json()["records"] if r["external_id"] == external_id), None)


def stored_records(settings: Settings, tenant_integration_id: int | None = None) -> list[CanonicalRecord]:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        query = select(CanonicalRecord).order_by(CanonicalRecord.change_seq)
        if tenant_integration_id is not None:
            query = query.where(CanonicalRecord.tenant_integration_id == tenant_integration_id)
        return list(session.scalars(query))


def test_a_change_made_in_xero_shows_in_the_records_api_within_seconds_without_any_dagster_run(
    api: TestClient, settings: Settings, xero: Xero, acme: str, worker: WebhookWorker
) -> None:
    sandbox, _served, org = xero
    with ServedApp(api.app) as served:
        sandbox.subscribe_webhooks(f"{served.base_url}/api/v1/webhooks/xero/acme", KEY, [org])
        for entity in ("contacts", "invoices"):
            started = time.monotonic()
            [changed] = sandbox.touch(org, entity, 1)
            record = poll(lambda e=entity, c=changed: record_over_http(served.base_url, acme, e, c), VISIBLE_WITHIN_S)
            assert time.monotonic() - started < VISIBLE_WITHIN_S
            assert record["data"]["external_id"] == changed
            if entity == "invoices":
                assert record["data"]["lines"], "an invoice fetched by id keeps its line items"
        assert worker.wait_idle()
    assert worker.dispatcher.launched == []  # no run was ever started: Dagster is not there
    # The launch failed, so every event went back to the sensor: the warehouse still gets its targeted pull.
    assert {row.status for row in inbox(settings)} == {"received"}
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        events = list(session.scalars(select(OutboundEvent).where(OutboundEvent.event_type == "records.changed")))
    assert {(e.payload["entity"], e.payload["trigger"]) for e in events} >= {
        ("contacts", "webhook"),
        ("invoices", "webhook"),
    }


def test_an_invoice_applied_by_the_fast_path_matches_what_the_pull_maps(
    api: TestClient, settings: Settings, xero: Xero, acme: str, worker: WebhookWorker
) -> None:
    sandbox, served, org = xero
    [changed] = sandbox.touch(org, "invoices", 1)
    assert post(api, xero_payload(org, xero_event(org, "INVOICE", changed)), KEY).status_code == 200
    assert worker.wait_idle()
    [record] = [r for r in stored_records(settings) if r.external_id == changed]
    # The sandbox's own answer for the invoice, decoded as the pull decodes it (GET /Invoices/{id}).
    from providers.kit.governor import RateGovernor
    from providers.xero.client import XeroClient

    token = sandbox.issue_access_token([org])
    with httpx.Client() as http:
        client = XeroClient(
            http,
            base_url=f"{served.base_url}/api.xro/2.0",
            tenant_id=org,
            access_token=lambda: token,
            governor=RateGovernor(),
        )
        [raw] = client.get(f"Invoices/{changed}", params={"unitdp": "4"})["Invoices"]
    assert record.data == canonical_json(to_invoice(raw))


def test_a_refused_fetch_applies_nothing_and_leaves_the_events_to_the_sensor(
    api: TestClient, settings: Settings, xero: Xero, acme: str, worker: WebhookWorker
) -> None:
    sandbox, served, org = xero
    knobs = served.app.state.sandbox
    knobs.rate_limit_next, knobs.retry_after_s = 100, 30  # Xero's 429: the fast path never waits one out
    [changed] = sandbox.touch(org, "contacts", 1)
    started = time.monotonic()
    assert post(api, xero_payload(org, xero_event(org, "CONTACT", changed)), KEY).status_code == 200
    assert worker.wait_idle()
    assert time.monotonic() - started < 5, "a refused fetch must not hold up the launch"
    assert stored_records(settings) == []
    [row] = inbox(settings)
    assert row.status == "received" and row.run_id == RELEASED
    knobs.rate_limit_next = 0
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("xero_tenants", ["acme"])
        result = tick(instance)
    assert isinstance(result, SensorResult)
    [request] = result.run_requests or []
    assert request.partition_key == "acme" and [k.path[-1] for k in request.asset_selection or []] == ["contacts"]


def test_an_event_never_touches_another_tenants_records(
    api: TestClient, settings: Settings, xero: Xero, acme: str, worker: WebhookWorker
) -> None:
    sandbox, _served, org = xero
    beta_org = sandbox.add_organisation("Beta Ltd", contacts=3, invoices=3, lines_per_invoice=1, payments=0, items=1)
    beta = make_tenant(settings, "beta")
    connect_xero(settings, "beta", [beta_org])
    assert api.put("/api/v1/integrations/xero/webhook", json={"secret": OTHER_KEY}, headers=bearer(beta)).status_code
    [acme_invoice] = sandbox.touch(org, "invoices", 1)
    # Beta's own, correctly signed delivery naming acme's invoice: fetched through beta's organisation, it is
    # not there, so beta gets nothing and acme's records are untouched.
    smuggled = xero_payload(beta_org, xero_event(beta_org, "INVOICE", acme_invoice))
    assert post(api, smuggled, OTHER_KEY, tenant="beta").status_code == 200
    assert worker.wait_idle()
    assert stored_records(settings) == []
    # acme's delivery for the same invoice lands in acme's records only.
    assert post(api, xero_payload(org, xero_event(org, "INVOICE", acme_invoice)), KEY).status_code == 200
    assert worker.wait_idle()
    assert {r.external_id for r in stored_records(settings)} == {acme_invoice}
    assert api.get("/api/v1/integrations/xero/records/invoices", headers=bearer(beta)).json()["records"] == []
    [seen] = api.get("/api/v1/integrations/xero/records/invoices", headers=bearer(acme)).json()["records"]
    assert seen["external_id"] == acme_invoice


@pytest.mark.dagster
def test_a_fast_apply_is_a_runless_materialization_of_the_tenants_partition_and_the_pull_after_it_changes_nothing(
    api: TestClient, settings: Settings, xero: Xero, acme: str
) -> None:
    sandbox, _served, org = xero
    [changed] = sandbox.touch(org, "invoices", 1)
    assert post(api, xero_payload(org, xero_event(org, "INVOICE", changed)), KEY).status_code == 200
    sessions = session_factory(engine_for(settings.sqlalchemy_url))
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("xero_tenants", ["acme"])
        applier = WebhookApplier(sessions, vault_from_settings(settings), settings, reporter=DagsterReporter(instance))
        with session_scope(engine_for(settings.sqlalchemy_url)) as session:
            [batch] = claim_batches(session, XERO)
        applied = {a.entity: a for a in applier.apply(XERO, batch)}
        assert applied["invoices"].fetched == 1 and applied["invoices"].changed == 1
        event = instance.get_latest_materialization_event(AssetKey(["xero", "invoices"]))
        assert event is not None and event.asset_materialization is not None
        materialization = event.asset_materialization
        assert materialization.partition == "acme"
        assert materialization.metadata["trigger"].value == "webhook"
        assert materialization.metadata["records_changed"].value == 1
        assert materialization.metadata["inbox_ids"].value == list(batch.inbox_ids)
        assert event.run_id == "", "recorded without a run"
        [before] = [r for r in stored_records(settings) if r.external_id == changed]

        assert XERO.pulls is not None
        pulled = materialize(
            [build_pull_assets(XERO, XERO.pulls)],
            instance=instance,
            partition_key="acme",
            selection=batch.asset_keys,
            tags=batch.tags,
        )
        assert pulled.success
    [after] = [r for r in stored_records(settings) if r.external_id == changed]
    assert (after.change_seq, after.content_hash) == (before.change_seq, before.content_hash)


def test_the_api_only_stores_a_webhook_and_the_worker_applies_it(
    api: TestClient, settings: Settings, xero: Xero, acme: str
) -> None:
    sandbox, _served, org = xero
    [changed] = sandbox.touch(org, "contacts", 1)
    assert post(api, xero_payload(org, xero_event(org, "CONTACT", changed)), KEY).status_code == 200
    [row] = inbox(settings)
    assert (row.status, row.run_id) == ("received", None), "acknowledged and stored: nothing else on the API's path"
    assert stored_records(settings) == []

    # The worker as `vrtx webhook-worker` builds it; no Dagster webserver answers, so its launch is refused.
    worker = build_worker(settings.model_copy(update={"dagster_url": f"http://127.0.0.1:{free_port()}"}))
    try:
        assert worker.wait_idle()
    finally:
        worker.dispatcher.close()
    assert [r.external_id for r in stored_records(settings)] == [changed]
    [row] = inbox(settings)
    assert (row.status, row.run_id) == ("received", RELEASED), "handed to the sensor for the warehouse's pull"
    assert worker.pending() == [], "released events are the sensor's, not offered again"
