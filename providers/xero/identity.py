"""Xero identity: which organisations a grant reaches (https://developer.xero.com/documentation/guides/oauth2/tenants)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx

from providers.base import ExternalTenant, Grant, Holdings, ProviderConnection, RevocationSpec
from providers.errors import ProviderRejected
from providers.kit.client import ApiClient
from providers.kit.governor import RateGovernor
from providers.kit.signatures import unverified_claims

IDENTITY_URL = "https://api.xero.com"


def auth_event_id(access_token: str) -> str | None:
    """The ``authentication_event_id`` claim of Xero's JWT access token: which consent produced it (unverified:
    the token came straight from Xero's token endpoint, and the claim only narrows which organisations we ask
    about)."""
    value = unverified_claims(access_token).get("authentication_event_id")
    return str(value) if value else None


class _Identity(ApiClient):
    name = "Xero"  # the identity API: no organisation yet, only the grant's token
    api_base_url = IDENTITY_URL


def discover_tenants(client: httpx.Client, url: Callable[[str], str], grant: Grant) -> list[ExternalTenant]:
    # https://developer.xero.com/documentation/guides/oauth2/auth-flow#5-check-the-tenants-youre-authorized-to-access
    # Without authEventId, /connections lists every organisation the user ever connected to this app; with it,
    # only those granted in this consent. Errors are the kit's (a refused token is ProviderAuthError).
    event = auth_event_id(grant.access_token)
    identity = _Identity(
        client, base_url=url(IDENTITY_URL), governor=RateGovernor(), access_token=lambda: grant.access_token
    )
    connections = identity.decode(identity.send("GET", "connections", params={"authEventId": event} if event else None))
    return [
        ExternalTenant(
            id=entry["tenantId"],
            name=entry.get("tenantName") or entry["tenantId"],
            kind=str(entry.get("tenantType", "ORGANISATION")).lower(),
            connection_id=entry.get("id"),
        )
        for entry in connections
        if entry.get("tenantType", "ORGANISATION") == "ORGANISATION"
    ]


def held(tokens: Mapping[str, Any], meta: Mapping[str, Any]) -> Holdings:
    # Revoking removes every connection the Xero user made to the app, whichever consent made it: the grant two
    # stored connections share is (app, Xero user), whatever refresh token each holds. A connection's links: the
    # organisation it chose, or (still choosing) every one its consent connected.
    claims = unverified_claims(str(tokens.get("access_token", "")))
    user = claims.get("xero_userid")
    chosen = meta.get("provider_connection_id")
    offered = [str(o["connection_id"]) for o in meta.get("organisations", []) if o.get("connection_id")]
    return Holdings(f"{claims.get('client_id')}/{user}" if user else None, (str(chosen),) if chosen else tuple(offered))


def unlink(connection: ProviderConnection, connection_id: str) -> None:
    # https://developer.xero.com/documentation/guides/oauth2/tenants#removing-connections: 204, or 404 when gone.
    try:
        _Identity.for_connection(connection).send("DELETE", f"connections/{connection_id}")
    except ProviderRejected as exc:
        if exc.status != 404:
            raise


REVOCATION = RevocationSpec(held=held, unlink=unlink)
