""" "Sync now" in a real browser, end to end: the marketplace page launches the pull through a real Dagster
webserver, a real ``dagster-daemon`` dequeues and runs it against the Xero sandbox, and its
``sync_log_success_sensor`` writes the log row the page then shows. Nothing here runs the pull or the sensor
in-process: the test only clicks, reloads and reads."""
# ruff: noqa: F811 -- the fixtures imported below are requested by name

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from dagster import DagsterInstance
from dagster._core.definitions.run_request import InstigatorType
from playwright.sync_api import Page, expect
from sqlalchemy import select

from api.main import create_app
from providers.sandbox_kit.serve import ServedApp, free_port
from tests.browser.test_marketplace import open_marketplace, page, shoot  # noqa: F401 -- page is a fixture
from tests.helpers import bearer, make_tenant, stop_group
from tests.test_sync_api import wait_for_code_location
from tests.xero.conftest import (  # the Xero sandbox fixtures, for tests outside tests/xero
    base_urls,  # noqa: F401
    connect_xero,
    oauth_clients,  # noqa: F401
    xero,  # noqa: F401
)
from vrtx_pipelines.cli.devserver import dagster_environment, initialise_instance
from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.models import IntegrationSyncLog
from vrtx_pipelines.db.session import engine_for, session_scope

pytestmark = [pytest.mark.browser, pytest.mark.dagster]
ROOT = Path(__file__).resolve().parent.parent.parent
# Loading the code location, dequeuing, a run process loading it again, the pull, then the sensor's tick.
DEADLINE_S = 180


@dataclass
class Dagster:
    """The test's Dagster: a webserver and a daemon on one instance, and that instance seen from this process."""

    url: str
    instance: DagsterInstance
    processes: dict[str, subprocess.Popen[bytes]]
    logs: dict[str, Path]

    def logs_tail(self, chars: int = 3000) -> str:
        return "\n".join(
            f"--- {name} ---\n{path.read_text(errors='replace')[-chars:]}" for name, path in self.logs.items()
        )

    def assert_alive(self) -> None:
        for name, process in self.processes.items():
            assert process.poll() is None, f"{name} exited ({process.returncode})\n{self.logs_tail()}"


@pytest.fixture
def dagster(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Dagster]:
    """``dagster-webserver`` and ``dagster-daemon`` with the same environment as this test (its database, keys,
    sandboxes), each in its own process group so nothing outlives the test, whatever happens in it."""
    dagster_env = dagster_environment(settings, ROOT)
    initialise_instance(dagster_env)
    env = {**os.environ, **dagster_env}
    port = free_port()
    bin_dir = Path(sys.executable).parent
    commands = {
        "webserver": [sys.executable, "-m", "dagster_webserver", "-w", str(ROOT / "workspace.yaml"),
                      "-h", "127.0.0.1", "-p", str(port)],
        "daemon": [str(bin_dir / "dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml")],
    }  # fmt: skip
    processes: dict[str, subprocess.Popen[bytes]] = {}
    logs = {name: tmp_path / f"{name}.log" for name in commands}
    try:
        for name, command in commands.items():
            with logs[name].open("wb") as log:
                processes[name] = subprocess.Popen(
                    command, cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True
                )
        for name, value in dagster_env.items():
            monkeypatch.setenv(name, value)
        with DagsterInstance.get() as instance:
            yield Dagster(f"http://127.0.0.1:{port}", instance, processes, logs)
    finally:
        for process in processes.values():
            stop_group(process, signal.SIGINT)


def wait_for_sensor_tick(dagster: Dagster, sensor: str) -> None:
    """A run-status sensor only sees runs that finish after its first tick: wait for that tick."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        dagster.assert_alive()
        for state in dagster.instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
            if state.name == sensor and dagster.instance.get_ticks(
                state.instigator_origin_id, state.selector_id, limit=1
            ):
                return
        time.sleep(0.5)
    raise AssertionError(f"the daemon never ticked {sensor}\n{dagster.logs_tail()}")


def wait_for_log_row(page: Page, dagster: Dagster, run_id: str) -> Any:
    """Reload the sync page, as the notice tells the admin to, until the run's row is there."""
    row = page.locator(f'tr.log-row[data-run="{run_id}"]')
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        dagster.assert_alive()
        page.reload()
        if row.count():
            return row
        time.sleep(1)
    run = dagster.instance.get_run_by_id(run_id)
    state = run.status if run else "unknown to the instance"
    raise AssertionError(f"no sync-log row for run {run_id} (run {state})\n{dagster.logs_tail()}")


@pytest.fixture
def served_with_dagster(settings: Settings, dagster: Dagster) -> Iterator[ServedApp]:
    """The API over HTTP, launching syncs through the test's webserver and reading runs from its instance."""
    port = free_port()
    public = settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}", "dagster_url": dagster.url})
    app = create_app(public)
    app.state.dagster_instance = dagster.instance
    with ServedApp(app, port=port) as server:
        yield server


def test_sync_now_starts_a_real_run_and_its_log_row_appears_on_the_sync_page(
    page: Page,
    served_with_dagster: ServedApp,
    settings: Settings,
    dagster: Dagster,
    xero: Any,
    artifacts: Path,
) -> None:
    server = served_with_dagster
    sandbox, _served, _org = xero
    token = make_tenant(settings, "acme", "Acme Ltd")
    connect_xero(settings, "acme")
    # Only contacts: a small run, and one entity whose row the page must show.
    saved = httpx.put(
        f"{server.base_url}/api/v1/integrations/xero/settings",
        json={"entities": ["contacts"]},
        headers=bearer(token),
        timeout=10,
    )
    assert saved.status_code == 200, saved.text
    wait_for_code_location(
        int(urlsplit(dagster.url).port or 0), dagster.processes["webserver"], dagster.logs["webserver"]
    )
    wait_for_sensor_tick(dagster, "sync_log_success_sensor")

    open_marketplace(page, server, token, "/marketplace/xero")
    page.get_by_role("link", name="Sync status").click()
    page.get_by_role("button", name="Sync now").click()
    expect(page.get_by_role("status")).to_contain_text("Sync started.")
    expect(page.get_by_role("alert")).to_have_count(0)
    launched = parse_qs(urlsplit(page.url).query).get("launched", [""])[0]
    assert launched, page.url
    run = dagster.instance.get_run_by_id(launched)
    assert run is not None and run.job_name == "xero_sync", dagster.logs_tail()
    assert run.tags["vrtx/trigger"] == "api" and run.tags["dagster/partition"] == "acme"
    shoot(page, artifacts, "sync-started")

    row = wait_for_log_row(page, dagster, launched)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("contacts")
    expect(row).to_contain_text("pull")
    expect(row.locator(".status-success")).to_have_text("success")
    # The rows this run loaded, as its own log row holds them: 30 on a first sync, and possibly 0 when the daemon's
    # first sync (launched on connecting) ran before the click and nothing changed since.
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        logged = session.scalars(select(IntegrationSyncLog).where(IntegrationSyncLog.run_id == launched)).one()
        rows_loaded = (logged.counts or {})["rows_loaded"]
    expect(row.locator("td").nth(6)).to_have_text(str(rows_loaded))
    # What started it, and the run itself in the Dagster UI this API launches through.
    expect(row.locator("td.log-trigger")).to_have_text("Sync now")
    expect(row.locator("a.run-link")).to_have_attribute("href", f"{dagster.url}/runs/{launched}")
    shoot(page, artifacts, "sync-logged")

    # Another tenant of the same platform, connected to its own organisation, never sees acme's run.
    other_org = sandbox.add_organisation("Globex", contacts=2, invoices=2, payments=1, items=1)
    globex = make_tenant(settings, "globex", "Globex")
    connect_xero(settings, "globex", [other_org])
    open_marketplace(page, server, globex, "/marketplace/xero")
    page.get_by_role("link", name="Sync status").click()
    expect(page.get_by_role("heading", name="Xero sync status")).to_be_visible()
    expect(page.locator(f'tr.log-row[data-run="{launched}"]')).to_have_count(0)
