"""Private fields a tenant chose to keep (a message's body), sealed before they land anywhere.

A provider names them (``PullSpec.sealing``: the setting that keeps them, and the fields of each entity). A
connection that keeps them has a data key of its own: random, held in the connection's metadata under the vault.
The provider's rows carry each value sealed with AES-GCM-SIV under that key and bound to its place (entity, record,
field), so the warehouse and the records hold ciphertext only and a sealed value copied elsewhere does not open.
SIV is deterministic: the same text at the same place seals the same, so a record read again unchanged stays
unchanged (no new change for the CRM), and nothing but that sameness shows.
The records API opens them for the tenant. Turning the setting off drops the key, and so does a purge: whatever
was sealed under it, in the records or the warehouse, can no longer be read by anyone, and the records shed it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV
from sqlalchemy import select
from sqlalchemy.orm import Session

from providers.base import Provider, Sealing
from vrtx_pipelines.credentials.stored import SEALING_KEY_META, sealing_key_context
from vrtx_pipelines.credentials.vault import Vault
from vrtx_pipelines.db.models import CanonicalRecord, TenantIntegration

PREFIX = "sealed.v1."
NONCE = bytes(12)  # SIV: the synthetic IV makes the nonce's uniqueness unneeded (RFC 8452)


class Sealer:
    """Seals and opens one connection's private fields."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCMSIV(key)

    def seal(self, entity: str, external_id: str, field: str, text: str) -> str:
        sealed = self._aead.encrypt(NONCE, text.encode(), _place(entity, external_id, field))
        return PREFIX + base64.urlsafe_b64encode(sealed).decode()

    def open(self, entity: str, external_id: str, field: str, value: Any) -> str | None:
        """The text, or None for a value that is not sealed, or not under this key, or not for this place."""
        if not isinstance(value, str) or not value.startswith(PREFIX):
            return None
        try:
            raw = base64.urlsafe_b64decode(value[len(PREFIX) :])
            return self._aead.decrypt(NONCE, raw, _place(entity, external_id, field)).decode()
        except (binascii.Error, ValueError, InvalidTag):
            return None


def _place(entity: str, external_id: str, field: str) -> bytes:
    return f"{entity}/{external_id}/{field}".encode()


def keeps_sealed(provider: Provider, settings: Mapping[str, Any] | None) -> bool:
    """Whether the connection's settings keep the provider's private fields."""
    sealing = _sealing(provider)
    return sealing is not None and (settings or {}).get(sealing.setting) == sealing.keep


def sealer_of(vault: Vault, connection: TenantIntegration) -> Sealer | None:
    """The connection's sealer, or None when it keeps no data key (its private fields are not kept)."""
    stored = (connection.meta or {}).get(SEALING_KEY_META)
    if not isinstance(stored, str):
        return None
    return Sealer(base64.b64decode(vault.decrypt_text(stored, sealing_key_context(connection))))


def apply_sealing(session: Session, vault: Vault, connection: TenantIntegration, provider: Provider) -> int:
    """Give the connection a data key when its settings keep private fields; otherwise drop its key and take the
    sealed fields out of its records. The number of records changed. In the caller's transaction."""
    sealing = _sealing(provider)
    if sealing is None:
        return 0
    meta = dict(connection.meta or {})
    if keeps_sealed(provider, connection.settings):
        if SEALING_KEY_META not in meta:
            key = base64.b64encode(AESGCMSIV.generate_key(bit_length=256)).decode()
            meta[SEALING_KEY_META] = vault.encrypt_text(key, sealing_key_context(connection))
            connection.meta = meta
        return 0
    meta.pop(SEALING_KEY_META, None)
    connection.meta = meta
    changed = 0
    for entity, fields in sealing.fields.items():
        rows = session.scalars(
            select(CanonicalRecord).where(
                CanonicalRecord.tenant_integration_id == connection.id, CanonicalRecord.entity_type == entity
            )
        )
        for row in rows:
            if any(row.data.get(name) is not None for name in fields):
                row.data = {**row.data, **dict.fromkeys(fields)}
                changed += 1
    session.flush()
    return changed


def open_fields(
    sealer: Sealer | None, provider: Provider, entity: str, external_id: str, data: Mapping[str, Any]
) -> dict[str, Any]:
    """A record's data with its sealed fields opened (None where they cannot be: the key was dropped)."""
    sealing = _sealing(provider)
    fields = sealing.fields.get(entity, ()) if sealing is not None else ()
    if not fields:
        return dict(data)
    opened = {
        name: sealer.open(entity, external_id, name, data.get(name)) if sealer is not None else None
        for name in fields
        if name in data
    }
    return {**data, **opened}


def _sealing(provider: Provider) -> Sealing | None:
    return provider.pulls.sealing if provider.pulls is not None else None
