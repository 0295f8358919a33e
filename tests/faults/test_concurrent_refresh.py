"""Fault: four processes find one connection's access token expired at the same moment."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from providers.sandbox_kit.serve import ServedApp
from providers.xero.sandbox import XeroSandbox, XeroSandboxKnobs
from tests.faults.helpers import ROOT, connection_status, sync_logs
from tests.faults.matrix import fault
from tests.helpers import make_tenant
from tests.xero.conftest import connect_xero
from vrtx_pipelines.config import Settings
from vrtx_pipelines.credentials.stored import read_credentials, store_credentials
from vrtx_pipelines.credentials.vault import vault_from_settings
from vrtx_pipelines.db.models import TenantIntegration
from vrtx_pipelines.db.session import engine_for, session_scope

Xero = tuple[XeroSandbox, ServedApp, str]
PROCESSES = 4

# Each process loads everything first, says so, and waits for the go file: the four then ask for a token within
# milliseconds of each other, instead of one interpreter start apart.
REFRESHER = textwrap.dedent(
    """
    import hashlib, sys, time
    from pathlib import Path
    import httpx
    from vrtx_pipelines.config import get_settings
    from vrtx_pipelines.connect.context import ConnectionContext
    from vrtx_pipelines.connect.oauth import access_token
    from vrtx_pipelines.credentials.vault import vault_from_settings
    from vrtx_pipelines.db.session import session_scope

    connection_id, organisation, go = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    settings = get_settings()
    with session_scope() as session:
        session.connection()  # the pool's connection is open before the race starts
        print("ready", flush=True)
        deadline = time.monotonic() + 60
        while not go.exists() and time.monotonic() < deadline:
            time.sleep(0.002)
        ctx = ConnectionContext(session=session, vault=vault_from_settings(settings), settings=settings)
        token = access_token(ctx, connection_id)
    url = settings.provider_url("xero", "https://api.xero.com/api.xro/2.0/Organisation")
    headers = {"Authorization": f"Bearer {token}", "xero-tenant-id": organisation, "Accept": "application/json"}
    print(httpx.get(url, headers=headers).status_code, hashlib.sha256(token.encode()).hexdigest()[:16], flush=True)
    """
)


def expire_stored_access_token(settings: Settings, tenant_id: str) -> tuple[int, str]:
    """(connection id, its refresh token), the stored access token now past its expiry."""
    vault = vault_from_settings(settings)
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        row = session.scalars(select(TenantIntegration).where(TenantIntegration.tenant_id == tenant_id)).one()
        tokens = read_credentials(vault, row, "xero")
        store_credentials(vault, row, "xero", {**tokens, "expires_at": time.time() - 10})
        return row.id, str(tokens["refresh_token"])


@fault(
    "four processes refreshing one connection at once",
    "4 real processes released together: exactly one refresh at Xero, all four get the same new token and a 200 "
    "from the API, the rotated refresh token is the one stored; the connection shows connected with no error "
    "and the sync log no failure",
)
def test_four_processes_refreshing_one_connection_at_once_make_one_refresh_and_all_get_a_working_token(
    api: TestClient, settings: Settings, xero: Xero, tmp_path: Path
) -> None:
    sandbox, served, org = xero
    token = make_tenant(settings, "acme")
    connect_xero(settings, "acme")
    connection_id, old_refresh = expire_stored_access_token(settings, "acme")
    knobs: XeroSandboxKnobs = served.app.state.sandbox
    knobs.latency_s = 0.5  # a slow token endpoint: the first refresh is still in flight when the others ask
    go = tmp_path / "go"
    before = sandbox.stats.refresh_requests
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", REFRESHER, str(connection_id), org, str(go)],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready", process.stderr.read() if process.stderr else ""
        go.touch()
        outputs = [process.communicate(timeout=120) for process in processes]
    finally:
        for process in processes:
            process.kill()
    for process, (_out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err[-3000:]
    answers = [out.split() for out, _ in outputs]
    assert [status for status, _ in answers] == ["200"] * PROCESSES
    assert len({token for _, token in answers}) == 1  # one new token, shared
    assert sandbox.stats.refresh_requests - before == 1
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        row = session.get_one(TenantIntegration, connection_id)
        tokens = read_credentials(vault_from_settings(settings), row, "xero")
    assert tokens["refresh_token"] != old_refresh and row.status == "connected"
    assert hashlib.sha256(str(tokens["access_token"]).encode()).hexdigest()[:16] == answers[0][1]
    status = connection_status(api, token)
    assert status["status"] == "connected" and status["last_error"] is None
    assert [row for row in sync_logs(api, token) if row["status"] != "success"] == []
