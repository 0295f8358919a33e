"""Pulling Xero through the real Dagster assets into the warehouse and canonical records, against the sandbox."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import dlt
import pytest
from dagster import DagsterInstance
from fastapi.testclient import TestClient

from providers.sandbox_kit.serve import ServedApp
from providers.xero.sandbox import XeroSandbox
from tests.helpers import bearer, make_tenant
from tests.xero.conftest import connect_xero, records
from vrtx_pipelines.cli.sync import sync_now
from vrtx_pipelines.config import Settings
from vrtx_pipelines.errors import IntegrationError
from vrtx_pipelines.names import dataset_name
from vrtx_pipelines.warehouse import pipeline_for

pytestmark = pytest.mark.dagster
Xero = tuple[XeroSandbox, ServedApp, str]
ROOT = Path(__file__).resolve().parents[2]


def warehouse_count(settings: Settings, tenant: str, table: str) -> int:
    pipeline = pipeline_for(settings, "xero", tenant)
    with pipeline.sql_client() as client:
        rows = client.execute_sql(f"SELECT COUNT(*) FROM {table}")  # noqa: S608 -- our own table names
    return int(rows[0][0])


def sync(
    settings: Settings, instance: DagsterInstance, tenant: str = "acme", **kwargs: Any
) -> dict[str, dict[str, str]]:
    rows = sync_now(settings, "xero", tenant, kwargs.pop("entities", []), instance=instance, **kwargs)
    return {r[0]: {"rows_loaded": r[1], "changed": r[2], "pages": r[3], "cursor": r[4]} for r in rows}


@pytest.fixture
def connected(api: TestClient, settings: Settings, xero: Xero) -> str:
    token = make_tenant(settings, "acme")
    connect_xero(settings, "acme")
    return token


def test_invoice_lines_land_in_their_child_table_and_in_the_canonical_invoice(
    api: TestClient, settings: Settings, xero: Xero, instance: DagsterInstance, connected: str
) -> None:
    """Xero's LineItems: a child table in the warehouse, the canonical invoice's lines in the records API (the
    entity counts themselves are the generic flow test's, tests/flows/test_pull.py)."""
    sandbox, _served, org = xero
    sync(settings, instance, entities=["invoices"])
    assert warehouse_count(settings, "acme", "invoices__line_items") == sandbox.count(org, "invoices") * 3
    invoice = records(api, connected, "invoices")["records"][0]["data"]
    assert len(invoice["lines"]) == 3 and invoice["currency"] and invoice["external_id"]


def test_two_tenants_synced_concurrently_each_get_only_their_own_data(
    api: TestClient, settings: Settings, xero: Xero, instance: DagsterInstance
) -> None:
    sandbox, _served, first_org = xero
    second_org = sandbox.add_organisation("Globex", contacts=11, invoices=17, payments=3, items=2)
    tokens = {"acme": make_tenant(settings, "acme"), "globex": make_tenant(settings, "globex")}
    connect_xero(settings, "acme", [first_org])
    connect_xero(settings, "globex", [second_org])
    # Runs are separate processes in production (one per run); so they are here.
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "vrtx_pipelines.cli.main", "sync", "xero", "--tenant", tenant,
             "--entity", "contacts", "--entity", "invoices"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tenant in tokens
    ]  # fmt: skip
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-3000:]
        assert "invoices" in out
    assert warehouse_count(settings, "acme", "invoices") == sandbox.count(first_org, "invoices")
    assert warehouse_count(settings, "globex", "invoices") == sandbox.count(second_org, "invoices") == 17
    assert dataset_name("xero", "acme") != dataset_name("xero", "globex")
    acme_ids = {r["external_id"] for r in records(api, tokens["acme"], "contacts")["records"]}
    globex_ids = {r["external_id"] for r in records(api, tokens["globex"], "contacts")["records"]}
    assert len(globex_ids) == 11 and not acme_ids & globex_ids


def test_a_disconnected_connection_stops_syncing_with_a_clear_status(
    api: TestClient, settings: Settings, xero: Xero, instance: DagsterInstance, connected: str
) -> None:
    sync(settings, instance, entities=["contacts"])
    api.delete("/api/v1/integrations/xero/disconnect", headers=bearer(connected))
    with pytest.raises(IntegrationError, match="not connected"):
        sync(settings, instance, entities=["contacts"])
    status = api.get("/api/v1/integrations/xero/status", headers=bearer(connected)).json()
    assert status["status"] == "disconnected"
    # Kept data stays readable until purged.
    assert records(api, connected, "contacts")["records"]


def test_records_api_pages_with_a_stable_cursor_and_refuses_bad_input(
    api: TestClient, settings: Settings, xero: Xero, instance: DagsterInstance, connected: str
) -> None:
    sandbox, _served, org = xero
    sync(settings, instance, entities=["contacts"])
    seen: list[str] = []
    cursor = None
    while True:
        page = records(api, connected, "contacts", cursor, limit=7)
        seen += [r["external_id"] for r in page["records"]]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert len(seen) == len(set(seen)) == sandbox.count(org, "contacts")
    bad = api.get("/api/v1/integrations/xero/records/contacts?cursor=zzz", headers=bearer(connected))
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_failed"
    unknown = api.get("/api/v1/integrations/xero/records/widgets", headers=bearer(connected))
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_entity"
    other = make_tenant(settings, "other")
    assert api.get("/api/v1/integrations/xero/records/contacts", headers=bearer(other)).status_code == 404


def test_dlt_state_lives_in_the_tenants_own_pipeline(settings: Settings) -> None:
    pipeline = pipeline_for(settings, "xero", "acme-co")
    assert pipeline.pipeline_name == pipeline.dataset_name == dataset_name("xero", "acme-co")
    assert pipeline.dataset_name.startswith("xero_acme_co_")
    assert dataset_name("xero", "acme-co") != dataset_name("xero", "acme_co")
    assert str(settings.home) in pipeline.pipelines_dir
    assert isinstance(pipeline, dlt.Pipeline)


def test_the_partitions_sensor_requests_a_new_connections_first_full_sync_once(
    api: TestClient, settings: Settings, xero: Xero, instance: DagsterInstance, connected: str
) -> None:
    from dagster import build_sensor_context

    from vrtx_pipelines.definitions import build_definitions

    defs = build_definitions()  # the code location's own wiring: the sensor targets the pull jobs
    sensor = defs.resolve_sensor_def("tenant_partitions_sensor")

    def tick() -> Any:
        # As the daemon does: with an instance ref, the partitions the tick adds count for its run requests.
        return sensor.evaluate_tick(build_sensor_context(instance_ref=instance.get_ref(), definitions=defs))

    first = tick()
    (run,) = first.run_requests or []
    assert run.partition_key == "acme" and run.job_name == "xero_sync"
    assert run.tags["vrtx/trigger"] == "connected"
    assert run.run_config == {"ops": {"xero_pull": {"config": {"full": True}}}}
    assert [r.partition_keys for r in first.dynamic_partitions_requests or []] == [["acme"]]
    for request in first.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys or []))
    # The next tick names the same run key (Dagster launches a key once); after the sync, nothing is requested.
    again = tick()
    assert [r.run_key for r in again.run_requests or []] == [run.run_key]
    sync(settings, instance)
    assert not tick().run_requests
