"""The sync API: status, logs (paged, filtered, per tenant) and on-demand syncs launched through a real Dagster
webserver."""
# ruff: noqa: F811 -- the Xero fixtures imported below are requested by name

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus
from fastapi.testclient import TestClient

from api.routes.sync import next_sync_at
from providers.sandbox_kit.serve import free_port
from tests.helpers import bearer, make_tenant, stop_group
from tests.test_synclog import evaluate_sensors, latest_run
from tests.xero.conftest import (  # the Xero sandbox fixtures, for tests outside tests/xero
    base_urls,  # noqa: F401
    connect_xero,
    oauth_clients,  # noqa: F401
    xero,  # noqa: F401
)
from vrtx_pipelines.cli.devserver import dagster_environment, initialise_instance
from vrtx_pipelines.cli.sync import sync_now
from vrtx_pipelines.config import Settings
from vrtx_pipelines.connect.context import get_connection
from vrtx_pipelines.db.models import IntegrationSyncLog, TenantIntegration
from vrtx_pipelines.db.session import engine_for, session_scope

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def acme(api: TestClient, settings: Settings, xero: Any) -> str:
    token = make_tenant(settings, "acme")
    connect_xero(settings, "acme")
    return token


def add_logs(settings: Settings, tenant: str, rows: list[dict[str, Any]]) -> None:
    """Sync-log rows as the run-status sensors write them."""
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        connection = get_connection(session, tenant, "xero")
        assert connection is not None
        for row in rows:
            session.add(IntegrationSyncLog(tenant_integration_id=connection.id, **row))


def log_row(n: int, **overrides: Any) -> dict[str, Any]:
    base = datetime(2026, 11, 1, tzinfo=UTC)
    return {
        "run_id": f"run-{n}",
        "entity_type": "invoices" if n % 2 else "contacts",
        "direction": "pull",
        "sync_type": "incremental",
        "status": "success",
        "counts": {"rows_loaded": n},
        "created_at": base + timedelta(minutes=n),
        **overrides,
    }


@pytest.mark.dagster
def test_sync_status_shows_last_and_next_sync_and_each_entitys_latest_log(
    api: TestClient, settings: Settings, instance: DagsterInstance, acme: str
) -> None:
    api.app.state.dagster_instance = instance  # type: ignore[attr-defined]
    api.put("/api/v1/integrations/xero/settings", json={"sync_frequency_minutes": 15}, headers=bearer(acme))
    sync_now(settings, "xero", "acme", ["contacts", "invoices"], instance=instance)
    run = latest_run(instance)
    evaluate_sensors(instance, run)

    status = api.get("/api/v1/integrations/xero/sync/status", headers=bearer(acme)).json()
    assert status["status"] == "connected" and status["last_error"] is None
    assert status["sync_frequency_minutes"] == 15 and status["sync_enabled"] is True
    last = datetime.fromisoformat(status["last_sync_at"])
    following = datetime.fromisoformat(status["next_sync_at"])
    assert timedelta(0) < following - last <= timedelta(minutes=15) and following.timestamp() % 60 == 0
    assert [(e["entity"], e["direction"], e["status"], e["run_id"]) for e in status["entities"]] == [
        ("contacts", "pull", "success", run.run_id),
        ("invoices", "pull", "success", run.run_id),
    ]
    assert status["entities"][1]["counts"]["rows_loaded"] > 0
    assert status["entities"][1]["dagster_run_url"].endswith(f"/runs/{run.run_id}")
    assert status["active_runs"] == []
    # The connection's own status answers the same last sync.
    assert (
        api.get("/api/v1/integrations/xero/status", headers=bearer(acme)).json()["last_sync_at"]
        == (status["last_sync_at"])
    )


def test_next_sync_follows_the_schedules_slots() -> None:
    now = datetime(2026, 11, 26, 10, 7, 30, tzinfo=UTC)
    connection = TenantIntegration(status="connected", settings={"sync_frequency_minutes": 30})
    assert next_sync_at(connection, now) == datetime(2026, 11, 26, 10, 8, tzinfo=UTC)  # never synced: next tick
    connection.last_sync_at = datetime(2026, 11, 26, 10, 2, tzinfo=UTC)
    assert next_sync_at(connection, now) == datetime(2026, 11, 26, 10, 30, tzinfo=UTC)
    connection.last_sync_at = datetime(2026, 11, 26, 9, 10, tzinfo=UTC)  # overdue: the next tick pulls
    assert next_sync_at(connection, now) == datetime(2026, 11, 26, 10, 8, tzinfo=UTC)
    connection.settings = {"sync_enabled": False}
    assert next_sync_at(connection, now) is None


def test_sync_logs_page_newest_first_and_filter_by_entity_direction_status_and_time(
    api: TestClient, settings: Settings, acme: str
) -> None:
    add_logs(settings, "acme", [log_row(n) for n in range(1, 12)])
    add_logs(settings, "acme", [log_row(20, status="failed", error_message="Xero: 503"), log_row(21, direction="push")])
    url = "/api/v1/integrations/xero/sync/logs"

    seen, cursor = [], None
    while True:
        params = {"limit": "4", **({"cursor": cursor} if cursor else {})}
        page = api.get(url, params=params, headers=bearer(acme)).json()
        seen += [row["run_id"] for row in page["logs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"run-{n}" for n in (21, 20, *range(11, 0, -1))]

    def runs(**params: str) -> list[str]:
        response = api.get(url, params=params, headers=bearer(acme))
        assert response.status_code == 200, response.text
        return [row["run_id"] for row in response.json()["logs"]]

    assert runs(entity="contacts", direction="pull", status="success") == [f"run-{n}" for n in (10, 8, 6, 4, 2)]
    assert runs(status="failed") == ["run-20"]
    assert runs(direction="push") == ["run-21"]
    assert runs(since="2026-11-01T00:05:00Z", until="2026-11-01T00:08:00Z") == ["run-7", "run-6", "run-5"]
    assert runs(run_id="run-3") == ["run-3"]
    bad = api.get(url, params={"status": "exploded"}, headers=bearer(acme))
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_failed"
    bad_cursor = api.get(url, params={"cursor": "xyz"}, headers=bearer(acme))
    assert bad_cursor.status_code == 422


def test_a_tenant_sees_only_its_own_sync_logs_and_status(
    api: TestClient, settings: Settings, xero: Any, acme: str
) -> None:
    sandbox, _served, _org = xero
    second_org = sandbox.add_organisation("Globex", contacts=2, invoices=2, payments=1, items=1)
    globex = make_tenant(settings, "globex")
    connect_xero(settings, "globex", [second_org])
    add_logs(settings, "acme", [log_row(1, error_message="acme's own trouble", status="failed")])
    add_logs(settings, "globex", [log_row(2)])
    logs = api.get("/api/v1/integrations/xero/sync/logs", headers=bearer(globex)).json()["logs"]
    assert [row["run_id"] for row in logs] == ["run-2"]
    status = api.get("/api/v1/integrations/xero/sync/status", headers=bearer(globex)).json()
    assert [e["run_id"] for e in status["entities"]] == ["run-2"]
    assert (
        api.get("/api/v1/integrations/xero/sync/logs", params={"run_id": "run-1"}, headers=bearer(globex)).json()[
            "logs"
        ]
        == []
    )
    stranger = make_tenant(settings, "stranger")
    refused = api.get("/api/v1/integrations/xero/sync/logs", headers=bearer(stranger))
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_connected"
    assert api.get("/api/v1/integrations/xero/sync/logs").status_code == 401


def test_on_demand_sync_refuses_what_cannot_be_synced(api: TestClient, settings: Settings, acme: str) -> None:
    unknown = api.post("/api/v1/integrations/xero/sync/widgets", headers=bearer(acme))
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "validation_failed"
    assert "contacts" in unknown.json()["error"]["message"]
    no_pulls = api.post("/api/v1/integrations/twilio/sync", headers=bearer(acme))
    assert no_pulls.status_code == 409 and no_pulls.json()["error"]["code"] == "integration_not_available"
    assert "no pulls" in no_pulls.json()["error"]["message"]
    stranger = make_tenant(settings, "stranger")
    not_connected = api.post("/api/v1/integrations/xero/sync", headers=bearer(stranger))
    assert not_connected.status_code == 409 and not_connected.json()["error"]["code"] == "connection_unusable"
    api.delete("/api/v1/integrations/xero/disconnect", headers=bearer(acme))
    disconnected = api.post("/api/v1/integrations/xero/sync/contacts", headers=bearer(acme))
    assert disconnected.status_code == 409 and "disconnected" in disconnected.json()["error"]["message"]


def test_on_demand_sync_answers_503_when_dagster_cannot_be_reached(
    api: TestClient, settings: Settings, acme: str
) -> None:
    api.app.state.settings = settings.model_copy(update={"dagster_port": free_port()})  # type: ignore[attr-defined]
    response = api.post("/api/v1/integrations/xero/sync", headers=bearer(acme))
    assert response.status_code == 503 and response.json()["error"]["code"] == "orchestrator_unavailable"


@pytest.mark.dagster
def test_on_demand_sync_queues_a_run_for_the_tenants_partition_through_the_dagster_webserver(
    api: TestClient, settings: Settings, acme: str, tmp_path: Path
) -> None:
    env = {**os.environ, **dagster_environment(settings, ROOT)}
    initialise_instance(dagster_environment(settings, ROOT))
    port = free_port()
    log_path = tmp_path / "webserver.log"
    with log_path.open("wb") as log:
        webserver = subprocess.Popen(
            [sys.executable, "-m", "dagster_webserver", "-w", str(ROOT / "workspace.yaml"), "-h", "127.0.0.1",
             "-p", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
    try:
        wait_for_code_location(port, webserver, log_path)
        saved = {key: os.environ.get(key) for key in env}
        os.environ.update(dagster_environment(settings, ROOT))
        instance = DagsterInstance.get()
        api.app.state.dagster_instance = instance  # type: ignore[attr-defined]
        api.app.state.settings = settings.model_copy(update={"dagster_port": port})  # type: ignore[attr-defined]

        response = api.post("/api/v1/integrations/xero/sync/invoices?full=true", headers=bearer(acme))
        assert response.status_code == 202, response.text
        launched = response.json()
        assert launched["entities"] == ["invoices"] and launched["full"] is True and launched["status"] == "queued"

        run = instance.get_run_by_id(launched["run_id"])
        assert run is not None and run.job_name == "xero_sync"
        assert run.status == DagsterRunStatus.QUEUED  # no daemon here: it waits in the run queue
        assert run.tags["vrtx/trigger"] == "api" and run.tags["dagster/partition"] == "acme"
        assert run.tags["vrtx/connection"] == "xero:acme"
        assert run.asset_selection == {AssetKey(["xero", "invoices"])}
        assert run.run_config["ops"]["xero_pull"]["config"] == {"full": True}
        active = api.get("/api/v1/integrations/xero/sync/status", headers=bearer(acme)).json()["active_runs"]
        assert [(r["run_id"], r["status"], r["trigger"]) for r in active] == [(run.run_id, "queued", "api")]
        instance.dispose()
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    finally:
        stop_group(webserver, signal.SIGINT)


LOCATIONS = """{ workspaceOrError { ... on Workspace { locationEntries { name
    locationOrLoadError { __typename } } } } }"""


def wait_for_code_location(port: int, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, log_path.read_text()[-3000:]
        try:
            answer = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": LOCATIONS}, timeout=10).json()
            entries = answer["data"]["workspaceOrError"]["locationEntries"]
            if any(e["locationOrLoadError"]["__typename"] == "RepositoryLocation" for e in entries):
                return
            assert not any(e["locationOrLoadError"]["__typename"] == "PythonError" for e in entries), entries
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError("the Dagster webserver never loaded the vrtx code location")
