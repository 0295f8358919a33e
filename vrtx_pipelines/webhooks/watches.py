"""Keeping providers' change notifications on (``WatchSpec``): each connected connection of a provider with watches
gets one started, and renewed before it ends; the end is recorded in the connection's metadata (``watch_until``).

Run by the ``provider_watches`` schedule (``vrtx_pipelines.orchestration.schedules``), and by ``vrtx dev`` for the
demo tenant at start. A connection the provider refuses is marked by the client as for any call (expired); any
other failure is counted and logged, and the next tick tries again: a watch that lapsed only means changes wait
for the scheduled pull.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from providers.base import Provider
from providers.errors import ProviderError
from vrtx_pipelines.config import Settings
from vrtx_pipelines.connect.context import ConnectionContext, Status
from vrtx_pipelines.connect.provider_connection import governor_for, provider_connection
from vrtx_pipelines.credentials.vault import Vault
from vrtx_pipelines.db.models import Integration, TenantIntegration, utcnow
from vrtx_pipelines.db.session import engine_for, session_scope
from vrtx_pipelines.errors import IntegrationError

log = logging.getLogger("vrtx.watches")

META_KEY = "watch_until"
# The app keys a provider's watch may read: never its client secret.
_APP_SECRETS = frozenset({"client_secret", "webhook_key"})


@dataclass
class WatchTick:
    started: int = 0  # started or renewed
    unconfigured: int = 0  # the platform app names no notification target: nothing to start
    failed: int = 0
    current: int = 0  # not due

    @property
    def summary(self) -> str:
        return f"started={self.started} current={self.current} failed={self.failed} unconfigured={self.unconfigured}"


def watch_until(connection: TenantIntegration) -> datetime | None:
    value = (connection.meta or {}).get(META_KEY)
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def renew_watches(
    settings: Settings, vault: Vault, provider: Provider, *, tenant_id: str | None = None, now: datetime | None = None
) -> WatchTick:
    """Start or renew the watch of every connected connection of ``provider`` (of ``tenant_id`` only, if given)
    that has none or one ending within the provider's renewal window."""
    spec = provider.watches
    tick = WatchTick()
    if spec is None:
        return tick
    now = now or utcnow()
    due_before = now + timedelta(seconds=spec.renew_within_s)
    app = {k: str(v) for k, v in settings.oauth_clients.get(provider.slug, {}).items() if k not in _APP_SECRETS}
    engine = engine_for(settings.sqlalchemy_url)
    with session_scope(engine) as session:
        query = (
            select(TenantIntegration.id)
            .join(Integration, Integration.id == TenantIntegration.integration_id)
            .where(Integration.slug == provider.slug, TenantIntegration.status == Status.CONNECTED)
            .order_by(TenantIntegration.id)
        )
        if tenant_id is not None:
            query = query.where(TenantIntegration.tenant_id == tenant_id)
        ids = list(session.scalars(query))
    for connection_id in ids:
        with session_scope(engine) as session:
            ctx = ConnectionContext(session=session, vault=vault, settings=settings)
            connection = session.get_one(TenantIntegration, connection_id)
            ends = watch_until(connection)
            if ends is not None and ends > due_before:
                tick.current += 1
                continue
            try:
                with ctx.client_factory(settings) as http:
                    as_connection = provider_connection(
                        ctx, provider, connection_id, http, governor_for(settings, provider)
                    )
                    until = spec.start(as_connection, app)
            except (ProviderError, IntegrationError) as exc:
                tick.failed += 1
                log.warning("%s watch not started for tenant %s: %s", provider.name, connection.tenant_id, exc)
                continue
            if until is None:
                tick.unconfigured += 1
                continue
            session.refresh(connection)
            connection.meta = {**(connection.meta or {}), META_KEY: until.isoformat()}
            tick.started += 1
    return tick
