"""The pull assets: one ``@dlt_assets`` per provider over its ``<slug>_tenants`` partitions, keyed
``<slug>/<entity>``; each run pulls one tenant (``vrtx_pipelines.pull.run``)."""
# No `from __future__ import annotations`: Dagster reads the context and config annotations at definition time.

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
from dagster import AssetExecutionContext, AssetKey, AssetSpec, BackfillPolicy, Config
from dagster_dlt import DagsterDltTranslator, dlt_assets
from dagster_dlt.translator import DltResourceTranslatorData

from providers.base import Provider, PullSpec
from providers.kit.streams import build_source
from vrtx_pipelines.names import asset_path, definitions_pipeline_name, pull_op_name
from vrtx_pipelines.orchestration.partitions import tenants_partitions
from vrtx_pipelines.pull.run import run_pull


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
