"""Where pulls land: each (provider, tenant) has its own dlt pipeline, pipelines directory and dataset.

Shared names silently lose data and shared state corrupts under concurrency, so nothing but ``names.dataset_name``
names them. Pulls write here; re-deriving canonical records reads the same dataset back.
"""

from __future__ import annotations

from typing import Any

import dlt
from sqlalchemy.engine import make_url

from vrtx_pipelines.config import Settings
from vrtx_pipelines.names import dataset_name


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
    """The tenant's pipeline for ``slug``, its state kept under ``VRTX_HOME/dlt``."""
    name = dataset_name(slug, tenant_id)
    options: dict[str, Any] = {"progress": settings.pull_progress} if settings.pull_progress else {}
    return dlt.pipeline(
        pipeline_name=name,
        pipelines_dir=str(settings.home / "dlt" / name),
        destination=warehouse_destination(settings, name),
        dataset_name=name,
        **options,
    )
