"""What a pull's resources share: the connection (its token read through the run's one database session) and the
processes dlt normalises in."""

from __future__ import annotations

import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest
from sqlalchemy import select

from providers.kit.governor import RateGovernor
from tests.helpers import make_tenant
from vrtx_pipelines.config import Settings
from vrtx_pipelines.connect import oauth
from vrtx_pipelines.connect.context import ConnectionContext
from vrtx_pipelines.connect.provider_connection import provider_connection
from vrtx_pipelines.credentials.vault import vault_from_settings
from vrtx_pipelines.db.models import Integration, TenantIntegration
from vrtx_pipelines.db.session import engine_for, session_scope
from vrtx_pipelines.platform import prepare_database
from vrtx_pipelines.pull.tuning import normalize_environment
from vrtx_pipelines.registry import get_provider


def test_resources_paging_at_once_take_turns_with_the_runs_session(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepare_database(settings)
    make_tenant(settings, "acme")
    inside = 0
    most_inside = 0
    count = threading.Lock()

    def access_token(ctx: ConnectionContext, connection_id: int, *, force: bool = False) -> str:
        nonlocal inside, most_inside
        with count:
            inside += 1
            most_inside = max(most_inside, inside)
        time.sleep(0.02)  # a session read, or a refresh round trip
        with count:
            inside -= 1
        return "refreshed" if force else "token"

    monkeypatch.setattr(oauth, "access_token", access_token)
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        xero = session.scalars(select(Integration).where(Integration.slug == "xero")).one()
        row = TenantIntegration(
            tenant_id="acme", integration_id=xero.id, status="connected", meta={"external_account_id": "org-1"}
        )
        session.add(row)
        session.flush()
        ctx = ConnectionContext(session=session, vault=vault_from_settings(settings), settings=settings)
        connection = provider_connection(ctx, get_provider("xero"), row.id, None, RateGovernor())
        answers: list[Any] = []
        calls = [connection.access_token, connection.refresh_access_token] * 4
        threads = [threading.Thread(target=lambda call=call: answers.append(call())) for call in calls]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert sorted(answers) == ["refreshed"] * 4 + ["token"] * 4
    assert most_inside == 1


def _worker_state() -> tuple[tuple[int, int, int], int, bool]:
    import gc
    import sys

    return gc.get_threshold(), gc.get_freeze_count(), "dlt.normalize.worker" in sys.modules


def test_normalize_workers_of_a_first_sync_are_forked_with_dlt_loaded_and_the_collector_tuned() -> None:
    settings = normalize_environment(first_sync=True)
    assert settings["NORMALIZE__START_METHOD"] == "forkserver"
    assert int(settings["NORMALIZE__WORKERS"]) >= 1
    # The same context dlt's pool takes from that setting.
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("forkserver")) as pool:
        threshold, frozen, dlt_loaded = pool.submit(_worker_state).result(timeout=60)
    assert threshold == (100_000, 50, 50)
    assert frozen > 0 and dlt_loaded
