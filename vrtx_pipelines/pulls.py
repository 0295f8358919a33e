"""Pulls: a provider's dlt source materialised as tenant-partitioned Dagster assets, one factory for all.

Each (provider, tenant) gets its own dlt pipeline name, ``pipelines_dir`` and dataset: shared names silently
lose data and shared state corrupts under concurrency. Canonical records are captured while extracting and
written to the app database only after the warehouse load succeeded.
"""
# No `from __future__ import annotations`: Dagster reads the context and config annotations at definition time.

import gc
import hashlib
import multiprocessing
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dlt
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    BackfillPolicy,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
)
from dagster_dlt import DagsterDltResource, DagsterDltTranslator, dlt_assets
from dagster_dlt.translator import DltResourceTranslatorData
from dlt.common.runtime.collector import NullCollector
from sqlalchemy.engine import make_url

from providers.base import Provider, PullConnection, PullSpec
from providers.errors import ProviderError
from vrtx_pipelines.bulk_gc import BULK_THRESHOLDS
from vrtx_pipelines.config import Settings, get_settings
from vrtx_pipelines.connections import ConnectionContext, Status, get_connection
from vrtx_pipelines.credentials import read_credentials
from vrtx_pipelines.db.models import TenantIntegration, utcnow
from vrtx_pipelines.db.session import session_factory
from vrtx_pipelines.errors import IntegrationError
from vrtx_pipelines.governor import RateGovernor
from vrtx_pipelines.http import provider_client
from vrtx_pipelines.mapping import mapped_mappers
from vrtx_pipelines.partitions import tenants_partitions
from vrtx_pipelines.records import ApplyReport, apply_spool, canonical_json, spool_line
from vrtx_pipelines.vault import vault_from_settings

# dlt's intermediate files live a few seconds on local disk: compressing them cost more than a tenth of a
# pull's time (measured with bench/pull.py), and saves nothing that matters.
os.environ.setdefault("DATA_WRITER__DISABLE_COMPRESSION", "true")
# Files of at most this many rows: a large pull's rows can then be normalised by several processes and loaded
# by several COPYs at once (see normalize_workers).
os.environ.setdefault("DATA_WRITER__FILE_MAX_ITEMS", "5000")


def normalize_workers(first_sync: bool) -> int:
    """Processes for dlt's normalize step, its slowest on a large pull: one per core for a first (full) sync;
    incremental syncs normalise in process, where starting workers would cost more than their few rows."""
    configured = os.environ.get("VRTX_NORMALIZE_WORKERS")
    if configured and configured.isdigit() and int(configured) > 0:
        return int(configured)
    return max(1, min(os.cpu_count() or 1, 4)) if first_sync else 1


def normalize_environment(first_sync: bool) -> dict[str, str]:
    """dlt's normalize settings for a pull: its workers, and where they start from.

    Inside a Dagster run dlt would spawn each worker (forking a process that has threads is unsafe), and a spawned
    worker spends half a second importing dlt. Forked from a fork server instead (single-threaded, so forking it
    is safe), workers start with dlt imported and the collector tuned (``vrtx_pipelines.normalize_workers``):
    normalize 11.8 -> 9.0-9.6 s in bench/pull.py.
    """
    settings = {"NORMALIZE__WORKERS": str(normalize_workers(first_sync))}
    if "forkserver" in multiprocessing.get_all_start_methods():
        # Read when the server starts (at the first pull of the process), which is also when it loads the module.
        multiprocessing.set_forkserver_preload(["vrtx_pipelines.normalize_workers"])
        settings["NORMALIZE__START_METHOD"] = "forkserver"
    return settings


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    """dlt reads its configuration from the environment when each step starts."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """For the pull only, the collector is tuned for bulk work (``vrtx_pipelines.bulk_gc``): the objects that exist
    before it are frozen out of collection and young ones are collected less often."""
    previous = gc.get_threshold()
    frozen_before = gc.get_freeze_count() > 0  # a serving process froze its startup objects: leave them so
    gc.freeze()
    gc.set_threshold(*BULK_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        if not frozen_before:
            gc.unfreeze()


def dataset_name(slug: str, tenant_id: str) -> str:
    """The tenant's own pipeline name and dataset (schema), e.g. ``xero_acme_co_5d41402a``.

    Readable, and injective: destinations normalise names ('-' and '_' alike, double underscores collapse),
    so a hash of the exact tenant id keeps "acme-co" and "acme_co" from ever sharing a dataset.
    """
    digest = hashlib.sha256(tenant_id.encode()).hexdigest()[:8]
    readable = re.sub(r"[^a-z0-9]+", "_", tenant_id.lower()).strip("_")
    return f"{slug}_{readable}_{digest}"


def warehouse_destination(settings: Settings, name: str) -> Any:
    """PostgreSQL (a schema per dataset) when the platform runs on it; else one duckdb file per dataset."""
    if settings.uses_postgres:
        url = make_url(settings.sqlalchemy_url).set(drivername="postgresql")
        return dlt.destinations.postgres(credentials=url.render_as_string(hide_password=False))
    # The file's name is duckdb's catalog name: it must differ from the dataset (schema) name.
    path = settings.home / "warehouse" / name / "warehouse.duckdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    return dlt.destinations.duckdb(str(path))


def pipeline_for(settings: Settings, slug: str, tenant_id: str) -> Any:
    name = dataset_name(slug, tenant_id)
    options: dict[str, Any] = {"progress": settings.pull_progress} if settings.pull_progress else {}
    return dlt.pipeline(
        pipeline_name=name,
        pipelines_dir=str(settings.home / "dlt" / name),
        destination=warehouse_destination(settings, name),
        dataset_name=name,
        **options,
    )


class PullTranslator(DagsterDltTranslator):
    """Asset keys ``[<slug>, <resource>]`` in the provider's group, e.g. ``xero/invoices``."""

    def __init__(self, slug: str) -> None:
        self.slug = slug

    def get_asset_spec(self, data: DltResourceTranslatorData) -> AssetSpec:
        spec = super().get_asset_spec(data)
        return spec.replace_attributes(key=AssetKey([self.slug, data.resource.name]), group_name=self.slug, deps=[])


class PullConfig(Config):
    full: bool = False  # forget the incremental cursors and reload everything


class RecordSpool:
    """Canonical records captured during extraction, kept on disk until the load has succeeded."""

    def __init__(self, directory: Path, mappers: Mapping[str, Callable[[Mapping[str, Any]], Any]]) -> None:
        self.directory = directory
        self.mappers = mappers
        self._files: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.skipped: dict[str, int] = {}
        self.rows: dict[str, int] = {}

    def capture(self, entity: str) -> Callable[[Any], Any]:
        mapper = self.mappers[entity]

        def _capture(item: Any) -> Any:
            self.rows[entity] = self.rows.get(entity, 0) + 1
            try:
                line = spool_line(canonical_json(mapper(item)))
            except ValueError:
                # No canonical form (e.g. a deleted payment): the raw row still loads; the run counts it.
                with self._lock:
                    self.skipped[entity] = self.skipped.get(entity, 0) + 1
                return item
            with self._lock:
                handle = self._files.get(entity)
                if handle is None:
                    handle = self._files[entity] = self.path(entity).open("w", encoding="utf-8", newline="")
                handle.write(line)
            return item

        return _capture

    def entities(self) -> list[str]:
        for handle in self._files.values():
            handle.close()
        return list(self._files)

    def path(self, entity: str) -> Path:
        """The entity's spool file: one ``records.spool_line`` per record."""
        return self.directory / f"{entity}.tsv"


class CanonicalApply:
    """Applies a pull's spooled canonical records in a thread while dlt loads the warehouse (PostgreSQL: the two
    are mostly database work and the load leaves a core idle), and commits them only once the load succeeded.

    ``start`` is called when dlt's load step begins (extraction, hence the spool, is complete by then); ``finish``
    commits and returns the per-entity reports; ``abandon`` rolls back. Without a ``start`` (on SQLite, one writer
    at a time), ``finish`` starts the apply itself, after the load.
    """

    def __init__(self, sessions: Callable[[], Any], connection_id: int, spool: RecordSpool) -> None:
        self.sessions = sessions
        self.connection_id = connection_id
        self.spool = spool
        self.reports: dict[str, ApplyReport] = {}
        self.apply_ms = 0
        self._error: BaseException | None = None
        self._commit = False
        self._verdict = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="vrtx-canonical-apply", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        session = self.sessions()
        try:
            started = time.monotonic()
            for entity in self.spool.entities():
                self.reports[entity] = apply_spool(session, self.connection_id, entity, self.spool.path(entity))
            self.apply_ms = round((time.monotonic() - started) * 1000)
            self._verdict.wait()
            if self._commit:
                session.commit()
            else:
                session.rollback()
        except BaseException as exc:  # noqa: BLE001 -- handed to the run's thread by finish()
            self._error = exc
            session.rollback()
        finally:
            session.close()

    def finish(self) -> dict[str, ApplyReport]:
        self.start()
        self._commit = True
        self._verdict.set()
        assert self._thread is not None
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.reports

    def abandon(self) -> None:
        self._verdict.set()
        if self._thread is not None:
            self._thread.join()


class _OnLoadStart(NullCollector):
    """Calls ``hook`` when dlt's load step starts, and otherwise reports to the pipeline's own progress display."""

    def __init__(self, inner: Any, hook: Callable[[], None]) -> None:
        self.inner = inner
        self.hook = hook

    def update(self, *args: Any, **kwargs: Any) -> None:
        self.inner.update(*args, **kwargs)

    def __call__(self, step: str) -> Any:
        return self.inner(step)

    def on_start_trace_step(self, trace: Any, step: Any, pipeline: Any) -> None:
        if step == "load":
            self.hook()
        self.inner.on_start_trace_step(trace, step, pipeline)

    def on_start_trace(self, *args: Any, **kwargs: Any) -> None:
        self.inner.on_start_trace(*args, **kwargs)

    def on_end_trace_step(self, *args: Any, **kwargs: Any) -> None:
        self.inner.on_end_trace_step(*args, **kwargs)

    def on_end_trace(self, *args: Any, **kwargs: Any) -> None:
        self.inner.on_end_trace(*args, **kwargs)

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self.inner  # a pipeline copied by dlt keeps the plain display, not this run's hook


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


def _definition_pipeline(slug: str) -> Any:
    # Only describes the assets; runs build their own per-tenant pipeline.
    return dlt.pipeline(
        pipeline_name=f"{slug}__definitions",
        pipelines_dir=str(Path(tempfile.gettempdir()) / "vrtx-dlt-definitions"),
        destination="duckdb",
        dataset_name=slug,
    )


def build_pull_assets(provider: Provider, spec: PullSpec) -> Any:
    translator = PullTranslator(provider.slug)

    @dlt_assets(
        dlt_source=spec.make_source(None, spec.entities),
        dlt_pipeline=_definition_pipeline(provider.slug),
        name=f"{provider.slug}_pull",
        dagster_dlt_translator=translator,
        partitions_def=tenants_partitions(provider.slug),
        backfill_policy=BackfillPolicy.multi_run(1),
    )
    def _pull(context: AssetExecutionContext, config: PullConfig) -> Iterator[Any]:
        yield from run_pull(context, provider, spec, translator, context.partition_key, full=config.full)

    return _pull


def run_pull(
    context: AssetExecutionContext,
    provider: Provider,
    spec: PullSpec,
    translator: PullTranslator,
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
        limits = provider.rate_limits if settings.pacing == "published" else ()
        governor = RateGovernor(limits, max_concurrent=spec.max_concurrent_calls)
        selected = [key.path[-1] for key in context.selected_asset_keys]
        with provider_client(settings) as http, tempfile.TemporaryDirectory(prefix="vrtx-spool-") as spool_dir:
            pull_connection = provider_connection(ctx, provider, connection.id, http, governor)
            source = spec.make_source(pull_connection, selected)
            # The tenant's pull mappings follow the provider's mapper (nothing is wrapped when it has none).
            spool = RecordSpool(Path(spool_dir), mapped_mappers(session, connection.id, spec.mappers))
            for name in selected:
                if name in spec.mappers:
                    source.resources[name].add_map(spool.capture(name))
            pipeline = pipeline_for(settings, provider.slug, tenant_id)
            pipeline.sync_destination()
            cursors_before = incremental_cursors(pipeline, source.name)
            run_args: dict[str, Any] = {"refresh": "drop_sources"} if full else {}
            if settings.uses_postgres:
                run_args["loader_file_format"] = "csv"  # COPY, several times faster than INSERT VALUES
            first_sync = full or not cursors_before
            canonical = CanonicalApply(session_factory(), connection.id, spool)
            if settings.uses_postgres:  # on SQLite, one writer at a time: the records wait for the load instead
                pipeline.collector = _OnLoadStart(pipeline.collector, canonical.start)
            session.commit()  # no transaction of this session may hold what the canonical apply will lock
            try:
                with _environment(**normalize_environment(first_sync)), _fewer_collections():
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
        counters = pull_connection.stats()
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
                    "pages": MetadataValue.int(counters.get(f"pages:{entity}", 0)),
                    "api_calls": MetadataValue.int(counters.get("api_calls", 0)),
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


def provider_connection(
    ctx: ConnectionContext, provider: Provider, connection_id: int, http: Any, governor: RateGovernor
) -> PullConnection:
    from vrtx_pipelines import oauth  # oauth imports the connection rules this module also uses

    connection = ctx.session.get_one(TenantIntegration, connection_id)
    meta = connection.meta or {}
    oauth_based = provider.auth.oauth2 is not None
    credentials = {} if oauth_based else read_credentials(ctx.vault, connection, provider.slug)
    # A pull pages several resources at once, each from its own thread, and every call reads the token through
    # this one session: a Session is not thread-safe, so the threads take turns.
    session_turn = threading.Lock()

    def token(force: bool = False) -> str:
        if not oauth_based:
            return ""
        with session_turn:
            return oauth.access_token(ctx, connection_id, force=force)

    return PullConnection(
        http=http,
        url=lambda url: ctx.settings.provider_url(provider.slug, url),
        external_tenant_id=meta.get("external_account_id"),
        access_token=token,
        refresh_access_token=lambda: token(force=True),
        governor=governor,
        credentials={k: str(v) for k, v in credentials.items()},
    )


def pull_asset_keys(provider: Provider, entities: Sequence[str] | None = None) -> list[AssetKey]:
    assert provider.pulls is not None
    return [AssetKey([provider.slug, e]) for e in (entities or provider.pulls.entities)]
