"""Pulling QuickBooks through the real Dagster assets: change data capture with deletes, the 30-day window's
fallback to a full sync (and the sync log saying so), lines and linked invoices as child tables, a Fault inside
HTTP 200, and two companies synced at once."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.helpers import bearer, make_tenant
from tests.quickbooks.conftest import Qbo, connect, records, sync
from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.models import IntegrationSyncLog
from vrtx_pipelines.db.session import engine_for, session_scope
from vrtx_pipelines.errors import IntegrationError
from vrtx_pipelines.synclog.mirror import mirror_run
from vrtx_pipelines.warehouse import pipeline_for

pytestmark = pytest.mark.dagster
ROOT = Path(__file__).resolve().parents[2]


def warehouse(settings: Settings, statement: str, tenant: str = "acme") -> list[tuple[object, ...]]:
    with pipeline_for(settings, "quickbooks", tenant).sql_client() as client:
        return [tuple(row) for row in client.execute_sql(statement)]


@pytest.fixture
def connected(api: TestClient, settings: Settings, qbo: Qbo) -> str:
    token = make_tenant(settings, "acme")
    connect(settings, "acme")
    return token


def test_deletes_arrive_by_change_data_capture_as_deleted_records(
    api: TestClient, settings: Settings, qbo: Qbo, instance: DagsterInstance, connected: str
) -> None:
    sync(settings, instance, entities=["contacts", "invoices"])
    cursor = records(api, connected, "invoices")["next_cursor"]
    qbo.clock.advance(5)
    qbo.sandbox.delete(qbo.realm, "invoices", "3")
    qbo.sandbox.deactivate(qbo.realm, "customers", "2")  # QuickBooks' delete of a name

    result = sync(settings, instance, entities=["contacts", "invoices"])

    assert (result["invoices"]["rows_loaded"], result["contacts"]["rows_loaded"]) == (1, 1)
    (deleted,) = records(api, connected, "invoices", cursor)["records"]
    assert deleted["external_id"] == "3" and deleted["deleted"] is True and deleted["data"]["deleted"] is True
    contact = next(r for r in records(api, connected, "contacts")["records"] if r["external_id"] == "2")
    assert contact["deleted"] is True and contact["data"]["archived"] is True
    assert warehouse(settings, "SELECT status FROM invoices WHERE id = '3'") == [("Deleted",)]


def test_a_change_token_past_the_30_day_window_falls_back_to_a_full_sync_and_the_sync_log_says_so(
    api: TestClient, settings: Settings, qbo: Qbo, instance: DagsterInstance, connected: str
) -> None:
    qbo.clock.now = time.time() - 31 * 86_400  # the last sync was 31 days ago
    sync(settings, instance, entities=["contacts"])
    qbo.clock.now = time.time()
    qbo.sandbox.touch(qbo.realm, "customers", 2)

    result = sync(settings, instance, entities=["contacts"])

    assert result["contacts"]["rows_loaded"] == qbo.sandbox.count(qbo.realm, "customers")
    (run,) = instance.get_runs(limit=1)
    mirror_run(instance, run, succeeded=True)
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        row = session.scalars(select(IntegrationSyncLog).where(IntegrationSyncLog.run_id == run.run_id)).one()
        assert row.sync_type == "full" and row.request_data is not None
        assert "past the 30-day window" in row.request_data["full_sync_reason"]


def test_a_full_sync_after_the_window_passed_marks_deleted_what_quickbooks_deleted_meanwhile(
    api: TestClient, settings: Settings, qbo: Qbo, instance: DagsterInstance, connected: str
) -> None:
    qbo.clock.now = time.time() - 31 * 86_400  # the last sync was 31 days ago
    sync(settings, instance, entities=["invoices"])
    qbo.clock.now = time.time()
    listed = qbo.sandbox.count(qbo.realm, "invoices") - 1
    qbo.sandbox.delete(qbo.realm, "invoices", "3")  # past CDC's reach by the next sync: only the listing can tell
    before = records(api, connected, "invoices")
    cursor, live = before["next_cursor"], {r["external_id"] for r in before["records"] if not r["deleted"]}

    result = sync(settings, instance, entities=["invoices"])

    assert result["invoices"]["rows_loaded"] == listed  # listed in full, without the deleted one
    assert result["invoices"]["changed"] == 1
    (gone,) = records(api, connected, "invoices", cursor)["records"]  # the one change since: a new change number
    assert gone["external_id"] == "3" and gone["deleted"] is True and gone["data"]["deleted"] is True
    after = records(api, connected, "invoices")["records"]
    assert {r["external_id"] for r in after if not r["deleted"]} == live - {"3"}  # voided ones were deleted before
    sync(settings, instance, entities=["invoices"])  # CDC again (it may report the same delete: still deleted)
    again = {r["external_id"]: r for r in records(api, connected, "invoices")["records"]}
    assert again["3"]["deleted"] is True and {k for k, r in again.items() if not r["deleted"]} == live - {"3"}


def test_invoice_lines_and_payments_linked_invoices_land_in_child_tables(
    api: TestClient, settings: Settings, qbo: Qbo, instance: DagsterInstance, connected: str
) -> None:
    sync(settings, instance, entities=["invoices", "payments"])
    invoices = qbo.sandbox.count(qbo.realm, "invoices")
    # Three sales lines and the sub total line of each invoice.
    assert warehouse(settings, "SELECT count(*) FROM invoices__line")[0][0] == invoices * 4
    linked = warehouse(settings, "SELECT linked_txn FROM payments__line")
    assert len(linked) == qbo.sandbox.count(qbo.realm, "payments") and all("Invoice" in str(r[0]) for r in linked)
    invoice = records(api, connected, "invoices")["records"][0]["data"]
    assert len(invoice["lines"]) == 3 and invoice["version"] == "0"
    payment = records(api, connected, "payments")["records"][0]["data"]
    assert payment["invoice_id"] in {r["external_id"] for r in records(api, connected, "invoices")["records"]}


def test_a_fault_inside_http_200_fails_the_pull_in_quickbooks_words(
    api: TestClient, settings: Settings, qbo: Qbo, instance: DagsterInstance, connected: str
) -> None:
    qbo.knobs.fault_in_ok_next, qbo.knobs.fault_in_ok_code = 1, "6000"
    with pytest.raises(IntegrationError):
        sync(settings, instance, entities=["accounts"])
    status = api.get("/api/v1/integrations/quickbooks/status", headers=bearer(connected)).json()
    assert "AuthenticationFailed" in status["last_error"]
    assert records(api, connected, "accounts")["records"] == []  # read as an error, never as an empty page


def test_two_tenants_on_two_realms_sync_concurrently_and_each_gets_only_its_own_company(
    api: TestClient, settings: Settings, qbo: Qbo
) -> None:
    second = qbo.sandbox.add_company("Globex", customers=11, invoices=17, payments=3, items=2)
    tokens = {"acme": make_tenant(settings, "acme"), "globex": make_tenant(settings, "globex")}
    connect(settings, "acme", [qbo.realm])
    connect(settings, "globex", [second])
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "vrtx_pipelines.cli.main", "sync", "quickbooks", "--tenant", tenant,
             "--entity", "contacts", "--entity", "invoices"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for tenant in tokens
    ]  # fmt: skip
    for process in processes:
        _out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-3000:]
    assert warehouse(settings, "SELECT count(*) FROM invoices", "globex")[0][0] == 17
    assert warehouse(settings, "SELECT count(*) FROM invoices")[0][0] == qbo.sandbox.count(qbo.realm, "invoices")
    for tenant, realm in (("acme", qbo.realm), ("globex", second)):  # ids count from 1 in every company
        company = qbo.sandbox.tenants[realm]
        pulled = {r["external_id"]: r["data"]["email"] for r in records(api, tokens[tenant], "contacts")["records"]}
        assert pulled == {
            str(i + 1): company.record("customers", i)["PrimaryEmailAddr"]["Address"]
            for i in range(qbo.sandbox.count(realm, "customers"))
        }, tenant
