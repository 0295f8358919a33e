"""What every connection flow works with: the connection's status values, the context a flow runs in (session,
vault, settings, how to reach providers), and finding a tenant's connection."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from providers.base import Provider
from vrtx_pipelines.catalog import integration_row
from vrtx_pipelines.config import Settings
from vrtx_pipelines.connect.http import provider_client
from vrtx_pipelines.credentials.vault import Vault
from vrtx_pipelines.db.models import Status as Status  # re-exported: where the connection code has always found it
from vrtx_pipelines.db.models import TenantIntegration
from vrtx_pipelines.errors import NotConnected, UnknownIntegration
from vrtx_pipelines.events.record import EventType, record_event

log = logging.getLogger(__name__)


ClientFactory = Callable[[Settings], httpx.Client]


@dataclass
class ConnectionContext:
    session: Session
    vault: Vault
    settings: Settings
    client_factory: ClientFactory = provider_client


def get_connection(session: Session, tenant_id: str, slug: str) -> TenantIntegration | None:
    row = integration_row(session, slug)
    if row is None:
        raise UnknownIntegration(f"there is no integration called {slug!r}")
    return session.scalar(
        select(TenantIntegration).where(
            TenantIntegration.tenant_id == tenant_id, TenantIntegration.integration_id == row.id
        )
    )


def require_connection(session: Session, tenant_id: str, slug: str) -> TenantIntegration:
    connection = get_connection(session, tenant_id, slug)
    if connection is None or connection.status == Status.DISCONNECTED:
        raise NotConnected(f"{slug} is not connected for this tenant")
    return connection


def mark_unusable(
    session: Session, connection: TenantIntegration, provider: Provider, message: str, *, expired: bool
) -> None:
    """Record that a connection's credentials no longer work, with its event, and commit (the caller is about to
    fail, and its rollback must not take this with it). ``expired``: a grant died (reconnect) rather than typed
    credentials being refused (an error: a new key)."""
    connection.status = Status.EXPIRED if expired else Status.ERROR
    connection.last_error = message
    event, key = (EventType.INTEGRATION_EXPIRED, "reason") if expired else (EventType.INTEGRATION_ERROR, "error")
    record_event(session, connection.tenant_id, event, provider.slug, {"integration": provider.slug, key: message})
    session.commit()
    log.warning("connection unusable provider=%s tenant=%s: %s", provider.slug, connection.tenant_id, message)
