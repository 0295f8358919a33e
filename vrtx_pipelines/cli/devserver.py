"""``vrtx dev``: the platform on one machine, with zero configuration."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import httpx
from dagster import DagsterInstance
from sqlalchemy import text
from sqlalchemy.engine import make_url

from providers.base import AuthType, Provider
from providers.sandbox_kit.serve import ServedApp
from vrtx_pipelines.cli.activity import ActivityFeed, start_feed
from vrtx_pipelines.cli.devlog import Terminal, pump
from vrtx_pipelines.cli.devstate import DevPlatform, remove_state, write_state
from vrtx_pipelines.cli.sandboxes import sandbox_base_urls, start_sandboxes, stop_sandboxes
from vrtx_pipelines.config import Settings
from vrtx_pipelines.connect.connections import connect_with_credentials
from vrtx_pipelines.connect.consent import consent_in_sandbox
from vrtx_pipelines.connect.context import ConnectionContext, Status, get_connection
from vrtx_pipelines.credentials.vault import vault_from_settings
from vrtx_pipelines.db.session import engine_for, session_factory, session_scope
from vrtx_pipelines.platform import ensure_demo_tenant, prepare_database
from vrtx_pipelines.registry import load_providers
from vrtx_pipelines.webhooks.config import subscribe_demo_webhooks
from vrtx_pipelines.webhooks.watches import renew_watches


def project_root() -> Path:
    """The checkout holding workspace.yaml and dagster_home/ (the current directory or the package's)."""
    for candidate in (Path.cwd(), Path(__file__).resolve().parent.parent):
        if (candidate / "workspace.yaml").exists() and (candidate / "dagster_home").is_dir():
            return candidate
    raise SystemExit("error: run vrtx dev from the project checkout (no workspace.yaml found)")


def dagster_environment(settings: Settings, root: Path) -> dict[str, str]:
    """DAGSTER_HOME under VRTX_HOME, holding the instance file that matches the app database.

    The committed instance files in dagster_home/ are the source; runtime state stays out of the checkout.
    """
    home = settings.home / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    env = {"DAGSTER_HOME": str(home)}
    template = root / "dagster_home" / "dagster.yaml"
    if settings.uses_postgres:
        template = root / "dagster_home" / "postgres" / "dagster.yaml"
        url = make_url(settings.sqlalchemy_url).set(drivername="postgresql+psycopg2")
        env["VRTX_DAGSTER_POSTGRES_URL"] = url.render_as_string(hide_password=False)
        ensure_dagster_tables(settings)
    shutil.copyfile(template, home / "dagster.yaml")
    return env


# The table each of Dagster's PostgreSQL storages looks for before it creates its schema.
DAGSTER_TABLES = ("runs", "instance_info", "event_logs", "jobs")


def ensure_dagster_tables(settings: Settings) -> None:
    """Create Dagster's tables in the app database unless they are there: the instance file turns Dagster's own
    check off (it lists every table of the database, warehouse schemas included, each time a storage opens). One
    lookup per table by name when they exist."""
    checks = ", ".join(f"to_regclass('{name}') IS NOT NULL" for name in DAGSTER_TABLES)
    with engine_for(settings.sqlalchemy_url).connect() as connection:
        if all(connection.execute(text(f"SELECT {checks}")).one()):
            return
    from dagster_postgres import DagsterPostgresStorage

    url = make_url(settings.sqlalchemy_url).set(drivername="postgresql+psycopg2")
    # Creates and stamps the tables (concurrent creators are retried by Dagster); its engines hold no connection.
    DagsterPostgresStorage(url.render_as_string(hide_password=False), should_autocreate_tables=True)


def dagster_instance(env: dict[str, str]) -> DagsterInstance:
    """The instance the children use, opened in this process (its config reads the environment once)."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        return DagsterInstance.get()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def initialise_instance(env: dict[str, str]) -> None:
    """Create Dagster's storage once, before the daemon and code server race to do it."""
    with dagster_instance(env) as instance:
        instance.get_runs(limit=1)
        instance.get_dynamic_partitions("vrtx_init_probe")
        instance.all_instigator_state()


def marketplace_link(api_url: str, token: str) -> str:
    """A signed link that opens the demo tenant's marketplace pages in a browser, asked of the running API, with
    how long it lasts."""
    try:
        answer = httpx.post(
            f"{api_url}/api/v1/marketplace/sessions", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        answer.raise_for_status()
    except httpx.HTTPError as exc:
        return f"(could not get a link: {type(exc).__name__})"
    link = answer.json()
    return f"{link['url']}  (opens once, within {int(link['expires_in']) // 60} minutes)"


def wait_until_up(url: str, process: subprocess.Popen[bytes], timeout_s: float, give_up: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None or give_up():
            return False
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


def connect_demo_tenant(settings: Settings, tenant_id: str) -> list[str]:
    """Connect the demo tenant to every sandbox that can be connected with credentials, once."""
    connected = []
    vault = vault_from_settings(settings)
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        ctx = ConnectionContext(session=session, vault=vault, settings=settings)
        for provider in load_providers().values():
            if not (provider.connectable and provider.sandbox_credentials):
                continue
            existing = get_connection(session, tenant_id, provider.slug)
            if existing is None or existing.status != Status.CONNECTED:
                if provider.auth.type is AuthType.OAUTH2:
                    consent_in_sandbox(ctx, tenant_id, provider)
                else:
                    connect_with_credentials(ctx, tenant_id, provider, provider.sandbox_credentials)
            connected.append(provider.slug)
    return connected


def run_dev(
    settings: Settings,
    api_port: int | None = None,
    dagster_port: int | None = None,
    *,
    sandboxes: bool = True,
    verbose: bool = False,
) -> int:
    root = project_root()
    api_port = api_port or settings.api_port
    dagster_port = dagster_port or settings.dagster_port
    api_url = f"http://{settings.api_host}:{api_port}"
    dagster_url = f"http://127.0.0.1:{dagster_port}"
    # Links, OAuth redirects and webhook URLs name the port this API really listens on unless told otherwise.
    explicit = settings.model_fields_set
    settings = settings.model_copy(
        update={
            "api_port": api_port,
            "dagster_port": dagster_port,
            "public_url": settings.public_url if "public_url" in explicit else api_url,
            "dagster_url": settings.dagster_url if "dagster_url" in explicit else dagster_url,
        }
    )
    settings.home.mkdir(parents=True, exist_ok=True)
    vault_from_settings(settings)  # creates the development key before any other process needs it
    prepare_database(settings)
    tenant_id, token = ensure_demo_tenant(settings)
    served: dict[str, ServedApp] = {}
    try:
        return _run_platform(settings, root, tenant_id, token, served, sandboxes=sandboxes, verbose=verbose)
    finally:
        remove_state(settings.home, os.getpid())
        stop_sandboxes(served)


def _run_platform(
    settings: Settings,
    root: Path,
    tenant_id: str,
    token: str,
    served: dict[str, ServedApp],
    *,
    sandboxes: bool,
    verbose: bool,
) -> int:
    demo_connections: list[str] = []
    watched: list[Provider] = []
    sandbox_apps: dict[str, dict[str, str]] = {}
    configured_apps = set(settings.oauth_clients)  # real apps: they win, and never go into the state file
    if sandboxes:
        providers = load_providers()
        served.update(start_sandboxes(providers.values()))
        base_urls = {**settings.provider_base_urls, **sandbox_base_urls(served)}
        # OAuth sandboxes register a demo app; use it unless a real app is configured.
        sandbox_apps = {
            slug: dict(providers[slug].sandbox_credentials)
            for slug in served
            if providers[slug].auth.type is AuthType.OAUTH2 and providers[slug].sandbox_credentials
        }
        settings = settings.model_copy(
            update={"provider_base_urls": base_urls, "oauth_clients": {**sandbox_apps, **settings.oauth_clients}}
        )
        demo_connections = connect_demo_tenant(settings, tenant_id)
        # Changes made in a sandbox come back as signed webhooks to the API, as they would from the provider.
        with session_scope(engine_for(settings.sqlalchemy_url)) as session:
            subscribe_demo_webhooks(
                session,
                vault_from_settings(settings),
                settings,
                tenant_id,
                {slug: server.app for slug, server in served.items()},
                f"http://{settings.api_host}:{settings.api_port}",
            )
        # Mailboxes notify only while watched: started once the API is up (Graph calls it back before it
        # subscribes), not at the schedule's next tick.
        watched = [providers[slug] for slug in served if providers[slug].watches is not None]
    api_url = f"http://{settings.api_host}:{settings.api_port}"
    dagster_url = f"http://127.0.0.1:{settings.dagster_port}"
    # From here on, `vrtx sync`, `vrtx connect`, ... in another shell reach the same sandboxes (cli/devstate.py).
    write_state(
        settings.home,
        DevPlatform(
            pid=os.getpid(),
            api_url=api_url,
            dagster_url=dagster_url,
            provider_base_urls=dict(settings.provider_base_urls),
            oauth_clients={slug: app for slug, app in sandbox_apps.items() if slug not in configured_apps},
        ),
    )
    dagster_env = dagster_environment(settings, root)
    initialise_instance(dagster_env)

    env = {
        **os.environ,
        **dagster_env,
        "VRTX_HOME": str(settings.home),
        "VRTX_PROVIDER_BASE_URLS": json.dumps(settings.provider_base_urls),
        "VRTX_OAUTH_CLIENTS": json.dumps(settings.oauth_clients),
        # A development CRM receives its events on this machine; `vrtx api` and production keep refusing it.
        "VRTX_ALLOW_PRIVATE_CALLBACKS": os.environ.get("VRTX_ALLOW_PRIVATE_CALLBACKS", "true"),
        "VRTX_PUBLIC_URL": settings.public_url,
        "VRTX_DAGSTER_URL": settings.dagster_url or dagster_url,
        "VRTX_API_PORT": str(settings.api_port),
        "VRTX_DAGSTER_PORT": str(settings.dagster_port),
    }
    if settings.database_url:
        env["VRTX_DATABASE_URL"] = settings.database_url
    stopping = False

    def _stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    # The children's whole output goes to these files; the terminal shows the activity feed and problems.
    logs = settings.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_files = {name: logs / f"{name}.log" for name in ("api", "webhook-worker", "dagster")}
    for path in log_files.values():
        path.write_text("")
    terminal = Terminal()
    # Own process groups: one Ctrl-C reaches us once, and we stop the children in order.
    api = subprocess.Popen(  # noqa: S603 -- our own interpreter and module
        [
            sys.executable,
            "-m",
            "vrtx_pipelines.cli.main",
            "api",
            "--host",
            settings.api_host,
            "--port",
            str(settings.api_port),
        ],
        cwd=root,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    # Applies webhooks' records and launches their pulls, so the API only stores and acknowledges them.
    worker = subprocess.Popen(
        [sys.executable, "-m", "vrtx_pipelines.cli.main", "webhook-worker"],
        cwd=root,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    dagster = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            # `dagster dev` suggests `dg dev` (a separate CLI) on every start; this platform runs dagster dev.
            "-W",
            "ignore:Function `dev_command` is superseded",
            "-m",
            "dagster",
            "dev",
            "-w",
            str(root / "workspace.yaml"),
            "-h",
            "127.0.0.1",
            "-p",
            str(settings.dagster_port),
        ],
        cwd=root,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    children = {"api": api, "webhook-worker": worker, "dagster": dagster}
    pumps = [
        pump(name, child.stdout, log_files[name], terminal, verbose=verbose)
        for name, child in children.items()
        if child.stdout is not None
    ]
    stop_feed = threading.Event()
    instance = dagster_instance(dagster_env)
    feed = ActivityFeed(instance, session_factory(engine_for(settings.sqlalchemy_url)), terminal.write)
    feed_thread = start_feed(feed, stop_feed)

    ready = wait_until_up(f"{api_url}/healthz", api, 60, lambda: stopping)
    for provider in watched if ready else []:
        renew_watches(settings, vault_from_settings(settings), provider, tenant_id=tenant_id)
    ready = ready and wait_until_up(f"{dagster_url}/server_info", dagster, 180, lambda: stopping)
    if ready:
        lines = [
            "",
            "VRTX Integrations is running",
            f"  API          {api_url}  (OpenAPI docs: {api_url}/docs)",
            f"  Dagster UI   {dagster_url}  (code location: vrtx)",
            f"  Database     {make_url(settings.sqlalchemy_url).render_as_string(hide_password=True)}",
            f"  Demo tenant  {tenant_id}: Authorization: Bearer {token}",
            f"  Marketplace  {marketplace_link(api_url, token)}",
            f"               a fresh one: uv run vrtx marketplace-link --tenant {tenant_id} [--path /marketplace/xero]",
            *(f"  Sandbox      {slug} {url}" for slug, url in settings.provider_base_urls.items()),
        ]
        if demo_connections:
            lines.append(f"  Demo tenant is connected to: {', '.join(demo_connections)}")
        lines += [
            f"  Logs         {', '.join(str(path) for path in log_files.values())}"
            + ("" if verbose else "  (all of it here: vrtx dev --verbose)"),
            "Below: syncs, pushes, webhooks and problems as they happen. Press Ctrl-C to stop.",
            "",
        ]
        terminal.write("\n".join(lines))
    exit_code = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                print(f"error: {name} exited with code {child.returncode}; stopping", file=sys.stderr)
                exit_code = 1
                stopping = True
        time.sleep(0.3)
    stop_feed.set()
    terminal.stopping.set()
    _shutdown(children)
    feed_thread.join(timeout=5)
    instance.dispose()
    for thread in pumps:
        thread.join(timeout=5)  # the children's last lines reach their files
    return exit_code


def _shutdown(children: dict[str, subprocess.Popen[bytes]]) -> None:
    for child in children.values():
        if child.poll() is None:
            # SIGINT is what `dagster dev` expects; uvicorn treats it as a graceful stop too.
            os.killpg(child.pid, signal.SIGINT)
    deadline = time.monotonic() + 30
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
