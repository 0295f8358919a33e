"""One tenant's pull, whichever run does it (a single-connection asset run, ``pull.run``, or a batch, ``pull.batch``).

Each (provider, tenant) gets its own dlt pipeline name, ``pipelines_dir`` and dataset (``vrtx_pipelines.warehouse``):
shared names silently lose data and shared state corrupts under concurrency. First the probe
(``vrtx_pipelines.pull.probe``) asks the provider what changed, with the cursors of the tenant's dlt state: when
nothing did, the pull ends there. Otherwise dlt runs, on the listings the probe already read; canonical records
are captured while extracting (``vrtx_pipelines.pull.spool``) and committed to the app database only after the
warehouse load succeeded; records a pull loaded but could not commit are re-derived first by the next one
(``vrtx_pipelines.pull.catch_up``).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from providers.base import Provider, PullSpec
from providers.errors import ProviderError
from providers.kit.streams import RESUME_KEY, build_source
from vrtx_pipelines.config import Settings
from vrtx_pipelines.connect.context import ConnectionContext, Status, get_connection
from vrtx_pipelines.connect.provider_connection import governor_for, provider_connection
from vrtx_pipelines.credentials.vault import Vault
from vrtx_pipelines.db.models import TenantIntegration, utcnow
from vrtx_pipelines.db.session import session_factory
from vrtx_pipelines.errors import IntegrationError, NotConnected
from vrtx_pipelines.mapping import mapped_mappers
from vrtx_pipelines.pull.catch_up import catch_up, mark_behind
from vrtx_pipelines.pull.probe import Probe, Replay, listing_digest, probe, row_line, stored_unchanged
from vrtx_pipelines.records.store import ApplyReport
from vrtx_pipelines.warehouse import listing_digests, local_state, save_listing_digests

# (dlt source, tenant pipeline, pipeline.run keyword arguments) -> what the caller's dlt run returned.
Load = Callable[[Any, Any, dict[str, Any]], list[Any]]
PULLABLE = (Status.CONNECTED, Status.ERROR)


@dataclass
class Pulled:
    """A finished pull: each entity's figures (its materialisation's metadata; the sync log reads them)."""

    connection_id: int
    entities: dict[str, dict[str, Any]]
    results: list[Any] = field(default_factory=list)  # what the caller's dlt run returned (none when probed)
    probed_unchanged: bool = False


def incremental_cursors(pipeline: Any, source_name: str) -> dict[str, Any]:
    """Each resource's incremental ``last_value`` as dlt keeps it in the pipeline state, or the position its change
    feed resumes from (QuickBooks' change data capture time, Graph's delta link, Stripe's last event)."""
    resources = pipeline.state.get("sources", {}).get(source_name, {}).get("resources", {})
    cursors: dict[str, Any] = {}
    for name, state in resources.items():
        if state.get(RESUME_KEY):
            cursors[name] = str(state[RESUME_KEY])
        for spec in (state.get("incremental") or {}).values():
            if isinstance(spec, Mapping) and "last_value" in spec:
                cursors[name] = str(spec["last_value"])
    return cursors


def step_durations_ms(pipeline: Any) -> dict[str, int]:
    """How long dlt's extract, normalize and load steps of the last run took."""
    trace = pipeline.last_trace
    durations = {}
    for step in trace.steps if trace else []:
        if step.step in ("extract", "normalize", "load") and step.started_at and step.finished_at:
            durations[step.step] = round((step.finished_at - step.started_at).total_seconds() * 1000)
    return durations


def open_connection(session: Session, provider: Provider, tenant_id: str) -> TenantIntegration:
    connection = get_connection(session, tenant_id, provider.slug)
    if connection is None or connection.status not in PULLABLE:
        state = connection.status if connection else "never connected"
        raise NotConnected(f"{provider.name} is not connected for tenant {tenant_id} ({state})")
    return connection


def pull_tenant(
    provider: Provider,
    spec: PullSpec,
    tenant_id: str,
    selected: Sequence[str],
    load: Load,
    *,
    session: Session,
    settings: Settings,
    vault: Vault,
    http: Any,
    full: bool = False,
    process_tuning: bool = True,
) -> Pulled:
    """Pull ``selected`` for the tenant; commits its canonical records and ``last_sync_at`` in ``session``.

    Raises what the provider or dlt raised (the caller decides what a failure means for its run).
    ``process_tuning``: set dlt's normalize workers and the collector around the load (a process pulling one
    tenant at a time; a batch sets them once for all its threads)."""
    started = time.monotonic()
    connection = open_connection(session, provider, tenant_id)
    caught_up = catch_up(session, settings, provider, tenant_id, connection, selected)
    ctx = ConnectionContext(session=session, vault=vault, settings=settings)
    governor = governor_for(settings, provider)
    try:
        assert provider.client is not None  # Provider requires one with pulls
        client = provider.client(provider_connection(ctx, provider, connection.id, http, governor))
        mappers = mapped_mappers(session, connection.id, spec.mappers)
        looked: Probe | None = None
        probe_ms = 0
        state = None if full or not settings.pull_probe else local_state(settings, provider.slug, tenant_id)
        if state is not None:
            probed = time.monotonic()
            digests = listing_digests(settings, provider.slug, tenant_id)
            known = stored_unchanged(session, connection.id, mappers)
            looked = probe(client, spec.streams, selected, state, provider.slug, digests, known)
            probe_ms = round((time.monotonic() - probed) * 1000)
        if looked is not None and looked.unchanged:
            connection.last_sync_at = utcnow()
            connection.last_error = None
            session.commit()
            stats = client.stats
            entities = {
                entity: {
                    "tenant": tenant_id,
                    "sync_type": "incremental",
                    "rows_loaded": 0,
                    "records_changed": caught_up.get(entity, 0),
                    **_caught_up(caught_up, entity),
                    "records_without_canonical_form": 0,
                    "pages": stats["pages"].get(entity, 0),
                    "api_calls": stats["api_calls"],
                    "rate_limited_waits": governor.stats.rate_limited,
                    "paced_wait_s": round(governor.stats.waited_s, 3),
                    "cursor_before": looked.cursors.get(entity, ""),
                    "cursor_after": looked.cursors.get(entity, ""),
                    "duration_ms": round((time.monotonic() - started) * 1000),
                    "probe_ms": probe_ms,
                }
                for entity in selected
            }
            return Pulled(connection.id, entities, probed_unchanged=True)
        replayed = client if looked is None else Replay(client, looked.pages)
        return _load(
            provider, spec, tenant_id, selected, load, connection, replayed,
            governor, mappers, session=session, settings=settings, full=full, started=started, probe_ms=probe_ms,
            process_tuning=process_tuning, caught_up=caught_up,
        )  # fmt: skip
    finally:
        governor.flush()  # what this run spent, for the connection's next process to count


def _load(
    provider: Provider,
    spec: PullSpec,
    tenant_id: str,
    selected: Sequence[str],
    load: Load,
    connection: TenantIntegration,
    client: Any,
    governor: Any,
    mappers: Mapping[str, Any],
    *,
    session: Session,
    settings: Settings,
    full: bool,
    started: float,
    probe_ms: int,
    process_tuning: bool,
    caught_up: Mapping[str, int],
) -> Pulled:
    from vrtx_pipelines.pull.spool import CanonicalApply, OnLoadStart, RecordSpool
    from vrtx_pipelines.pull.tuning import environment, fewer_collections, normalize_environment
    from vrtx_pipelines.warehouse import pipeline_for

    with tempfile.TemporaryDirectory(prefix="vrtx-spool-") as spool_dir:
        source = build_source(provider.slug, spec.streams, client, selected, title=provider.name)
        # The tenant's pull mappings follow the provider's mapper (nothing is wrapped when it has none).
        spool = RecordSpool(Path(spool_dir), mappers)
        whole: dict[str, list[str]] = {}  # the rows (``row_line``) of each whole listing, for its digest
        for stream in spec.streams:
            if stream.name not in selected:
                continue
            resource = source.resources[stream.name]
            resource.add_map(spool.capture(stream.name) if stream.name in spec.mappers else spool.count(stream.name))
            if not stream.incremental:
                rows = whole[stream.name] = []
                source.resources[stream.name].add_map(_keep(rows))
        pipeline = pipeline_for(settings, provider.slug, tenant_id)
        pipeline.sync_destination()
        cursors_before = incremental_cursors(pipeline, source.name)
        run_args: dict[str, Any] = {"refresh": "drop_sources"} if full else {}
        if settings.uses_postgres:
            run_args["loader_file_format"] = "csv"  # COPY, several times faster than INSERT VALUES
        first_sync = full or not cursors_before
        marked = [entity for entity in selected if entity in mappers]
        canonical = CanonicalApply(
            session_factory(),
            connection.id,
            spool,
            marked,
            relisted=lambda: client.stats["full_listings"],
            listing_began=utcnow(),
        )
        if settings.uses_postgres:  # on SQLite, one writer at a time: the records wait for the load instead
            pipeline.collector = OnLoadStart(pipeline.collector, canonical.start)
        # Until the records commit, they are behind what the load commits (its cursors with it).
        mark_behind(connection, marked)
        session.commit()  # no transaction of this session may hold what the canonical apply will lock
        try:
            if process_tuning:
                with environment(**normalize_environment(first_sync)), fewer_collections():
                    results = load(source, pipeline, run_args)
            else:
                results = load(source, pipeline, run_args)
        except BaseException:
            canonical.abandon()
            raise
        cursors_after = incremental_cursors(pipeline, source.name)
        step_ms = step_durations_ms(pipeline)
        waited = time.monotonic()
        applied = canonical.finish()
        step_ms["canonical"] = canonical.apply_ms
        step_ms["canonical_after_load"] = round((time.monotonic() - waited) * 1000)
        if probe_ms:
            step_ms["probe"] = probe_ms
    save_listing_digests(settings, provider.slug, tenant_id, {n: listing_digest(rows) for n, rows in whole.items()})
    connection.last_sync_at = utcnow()
    connection.last_error = None
    session.commit()
    stats = client.stats
    entities = {}
    for entity in selected:
        report = applied.get(entity, ApplyReport())
        # A stream that had to start over (a change token past the provider's window) is a full sync, and why.
        reason = stats["full_listings"].get(entity)
        entities[entity] = {
            "tenant": tenant_id,
            "sync_type": "full" if full or entity not in cursors_before or reason else "incremental",
            **({"full_sync_reason": reason} if reason else {}),
            # This run's rows of the entity's own table (dlt's normalize counts differ by file format).
            "rows_loaded": spool.rows.get(entity, 0),
            "records_changed": report.changed + caught_up.get(entity, 0),
            **_caught_up(caught_up, entity),
            "records_without_canonical_form": spool.skipped.get(entity, 0),
            "pages": stats["pages"].get(entity, 0),
            "api_calls": stats["api_calls"],
            "rate_limited_waits": governor.stats.rate_limited,
            "paced_wait_s": round(governor.stats.waited_s, 3),
            "cursor_before": cursors_before.get(entity, ""),
            "cursor_after": cursors_after.get(entity, ""),
            "duration_ms": round((time.monotonic() - started) * 1000),
            # Where the time went, for the run as a whole (all entities share one dlt run).
            **{f"{step}_ms": ms for step, ms in step_ms.items()},
        }
    return Pulled(connection.id, entities, results=results)


def platform_error_in(exc: BaseException) -> ProviderError | IntegrationError | None:
    """The provider's or the platform's own error behind ``exc`` (dlt wraps what a resource raised)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ProviderError | IntegrationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _caught_up(caught_up: Mapping[str, int], entity: str) -> dict[str, int]:
    """The records of ``entity`` this run re-derived from the warehouse first (``pull.catch_up``), when any."""
    return {"records_caught_up": caught_up[entity]} if caught_up.get(entity) else {}


def _keep(lines: list[str]) -> Callable[[Any], Any]:
    def keep(item: Any) -> Any:
        lines.append(row_line(item))  # now: dlt may add to the row later
        return item

    return keep
