"""Fault: the process of a pull run is killed (SIGKILL) in the middle of its load, and the pull is run again."""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Any

from dagster import DagsterRunStatus
from fastapi.testclient import TestClient

from providers.sandbox_kit.serve import ServedApp
from providers.xero.sandbox import XeroSandbox
from tests.faults.helpers import (
    ROOT,
    canonical_counts,
    cli_runs,
    connection_status,
    database,
    last_change,
    mirror_latest_run,
    poll,
    run_sync,
    sync_command,
    sync_logs,
    warehouse_keys,
)
from tests.faults.matrix import fault
from tests.helpers import make_tenant
from tests.xero.conftest import connect_xero
from vrtx_pipelines.config import Settings
from vrtx_pipelines.names import dataset_name

Xero = tuple[XeroSandbox, ServedApp, str]
KILLED_RUN = "vrtx-fault-killed-pull"  # the application_name of the killed run's database sessions


def sessions_of_killed_run(db: Any, *, waiting: bool = False) -> list[int]:
    """The killed run's database sessions (``waiting``: those blocked on a lock)."""
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND (NOT %s OR wait_event_type = 'Lock')",
            (KILLED_RUN, waiting),
        )
        return [row[0] for row in cursor.fetchall()]


def pending_packages(settings: Settings, tenant: str) -> list[str]:
    name = dataset_name("xero", tenant)
    normalized = settings.home / "dlt" / name / name / "load" / "normalized"
    return sorted(p.name for p in normalized.iterdir()) if normalized.exists() else []


@fault(
    "kill -9 a pull run mid-load, then rerun",
    "incremental pull in its own process held inside its warehouse merge, SIGKILLed with its load package "
    "pending; the rerun loads every change exactly once (warehouse rows unique per id, one canonical change "
    "per changed record); the killed run is no sync-log row (it never ended) and the rerun's rows are successes "
    "counting the changes; the connection stays connected with no error",
)
def test_a_pull_killed_mid_load_then_rerun_loads_every_change_exactly_once(
    api: TestClient, settings: Settings, xero: Xero
) -> None:
    sandbox, _served, org = xero
    token = make_tenant(settings, "acme")
    connect_xero(settings, "acme")
    entities = ["contacts", "invoices"]
    run_sync("acme", entities)
    changed_invoices = sandbox.touch(org, "invoices", 300)
    new_contacts = sandbox.create(org, "contacts", 50)
    changes_before = last_change(settings, "acme")
    schema = dataset_name("xero", "acme")

    with database(settings) as holder, database(settings) as watcher:
        watcher.autocommit = True
        with holder.cursor() as cursor:  # the run's merge into invoices waits here, its staging load done
            cursor.execute(f'LOCK TABLE "{schema}"."invoices" IN ACCESS EXCLUSIVE MODE')
        killed = subprocess.Popen(
            sync_command("acme", entities),
            cwd=ROOT,
            env={**os.environ, "PGAPPNAME": KILLED_RUN},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            poll(lambda: sessions_of_killed_run(watcher, waiting=True) or killed.poll() is not None, "the load")
            assert killed.poll() is None, killed.stderr.read() if killed.stderr else ""
            assert pending_packages(settings, "acme"), "the load package should still be pending"
            os.killpg(killed.pid, signal.SIGKILL)
            killed.wait(timeout=30)
        finally:
            if killed.poll() is None:
                os.killpg(killed.pid, signal.SIGKILL)
        # The machine's sockets closed with the process; the server notices a session blocked on a lock only
        # when it next reads, so end those now rather than wait.
        with watcher.cursor() as cursor:
            for pid in sessions_of_killed_run(watcher):
                cursor.execute("SELECT pg_terminate_backend(%s)", (pid,))
        holder.rollback()
        poll(lambda: not sessions_of_killed_run(watcher), "the killed run's sessions to end", 30)
        with watcher.cursor() as cursor:  # the killed run got as far as dlt's staging tables
            cursor.execute(f'SELECT count(*) FROM "{schema}_staging"."invoices"')  # noqa: S608 -- our own name
            assert cursor.fetchone()[0] == len(changed_invoices)

    assert pending_packages(settings, "acme")  # what the rerun finds
    logged_before = sync_logs(api, token)
    with cli_runs(settings) as instance:
        [killed_run] = instance.get_runs(limit=1)
        assert killed_run.status == DagsterRunStatus.STARTED  # what Dagster knows of a run whose process died
        run_sync("acme", entities)
        rerun = mirror_latest_run(instance)
        killed_rows = [row for row in sync_logs(api, token) if row["run_id"] == killed_run.run_id]

    contacts, invoices = sandbox.count(org, "contacts"), sandbox.count(org, "invoices")
    assert warehouse_keys(settings, "acme", "contacts", "contact_id") == (contacts, contacts)
    assert warehouse_keys(settings, "acme", "invoices", "invoice_id") == (invoices, invoices)
    assert warehouse_keys(settings, "acme", "invoices__line_items", "line_item_id") == (invoices * 3, invoices * 3)
    assert canonical_counts(settings, "acme") == {"contacts": contacts, "invoices": invoices}
    assert canonical_counts(settings, "acme", after_change=changes_before) == {
        "contacts": len(new_contacts),
        "invoices": len(changed_invoices),
    }
    assert not killed_rows  # nothing says the killed run finished, let alone succeeded
    logged = sync_logs(api, token)[len(logged_before) :]
    assert {(row["run_id"], row["entity"], row["status"]) for row in logged} == {
        (rerun, "contacts", "success"),
        (rerun, "invoices", "success"),
    }
    assert {row["entity"]: row["counts"]["records_changed"] for row in logged} == {
        "contacts": len(new_contacts),
        "invoices": len(changed_invoices),
    }
    status = connection_status(api, token)
    assert status["status"] == "connected" and status["last_error"] is None
    assert not pending_packages(settings, "acme")
