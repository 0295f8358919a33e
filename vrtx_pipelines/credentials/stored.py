"""Where encrypted values live, their vault contexts, and re-encryption under a new key."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vrtx_pipelines.credentials.vault import Vault
from vrtx_pipelines.db.models import IntegrationWebhook, OAuthState, Tenant, TenantIntegration


def credentials_context(tenant_id: str, slug: str) -> str:
    return f"tenant_integrations/{tenant_id}/{slug}/credentials"


def webhook_secret_context(tenant_integration_id: int) -> str:
    return f"integration_webhooks/{tenant_integration_id}/secret_key"


def callback_secret_context(tenant_id: str) -> str:
    return f"tenants/{tenant_id}/callback_secret"


def oauth_verifier_context(state_id: str) -> str:
    return f"oauth_states/{state_id}/code_verifier"


SEALING_KEY_META = "sealing_key"  # in a connection's metadata: its data key for sealed fields (records.sealed)


def sealing_key_context(connection: TenantIntegration) -> str:
    return f"tenant_integrations/{connection.tenant_id}/{connection.id}/sealing_key"


def store_credentials(vault: Vault, connection: TenantIntegration, slug: str, values: Mapping[str, Any]) -> None:
    connection.credentials = vault.encrypt_json(dict(values), credentials_context(connection.tenant_id, slug))


def read_credentials(vault: Vault, connection: TenantIntegration, slug: str) -> dict[str, Any]:
    if not connection.credentials:
        return {}
    value = vault.decrypt_json(connection.credentials, credentials_context(connection.tenant_id, slug))
    return dict(value)


@dataclass
class RotationReport:
    credentials: int = 0
    webhook_secrets: int = 0
    oauth_verifiers: int = 0
    callback_secrets: int = 0
    sealing_keys: int = 0
    already_current: int = 0

    @property
    def total(self) -> int:
        return (
            self.credentials + self.webhook_secrets + self.oauth_verifiers + self.callback_secrets + self.sealing_keys
        )


def reencrypt_all(session: Session, vault: Vault) -> RotationReport:
    """Re-encrypt every stored secret under the vault's primary key, in the caller's transaction.

    Any value that fails to decrypt aborts the whole rotation (the transaction rolls back), so a wrong key
    set never leaves a mix of rewritten and unreadable rows.
    """
    report = RotationReport()
    connections = session.scalars(select(TenantIntegration).where(TenantIntegration.credentials.is_not(None)))
    for connection in connections:
        assert connection.credentials is not None
        if not vault.needs_rotation(connection.credentials):
            report.already_current += 1
            continue
        context = credentials_context(connection.tenant_id, connection.integration.slug)
        connection.credentials = vault.encrypt(vault.decrypt(connection.credentials, context), context)
        report.credentials += 1
    for webhook in session.scalars(select(IntegrationWebhook).where(IntegrationWebhook.secret_key.is_not(None))):
        webhook.secret_key, rotated = _rotated_text(
            vault, webhook.secret_key, webhook_secret_context(webhook.tenant_integration_id)
        )
        report.webhook_secrets += rotated
        report.already_current += not rotated
    for state in session.scalars(select(OAuthState).where(OAuthState.code_verifier.is_not(None))):
        state.code_verifier, rotated = _rotated_text(vault, state.code_verifier, oauth_verifier_context(state.id))
        report.oauth_verifiers += rotated
        report.already_current += not rotated
    for tenant in session.scalars(select(Tenant).where(Tenant.callback_secret.is_not(None))):
        tenant.callback_secret, rotated = _rotated_text(
            vault, tenant.callback_secret, callback_secret_context(tenant.id)
        )
        report.callback_secrets += rotated
        report.already_current += not rotated
    for connection in session.scalars(select(TenantIntegration).where(TenantIntegration.meta.is_not(None))):
        key = (connection.meta or {}).get(SEALING_KEY_META)
        if isinstance(key, str):
            rotated_key, rotated = _rotated_text(vault, key, sealing_key_context(connection))
            if rotated:
                connection.meta = {**(connection.meta or {}), SEALING_KEY_META: rotated_key}
            report.sealing_keys += rotated
            report.already_current += not rotated
    session.flush()
    return report


def _rotated_text(vault: Vault, envelope: str | None, context: str) -> tuple[str | None, bool]:
    """A stored text secret under the vault's primary key, and whether it had to be rewritten."""
    if envelope is None or not vault.needs_rotation(json.loads(envelope)):
        return envelope, False
    return vault.encrypt_text(vault.decrypt_text(envelope, context), context), True
