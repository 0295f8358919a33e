"""The sync log: real Xero pull runs (Dagster ``materialize`` against the sandbox over HTTP) mirrored into
``integration_sync_logs`` by the run-status sensors, evaluated as the daemon would."""
# ruff: noqa: F811 -- the Xero fixtures imported below are requested by name

from __future__ import annotations

import json
from typing import Any

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRun, build_run_status_sensor_context
from fastapi.testclient import TestClient
from sqlalchemy import select

from providers.sandbox_kit.serve import ServedApp, free_port
from tests.helpers import make_tenant
from tests.xero.conftest import (  # the Xero sandbox fixtures, for tests outside tests/xero
    SIZES,
    base_urls,  # noqa: F401
    connect_xero,
    oauth_clients,  # noqa: F401
    records,
    xero,  # noqa: F401
)
from vrtx_pipelines.cli.sync import sync_now
from vrtx_pipelines.config import Settings, reset_settings_cache
from vrtx_pipelines.db.models import IntegrationSyncLog, OutboundEvent, TenantIntegration
from vrtx_pipelines.db.session import engine_for, session_scope
from vrtx_pipelines.errors import IntegrationError
from vrtx_pipelines.orchestration.synclog import sync_log_failure_sensor, sync_log_success_sensor
from vrtx_pipelines.synclog.mirror import scrub

pytestmark = pytest.mark.dagster


@pytest.fixture
def connected(api: TestClient, settings: Settings, xero: Any) -> str:
    token = make_tenant(settings, "acme")
    connect_xero(settings, "acme")
    return token


def latest_run(instance: DagsterInstance) -> DagsterRun:
    run = instance.get_runs(limit=1)[0]
    return run


def evaluate_sensors(instance: DagsterInstance, run: DagsterRun) -> None:
    """What the daemon does when the run finishes: the matching sensor sees the run's final event."""
    success = run.status.value == "SUCCESS"
    kind = DagsterEventType.RUN_SUCCESS if success else DagsterEventType.RUN_FAILURE
    event = instance.all_logs(run.run_id, of_type=kind)[-1].dagster_event
    assert event is not None
    sensor = sync_log_success_sensor if success else sync_log_failure_sensor
    context = build_run_status_sensor_context(
        sensor_name=sensor.name, dagster_event=event, dagster_instance=instance, dagster_run=run
    )
    sensor(context.for_run_failure() if not success else context)


def logs(settings: Settings, run_id: str | None = None) -> list[IntegrationSyncLog]:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        query = select(IntegrationSyncLog).order_by(IntegrationSyncLog.id)
        if run_id:
            query = query.where(IntegrationSyncLog.run_id == run_id)
        return list(session.scalars(query))


def events(settings: Settings, tenant: str = "acme") -> list[OutboundEvent]:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        return list(
            session.scalars(select(OutboundEvent).where(OutboundEvent.tenant_id == tenant).order_by(OutboundEvent.id))
        )


def connection(settings: Settings, tenant: str = "acme") -> TenantIntegration:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        return session.scalars(select(TenantIntegration).where(TenantIntegration.tenant_id == tenant)).one()


def test_a_successful_pull_run_logs_one_row_per_entity_with_counts_cursor_and_duration(
    api: TestClient, settings: Settings, instance: DagsterInstance, connected: str
) -> None:
    sync_now(settings, "xero", "acme", ["contacts", "invoices"], instance=instance)
    run = latest_run(instance)
    evaluate_sensors(instance, run)

    rows = {row.entity_type: row for row in logs(settings, run.run_id)}
    assert set(rows) == {"contacts", "invoices"}
    invoices = rows["invoices"]
    assert invoices.direction == "pull" and invoices.status == "success" and invoices.sync_type == "full"
    assert invoices.counts is not None
    assert invoices.counts["rows_loaded"] == invoices.counts["records_changed"] == SIZES["invoices"]
    assert invoices.counts["pages"] >= 1 and invoices.counts["api_calls"] >= 1
    assert invoices.cursor is not None and invoices.cursor["after"] and invoices.cursor["before"] is None
    assert invoices.duration_ms is not None and invoices.duration_ms > 0
    assert invoices.error_message is None
    assert invoices.request_data == {
        "trigger": "cli",
        "partition": "acme",
        "entity": "invoices",
        "full": False,
        "cursor": None,
    }
    assert invoices.response_data is not None and invoices.response_data["rows_loaded"] == SIZES["invoices"]
    assert connection(settings).last_sync_at is not None and connection(settings).last_error is None


def test_the_crm_hears_sync_completed_and_records_changed_with_a_cursor_that_reads_exactly_the_changes(
    api: TestClient, settings: Settings, xero: Any, instance: DagsterInstance, connected: str
) -> None:
    sandbox, _served, org = xero
    sync_now(settings, "xero", "acme", ["contacts"], instance=instance)
    evaluate_sensors(instance, latest_run(instance))
    touched = sandbox.touch(org, "contacts", 3)
    sync_now(settings, "xero", "acme", ["contacts"], instance=instance)
    second = latest_run(instance)
    evaluate_sensors(instance, second)

    row = logs(settings, second.run_id)[0]
    assert row.sync_type == "incremental" and row.counts is not None and row.counts["records_changed"] == 3
    assert row.cursor is not None and row.cursor["before"] and row.cursor["after"] >= row.cursor["before"]
    recorded = [(e.event_type, e.payload) for e in events(settings)]
    completed = [p for t, p in recorded if t == "sync.completed"]
    changed = [p for t, p in recorded if t == "records.changed"]
    assert len(completed) == 2 and completed[-1]["run_id"] == second.run_id
    assert completed[-1]["entities"] == {"contacts": {"rows_loaded": 3, "records_changed": 3}}
    assert changed[-1]["entity"] == "contacts" and changed[-1]["count"] == 3
    page = records(api, connected, "contacts", changed[-1]["cursor"])
    assert {r["external_id"] for r in page["records"]} == set(touched)


def test_a_sensor_that_sees_the_same_run_again_neither_duplicates_rows_nor_events(
    api: TestClient, settings: Settings, instance: DagsterInstance, connected: str
) -> None:
    sync_now(settings, "xero", "acme", ["contacts"], instance=instance)
    run = latest_run(instance)
    evaluate_sensors(instance, run)
    first_rows = [(r.id, r.entity_type, r.status) for r in logs(settings)]
    first_events = [e.id for e in events(settings)]
    evaluate_sensors(instance, run)
    evaluate_sensors(instance, run)
    assert [(r.id, r.entity_type, r.status) for r in logs(settings)] == first_rows
    assert [e.id for e in events(settings)] == first_events


def failing_path(app: Any, fragment: str) -> Any:
    """``app`` with every request whose path contains ``fragment`` answered 503 (the rest goes through)."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and fragment in scope["path"]:
            await send({"type": "http.response.start", "status": 503, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"Service Unavailable"})
            return
        await app(scope, receive, send)

    return wrapped


def test_one_entitys_failure_is_one_row_on_that_entity_naming_its_own_request(
    api: TestClient,
    settings: Settings,
    xero: Any,
    instance: DagsterInstance,
    connected: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _sandbox, served, _org = xero
    with ServedApp(failing_path(served.app, "/Invoices")) as invoices_down:
        monkeypatch.setenv("VRTX_PROVIDER_BASE_URLS", json.dumps({"xero": invoices_down.base_url}))
        reset_settings_cache()
        with pytest.raises(IntegrationError):
            sync_now(settings, "xero", "acme", ["contacts", "invoices"], instance=instance)
    run = latest_run(instance)
    evaluate_sensors(instance, run)

    # Contacts did not fail (they were not loaded either): no row claims they did, none names Invoices for them.
    [row] = logs(settings, run.run_id)
    assert (row.entity_type, row.status, row.direction) == ("invoices", "failed", "pull")
    assert row.error_message == "Xero: Service Unavailable"  # the provider's own answer to GET /Invoices
    state = connection(settings)
    assert state.last_error == row.error_message and state.last_sync_at is None
    failed = [e for e in events(settings) if e.event_type == "sync.failed"]
    assert len(failed) == 1 and failed[0].payload["error"] == row.error_message
    assert failed[0].payload["entities"] == {"invoices": {"rows_loaded": 0, "records_changed": 0}}


def test_a_network_failure_is_one_row_naming_the_request_of_its_own_entity_and_no_secret(
    api: TestClient, settings: Settings, instance: DagsterInstance, connected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VRTX_PROVIDER_BASE_URLS", json.dumps({"xero": f"http://127.0.0.1:{free_port()}"}))
    reset_settings_cache()
    with pytest.raises(IntegrationError):
        sync_now(settings, "xero", "acme", ["contacts", "invoices", "payments"], instance=instance)
    run = latest_run(instance)
    evaluate_sensors(instance, run)

    [row] = logs(settings, run.run_id)  # once, not once per entity all quoting the same request
    assert row.status == "failed" and row.entity_type in ("contacts", "invoices", "payments")
    assert row.error_message and f"Could not reach Xero (GET /{row.entity_type.capitalize()})" in row.error_message
    assert "Traceback" not in row.error_message and "\n" not in row.error_message
    assert connection(settings).last_error == row.error_message

    # The next good run clears the error and moves last_sync_at.
    monkeypatch.setenv("VRTX_PROVIDER_BASE_URLS", json.dumps(settings.provider_base_urls))
    reset_settings_cache()
    sync_now(settings, "xero", "acme", ["contacts"], instance=instance)
    evaluate_sensors(instance, latest_run(instance))
    state = connection(settings)
    assert state.last_error is None and state.last_sync_at is not None


def test_a_run_that_fails_before_any_entity_is_one_row_for_the_run(
    api: TestClient, settings: Settings, instance: DagsterInstance, connected: str
) -> None:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        session.scalars(select(TenantIntegration)).one().status = "expired"
    with pytest.raises(IntegrationError):
        sync_now(settings, "xero", "acme", ["contacts", "invoices", "payments"], instance=instance)
    run = latest_run(instance)
    evaluate_sensors(instance, run)
    [row] = logs(settings, run.run_id)
    assert (row.entity_type, row.status) == (None, "failed")
    assert row.error_message == "Xero is not connected for tenant acme (expired)"
    assert row.request_data and row.request_data["entities"] == ["contacts", "invoices", "payments"]


def test_runs_that_are_not_vrtx_syncs_leave_no_log(
    settings: Settings, instance: DagsterInstance, api: TestClient
) -> None:
    from dagster import job, op

    @op
    def nothing() -> None:
        return None

    @job(tags={"team": "data"})
    def housekeeping() -> None:
        nothing()

    result = housekeeping.execute_in_process(instance=instance)
    evaluate_sensors(instance, result.dagster_run)
    assert logs(settings) == []


def test_failure_messages_keep_the_first_line_and_lose_anything_that_looks_like_a_secret() -> None:
    message = (
        "HTTPError: GET https://user:pw@x.example/a?access_token=abc123&x=1 failed\nTraceback (most recent call last)"
    )
    cleaned = scrub(message)
    assert "abc123" not in cleaned and "pw@" not in cleaned and "Traceback" not in cleaned
    assert scrub("Bearer eyJhbGciOi.secret.value rejected") == "Bearer [redacted] rejected"
