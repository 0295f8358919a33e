"""A single-connection pull run (first sync, webhook, on demand, `vrtx sync`): the pull assets' body, one tenant's
pull (``vrtx_pipelines.pull.tenant``) run through dagster-dlt, so each asset's materialisation carries dlt's own
metadata beside ours. The Dagster assets that run it are ``vrtx_pipelines.orchestration.pulls``; scheduled pulls
of many tenants at once are ``vrtx_pipelines.pull.batch``.
"""
# No `from __future__ import annotations`: Dagster reads the context annotations at definition time.

from collections.abc import Iterator
from typing import Any

from dagster import AssetExecutionContext, AssetKey, Failure, MaterializeResult, MetadataValue
from dagster_dlt import DagsterDltResource, DagsterDltTranslator

from providers.base import Provider, PullSpec
from vrtx_pipelines.config import get_settings
from vrtx_pipelines.connect.context import get_connection
from vrtx_pipelines.connect.http import provider_client
from vrtx_pipelines.credentials.vault import vault_from_settings
from vrtx_pipelines.db.session import session_factory
from vrtx_pipelines.errors import NotConnected
from vrtx_pipelines.names import asset_path
from vrtx_pipelines.pull.lock import pull_lock
from vrtx_pipelines.pull.tenant import open_connection, platform_error_in, pull_tenant

# Figures that are counts or durations (shown as numbers in Dagster), beside the strings.
_FLOATS = ("paced_wait_s",)


def metadata_values(figures: dict[str, Any]) -> dict[str, Any]:
    """A pull's figures as Dagster metadata values."""
    values: dict[str, Any] = {}
    for key, value in figures.items():
        if key in _FLOATS:
            values[key] = MetadataValue.float(float(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            values[key] = MetadataValue.int(value)
        else:
            values[key] = value
    return values


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
    session = session_factory()()
    selected = [key.path[-1] for key in context.selected_asset_keys]

    def load(source: Any, pipeline: Any, run_args: dict[str, Any]) -> list[Any]:
        dlt_run = DagsterDltResource().run(
            context, dlt_source=source, dlt_pipeline=pipeline, dagster_dlt_translator=translator, **run_args
        )
        return list(dlt_run)

    try:
        try:
            connection = open_connection(session, provider, tenant_id)
        except NotConnected as exc:
            raise Failure(description=exc.message) from exc
        # A batch pulling this connection right now finishes first (a few seconds); then this run pulls after it.
        with pull_lock(settings, connection.id, wait=True), provider_client(settings) as http:
            pulled = pull_tenant(
                provider, spec, tenant_id, selected, load,
                session=session, settings=settings, vault=vault_from_settings(settings), http=http, full=full,
            )  # fmt: skip
        dlt_metadata = {
            result.asset_key.path[-1]: dict(result.metadata or {}) for result in pulled.results if result.asset_key
        }
        for entity, figures in pulled.entities.items():
            yield MaterializeResult(
                asset_key=AssetKey(asset_path(provider.slug, entity)),
                metadata={**dlt_metadata.get(entity, {}), **metadata_values(figures)},
            )
    except Exception as exc:
        # dlt wraps what a resource raised (PipelineStepFailed): find the provider's own error inside.
        cause = platform_error_in(exc)
        if cause is None or isinstance(exc, Failure):
            raise
        session.rollback()
        _record_error(session, tenant_id, provider, cause.message)
        raise Failure(description=f"{provider.name}: {cause.message}", allow_retries=False) from exc
    finally:
        session.close()


def _record_error(session: Any, tenant_id: str, provider: Provider, message: str) -> None:
    connection = get_connection(session, tenant_id, provider.slug)
    if connection is not None:
        connection.last_error = message
        session.commit()
