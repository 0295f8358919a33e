"""Pushes: the outbox sent to providers by sensor-triggered Dagster runs, one job and sensor per pushing provider.

The sensor batches each connection's due rows into a run (``run_key`` = the rows at their attempt, so a batch
runs once); the op claims its rows and whatever else of the connection is due, sends each with the row's own
idempotency key, commits each outcome before the next call, and takes what became due meanwhile before it ends.
Creates the provider takes many to a call go out in batches (``vrtx_pipelines.push.batches``) whose membership is
committed before the call and whose outcomes are committed together after it. A crash between a provider's answer
and that commit leaves the rows ``running`` under a dead run: the sensor returns them to pending and the re-send
carries the same key (a batch: the same members too), which the provider answers with the original write (Xero
keeps Idempotency-Key responses for a day). Nothing is sent twice, nothing lost.
"""
# No `from __future__ import annotations`: Dagster reads the context and config annotations at definition time.

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import select

from providers.base import Provider, PushOutcome, PushRequest, PushSpec
from providers.errors import (
    ProviderAuthError,
    ProviderConflict,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
)
from providers.schema import defaults_from_schema
from vrtx_pipelines.config import get_settings
from vrtx_pipelines.connect.context import ConnectionContext
from vrtx_pipelines.connect.http import provider_client, redact
from vrtx_pipelines.connect.provider_connection import governor_for, provider_connection
from vrtx_pipelines.credentials.vault import vault_from_settings
from vrtx_pipelines.db.models import CanonicalRecord, PushOutbox, TenantIntegration, utcnow
from vrtx_pipelines.db.session import session_factory
from vrtx_pipelines.errors import IntegrationError
from vrtx_pipelines.events.record import EventType, record_event
from vrtx_pipelines.mapping import pull_mapper, push_overrides
from vrtx_pipelines.push.batches import batch_idempotency_key, batch_size, members_elsewhere, new_batch_key
from vrtx_pipelines.push.conflicts import PushPlan, agree, plan_push, provider_record, record_written, supersede_held
from vrtx_pipelines.push.outbox import (
    CREATING,
    PushStatus,
    RetryPolicy,
    claim,
    due_batches,
    finish,
    link,
    linked_external_id,
    pending_creation,
    push_event,
    records_entity,
    retry_together,
    waits_for_earlier,
)
from vrtx_pipelines.records.store import canonical_json

POLICY = RetryPolicy()
SAMPLES_KEPT = 5
# A run takes every push of its connection due when it claims, not only those it was launched for, and then what
# became due while it sent, for up to DRAIN_S: a burst is one run (one process start), not a queue of runs each
# started after the one before it ended (push runs of a connection go one at a time).
DRAIN_S = 60.0
CLAIM_LIMIT = 500  # pushes claimed at once: the outcomes of a claim are held in one session
T = TypeVar("T")


class _Deferred(Exception):
    """The push depends on another push not finished yet: try again later, without spending an attempt."""


class _Refused(Exception):
    """The push cannot be sent as asked (e.g. an update of a record that was never linked): final."""


@dataclass
class BatchReport:
    claimed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # taken or finished by another run already
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # entity -> done / failed / retrying
    samples: list[dict[str, Any]] = field(default_factory=list)
    api_calls: int = 0
    batched_calls: int = 0  # calls that carried several pushes

    def count(self, entity: str, outcome: str) -> None:
        per_entity = self.counts.setdefault(entity, {"done": 0, "failed": 0, "retrying": 0})
        per_entity[outcome] = per_entity.get(outcome, 0) + 1  # "held" only appears when a push was held


def send_batch(
    provider: Provider,
    connection_id: int,
    push_ids: Iterable[int],
    run_id: str,
    log: Any,
    policy: RetryPolicy = POLICY,
    *,
    drain_s: float = DRAIN_S,
) -> BatchReport:
    """Claim the rows for ``run_id`` with every other push of the connection due by then, send them in order and
    record each outcome as it comes; then claim and send what became due meanwhile, for up to ``drain_s``."""
    spec = provider.pushes
    if spec is None:
        raise IntegrationError(f"{provider.name} takes no pushes")
    settings = get_settings()
    vault = vault_from_settings(settings)
    wanted = sorted(set(push_ids))
    report = BatchReport()
    outbox = session_factory()()
    # Token refreshes commit their own session: keep them apart from the outbox rows' transactions.
    auth_session = session_factory()()
    try:
        rows = claim(outbox, connection_id, [*wanted, *_due(outbox, provider.slug, connection_id)], run_id)
        report.claimed = [row.id for row in rows]
        report.skipped = [i for i in wanted if i not in set(report.claimed)]
        if not rows:
            return report
        connection = outbox.get_one(TenantIntegration, connection_id)
        connection_settings = {**defaults_from_schema(provider.config_schema), **(connection.settings or {})}
        with provider_client(settings) as http:
            ctx = ConnectionContext(session=auth_session, vault=vault, settings=settings)
            assert provider.client is not None  # Provider requires one with pushes
            governor = governor_for(settings, provider)
            target = provider.client(provider_connection(ctx, provider, connection_id, http, governor))
            sender = _Sender(provider, spec, outbox, connection, connection_settings, policy, report, log)
            deadline = time.monotonic() + drain_s
            while rows:
                sender.send_all(target, rows)
                if time.monotonic() >= deadline:
                    break  # what is still due goes to the next run: one run never holds the connection for long
                rows = claim(outbox, connection_id, _due(outbox, provider.slug, connection_id), run_id)
                report.claimed += [row.id for row in rows]
            report.api_calls = int(target.stats["api_calls"])
            governor.flush()
    finally:
        outbox.close()
        auth_session.close()
    return report


def _due(session: Any, slug: str, connection_id: int) -> list[int]:
    """The connection's pushes due now (a provider call's members together, as the sensor would hand them over)."""
    batches = due_batches(session, slug, utcnow(), batch_size=CLAIM_LIMIT, connection_id=connection_id)
    return [push_id for batch in batches for push_id in batch.push_ids]


@dataclass
class _Sender:
    provider: Provider
    spec: PushSpec
    session: Any
    connection: TenantIntegration
    settings: Mapping[str, Any]
    policy: RetryPolicy
    report: BatchReport
    log: Any

    def send_all(self, target: Any, rows: Sequence[PushOutbox]) -> None:
        """Send the claimed rows in order. Creates the provider batches gather into calls of up to its batch size;
        anything else is sent only once what came before it is settled, so nothing overtakes an earlier push. The
        members of a batch sent before go again exactly as they went."""
        gathered: list[tuple[PushOutbox, PushRequest]] = []
        resent: set[str] = set()
        for row in rows:
            if row.batch_key is not None:
                if row.batch_key not in resent:
                    resent.add(row.batch_key)
                    self._flush(target, gathered)
                    self._resend(target, [member for member in rows if member.batch_key == row.batch_key])
                continue
            size = batch_size(self.spec, row)
            if size == 1 or (gathered and gathered[0][0].entity_type != row.entity_type):
                self._flush(target, gathered)
            if size == 1:
                self._send_one(target, row)
                continue
            request = self._request_for(target, row)
            if request is not None:
                gathered.append((row, request))
                if len(gathered) >= size:
                    self._flush(target, gathered)
        self._flush(target, gathered)

    def _request_for(self, target: Any, row: PushOutbox) -> PushRequest | None:
        """A create's request for a batch; None when it is settled without one, or sent on its own because it got
        linked meanwhile (then it is an update)."""
        request = self._guarded([row], partial(self._prepared, target, row))
        if request is None:
            self.session.commit()
        elif request.external_id is not None:
            self._send_one(target, row, request)
            return None
        return request

    def _flush(self, target: Any, gathered: list[tuple[PushOutbox, PushRequest]]) -> None:
        """Send the gathered creates: one alone as any push, several as a batch whose membership is committed
        before the call."""
        members, gathered[:] = list(gathered), []
        if len(members) == 1:
            self._send_one(target, *members[0])
        elif members:
            key = new_batch_key()
            for row, _request in members:
                row.batch_key = key
            self.session.commit()
            self._send_batch(target, key, members)

    def _resend(self, target: Any, rows: list[PushOutbox]) -> None:
        """A batch sent before: the same members, in the same order, under the same key."""
        if members_elsewhere(self.session, rows[0]):
            self._guarded(rows, partial(_defer, f"waiting for the other pushes of batch {rows[0].batch_key}"))
            self.session.commit()
            return
        members = [(row, request) for row in rows if (request := self._request_for(target, row)) is not None]
        if members:
            self._send_batch(target, str(rows[0].batch_key), members)

    def _send_batch(self, target: Any, key: str, members: list[tuple[PushOutbox, PushRequest]]) -> None:
        """One call for the members; each ends on its own answer, and their outcomes are committed together."""
        assert self.spec.push_many is not None
        rows = [row for row, _request in members]
        requests = [request for _row, request in members]
        self.report.batched_calls += 1
        results = self._guarded(
            rows, partial(self.spec.push_many, target, requests, batch_idempotency_key(self.connection.id, key, rows))
        )
        if results is not None and len(results) != len(rows):
            answered = f"{self.provider.name} answered {len(results)} of {len(rows)} pushes"
            self._fail_all(rows, answered, 200)
        elif results is not None:
            for row, result in zip(rows, results, strict=True):
                if isinstance(result, ProviderRejected):
                    self._failed(row, result.message, result.status)
                else:
                    self._done(row, result)
        self.session.commit()

    def _send_one(self, target: Any, row: PushOutbox, request: PushRequest | None = None) -> None:
        def call() -> PushOutcome | None:
            sending = request or self._prepared(target, row)
            if sending is None:
                return None
            try:
                return self.spec.push(target, sending)
            except ProviderConflict:
                # The record changed at the provider since the version the write named: plan again from what it
                # holds now (two-way sync may merge or hold), then once more; a second conflict fails the push.
                plan = self._plan(target, row, current=True)
                if plan.request is None:
                    self._not_sent(row, plan)
                    return None
                return self.spec.push(target, plan.request)

        outcome = self._guarded([row], call)
        if outcome is not None:
            self._done(row, outcome)  # a failure to record it leaves the row running: resent under its key
        self.session.commit()

    def _prepared(self, target: Any, row: PushOutbox) -> PushRequest | None:
        """The request to send for the row, or None when two-way sync settled it without a call."""
        blocker = waits_for_earlier(self.session, row)
        if blocker is not None:
            raise _Deferred(f"waiting for push {blocker.id} of the same {row.entity_type} to finish")
        plan = self._plan(target, row)
        if plan.request is None:
            self._not_sent(row, plan)
        return plan.request

    def _guarded(self, rows: list[PushOutbox], step: Callable[[], T]) -> T | None:
        """``step()``, or None once its failure has settled every row by its kind: final, or all retried later
        together. The caller commits."""
        try:
            return step()
        except _Deferred as exc:
            self._retry(rows, str(exc), None, None, counts_as_attempt=False)
        except _Refused as exc:
            self._fail_all(rows, str(exc), None)
        except ProviderRejected as exc:
            self._fail_all(rows, exc.message, exc.status)
        except ProviderAuthError as exc:
            message = f"{self.provider.name} refused the connection's credentials: {exc.message}; reconnect it"
            self._fail_all(rows, message, exc.status)
        except ProviderRateLimited as exc:
            self._retry(rows, exc.message, exc.status, exc.retry_after or self.policy.max_delay_s)
        except ProviderError as exc:  # unavailable: 5xx, timeouts, unreachable
            self._retry(rows, exc.message, exc.status, None)
        except IntegrationError as exc:  # e.g. the connection expired while refreshing its token
            self._fail_all(rows, exc.message, None)
        except Exception as exc:  # noqa: BLE001 -- an unforeseen failure is retried (capped), never lost
            self.log.error(f"push {rows[0].id} ({rows[0].entity_type}) raised {type(exc).__name__}")
            self._retry(rows, f"unexpected error while pushing ({type(exc).__name__})", None, None)
        return None

    def _plan(self, target: Any, row: PushOutbox, *, current: bool = False) -> PushPlan:
        """Two-way sync's say on the push: as asked, merged with the provider's own changes, or not at all.
        ``current``: the provider's record is read first, and the push names its version."""
        for closed in supersede_held(self.session, row):
            event = push_event(self.provider.slug, closed)
            record_event(self.session, self.connection.tenant_id, EventType.PUSH_FINISHED, self.provider.slug, event)
        request = self._request(row)
        entity_type = records_entity(self.provider, row.entity_type)
        read: list[Mapping[str, Any] | None] = []

        def provider_current() -> Mapping[str, Any] | None:
            assert request.external_id is not None
            if not read:
                read.append(
                    provider_record(
                        self.session, self.provider, target, self.connection.id, entity_type, request.external_id
                    )
                )
            return read[0]

        if current and request.external_id is not None:
            found = provider_current()
            request = replace(request, version=str(found["version"]) if found and found.get("version") else None)

        plan = plan_push(self.session, self.connection, row, request, entity_type, self.settings, provider_current)
        if plan.request is not None and plan.request.payload is not request.payload:
            # A merged or resolved record: the tenant's push mappings apply to what is actually sent.
            overrides = push_overrides(self.session, self.connection.id, entity_type, plan.request.payload)
            plan = replace(plan, request=replace(plan.request, overrides=overrides))
        return plan

    def _not_sent(self, row: PushOutbox, plan: PushPlan) -> None:
        if plan.held is not None:
            conflict = plan.held
            row.status, row.next_attempt_at = PushStatus.HELD, None
            row.error_message = (
                f"held: the {row.entity_type} changed in VRTX and in {self.provider.name} "
                f"({', '.join(conflict.fields)}); resolve conflict {conflict.id}"
            )
            self._settled(row, "held")
            return
        agreed = dict(plan.agreed or {})
        if row.vrtx_id:
            agree(
                self.session,
                self.connection.id,
                records_entity(self.provider, row.entity_type),
                row.vrtx_id,
                agreed,
                row.payload,
            )
        version = agreed.get("updated_at")
        external_id = str(agreed.get("external_id") or "") or None
        finish(
            row,
            PushStatus.DONE,
            external_id=external_id,
            remote_version=str(version) if version else None,
            error=plan.note,
        )
        self._settled(row, "done")

    def _request(self, row: PushOutbox) -> PushRequest:
        external_id = self._target_id(row)
        return PushRequest(
            entity=row.entity_type,
            operation=row.operation,
            payload=dict(row.payload),
            external_id=external_id,
            idempotency_key=provider_idempotency_key(row),
            settings=self.settings,
            linked_id=self._linked_id,
            # The tenant's push mappings; MappingFailed (an IntegrationError) fails the push with the mapping named.
            overrides=push_overrides(
                self.session, self.connection.id, records_entity(self.provider, row.entity_type), row.payload
            ),
            version=self._stored_version(row, external_id),
        )

    def _stored_version(self, row: PushOutbox, external_id: str | None) -> str | None:
        """The provider's version of the record as last pulled or written (canonical ``version``)."""
        if external_id is None:
            return None
        data = self.session.scalar(
            select(CanonicalRecord.data).where(
                CanonicalRecord.tenant_integration_id == self.connection.id,
                CanonicalRecord.entity_type == records_entity(self.provider, row.entity_type),
                CanonicalRecord.external_id == external_id,
            )
        )
        version = data.get("version") if isinstance(data, Mapping) else None
        return str(version) if version else None

    def _target_id(self, row: PushOutbox) -> str | None:
        """The provider record the push writes to: the linked one (a create of a record linked meanwhile updates
        it rather than making a second), the one the payload names, or none for a new record."""
        entity_type = records_entity(self.provider, row.entity_type)
        linked = linked_external_id(self.session, self.connection.id, entity_type, row.vrtx_id) if row.vrtx_id else None
        target = linked or row.payload.get("external_id")
        if target is None and row.operation not in CREATING:
            name = f"{row.entity_type} {row.vrtx_id}"
            if pending_creation(self.session, self.connection.id, row.entity_type, row.vrtx_id or ""):
                raise _Deferred(f"waiting for {name} to be created in {self.provider.name}")
            raise _Refused(f"{name} is not linked to a {self.provider.name} record: push a create or upsert first")
        return str(target) if target else None

    def _linked_id(self, entity: str, vrtx_id: str) -> str | None:
        """A reference's provider id (an invoice's contact); waits while that record's create is in flight."""
        push_entity = self._push_entity(entity)
        found = linked_external_id(
            self.session, self.connection.id, records_entity(self.provider, push_entity), vrtx_id
        )
        if found is None and pending_creation(self.session, self.connection.id, push_entity, vrtx_id):
            raise _Deferred(f"waiting for {push_entity} {vrtx_id} to be created in {self.provider.name}")
        return found

    def _push_entity(self, entity: str) -> str:
        for name in self.spec.entities:
            if entity in (name, records_entity(self.provider, name)):
                return name
        return entity

    def _written(self, entity_type: str, outcome: PushOutcome) -> Mapping[str, Any] | None:
        """The written record as a pull would store it: through the tenant's pull mappings when it has any."""
        pulls = self.provider.pulls
        if outcome.raw is None or pulls is None or entity_type not in pulls.mappers:
            return outcome.canonical
        try:
            return canonical_json(
                pull_mapper(self.session, self.provider, self.connection.id, entity_type)(outcome.raw)
            )
        except ValueError:
            return outcome.canonical

    def _done(self, row: PushOutbox, outcome: PushOutcome) -> None:
        entity_type = records_entity(self.provider, row.entity_type)
        if row.vrtx_id:
            link(
                self.session,
                self.connection.id,
                entity_type,
                row.vrtx_id,
                outcome.external_id,
                remote_version=outcome.remote_version,
                remote_hash=outcome.remote_hash,
            )
        record_written(
            self.session, self.connection.id, entity_type, row, self._written(entity_type, outcome), outcome.external_id
        )
        # push() returns only when the provider accepted the write (2xx).
        finish(
            row,
            PushStatus.DONE,
            external_id=outcome.external_id,
            remote_version=outcome.remote_version,
            provider_status=200,
        )
        if len(self.report.samples) < SAMPLES_KEPT:
            self.report.samples.append({"push_id": row.id, "response": redact(dict(outcome.response_sample))})
        self._settled(row, "done")

    def _failed(self, row: PushOutbox, message: str, status: int | None) -> None:
        finish(row, PushStatus.FAILED, provider_status=status, error=message)
        self._settled(row, "failed")

    def _fail_all(self, rows: list[PushOutbox], message: str, status: int | None) -> None:
        for row in rows:
            self._failed(row, message, status)

    def _retry(
        self,
        rows: list[PushOutbox],
        message: str,
        status: int | None,
        retry_after: float | None,
        *,
        counts_as_attempt: bool = True,
    ) -> None:
        retried = retry_together(
            rows,
            self.policy,
            message,
            provider_status=status,
            retry_after_s=retry_after,
            counts_as_attempt=counts_as_attempt,
        )
        for row in rows:
            self._settled(row, "retrying" if retried else "failed")

    def _settled(self, row: PushOutbox, outcome: str) -> None:
        """Tell the CRM of a finished push; the caller commits (one commit for a batch's outcomes)."""
        if row.status in (PushStatus.DONE, PushStatus.FAILED):
            event = push_event(self.provider.slug, row)
            record_event(self.session, self.connection.tenant_id, EventType.PUSH_FINISHED, self.provider.slug, event)
        self.report.count(row.entity_type, outcome)
        self.log.info(f"push {row.id} {row.entity_type} {row.operation}: {outcome}")


def _defer(reason: str) -> None:
    raise _Deferred(reason)


def provider_idempotency_key(row: PushOutbox) -> str:
    """The key the provider sees: the same for every attempt of this push and never shared with another push,
    even across reset databases (Xero remembers keys for a day), and short enough for any provider (Xero: 128)."""
    identity = f"{row.tenant_integration_id}:{row.id}:{row.idempotency_key}:{row.request_hash}"
    return f"vrtx-{hashlib.sha256(identity.encode()).hexdigest()}"
