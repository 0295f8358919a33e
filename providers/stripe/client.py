"""Stripe API v1 client for one connection: the kit's ``ApiClient`` and Stripe's hooks.

API doc: https://docs.stripe.com/api (authentication, connected accounts, versioning, errors, idempotent requests)
- A key connection calls with its secret or restricted key; a Connect OAuth connection with the platform's key
  and ``Stripe-Account: <the connected account>`` (https://docs.stripe.com/connect/authentication). Neither has
  a token to refresh: a refused key is final.
- Every call pins ``Stripe-Version`` (what the mappers read); writes are form-encoded with bracket nesting and
  carry the push's ``Idempotency-Key`` (the kit's default header).
- ``Stripe-Should-Retry`` decides retries where Stripe sends it (a 429 that says false is raised at once); a key
  Stripe refuses is final (nothing to refresh) and the core marks the connection.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Self
from urllib.parse import urlencode

import httpx

from providers.base import ProviderConnection
from providers.kit.client import PATIENT, ApiClient, ErrorWords, Retry

API_VERSION = "2026-10-28.endive"  # the version stripe-python 16.1.0 pins; objects are read as of it
SHOULD_RETRY = "Stripe-Should-Retry"


class StripeClient(ApiClient):
    name = "Stripe"
    api_base_url = "https://api.stripe.com/v1"

    @classmethod
    def for_connection(cls, connection: ProviderConnection, retry: Retry = PATIENT) -> Self:
        # Stripe keys are not refreshed: no access token callbacks, so a refused key is final and told to the core
        # (``on_refused``: the connection shows the error). An OAuth connection holds no key of its own, so the
        # platform's (the OAuth app's client secret) acts for the connected account.
        credentials = dict(connection.credentials)
        if not credentials.get("secret_key") and connection.app_credentials.get("client_secret"):
            credentials = {"platform_key": connection.app_credentials["client_secret"]}
        return cls(
            connection.http, base_url=connection.url(cls.api_base_url), governor=connection.governor,
            on_refused=connection.credentials_refused, tenant_id=connection.external_tenant_id,
            credentials=credentials, retry=retry,
        )  # fmt: skip

    def auth_headers(self, token: str | None) -> dict[str, str]:
        key = self.credentials.get("secret_key")
        if key:
            return {"Authorization": f"Bearer {key}", "Stripe-Version": API_VERSION}
        headers = {"Authorization": f"Bearer {self.credentials.get('platform_key', '')}", "Stripe-Version": API_VERSION}
        if self.tenant_id:
            headers["Stripe-Account"] = self.tenant_id
        return headers

    def should_retry(self, response: httpx.Response) -> bool | None:
        # A 429 that says false is raised at once too (the kit's one retry decision covers 429s).
        told = response.headers.get(SHOULD_RETRY, "").lower()
        return True if told == "true" else False if told == "false" else None

    def encode(self, body: Mapping[str, Any]) -> tuple[bytes, str]:
        return urlencode(list(form_pairs(body))).encode(), "application/x-www-form-urlencoded"

    def error_words(self, body: Any) -> ErrorWords:
        """Stripe's error object: its message, its code (else its type: ``idempotency_error`` has no code), and the
        parameter it names."""
        error = body.get("error") if isinstance(body, Mapping) else None
        if not isinstance(error, Mapping):
            return super().error_words(body)
        message = str(error.get("message") or "") or None
        code = str(error.get("code") or error.get("type") or "") or None
        param = error.get("param")
        return ErrorWords(message, code, (f"{param}: {message}",) if param and message else ())


def form_pairs(value: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """A body as Stripe's bracket-nested form pairs: ``metadata[k]=v``, ``items[0][price]=p``; None is left out,
    booleans are ``true``/``false``, and an empty string clears a field."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from form_pairs(item, f"{prefix}[{key}]" if prefix else str(key))
    elif isinstance(value, list | tuple):
        for n, item in enumerate(value):
            yield from form_pairs(item, f"{prefix}[{n}]")
    elif value is None:
        return
    elif isinstance(value, bool):
        yield prefix, "true" if value else "false"
    else:
        yield prefix, str(value)
