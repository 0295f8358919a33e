"""Fault: PostgreSQL, which holds the app database and the warehouse, restarts while a pull is running.

The restart is of a cluster of this test's own (``tests.faults.cluster``): the shared server the other tests use
in parallel stays up.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from providers.sandbox_kit.serve import ServedApp
from providers.xero.sandbox import XeroSandbox, XeroSandboxKnobs
from tests.conftest import POSTGRES_URL, REQUIRE_POSTGRES
from tests.faults.cluster import Cluster, bin_dir, private_cluster
from tests.faults.helpers import (
    ROOT,
    canonical_counts,
    database,
    last_change,
    mirror_latest_run,
    poll,
    run_sync,
    sync_command,
    warehouse_keys,
)
from tests.faults.matrix import fault
from tests.helpers import bearer, make_tenant
from tests.xero.conftest import connect_xero
from vrtx_pipelines.cli.devserver import dagster_environment, dagster_instance
from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.session import engine_for
from vrtx_pipelines.names import dataset_name

pytestmark = pytest.mark.dagster
Xero = tuple[XeroSandbox, ServedApp, str]
ENTITIES = ["contacts", "invoices"]
RUN = "vrtx-fault-pg-restart"  # the application_name of the interrupted runs' database sessions
LOST = "server closed the connection unexpectedly"  # libpq's words for a session the restart ended


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    if not POSTGRES_URL:  # as every fault test: PostgreSQL tests run when a server is given (CI requires one)
        pytest.skip("set VRTX_TEST_POSTGRES_URL to run PostgreSQL tests")
    pg_bin = bin_dir()
    if pg_bin is None:
        if REQUIRE_POSTGRES:
            pytest.fail("VRTX_REQUIRE_POSTGRES=1 but PostgreSQL's initdb and pg_ctl are not installed")
        pytest.skip("PostgreSQL's initdb and pg_ctl are not installed")
    with private_cluster(pg_bin) as started:
        yield started


@pytest.fixture
def db_url(cluster: Cluster) -> Iterator[str]:
    """The app database (and warehouse) on the test's own cluster, empty: the API migrates it."""
    cluster.create_database("vrtx")
    yield cluster.url("vrtx")
    engine_for.cache_clear()  # no pool outlives the cluster


def start_sync() -> subprocess.Popen[str]:
    return subprocess.Popen(
        sync_command("acme", ENTITIES),
        cwd=ROOT,
        env={**os.environ, "PGAPPNAME": RUN},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(run: subprocess.Popen[str]) -> str:
    """The run's error (its last line on stderr, below the progress bars and dlt's warnings, a retried load job's
    traceback among them; empty when it has none), once it has exited."""
    try:
        _out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    lines = [line.strip() for line in err.replace("\r", "\n").splitlines() if line.strip()]
    return lines[-1] if lines and lines[-1].startswith("error:") else ""


def sessions_of_run(db: Any, *, waiting: bool = False) -> list[int]:
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND (NOT %s OR wait_event_type = 'Lock')",
            (RUN, waiting),
        )
        return [row[0] for row in cursor.fetchall()]


@fault(
    "restart PostgreSQL mid-sync (app DB and warehouse)",
    "a private PostgreSQL restarted twice under a pull in its own process: mid-paging the pull completes; inside "
    "its warehouse merge the load commits but the records' commit is lost, the run fails with one line naming the "
    "lost connection (and so does its failed sync-log row and last_error); the rerun re-derives the missed records "
    "from the warehouse: every contact, invoice and line once in the warehouse and in canonical records, one "
    "canonical change per changed record, the connection connected with no error",
)
def test_postgres_restarting_mid_sync_loses_nothing_and_applies_nothing_twice(
    api: TestClient, settings: Settings, xero: Xero, cluster: Cluster
) -> None:
    sandbox, served, org = xero
    token = make_tenant(settings, "acme")
    connect_xero(settings, "acme")
    knobs: XeroSandboxKnobs = served.app.state.sandbox
    schema = dataset_name("xero", "acme")
    instance = dagster_instance(dagster_environment(settings, ROOT))
    try:
        # 1. The first sync, restarted while it pages through Xero: the session of its pull lock is lost, nothing
        #    else is in flight; the server is back before the load, and the pull completes.
        knobs.latency_s = 0.5
        first = start_sync()
        poll(lambda: sandbox.stats.pages_served["invoices"] >= 1 or first.poll() is not None, "a page", 60)
        assert first.poll() is None, finish(first)
        cluster.restart()
        assert first.poll() is None  # the restart landed mid-sync
        knobs.latency_s = 0
        assert not finish(first) and first.returncode == 0, "the first sync should complete"
        mirror_latest_run(instance)

        # 2. An incremental sync, restarted while its warehouse merge waits on a lock the test holds (its staging
        #    load done, its records applied but not committed).
        sandbox.touch(org, "invoices", 300)
        sandbox.create(org, "contacts", 50)
        changes_before = last_change(settings, "acme")
        with database(settings) as holder, database(settings) as watcher:
            watcher.autocommit = True
            with holder.cursor() as cursor:
                cursor.execute(f'LOCK TABLE "{schema}"."invoices" IN ACCESS EXCLUSIVE MODE')
            second = start_sync()
            poll(lambda: sessions_of_run(watcher, waiting=True) or second.poll() is not None, "the merge", 60)
            assert second.poll() is None, finish(second)
            cluster.restart()  # ends every session: the merge's, the records', the lock holder's
        error = finish(second)
        assert second.returncode == 1
        assert error.startswith("error: the Xero sync failed: OperationalError: ") and LOST in error, error
        # dlt retried the merge on a new session and committed the load (its cursors with it); the records'
        # transaction was lost with its session.
        assert warehouse_keys(settings, "acme", "contacts", "contact_id") == (2350, 2350)
        assert canonical_counts(settings, "acme") == {"contacts": 2300, "invoices": 2600}
        failed_run = mirror_latest_run(instance)
        status = api.get("/api/v1/integrations/xero/status", headers=bearer(token)).json()
        assert status["status"] == "connected" and LOST in (status["last_error"] or ""), status

        # 3. The rerun.
        run_sync("acme", ENTITIES)
        rerun = mirror_latest_run(instance)
    finally:
        instance.dispose()

    contacts, invoices = sandbox.count(org, "contacts"), sandbox.count(org, "invoices")
    assert (contacts, invoices) == (2350, 2600)
    assert warehouse_keys(settings, "acme", "contacts", "contact_id") == (contacts, contacts)
    assert warehouse_keys(settings, "acme", "invoices", "invoice_id") == (invoices, invoices)
    assert warehouse_keys(settings, "acme", "invoices__line_items", "line_item_id") == (invoices * 3, invoices * 3)
    assert canonical_counts(settings, "acme") == {"contacts": contacts, "invoices": invoices}
    assert canonical_counts(settings, "acme", after_change=changes_before) == {"contacts": 50, "invoices": 300}
    status = api.get("/api/v1/integrations/xero/status", headers=bearer(token)).json()
    assert status["status"] == "connected" and status["last_error"] is None, status

    logs = api.get("/api/v1/integrations/xero/sync/logs", headers=bearer(token)).json()["logs"]
    rows = [(row["run_id"], row["entity"], row["status"]) for row in reversed(logs)]
    assert [status for _run, _entity, status in rows] == ["success"] * 2 + ["failed"] + ["success"] * 2
    (failed,) = [row for row in logs if row["run_id"] == failed_run]
    assert failed["error_message"].startswith("OperationalError: ") and LOST in failed["error_message"]
    caught_up = {row["entity"]: row["counts"] for row in logs if row["run_id"] == rerun}
    assert {entity: counts["records_caught_up"] for entity, counts in caught_up.items()} == {
        "contacts": 50,
        "invoices": 300,
    }
    # The records re-derived from the warehouse are the records a pull from Xero stores: listing everything again
    # changes none.
    settled = last_change(settings, "acme")
    full = subprocess.run([*sync_command("acme", ENTITIES), "--full"], cwd=ROOT, capture_output=True, text=True)
    assert full.returncode == 0, full.stderr[-4000:]
    assert canonical_counts(settings, "acme", after_change=settled) == {}
