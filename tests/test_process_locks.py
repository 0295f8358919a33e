"""Process locks on PostgreSQL share the app's pooled engine: taking and giving one back leaves the pool, and the
connections other threads' sessions hold from it, as they were."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.process_locks import ProcessLock, hold, is_free
from vrtx_pipelines.db.session import engine_for, session_scope

pytestmark = pytest.mark.postgres


@pytest.fixture
def db_url(postgres_url: str) -> str:
    """PostgreSQL only: SQLite's locks are files."""
    return postgres_url


@pytest.fixture
def no_cyclic_collector() -> Iterator[None]:
    """Orphaned pools close their connections only when the cyclic collector finds them: not during the test."""
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def backends(settings: Settings) -> int:
    with engine_for(settings.sqlalchemy_url).connect() as connection:
        return int(
            connection.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
            ).scalar_one()
        )


def test_locks_taken_while_other_sessions_are_open_open_no_connections_that_outlive_them(
    settings: Settings, no_cyclic_collector: None
) -> None:
    engine = engine_for(settings.sqlalchemy_url)
    pool = engine.pool
    before = backends(settings)
    for key in range(8):  # as a batch's threads do: one pull ends (its lock given back) while others run
        with session_scope(engine) as session:
            session.execute(text("SELECT 1"))
            with hold(settings, ProcessLock(91_001, "test", key), wait=True) as held:
                assert held
                assert not is_free(settings, ProcessLock(91_001, "test", key))
        assert is_free(settings, ProcessLock(91_001, "test", key))
    assert engine.pool is pool  # the app's pool was not replaced under its sessions
    assert backends(settings) <= before + 2  # the pool reuses its connections; nothing is left open elsewhere
