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

from providers.xero.sandbox import XeroSandbox
from tests.helpers import bearer, make_tenant
from tests.xero.conftest import all_records, connect_xero, records
from vrtx_pipelines.config import Settings
from vrtx_pipelines.errors import IntegrationError
from vrtx_pipelines.pulls import dataset_name, pipeline_for
from vrtx_pipelines.sandbox_server import ServedApp
from vrtx_pipelines.syncing import sync_now

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


def test_full_sync_loads_exactly_what_the_sandbox_has(
    api: TestClient, settings: Settings, xero: Xero, instance: DagsterInstance, connected: str
) -> None:
    sandbox, _served, org = xero
    result = sync(settings, instance)
    assert set(result) == {"contacts", "invoices", "payments", "products", "tax_rates", "accounts"}
    for entity in ("contacts", "invoices", "payments"):
        assert warehouse_count(settings, "acme", entity) == sandbox.count(org, entity)
    assert warehouse_count(settings, "acme", "invoices__line_items") == sandbox.count(org, "invoices") * 3
    assert warehouse_count(settings, "acme", "products") == sandbox.count(org, "items")
    page = records(api, connected, "invoices")
    assert len(page["records"]) == sandbox.count(org, "invoices")
    invoice = page["records"][0]["data"]
    assert invoice["lines"] and invoice["currency"] and invoice["external_id"]
    assert len(records(api, connected, "tax_rates")["records"]) == sandbox.count(org, "tax_rates")
    status = api.get("/api/v1/integrations/xero/status", headers=bearer(connected)).json()
    assert status["last_sync_at"] and status["last_error"] is None


def test_incremental_sync_fetches_only_what_changed_and_the_cursor_shows_it(
    api: TestClient, settings: Settings, xero: Xero, instance: DagsterInstance, connected: str
) -> None:
    sandbox, _served, org = xero
    sync(settings, instance)
    cursor = records(api, connected, "invoices")["next_cursor"]
    touched = sandbox.touch(org, "invoices", 5)
    created = sandbox.create(org, "contacts", 2)
    result = sync(settings, instance, entities=["invoices", "contacts"])
    assert result["invoices"]["rows_loaded"] == "5"
    assert result["contacts"]["rows_loaded"] == "2"
    assert warehouse_count(settings, "acme", "invoices") == sandbox.count(org, "invoices")
    changed = records(api, connected, "invoices", cursor)
    assert {r["external_id"] for r in changed["records"]} == set(touched)
    assert not records(api, connected, "invoices", changed["next_cursor"])["records"]
    assert {r["external_id"] for r in records(api, connected, "contacts")["records"]} >= set(created)


def test_a_5xx_mid_paging_then_a_rerun_loads_everything_exactly_once(
    api: TestClient, settings: Settings, xero: Xero, instance: DagsterInstance, connected: str
) -> None:
    sandbox, served, org = xero
    knobs = served.app.state.sandbox
    sandbox.create(org, "invoices", 1000)  # more than one page of 1,000
    knobs.fail_on_page, knobs.fail_on_page_status, knobs.fail_on_page_times = 2, 500, 10
    with pytest.raises(IntegrationError):
        sync(settings, instance, entities=["invoices"])
    knobs.fail_on_page = None
    sync(settings, instance, entities=["invoices"])
    assert warehouse_count(settings, "acme", "invoices") == sandbox.count(org, "invoices")
    assert len(all_records(api, connected, "invoices")) == sandbox.count(org, "invoices")


def test_a_429_storm_still_ends_in_a_complete_sync(
    api: TestClient, settings: Settings, xero: Xero, instance: DagsterInstance, connected: str
) -> None:
    sandbox, served, org = xero
    served.app.state.sandbox.rate_limit_next = 4
    served.app.state.sandbox.retry_after_s = 0
    result = sync(settings, instance, entities=["contacts", "invoices"])
    assert warehouse_count(settings, "acme", "contacts") == sandbox.count(org, "contacts")
    assert warehouse_count(settings, "acme", "invoices") == sandbox.count(org, "invoices")
    assert result["invoices"]["rows_loaded"] == str(sandbox.count(org, "invoices"))


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
            [sys.executable, "-m", "vrtx_pipelines.cli", "sync", "xero", "--tenant", tenant, "--entity", "contacts",
             "--entity", "invoices"],
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
