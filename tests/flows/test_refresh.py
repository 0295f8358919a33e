"""Refresh, for every provider a tenant connects by OAuth: two processes finding the access token expired at the
same moment make one refresh between them, both go on with the same token the provider accepts, and what is kept
is what the provider answered (the rotated refresh token where it rotates them)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
import time

from fastapi.testclient import TestClient
from sqlalchemy import select

from providers.sandbox_kit.oauth import AccessToken
from providers.sandbox_kit.serve import ServedApp
from tests.flows.harness import Flows, Started
from vrtx_pipelines.config import Settings
from vrtx_pipelines.credentials.stored import read_credentials, store_credentials
from vrtx_pipelines.credentials.vault import vault_from_settings
from vrtx_pipelines.db.models import TenantIntegration
from vrtx_pipelines.db.session import engine_for, session_scope

CAPABILITY = "connect"
OAUTH_ONLY = True

# Prints a digest, not the token: a worker's output is no place for a credential.
REFRESH = textwrap.dedent(
    """
    import hashlib, sys
    from vrtx_pipelines.config import get_settings
    from vrtx_pipelines.connect.context import ConnectionContext
    from vrtx_pipelines.connect.oauth import access_token
    from vrtx_pipelines.credentials.vault import vault_from_settings
    from vrtx_pipelines.db.session import session_scope
    settings = get_settings()
    with session_scope() as session:
        ctx = ConnectionContext(session=session, vault=vault_from_settings(settings), settings=settings)
        print(hashlib.sha256(access_token(ctx, int(sys.argv[1])).encode()).hexdigest())
    """
)


def _kept(settings: Settings, slug: str) -> tuple[int, dict[str, object]]:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        row = session.scalars(select(TenantIntegration).where(TenantIntegration.tenant_id == "acme")).one()
        return row.id, dict(read_credentials(vault_from_settings(settings), row, slug))


def _expire(settings: Settings, slug: str) -> None:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        row = session.scalars(select(TenantIntegration).where(TenantIntegration.tenant_id == "acme")).one()
        vault = vault_from_settings(settings)
        store_credentials(vault, row, slug, {**read_credentials(vault, row, slug), "expires_at": time.time() - 10})


def test_two_processes_refreshing_at_once_make_one_refresh_and_keep_what_the_provider_answered(
    api: TestClient, settings: Settings, flows: Flows, started: Started, served: ServedApp, token: str
) -> None:
    oauth = started.sandbox.oauth
    flows.connect(api, token)
    connection_id, before = _kept(settings, flows.slug)
    _expire(settings, flows.slug)
    refreshes = oauth.stats.refresh_requests
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", REFRESH, str(connection_id)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=120) for worker in workers]
    for worker, (_out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
    assert oauth.stats.refresh_requests - refreshes == 1
    _, after = _kept(settings, flows.slug)
    access = str(after["access_token"])
    assert {out.strip() for out, _err in outputs} == {hashlib.sha256(access.encode()).hexdigest()}
    assert access != before["access_token"] and isinstance(oauth.authenticate(access), AccessToken)
    if oauth.policy.rotate_refresh_tokens:
        assert after["refresh_token"] != before["refresh_token"]
        fresh = oauth.refresh_tokens[str(after["refresh_token"])]
        assert fresh.first_used_at is None and not fresh.revoked  # the one answered last, not yet spent
    else:
        assert after["refresh_token"] == before["refresh_token"]
