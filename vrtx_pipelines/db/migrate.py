"""Alembic, driven from code: ``vrtx db upgrade`` and the tests use these."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Not "alembic_version": Dagster's storage keeps its own there when both live in one PostgreSQL database.
VERSION_TABLE = "vrtx_alembic_version"
# The newest revision (tests/test_migrations.py checks it against the scripts): a database already there needs no
# Alembic at all, which is what a `vrtx` command asks on every call (``is_current``).
HEAD = "0011"


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation would eat a '%' in a URL-encoded password.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(url), revision)


def is_current(url: str) -> bool:
    """Whether the database is at ``HEAD``: one query, no Alembic (a missing version table is not current)."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    from vrtx_pipelines.db.session import engine_for

    try:
        with engine_for(url).connect() as connection:
            return connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar() == HEAD  # noqa: S608
    except SQLAlchemyError:
        return False


def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
            return context.get_current_revision()
    finally:
        engine.dispose()
