"""Mailchimp connection test: one authenticated ``GET /3.0/`` (the API root) with the tenant's API key.

API doc: https://mailchimp.com/developer/marketing/api/root/list-api-root-resources/
Errors: https://mailchimp.com/developer/marketing/docs/errors/
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NoReturn

import httpx

from providers.base import ConnectionInfo
from providers.errors import ProviderAuthError, ProviderError
from providers.kit.http_errors import json_object, raise_for_provider_status, transport_errors

# <32 hex>-<data center>, e.g. 0123…cdef-us21; the data center picks the API host.
API_KEY_PATTERN = r"^[0-9a-f]{32}-[a-z]+[0-9]+$"
_API_KEY_RE = re.compile(API_KEY_PATTERN)
_KEY_IN_TEXT_RE = re.compile(r"\b[0-9a-f]{32}(?:-[a-z]+[0-9]+)?\b")
# Mailchimp ignores the Basic username; this one names the caller in Mailchimp's logs.
BASIC_USERNAME = "vrtx"


def test_connection(credentials: Mapping[str, str], base_url: str, client: httpx.Client) -> ConnectionInfo:
    """Read the API root for the key's data center; raise a typed ``ProviderError`` when Mailchimp says no."""
    api_key = (credentials.get("api_key") or "").strip()
    if not _API_KEY_RE.match(api_key):
        raise ProviderAuthError(
            "The Mailchimp API key must be 32 hexadecimal characters, a dash and the data center (e.g. -us21)."
        )
    datacenter = api_key.rsplit("-", 1)[1]
    # The real base is https://{dc}.api.mailchimp.com/3.0; a sandbox base has no placeholder: used as is.
    root_url = base_url.replace("{dc}", datacenter).rstrip("/") + "/"
    with transport_errors("Mailchimp", lambda text: _redact(text, api_key)):
        response = client.get(root_url, auth=(BASIC_USERNAME, api_key), headers={"Accept": "application/json"})

    if response.status_code != 200:
        _raise_for_status(response, api_key)
    root = json_object(response)
    if root is None or not isinstance(root.get("account_id"), str):
        raise ProviderError("Mailchimp answered the API root without an account.", status=200)
    return _connection_info(root, datacenter)


def _connection_info(root: Mapping[str, Any], datacenter: str) -> ConnectionInfo:
    details: dict[str, Any] = {"datacenter": datacenter}
    for key in (
        "login_id",
        "username",
        "email",
        "role",
        "pricing_plan_type",
        "account_timezone",
        "pro_enabled",
        "total_subscribers",
    ):
        if root.get(key) is not None:
            details[key] = root[key]
    name = root.get("account_name")
    return ConnectionInfo(
        external_account_id=str(root["account_id"]),
        external_account_name=str(name) if name else None,
        details=details,
    )


def _raise_for_status(response: httpx.Response, api_key: str) -> NoReturn:
    """Map Mailchimp's problem document (``{type, title, status, detail, instance}``) to a typed error."""
    status = response.status_code
    problem = json_object(response) or {}
    title = problem.get("title") if isinstance(problem.get("title"), str) else None
    detail = problem.get("detail") if isinstance(problem.get("detail"), str) else None
    parts = [part for part in (title, detail) if part]
    message = ": ".join(parts) if parts else f"Mailchimp answered HTTP {status} without an error message."
    message = _redact(message, api_key)
    raise_for_provider_status(response, message, provider_code=title)


def _redact(text: str, api_key: str) -> str:
    """Mask the key (whole, or its secret part without the data center) wherever it appears."""
    for secret in (api_key, api_key.rsplit("-", 1)[0]):
        if secret:
            text = text.replace(secret, "*" * len(secret))
    return _KEY_IN_TEXT_RE.sub(lambda m: "*" * len(m.group(0)), text)
