"""The pull assets: one ``@dlt_assets`` per provider over its ``<slug>_tenants`` partitions, keyed
``<slug>/<entity>``; a run of them pulls one tenant (``vrtx_pipelines.pull.run``). And the batch job the schedule
runs: one op pulling many tenants (``vrtx_pipelines.pull.batch``), materialising the same assets per tenant
partition."""
# No `from __future__ import annotations`: Dagster reads the context and config annotations at definition time.

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    AssetSpec,
    BackfillPolicy,
    Config,
    JobDefinition,
    OpExecutionContext,
    in_process_executor,
    job,
    op,
)
from dagster_dlt import DagsterDltTranslator, dlt_assets
from dagster_dlt.translator import DltResourceTranslatorData

from providers.base import Provider, PullSpec
from providers.kit.streams import build_source
from vrtx_pipelines.config import get_settings
from vrtx_pipelines.credentials.vault import vault_from_settings
from vrtx_pipelines.names import (
    BATCH_KEY_TAG,
    MAX_RETRIES_TAG,
    asset_path,
    definitions_pipeline_name,
    pull_batch_job_name,
    pull_batch_op_name,
    pull_op_name,
)
from vrtx_pipelines.orchestration.partitions import tenants_partitions
from vrtx_pipelines.pull.batch import FAILED, SYNCED, run_batch
from vrtx_pipelines.pull.run import metadata_values, run_pull


class PullTranslator(DagsterDltTranslator):
    """Asset keys ``[<slug>, <resource>]`` in the provider's group, e.g. ``xero/invoices``."""

    def __init__(self, slug: str) -> None:
        self.slug = slug

    def get_asset_spec(self, data: DltResourceTranslatorData) -> AssetSpec:
        spec = super().get_asset_spec(data)
        key = AssetKey(asset_path(self.slug, data.resource.name))
        return spec.replace_attributes(key=key, group_name=self.slug, deps=[])


class PullConfig(Config):
    full: bool = False  # forget the incremental cursors and reload everything


def _definition_pipeline(slug: str) -> Any:
    # Only describes the assets; runs build their own per-tenant pipeline.
    return dlt.pipeline(
        pipeline_name=definitions_pipeline_name(slug),
        pipelines_dir=str(Path(tempfile.gettempdir()) / "vrtx-dlt-definitions"),
        destination="duckdb",
        dataset_name=slug,
    )


def build_pull_assets(provider: Provider, spec: PullSpec) -> Any:
    translator = PullTranslator(provider.slug)

    @dlt_assets(
        dlt_source=build_source(provider.slug, spec.streams, None, title=provider.name),
        dlt_pipeline=_definition_pipeline(provider.slug),
        name=pull_op_name(provider.slug),
        dagster_dlt_translator=translator,
        partitions_def=tenants_partitions(provider.slug),
        backfill_policy=BackfillPolicy.multi_run(1),
    )
    def _pull(context: AssetExecutionContext, config: PullConfig) -> Iterator[Any]:
        yield from run_pull(context, provider, spec, translator, context.partition_key, full=config.full)

    return _pull


class PullBatchConfig(Config):
    tenants: list[str]  # claimed by the run's batch key (tag vrtx/batch)


def build_pull_batch_job(provider: Provider, spec: PullSpec) -> JobDefinition:
    """``<slug>_batch_sync``: one op that pulls the tenants of its config and materialises each tenant's entities
    under its partition; executed in the run's own process (a step process per run would double its cost)."""
    slug = provider.slug

    @op(
        name=pull_batch_op_name(slug),
        out={},  # events only: each tenant's materialisations and observations
        description=f"Pulls a batch of tenants connected to {provider.name}, a few at a time; each tenant's "
        "entities are materialised under its partition, a tenant that fails is observed failed (the others go on).",
    )
    def _batch(context: OpExecutionContext, config: PullBatchConfig) -> Iterator[Any]:
        settings = get_settings()
        key = context.run.tags.get(BATCH_KEY_TAG, "")
        counts = {"synced": 0, "failed": 0, "skipped": 0}
        outcomes = run_batch(
            provider, spec, config.tenants, key, context.run_id,
            settings=settings, vault=vault_from_settings(settings), threads=settings.pull_batch_threads,
        )  # fmt: skip
        for outcome in outcomes:
            counts[outcome.status] += 1
            if outcome.status == SYNCED:
                for entity, figures in outcome.entities.items():
                    yield AssetMaterialization(
                        asset_key=asset_path(slug, entity),
                        partition=outcome.tenant_id,
                        metadata=metadata_values(figures),
                    )
            elif outcome.status == FAILED:
                context.log.warning(f"pull failed provider={slug} tenant={outcome.tenant_id}: {outcome.error}")
                for entity in outcome.selected:
                    yield AssetObservation(
                        asset_key=asset_path(slug, entity),
                        partition=outcome.tenant_id,
                        metadata={"tenant": outcome.tenant_id, "status": "failed", "error": outcome.error or ""},
                    )
            else:
                context.log.info(f"pull skipped provider={slug} tenant={outcome.tenant_id}: {outcome.error}")
        context.log.info(f"batch {key}: " + " ".join(f"{name}={n}" for name, n in counts.items()))

    @job(
        name=pull_batch_job_name(slug),
        executor_def=in_process_executor,
        tags={MAX_RETRIES_TAG: "0"},  # a failed tenant is retried alone by the schedule, never its whole batch
        description=f"Scheduled incremental pulls of many {provider.name} tenants in one run.",
    )
    def _job() -> None:
        _batch()

    return _job
