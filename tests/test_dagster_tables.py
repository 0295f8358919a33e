"""Dagster's storage on the app database (the PostgreSQL instance file): its tables are created once by `vrtx`, and
opening an instance does not list every table of the database (warehouse schemas included) to look for them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from tests.faults.helpers import ROOT
from vrtx_pipelines.cli.devserver import DAGSTER_TABLES, dagster_environment, dagster_instance
from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.session import engine_for

pytestmark = [pytest.mark.dagster, pytest.mark.postgres]


@pytest.fixture
def db_url(postgres_url: str) -> str:
    """PostgreSQL only: SQLite instances keep their own files."""
    return postgres_url


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """Every statement any SQLAlchemy engine of this process sends while the test runs."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    yield sent
    event.remove(Engine, "before_cursor_execute", record)


def lists_every_table(statement: str) -> bool:
    """SQLAlchemy's ``get_table_names()``: every visible table of the database (lookups by name are cheap)."""
    return "pg_table_is_visible" in statement and "relname IN" not in statement and "relname =" not in statement


def existing(settings: Settings) -> set[str]:
    with engine_for(settings.sqlalchemy_url).connect() as connection:
        found = connection.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename = ANY(:names)"),
            {"names": list(DAGSTER_TABLES)},
        )
        return {row[0] for row in found}


def test_dagsters_tables_are_created_once_and_an_instance_opens_without_listing_the_databases_tables(
    settings: Settings, statements: list[str]
) -> None:
    assert existing(settings) == set()  # the app's migrations made only the app's tables
    env = dagster_environment(settings, ROOT)
    assert existing(settings) == set(DAGSTER_TABLES)

    statements.clear()
    instance = dagster_instance(env)
    try:
        assert instance.get_runs(limit=1) == []  # the storage answers from the tables made before
        assert instance.get_latest_materialization_event(_key()) is None
    finally:
        instance.dispose()
    assert statements, "the instance's storage was not reached through SQLAlchemy"
    assert not [s for s in statements if lists_every_table(s)]

    statements.clear()
    dagster_environment(settings, ROOT)  # again: a lookup by name, nothing created
    assert [s for s in statements if "to_regclass" in s] and not [s for s in statements if "CREATE" in s.upper()]


def _key() -> Any:
    from dagster import AssetKey

    return AssetKey(["xero", "contacts"])


def test_the_daemons_storage_calls_ask_once_whether_dagsters_tables_exist(settings: Settings) -> None:
    """What a sensor tick asks of the schedule, run and event storages, many times over: after the first, no
    statement lists the database's tables, no schema question is asked again and no connection is opened (each
    storage keeps its pool's); disposing the instance closes them."""
    from dagster._core.instance.ref import InstanceRef
    from dagster._core.scheduler.instigation import TickStatus

    env = dagster_environment(settings, ROOT)
    instance = dagster_instance(env)
    sent: list[str] = []
    connects: list[object] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    def connected(*_args: Any) -> None:
        connects.append(object())

    def tick() -> None:
        instance.all_instigator_state()
        assert instance.schedule_storage.supports_batch_queries
        instance.get_ticks("origin", "selector", limit=1, statuses=[TickStatus.SUCCESS])
        instance.get_runs(limit=1)
        instance.get_backfills(limit=1)
        instance.event_log_storage.store_event(_materialization())

    try:
        tick()  # the first answers are asked of PostgreSQL (by name) and kept
        event.listen(Engine, "before_cursor_execute", record)
        event.listen(Engine, "connect", connected)
        try:
            for _ in range(3):
                tick()
        finally:
            event.remove(Engine, "before_cursor_execute", record)
            event.remove(Engine, "connect", connected)
        storages = (instance.run_storage, instance.event_log_storage, instance.schedule_storage)
        held = backends(settings)
    finally:
        instance.dispose()
    assert held >= 3 and closed_soon(settings), "the pools' connections outlived the instance"
    assert sent, "the storages were not reached through SQLAlchemy"
    assert not [s for s in sent if lists_every_table(s)]
    assert not [s for s in sent if "pg_catalog" in s], "a schema question asked again"
    assert connects == [], "a storage call opened a connection of its own"
    assert [type(s).__name__ for s in storages] == ["VrtxRunStorage", "VrtxEventLogStorage", "VrtxScheduleStorage"]
    # A run worker rebuilds its storages from the instance's reference: the same classes.
    assert InstanceRef.from_dir(env["DAGSTER_HOME"]).storage_data.class_name == "VrtxPostgresStorage"  # type: ignore[union-attr]


def backends(settings: Settings) -> int:
    """Connections to the test's database other than this query's."""
    with engine_for(settings.sqlalchemy_url).connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
        )


def closed_soon(settings: Settings) -> bool:
    """A closed connection's backend leaves pg_stat_activity a moment after the client hangs up."""
    import time

    deadline = time.monotonic() + 5
    while backends(settings) and time.monotonic() < deadline:
        time.sleep(0.05)
    return backends(settings) == 0


def _materialization() -> Any:
    import time

    from dagster import AssetKey, AssetMaterialization, DagsterEvent, DagsterEventType, EventLogEntry
    from dagster._core.events import StepMaterializationData

    materialization = AssetMaterialization(asset_key=AssetKey(["xero", "contacts"]), partition="t1")
    return EventLogEntry(
        error_info=None,
        level=20,
        user_message="",
        run_id="0" * 36,
        timestamp=time.time(),
        step_key="step",
        job_name="job",
        dagster_event=DagsterEvent(
            DagsterEventType.ASSET_MATERIALIZATION.value,
            "job",
            event_specific_data=StepMaterializationData(materialization),
        ),
    )
