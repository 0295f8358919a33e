"""Which connections a provider's schedule pulls now, and the claims that keep each in one batch at a time.

Due-ness is one SQL query over ``tenant_integrations``, never a walk over partitions: a connection is due once its
last sync (or, never synced, its connection) lies before the start of the current slot of its
``sync_frequency_minutes`` (slots are aligned to the epoch, as ``api.routes.sync.next_sync_at`` shows them), it
is connected with scheduled sync on, no batch holds it, and a failed attempt's back-off has passed.

Claiming is one ``UPDATE ... WHERE id IN (the oldest-due N) RETURNING``: a connection is claimed by exactly one
batch (``sync_claim`` = the batch key, ``sync_claimed_at`` = when) until its pull ends and releases it, so a tick
never queues a connection that is queued or in flight. Under overload the oldest-due go first and the rest stay
unclaimed, their wait visible in ``backlog`` (the schedule logs it every tick), not hidden in a run queue.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Integer, and_, case, cast, func, literal, or_, select, true, update
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import FunctionElement

from vrtx_pipelines.db.models import Integration, TenantIntegration, table_of

DEFAULT_FREQUENCY_MINUTES = 60  # the settings schema's default (providers.schema.SYNC_FREQUENCY_MINUTES)
RETRY_STEP_S = 60  # a failed connection waits this long per failure in a row before its next attempt, up to a slot
CONNECTED = "connected"  # vrtx_pipelines.connect.context.Status.CONNECTED (not imported: that module is heavy)


class epoch_seconds(FunctionElement[int]):
    """Whole seconds since the epoch of a timestamp column, on PostgreSQL and SQLite alike."""

    type = BigInteger()
    inherit_cache = True


@compiles(epoch_seconds, "postgresql")
def _epoch_postgresql(element: epoch_seconds, compiler: Any, **kw: Any) -> str:
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) AS BIGINT)"


@compiles(epoch_seconds)
def _epoch_sqlite(element: epoch_seconds, compiler: Any, **kw: Any) -> str:
    # SQLite keeps the UTC timestamp as text; strftime('%s') reads it (fractions dropped).
    return f"CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


def _period_s() -> ColumnElement[int]:
    minutes = TenantIntegration.settings["sync_frequency_minutes"].as_integer()
    return cast(func.coalesce(minutes, DEFAULT_FREQUENCY_MINUTES) * 60, Integer)


def _anchor() -> ColumnElement[int]:
    return epoch_seconds(func.coalesce(TenantIntegration.last_sync_at, TenantIntegration.connected_at))


def due_at_expression() -> ColumnElement[int]:
    """When the connection became due (epoch seconds): the start of the slot after the one its anchor lies in."""
    period, anchor = _period_s(), _anchor()
    return anchor - anchor % period + period


def _due(slug: str, now_s: int) -> ColumnElement[bool]:
    period = _period_s()
    enabled = func.coalesce(TenantIntegration.settings["sync_enabled"].as_boolean(), true())
    failures = TenantIntegration.sync_failures
    backoff = case((failures * RETRY_STEP_S < period, failures * RETRY_STEP_S), else_=period)
    return and_(
        TenantIntegration.integration_id.in_(select(Integration.id).where(Integration.slug == slug)),
        TenantIntegration.status == CONNECTED,
        enabled == true(),
        TenantIntegration.sync_claim.is_(None),
        _anchor() < literal(now_s) - literal(now_s) % period,
        or_(
            failures == 0,
            TenantIntegration.sync_claimed_at.is_(None),
            epoch_seconds(TenantIntegration.sync_claimed_at) + backoff <= now_s,
        ),
    )


@dataclass(frozen=True)
class Claimed:
    connection_id: int
    tenant_id: str
    due_at: datetime
    settings: dict[str, Any]


@dataclass(frozen=True)
class Backlog:
    """Due connections no batch holds yet, and how long the oldest has waited (seconds; 0 when none)."""

    waiting: int
    oldest_wait_s: float
    claimed: int  # connections held by batches queued or running


def new_batch_key(slug: str, now: datetime) -> str:
    """``<slug>:<epoch>:<random>``: unique per batch, and a claim's age can be told by its key."""
    return f"{slug}:{int(now.timestamp())}:{secrets.token_hex(6)}"


def claim_due(session: Session, slug: str, now: datetime, limit: int, key: str) -> list[Claimed]:
    """Claim up to ``limit`` of the provider's due connections for the batch ``key``, oldest-due first, in the
    caller's transaction (PostgreSQL skips rows another claimer has locked)."""
    if limit <= 0:
        return []
    now_s = int(now.timestamp())
    chosen = (
        select(TenantIntegration.id)
        .where(_due(slug, now_s))
        .order_by(due_at_expression(), TenantIntegration.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        chosen = chosen.with_for_update(skip_locked=True)
    table = table_of(TenantIntegration)
    rows = session.execute(
        update(table)
        .where(table.c.id.in_(chosen.scalar_subquery()))
        .values(sync_claim=key, sync_claimed_at=now)
        .returning(table.c.id, table.c.tenant_id, table.c.settings, due_at_expression())
    ).all()
    claimed = [
        Claimed(connection_id=id_, tenant_id=tenant, due_at=datetime.fromtimestamp(due, UTC), settings=options or {})
        for id_, tenant, options, due in rows
    ]
    return sorted(claimed, key=lambda c: (c.due_at, c.connection_id))


def claim_connection(session: Session, connection_id: int, key: str, now: datetime) -> bool:
    """Claim one connection for a run of its own (a first sync) unless another run holds it."""
    table = table_of(TenantIntegration)
    result = session.execute(
        update(table)
        .where(table.c.id == connection_id, or_(table.c.sync_claim.is_(None), table.c.sync_claim == key))
        # Claimed again by the same key (a sensor asking again): keep the first claim's time.
        .values(sync_claim=key, sync_claimed_at=case((table.c.sync_claim == key, table.c.sync_claimed_at), else_=now))
    )
    return bool(getattr(result, "rowcount", 0))


def release(session: Session, connection_id: int, key: str, *, failed: bool) -> bool:
    """The connection's pull under batch ``key`` ended: free it, counting a failure in a row (or clearing them).
    False when the claim is no longer this batch's (released as stale meanwhile)."""
    table = table_of(TenantIntegration)
    failures = table.c.sync_failures + 1 if failed else 0
    result = session.execute(
        update(table)
        .where(table.c.id == connection_id, table.c.sync_claim == key)
        .values(sync_claim=None, sync_failures=failures)
    )
    return bool(getattr(result, "rowcount", 0))


def release_batch(session: Session, key: str, *, failed: bool, only: Sequence[int] | None = None) -> int:
    """Free every connection batch ``key`` still holds (its run ended, or never started); ``failed`` counts it as
    a failed attempt (the run died before their pulls ended). Returns how many were freed."""
    table = table_of(TenantIntegration)
    condition = table.c.sync_claim == key
    if only is not None:
        condition = and_(condition, table.c.id.in_(list(only)))
    failures = table.c.sync_failures + 1 if failed else table.c.sync_failures
    result = session.execute(update(table).where(condition).values(sync_claim=None, sync_failures=failures))
    return int(getattr(result, "rowcount", 0) or 0)


def active_claims(session: Session, slug: str) -> dict[str, datetime]:
    """The provider's batch keys that still hold connections, with when each claimed them."""
    rows = session.execute(
        select(TenantIntegration.sync_claim, func.min(TenantIntegration.sync_claimed_at))
        .join(Integration, Integration.id == TenantIntegration.integration_id)
        .where(Integration.slug == slug, TenantIntegration.sync_claim.is_not(None))
        .group_by(TenantIntegration.sync_claim)
    ).all()
    return {key: claimed_at for key, claimed_at in rows if key is not None and claimed_at is not None}


def backlog(session: Session, slug: str, now: datetime) -> Backlog:
    now_s = int(now.timestamp())
    waiting, oldest = session.execute(
        select(func.count(), func.min(due_at_expression())).where(_due(slug, now_s))
    ).one()
    claimed = session.scalar(
        select(func.count())
        .select_from(TenantIntegration)
        .join(Integration, Integration.id == TenantIntegration.integration_id)
        .where(Integration.slug == slug, TenantIntegration.sync_claim.is_not(None))
    )
    return Backlog(
        waiting=int(waiting or 0),
        oldest_wait_s=float(max(0, now_s - int(oldest))) if oldest is not None else 0.0,
        claimed=int(claimed or 0),
    )
