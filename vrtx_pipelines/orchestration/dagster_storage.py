"""Dagster's PostgreSQL storage, asking once whether its own tables and columns exist.

Dagster's SQL storages ask "does table X exist?" on nearly every call: the schedule storage with SQLAlchemy's
``get_table_names()``, which filters every row of pg_class through ``pg_table_is_visible()``. Dagster's tables share
the app database with every tenant's warehouse schema, so that lookup grows with the tenants (75 ms a call at 300
tenants, ~15 calls per sensor tick: 98% of PostgreSQL's time in the fleet benchmark). Here a table is looked up by
name and a yes is kept for the life of the process: Dagster's migrations add tables and columns, never drop them
while the platform runs. A no is asked again, so a migration made by another process is seen.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from dagster._config import Field, IntSource
from dagster._core.storage.config import pg_config
from dagster._serdes import ConfigurableClassData
from dagster_postgres import (
    DagsterPostgresStorage,
    PostgresEventLogStorage,
    PostgresRunStorage,
    PostgresScheduleStorage,
)
from dagster_postgres.utils import (
    create_pg_connection,
    create_pg_engine,
    get_token_provider_from_config,
    pg_url_from_config,
)
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, Engine

# Connections a storage may open beyond its pool while busy (closed when returned).
MAX_OVERFLOW = 10


class KnownSchema:
    """What of Dagster's schema this process has seen exist: tables by name, columns by (table, column)."""

    def __init__(self) -> None:
        self.tables: set[str] = set()
        self.columns: set[tuple[str, str]] = set()
        self.indexes: set[str] = set()

    def has_table(self, conn: Connection, name: str) -> bool:
        if name not in self.tables and conn.dialect.has_table(conn, name):
            self.tables.add(name)
        return name in self.tables

    def has_column(self, conn: Connection, table: str, column: str) -> bool:
        if (table, column) not in self.columns:
            self.columns.update((table, c["name"]) for c in inspect(conn).get_columns(table))
        return (table, column) in self.columns


class Configured:
    """Built from the config of ``storage: postgres:``, plus ``pool_size``: connections each storage keeps open.

    dagster_postgres opens a connection for every storage call (NullPool), a PostgreSQL backend forked each time;
    a long-lived process making many calls (the daemon, a batch run storing an event per tenant and asset) keeps a
    few instead. 0 keeps Dagster's NullPool."""

    def __init__(
        self,
        postgres_url: str,
        should_autocreate_tables: bool = True,
        inst_data: ConfigurableClassData | None = None,
        token_provider: Any = None,
        pool_size: int = 0,
    ) -> None:
        super().__init__(postgres_url, should_autocreate_tables, inst_data, token_provider)  # type: ignore[call-arg]
        self._build(postgres_url, should_autocreate_tables, token_provider, pool_size)

    def _build(self, postgres_url: str, should_autocreate_tables: bool, token_provider: Any, pool_size: int) -> None:
        """What the class adds once dagster_postgres's constructor has run."""

    @classmethod
    def config_type(cls) -> Any:
        return {**cast(dict[str, Any], pg_config()), "pool_size": Field(IntSource, is_required=False, default_value=0)}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]) -> Any:
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
            pool_size=config_value.get("pool_size", 0),
        )


class Storage(Configured):
    """One of the three storages: its engine pooled, its schema questions answered from what it has seen."""

    _engine: Engine  # dagster_postgres's

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Before dagster_postgres's constructor, which may ask (creating the tables, it migrates and checks indexes).
        self._known = KnownSchema()
        self._companions: list[Storage] = []  # disposed with this one
        super().__init__(*args, **kwargs)

    def _build(self, postgres_url: str, should_autocreate_tables: bool, token_provider: Any, pool_size: int) -> None:
        if pool_size:
            self._engine.dispose()
            self._engine = create_pg_engine(
                postgres_url,
                token_provider,
                isolation_level="AUTOCOMMIT",
                pool_size=pool_size,
                max_overflow=MAX_OVERFLOW,
                pool_recycle=3600,
                pool_pre_ping=True,  # a restarted PostgreSQL costs a reconnect, not a failed call
            )

    def dispose(self) -> None:
        """Close the pool's connections too (dagster_postgres's storages keep none, so they close nothing)."""
        super().dispose()  # type: ignore[misc]
        for companion in self._companions:
            companion.dispose()
        self._engine.dispose()

    def _known_table(self, name: str) -> bool:
        if name in self._known.tables:
            return True
        with create_pg_connection(self._engine) as conn:
            return self._known.has_table(conn, name)

    def _known_column(self, table: str, column: str) -> bool:
        if (table, column) in self._known.columns:
            return True
        with create_pg_connection(self._engine) as conn:
            return self._known.has_column(conn, table, column)


class VrtxScheduleStorage(Storage, PostgresScheduleStorage):
    def has_instigators_table(self) -> bool:
        return self._known_table("instigators")

    def _has_instigators_table(self, conn: Connection) -> bool:
        return self._known.has_table(conn, "instigators")

    def _has_asset_daemon_asset_evaluations_table(self, conn: Connection) -> bool:
        return self._known.has_table(conn, "asset_daemon_asset_evaluations")

    def has_secondary_index_table(self) -> bool:
        return self._known_table("secondary_indexes")

    def has_built_index(self, migration_name: str) -> bool:
        if migration_name not in self._known.indexes and super().has_built_index(migration_name):
            self._known.indexes.add(migration_name)
        return migration_name in self._known.indexes


class VrtxRunStorage(Storage, PostgresRunStorage):
    """The run storage's column checks (asked on every run query) answered from what was seen."""

    def has_run_stats_index_cols(self) -> bool:
        return self._known_column("runs", "start_time") and self._known_column("runs", "end_time")

    def has_bulk_actions_selector_cols(self) -> bool:
        return self._known_column("bulk_actions", "selector_id")

    def has_backfill_id_column(self) -> bool:
        return self._known_column("runs", "backfill_id")

    def has_bulk_action_job_name_column(self) -> bool:
        return self._known_column("bulk_actions", "job_name")

    def has_backfill_tags_table(self) -> bool:
        return self._known_table("backfill_tags")


class VrtxEventLogStorage(Storage, PostgresEventLogStorage):
    """The event log's table checks (one per stored event) without a connection each once the table is seen."""

    def has_table(self, table_name: str) -> bool:
        return self._known_table(table_name)


class VrtxPostgresStorage(Configured, DagsterPostgresStorage):
    """DagsterPostgresStorage made of the three storages above, configured as ``storage: postgres:`` (+ pool_size)."""

    def _build(self, postgres_url: str, should_autocreate_tables: bool, token_provider: Any, pool_size: int) -> None:
        # Replaces dagster_postgres's own three, built by the parent; their engines hold no connection (NullPool).
        arguments = {
            "should_autocreate_tables": should_autocreate_tables,
            "token_provider": token_provider,
            "pool_size": pool_size,
        }
        self._run_storage = VrtxRunStorage(postgres_url, **arguments)
        self._event_log_storage = VrtxEventLogStorage(postgres_url, **arguments)
        self._schedule_storage = VrtxScheduleStorage(postgres_url, **arguments)
        # An instance disposes its run and event storages only: the schedule storage's pool goes with the runs'.
        self._run_storage._companions.append(self._schedule_storage)

    # What a child process (a run worker) rebuilds each storage from: these classes, not dagster_postgres's.
    @property
    def event_storage_data(self) -> ConfigurableClassData | None:
        return self._part("VrtxEventLogStorage")

    @property
    def run_storage_data(self) -> ConfigurableClassData | None:
        return self._part("VrtxRunStorage")

    @property
    def schedule_storage_data(self) -> ConfigurableClassData | None:
        return self._part("VrtxScheduleStorage")

    def _part(self, name: str) -> ConfigurableClassData | None:
        return ConfigurableClassData(__name__, name, self.inst_data.config_yaml) if self.inst_data else None
