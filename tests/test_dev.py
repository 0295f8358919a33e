"""`vrtx dev` (the README's first command) as a user runs it: everything comes up, Ctrl-C stops all of it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from dagster import DagsterInstance

from providers.sandbox_kit.serve import free_port

ROOT = Path(__file__).resolve().parent.parent
VRTX = str(Path(sys.executable).with_name("vrtx"))
# What a second shell in the same checkout shares with the first: where the state and the database are.
SHELL_SETTINGS = ("VRTX_HOME", "VRTX_DATABASE_URL")
LOCATIONS_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries {
    name locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


@contextmanager
def patched_env(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


def poll(url: str, deadline: float, process: subprocess.Popen[bytes]) -> httpx.Response:
    while time.monotonic() < deadline:
        assert process.poll() is None, "vrtx dev exited early"
        try:
            return httpx.get(url, timeout=2)
        except httpx.HTTPError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer in time")


@pytest.mark.dagster
@pytest.mark.timeout(900)  # its own deadlines (the platform up, the first sync, two CLI syncs) add up to more
def test_vrtx_dev_serves_api_and_dagster_ui_and_stops_cleanly_on_ctrl_c(tmp_path: Path, empty_db_url: str) -> None:
    db_url = empty_db_url  # a first start: vrtx dev migrates the database itself
    api_port, dagster_port = free_port(), free_port()
    env = {
        **os.environ,
        "VRTX_HOME": str(tmp_path / "home"),
        "VRTX_DATABASE_URL": db_url,
        "VRTX_API_PORT": str(api_port),
        "VRTX_DAGSTER_PORT": str(dagster_port),
    }
    env.pop("VRTX_VAULT_KEYS", None)
    log_path = tmp_path / "dev.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "vrtx_pipelines.cli.main", "dev"], cwd=ROOT, env=env, stdout=log, stderr=log
        )
    try:
        deadline = time.monotonic() + 480  # the machine is shared: a first sync has waited minutes for a core
        assert poll(f"http://127.0.0.1:{api_port}/healthz", deadline, process).status_code == 200
        assert poll(f"http://127.0.0.1:{dagster_port}/server_info", deadline, process).status_code == 200
        while "Press Ctrl-C to stop." not in log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.5)
        output = log_path.read_text()
        token = re.search(r"Authorization: Bearer (vrtx_\S+)", output)
        assert token, output
        assert "uv run vrtx marketplace-link --tenant demo" in output
        catalog = httpx.get(
            f"http://127.0.0.1:{api_port}/api/v1/integrations",
            headers={"Authorization": f"Bearer {token.group(1)}"},
        )
        assert len(catalog.json()) == 17
        assert httpx.get(f"http://127.0.0.1:{api_port}/docs").status_code == 200

        while True:
            workspace = httpx.post(
                f"http://127.0.0.1:{dagster_port}/graphql", json={"query": LOCATIONS_QUERY}, timeout=30
            ).json()["data"]["workspaceOrError"]
            entries = {e["name"]: e["locationOrLoadError"] for e in workspace["locationEntries"]}
            if entries.get("vrtx") or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert entries["vrtx"]["__typename"] == "RepositoryLocation", entries

        connected = httpx.get(
            f"http://127.0.0.1:{api_port}/api/v1/integrations/connected",
            headers={"Authorization": f"Bearer {token.group(1)}"},
        ).json()
        assert {c["integration"] for c in connected} == {
            "xero",
            "quickbooks",
            "stripe",
            "twilio",
            "mailchimp",
            "google_workspace",
            "microsoft365",
        }
        # The daemon's sensor adds the demo tenant to each connected provider's partitions.
        dagster_env = {"VRTX_DAGSTER_POSTGRES_URL": db_url} if db_url.startswith("postgresql") else {}
        with patched_env(dagster_env), DagsterInstance.from_config(str(tmp_path / "home" / "dagster")) as instance:
            while "demo" not in instance.get_dynamic_partitions("stripe_tenants"):
                assert time.monotonic() < deadline, "the partitions sensor never added the demo tenant"
                time.sleep(1)
        # ... and launches the first full Xero sync through the daemon's run queue, with nobody asking.
        while True:
            invoices = httpx.get(
                f"http://127.0.0.1:{api_port}/api/v1/integrations/xero/records/invoices",
                headers={"Authorization": f"Bearer {token.group(1)}"},
            ).json()
            if invoices["records"]:
                break
            assert time.monotonic() < deadline, "the first Xero sync never ran"
            time.sleep(2)

        while True:  # the first sync is over (a second pull of the same connection would wait for nothing)
            status = httpx.get(
                f"http://127.0.0.1:{api_port}/api/v1/integrations/xero/sync/status",
                headers={"Authorization": f"Bearer {token.group(1)}"},
            ).json()
            if status["last_sync_at"] and status["active_runs"] == []:
                break
            assert time.monotonic() < deadline, status
            time.sleep(1)
        # The README's commands, verbatim, from a second shell that knows nothing but the checkout's state.
        state = json.loads((tmp_path / "home" / "dev-platform.json").read_text())
        assert state["pid"] == process.pid and state["api_url"] == f"http://127.0.0.1:{api_port}"
        second_shell = {k: v for k, v in env.items() if not k.startswith("VRTX_") or k in SHELL_SETTINGS}
        for args in (["--entity", "invoices"], ["--full"]):
            synced = subprocess.run(
                [VRTX, "sync", "xero", "--tenant", "demo", *args],
                cwd=ROOT,
                env=second_shell,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert synced.returncode == 0, synced.stderr[-3000:]
            assert synced.stdout.splitlines()[0].split()[0] == "ENTITY", synced.stdout
            assert "invoices" in synced.stdout and "Traceback" not in synced.stderr

        # The terminal tells what happened in a line each; the children's whole output is in the files it names.
        while not all(said in log_path.read_text() for said in ("sync finished   xero · demo", "(vrtx sync, run")):
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.5)
        shown = log_path.read_text()
        assert "sync started    xero · demo        (first sync, run" in shown
        assert "SensorDaemon" not in shown and " DEBUG " not in shown and '"GET /healthz' not in shown
        logs = tmp_path / "home" / "logs"
        assert f"Logs         {logs / 'api.log'}, {logs / 'webhook-worker.log'}, {logs / 'dagster.log'}" in shown
        assert "webhook worker started" in (logs / "webhook-worker.log").read_text()
        assert "Checking for new runs for sensor" in (logs / "dagster.log").read_text()
        assert '"GET /healthz HTTP/1.1" 200' in (logs / "api.log").read_text()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert code == 0, log_path.read_text()[-3000:]
    assert not (tmp_path / "home" / "dev-platform.json").exists()
    assert "dg dev" not in log_path.read_text()
    for port in (api_port, dagster_port):
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
