"""Credentials at rest: the vault (AES-256-GCM envelopes, key rotation) and where encrypted values live."""
