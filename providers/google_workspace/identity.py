"""Who a Google grant is: the mailbox (https://developers.google.com/gmail/api/reference/rest/v1/users/getProfile).
One connection is one Google account; its address is the connection's external id."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from providers.base import ExternalTenant, Grant
from providers.errors import ProviderAuthError
from providers.google_workspace.client import GMAIL_BASE, GoogleClient
from providers.kit.governor import RateGovernor


def discover_tenants(client: httpx.Client, url: Callable[[str], str], grant: Grant) -> list[ExternalTenant]:
    token = grant.access_token
    # "me": the grant's own user, whose address the profile tells.
    api = GoogleClient(
        client, base_url=url(GMAIL_BASE), governor=RateGovernor(), access_token=lambda: token, tenant_id="me"
    )
    profile = api.get("profile")
    address = profile.get("emailAddress")
    if not isinstance(address, str) or "@" not in address:
        raise ProviderAuthError("Google's profile names no mailbox for this grant.")
    return [ExternalTenant(id=address.lower(), name=address, kind="mailbox")]
