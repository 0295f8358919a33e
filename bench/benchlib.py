"""Shared by the issue-4 benches: a platform on a fresh PostgreSQL database, a tenant connected to an in-process
provider sandbox (Xero unless told), child processes started and stopped in order, and percentiles."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pull import access_token, connect_in_sandbox, fresh_database, oauth_clients  # noqa: E402 -- the pull bench's helpers

from providers.sandbox_kit.serve import free_port  # noqa: E402

__all__ = [
    "ROOT",
    "Children",
    "Platform",
    "Runs",
    "access_token",
    "free_port",
    "fresh_database",
    "percentile",
    "serve_platform",
    "service_ports",
    "uvicorn",
    "wait_for",
]

IN_FLIGHT = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile: the value below which p% of the samples fall (no interpolation)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def wait_for(what: str, check: Callable[[], Any], timeout_s: float, every_s: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every_s)
    raise SystemExit(f"error: timed out after {timeout_s:.0f} s waiting for {what}")


class Platform:
    """The platform's settings on a fresh database, exported to this process (and its children) as VRTX_*; its
    tenants connect to the sandbox of ``slug``."""

    def __init__(
        self, admin_url: str, home: Path, base_url: str, extra: dict[str, str] | None = None, *, slug: str = "xero"
    ) -> None:
        from vrtx_pipelines.config import Settings, reset_settings_cache
        from vrtx_pipelines.credentials.vault import generate_key
        from vrtx_pipelines.platform import prepare_database
        from vrtx_pipelines.registry import get_provider

        self.provider = get_provider(slug)
        self.env = {
            "VRTX_HOME": str(home),
            "VRTX_DATABASE_URL": fresh_database(admin_url),
            "VRTX_VAULT_KEYS": generate_key("bench").render(),
            "VRTX_PROVIDER_BASE_URLS": json.dumps({slug: base_url}),
            "VRTX_OAUTH_CLIENTS": json.dumps(oauth_clients(self.provider)),
            "VRTX_LOG_LEVEL": "WARNING",
            **(extra or {}),
        }
        os.environ.update(self.env)
        reset_settings_cache()
        self.settings = Settings()
        prepare_database(self.settings)

    def connect_tenant(self, tenant_id: str) -> str:
        """A tenant connected to the sandbox (the real OAuth consent, or the sandbox's API key); returns its API
        token."""
        from vrtx_pipelines.connect.context import ConnectionContext
        from vrtx_pipelines.credentials.vault import vault_from_settings
        from vrtx_pipelines.db.session import engine_for, session_scope
        from vrtx_pipelines.tenants import create_tenant

        engine = engine_for(self.settings.sqlalchemy_url)
        with session_scope(engine) as session:
            _tenant, token = create_tenant(session, tenant_id)
        with session_scope(engine) as session:
            ctx = ConnectionContext(session=session, vault=vault_from_settings(self.settings), settings=self.settings)
            connect_in_sandbox(ctx, tenant_id, self.provider)
        return token

    def execute(self, sql: str, **params: Any) -> None:
        from sqlalchemy import text

        from vrtx_pipelines.db.session import engine_for

        with engine_for(self.settings.sqlalchemy_url).begin() as conn:
            conn.execute(text(sql), params)

    def scalar(self, sql: str, **params: Any) -> Any:
        rows = self.rows(sql, **params)
        return rows[0][0] if rows else None

    def rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        from sqlalchemy import text

        from vrtx_pipelines.db.session import engine_for

        with engine_for(self.settings.sqlalchemy_url).connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql), params)]


class Children:
    """Child processes in their own process groups, logging to files, stopped in reverse order."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(
                argv, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log, stderr=log, start_new_session=True
            )
        self.started.append((name, process))
        return process

    def wait_http(self, name: str, url: str, timeout_s: float = 120) -> None:
        process = dict(self.started)[name]

        def up() -> bool:
            if process.poll() is not None:
                raise SystemExit(f"error: {name} exited: {self.tail(name)}")
            try:
                return httpx.get(url, timeout=2).status_code < 500
            except httpx.HTTPError:
                return False

        wait_for(f"{name} at {url}", up, timeout_s, every_s=0.3)

    def tail(self, name: str, chars: int = 3000) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-chars:]

    def stop(self, name: str | None = None) -> None:
        for child_name, process in reversed(list(self.started)):
            if name is not None and child_name != name:
                continue
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            self.started.remove((child_name, process))


def uvicorn(children: Children, name: str, factory: str, port: int, workers: int, env: dict[str, str]) -> None:
    """An ASGI app of bench/ (``module:factory``) served as the platform's API is: uvicorn, access log off."""
    argv = [sys.executable, "-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", str(workers), "--log-level", "warning", "--no-access-log", "--app-dir", str(ROOT / "bench")]
    children.start(name, argv, env)


def service_ports() -> dict[str, str]:
    """Free ports for the API and the Dagster webserver, as Platform settings."""
    return {"VRTX_API_PORT": str(free_port()), "VRTX_DAGSTER_PORT": str(free_port())}


def serve_platform(platform: Platform, children: Children) -> tuple[dict[str, str], str]:
    """The platform as `vrtx dev` runs it: `vrtx api` (one uvicorn process), `vrtx webhook-worker` and `dagster dev`
    (webserver, daemon, code server) on the platform's database; returns the Dagster environment and the API's URL."""
    from vrtx_pipelines.cli.devserver import dagster_environment, initialise_instance

    api_port, dagster_port = platform.env["VRTX_API_PORT"], platform.env["VRTX_DAGSTER_PORT"]
    dagster_env = dagster_environment(platform.settings, ROOT)
    initialise_instance(dagster_env)
    started = time.perf_counter()
    vrtx = [sys.executable, "-m", "vrtx_pipelines.cli.main"]
    children.start("api", [*vrtx, "api", "--port", api_port], dagster_env)
    children.start("webhook-worker", [*vrtx, "webhook-worker"], dagster_env)
    dagster_cli = [sys.executable, "-m", "dagster", "dev", "-w", str(ROOT / "workspace.yaml")]
    children.start("dagster", [*dagster_cli, "-h", "127.0.0.1", "-p", dagster_port], dagster_env)
    children.wait_http("api", f"http://127.0.0.1:{api_port}/healthz", 60)
    children.wait_http("dagster", f"http://127.0.0.1:{dagster_port}/server_info", 180)
    print(f"API and dagster dev up in {time.perf_counter() - started:.1f} s")
    return dagster_env, f"http://127.0.0.1:{api_port}"


class Runs:
    """Read-only view of the Dagster instance the daemon uses."""

    def __init__(self, dagster_env: dict[str, str]) -> None:
        from dagster import DagsterInstance

        os.environ.update(dagster_env)
        self.instance = DagsterInstance.get()

    def in_flight(self) -> int:
        from dagster import DagsterRunStatus, RunsFilter

        statuses = [DagsterRunStatus[name] for name in IN_FLIGHT]
        return len(self.instance.get_run_records(RunsFilter(statuses=statuses)))

    def timing(self, run_id_or_batch: str | None) -> dict[str, float] | None:
        """created/started/ended (epoch seconds) of a run, by id or by the webhook batch key it was tagged with."""
        from dagster import RunsFilter

        from vrtx_pipelines.names import WEBHOOK_BATCH_TAG as BATCH_TAG

        if not run_id_or_batch:
            return None
        records = self.instance.get_run_records(RunsFilter(run_ids=[run_id_or_batch])) or self.instance.get_run_records(
            RunsFilter(tags={BATCH_TAG: run_id_or_batch})
        )
        if not records:
            return None
        from dagster import DagsterEventType

        record = records[-1]
        if record.start_time is None or record.end_time is None:
            return None
        # RUN_STARTING: dequeued and handed to the run launcher, which then spawns the run's process.
        starting = self.instance.get_records_for_run(record.dagster_run.run_id, of_type=DagsterEventType.RUN_STARTING)
        launching = starting.records[0].timestamp if starting.records else record.start_time
        return {
            "created": record.create_timestamp.timestamp(),
            "launching": launching,
            "started": record.start_time,
            "ended": record.end_time,
        }
