"""Canonical records left behind by a pull whose warehouse load committed and whose records did not.

A pull commits its warehouse load (dlt's cursors with it) and then, in a transaction of its own, its canonical
records (``vrtx_pipelines.pull.spool``). When that second commit fails (the database restarted between the two,
the process died) the next pull starts from the moved cursors and never lists those changes again: the warehouse
holds them, the canonical records would not. So every load first marks its entities on the connection
(``canonical_behind``), the records' commit unmarks them, and a pull that finds entities still marked re-derives
them from the warehouse before it pulls (``vrtx_pipelines.mapping.rederive``: the same mapper and mappings, the
stored form kept where the content is equal, so only records whose content differs take a change number).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy.orm import Session

from providers.base import Provider
from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.models import TenantIntegration
from vrtx_pipelines.mapping.rederive import rederive


def mark_behind(connection: TenantIntegration, entities: Iterable[str]) -> None:
    """Before a load: these entities' records are behind the warehouse until the load's records commit."""
    connection.canonical_behind = sorted({*(connection.canonical_behind or ()), *entities}) or None


def unmark_behind(session: Session, connection_id: int, entities: Iterable[str]) -> None:
    """In the transaction that commits the load's records."""
    connection = session.get_one(TenantIntegration, connection_id)
    connection.canonical_behind = sorted(set(connection.canonical_behind or ()) - set(entities)) or None


def catch_up(
    session: Session,
    settings: Settings,
    provider: Provider,
    tenant_id: str,
    connection: TenantIntegration,
    selected: Sequence[str],
) -> dict[str, int]:
    """Re-derive the ``selected`` entities still marked behind from the warehouse and unmark them (committed);
    returns the records that changed, per entity. Others stay marked for the pull that selects them."""
    behind = [entity for entity in connection.canonical_behind or () if entity in selected]
    if not behind:
        return {}
    mapped = provider.pulls.mappers if provider.pulls is not None else {}
    changed = {
        entity: rederive(session, settings, provider, tenant_id, connection.id, entity).changed
        for entity in behind
        if entity in mapped
    }
    unmark_behind(session, connection.id, behind)
    session.commit()
    return changed
