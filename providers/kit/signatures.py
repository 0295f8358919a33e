"""Signatures and signed tokens: HMAC-SHA256 webhook signatures (Xero, QuickBooks, Shopify sign the raw body so;
Stripe signs the timestamp and the body, hex), and reading a JWT's claims."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any


def hmac_sha256(key: str, message: bytes) -> bytes:
    return hmac.new(key.encode(), message, hashlib.sha256).digest()


def base64_signature_matches(sent: str, expected: bytes) -> bool:
    """True when ``sent`` (base64) is ``expected``, compared in constant time; malformed base64 never matches."""
    try:
        digest = base64.b64decode(sent.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(digest, expected)


def hex_signature_matches(sent: str, expected: bytes) -> bool:
    """True when ``sent`` (hex) is ``expected``, compared in constant time; malformed hex never matches."""
    try:
        digest = bytes.fromhex(sent.strip())
    except ValueError:
        return False
    return hmac.compare_digest(digest, expected)


def unverified_claims(token: str) -> dict[str, Any]:
    """A JWT's claims, read without verifying its signature: only for a token straight from the provider's own
    token endpoint, to learn what it says about itself (Xero's consent, Microsoft's tenant). {} for a token that
    is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return {}
    return claims if isinstance(claims, dict) else {}
