"""One tenant's pull: its provider's dlt source run into its own warehouse dataset, its canonical records applied.

Each (provider, tenant) gets its own dlt pipeline name, ``pipelines_dir`` and dataset (``vrtx_pipelines.warehouse``):
shared names silently lose data and shared state corrupts under concurrency. Canonical records are captured while
extracting (``vrtx_pipelines.pull.spool``) and committed to the app database only after the warehouse load
succeeded. The Dagster assets that run it are ``vrtx_pipelines.orchestration.pulls``.
"""
# No `from __future__ import annotations`: Dagster reads the context annotations at definition time.

import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, Failure, MaterializeResult, MetadataValue
from dagster_dlt import DagsterDltResource, DagsterDltTranslator

from providers.base import Provider, PullSpec
from providers.errors import ProviderError
from providers.kit.streams import build_source
from vrtx_pipelines.config import get_settings
from vrtx_pipelines.connect.context import ConnectionContext, Status, get_connection
from vrtx_pipelines.connect.http import provider_client
from vrtx_pipelines.connect.provider_connection import governor_for, provider_connection
from vrtx_pipelines.credentials.vault import vault_from_settings
from vrtx_pipelines.db.models import utcnow
from vrtx_pipelines.db.session import session_factory
from vrtx_pipelines.errors import IntegrationError
from vrtx_pipelines.mapping import mapped_mappers
from vrtx_pipelines.pull.spool import CanonicalApply, OnLoadStart, RecordSpool
from vrtx_pipelines.pull.tuning import environment, fewer_collections, normalize_environment
from vrtx_pipelines.records.store import ApplyReport
from vrtx_pipelines.warehouse import pipeline_for


def incremental_cursors(pipeline: Any, source_name: str) -> dict[str, Any]:
    """Each resource's incremental ``last_value`` as dlt keeps it in the pipeline state."""
    resources = pipeline.state.get("sources", {}).get(source_name, {}).get("resources", {})
    cursors: dict[str, Any] = {}
    for name, state in resources.items():
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


def run_pull(
    context: AssetExecutionContext,
    provider: Provider,
    spec: PullSpec,
    translator: DagsterDltTranslator,
    tenant_id: str,
    *,
    full: bool = False,
) -> Iterator[MaterializeResult[Any]]:
    settings = get_settings()
    vault = vault_from_settings(settings)
    session = session_factory()()
    started = time.monotonic()
    try:
        connection = get_connection(session, tenant_id, provider.slug)
        if connection is None or connection.status not in (Status.CONNECTED, Status.ERROR):
            state = connection.status if connection else "never connected"
            raise Failure(description=f"{provider.name} is not connected for tenant {tenant_id} ({state})")
        ctx = ConnectionContext(session=session, vault=vault, settings=settings)
        governor = governor_for(settings, provider)
        selected = [key.path[-1] for key in context.selected_asset_keys]
        with provider_client(settings) as http, tempfile.TemporaryDirectory(prefix="vrtx-spool-") as spool_dir:
            assert provider.client is not None  # Provider requires one with pulls
            client = provider.client(provider_connection(ctx, provider, connection.id, http, governor))
            source = build_source(provider.slug, spec.streams, client, selected, title=provider.name)
            # The tenant's pull mappings follow the provider's mapper (nothing is wrapped when it has none).
            spool = RecordSpool(Path(spool_dir), mapped_mappers(session, connection.id, spec.mappers))
            for name in selected:  # entities without a canonical form are counted, not mapped
                capture = spool.capture(name) if name in spec.mappers else spool.count(name)
                source.resources[name].add_map(capture)
            pipeline = pipeline_for(settings, provider.slug, tenant_id)
            pipeline.sync_destination()
            cursors_before = incremental_cursors(pipeline, source.name)
            run_args: dict[str, Any] = {"refresh": "drop_sources"} if full else {}
            if settings.uses_postgres:
                run_args["loader_file_format"] = "csv"  # COPY, several times faster than INSERT VALUES
            first_sync = full or not cursors_before
            canonical = CanonicalApply(session_factory(), connection.id, spool)
            if settings.uses_postgres:  # on SQLite, one writer at a time: the records wait for the load instead
                pipeline.collector = OnLoadStart(pipeline.collector, canonical.start)
            session.commit()  # no transaction of this session may hold what the canonical apply will lock
            try:
                with environment(**normalize_environment(first_sync)), fewer_collections():
                    results = list(
                        DagsterDltResource().run(
                            context,
                            dlt_source=source,
                            dlt_pipeline=pipeline,
                            dagster_dlt_translator=translator,
                            **run_args,
                        )
                    )
            except BaseException:
                canonical.abandon()
                raise
            cursors_after = incremental_cursors(pipeline, source.name)
            step_ms = step_durations_ms(pipeline)
            waited = time.monotonic()
            applied = canonical.finish()
            step_ms["canonical"] = canonical.apply_ms
            step_ms["canonical_after_load"] = round((time.monotonic() - waited) * 1000)
        connection.last_sync_at = utcnow()
        connection.last_error = None
        session.commit()
        counters = client.stats
        for result in results:
            entity = result.asset_key.path[-1] if result.asset_key else ""
            report = applied.get(entity, ApplyReport())
            yield MaterializeResult(
                asset_key=result.asset_key,
                metadata={
                    **(result.metadata or {}),
                    "tenant": tenant_id,
                    "sync_type": "full" if full or entity not in cursors_before else "incremental",
                    # This run's rows of the entity's own table (dlt's normalize counts differ by file format).
                    "rows_loaded": MetadataValue.int(spool.rows.get(entity, 0)),
                    "records_changed": MetadataValue.int(report.changed),
                    "records_without_canonical_form": MetadataValue.int(spool.skipped.get(entity, 0)),
                    "pages": MetadataValue.int(counters["pages"].get(entity, 0)),
                    "api_calls": MetadataValue.int(counters["api_calls"]),
                    "rate_limited_waits": MetadataValue.int(governor.stats.rate_limited),
                    "paced_wait_s": MetadataValue.float(round(governor.stats.waited_s, 3)),
                    "cursor_before": cursors_before.get(entity, ""),
                    "cursor_after": cursors_after.get(entity, ""),
                    "duration_ms": MetadataValue.int(round((time.monotonic() - started) * 1000)),
                    # Where the time went, for the run as a whole (all entities share one dlt run).
                    **{f"{step}_ms": MetadataValue.int(ms) for step, ms in step_ms.items()},
                },
            )
    except Exception as exc:
        # dlt wraps what a resource raised (PipelineStepFailed): find the provider's own error inside.
        cause = _platform_error_in(exc)
        if cause is None:
            raise
        session.rollback()
        _record_error(session, tenant_id, provider, cause.message)
        raise Failure(description=f"{provider.name}: {cause.message}", allow_retries=False) from exc
    finally:
        session.close()


def _platform_error_in(exc: BaseException) -> ProviderError | IntegrationError | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ProviderError | IntegrationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _record_error(session: Any, tenant_id: str, provider: Provider, message: str) -> None:
    connection = get_connection(session, tenant_id, provider.slug)
    if connection is not None:
        connection.last_error = message
        session.commit()
