"""Small helpers shared by tests."""

from __future__ import annotations

from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.session import engine_for, session_scope
from vrtx_pipelines.tenants import create_tenant


def make_tenant(settings: Settings, tenant_id: str, name: str | None = None) -> str:
    """Create a tenant in the settings' database and return its API token."""
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        _tenant, token = create_tenant(session, tenant_id, name)
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
