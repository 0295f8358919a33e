"""A push through the real `dagster-daemon`: the API queues it, the daemon's sensor launches the run, the run
process sends it to the Xero sandbox, and the external id comes back through the API."""

# ruff: noqa: F811 -- the Xero fixtures imported below are requested by name
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance, RunsFilter
from fastapi.testclient import TestClient

from tests.helpers import bearer, make_tenant
from tests.xero.conftest import base_urls, connect_xero, oauth_clients, xero  # noqa: F401 -- fixtures
from vrtx_pipelines.cli.devserver import dagster_environment, initialise_instance
from vrtx_pipelines.config import Settings

pytestmark = pytest.mark.dagster
ROOT = Path(__file__).resolve().parent.parent


def test_the_daemon_launches_the_push_run_and_the_external_id_comes_back(
    api: TestClient, settings: Settings, xero: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox, _served, org = xero
    token = make_tenant(settings, "acme")
    connect_xero(settings, "acme")
    dagster_env = dagster_environment(settings, ROOT)
    initialise_instance(dagster_env)
    before = sandbox.count(org, "contacts")
    log_path = tmp_path / "daemon.log"
    with log_path.open("wb") as log:
        daemon = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml")],
            cwd=ROOT,
            env={**os.environ, **dagster_env},
            stdout=log,
            stderr=log,
            start_new_session=True,  # its code server and run processes go with it
        )
    try:
        queued = api.post(
            "/api/v1/integrations/xero/push/contact",
            json={"operation": "create", "data": {"id": "crm-1", "name": "Daemon Driven Ltd"}},
            headers={**bearer(token), "Idempotency-Key": "daemon-1"},
        ).json()
        deadline = time.monotonic() + 240
        state: dict[str, Any] = {}
        while time.monotonic() < deadline:
            assert daemon.poll() is None, log_path.read_text()[-3000:]
            state = api.get(f"/api/v1/integrations/xero/push/{queued['id']}", headers=bearer(token)).json()
            if state["status"] in ("done", "failed"):
                break
            time.sleep(0.5)
        assert state.get("status") == "done", (state, log_path.read_text()[-3000:])
        assert state["external_id"] and state["run_id"]
        assert sandbox.count(org, "contacts") == before + 1
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(daemon.pid, signal.SIGKILL)
    for name, value in dagster_env.items():
        monkeypatch.setenv(name, value)
    with DagsterInstance.get() as instance:
        (run,) = instance.get_runs(RunsFilter(run_ids=[state["run_id"]]))
    assert run.job_name == "xero_push"
    assert run.tags["vrtx/kind"] == "push" and run.tags["vrtx/push-connection"] == "xero:acme"
