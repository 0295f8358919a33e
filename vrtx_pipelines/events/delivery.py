"""Delivery of the CRM's events to each tenant's callback URL: signed, retried with backoff, claimed safely.

An event moves pending -> delivering (claimed, with a lease) -> delivered, or -> retrying (next_attempt_at with
exponential backoff and jitter) and finally failed after ``max_attempts``, or failed at once when the callback leads
to an address the outbound guard refuses (``vrtx_pipelines.outbound_guard``). A worker that dies mid-delivery leaves
its claim to expire, so the event is delivered again: receivers deduplicate on ``X-VRTX-Event-Id``. Events of a
tenant without a callback are kept as "stored", readable through the API and re-deliverable.

The receiver checks ``X-VRTX-Signature: t=<ts>,v1=<hex>``, the HMAC-SHA256 of ``"<ts>.<raw body>"`` under the
tenant's callback secret, and refuses old timestamps.
"""
# No `from __future__ import annotations`: Dagster reads the sensor's context annotation at definition time.

import hashlib
import hmac
import json
import random
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, or_, select, update
from sqlalchemy.orm import Session

from vrtx_pipelines import __version__
from vrtx_pipelines.config import get_settings
from vrtx_pipelines.credentials.stored import callback_secret_context
from vrtx_pipelines.credentials.vault import Vault
from vrtx_pipelines.db.models import OutboundEvent, Tenant, utcnow
from vrtx_pipelines.db.session import session_scope
from vrtx_pipelines.outbound_guard import DestinationRefused, OutboundGuard, guarded_client


class DeliveryStatus:
    PENDING = "pending"
    DELIVERING = "delivering"
    RETRYING = "retrying"
    DELIVERED = "delivered"
    FAILED = "failed"
    STORED = "stored"  # the tenant has no callback URL: kept for the API, delivered only when asked

    DUE = (PENDING, RETRYING, DELIVERING)


@dataclass(frozen=True)
class DeliveryPolicy:
    max_attempts: int = 10
    base_delay_s: float = 30.0
    max_delay_s: float = 6 * 3600.0
    timeout_s: float = 5.0
    # A claim older than this is presumed dead (its worker crashed) and the event is due again.
    lease_s: float = 120.0
    batch: int = 50
    workers: int = 8

    def backoff(self, attempts: int) -> timedelta:
        """Exponential in the attempts made so far, with "equal jitter" so retries of many events spread out."""
        delay = min(self.max_delay_s, self.base_delay_s * 2 ** max(0, attempts - 1))
        return timedelta(seconds=delay / 2 + random.uniform(0, delay / 2))


@dataclass
class DeliveryReport:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    stored: int = 0
    claimed: list[int] = field(default_factory=list)


@dataclass
class Attempt:
    event_id: int
    status_code: int | None
    error: str | None
    final: bool = False  # no point trying again (the destination is refused)

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def new_callback_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def event_body(event: OutboundEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": event.event_type,
        "integration": event.integration_slug,
        "created_at": event.created_at.isoformat(),
        "data": event.payload,
    }


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    secret: str, header: str, body: bytes, *, tolerance_s: int = 300, now: float | None = None
) -> bool:
    """What a receiver does (and what our tests do as one): constant-time compare, bounded clock skew."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    if not parts.get("t", "").isdigit() or "v1" not in parts:
        return False
    timestamp = int(parts["t"])
    if abs((now if now is not None else time.time()) - timestamp) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body).partition(",v1=")[2]
    return hmac.compare_digest(expected, parts["v1"])


# --- claiming ----------------------------------------------------------------------------------------------


def _store_without_callback(session: Session) -> int:
    """Events of tenants with no callback URL stop being due: they are kept, not retried forever."""
    no_callback = select(Tenant.id).where(Tenant.callback_url.is_(None))
    result = session.execute(
        update(OutboundEvent)
        .where(OutboundEvent.status == DeliveryStatus.PENDING, OutboundEvent.tenant_id.in_(no_callback))
        .values(status=DeliveryStatus.STORED, next_attempt_at=None)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def claim_due(session: Session, now: datetime, policy: DeliveryPolicy) -> list[int]:
    """Mark up to ``policy.batch`` due events as being delivered by us, in one statement.

    PostgreSQL: the rows are picked FOR UPDATE SKIP LOCKED, so concurrent workers take disjoint batches;
    SQLite: the UPDATE holds the database's write lock, which gives the same guarantee."""
    due = (
        select(OutboundEvent.id)
        .join(Tenant, Tenant.id == OutboundEvent.tenant_id)
        .where(
            OutboundEvent.status.in_(DeliveryStatus.DUE),
            Tenant.callback_url.is_not(None),
            or_(OutboundEvent.next_attempt_at.is_(None), OutboundEvent.next_attempt_at <= now),
        )
        .order_by(OutboundEvent.id)
        .limit(policy.batch)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True, of=OutboundEvent)
    claimed = session.scalars(
        update(OutboundEvent)
        .where(OutboundEvent.id.in_(due.scalar_subquery()))
        .values(status=DeliveryStatus.DELIVERING, next_attempt_at=now + timedelta(seconds=policy.lease_s))
        .returning(OutboundEvent.id)
    )
    return sorted(claimed)


# --- sending -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    event_id: int
    url: str
    secret: str
    body: bytes


def _prepare(session: Session, vault: Vault, ids: list[int]) -> list[Prepared]:
    rows = session.execute(
        select(OutboundEvent, Tenant.callback_url, Tenant.callback_secret)
        .join(Tenant, Tenant.id == OutboundEvent.tenant_id)
        .where(OutboundEvent.id.in_(ids))
        .order_by(OutboundEvent.id)
    ).all()
    secrets_by_tenant: dict[str, str] = {}
    prepared = []
    for event, url, stored_secret in rows:
        if event.tenant_id not in secrets_by_tenant:
            secrets_by_tenant[event.tenant_id] = (
                vault.decrypt_text(stored_secret, callback_secret_context(event.tenant_id)) if stored_secret else ""
            )
        body = json.dumps(event_body(event), separators=(",", ":"), sort_keys=True).encode()
        prepared.append(Prepared(event.id, url or "", secrets_by_tenant[event.tenant_id], body))
    return prepared


def send(client: httpx.Client, item: Prepared) -> Attempt:
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"vrtx-integrations/{__version__}",
        "X-VRTX-Event-Id": str(item.event_id),
        "X-VRTX-Timestamp": str(timestamp),
        "X-VRTX-Signature": sign(item.secret, timestamp, item.body),
    }
    try:
        response = client.post(item.url, content=item.body, headers=headers)
    except DestinationRefused as exc:
        # Nothing was sent, and nothing about the address is kept but why it was refused.
        return Attempt(item.event_id, None, exc.message, final=True)
    except httpx.TimeoutException:
        return Attempt(item.event_id, None, "the callback did not answer in time")
    except httpx.HTTPError as exc:
        # The class says what went wrong (refused, DNS, TLS); its text may carry the URL, which is the tenant's.
        return Attempt(item.event_id, None, f"could not reach the callback ({type(exc).__name__})")
    if 200 <= response.status_code < 300:
        return Attempt(item.event_id, response.status_code, None)
    return Attempt(item.event_id, response.status_code, f"the callback answered HTTP {response.status_code}")


def _record(session: Session, attempt: Attempt, now: datetime, policy: DeliveryPolicy, report: DeliveryReport) -> None:
    event = session.get(OutboundEvent, attempt.event_id)
    if event is None or event.status != DeliveryStatus.DELIVERING:
        return  # redelivered or reset meanwhile: the newer request wins
    event.attempts += 1
    event.last_status_code = attempt.status_code
    if attempt.ok:
        event.status, event.delivered_at, event.next_attempt_at, event.last_error = (
            DeliveryStatus.DELIVERED,
            now,
            None,
            None,
        )
        report.delivered += 1
        return
    event.last_error = attempt.error
    if attempt.final or event.attempts >= policy.max_attempts:
        event.status, event.next_attempt_at = DeliveryStatus.FAILED, None
        report.failed += 1
    else:
        event.status, event.next_attempt_at = DeliveryStatus.RETRYING, now + policy.backoff(event.attempts)
        report.retrying += 1


def deliver_due_events(
    vault: Vault,
    *,
    engine: Engine | None = None,
    policy: DeliveryPolicy | None = None,
    now: Callable[[], datetime] = utcnow,
    budget_s: float = 20.0,
    guard: OutboundGuard | None = None,
) -> DeliveryReport:
    """Deliver every due event, batch by batch, until none is due or ``budget_s`` is spent. Each connection goes
    through ``guard`` (by default, the settings' ``allow_private_callbacks``): a callback that leads to a refused
    address fails at once with "destination refused", and nothing is sent to it."""
    policy = policy or DeliveryPolicy()
    report = DeliveryReport()
    started = time.monotonic()
    guard = guard or OutboundGuard(allow_private=get_settings().allow_private_callbacks)
    http = guarded_client(guard, timeout=policy.timeout_s)
    try:
        while time.monotonic() - started < budget_s:
            with session_scope(engine) as session:
                report.stored += _store_without_callback(session)
                ids = claim_due(session, now(), policy)
            if not ids:
                break
            report.claimed += ids
            with session_scope(engine) as session:
                prepared = _prepare(session, vault, ids)
            with ThreadPoolExecutor(max_workers=policy.workers) as pool:
                attempts = list(pool.map(lambda item: send(http, item), prepared))
            with session_scope(engine) as session:
                moment = now()
                for attempt in attempts:
                    _record(session, attempt, moment, policy, report)
    finally:
        http.close()
    return report


def redeliver(session: Session, event: OutboundEvent) -> None:
    """Deliver again from scratch (a failed, stored or even delivered event), as soon as a worker is free."""
    event.status = DeliveryStatus.PENDING
    event.attempts = 0
    event.next_attempt_at = None
    event.delivered_at = None
    event.last_error = None
    event.last_status_code = None
