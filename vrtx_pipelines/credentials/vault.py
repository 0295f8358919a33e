"""Credential vault: AES-256-GCM envelopes with key ids, so keys can rotate.

An envelope is a small JSON object ``{"v": 1, "kid": ..., "nonce": ..., "ct": ...}``. The associated data
binds each envelope to where it is stored (e.g. ``tenant_integrations/<tenant>/<slug>/credentials``): an
envelope copied into another tenant's row does not decrypt.
Tampering with any part is an error, never garbage.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vrtx_pipelines.config import Settings
from vrtx_pipelines.errors import ConfigurationError, IntegrationError

log = logging.getLogger(__name__)

ENVELOPE_VERSION = 1
KEY_BYTES = 32


class VaultError(IntegrationError):
    code = "vault_error"


class DecryptionError(VaultError):
    code = "decryption_failed"


@dataclass(frozen=True)
class VaultKey:
    kid: str
    secret: bytes

    def render(self) -> str:
        return f"{self.kid}:{base64.urlsafe_b64encode(self.secret).decode()}"


def generate_key(kid: str | None = None) -> VaultKey:
    return VaultKey(kid=kid or f"k{secrets.token_hex(4)}", secret=AESGCM.generate_key(bit_length=256))


def parse_keys(text: str) -> list[VaultKey]:
    """Parse ``kid:base64key`` entries separated by commas or newlines; the first is the primary."""
    keys: list[VaultKey] = []
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    for raw in ",".join(lines).split(","):
        entry = raw.strip()
        if not entry:
            continue
        kid, sep, encoded = entry.partition(":")
        if not sep or not kid:
            raise ConfigurationError("a vault key must look like 'kid:base64key'")
        try:
            secret = base64.urlsafe_b64decode(encoded.strip())
        except ValueError as exc:
            raise ConfigurationError(f"vault key {kid!r} is not valid base64") from exc
        if len(secret) != KEY_BYTES:
            raise ConfigurationError(f"vault key {kid!r} must be {KEY_BYTES} bytes, got {len(secret)}")
        keys.append(VaultKey(kid=kid, secret=secret))
    if len({k.kid for k in keys}) != len(keys):
        raise ConfigurationError("vault key ids must be unique")
    return keys


class Vault:
    def __init__(self, keys: list[VaultKey]) -> None:
        if not keys:
            raise ConfigurationError("the vault needs at least one key")
        self._keys = {key.kid: key for key in keys}
        self.primary = keys[0]

    @property
    def key_ids(self) -> list[str]:
        return list(self._keys)

    def encrypt(self, plaintext: bytes, context: str) -> dict[str, Any]:
        nonce = os.urandom(12)
        ciphertext = AESGCM(self.primary.secret).encrypt(nonce, plaintext, context.encode())
        return {
            "v": ENVELOPE_VERSION,
            "kid": self.primary.kid,
            "nonce": base64.b64encode(nonce).decode(),
            "ct": base64.b64encode(ciphertext).decode(),
        }

    def decrypt(self, envelope: Mapping[str, Any], context: str) -> bytes:
        if not isinstance(envelope, Mapping) or envelope.get("v") != ENVELOPE_VERSION:
            raise DecryptionError("stored secret is not a vault envelope")
        key = self._keys.get(str(envelope.get("kid")))
        if key is None:
            raise DecryptionError(f"stored secret was encrypted with unknown key id {envelope.get('kid')!r}")
        try:
            nonce = base64.b64decode(envelope["nonce"], validate=True)
            ciphertext = base64.b64decode(envelope["ct"], validate=True)
            return AESGCM(key.secret).decrypt(nonce, ciphertext, context.encode())
        except (InvalidTag, KeyError, ValueError, TypeError) as exc:
            raise DecryptionError("stored secret failed authentication: it was altered or moved") from exc

    def encrypt_json(self, value: Any, context: str) -> dict[str, Any]:
        return self.encrypt(json.dumps(value, separators=(",", ":")).encode(), context)

    def decrypt_json(self, envelope: Mapping[str, Any], context: str) -> Any:
        return json.loads(self.decrypt(envelope, context))

    def encrypt_text(self, value: str, context: str) -> str:
        """For string columns (webhook secrets, PKCE verifiers): the envelope serialised as JSON."""
        return json.dumps(self.encrypt(value.encode(), context), separators=(",", ":"))

    def decrypt_text(self, stored: str, context: str) -> str:
        try:
            envelope = json.loads(stored)
        except json.JSONDecodeError as exc:
            raise DecryptionError("stored secret is not a vault envelope") from exc
        return self.decrypt(envelope, context).decode()

    def _signing_key(self, key: VaultKey) -> bytes:
        # A separate key per purpose: a signature never reveals anything about the encryption key.
        return hmac.new(key.secret, b"vrtx-signing-v1", hashlib.sha256).digest()

    def sign(self, message: bytes) -> str:
        digest = hmac.new(self._signing_key(self.primary), message, hashlib.sha256).digest()
        return f"{self.primary.kid}.{base64.urlsafe_b64encode(digest).decode().rstrip('=')}"

    def verify(self, message: bytes, signature: str) -> bool:
        kid, _, encoded = signature.partition(".")
        key = self._keys.get(kid)
        if key is None:
            return False
        expected = base64.urlsafe_b64encode(hmac.new(self._signing_key(key), message, hashlib.sha256).digest())
        return hmac.compare_digest(expected.decode().rstrip("="), encoded)

    def needs_rotation(self, envelope: Mapping[str, Any]) -> bool:
        return envelope.get("kid") != self.primary.kid


def load_key_file(path: Path) -> list[VaultKey]:
    return parse_keys(path.read_text()) if path.exists() else []


def write_key_file(path: Path, keys: list[VaultKey]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(_key_file_text(keys))
    tmp.chmod(0o600)
    tmp.replace(path)


def vault_from_settings(settings: Settings, *, create_dev_key: bool = True) -> Vault:
    """The vault for this process. Production refuses to run without VRTX_VAULT_KEYS."""
    if settings.vault_keys:
        return Vault(parse_keys(settings.vault_keys))
    if settings.is_production:
        raise ConfigurationError(
            "VRTX_VAULT_KEYS is not set: production refuses to start without an encryption key "
            "(generate one with `vrtx keys generate`)"
        )
    keys = load_key_file(settings.vault_key_file)
    if not keys:
        if not create_dev_key:
            raise ConfigurationError(f"no vault key in {settings.vault_key_file}")
        keys = _create_key_file_once(settings.vault_key_file)
    return Vault(keys)


def _create_key_file_once(path: Path) -> list[VaultKey]:
    """Create the development key file unless another process just did; never overwrite a key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = [generate_key()]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(_key_file_text(keys))
    tmp.chmod(0o600)
    try:
        os.link(tmp, path)  # atomic and fails if the file exists: two processes cannot both win
    except FileExistsError:
        return load_key_file(path)
    finally:
        tmp.unlink(missing_ok=True)
    log.warning("generated a development vault key at %s; set VRTX_VAULT_KEYS in production", path)
    return keys


def _key_file_text(keys: list[VaultKey]) -> str:
    return "# VRTX development vault keys: the first encrypts, all decrypt. Never commit this file.\n" + "".join(
        f"{key.render()}\n" for key in keys
    )
