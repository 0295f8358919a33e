"""The webhook fast path: apply a claimed batch's records in the API process, without waiting for a run.

A Dagster run costs a fresh process (seconds of spawn and imports) before it pulls anything, too slow for a change
in the provider to show in the records API within seconds. Webhooks name the records that changed, so the API
fetches those by id (the kit's ``fetch_by_ids``), maps them with the same mappers the pull uses and upserts them as
canonical records right away; the CRM hears ``records.changed`` in the same transaction, and data engineers see a
runless materialization of the asset partition. Notifications that name no record (Gmail's "the mailbox changed")
are read through the stream's change feed instead, from a position of the fast path's own that the connection's
watch keeps (``vrtx_pipelines.webhooks.watches``). The targeted run still follows and refreshes the warehouse; its
canonical apply of identical content changes nothing.

Everything here is best effort: any failure (provider error, token, mapping) is logged without secrets and leaves
the events to the run and the sensor. Nothing here decides an event's status.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from providers.base import Provider, ProviderConnection
from providers.errors import ProviderError
from providers.kit.client import GIVE_UP_FAST
from providers.kit.governor import RateGovernor
from providers.kit.streams import ChangesExpired, fetch_by_ids
from vrtx_pipelines.config import Settings
from vrtx_pipelines.connect.context import ConnectionContext
from vrtx_pipelines.connect.http import provider_client
from vrtx_pipelines.connect.provider_connection import governor_for, provider_connection
from vrtx_pipelines.credentials.vault import Vault
from vrtx_pipelines.db.models import CanonicalRecord, TenantIntegration
from vrtx_pipelines.errors import IntegrationError
from vrtx_pipelines.events.record import EventType, record_event
from vrtx_pipelines.mapping import pull_mapper
from vrtx_pipelines.records.store import apply_records, canonical_json, encode_cursor
from vrtx_pipelines.webhooks.dispatch import Batch
from vrtx_pipelines.webhooks.watches import keep_positions, renew_watches, watch_state

log = logging.getLogger("vrtx.webhooks")

MAX_INBOX_IDS_IN_METADATA = 100


@dataclass(frozen=True)
class Applied:
    """What the fast path did for one entity of a batch."""

    entity: str
    fetched: int
    changed: int
    without_canonical_form: int
    cursor: str | None  # a records API cursor just before the first change, when something changed


class DagsterReporter:
    """Records each fast apply as a runless materialization of ``[slug, entity]`` for the tenant's partition.

    The instance is the one ``DAGSTER_HOME`` names (``vrtx dev`` sets it for the API), opened once; without one,
    nothing is recorded. A failure here is logged, never raised: the records are already applied.
    """

    def __init__(self, instance: Any | None = None, *, from_environment: bool = True) -> None:
        self._instance = instance
        self._resolved = instance is not None or not from_environment
        self._lock = threading.Lock()

    def instance(self) -> Any | None:
        with self._lock:
            if not self._resolved:
                self._resolved = True
                self._instance = _instance_from_environment()
            return self._instance

    def report(self, batch: Batch, applied: Applied) -> None:
        instance = self.instance()
        if instance is None:
            return
        from dagster import AssetKey, AssetMaterialization, MetadataValue

        try:
            instance.report_runless_asset_event(
                AssetMaterialization(
                    asset_key=AssetKey([batch.slug, applied.entity]),
                    partition=batch.tenant_id,
                    description="Records a webhook named, fetched by id and applied without a run; the "
                    "targeted pull that follows refreshes the warehouse.",
                    metadata={
                        "trigger": "webhook",
                        "tenant": batch.tenant_id,
                        "records_fetched": MetadataValue.int(applied.fetched),
                        "records_changed": MetadataValue.int(applied.changed),
                        "records_without_canonical_form": MetadataValue.int(applied.without_canonical_form),
                        "inbox_ids": MetadataValue.json(list(batch.inbox_ids[:MAX_INBOX_IDS_IN_METADATA])),
                        "webhook_batch": batch.key,
                    },
                )
            )
        except Exception as exc:  # noqa: BLE001 -- the Dagster UI's view must never cost the CRM its records
            log.warning(
                "webhook fast path: materialization not recorded provider=%s tenant=%s entity=%s (%s)",
                batch.slug,
                batch.tenant_id,
                applied.entity,
                type(exc).__name__,
            )


def _instance_from_environment() -> Any | None:
    import os

    if not os.environ.get("DAGSTER_HOME"):
        return None
    try:
        from dagster import DagsterInstance

        return DagsterInstance.get()
    except Exception as exc:  # noqa: BLE001 -- an unusable DAGSTER_HOME only costs the UI its view
        log.warning(
            "webhook fast path: no Dagster instance (%s); materializations are not recorded", type(exc).__name__
        )
        return None


class WebhookApplier:
    """Fetches, maps and applies the records a claimed batch of webhook events names."""

    def __init__(
        self,
        sessions: Callable[[], Session],
        vault: Vault,
        settings: Settings,
        *,
        reporter: DagsterReporter | None = None,
    ) -> None:
        self.sessions = sessions
        self.vault = vault
        self.settings = settings
        self.reporter = reporter or DagsterReporter()
        # One governor per connection for the process's life: a burst of webhooks stays under the provider's
        # per-minute budget instead of each fetch starting from a fresh window.
        self._governors: dict[int, RateGovernor] = {}
        self._lock = threading.Lock()

    def apply(self, provider: Provider, batch: Batch) -> list[Applied]:
        """Apply the batch's records; never raises (what fails is left to the run)."""
        if provider.watches is not None and any(event.renews_watch for event in batch.events):
            self._renew_watch(provider, batch)
        # Records are fetched by id, or (for a provider that keeps watches) read through a change feed.
        readable = provider.pulls is not None and (provider.pulls.fetchable or provider.watches is not None)
        if provider.pulls is None or provider.client is None or not readable:
            return []
        started = time.monotonic()
        try:
            applied = self._apply(provider, batch)
        except Exception as exc:  # noqa: BLE001 -- the run that follows is the reliable path
            log.warning(
                "webhook fast path failed provider=%s tenant=%s events=%d: %s; the targeted pull will apply them",
                batch.slug,
                batch.tenant_id,
                len(batch.inbox_ids),
                _safe_reason(exc),
            )
            return []
        for outcome in applied:
            self.reporter.report(batch, outcome)
        log.info(
            "webhook fast path applied provider=%s tenant=%s events=%d %s in %.0f ms",
            batch.slug,
            batch.tenant_id,
            len(batch.inbox_ids),
            " ".join(f"{a.entity}={a.changed}/{a.fetched}" for a in applied),
            (time.monotonic() - started) * 1000,
        )
        return applied

    def _renew_watch(self, provider: Provider, batch: Batch) -> None:
        """Start the connection's watch again at the provider's asking (a failure leaves it due for the
        ``provider_watches`` schedule)."""
        try:
            tick = renew_watches(self.settings, self.vault, provider, tenant_id=batch.tenant_id, force=True)
        except Exception as exc:  # noqa: BLE001 -- the schedule renews what is due
            log.warning("%s watch not renewed for tenant %s: %s", provider.name, batch.tenant_id, _safe_reason(exc))
            return
        log.info("%s watch renewed at the provider's asking, tenant %s: %s", provider.name, batch.tenant_id,
                 tick.summary)  # fmt: skip

    def _apply(self, provider: Provider, batch: Batch) -> list[Applied]:
        assert provider.pulls is not None and provider.client is not None
        session = self.sessions()
        try:
            ctx = ConnectionContext(session=session, vault=self.vault, settings=self.settings)
            with provider_client(self.settings) as http:
                governor = self._governor(provider, batch)
                connection = provider_connection(ctx, provider, batch.connection_id, http, governor)
                client = provider.client(connection, retry=GIVE_UP_FAST)  # the targeted pull follows anyway
                ids_by_entity = _resource_ids(batch, connection)
                carried = _carried_records(batch, connection)
                results = []
                for entity, rows in self._feed_rows(session, provider, batch, client).items():
                    if rows:
                        results.append(self._apply_entity(session, provider, batch, entity, rows))
                for entity in batch.entities:
                    ids = ids_by_entity.get(entity)
                    if not ids or entity not in provider.pulls.mappers:
                        continue
                    rows = list(carried.get(entity, {}).values())
                    missing = [i for i in ids if i not in carried.get(entity, {})]
                    if missing and entity in provider.pulls.fetchable:
                        # No transaction stays open across the provider call (on SQLite it would hold writers off).
                        session.commit()
                        rows += fetch_by_ids(provider.pulls.streams, client, entity, missing)
                    if rows:
                        results.append(self._apply_entity(session, provider, batch, entity, rows))
            return results
        finally:
            session.close()

    def _feed_rows(
        self, session: Session, provider: Provider, batch: Batch, client: Any
    ) -> dict[str, list[Mapping[str, Any]]]:
        """For notifications that name no record (Gmail's "the mailbox changed"): the changes the stream's change
        feed has after the position the connection's watch keeps for the fast path (``Watching.state``'s
        ``positions``), and that position moved past them. Nothing where no position is kept: the run reads them."""
        assert provider.pulls is not None
        wanted = {e for event in batch.events if not event.external_id for e in event.entities} & set(batch.entities)
        streams = {s.name: s for s in provider.pulls.streams if s.name in wanted and s.feed is not None}
        if not streams:
            return {}
        connection = session.get_one(TenantIntegration, batch.connection_id)
        positions = dict(watch_state(connection.meta).get("positions") or {})
        found: dict[str, list[Mapping[str, Any]]] = {}
        moved: dict[str, Any] = {}
        for entity, stream in streams.items():
            if entity not in positions or entity not in provider.pulls.mappers:
                continue
            session.commit()  # no transaction stays open across the provider call
            assert stream.feed is not None
            try:
                changes = stream.feed.changes(client, stream, positions[entity], None)
                found[entity] = [row for page in changes.pages for row in page]
                moved[entity] = changes.position()
            except ChangesExpired as exc:
                log.info("webhook fast path: %s %s (%s); the run lists it again", batch.slug, entity, exc.why)
                moved[entity] = None
        if moved:
            keep_positions(session, batch.connection_id, moved)
        return found

    def _apply_entity(
        self, session: Session, provider: Provider, batch: Batch, entity: str, rows: Sequence[Mapping[str, Any]]
    ) -> Applied:
        mapper = pull_mapper(session, provider, batch.connection_id, entity)
        items, without = [], 0
        for row in rows:
            try:
                items.append(canonical_json(mapper(row)))
            except ValueError:  # no canonical form (e.g. a deleted payment): the pull skips it too
                without += 1
        before = _last_change(session, batch.connection_id)
        report = apply_records(session, batch.connection_id, entity, items)
        cursor = None
        if report.changed:
            # Every change this apply made has a higher number (a concurrent writer's too: reading more is safe).
            cursor = encode_cursor(before)
            record_event(
                session,
                batch.tenant_id,
                EventType.RECORDS_CHANGED,
                batch.slug,
                {"entity": entity, "count": report.changed, "cursor": cursor, "trigger": "webhook"},
            )
        session.commit()  # one entity at a time: the connection's lock is held for milliseconds
        return Applied(entity, len(rows), report.changed, without, cursor)

    def _governor(self, provider: Provider, batch: Batch) -> RateGovernor:
        with self._lock:
            governor = self._governors.get(batch.connection_id)
            if governor is None:
                governor = governor_for(self.settings, provider)
                self._governors[batch.connection_id] = governor
            return governor


def _resource_ids(batch: Batch, connection: ProviderConnection) -> dict[str, list[str]]:
    """Entity -> the ids the batch's events name for it, from this connection's organisation only."""
    ours = connection.external_tenant_id
    wanted: dict[str, dict[str, None]] = {}
    for event in batch.events:
        organisation = event.external_tenant_id
        # An event about another organisation is not this connection's to apply (its id would not resolve there
        # anyway); the run decides what it means.
        if not event.external_id or (organisation and ours and organisation != ours):
            continue
        for entity in event.entities:
            wanted.setdefault(entity, {})[event.external_id] = None
    return {entity: list(ids) for entity, ids in wanted.items()}


def _carried_records(batch: Batch, connection: ProviderConnection) -> dict[str, dict[str, Mapping[str, Any]]]:
    """Entity -> id -> the record the events carried (Stripe's event object), the newest event's per id: several
    events of one record in a batch leave the last change, whatever order they were delivered in. Applying keeps
    a newer stored copy (the record's version is the event's time)."""
    ours = connection.external_tenant_id
    carried: dict[str, dict[str, tuple[Any, Mapping[str, Any]]]] = {}
    for event in batch.events:
        organisation = event.external_tenant_id
        if (
            event.record is None
            or not event.entity
            or not event.external_id
            or (organisation and ours and organisation != ours)
        ):
            continue
        stamp = event.occurred_at.timestamp() if event.occurred_at else 0.0
        known = carried.setdefault(event.entity, {}).get(event.external_id)
        if known is None or known[0] <= stamp:
            carried[event.entity][event.external_id] = (stamp, event.record)
    return {entity: {i: record for i, (_, record) in found.items()} for entity, found in carried.items()}


def _last_change(session: Session, connection_id: int) -> int:
    """The connection's latest change number (change numbers are per connection, across entities)."""
    latest = session.scalar(
        select(func.max(CanonicalRecord.change_seq)).where(CanonicalRecord.tenant_integration_id == connection_id)
    )
    return int(latest or 0)


def _safe_reason(exc: BaseException) -> str:
    """Our typed errors carry messages written to be shown; anything else is named by its type only, since its
    text may quote a request."""
    if isinstance(exc, ProviderError | IntegrationError):
        return f"{type(exc).__name__}: {exc.message}"
    return type(exc).__name__
