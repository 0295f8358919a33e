"""Purging a connection: everything synced for it, in the app database and in the warehouse, counted per kind.

The app database's share is every row that belongs to the connection (each table with a ``tenant_integration_id``,
so a table added later is purged too): canonical records, entity links, conflicts, the push outbox and webhook
inbox whatever their state, webhooks, field mappings and their history, and the sync log. The connection's own
row stays, disconnected, so the tenant can connect again. Another tenant's data is never touched: every statement
is bound to this connection's id, and the warehouse dataset is the tenant's own (``names.dataset_name``).
"""

from __future__ import annotations

from sqlalchemy import Table, delete

from providers.base import Provider
from vrtx_pipelines.connect.context import ConnectionContext
from vrtx_pipelines.db.locks import lock_connection
from vrtx_pipelines.db.models import Base, TenantIntegration
from vrtx_pipelines.errors import IntegrationError
from vrtx_pipelines.warehouse import DroppedDataset, drop_dataset


class PurgeFailed(IntegrationError):
    code = "purge_failed"
    http_status = 409


def connection_tables() -> list[Table]:
    """The app database's tables whose rows belong to one connection."""
    return [table for table in Base.metadata.sorted_tables if "tenant_integration_id" in table.c]


def drop_warehouse(ctx: ConnectionContext, provider: Provider, tenant_id: str) -> DroppedDataset:
    """The tenant's warehouse dataset for the provider, dropped first: it is not in the app database's
    transaction, so nothing else is changed unless it is gone."""
    try:
        return drop_dataset(ctx.settings, provider.slug, tenant_id)
    except Exception as exc:
        # e.g. the embedded warehouse's file is held by a sync running now; the message may name paths only.
        raise PurgeFailed(
            f"the {provider.name} data in the warehouse could not be deleted ({type(exc).__name__}); nothing was "
            "purged or disconnected: try again once no sync of it is running"
        ) from exc


def purge_rows(ctx: ConnectionContext, connection: TenantIntegration) -> dict[str, int]:
    """Delete the connection's rows from every table that has them, in the caller's transaction; the count per
    table. The connection is locked first, so a pull's or webhook's apply in progress finishes before."""
    lock_connection(ctx.session, connection.id)
    counts = {}
    # Dependents first: a row a foreign key's cascade removed would not be counted.
    for table in reversed(connection_tables()):
        result = ctx.session.execute(delete(table).where(table.c.tenant_integration_id == connection.id))
        counts[table.name] = int(result.rowcount)  # type: ignore[attr-defined]
    connection.settings = None
    connection.meta = None
    connection.last_sync_at = None
    return counts
