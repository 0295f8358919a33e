"""The ``vrtx`` command line."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from vrtx_pipelines.config import get_settings, reset_settings_cache
from vrtx_pipelines.errors import IntegrationError

log = logging.getLogger("vrtx")


class VrtxGroup(click.Group):
    """Turns the platform's typed errors, a provider that cannot be reached and a database that cannot be reached
    into one line on stderr and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        from sqlalchemy.exc import OperationalError

        from providers.errors import ProviderError

        try:
            return super().invoke(ctx)
        except IntegrationError as exc:
            click.echo(f"error: {exc.message}", err=True)
            for detail in exc.details:
                click.echo(f"  {detail.get('field', '')}: {detail.get('message', '')}", err=True)
            sys.exit(1)
        except ProviderError as exc:  # its message is written to be shown: it never carries a credential
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(1)
        except OperationalError as exc:
            # The driver's own first line ("connection ... refused"); the URL, with its password, is not in it.
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
            click.echo(f"error: the database cannot be used: {reason}", err=True)
            sys.exit(1)


# Libraries whose INFO lines narrate their own machinery (alembic's "Context impl SQLiteImpl", httpx's line per
# request, URLs and all): a command prints what it is for; VRTX_LOG_LEVEL=DEBUG shows them again.
CHATTY_LIBRARIES = ("alembic", "httpx", "httpcore")


def setup_logging() -> None:
    level = get_settings().log_level.upper()
    logging.basicConfig(
        level=level,
        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
        stream=sys.stderr,
    )
    if level != "DEBUG":
        for name in CHATTY_LIBRARIES:
            logging.getLogger(name).setLevel(logging.WARNING)


@click.group(cls=VrtxGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def main(ctx: click.Context) -> None:
    """VRTX Integrations: the CRM's integrations platform (API, Dagster pipelines, provider sandboxes)."""
    if ctx.invoked_subcommand != "dev":
        # A `vrtx dev` running on this VRTX_HOME says where its sandboxes, API and Dagster are.
        from vrtx_pipelines.cli.devstate import apply_to_environment

        if apply_to_environment(get_settings().home, os.environ) is not None:
            reset_settings_cache()
    setup_logging()


# --- database -------------------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """The app database (migrations)."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def db_upgrade(revision: str) -> None:
    """Migrate the app database to REVISION and sync the integration catalog."""
    from vrtx_pipelines.db import migrate
    from vrtx_pipelines.platform import prepare_database

    settings = get_settings()
    if revision == "head":
        prepare_database(settings)
    else:
        migrate.upgrade(settings.sqlalchemy_url, revision)
    click.echo(f"database at revision {migrate.current_revision(settings.sqlalchemy_url)}")


@db.command("downgrade")
@click.option("--revision", required=True, help="Target revision ('base' drops every table).")
def db_downgrade(revision: str) -> None:
    """Migrate the app database down to REVISION."""
    from vrtx_pipelines.db import migrate

    settings = get_settings()
    migrate.downgrade(settings.sqlalchemy_url, revision)
    click.echo(f"database at revision {migrate.current_revision(settings.sqlalchemy_url) or 'base'}")


# --- tenants --------------------------------------------------------------------------------------------


@main.group()
def tenants() -> None:
    """Tenants and their API tokens."""


@tenants.command("create")
@click.argument("tenant_id")
@click.option("--name", help="Display name (defaults to the id).")
def tenants_create(tenant_id: str, name: str | None) -> None:
    """Create a tenant and print its API token (shown this once)."""
    from vrtx_pipelines.db.session import session_scope
    from vrtx_pipelines.platform import prepare_database
    from vrtx_pipelines.tenants import create_tenant

    prepare_database(get_settings())
    with session_scope() as session:
        tenant, token = create_tenant(session, tenant_id, name)
    click.echo(f"created tenant {tenant.id} ({tenant.name})")
    click.echo(f"API token (store it now; it is not shown again): {token}")


@tenants.command("list")
def tenants_list() -> None:
    """List tenants."""
    from vrtx_pipelines.db.session import session_scope
    from vrtx_pipelines.platform import prepare_database
    from vrtx_pipelines.tenants import list_tenants

    prepare_database(get_settings())
    with session_scope() as session:
        rows = [
            (t.id, t.name, f"{t.api_token_prefix}…", "active" if t.is_active else "inactive", t.created_at)
            for t in list_tenants(session)
        ]
    print_table(("TENANT", "NAME", "TOKEN", "STATE", "CREATED"), [tuple(map(str, r)) for r in rows])


@tenants.command("rotate-token")
@click.argument("tenant_id")
def tenants_rotate_token(tenant_id: str) -> None:
    """Issue a new API token for a tenant; the old one stops working at once."""
    from vrtx_pipelines.db.models import Tenant
    from vrtx_pipelines.db.session import session_scope
    from vrtx_pipelines.errors import NotFound
    from vrtx_pipelines.platform import prepare_database
    from vrtx_pipelines.tenants import rotate_token

    prepare_database(get_settings())
    with session_scope() as session:
        tenant = session.get(Tenant, tenant_id)
        if tenant is None:
            raise NotFound(f"there is no tenant {tenant_id!r}")
        token = rotate_token(session, tenant)
    click.echo(f"new API token for {tenant_id}: {token}")


@main.command("marketplace-link")
@click.option("--tenant", "tenant_id", required=True, help="Whose marketplace to open.")
@click.option(
    "--path",
    default="/marketplace",
    show_default=True,
    help="The page: /marketplace, /marketplace/<slug>, or /marketplace/<slug>/settings, /sync or /mappings.",
)
def marketplace_link(tenant_id: str, path: str) -> None:
    """Print a fresh signed link to a tenant's marketplace pages (it opens once, within its lifetime)."""
    from pydantic import ValidationError

    from api.pages.config import pages_settings
    from api.pages.session import SessionLinkIn, marketplace_url
    from vrtx_pipelines.credentials.vault import vault_from_settings
    from vrtx_pipelines.db.models import Tenant
    from vrtx_pipelines.db.session import session_scope
    from vrtx_pipelines.errors import NotFound, ValidationFailed
    from vrtx_pipelines.platform import prepare_database

    try:
        page = SessionLinkIn(path=path).path
    except ValidationError:
        raise ValidationFailed(
            f"{path!r} is not a marketplace page: /marketplace, /marketplace/<slug> or "
            "/marketplace/<slug>/settings, /sync or /mappings"
        ) from None
    settings = get_settings()
    prepare_database(settings)
    with session_scope() as session:
        tenant = session.get(Tenant, tenant_id)
        if tenant is None or not tenant.is_active:
            raise NotFound(f"there is no active tenant {tenant_id!r}")
        link = marketplace_url(settings, vault_from_settings(settings), tenant, page)
    click.echo(link.url)
    minutes = pages_settings().marketplace_link_ttl_s // 60
    click.echo(f"(opens once, within {minutes} minutes; the browser session it starts lasts an hour)", err=True)


# --- catalog --------------------------------------------------------------------------------------------


@main.group()
def integrations() -> None:
    """The integration catalog."""


@integrations.command("list")
def integrations_list() -> None:
    """The catalog as a table: what each integration does and whether it can be connected today."""
    from vrtx_pipelines.registry import load_providers

    rows = []
    for p in load_providers().values():
        works = ", ".join(sorted(p.implemented)) if p.implemented else "-"
        rows.append(
            (
                p.slug,
                p.name,
                p.category.value,
                str(p.tier),
                p.auth.type.value,
                "yes" if p.connectable else "not yet",
                works,
                ", ".join(p.capabilities),
            )
        )
    print_table(("SLUG", "NAME", "CATEGORY", "TIER", "AUTH", "CONNECT", "WORKS TODAY", "ROADMAP"), rows)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [
        max(len(headers[i]), *(len(r[i]) for r in rows)) if rows else len(headers[i]) for i in range(len(headers))
    ]
    # The last column is left unpadded so long text wraps naturally in a terminal.
    line = "  ".join(h.ljust(w) for h, w in zip(headers[:-1], widths[:-1], strict=True)) + "  " + headers[-1]
    click.echo(line)
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row[:-1], widths[:-1], strict=True)) + "  " + row[-1])


# --- keys -----------------------------------------------------------------------------------------------


@main.group()
def keys() -> None:
    """The credential vault's encryption keys."""


@keys.command("generate")
def keys_generate() -> None:
    """Print a new key for VRTX_VAULT_KEYS (put it first; keep the old keys after it until rotated)."""
    from vrtx_pipelines.credentials.vault import generate_key

    click.echo(generate_key().render())


@keys.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every stored secret under the primary key.

    Embedded default: a new key is generated and put first in the local key file. Production: put the new key
    first in VRTX_VAULT_KEYS (from `vrtx keys generate`), run this, then drop the old key.
    """
    from vrtx_pipelines.credentials.stored import reencrypt_all
    from vrtx_pipelines.credentials.vault import Vault, generate_key, load_key_file, vault_from_settings, write_key_file
    from vrtx_pipelines.db.session import session_scope
    from vrtx_pipelines.platform import prepare_database

    settings = get_settings()
    prepare_database(settings)
    vault = vault_from_settings(settings)
    new_file_keys = None
    if not settings.vault_keys:
        new_file_keys = [generate_key(), *load_key_file(settings.vault_key_file)]
        vault = Vault(new_file_keys)
    with session_scope() as session:
        report = reencrypt_all(session, vault)
        # The key file changes only after every value was re-encrypted, inside the still-open transaction.
        if new_file_keys is not None:
            write_key_file(settings.vault_key_file, new_file_keys)
    click.echo(
        f"primary key {vault.primary.kid}: re-encrypted {report.credentials} credentials, "
        f"{report.webhook_secrets} webhook secrets, {report.oauth_verifiers} OAuth verifiers, "
        f"{report.callback_secrets} event callback secrets, {report.sealing_keys} sealing keys "
        f"({report.already_current} already current)"
    )


# --- processes ------------------------------------------------------------------------------------------


@main.command("api")
@click.option("--host", default=None, help="Interface to bind (default VRTX_API_HOST, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default VRTX_API_PORT, 8000).")
def api(host: str | None, port: int | None) -> None:
    """Run the API alone."""
    import uvicorn

    from api.main import serve_app

    settings = get_settings()
    uvicorn.run(
        serve_app(settings),
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_level=settings.log_level.lower(),
    )


@main.command("webhook-worker")
def webhook_worker() -> None:
    """Apply received webhook events and launch their pulls (the API only stores them). Stops on SIGTERM/Ctrl-C."""
    import signal
    import threading

    from vrtx_pipelines.platform import prepare_database
    from vrtx_pipelines.webhooks.worker import build_worker

    settings = get_settings()
    prepare_database(settings)  # as `vrtx api` does: the schema and catalog the worker reads
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    build_worker(settings).run(stop)


@main.command("connect")
@click.argument("slug")
@click.option("--tenant", "tenant_id", required=True, help="The VRTX tenant to connect.")
@click.option("--organisation", "organisations", multiple=True, help="Grant only these provider organisations.")
def connect(slug: str, tenant_id: str, organisations: tuple[str, ...]) -> None:
    """Connect an OAuth integration through its sandbox's consent page (real providers: use /oauth/url)."""
    from vrtx_pipelines.connect.consent import consent_in_sandbox
    from vrtx_pipelines.connect.context import ConnectionContext
    from vrtx_pipelines.credentials.vault import vault_from_settings
    from vrtx_pipelines.db.session import session_scope
    from vrtx_pipelines.platform import prepare_database
    from vrtx_pipelines.registry import get_provider

    settings = get_settings()
    provider = get_provider(slug)
    if slug not in settings.provider_base_urls:
        raise IntegrationError(
            f"{provider.name} is not pointed at a sandbox (VRTX_PROVIDER_BASE_URLS): a real consent needs a "
            f"person; open the URL from GET /api/v1/integrations/{slug}/oauth/url"
        )
    prepare_database(settings)
    with session_scope() as session:
        ctx = ConnectionContext(session=session, vault=vault_from_settings(settings), settings=settings)
        result = consent_in_sandbox(ctx, tenant_id, provider, list(organisations) or None)
        status, meta = result.connection.status, result.connection.meta or {}
    names = ", ".join(f"{o.name} ({o.id})" for o in result.organisations)
    click.echo(f"{slug} for tenant {tenant_id}: {status}; organisations granted: {names}")
    if status == "pending":
        click.echo(f'choose one: PUT /api/v1/integrations/{slug}/organisation {{"organisation_id": ...}}')
    else:
        click.echo(f"connected to {meta.get('external_account_name')} ({meta.get('external_account_id')})")


@main.command("sync")
@click.argument("slug")
@click.option("--tenant", "tenant_id", required=True, help="The tenant whose connection to pull.")
@click.option("--entity", "entities", multiple=True, help="Only these entities (repeatable); default: all.")
@click.option("--full", is_flag=True, help="Forget the incremental cursors and pull everything again.")
def sync(slug: str, tenant_id: str, entities: tuple[str, ...], full: bool) -> None:
    """Pull one tenant's connection now, in this process, through the same Dagster assets the schedule runs."""
    from vrtx_pipelines.cli.sync import sync_now

    rows = sync_now(get_settings(), slug, tenant_id, list(entities), full=full, progress=True)
    print_table(("ENTITY", "ROWS LOADED", "RECORDS CHANGED", "PAGES", "CURSOR"), rows)


@main.command("sandbox")
@click.option(
    "--port-base", type=int, default=None, help="First port; each sandbox takes the next (default: free ports)."
)
def sandbox(port_base: int | None) -> None:
    """Serve the provider sandboxes on loopback and print `<slug> <base URL>` for each, until stopped."""
    import json
    import signal
    import threading

    from vrtx_pipelines.cli.sandboxes import sandbox_base_urls, start_sandboxes, stop_sandboxes
    from vrtx_pipelines.registry import load_providers

    providers = load_providers()
    served = start_sandboxes(providers.values(), port_base)
    urls = sandbox_base_urls(served)
    for slug, url in urls.items():
        click.echo(f"{slug} {url}")
    click.echo(f"# point the platform at them: VRTX_PROVIDER_BASE_URLS='{json.dumps(urls)}'", err=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop_sandboxes(served)


@main.command("dev")
@click.option("--api-port", type=int, default=None, help="API port (default 8000).")
@click.option("--dagster-port", type=int, default=None, help="Dagster UI port (default 3000).")
@click.option(
    "--sandboxes/--no-sandboxes",
    default=True,
    show_default=True,
    help="Serve the provider sandboxes and connect the demo tenant to them.",
)
@click.option(
    "--verbose",
    is_flag=True,
    help="Show the API's and Dagster's whole output here too (it always goes to the log files).",
)
def dev(api_port: int | None, dagster_port: int | None, sandboxes: bool, verbose: bool) -> None:
    """Run the whole platform locally: database, demo tenant, API, Dagster UI and daemon. Ctrl-C stops it."""
    from vrtx_pipelines.cli.devserver import run_dev
    from vrtx_pipelines.cli.devstate import running_platform

    settings = get_settings()
    running = running_platform(settings.home)
    if running is not None:
        raise IntegrationError(
            f"vrtx dev is already running for {settings.home} (pid {running.pid}, API {running.api_url}); "
            "stop it first, or give this one its own VRTX_HOME"
        )
    sys.exit(run_dev(settings, api_port=api_port, dagster_port=dagster_port, sandboxes=sandboxes, verbose=verbose))


if __name__ == "__main__":
    main()
