"""From stored webhook events to targeted pulls: the sensor's run requests, claims that never launch twice, run
outcomes written back to the inbox, and a change made in the Xero sandbox showing up in the records API."""
# ruff: noqa: F811 -- the Xero fixtures are imported from tests/xero/conftest.py and used by name

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from dagster import AssetKey, DagsterInstance, RunRequest, SensorResult, SkipReason, build_sensor_context, materialize
from dagster._core.test_utils import instance_for_test
from fastapi.testclient import TestClient

from providers.sandbox_kit.serve import ServedApp, free_port
from tests.helpers import bearer, running_worker
from tests.test_webhooks import KEY, Xero, acme, api, inbox, post, xero_event, xero_payload  # noqa: F401 -- fixtures
from tests.xero.conftest import base_urls, oauth_clients, records, xero  # noqa: F401
from vrtx_pipelines.cli.sync import sync_now
from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.session import engine_for, session_factory
from vrtx_pipelines.names import WEBHOOK_BATCH_TAG as BATCH_TAG
from vrtx_pipelines.orchestration.pulls import build_pull_assets
from vrtx_pipelines.orchestration.schedules import pull_job
from vrtx_pipelines.orchestration.webhooks import build_webhook_sensor
from vrtx_pipelines.registry import get_provider
from vrtx_pipelines.webhooks.dispatch import RELEASED, claim_batches
from vrtx_pipelines.webhooks.launch import GraphQLRunLauncher, ImmediateDispatcher

pytestmark = pytest.mark.dagster
XERO = get_provider("xero")


@pytest.fixture
def instance(settings: Settings) -> Iterator[DagsterInstance]:
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("xero_tenants", ["acme"])
        yield instance


def tick(instance: DagsterInstance) -> SensorResult | SkipReason:
    sensor = build_webhook_sensor(XERO, pull_job(XERO))
    result = sensor(build_sensor_context(instance=instance))
    assert isinstance(result, SensorResult | SkipReason)
    return result


def run_pull(instance: DagsterInstance, request: RunRequest) -> Any:
    assert XERO.pulls is not None
    return materialize(
        [build_pull_assets(XERO, XERO.pulls)],
        instance=instance,
        partition_key=request.partition_key,
        selection=request.asset_selection,
        tags=request.tags,
        raise_on_error=False,
    )


def poll(condition: Any, timeout_s: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met before the deadline")


def test_the_sensor_coalesces_a_connections_events_into_one_targeted_pull_and_never_dispatches_twice(
    api: TestClient, settings: Settings, xero: Xero, acme: str, instance: DagsterInstance
) -> None:
    org = xero[2]
    post(api, xero_payload(org, xero_event(org, "INVOICE"), xero_event(org, "INVOICE")), KEY)
    post(api, xero_payload(org, xero_event(org, "CONTACT")), KEY)
    result = tick(instance)
    assert isinstance(result, SensorResult)
    [request] = result.run_requests or []
    assert request.partition_key == "acme"
    assert request.asset_selection == [AssetKey(["xero", e]) for e in ("contacts", "invoices", "payments")]
    assert request.tags["vrtx/trigger"] == "webhook"
    assert request.tags["vrtx/connection"] == "xero:acme"
    assert request.run_key == request.tags[BATCH_TAG]
    rows = inbox(settings)
    assert len(rows) == 3 and {(r.status, r.run_id) for r in rows} == {("dispatched", request.run_key)}
    assert isinstance(tick(instance), SkipReason)


def test_events_of_a_tenant_not_yet_in_the_partitions_wait_for_a_later_tick(
    api: TestClient, settings: Settings, xero: Xero, acme: str
) -> None:
    with instance_for_test() as empty:
        post(api, xero_payload(xero[2], xero_event(xero[2])), KEY)
        assert isinstance(tick(empty), SkipReason)
        assert [row.status for row in inbox(settings)] == ["received"]


def test_two_dispatchers_claiming_at_once_split_the_events_without_overlap(
    api: TestClient, settings: Settings, xero: Xero, acme: str
) -> None:
    org = xero[2]
    post(api, xero_payload(org, *[xero_event(org) for _ in range(20)]), KEY)
    sessions = session_factory(engine_for(settings.sqlalchemy_url))
    first, second = sessions(), sessions()
    try:
        one = claim_batches(first, XERO)
        first.commit()
        two = claim_batches(second, XERO)
        second.commit()
    finally:
        first.close()
        second.close()
    assert [len(b.inbox_ids) for b in one] == [20] and two == []


def test_a_change_made_in_xero_reaches_the_records_api_through_a_signed_webhook_and_a_targeted_pull(
    api: TestClient, settings: Settings, xero: Xero, acme: str, instance: DagsterInstance
) -> None:
    sandbox, _served, org = xero
    sync_now(settings, "xero", "acme", [], instance=instance)
    cursor = records(api, acme, "invoices")["next_cursor"]
    with ServedApp(api.app) as served:
        sandbox.subscribe_webhooks(f"{served.base_url}/api/v1/webhooks/xero/acme", KEY, [org])
        [changed] = sandbox.touch(org, "invoices", 1)
        assert sandbox.flush_webhooks()
        poll(lambda: inbox(settings))
    result = tick(instance)
    assert isinstance(result, SensorResult)
    [request] = result.run_requests or []
    assert {key.path[-1] for key in request.asset_selection or []} == {"invoices", "payments"}
    run = run_pull(instance, request)
    assert run.success
    assert changed in [r["external_id"] for r in records(api, acme, "invoices", cursor)["records"]]
    tick(instance)  # the next tick sees the run succeeded
    assert {(row.status, row.run_id) for row in inbox(settings)} == {("processed", run.run_id)}


def test_a_failed_targeted_pull_marks_its_events_failed_with_the_reason(
    api: TestClient, settings: Settings, xero: Xero, acme: str, instance: DagsterInstance
) -> None:
    _sandbox, served, org = xero
    post(api, xero_payload(org, xero_event(org, "CONTACT")), KEY)
    result = tick(instance)
    assert isinstance(result, SensorResult)
    knobs = served.app.state.sandbox
    knobs.fail_on_page, knobs.fail_on_page_status, knobs.fail_on_page_times = 1, 400, 100
    run = run_pull(instance, (result.run_requests or [])[0])
    assert not run.success
    tick(instance)
    [row] = inbox(settings)
    assert row.status == "failed" and row.run_id == run.run_id
    assert row.error_message and "failed" in row.error_message


def test_the_worker_hands_events_back_to_the_sensor_when_the_dagster_webserver_is_unreachable(
    api: TestClient, settings: Settings, xero: Xero, acme: str, instance: DagsterInstance
) -> None:
    sessions = session_factory(engine_for(settings.sqlalchemy_url))
    dispatcher = ImmediateDispatcher(sessions, GraphQLRunLauncher(f"http://127.0.0.1:{free_port()}", timeout_s=2))
    with running_worker(dispatcher) as worker:
        assert post(api, xero_payload(xero[2], xero_event(xero[2])), KEY).status_code == 200
        assert worker.wait_idle()
    assert dispatcher.launched == []
    assert [(row.status, row.run_id) for row in inbox(settings)] == [("received", RELEASED)]
    result = tick(instance)
    assert isinstance(result, SensorResult) and len(result.run_requests or []) == 1


def test_events_for_entities_the_tenant_does_not_sync_are_skipped(
    api: TestClient, settings: Settings, xero: Xero, acme: str, instance: DagsterInstance
) -> None:
    current = api.get("/api/v1/integrations/xero/settings", headers=bearer(acme)).json()["settings"]
    answer = api.put(
        "/api/v1/integrations/xero/settings", json={**current, "entities": ["invoices"]}, headers=bearer(acme)
    )
    assert answer.status_code == 200, answer.text
    post(api, xero_payload(xero[2], xero_event(xero[2], "CONTACT")), KEY)
    assert isinstance(tick(instance), SkipReason)
    [row] = inbox(settings)
    assert row.status == "skipped" and row.processed_at is not None


def test_the_webhook_sensor_is_part_of_the_code_location() -> None:
    from vrtx_pipelines.definitions import build_definitions

    defs = build_definitions()
    assert defs.get_sensor_def("xero_webhook_sensor").job_name == "xero_sync"
