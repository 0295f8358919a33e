"""The `vrtx` code location: loads, wires every provider, and its sensor and assets really run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from dagster import AssetKey, DagsterInstance, Definitions, build_sensor_context, materialize
from dagster._core.test_utils import instance_for_test
from fastapi.testclient import TestClient

from providers.sandbox_kit.serve import ServedApp
from providers.stripe.sandbox import DEMO_ACCOUNT_ID, DEMO_SECRET_KEY
from providers.twilio.sandbox_credentials import DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN
from tests.helpers import bearer, make_tenant
from vrtx_pipelines.config import Settings
from vrtx_pipelines.definitions import build_definitions, defs
from vrtx_pipelines.orchestration.health import connection_health_asset
from vrtx_pipelines.orchestration.partitions import build_partitions_sensor
from vrtx_pipelines.registry import get_provider, load_providers

pytestmark = pytest.mark.dagster


def test_the_code_location_loads_with_every_expected_definition() -> None:
    graph = defs.resolve_asset_graph()
    connectable = {"stripe", "twilio", "mailchimp"}
    xero_pulls = {
        AssetKey(["xero", e]) for e in ("contacts", "invoices", "payments", "products", "tax_rates", "accounts")
    }
    quickbooks_pulls = {
        AssetKey(["quickbooks", e])
        for e in ("contacts", "invoices", "payments", "products", "tax_codes", "tax_rates", "accounts")
    }
    stripe_entities = (
        "customers", "products", "prices", "invoices", "payment_intents", "charges", "refunds", "subscriptions",
        "balance_transactions", "payouts",
    )  # fmt: skip
    stripe_pulls = {AssetKey(["stripe", e]) for e in stripe_entities}
    google_pulls = {AssetKey(["google_workspace", e]) for e in ("messages", "events")}
    microsoft_pulls = {AssetKey(["microsoft365", e]) for e in ("messages", "events")}
    health = {AssetKey([s, "connection_health"]) for s in connectable}
    pulls_of = {"xero": xero_pulls, "quickbooks": quickbooks_pulls, "stripe": stripe_pulls,
                "google_workspace": google_pulls, "microsoft365": microsoft_pulls}  # fmt: skip
    assert set(graph.get_all_asset_keys()) == health.union(*pulls_of.values())
    pulled = tuple(pulls_of.items())
    for slug, pulls in pulled:
        for key in pulls:
            assets_def = graph.get(key).assets_def
            assert getattr(assets_def.partitions_def, "name", None) == f"{slug}_tenants"
        assert defs.resolve_job_def(f"{slug}_sync") is not None
        assert defs.resolve_job_def(f"{slug}_batch_sync") is not None  # what the incremental schedule launches
        assert defs.resolve_schedule_def(f"{slug}_incremental_pulls").job_name == f"{slug}_batch_sync"
    assert defs.resolve_schedule_def("oauth_token_refresh_schedule") is not None
    for slug in connectable:
        assert defs.resolve_job_def(f"{slug}_connection_health") is not None
        assert defs.resolve_schedule_def(f"{slug}_connection_health_schedule") is not None
        assets_def = graph.get(AssetKey([slug, "connection_health"])).assets_def
        assert assets_def.partitions_def is not None
        assert getattr(assets_def.partitions_def, "name", None) == f"{slug}_tenants"
    assert defs.resolve_sensor_def("tenant_partitions_sensor") is not None
    Definitions.validate_loadable(defs)  # what the code server does: unique op and job names, resolvable jobs
    build_definitions()  # building twice is safe (no global state)


@pytest.fixture
def dagster_env(settings: Settings) -> Iterator[DagsterInstance]:
    """A throwaway Dagster instance; the code location reads this test's settings from the environment."""
    with instance_for_test() as instance:
        yield instance


def test_partition_sensor_adds_connected_tenants_and_removes_disconnected_ones(
    api: TestClient, settings: Settings, dagster_env: DagsterInstance
) -> None:
    acme, globex = make_tenant(settings, "acme"), make_tenant(settings, "globex")
    for token in (acme, globex):  # a connectable provider that pulls nothing: no first sync follows
        api.post(
            "/api/v1/integrations/twilio/connect",
            json={"credentials": {"account_sid": DEMO_ACCOUNT_SID, "auth_token": DEMO_AUTH_TOKEN}},
            headers=bearer(token),
        )
    sensor = build_partitions_sensor(list(load_providers().values()))
    result = sensor.evaluate_tick(build_sensor_context(instance=dagster_env))
    for request in result.dynamic_partitions_requests or []:
        dagster_env.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys or []))
    assert sorted(dagster_env.get_dynamic_partitions("twilio_tenants")) == ["acme", "globex"]
    assert dagster_env.get_dynamic_partitions("xero_tenants") == []

    api.delete("/api/v1/integrations/twilio/disconnect", headers=bearer(globex))
    result = sensor.evaluate_tick(build_sensor_context(instance=dagster_env))
    requests = result.dynamic_partitions_requests or []
    assert [(type(r).__name__, r.partitions_def_name, list(r.partition_keys or [])) for r in requests] == [
        ("DeleteDynamicPartitionsRequest", "twilio_tenants", ["globex"])
    ]
    idle = sensor.evaluate_tick(build_sensor_context(instance=dagster_env))
    assert idle.skip_message


def test_connection_health_materialises_per_tenant_with_metadata_and_no_secret(
    api: TestClient, settings: Settings, dagster_env: DagsterInstance, sandboxes: dict[str, ServedApp]
) -> None:
    token = make_tenant(settings, "acme")
    api.post(
        "/api/v1/integrations/stripe/connect",
        json={"credentials": {"secret_key": DEMO_SECRET_KEY}},
        headers=bearer(token),
    )
    dagster_env.add_dynamic_partitions("stripe_tenants", ["acme"])
    asset = connection_health_asset(get_provider("stripe"))
    result = materialize([asset], partition_key="acme", instance=dagster_env)
    assert result.success
    (event,) = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["external_account_id"].value == DEMO_ACCOUNT_ID
    assert DEMO_SECRET_KEY not in repr(metadata)

    sandboxes["stripe"].app.state.sandbox.fail_next_with_status = 401
    failed = materialize([asset], partition_key="acme", instance=dagster_env, raise_on_error=False)
    assert not failed.success
    status = api.get("/api/v1/integrations/stripe/status", headers=bearer(token)).json()
    assert status["status"] == "error" and status["last_error"]


def test_the_daily_health_check_runs_many_tenants_per_run_and_one_rejected_credential_fails_only_its_tenant(
    api: TestClient, settings: Settings, dagster_env: DagsterInstance, sandboxes: dict[str, ServedApp]
) -> None:
    from dagster import DagsterEventType, build_schedule_context

    from vrtx_pipelines.orchestration.health import connection_health_batch_job, connection_health_schedule

    tokens = {tenant: make_tenant(settings, tenant) for tenant in ("acme", "globex", "initech")}
    for token in tokens.values():
        api.post(
            "/api/v1/integrations/stripe/connect",
            json={"credentials": {"secret_key": DEMO_SECRET_KEY}},
            headers=bearer(token),
        )
    dagster_env.add_dynamic_partitions("stripe_tenants", list(tokens))
    stripe = get_provider("stripe")
    job = connection_health_batch_job(stripe)
    daily = datetime(2026, 12, 1, 6, tzinfo=UTC)
    context = build_schedule_context(instance=dagster_env, scheduled_execution_time=daily)
    (request,) = connection_health_schedule(stripe, job).evaluate_tick(context).run_requests or []
    assert request.run_config["ops"]["stripe_connection_health_checks"]["config"]["tenants"] == list(tokens)
    sandboxes["stripe"].app.state.sandbox.fail_next_with_status = 401  # the first tenant's check is refused
    result = job.execute_in_process(run_config=request.run_config, instance=dagster_env)
    assert result.success
    checked = {
        e.asset_materialization.partition
        for e in dagster_env.all_logs(result.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
        if e.asset_materialization is not None
    }
    assert checked == {"globex", "initech"}
    status = api.get("/api/v1/integrations/stripe/status", headers=bearer(tokens["acme"])).json()
    assert status["status"] == "error" and status["last_error"]
