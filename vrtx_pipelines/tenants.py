"""Tenants and their API tokens (stored as SHA-256; shown once)."""

from __future__ import annotations

import hashlib
import re
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from vrtx_pipelines.db.models import Tenant
from vrtx_pipelines.errors import TenantExists, ValidationFailed

TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,49}$")
TOKEN_PREFIX = "vrtx_"  # noqa: S105 -- a public marker, not a secret


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def create_tenant(session: Session, tenant_id: str, name: str | None = None) -> tuple[Tenant, str]:
    """Create a tenant and return it with its API token (the only time the token is seen)."""
    if not TENANT_ID.match(tenant_id):
        raise ValidationFailed(
            "a tenant id is 1-50 lowercase letters, digits, '-' or '_', starting with a letter or digit",
            details=[{"field": "tenant_id", "message": "invalid tenant id"}],
        )
    if session.get(Tenant, tenant_id) is not None:
        raise TenantExists(f"tenant {tenant_id!r} already exists")
    token = new_token()
    tenant = Tenant(
        id=tenant_id,
        name=name or tenant_id,
        api_token_hash=hash_token(token),
        api_token_prefix=token[: len(TOKEN_PREFIX) + 4],
    )
    session.add(tenant)
    session.flush()
    return tenant, token


def rotate_token(session: Session, tenant: Tenant) -> str:
    """A new token; the old one, and every marketplace link and browser session issued under it, stop working."""
    token = new_token()
    tenant.api_token_hash = hash_token(token)
    tenant.api_token_prefix = token[: len(TOKEN_PREFIX) + 4]
    tenant.token_generation = (tenant.token_generation or 0) + 1
    session.flush()
    return token


def tenant_for_token(session: Session, token: str) -> Tenant | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    tenant = session.scalar(select(Tenant).where(Tenant.api_token_hash == hash_token(token)))
    if tenant is None or not tenant.is_active:
        return None
    return tenant


def list_tenants(session: Session) -> list[Tenant]:
    return list(session.scalars(select(Tenant).order_by(Tenant.id)))
