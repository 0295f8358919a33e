"""The shared HTTP client for provider calls, and redaction of secrets in anything we log or store."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from vrtx_pipelines import __version__
from vrtx_pipelines.config import Settings

SENSITIVE_KEYS = re.compile(
    r"(authorization|token|secret|password|api[_-]?key|client[_-]?secret|code[_-]?verifier|cookie|signature)",
    re.IGNORECASE,
)
REDACTED = "[redacted]"


def provider_client(settings: Settings) -> httpx.Client:
    return httpx.Client(
        timeout=httpx.Timeout(settings.http_timeout_s, connect=min(10.0, settings.http_timeout_s)),
        headers={"User-Agent": f"vrtx-integrations/{__version__}"},
        follow_redirects=False,
    )


def redact(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A copy of ``value`` with sensitive keys and any of the given secret strings replaced."""
    known = [s for s in secrets if s and len(s) >= 4]
    if isinstance(value, Mapping):
        return {
            key: REDACTED if SENSITIVE_KEYS.search(str(key)) else redact(item, known) for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item, known) for item in value]
    if isinstance(value, str):
        for secret in known:
            value = value.replace(secret, REDACTED)
        return value
    return value
