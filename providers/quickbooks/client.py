"""QuickBooks Online Accounting API v3 client for one connection (one company, one token): the kit's ``ApiClient``
and QuickBooks' hooks.

API doc: https://developer.intuit.com/app/developer/qbo/docs/develop
Errors: https://developer.intuit.com/app/developer/qbo/docs/develop/troubleshooting/error-codes
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from providers.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from providers.kit.client import ApiClient, Call, ErrorWords
from providers.kit.values import OBJECT, records, text, utc

MINOR_VERSION = "75"  # Intuit retired 1-74 in 2025; python-quickbooks enforces 75 at least
MAX_REQUEST_ID = 50  # [mem] Intuit's requestid is at most 50 characters
STALE_OBJECT = "5010"
THROTTLED = "3001"
_TIMES = ("CreateTime", "LastUpdatedTime")


class QuickBooksClient(ApiClient):
    """Every call is under ``/v3/company/{realmId}`` with ``minorversion``; Faults (also inside HTTP 200) are
    typed errors in QuickBooks' own words; a write's idempotency key travels as ``requestid``."""

    name = "QuickBooks"
    api_base_url = "https://quickbooks.api.intuit.com/v3/company/{tenant_id}"
    tenant_noun = "company"
    default_params = {"minorversion": MINOR_VERSION}

    def decode(self, response: httpx.Response) -> Any:
        # Money stays exact; MetaData times (written in the company's offset) become UTC instants while decoding.
        return json.loads(response.content, parse_float=Decimal, object_hook=_times)

    def error_words(self, body: Any) -> ErrorWords:
        """A ``Fault``'s first error (the lower-case ``fault`` of a 401 too): its Detail, else its Message."""
        fault = body.get("Fault") or body.get("fault") if isinstance(body, Mapping) else None
        if not isinstance(fault, Mapping):
            return super().error_words(body)
        errors = records(fault.get("Error") or fault.get("error"))
        if not errors:
            return ErrorWords(text(fault.get("type")), text(fault.get("type")))
        first = errors[0]
        message = text(first.get("Message") or first.get("message")) or ""
        detail = text(first.get("Detail") or first.get("detail")) or ""
        words = detail if detail.startswith(message) else f"{message}: {detail}" if detail else message
        details = tuple(text(e.get("Detail") or e.get("detail")) or "" for e in errors)
        return ErrorWords(words or None, text(first.get("code")), tuple(d for d in details if d))

    def error_in_answer(self, body: Any, call: Call) -> ProviderError | None:
        """Intuit answers some Faults with HTTP 200: typed by their code as python-quickbooks reads them."""
        if not isinstance(body, Mapping) or not isinstance(body.get("Fault"), Mapping):
            return None
        words = self.error_words(body)
        code = int(words.code) if words.code and words.code.isdigit() else 0
        message = words.message or f"QuickBooks answered {call.method} with a Fault."
        if 0 < code <= 499 or code in (3100, 3200):
            return ProviderAuthError(message, status=200, provider_code=words.code)
        if words.code == THROTTLED:
            return ProviderRateLimited(message, status=200)
        if code >= 10000:
            return ProviderUnavailable(message, status=200, provider_code=words.code)
        if call.method not in ("GET", "HEAD") and "query" not in call.url.rsplit("/", 1)[-1]:
            return ProviderRejected(message, status=200, provider_code=words.code, details=list(words.details))
        return ProviderError(message, status=200, provider_code=words.code)

    def with_idempotency_key(self, call: Call, key: str) -> None:
        # Intuit replays a write whose requestid it has seen; a longer key is hashed down to fit.
        call.params["requestid"] = key if len(key) <= MAX_REQUEST_ID else hashlib.sha256(key.encode()).hexdigest()[:50]


def _times(obj: dict[str, Any]) -> dict[str, Any]:
    for key in _TIMES:
        value = obj.get(key)
        if type(value) is str:
            with contextlib.suppress(ValueError):  # left as sent: the mapper says what it cannot read
                obj[key] = utc(datetime.fromisoformat(value))
    return obj


def is_stale(error: BaseException) -> bool:
    """Whether a refused write was QuickBooks' stale-object fault (the SyncToken sent was not the current one)."""
    return isinstance(error, ProviderRejected) and error.provider_code == STALE_OBJECT


def reference(value: Any) -> str | None:
    """The ``value`` of a QuickBooks reference (``{"value": "5", "name": ...}``)."""
    return text(value.get("value")) if isinstance(value, OBJECT) else None
