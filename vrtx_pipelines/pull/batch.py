"""A batch: one run pulling many tenants of one provider, the schedule's unit of work (``orchestration.schedules``).

Each tenant keeps what a run of its own had: its dlt pipeline and dataset, its pull lock, its canonical records
committed after its load, its sync-log rows (written here, per tenant, as its pull ends: the run is shared, the
rows are the tenant's), its materialisations (``partition=tenant``, so Dagster shows per-tenant partitions).
One tenant's failure is that tenant's: it is logged failed with the provider's words, its claim is released with
a failure counted (the schedule retries it after a back-off, in whichever batch comes next), and its batch's
others carry on. Tenants are pulled ``threads`` at a time: the work is mostly waiting on the provider and the
database, and the threads overlap those waits.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from providers.base import Provider, PullSpec
from vrtx_pipelines.config import Settings
from vrtx_pipelines.connect.context import get_connection
from vrtx_pipelines.connect.http import provider_client
from vrtx_pipelines.credentials.vault import Vault
from vrtx_pipelines.db.models import utcnow
from vrtx_pipelines.db.session import session_factory
from vrtx_pipelines.names import Trigger
from vrtx_pipelines.pull.bulk_gc import BULK_THRESHOLDS
from vrtx_pipelines.pull.fleet import release
from vrtx_pipelines.pull.lock import pull_lock
from vrtx_pipelines.pull.tenant import PULLABLE, platform_error_in, pull_tenant
from vrtx_pipelines.synclog.mirror import PULL, RunSummary, pull_outcome, scrub, write_summary

SYNCED, FAILED, SKIPPED = "synced", "failed", "skipped"
log = logging.getLogger(__name__)


@dataclass
class TenantOutcome:
    tenant_id: str
    status: str  # synced | failed | skipped
    entities: dict[str, dict[str, Any]] = field(default_factory=dict)  # synced: each entity's figures
    selected: list[str] = field(default_factory=list)
    error: str | None = None  # failed: the provider's words; skipped: why
    duration_ms: int = 0
    settle_ms: int = 0  # writing its sync-log rows, events and connection state


def selected_entities(spec: PullSpec, settings: dict[str, Any] | None) -> list[str]:
    """The entities the connection syncs (its ``entities`` setting), in the provider's order."""
    wanted = (settings or {}).get("entities", spec.entities)
    return [entity for entity in spec.entities if entity in wanted]


@contextmanager
def batch_process_tuning() -> Iterator[None]:
    """For the batch as a whole (a single pull sets these around itself, which threads cannot each do): dlt
    normalises in process (the pulls are small; workers would cost more than their rows) and the collector is
    tuned for bulk work (``pull.bulk_gc``)."""
    saved = os.environ.get("NORMALIZE__WORKERS")
    previous = gc.get_threshold()
    os.environ["NORMALIZE__WORKERS"] = "1"
    gc.set_threshold(*BULK_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        if saved is None:
            os.environ.pop("NORMALIZE__WORKERS", None)
        else:
            os.environ["NORMALIZE__WORKERS"] = saved


def run_batch(
    provider: Provider,
    spec: PullSpec,
    tenants: Sequence[str],
    key: str,
    run_id: str,
    *,
    settings: Settings,
    vault: Vault,
    threads: int,
) -> Iterator[TenantOutcome]:
    """Pull each of ``tenants`` (claimed by batch ``key``), yielding each one's outcome as it ends."""
    with (
        batch_process_tuning(),
        provider_client(settings) as http,
        ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix=f"{provider.slug}-batch") as pool,
    ):
        futures = [
            pool.submit(pull_one, provider, spec, tenant, key, run_id, settings=settings, vault=vault, http=http)
            for tenant in tenants
        ]
        for future in as_completed(futures):
            yield future.result()


def pull_one(
    provider: Provider,
    spec: PullSpec,
    tenant_id: str,
    key: str,
    run_id: str,
    *,
    settings: Settings,
    vault: Vault,
    http: Any,
) -> TenantOutcome:
    """One tenant of a batch; never raises: whatever goes wrong is this tenant's outcome."""
    started, started_at = time.monotonic(), utcnow()
    session = session_factory()()
    connection_id: int | None = None
    selected: list[str] = []
    try:
        connection = get_connection(session, tenant_id, provider.slug)
        if connection is None:
            return TenantOutcome(tenant_id, SKIPPED, error="no longer connected")
        connection_id = connection.id
        if connection.sync_claim != key:
            # Released meanwhile (its run was thought lost) and perhaps claimed again: not this batch's now.
            return TenantOutcome(tenant_id, SKIPPED, error="no longer claimed by this batch")
        selected = selected_entities(spec, connection.settings)
        if connection.status not in PULLABLE or not selected:
            release(session, connection.id, key, failed=False)
            session.commit()
            return TenantOutcome(tenant_id, SKIPPED, error=f"nothing to pull ({connection.status})")
        session.commit()
        with pull_lock(settings, connection.id, wait=False) as held:
            if not held:
                # A webhook's or an on-demand pull of this connection is running: it brings it up to date.
                release(session, connection.id, key, failed=False)
                session.commit()
                return TenantOutcome(tenant_id, SKIPPED, error="another pull of this connection is running")
            pulled = pull_tenant(
                provider, spec, tenant_id, selected, _plain_dlt_run,
                session=session, settings=settings, vault=vault, http=http, process_tuning=False,
            )  # fmt: skip
        outcome = TenantOutcome(tenant_id, SYNCED, entities=pulled.entities, selected=selected)
        outcome.duration_ms = round((time.monotonic() - started) * 1000)
        settling = time.monotonic()
        _settle(session, provider, outcome, connection.id, key, run_id, started_at)
        outcome.settle_ms = round((time.monotonic() - settling) * 1000)
        return outcome
    except Exception as exc:  # one tenant's failure must not end its batch (logged, counted, released)
        session.rollback()
        cause = platform_error_in(exc)
        if cause is None:  # not the provider's words: a fault of ours, worth its traceback in the run's log
            log.exception("pull failed provider=%s tenant=%s", provider.slug, tenant_id)
        words = cause.message if cause is not None else f"{type(exc).__name__}: {exc}"
        outcome = TenantOutcome(tenant_id, FAILED, selected=selected, error=scrub(f"{provider.name}: {words}"))
        outcome.duration_ms = round((time.monotonic() - started) * 1000)
        if connection_id is not None:
            try:
                _settle(session, provider, outcome, connection_id, key, run_id, started_at)
            except Exception:  # noqa: BLE001 -- the claim expires with the run; the outcome still reports it
                session.rollback()
        return outcome
    finally:
        session.close()


def _plain_dlt_run(source: Any, pipeline: Any, run_args: dict[str, Any]) -> list[Any]:
    return [pipeline.run(source, **run_args)]


def _settle(
    session: Any,
    provider: Provider,
    outcome: TenantOutcome,
    connection_id: int,
    key: str,
    run_id: str,
    started_at: datetime,
) -> None:
    """The tenant's sync-log rows, its connection's state and events, and its claim's release: one transaction."""
    failed = outcome.status == FAILED
    base = {"trigger": Trigger.SCHEDULE.value, "partition": outcome.tenant_id, "batch": key}
    outcomes = [
        pull_outcome(entity, outcome.entities.get(entity), base, full=False, failure=outcome.error)
        for entity in outcome.selected
    ]
    if outcomes:
        summary = RunSummary(
            run_id=run_id,
            slug=provider.slug,
            tenant_id=outcome.tenant_id,
            direction=PULL,
            succeeded=not failed,
            outcomes=outcomes,
            finished_at=datetime.now(UTC),
            duration_ms=outcome.duration_ms,
            trigger=Trigger.SCHEDULE.value,
            error_message=outcome.error,
            connection_id=connection_id,
        )
        write_summary(session, summary, started_at)
    release(session, connection_id, key, failed=failed)
    session.commit()
