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
