"""Mailchimp connection test: one authenticated ``GET /3.0/`` (the API root) with the tenant's API key.

API doc: https://mailchimp.com/developer/marketing/api/root/list-api-root-resources/
Errors: https://mailchimp.com/developer/marketing/docs/errors/
"""

from __future__ import annotations

import email.utils
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NoReturn

import httpx

from providers.base import ConnectionInfo
from providers.errors import ProviderAuthError, ProviderError, ProviderRateLimited, ProviderUnavailable

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
    try:
        response = client.get(root_url, auth=(BASIC_USERNAME, api_key), headers={"Accept": "application/json"})
    except httpx.TimeoutException as exc:
        raise ProviderUnavailable("Mailchimp did not answer in time.") from exc
    except httpx.HTTPError as exc:
        detail = _redact(str(exc) or type(exc).__name__, api_key)
        raise ProviderUnavailable(f"Could not reach Mailchimp: {detail}") from exc

    if response.status_code != 200:
        _raise_for_status(response, api_key)
    root = _json_object(response)
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
    problem = _json_object(response) or {}
    title = problem.get("title") if isinstance(problem.get("title"), str) else None
    detail = problem.get("detail") if isinstance(problem.get("detail"), str) else None
    parts = [part for part in (title, detail) if part]
    message = ": ".join(parts) if parts else f"Mailchimp answered HTTP {status} without an error message."
    message = _redact(message, api_key)
    if status in (401, 403):
        raise ProviderAuthError(message, status=status, provider_code=title)
    if status == 429:
        raise ProviderRateLimited(message, retry_after=_retry_after(response))
    if status >= 500:
        raise ProviderUnavailable(message, status=status, provider_code=title)
    raise ProviderError(message, status=status, provider_code=title)


def _redact(text: str, api_key: str) -> str:
    """Mask the key (whole, or its secret part without the data center) wherever it appears."""
    for secret in (api_key, api_key.rsplit("-", 1)[0]):
        if secret:
            text = text.replace(secret, "*" * len(secret))
    return _KEY_IN_TEXT_RE.sub(lambda m: "*" * len(m.group(0)), text)


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), or None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
