"""Keeping providers' change notifications on (``WatchSpec``): each connected connection of a provider with watches
gets them started, and renewed before they end; what was started is kept in the connection's metadata (``watch``).

Run by the ``provider_watches`` schedule (``vrtx_pipelines.orchestration.schedules``), and by ``vrtx dev`` for the
demo tenant at start. A connection the provider refuses is marked by the client as for any call (expired); any
other failure is counted and logged, and the next tick tries again: a watch that lapsed only means changes wait
for the scheduled pull.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from providers.base import Provider, WatchChannel
from providers.errors import ProviderError
from vrtx_pipelines.config import Settings
from vrtx_pipelines.connect.context import ConnectionContext, Status
from vrtx_pipelines.connect.provider_connection import governor_for, provider_connection
from vrtx_pipelines.credentials.vault import Vault
from vrtx_pipelines.db.models import Integration, TenantIntegration, utcnow
from vrtx_pipelines.db.session import engine_for, session_scope
from vrtx_pipelines.errors import IntegrationError
from vrtx_pipelines.webhooks.config import connection_webhook_secret, endpoint_url

log = logging.getLogger("vrtx.watches")

META_KEY = "watch"
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


def watch_state(meta: Mapping[str, Any] | None) -> dict[str, Any]:
    """What the connection's last watch start answered (``Watching.state``), from its metadata."""
    found = (meta or {}).get(META_KEY)
    state = found.get("state") if isinstance(found, dict) else None
    return dict(state) if isinstance(state, dict) else {}


def keep_positions(session: Session, connection_id: int, moved: Mapping[str, Any]) -> None:
    """Keep the fast path's change-feed positions (entity -> position; None forgets it) in the watch's state, and
    commit; the connection's row is read afresh so a renewal's record is kept."""
    connection = session.get_one(TenantIntegration, connection_id, populate_existing=True)
    record = dict((connection.meta or {}).get(META_KEY) or {})
    state = dict(record.get("state") or {})
    positions = {**(state.get("positions") or {}), **moved}
    state["positions"] = {entity: p for entity, p in positions.items() if p is not None}
    connection.meta = {**(connection.meta or {}), META_KEY: {**record, "state": state}}
    session.commit()


def watch_until(connection: TenantIntegration) -> datetime | None:
    found = (connection.meta or {}).get(META_KEY)
    value = found.get("until") if isinstance(found, dict) else None
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def renew_watches(
    settings: Settings,
    vault: Vault,
    provider: Provider,
    *,
    tenant_id: str | None = None,
    now: datetime | None = None,
    force: bool = False,
) -> WatchTick:
    """Start or renew the watch of every connected connection of ``provider`` (of ``tenant_id`` only, if given)
    that has none or one ending within the provider's renewal window (``force``: whenever it ends; one that then
    fails is left due, for the next tick)."""
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
            if not force and ends is not None and ends > due_before:
                tick.current += 1
                continue
            try:
                tenant = connection.tenant_id
                channel = WatchChannel(
                    address=endpoint_url(settings, provider.slug, tenant),
                    token=connection_webhook_secret(session, vault, settings, provider, tenant),
                    previous=watch_state(connection.meta),
                )
                with ctx.client_factory(settings) as http:
                    as_connection = provider_connection(
                        ctx, provider, connection_id, http, governor_for(settings, provider)
                    )
                    watching = spec.start(as_connection, app, channel)
            except (ProviderError, IntegrationError) as exc:
                tick.failed += 1
                log.warning("%s watch not started for tenant %s: %s", provider.name, connection.tenant_id, exc)
                if force:
                    session.rollback()
                    session.refresh(connection)
                    record = dict((connection.meta or {}).get(META_KEY) or {})
                    connection.meta = {**(connection.meta or {}), META_KEY: {**record, "until": now.isoformat()}}
                continue
            if watching is None:
                tick.unconfigured += 1
                continue
            session.refresh(connection)
            record = {"until": watching.until.isoformat(), "state": dict(watching.state)}
            connection.meta = {**(connection.meta or {}), META_KEY: record}
            tick.started += 1
    return tick
