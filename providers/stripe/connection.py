"""Stripe connection test: one authenticated ``GET /v1/account`` with the tenant's secret key.

API doc: https://docs.stripe.com/api/accounts/retrieve (authentication: https://docs.stripe.com/api/authentication)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NoReturn

import httpx

from providers.base import ConnectionInfo
from providers.errors import ProviderAuthError, ProviderError
from providers.kit.http_errors import json_object, raise_for_provider_status, transport_errors

# Secret keys (sk_) and restricted keys (rk_), test or live mode. Publishable keys (pk_) cannot call the API.
SECRET_KEY_PATTERN = r"^(?:sk|rk)_(?:test|live)_[0-9A-Za-z]{8,247}$"  # noqa: S105 -- a format, not a key
_SECRET_KEY_RE = re.compile(SECRET_KEY_PATTERN)
# A Stripe API key in clear text inside a message (Stripe masks keys itself; this is a backstop).
_KEY_IN_TEXT_RE = re.compile(r"\b((?:sk|rk|pk)_(?:test|live)_)([0-9A-Za-z]+)")


def test_connection(credentials: Mapping[str, str], base_url: str, client: httpx.Client) -> ConnectionInfo:
    """Retrieve the account the key belongs to; raise a typed ``ProviderError`` when Stripe says no. A Connect
    OAuth connection is checked with its grant's access token, which Stripe issues as a key of the connected
    account (it stops working when the account deauthorizes the platform)."""
    secret_key = (credentials.get("secret_key") or credentials.get("access_token") or "").strip()
    if not _SECRET_KEY_RE.match(secret_key):
        raise ProviderAuthError(
            "The Stripe key must be a secret key (sk_live_… / sk_test_…) or a restricted key (rk_live_… / rk_test_…)."
        )
    # https://docs.stripe.com/api/accounts/retrieve
    url = f"{base_url.rstrip('/')}/v1/account"
    with transport_errors("Stripe", lambda text: _redact(text, secret_key)):
        response = client.get(url, headers={"Authorization": f"Bearer {secret_key}", "Accept": "application/json"})

    if response.status_code != 200:
        _raise_for_status(response, secret_key)
    account = json_object(response)
    if account is None or not isinstance(account.get("id"), str):
        raise ProviderError("Stripe answered GET /v1/account without an account object.", status=200)
    return _connection_info(account, secret_key)


def _connection_info(account: Mapping[str, Any], secret_key: str) -> ConnectionInfo:
    business_profile = _mapping(account.get("business_profile"))
    dashboard = _mapping(_mapping(account.get("settings")).get("dashboard"))
    name = business_profile.get("name") or dashboard.get("display_name") or account.get("email")
    details: dict[str, Any] = {
        "livemode": secret_key.startswith(("sk_live_", "rk_live_")),
        "mode": "live" if secret_key.startswith(("sk_live_", "rk_live_")) else "test",
        "key_type": "restricted" if secret_key.startswith("rk_") else "secret",
    }
    for key in (
        "country",
        "default_currency",
        "charges_enabled",
        "payouts_enabled",
        "details_submitted",
        "type",
    ):
        if account.get(key) is not None:
            details["account_type" if key == "type" else key] = account[key]
    return ConnectionInfo(
        external_account_id=str(account["id"]),
        external_account_name=str(name) if name else None,
        details=details,
    )


def _raise_for_status(response: httpx.Response, secret_key: str) -> NoReturn:
    """Map Stripe's error object (``{"error": {"type", "code", "message", ...}}``) to a typed error."""
    status = response.status_code
    body = json_object(response)
    error = _mapping(body.get("error")) if body else {}
    message = error.get("message")
    if not isinstance(message, str) or not message:
        message = f"Stripe answered HTTP {status} without an error message."
    message = _redact(message, secret_key)
    code = error.get("code") or error.get("type")
    provider_code = str(code) if code else None
    # https://docs.stripe.com/api/errors: 401 no valid key; 403 key lacks permission for the request.
    raise_for_provider_status(response, message, provider_code=provider_code)


def _redact(text: str, secret_key: str) -> str:
    """Never let a key through: mask it the way Stripe does (prefix and, for long keys, the last four)."""
    if secret_key:
        text = text.replace(secret_key, _mask_key(secret_key))
    return _KEY_IN_TEXT_RE.sub(lambda m: m.group(1) + _mask_tail(m.group(2)), text)


def _mask_key(key: str) -> str:
    match = _KEY_IN_TEXT_RE.fullmatch(key)
    return match.group(1) + _mask_tail(match.group(2)) if match else "*" * len(key)


def _mask_tail(tail: str) -> str:
    return "*" * (len(tail) - 4) + tail[-4:] if len(tail) >= 16 else "*" * len(tail)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
