"""Xero identity: which organisations a grant reaches (https://developer.xero.com/documentation/guides/oauth2/tenants)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import httpx

from providers.base import ExternalTenant
from providers.errors import ProviderAuthError, ProviderUnavailable

CONNECTIONS_URL = "https://api.xero.com/connections"


def auth_event_id(access_token: str) -> str | None:
    """The ``authentication_event_id`` claim of Xero's JWT access token: which consent produced it.

    Read without verifying the signature: the token came straight from Xero's token endpoint, and the claim
    only narrows which organisations we ask about.
    """
    parts = access_token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    value = claims.get("authentication_event_id") if isinstance(claims, dict) else None
    return str(value) if value else None


def discover_tenants(client: httpx.Client, url: Callable[[str], str], access_token: str) -> list[ExternalTenant]:
    # https://developer.xero.com/documentation/guides/oauth2/auth-flow#5-check-the-tenants-youre-authorized-to-access
    # Without authEventId, /connections lists every organisation the user ever connected to this app; with it,
    # only those granted in this consent.
    event = auth_event_id(access_token)
    try:
        response = client.get(
            url(CONNECTIONS_URL),
            params={"authEventId": event} if event else None,
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
        )
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(f"Xero could not be reached to list organisations ({type(exc).__name__})") from exc
    if response.status_code in (401, 403):
        raise ProviderAuthError("Xero refused to list the organisations of this grant", status=response.status_code)
    if response.status_code >= 400:
        raise ProviderUnavailable(
            f"Xero answered {response.status_code} listing organisations", status=response.status_code
        )
    return [
        ExternalTenant(
            id=entry["tenantId"],
            name=entry.get("tenantName") or entry["tenantId"],
            kind=str(entry.get("tenantType", "ORGANISATION")).lower(),
            connection_id=entry.get("id"),
        )
        for entry in response.json()
        if entry.get("tenantType", "ORGANISATION") == "ORGANISATION"
    ]
