"""The webhook inbox: finding the connection a delivery is for, verifying it, and the deduplicated rows to store.

The receiving path is the hot one (``vrtx_pipelines.webhooks.receiver`` runs it): the delivery's connection from an
in-process cache (``TargetCache``) with its decrypted secret (``SecretCache``), a constant-time signature check by
the provider's ``WebhookSpec`` (``signature_verifies``, or ``verified_app_events`` for the app-level URL), the
body parsed and filtered (``delivery``, ``app_delivery``), and the rows inserted with duplicates dropped at the
database (``insert_ignoring_duplicates``, ``ON CONFLICT DO NOTHING``) by the receiver's group-committing writer;
no provider call. Turning stored events into pulls is ``vrtx_pipelines.webhooks.dispatch``'s job.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from providers.base import Provider, WebhookEvent, WebhookProof, WebhookSpec
from vrtx_pipelines.config import Settings
from vrtx_pipelines.connect.context import Status
from vrtx_pipelines.credentials.stored import webhook_secret_context
from vrtx_pipelines.credentials.vault import Vault
from vrtx_pipelines.db.models import (
    CanonicalRecord,
    Integration,
    IntegrationWebhook,
    TenantIntegration,
    WebhookInbox,
    table_of,
    utcnow,
)
from vrtx_pipelines.errors import IntegrationError
from vrtx_pipelines.webhooks.config import app_webhook_key

log = logging.getLogger("vrtx.webhooks")

MAX_BODY_BYTES = 1024 * 1024
SECRET_CACHE_TTL_S = 45.0
TARGET_CACHE_TTL_S = 5.0
# last_received_at is for people; rewriting it on every one of a burst of deliveries only adds write load.
LAST_RECEIVED_RESOLUTION = timedelta(seconds=5)
# How far ahead of our clock an event may be dated: the provider's clock and ours disagree a little, not by years.
FUTURE_SKEW = timedelta(minutes=5)


def _length(column: Any) -> int:
    length = column.type.length
    assert isinstance(length, int)
    return length


# What the columns hold (the inbox's, and the records' external_id): a longer value is refused, never cut short,
# since a cut id could merge two events or name another record.
FIELD_LIMITS = {
    "event_id": _length(table_of(WebhookInbox).c.provider_event_id),
    "event_type": _length(table_of(WebhookInbox).c.event_type),
    "external_id": _length(table_of(CanonicalRecord).c.external_id),
    "external_tenant_id": _length(table_of(CanonicalRecord).c.external_id),
}


class WebhookKeysUnavailable(IntegrationError):
    """The provider's public signing keys could not be fetched: the delivery is neither accepted nor refused, so
    the provider delivers it again."""

    code = "webhook_keys_unavailable"
    http_status = 503

    def __init__(self) -> None:
        super().__init__("the provider's signing keys cannot be fetched now: deliver again later")


class WebhookRejected(IntegrationError):
    """One answer for every authentication failure, so a caller learns nothing about which tenants exist."""

    code = "webhook_rejected"
    http_status = 401

    def __init__(self) -> None:
        super().__init__("the webhook signature could not be verified")


class WebhookMalformed(IntegrationError):
    code = "webhook_malformed"
    http_status = 400


class WebhookTooLarge(IntegrationError):
    code = "payload_too_large"
    http_status = 413

    def __init__(self) -> None:
        super().__init__(f"webhook bodies are limited to {MAX_BODY_BYTES} bytes")


# --- receiving -----------------------------------------------------------------------------------------------


class SecretCache:
    """Decrypted webhook secrets for a short while, keyed by the connection and the stored envelope: a rotated
    secret is a new key, so it applies at once; a removed one ages out within the TTL."""

    def __init__(self, ttl_s: float = SECRET_CACHE_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._values: dict[tuple[int, str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, vault: Vault, connection_id: int, envelope: str) -> str:
        key = (connection_id, envelope)
        now = time.monotonic()
        with self._lock:
            cached = self._values.get(key)
            if cached is not None and cached[1] > now:
                return cached[0]
        secret = vault.decrypt_text(envelope, webhook_secret_context(connection_id))
        with self._lock:
            if len(self._values) > 10_000:
                self._values = {k: v for k, v in self._values.items() if v[1] > now}
            self._values[key] = (secret, now + self.ttl_s)
        return secret


@dataclass(frozen=True)
class IngestResult:
    """What became of one delivery's events."""

    stored: int = 0
    duplicates: int = 0
    dropped: int = 0  # stale, about another organisation, or not subscribed
    connection_ids: tuple[int, ...] = ()  # the connections the kept events are for


@dataclass(frozen=True)
class Target:
    connection_id: int
    external_tenant_id: str | None
    envelope: str | None
    events: list[str]
    webhook_id: int | None
    last_received_at: datetime | None


def _find_target(session: Session, slug: str, tenant_id: str) -> Target | None:
    row = session.execute(
        select(
            TenantIntegration.id,
            TenantIntegration.meta,
            IntegrationWebhook.secret_key,
            IntegrationWebhook.events,
            IntegrationWebhook.is_active,
            IntegrationWebhook.id,
            IntegrationWebhook.last_received_at,
        )
        .join(Integration, Integration.id == TenantIntegration.integration_id)
        .outerjoin(IntegrationWebhook, IntegrationWebhook.tenant_integration_id == TenantIntegration.id)
        .where(
            Integration.slug == slug,
            TenantIntegration.tenant_id == tenant_id,
            TenantIntegration.status != Status.DISCONNECTED,
        )
        .order_by(IntegrationWebhook.id)
        .limit(1)
    ).first()
    if row is None:
        return None
    connection_id, meta, envelope, events, is_active, webhook_id, last_received_at = row
    if is_active is False:
        return None
    return Target(
        connection_id=connection_id,
        external_tenant_id=(meta or {}).get("external_account_id"),
        envelope=envelope,
        events=list(events or []),
        webhook_id=webhook_id,
        last_received_at=last_received_at,
    )


def _subscribed(event_type: str, subscriptions: list[str]) -> bool:
    """No subscriptions = every event; otherwise exact types or a category wildcard ("invoice.*")."""
    if not subscriptions:
        return True
    category = event_type.split(".", 1)[0]
    return event_type in subscriptions or f"{category}.*" in subscriptions


def pull_entities(provider: Provider, event: WebhookEvent) -> list[str]:
    """The pull entities an event asks to refresh, limited to what the provider pulls."""
    if event.entity is None or provider.pulls is None or provider.webhooks is None:
        return []
    wanted = [event.entity, *provider.webhooks.refreshes.get(event.entity, ())]
    return [e for e in wanted if e in provider.pulls.entities]


def event_identity(event: WebhookEvent) -> str:
    """The key an event is deduplicated on (per connection): the provider's event id where it sends one; else a
    hash of what the event is about (organisation, type, resource) and the instant it names, parsed, so the same
    event written differently (``...000`` and ``...000Z``, another offset, GUIDs in another case) is one event.
    Ids are compared without case: providers without event ids name resources by GUIDs or numbers (Xero,
    QuickBooks). Migration 0006 re-keys stored rows with this same formula: change both or neither."""
    if event.event_id is not None:
        return event.event_id
    assert event.occurred_at is not None  # _refusal turns away an event with neither
    instant = event.occurred_at.astimezone(UTC).isoformat(timespec="microseconds")
    parts = (event.external_tenant_id or "", event.event_type, event.external_id or "")
    identity = "|".join([*(part.casefold() for part in parts), instant])
    return hashlib.sha256(identity.encode()).hexdigest()


def _inbox_row(provider: Provider, connection_id: int, event: WebhookEvent, now: datetime) -> dict[str, Any]:
    return {
        "tenant_integration_id": connection_id,
        "provider_event_id": event_identity(event),
        "event_type": event.event_type,
        "status": "received",
        "received_at": now,
        "payload": {
            "event_type": event.event_type,
            "entity": event.entity,
            "entities": pull_entities(provider, event),
            "external_id": event.external_id,
            "external_tenant_id": event.external_tenant_id,
            "occurred_at": event.occurred_at.isoformat() if event.occurred_at else None,
            "data": dict(event.data),
            # The changed record itself when the event carries all of it (Stripe): applied without a fetch.
            "record": dict(event.record) if event.record is not None else None,
            "renews_watch": event.renews_watch,
        },
    }


_INSERT_IGNORING_DUPLICATES: dict[str, Insert] = {}


def insert_ignoring_duplicates(session: Session, rows: list[dict[str, Any]]) -> set[tuple[int, str]]:
    """Insert inbox rows; a (connection, provider event id) already stored is skipped by the database itself,
    so two deliveries racing each other still store the event once. Returns the keys that were new."""
    if not rows:
        return set()
    dialect = session.get_bind().dialect.name
    statement = _INSERT_IGNORING_DUPLICATES.get(dialect)
    if statement is None:
        # Built once and executed with the rows as parameters: its compiled form is cached, where a statement
        # carrying its own VALUES would be compiled again for every delivery.
        insert_of = postgresql.insert if dialect == "postgresql" else sqlite.insert
        # The table, not the mapped class: a Core insert skips the ORM's bulk-insert machinery.
        inbox = table_of(WebhookInbox)
        statement = _INSERT_IGNORING_DUPLICATES[dialect] = (
            insert_of(inbox)
            .on_conflict_do_nothing(index_elements=["tenant_integration_id", "provider_event_id"])
            .returning(inbox.c.tenant_integration_id, inbox.c.provider_event_id)
        )
    return {(connection_id, event_id) for connection_id, event_id in session.execute(statement, rows)}


class TargetCache:
    """Where deliveries for (provider, tenant) go, for a few seconds: the lookup is most of a delivery's cost
    under load. A connection disconnected or reconfigured takes effect within ``ttl_s``; a signature that fails
    against a cached target is checked once more against a fresh one, so a rotated secret applies at once."""

    def __init__(self, ttl_s: float = TARGET_CACHE_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._values: dict[tuple[str, str], tuple[Target | None, float]] = {}
        self._organisations: dict[tuple[str, str], tuple[list[Target], float]] = {}
        self._touched: dict[int, datetime] = {}
        self._lock = threading.Lock()

    def touch_due(self, connection_id: int, now: datetime) -> bool:
        with self._lock:
            last = self._touched.get(connection_id)
            if last is not None and now - last < LAST_RECEIVED_RESOLUTION:
                return False
            self._touched[connection_id] = now
            return True

    def forget(self, slug: str, tenant_id: str) -> None:
        with self._lock:
            self._values.pop((slug, tenant_id), None)
            self._organisations = {k: v for k, v in self._organisations.items() if k[0] != slug}

    def cached_organisations(self, slug: str, organisations: set[str]) -> tuple[dict[str, list[Target]], set[str]]:
        """The cached receivers of each organisation (app-URL deliveries), and the organisations not cached."""
        now = time.monotonic()
        found: dict[str, list[Target]] = {}
        with self._lock:
            for organisation in organisations:
                cached = self._organisations.get((slug, organisation))
                if cached is not None and cached[1] > now:
                    found[organisation] = cached[0]
        return found, organisations - set(found)

    def load_organisations(self, session: Session, slug: str, organisations: set[str]) -> dict[str, list[Target]]:
        found = _targets_for_organisations(session, slug, organisations)
        expires = time.monotonic() + self.ttl_s
        with self._lock:
            if len(self._organisations) > 10_000:
                self._organisations.clear()
            for organisation in organisations:
                self._organisations[(slug, organisation)] = (found.get(organisation, []), expires)
        return found

    def cached(self, slug: str, tenant_id: str) -> tuple[bool, Target | None]:
        """(True, target) while a lookup is cached (``None``: no such connection); (False, None) otherwise."""
        with self._lock:
            cached = self._values.get((slug, tenant_id))
        if cached is not None and cached[1] > time.monotonic():
            return True, cached[0]
        return False, None

    def load(self, session: Session, slug: str, tenant_id: str) -> Target | None:
        """Look the target up in the database and cache it (``None`` too: unknown tenants stay cheap to refuse)."""
        target = _find_target(session, slug, tenant_id)
        now = time.monotonic()
        with self._lock:
            if len(self._values) > 10_000:
                self._values = {k: v for k, v in self._values.items() if v[1] > now}
            self._values[(slug, tenant_id)] = (target, now + self.ttl_s)
        return target


@dataclass(frozen=True)
class Delivery:
    """A verified, parsed delivery: the inbox rows to store and what was dropped before storing."""

    rows: list[dict[str, Any]]
    kept: int
    dropped: int  # stale, about another organisation, or not subscribed
    receiving: tuple[int, ...]  # the connections with rows
    touch_webhook_ids: tuple[int, ...]  # webhook rows whose last_received_at is due for a refresh


def signature_verifies(
    vault: Vault,
    settings: Settings,
    spec: WebhookSpec,
    slug: str,
    target: Target | None,
    body: bytes,
    headers: Mapping[str, str],
    secrets: SecretCache,
    keys: Mapping[str, Any] | None = None,
) -> bool:
    """Whether the delivery is signed with the target connection's secret (the app's, for providers signing per
    app), or with the provider's own ``keys`` where it signs so; False when there is no target, or nothing to
    verify against."""
    if target is None:
        return False
    secret = _secret_of(vault, settings, slug, target, secrets)
    if secret is None and spec.public_keys_url is None:
        return False
    return spec.verify(body, headers, _proof(settings, slug, secret, keys))


def _proof(settings: Settings, slug: str, secret: str | None, keys: Mapping[str, Any] | None) -> WebhookProof:
    return WebhookProof(secret, keys, settings.oauth_clients.get(slug, {}))


def delivery(
    provider: Provider,
    spec: WebhookSpec,
    target: Target,
    body: bytes,
    *,
    headers: Mapping[str, str] | None = None,
    targets: TargetCache | None = None,
    now: datetime | None = None,
) -> Delivery:
    """Parse a verified body and filter its events; ``WebhookMalformed`` (400) when it does not parse."""
    now = now or utcnow()
    events = _parsed(provider, spec, body, headers or {}, now)
    kept, dropped = _keep(events, spec, target, now)
    by_id = {event_identity(event): event for event in kept}  # the same event twice in one body is still one
    rows = [_inbox_row(provider, target.connection_id, e, now) for e in by_id.values()]
    due = target.webhook_id is not None and _due_for_touch(targets, target, now)
    touch = (target.webhook_id,) if due and target.webhook_id is not None else ()
    if dropped:
        log.info("webhook events dropped provider=%s dropped=%d kept=%d", provider.slug, dropped, len(by_id))
    return Delivery(rows, len(by_id), dropped, (target.connection_id,) if rows else (), touch)


def touch_received(session: Session, webhook_ids: Iterable[int], now: datetime) -> None:
    """Refresh last_received_at, only where the stored value is older than the resolution: concurrent deliveries
    do not queue on the row."""
    webhook = table_of(IntegrationWebhook)
    for webhook_id in sorted(set(webhook_ids)):
        session.execute(
            update(webhook)
            .where(
                webhook.c.id == webhook_id,
                or_(webhook.c.last_received_at.is_(None), webhook.c.last_received_at < now - LAST_RECEIVED_RESOLUTION),
            )
            .values(last_received_at=now)
        )


def verified_app_events(
    provider: Provider,
    settings: Settings,
    body: bytes,
    headers: Mapping[str, str],
    keys: Mapping[str, Any] | None = None,
) -> list[WebhookEvent]:
    """The events of one delivery to the platform app's URL (Xero sends every organisation's events to one URL per
    app), verified with the app's webhook key. ``WebhookRejected`` when it does not verify, ``WebhookMalformed``
    when a verified body does not parse. A connection with its own webhook secret still receives events here: the
    app's signature is the authority for the app's URL."""
    spec = provider.webhooks
    app_key = app_webhook_key(settings, provider.slug)
    if spec is None or (app_key is None and spec.public_keys_url is None):
        raise WebhookRejected()
    if len(body) > MAX_BODY_BYTES:
        raise WebhookTooLarge()
    if not spec.verify(body, headers, _proof(settings, provider.slug, app_key, keys)):
        raise WebhookRejected()
    return _parsed(provider, spec, body, headers, utcnow())


def organisations_of(events: Iterable[WebhookEvent]) -> set[str]:
    return {e.external_tenant_id for e in events if e.external_tenant_id}


def app_delivery(
    provider: Provider,
    events: list[WebhookEvent],
    targets: Mapping[str, list[Target]],
    *,
    cache: TargetCache | None = None,
    now: datetime | None = None,
) -> Delivery:
    """Route each event to the connections reaching its organisation (``targets``), filtered as ``delivery`` does."""
    spec = provider.webhooks
    assert spec is not None
    now = now or utcnow()
    organisations = organisations_of(events)
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    dropped = kept_total = 0
    touch: set[int] = set()
    for organisation in organisations | ({None} if any(not e.external_tenant_id for e in events) else set()):
        mine = [e for e in events if e.external_tenant_id == organisation]
        receivers = targets.get(organisation, []) if organisation else []
        if not receivers:
            dropped += len(mine)
            continue
        for target in receivers:
            kept, skipped = _keep(mine, spec, target, now)
            dropped += skipped
            for event in kept:
                row = _inbox_row(provider, target.connection_id, event, now)
                rows[(target.connection_id, row["provider_event_id"])] = row
            kept_total += len({event_identity(e) for e in kept})
            if kept and target.webhook_id is not None and _due_for_touch(cache, target, now):
                touch.add(target.webhook_id)
    receiving = tuple(sorted({connection_id for connection_id, _ in rows}))
    return Delivery(list(rows.values()), kept_total, dropped, receiving, tuple(sorted(touch)))


def _targets_for_organisations(session: Session, slug: str, organisations: set[str]) -> dict[str, list[Target]]:
    if not organisations:
        return {}
    rows = session.execute(
        select(
            TenantIntegration.id,
            TenantIntegration.meta,
            IntegrationWebhook.events,
            IntegrationWebhook.is_active,
            IntegrationWebhook.id,
            IntegrationWebhook.last_received_at,
        )
        .join(Integration, Integration.id == TenantIntegration.integration_id)
        .outerjoin(IntegrationWebhook, IntegrationWebhook.tenant_integration_id == TenantIntegration.id)
        .where(Integration.slug == slug, TenantIntegration.status != Status.DISCONNECTED)
    ).all()
    targets: dict[str, list[Target]] = {}
    for connection_id, meta, events, is_active, webhook_id, last_received_at in rows:
        organisation = (meta or {}).get("external_account_id")
        if organisation not in organisations or is_active is False:
            continue
        targets.setdefault(organisation, []).append(
            Target(connection_id, organisation, None, list(events or []), webhook_id, last_received_at)
        )
    return targets


def _due_for_touch(targets: TargetCache | None, target: Target, now: datetime) -> bool:
    """Whether to refresh last_received_at: at most once per resolution per process (a cached target's own value
    is as old as the cache entry)."""
    if targets is None:
        return target.last_received_at is None or now - target.last_received_at >= LAST_RECEIVED_RESOLUTION
    return targets.touch_due(target.connection_id, now)


def _parsed(
    provider: Provider, spec: WebhookSpec, body: bytes, headers: Mapping[str, str], now: datetime
) -> list[WebhookEvent]:
    """The events of a verified body; ``WebhookMalformed`` (400) when it is not the provider's shape, or when an
    event is dated in the future or carries a field the inbox cannot hold as it is (see ``_refusal``): the whole
    delivery is refused and nothing of it stored."""
    try:
        events = spec.parse(body, headers)
    except ValueError as exc:
        raise WebhookMalformed(f"the webhook body is not a valid {provider.name} payload: {exc}") from exc
    latest = now + FUTURE_SKEW
    for event in events:
        problem = _refusal(event, latest)
        if problem is not None:
            raise WebhookMalformed(f"the webhook body is not a valid {provider.name} payload: {problem}")
    return events


def _refusal(event: WebhookEvent, latest: datetime) -> str | None:
    for name, limit in FIELD_LIMITS.items():
        value = getattr(event, name)
        if value is None:
            continue
        if not isinstance(value, str) or "\x00" in value:
            return f"an event's {name} holds a NUL character or is not text"
        if len(value) > limit:
            return f"an event's {name} is longer than {limit} characters"
    if event.occurred_at is not None and event.occurred_at > latest:
        return f"an event is dated {event.occurred_at.isoformat()}, in the future"
    if event.event_id is None and event.occurred_at is None:
        return "an event has neither an id nor a date: a redelivery could not be told from a new event"
    return None


def _secret_of(vault: Vault, settings: Settings, slug: str, target: Target, secrets: SecretCache) -> str | None:
    if target.envelope:
        return secrets.get(vault, target.connection_id, target.envelope)
    return app_webhook_key(settings, slug)


def _keep(
    events: Iterable[WebhookEvent], spec: WebhookSpec, target: Target, now: datetime
) -> tuple[list[WebhookEvent], int]:
    oldest = now - timedelta(seconds=spec.tolerance_s)
    kept: list[WebhookEvent] = []
    dropped = 0
    for event in events:
        stale = event.occurred_at is not None and event.occurred_at < oldest
        # An event about another organisation was not meant for this connection, however well signed.
        foreign = (
            event.external_tenant_id is not None
            and target.external_tenant_id is not None
            and event.external_tenant_id != target.external_tenant_id
        )
        if stale or foreign or not _subscribed(event.event_type, target.events):
            dropped += 1
        else:
            kept.append(event)
    return kept, dropped
