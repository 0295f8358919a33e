"""Bringing the platform's state up to date: schema, catalog, the demo tenant."""

from __future__ import annotations

import logging
from pathlib import Path

from vrtx_pipelines.catalog import sync_catalog
from vrtx_pipelines.config import Settings
from vrtx_pipelines.db import migrate as migrations
from vrtx_pipelines.db.models import Tenant
from vrtx_pipelines.db.session import engine_for, session_scope
from vrtx_pipelines.tenants import create_tenant, rotate_token, tenant_for_token

log = logging.getLogger(__name__)


def prepare_database(settings: Settings, *, migrate: bool = True) -> None:
    """Migrate to the latest schema (unless told not to, or it is there already: then Alembic is not even loaded)
    and sync the catalog from the installed providers."""
    if not settings.uses_postgres:
        # A fresh checkout has no VRTX_HOME yet; SQLite creates the file, not its folder.
        settings.home.mkdir(parents=True, exist_ok=True)
    if migrate and not migrations.is_current(settings.sqlalchemy_url):
        migrations.upgrade(settings.sqlalchemy_url)
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        sync_catalog(session)


def demo_token_file(settings: Settings) -> Path:
    return settings.home / "demo-token"


def ensure_demo_tenant(settings: Settings) -> tuple[str, str]:
    """The demo tenant and its token. The token is kept in a 0600 file so `vrtx dev` can show it each run."""
    token_file = demo_token_file(settings)
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        tenant = session.get(Tenant, settings.demo_tenant)
        if tenant is None:
            tenant, token = create_tenant(session, settings.demo_tenant, "Demo Company")
        elif token_file.exists():
            token = token_file.read_text().strip()
            if tenant_for_token(session, token) is None:
                token = rotate_token(session, tenant)
        else:
            token = rotate_token(session, tenant)
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    return settings.demo_tenant, token
