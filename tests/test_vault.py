"""The credential vault: authenticated encryption with key ids, tamper detection, rotation."""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import pytest

from vrtx_pipelines.config import Environment, Settings
from vrtx_pipelines.credentials.vault import (
    DecryptionError,
    Vault,
    generate_key,
    load_key_file,
    parse_keys,
    vault_from_settings,
)
from vrtx_pipelines.errors import ConfigurationError

CONTEXT = "tenant_integrations/acme/stripe/credentials"


def test_round_trip_returns_exactly_what_was_stored() -> None:
    vault = Vault([generate_key("k1")])
    secret = {"api_key": "sk_test_abc", "nested": {"n": 1}}
    envelope = vault.encrypt_json(secret, CONTEXT)
    assert envelope["kid"] == "k1"
    assert "sk_test_abc" not in str(envelope)
    assert vault.decrypt_json(envelope, CONTEXT) == secret


def test_the_same_secret_encrypts_differently_each_time() -> None:
    vault = Vault([generate_key()])
    assert vault.encrypt(b"same", CONTEXT)["ct"] != vault.encrypt(b"same", CONTEXT)["ct"]


@pytest.mark.parametrize("part", ["ct", "nonce"])
def test_tampered_ciphertext_is_an_error_never_garbage(part: str) -> None:
    vault = Vault([generate_key()])
    envelope = vault.encrypt(b"secret", CONTEXT)
    raw = bytearray(base64.b64decode(envelope[part]))
    raw[0] ^= 0x01
    with pytest.raises(DecryptionError):
        vault.decrypt({**envelope, part: base64.b64encode(bytes(raw)).decode()}, CONTEXT)


def test_an_envelope_moved_to_another_tenants_row_does_not_decrypt() -> None:
    vault = Vault([generate_key()])
    envelope = vault.encrypt(b"secret", CONTEXT)
    with pytest.raises(DecryptionError):
        vault.decrypt(envelope, "tenant_integrations/other/stripe/credentials")


def test_unknown_key_id_and_malformed_envelopes_are_errors() -> None:
    vault = Vault([generate_key("k1")])
    envelope = vault.encrypt(b"secret", CONTEXT)
    with pytest.raises(DecryptionError, match="unknown key id"):
        vault.decrypt({**envelope, "kid": "k9"}, CONTEXT)
    with pytest.raises(DecryptionError):
        vault.decrypt({"v": 1, "kid": "k1", "nonce": "!!", "ct": "??"}, CONTEXT)
    with pytest.raises(DecryptionError):
        vault.decrypt_text("not json", CONTEXT)


def test_old_key_still_decrypts_after_a_new_primary_is_added() -> None:
    old, new = generate_key("old"), generate_key("new")
    envelope = Vault([old]).encrypt(b"secret", CONTEXT)
    rotated = Vault([new, old])
    assert rotated.decrypt(envelope, CONTEXT) == b"secret"
    assert rotated.needs_rotation(envelope)
    assert rotated.encrypt(b"secret", CONTEXT)["kid"] == "new"
    with pytest.raises(DecryptionError):
        Vault([new]).decrypt(envelope, CONTEXT)


def test_key_parsing_rejects_bad_keys_clearly() -> None:
    with pytest.raises(ConfigurationError, match="must be 32 bytes"):
        parse_keys("k1:" + base64.urlsafe_b64encode(b"short").decode())
    with pytest.raises(ConfigurationError, match="kid:base64key"):
        parse_keys("no-separator")
    key = generate_key("dup").render()
    with pytest.raises(ConfigurationError, match="unique"):
        parse_keys(f"{key},{key}")


def test_production_refuses_to_start_without_a_key(tmp_path: Path) -> None:
    settings = Settings(env=Environment.PRODUCTION, home=tmp_path, vault_keys=None)
    with pytest.raises(ConfigurationError, match="VRTX_VAULT_KEYS is not set"):
        vault_from_settings(settings)
    assert not (tmp_path / "vault.keys").exists()


def test_development_generates_one_local_key_file_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(home=tmp_path, vault_keys=None)
    vault = vault_from_settings(settings)
    assert "generated a development vault key" in caplog.text
    assert (tmp_path / "vault.keys").stat().st_mode & 0o777 == 0o600
    assert vault_from_settings(settings).primary == vault.primary


def test_processes_starting_together_agree_on_one_development_key(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, vault_keys=None)
    primaries: list[str] = []
    threads = [threading.Thread(target=lambda: primaries.append(vault_from_settings(settings).primary.kid))
               for _ in range(8)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(primaries)) == 1
    assert [k.kid for k in load_key_file(tmp_path / "vault.keys")] == primaries[:1]
