"""Where pulls land: each (provider, tenant) has its own dlt pipeline, pipelines directory and dataset.

Shared names silently lose data and shared state corrupts under concurrency, so nothing but ``names.dataset_name``
names them. Pulls write here; re-deriving canonical records reads the same dataset back.

The pipeline's local working directory (dlt's state, pending packages) is read without starting dlt by the pull's
probe (``vrtx_pipelines.pull.probe``), which also keeps, beside it, a digest of each whole listing last loaded.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vrtx_pipelines.config import Settings
from vrtx_pipelines.names import dataset_name

LISTING_DIGESTS = "vrtx-listing-digests.json"
# dlt's working-directory layout: packages extracted but not normalised, normalised but not loaded.
_PENDING = (("normalize", "extracted"), ("load", "normalized"), ("load", "new"))


def warehouse_destination(settings: Settings, name: str) -> Any:
    """PostgreSQL (a schema per dataset) when the platform runs on it; else one duckdb file per dataset."""
    import dlt  # dlt is imported where a pipeline is built: the probe and the API read names without it
    from sqlalchemy.engine import make_url

    if settings.uses_postgres:
        url = make_url(settings.sqlalchemy_url).set(drivername="postgresql")
        return dlt.destinations.postgres(credentials=url.render_as_string(hide_password=False))
    # The file's name is duckdb's catalog name: it must differ from the dataset (schema) name.
    path = _duckdb_dir(settings, name) / "warehouse.duckdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    return dlt.destinations.duckdb(str(path))


def _duckdb_dir(settings: Settings, name: str) -> Path:
    return settings.home / "warehouse" / name


def pipelines_dir(settings: Settings, slug: str, tenant_id: str) -> Path:
    name = dataset_name(slug, tenant_id)
    return settings.home / "dlt" / name


def working_dir(settings: Settings, slug: str, tenant_id: str) -> Path:
    """dlt's working directory of the tenant's pipeline (``pipeline.working_dir``)."""
    return pipelines_dir(settings, slug, tenant_id) / dataset_name(slug, tenant_id)


def pipeline_for(settings: Settings, slug: str, tenant_id: str) -> Any:
    """The tenant's pipeline for ``slug``, its state kept under ``VRTX_HOME/dlt``."""
    import dlt

    name = dataset_name(slug, tenant_id)
    options: dict[str, Any] = {"progress": settings.pull_progress} if settings.pull_progress else {}
    return dlt.pipeline(
        pipeline_name=name,
        pipelines_dir=str(pipelines_dir(settings, slug, tenant_id)),
        destination=warehouse_destination(settings, name),
        dataset_name=name,
        **options,
    )


@dataclass(frozen=True)
class DroppedDataset:
    tables: int = 0  # every table dropped, dlt's own (_dlt_loads, _dlt_pipeline_state ...) included
    rows: int = 0  # the rows of the provider's data tables among them


def drop_dataset(settings: Settings, slug: str, tenant_id: str) -> DroppedDataset:
    """Drop the tenant's dataset for ``slug`` and dlt's staging dataset beside it (PostgreSQL: their schemas;
    embedded: the duckdb file), and the pipeline's local state. The dlt state kept in the dataset goes with it, so
    a later pull starts over instead of resuming from cursors of data that no longer exists."""
    name = dataset_name(slug, tenant_id)
    if not settings.uses_postgres and not (_duckdb_dir(settings, name) / "warehouse.duckdb").exists():
        shutil.rmtree(pipelines_dir(settings, slug, tenant_id), ignore_errors=True)
        return DroppedDataset()
    tables = rows = 0
    pipeline = pipeline_for(settings, slug, tenant_id)
    with pipeline.sql_client() as client:
        for dataset in (client.dataset_name, client.staging_dataset_name):
            with client.with_alternative_dataset_name(dataset):
                if not client.has_dataset():
                    continue
                names = [
                    str(row[0])
                    for row in client.execute_sql(
                        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", dataset
                    )
                ]
                for table in (table for table in names if not table.startswith("_dlt")):
                    qualified = client.make_qualified_table_name(table)
                    rows += int(client.execute_sql(f"SELECT count(*) FROM {qualified}")[0][0])  # noqa: S608
                tables += len(names)
                client.drop_dataset()
    shutil.rmtree(pipelines_dir(settings, slug, tenant_id), ignore_errors=True)
    if not settings.uses_postgres:
        shutil.rmtree(_duckdb_dir(settings, name), ignore_errors=True)
    return DroppedDataset(tables, rows)


def local_state(settings: Settings, slug: str, tenant_id: str) -> dict[str, Any] | None:
    """The pipeline's local dlt state, when this machine has one and dlt has nothing left to load; else None."""
    directory = working_dir(settings, slug, tenant_id)
    for parts in _PENDING:
        pending = directory.joinpath(*parts)
        if pending.is_dir() and any(pending.iterdir()):
            return None
    try:
        state = json.loads((directory / "state.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def listing_digests(settings: Settings, slug: str, tenant_id: str) -> dict[str, str]:
    try:
        digests = json.loads((pipelines_dir(settings, slug, tenant_id) / LISTING_DIGESTS).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return {str(k): str(v) for k, v in digests.items()} if isinstance(digests, dict) else {}


def save_listing_digests(settings: Settings, slug: str, tenant_id: str, digests: Mapping[str, str]) -> None:
    """After a load succeeded: the digests of the whole listings it loaded (written atomically)."""
    if not digests:
        return
    directory = pipelines_dir(settings, slug, tenant_id)
    directory.mkdir(parents=True, exist_ok=True)
    merged = {**listing_digests(settings, slug, tenant_id), **digests}
    scratch = directory / f".{LISTING_DIGESTS}.{os.getpid()}"
    scratch.write_text(json.dumps(merged, sort_keys=True))
    scratch.replace(directory / LISTING_DIGESTS)
