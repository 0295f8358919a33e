"""Shared fixtures: an app database of its own per test on SQLite and (when given) PostgreSQL, copied from one
migrated once per worker; settings, API clients.

PostgreSQL tests run against ``VRTX_TEST_POSTGRES_URL`` (an admin URL; each test gets its own database).
Without it they are skipped, unless ``VRTX_REQUIRE_POSTGRES=1`` (CI), where a missing server is an error.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from dagster import DagsterInstance
from dagster._core.test_utils import instance_for_test
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from api.main import create_app
from providers.sandbox_kit.serve import ServedApp
from tests.faults.matrix import MatrixReport
from vrtx_pipelines.cli.sandboxes import sandbox_base_urls, start_sandboxes, stop_sandboxes
from vrtx_pipelines.config import Settings, reset_settings_cache
from vrtx_pipelines.credentials.vault import generate_key
from vrtx_pipelines.db import migrate
from vrtx_pipelines.db.session import engine_for
from vrtx_pipelines.registry import load_providers

POSTGRES_URL = os.environ.get("VRTX_TEST_POSTGRES_URL", "")
REQUIRE_POSTGRES = os.environ.get("VRTX_REQUIRE_POSTGRES") == "1"


# Tests that start real processes (vrtx dev, dagster-webserver and -daemon, Chromium): the longest by far.
REAL_PROCESSES = (
    "tests/test_dev.py",
    "tests/test_pushes_daemon.py",
    "tests/test_cli_dev_platform.py",
    "tests/test_stateless_api.py",
    "tests/browser/",
)


def running_time_rank(item: pytest.Item) -> int:
    """0 for tests that start real processes, 1 for those that run Dagster in process, 2 for the rest."""
    path = str(item.path).replace(os.sep, "/")
    if any(part in path for part in REAL_PROCESSES):
        return 0
    return 1 if item.get_closest_marker("dagster") else 2


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(MatrixReport(), "fault-matrix")


@pytest.hookimpl(trylast=True)  # after tests/browser/conftest.py has marked its tests
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if REQUIRE_POSTGRES and not POSTGRES_URL:
        raise pytest.UsageError("VRTX_REQUIRE_POSTGRES=1 but VRTX_TEST_POSTGRES_URL is not set")
    if hasattr(config, "workerinput"):  # a pytest-xdist worker (each one collects, identically)
        # Under pytest-xdist (scripts/test: -n 2 --maxschedchunk 2, workers take the next tests as they finish):
        # the longest tests first, so that no worker is left with a long one at the end while the others idle.
        # Stable: within a rank the collection order (and its module fixtures' reuse) is kept.
        items.sort(key=running_time_rank)


def _admin_connection() -> psycopg2.extensions.connection:
    url = make_url(POSTGRES_URL)
    conn = psycopg2.connect(
        host=url.host, port=url.port or 5432, user=url.username, password=url.password, dbname=url.database
    )
    conn.autocommit = True
    return conn


def _create_database(template: str | None = None) -> str:
    name = f"vrtx_test_{uuid.uuid4().hex[:12]}"
    admin = _admin_connection()
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    finally:
        admin.close()
    return name


def _drop_database(name: str) -> None:
    engine_for.cache_clear()
    admin = _admin_connection()
    try:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


def _postgres_url_of(name: str) -> str:
    return make_url(POSTGRES_URL).set(drivername="postgresql+psycopg2", database=name).render_as_string(False)


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A PostgreSQL database migrated to the newest schema once per worker, copied for each test (CREATE DATABASE
    ... TEMPLATE): migrating a fresh database for every test was a large part of the suite's time."""
    if not POSTGRES_URL:
        pytest.skip("set VRTX_TEST_POSTGRES_URL to run PostgreSQL tests")
    name = _create_database()
    try:
        migrate.upgrade(_postgres_url_of(name))  # alembic's own engine (NullPool): no connection is left open
        yield name
    finally:
        _drop_database(name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite app database migrated once per worker, copied for each test: on SQLite a fresh migration costs
    over a second (batch ALTERs rebuild tables), a copy milliseconds."""
    path = tmp_path_factory.mktemp("template") / "app.db"
    migrate.upgrade(f"sqlite:///{path}")  # rollback-journal mode: the file alone holds everything
    return path


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A brand-new, empty PostgreSQL database for this test (dropped afterwards)."""
    if not POSTGRES_URL:
        pytest.skip("set VRTX_TEST_POSTGRES_URL to run PostgreSQL tests")
    name = _create_database()
    try:
        yield _postgres_url_of(name)
    finally:
        _drop_database(name)


@pytest.fixture
def migrated_postgres_url(postgres_template: str) -> Iterator[str]:
    """A PostgreSQL database of this test's own, already at the newest schema (dropped afterwards)."""
    name = _create_database(template=postgres_template)
    try:
        yield _postgres_url_of(name)
    finally:
        _drop_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The app database URL, once per backend: this test's own database, already migrated (the app and the
    CLI still run their migrations on it, which then find nothing to do)."""
    if request.param == "sqlite":
        path = tmp_path / "app.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("migrated_postgres_url")
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty app database (no tables), once per backend: for migrations and first starts."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'app.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def vault_keys() -> str:
    return generate_key("k1").render()


@pytest.fixture(scope="session")
def sandbox_servers() -> Iterator[dict[str, ServedApp]]:
    """Every built provider sandbox, served over real HTTP on loopback for the whole session."""
    served = start_sandboxes(load_providers().values())
    yield served
    stop_sandboxes(served)


@pytest.fixture
def sandboxes(sandbox_servers: dict[str, ServedApp]) -> dict[str, ServedApp]:
    """The sandboxes with their fault knobs reset for this test (``served.app.state.sandbox``)."""
    for server in sandbox_servers.values():
        state = server.app.state.sandbox
        server.app.state.sandbox = type(state)()
    return sandbox_servers


@pytest.fixture
def base_urls(sandboxes: dict[str, ServedApp]) -> dict[str, str]:
    """Provider slug -> sandbox base URL, as VRTX_PROVIDER_BASE_URLS would say."""
    return sandbox_base_urls(sandboxes)


@pytest.fixture
def oauth_clients() -> dict[str, dict[str, str]]:
    """Provider slug -> this platform's OAuth app, as VRTX_OAUTH_CLIENTS would say."""
    return {}


@pytest.fixture
def settings(
    tmp_path: Path,
    db_url: str,
    vault_keys: str,
    base_urls: dict[str, str],
    oauth_clients: dict[str, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Settings]:
    """This test's settings, also exported to the environment so code that reads them itself (Dagster
    assets, `vrtx` commands) sees the same database, keys and sandboxes."""
    settings = Settings(
        home=tmp_path / "home",
        database_url=db_url,
        vault_keys=vault_keys,
        provider_base_urls=base_urls,
        oauth_clients=oauth_clients,
        http_timeout_s=5,
    )
    monkeypatch.setenv("VRTX_HOME", str(settings.home))
    monkeypatch.setenv("VRTX_DATABASE_URL", db_url)
    monkeypatch.setenv("VRTX_VAULT_KEYS", vault_keys)
    monkeypatch.setenv("VRTX_PROVIDER_BASE_URLS", json.dumps(base_urls))
    monkeypatch.setenv("VRTX_OAUTH_CLIENTS", json.dumps(oauth_clients))
    reset_settings_cache()
    yield settings
    reset_settings_cache()


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    """The real API app (migrated database, synced catalog) behind an in-process HTTP client."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="session")
def dagster_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Dagster instance directory whose storages exist, made once per worker and copied for each test: creating
    them (SQLite databases stamped by Dagster's own migrations) took seconds a test."""
    path = tmp_path_factory.mktemp("dagster-template")
    with instance_for_test(temp_dir=str(path)) as instance:
        instance.get_runs(limit=1)
        instance.get_dynamic_partitions("vrtx_template_probe")
        instance.all_instigator_state()
    return path


@pytest.fixture
def instance(settings: Settings, tmp_path: Path, dagster_template: Path) -> Iterator[DagsterInstance]:
    """A throwaway Dagster instance of this test's own (after ``settings``, so runs in it see the test's
    environment)."""
    home = tmp_path / "dagster-instance"
    shutil.copytree(dagster_template, home)
    with instance_for_test(temp_dir=str(home)) as instance:
        yield instance
