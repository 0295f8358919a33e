"""On-demand pulls in this process (`vrtx sync`), recorded in the Dagster instance like any other run."""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Sequence

from dagster import AssetKey, DagsterInstance, materialize

from vrtx_pipelines.cli.devserver import dagster_environment, project_root
from vrtx_pipelines.config import Settings, reset_settings_cache
from vrtx_pipelines.errors import IntegrationNotAvailable, ValidationFailed
from vrtx_pipelines.names import Trigger, asset_path, partitions_name, pull_run_config, run_tags
from vrtx_pipelines.orchestration.pulls import build_pull_assets
from vrtx_pipelines.platform import prepare_database
from vrtx_pipelines.registry import get_provider
from vrtx_pipelines.synclog.mirror import run_failure_message


def sync_now(
    settings: Settings,
    slug: str,
    tenant_id: str,
    entities: Sequence[str],
    *,
    full: bool = False,
    progress: bool = False,
    instance: DagsterInstance | None = None,
) -> list[tuple[str, str, str, str, str]]:
    """Materialise the provider's pull assets for one tenant; returns a row per entity for display."""
    provider = get_provider(slug)
    if provider.pulls is None or not provider.connectable:
        raise IntegrationNotAvailable(f"{provider.name} has no pulls yet")
    unknown = sorted(set(entities) - set(provider.pulls.entities))
    if unknown:
        raise ValidationFailed(f"{provider.name} pulls {', '.join(provider.pulls.entities)}; not {', '.join(unknown)}")
    prepare_database(settings)
    selection = [AssetKey(asset_path(slug, e)) for e in (entities or provider.pulls.entities)]
    if progress:
        os.environ["VRTX_PULL_PROGRESS"] = "tqdm"
        reset_settings_cache()
    owned = instance is None
    if instance is None:
        os.environ.update(dagster_environment(settings, project_root()))
        # Two `vrtx sync` started together on a fresh SQLite instance would both create its tables.
        (settings.home / "locks").mkdir(parents=True, exist_ok=True)
        with open(settings.home / "locks" / "dagster-instance.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            instance = DagsterInstance.get()
            instance.get_runs(limit=1)
            instance.get_dynamic_partitions(partitions_name(slug))
    try:
        if tenant_id not in instance.get_dynamic_partitions(partitions_name(slug)):
            instance.add_dynamic_partitions(partitions_name(slug), [tenant_id])
        result = materialize(
            [build_pull_assets(provider, provider.pulls)],
            instance=instance,
            partition_key=tenant_id,
            selection=selection,
            # Dagster's console logger narrates every event at DEBUG (and a failure as a stack trace): the
            # command shows the progress bars and its table; the run's whole story stays in the instance.
            run_config={
                **pull_run_config(slug, full=full),
                "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
            },
            tags=run_tags(slug, tenant_id, trigger=Trigger.CLI),
            raise_on_error=False,
        )
        if not result.success:
            # The same sentence the sync log records: the failure's own description, no stack trace.
            message = run_failure_message(instance, result.run_id).removeprefix(f"{provider.name}: ")
            if progress:
                sys.stderr.write("\n")  # the error goes below the progress bars, not after them on their line
            raise IntegrationNotAvailable(f"the {provider.name} sync failed: {message}")
    finally:
        if owned:
            instance.dispose()
    rows = []
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization  # type: ignore[union-attr]
        meta = {k: v.value for k, v in materialization.metadata.items()}
        rows.append(
            (
                materialization.asset_key.path[-1],
                str(meta.get("rows_loaded", 0)),
                str(meta.get("records_changed", 0)),
                str(meta.get("pages", 0)),
                str(meta.get("cursor_after", "")),
            )
        )
    return rows
