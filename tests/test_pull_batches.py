"""Scheduled pulls in batches: the schedule's tick claims due tenants into batch runs, a batch pulls each tenant
on its own (one failing tenant is that tenant's failure only), and the claims keep a tenant in one run at a time.

Real Dagster (the batch job executed in process, the schedule's planning against a real instance), real Xero
sandbox over HTTP, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from dagster import DagsterEventType, DagsterInstance, RunRequest
from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from providers.sandbox_kit.serve import ServedApp
from providers.xero.sandbox import XeroSandbox, create_app
from tests.helpers import make_tenant
from tests.xero.conftest import connect_xero, oauth_clients  # noqa: F401 -- fixtures
from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.models import CanonicalRecord, IntegrationSyncLog, TenantIntegration
from vrtx_pipelines.db.session import engine_for, session_scope
from vrtx_pipelines.orchestration.pulls import build_pull_batch_job
from vrtx_pipelines.orchestration.schedules import Tick, plan_batches
from vrtx_pipelines.registry import get_provider

pytestmark = pytest.mark.dagster
XERO = get_provider("xero")
TENANTS = ("acme", "bigco", "globex")
SIZES = {"contacts": 6, "invoices": 5, "lines_per_invoice": 1, "payments": 2, "items": 2}


class Outage:
    """Answers every Accounting API call of the organisations in ``down`` with Xero's 500."""

    def __init__(self) -> None:
        self.down: set[str] = set()

    def install(self, app: FastAPI) -> None:
        @app.middleware("http")
        async def fail(request: Request, call_next: Any) -> Response:
            if request.headers.get("xero-tenant-id", "").lower() in self.down:
                body = b'{"Title":"An error occurred","Status":500,"Detail":"An error occurred in Xero."}'
                return Response(body, 500, media_type="application/json")
            response: Response = await call_next(request)
            return response


@pytest.fixture
def fleet() -> Iterator[tuple[XeroSandbox, dict[str, str], Outage, ServedApp]]:
    """A Xero sandbox with an organisation per tenant, and an outage that can take one down."""
    sandbox = XeroSandbox(seed=11)
    orgs = {tenant: sandbox.add_organisation(tenant.title(), **SIZES) for tenant in TENANTS}  # type: ignore[arg-type]
    outage = Outage()
    app = create_app(sandbox)
    outage.install(app)
    with ServedApp(app) as served:
        yield sandbox, orgs, outage, served


@pytest.fixture
def base_urls(sandboxes: dict[str, ServedApp], fleet: Any) -> dict[str, str]:
    return {**{slug: s.base_url for slug, s in sandboxes.items()}, "xero": fleet[3].base_url}


@pytest.fixture
def connected(api: TestClient, settings: Settings, fleet: Any) -> dict[str, str]:
    """Every tenant connected to its organisation, as if two days ago (so a pull is due now)."""
    _sandbox, orgs, _outage, _served = fleet
    for tenant in TENANTS:
        make_tenant(settings, tenant)
        connect_xero(settings, tenant, [orgs[tenant]])
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        session.execute(update(TenantIntegration).values(connected_at=datetime.now(UTC) - timedelta(days=2)))
    return orgs


@pytest.fixture
def dagster(instance: DagsterInstance) -> DagsterInstance:
    instance.add_dynamic_partitions("xero_tenants", list(TENANTS))
    return instance


def tick(settings: Settings, instance: DagsterInstance, *, batch_size: int = 10, in_flight: int = 2) -> Tick:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        return plan_batches(
            session, instance, XERO, datetime.now(UTC), set(instance.get_dynamic_partitions("xero_tenants")),
            batch_size=batch_size, in_flight_limit=in_flight,
        )  # fmt: skip


def run_batch(instance: DagsterInstance, request: RunRequest) -> Any:
    assert XERO.pulls is not None
    job = build_pull_batch_job(XERO, XERO.pulls)
    return job.execute_in_process(
        run_config=request.run_config, instance=instance, tags=request.tags, raise_on_error=False
    )


def tenants_of(request: RunRequest) -> list[str]:
    return list(request.run_config["ops"]["xero_pull_batch"]["config"]["tenants"])


def connections(settings: Settings) -> dict[str, TenantIntegration]:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        return {c.tenant_id: c for c in session.scalars(select(TenantIntegration))}


def sync_logs(settings: Settings, tenant: str) -> list[IntegrationSyncLog]:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        connection = session.scalars(select(TenantIntegration).where(TenantIntegration.tenant_id == tenant)).one()
        query = select(IntegrationSyncLog).where(IntegrationSyncLog.tenant_integration_id == connection.id)
        return list(session.scalars(query.order_by(IntegrationSyncLog.id)))


def contacts_stored(settings: Settings, tenant: str) -> int:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        connection = session.scalars(select(TenantIntegration).where(TenantIntegration.tenant_id == tenant)).one()
        rows = session.scalars(
            select(CanonicalRecord.id).where(
                CanonicalRecord.tenant_integration_id == connection.id, CanonicalRecord.entity_type == "contacts"
            )
        )
        return len(list(rows))


def test_one_tenant_whose_provider_fails_is_logged_failed_while_its_batch_syncs_and_it_recovers_alone(
    settings: Settings, dagster: DagsterInstance, connected: dict[str, str], fleet: Any
) -> None:
    _sandbox, orgs, outage, _served = fleet
    outage.down.add(orgs["bigco"])
    first = tick(settings, dagster)
    (request,) = first.requests
    assert sorted(tenants_of(request)) == sorted(TENANTS)
    result = run_batch(dagster, request)
    assert result.success  # the batch as a whole: a tenant's failure is not its run's

    for tenant in ("acme", "globex"):
        assert contacts_stored(settings, tenant) == SIZES["contacts"]
        rows = sync_logs(settings, tenant)
        assert {r.entity_type for r in rows} == set(XERO.pulls.entities)  # type: ignore[union-attr]
        assert {r.status for r in rows} == {"success"} and {r.run_id for r in rows} == {result.run_id}
    failed = sync_logs(settings, "bigco")
    assert failed and {r.status for r in failed} == {"failed"} and {r.run_id for r in failed} == {result.run_id}
    message = failed[0].error_message or ""
    assert message.startswith("Xero") and "An error occurred in Xero" in message and "Traceback" not in message
    state = connections(settings)
    assert state["bigco"].last_error == message and state["bigco"].last_sync_at is None
    assert state["bigco"].sync_failures == 1 and state["bigco"].sync_claim is None
    assert all(state[t].sync_claim is None and state[t].sync_failures == 0 for t in ("acme", "globex"))
    # Dagster shows it per tenant: the synced tenants' partitions materialised, the failing one observed failed.
    logged = dagster.all_logs(result.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
    materialised = {
        (m.asset_key.to_user_string(), m.partition) for m in (r.asset_materialization for r in logged) if m is not None
    }
    assert ("xero/contacts", "acme") in materialised and ("xero/contacts", "globex") in materialised
    assert not any(partition == "bigco" for _key, partition in materialised)
    observed = [
        r.asset_observation
        for r in dagster.all_logs(result.run_id, of_type=DagsterEventType.ASSET_OBSERVATION)
        if r.asset_observation is not None
    ]
    assert {o.partition for o in observed} == {"bigco"}
    assert {o.metadata["status"].value for o in observed} == {"failed"}

    # Within its back-off nothing is due: the synced tenants are current, the failed one waits.
    assert tick(settings, dagster).requests == []
    outage.down.clear()
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:  # the back-off (a minute) has passed
        session.execute(
            update(TenantIntegration)
            .where(TenantIntegration.tenant_id == "bigco")
            .values(sync_claimed_at=datetime.now(UTC) - timedelta(minutes=2))
        )
    (retry,) = tick(settings, dagster).requests
    assert tenants_of(retry) == ["bigco"]  # retried alone
    before = {t: len(sync_logs(settings, t)) for t in ("acme", "globex")}
    assert run_batch(dagster, retry).success
    assert contacts_stored(settings, "bigco") == SIZES["contacts"]
    assert {r.status for r in sync_logs(settings, "bigco")[-6:]} == {"success"}
    state = connections(settings)
    assert state["bigco"].last_error is None and state["bigco"].sync_failures == 0
    assert {t: len(sync_logs(settings, t)) for t in ("acme", "globex")} == before


def test_a_claimed_tenant_is_never_queued_again_while_its_batch_is_queued_or_running(
    settings: Settings, dagster: DagsterInstance, connected: dict[str, str]
) -> None:
    first = tick(settings, dagster, batch_size=2, in_flight=5)
    assert [len(tenants_of(r)) for r in first.requests] == [2, 1]
    assert sorted(t for r in first.requests for t in tenants_of(r)) == sorted(TENANTS)
    assert first.backlog.waiting == 0 and first.backlog.claimed == 3
    # The runs were never launched (as if still queued): every later tick asks for nothing, however many.
    for _ in range(3):
        again = tick(settings, dagster, batch_size=2, in_flight=5)
        assert again.requests == [] and again.backlog.claimed == 3


def test_claims_whose_run_never_came_are_freed_and_the_oldest_due_go_first(
    settings: Settings, dagster: DagsterInstance, connected: dict[str, str]
) -> None:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        for days, tenant in ((5, "globex"), (3, "acme"), (4, "bigco")):
            session.execute(
                update(TenantIntegration)
                .where(TenantIntegration.tenant_id == tenant)
                .values(last_sync_at=datetime.now(UTC) - timedelta(days=days))
            )
    first = tick(settings, dagster, batch_size=1, in_flight=1)
    assert [tenants_of(r) for r in first.requests] == [["globex"]]  # the longest overdue
    assert first.backlog.waiting == 2 and first.backlog.oldest_wait_s > 3 * 86400 - 3600
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:  # the launch never happened, long ago
        session.execute(update(TenantIntegration).values(sync_claimed_at=datetime.now(UTC) - timedelta(minutes=5)))
    second = tick(settings, dagster, batch_size=1, in_flight=1)
    assert second.released == 1 and [tenants_of(r) for r in second.requests] == [["globex"]]


def loaded_packages(settings: Settings, tenant: str) -> int:
    from vrtx_pipelines.warehouse import working_dir

    loaded = working_dir(settings, "xero", tenant) / "load" / "loaded"
    return len(list(loaded.iterdir())) if loaded.is_dir() else 0


def due_again(settings: Settings) -> None:
    """As if the last syncs were a slot ago."""
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        session.execute(update(TenantIntegration).values(last_sync_at=datetime.now(UTC) - timedelta(days=1)))


def test_a_batch_sync_that_finds_nothing_new_runs_no_dlt_and_one_that_does_calls_the_provider_once_per_listing(
    settings: Settings, dagster: DagsterInstance, connected: dict[str, str], fleet: Any
) -> None:
    sandbox, orgs, _outage, served = fleet
    (first,) = tick(settings, dagster).requests
    assert run_batch(dagster, first).success
    packages = {t: loaded_packages(settings, t) for t in TENANTS}
    assert all(packages.values())
    due_again(settings)
    [changed] = sandbox.touch(orgs["acme"], "contacts", 1)
    calls = served.app.state.sandbox.request_count
    (second,) = tick(settings, dagster).requests
    result = run_batch(dagster, second)
    assert result.success
    # acme's change went through dlt; the two others found nothing and loaded nothing.
    assert loaded_packages(settings, "acme") == packages["acme"] + 1
    assert all(loaded_packages(settings, t) == packages[t] for t in ("bigco", "globex"))
    listings = len(XERO.pulls.entities)  # type: ignore[union-attr]
    assert served.app.state.sandbox.request_count - calls == 3 * listings  # dlt replayed what the probe read
    logged = dagster.all_logs(result.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
    figures = {
        (m.partition, m.asset_key.path[-1]): {k: v.value for k, v in m.metadata.items()}
        for m in (r.asset_materialization for r in logged)
        if m is not None
    }
    assert figures[("acme", "contacts")]["records_changed"] == 1
    assert figures[("globex", "contacts")]["records_changed"] == 0 and "probe_ms" in figures[("globex", "contacts")]
    assert "load_ms" not in figures[("globex", "contacts")]
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        stored = session.scalars(select(CanonicalRecord).where(CanonicalRecord.external_id == changed)).one()
        assert stored.remote_updated_at is not None and stored.remote_updated_at.year >= 2026
