"""Who a Microsoft grant is: the signed-in user's mailbox (https://learn.microsoft.com/en-us/graph/api/user-get,
``GET /me``) and the Microsoft organisation (Entra tenant) it belongs to, the access token's ``tid`` claim
(https://learn.microsoft.com/en-us/entra/identity-platform/access-token-claims-reference). One connection is one
mailbox; its address, lower-cased, is the connection's external id.

Microsoft asks clients not to rely on the contents of access tokens; the tenant id is read only as a label of the
connection, never to authorise anything, and a token that is not a readable JWT just leaves it unknown.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable

import httpx

from providers.base import ExternalTenant, Grant
from providers.errors import ProviderAuthError
from providers.kit.governor import RateGovernor
from providers.microsoft365.client import GRAPH_BASE, GraphClient


def discover_tenants(client: httpx.Client, url: Callable[[str], str], grant: Grant) -> list[ExternalTenant]:
    token = grant.access_token
    api = GraphClient(client, base_url=url(GRAPH_BASE), governor=RateGovernor(), access_token=lambda: token)
    me = api.get("me")
    # `mail` is the primary SMTP address; a user without one (some personal accounts) signs in with it as the UPN.
    address = me.get("mail") or me.get("userPrincipalName")
    if not isinstance(address, str) or "@" not in address:
        raise ProviderAuthError("Microsoft Graph names no mailbox for this user.")
    return [ExternalTenant(id=address.lower(), name=address, kind="mailbox", directory_id=token_tenant_id(token))]


def token_tenant_id(token: str) -> str | None:
    """The ``tid`` claim of a JWT-shaped access token (read, not verified), else None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    tid = claims.get("tid") if isinstance(claims, dict) else None
    return tid.lower() if isinstance(tid, str) and tid else None


# The answers that mean the user may not grant the app's permissions alone: AADSTS65001 (the user or administrator
# has not consented: the organisation lets only administrators consent, or they withdrew it) and AADSTS90094 (the
# grant requires admin permission). https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes
ADMIN_CONSENT_CODES = ("AADSTS65001", "AADSTS90094")


def needs_admin_consent(error: str, description: str) -> bool:
    """Whether a refusal (an OAuth error and its description) asks for an administrator's consent."""
    return any(description.startswith(f"{code}:") for code in ADMIN_CONSENT_CODES)
