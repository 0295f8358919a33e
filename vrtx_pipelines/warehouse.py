"""Where pulls land: each (provider, tenant) has its own dlt pipeline, pipelines directory and dataset.

Shared names silently lose data and shared state corrupts under concurrency, so nothing but ``names.dataset_name``
names them. Pulls write here; re-deriving canonical records reads the same dataset back.

The pipeline's local working directory (dlt's state, pending packages) is read without starting dlt by the pull's
probe (``vrtx_pipelines.pull.probe``), which also keeps, beside it, a digest of each whole listing last loaded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
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
    path = settings.home / "warehouse" / name / "warehouse.duckdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    return dlt.destinations.duckdb(str(path))


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
