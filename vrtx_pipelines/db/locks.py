"""Serialising writers of one connection's rows."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from vrtx_pipelines.db.models import Integration, TenantIntegration


def lock_connection(session: Session, connection_id: int) -> str:
    """Hold the connection until this transaction ends: PostgreSQL takes its row lock; SQLite, where any write
    takes the database's write lock until commit, gets a no-op write. Returns the connection's status as of the
    lock, so a disconnect committed while this waited is seen.

    Used wherever two writers would otherwise take the same next number (change cursor, mapping version) or
    both write one run's rows.
    """
    statement = select(TenantIntegration.status).where(TenantIntegration.id == connection_id)
    if session.get_bind().dialect.name == "postgresql":
        return str(session.execute(statement.with_for_update()).scalar_one())
    session.execute(update(TenantIntegration).where(TenantIntegration.id == connection_id).values(id=connection_id))
    return str(session.execute(statement).scalar_one())


def lock_integration(session: Session, integration_id: int) -> None:
    """Hold the provider's catalog row until this transaction ends, as ``lock_connection`` holds a connection's:
    for writers that must see what other tenants' connections of the provider did (a disconnect deciding whether
    a grant is still shared)."""
    statement = select(Integration.id).where(Integration.id == integration_id)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(statement.with_for_update())
    else:
        session.execute(update(Integration).where(Integration.id == integration_id).values(id=integration_id))
