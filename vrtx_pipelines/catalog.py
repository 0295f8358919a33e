"""Keeps the ``integrations`` table in step with the installed providers."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from providers.base import Provider
from vrtx_pipelines.db.models import Integration
from vrtx_pipelines.registry import load_providers


def _apply(row: Integration, provider: Provider) -> None:
    row.name = provider.name
    row.description = provider.description
    row.category = provider.category.value
    row.icon_url = provider.icon
    row.auth_type = provider.auth.type.value
    row.config_schema = dict(provider.config_schema)
    row.capabilities = list(provider.capabilities)
    row.implemented = sorted(provider.implemented)
    row.display_order = provider.display_order
    row.tier = provider.tier
    row.is_active = True


def sync_catalog(session: Session) -> dict[str, int]:
    """Upsert one row per installed provider; rows of providers no longer installed become inactive."""
    providers = load_providers()
    rows = {row.slug: row for row in session.scalars(select(Integration))}
    for slug, provider in providers.items():
        row = rows.get(slug)
        if row is None:
            row = Integration(slug=slug)
            session.add(row)
        _apply(row, provider)
    for slug, row in rows.items():
        if slug not in providers:
            row.is_active = False
    session.flush()
    return {row.slug: row.id for row in session.scalars(select(Integration))}


def integration_row(session: Session, slug: str) -> Integration | None:
    return session.scalar(select(Integration).where(Integration.slug == slug))
