"""Shared by the issue-4 benches: a platform on a fresh PostgreSQL database, a tenant connected to an in-process
Xero sandbox, child processes started and stopped in order, and percentiles."""

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

from pull import fresh_database  # noqa: E402 -- the same throwaway-database helper as the pull bench

from providers.sandbox_kit.serve import free_port  # noqa: E402

__all__ = ["ROOT", "Children", "Platform", "free_port", "fresh_database", "percentile", "wait_for"]


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
    """The platform's settings on a fresh database, exported to this process (and its children) as VRTX_*."""

    def __init__(self, admin_url: str, home: Path, xero_base_url: str, extra: dict[str, str] | None = None) -> None:
        from providers.xero.sandbox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
        from vrtx_pipelines.config import Settings, reset_settings_cache
        from vrtx_pipelines.credentials.vault import generate_key
        from vrtx_pipelines.platform import prepare_database

        self.env = {
            "VRTX_HOME": str(home),
            "VRTX_DATABASE_URL": fresh_database(admin_url),
            "VRTX_VAULT_KEYS": generate_key("bench").render(),
            "VRTX_PROVIDER_BASE_URLS": json.dumps({"xero": xero_base_url}),
            "VRTX_OAUTH_CLIENTS": json.dumps(
                {"xero": {"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET}}
            ),
            "VRTX_LOG_LEVEL": "WARNING",
            **(extra or {}),
        }
        os.environ.update(self.env)
        reset_settings_cache()
        self.settings = Settings()
        prepare_database(self.settings)

    def connect_tenant(self, tenant_id: str) -> str:
        """A tenant connected to the sandbox through the real OAuth consent; returns its API token."""
        from vrtx_pipelines.connect.consent import consent_in_sandbox
        from vrtx_pipelines.connect.context import ConnectionContext
        from vrtx_pipelines.credentials.vault import vault_from_settings
        from vrtx_pipelines.db.session import engine_for, session_scope
        from vrtx_pipelines.registry import get_provider
        from vrtx_pipelines.tenants import create_tenant

        engine = engine_for(self.settings.sqlalchemy_url)
        with session_scope(engine) as session:
            _tenant, token = create_tenant(session, tenant_id)
        with session_scope(engine) as session:
            ctx = ConnectionContext(session=session, vault=vault_from_settings(self.settings), settings=self.settings)
            consent_in_sandbox(ctx, tenant_id, get_provider("xero"))
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
