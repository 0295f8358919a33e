"""Masking secrets in error texts: a provider's answer, or httpx's own words, can quote a request and its URL."""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[redacted]"

# Query parameters that carry credentials (Graph's skip tokens and Google's page tokens are not secrets).
_SECRET_PARAM = re.compile(
    r"(?i)([?&;](?:access_token|refresh_token|id_token|token|api[_-]?key|apikey|key|client_secret|secret|password|"
    r"signature|sig|code|code_verifier)=)[^&#\s'\"]+"
)
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@")
_AUTHORIZATION = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with the given secrets, credentials in URLs (``?api_key=``, ``user:pass@``) and authorization
    header values replaced by ``[redacted]``. Secrets shorter than 4 characters are left alone: masking them
    would mangle ordinary words."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = _SECRET_PARAM.sub(lambda m: m.group(1) + REDACTED, text)
    text = _USERINFO.sub(lambda m: m.group(1) + REDACTED + "@", text)
    return _AUTHORIZATION.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
