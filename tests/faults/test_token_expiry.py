"""Fault: the access token expires in the middle of paging a listing."""

from __future__ import annotations

from fastapi.testclient import TestClient

from providers.sandbox_kit.serve import ServedApp
from providers.xero.sandbox import XeroSandbox, XeroSandboxKnobs
from tests.faults.helpers import (
    canonical_counts,
    cli_runs,
    connection_status,
    mirror_latest_run,
    run_sync,
    sync_logs,
    warehouse_keys,
)
from tests.faults.matrix import fault
from tests.helpers import make_tenant
from tests.xero.conftest import connect_xero
from vrtx_pipelines.config import Settings

Xero = tuple[XeroSandbox, ServedApp, str]


@fault(
    "access token expires mid-pagination",
    "pull in its own process: one refresh at Xero, replayed page, every contact and invoice (and line) once in the "
    "warehouse and in canonical records; the sync log has one success per entity counting every record and "
    "the connection stays connected with no error",
)
def test_an_access_token_expiring_mid_pagination_is_refreshed_once_and_the_pull_loads_everything_once(
    api: TestClient, settings: Settings, xero: Xero
) -> None:
    sandbox, served, org = xero
    token = make_tenant(settings, "acme")
    connect_xero(settings, "acme")
    knobs: XeroSandboxKnobs = served.app.state.sandbox
    knobs.expire_tokens_on_page = 2  # every token issued so far dies as the first listing asks for its page 2
    refreshes_before = sandbox.stats.refresh_requests

    with cli_runs(settings) as instance:
        run_sync("acme", ["contacts", "invoices"])
        run_id = mirror_latest_run(instance)

    assert knobs.expire_tokens_on_page is None  # the fault was met
    assert sandbox.stats.refresh_requests - refreshes_before == 1
    assert sandbox.stats.pages_served["contacts"] >= 3 and sandbox.stats.pages_served["invoices"] >= 3
    contacts, invoices = sandbox.count(org, "contacts"), sandbox.count(org, "invoices")
    assert warehouse_keys(settings, "acme", "contacts", "contact_id") == (contacts, contacts)
    assert warehouse_keys(settings, "acme", "invoices", "invoice_id") == (invoices, invoices)
    assert warehouse_keys(settings, "acme", "invoices__line_items", "line_item_id") == (invoices * 3, invoices * 3)
    assert canonical_counts(settings, "acme") == {"contacts": contacts, "invoices": invoices}
    logged = [row for row in sync_logs(api, token) if row["run_id"] == run_id]
    assert {row["entity"]: (row["status"], row["counts"]["rows_loaded"]) for row in logged} == {
        "contacts": ("success", contacts),
        "invoices": ("success", invoices),
    }
    assert all(row["error_message"] is None for row in logged)
    status = connection_status(api, token)
    assert status["status"] == "connected" and status["last_error"] is None
