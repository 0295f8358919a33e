"""QuickBooks identity: the company a grant reaches is the ``realmId`` Intuit puts on the OAuth callback, beside the
code (reference section 2, "OAuth2"); its name comes from ``companyinfo``. The realm is checked by that call: a
token that does not reach it (a realmId changed on the way) is refused by QuickBooks, and nothing is connected.
Disconnecting revokes the grant Intuit's way: a JSON body, not RFC 7009's form (``revoke_grant``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx

from providers.base import ExternalTenant, Grant
from providers.errors import ProviderAuthError, ProviderError, ProviderUnavailable
from providers.kit.governor import RateGovernor
from providers.kit.values import text

from .client import QuickBooksClient


def discover_tenants(client: httpx.Client, url: Callable[[str], str], grant: Grant) -> list[ExternalTenant]:
    # https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/companyinfo
    realm = (grant.callback.get("realmId") or "").strip()
    if not realm.isdigit():
        raise ProviderAuthError("QuickBooks named no company (realmId) on the authorisation callback.")
    company = QuickBooksClient(
        client,
        base_url=url(QuickBooksClient.api_base_url),
        governor=RateGovernor(),
        access_token=lambda: grant.access_token,
        tenant_id=realm,
    )
    info = company.get(f"companyinfo/{realm}").get("CompanyInfo")
    name = text(info.get("CompanyName")) if isinstance(info, dict) else None
    return [ExternalTenant(id=realm, name=name or realm, kind="company")]


REVOKE_URL = "https://developer.api.intuit.com/v2/oauth2/tokens/revoke"


def revoke_grant(
    client: httpx.Client, url: Callable[[str], str], app: Mapping[str, str], tokens: Mapping[str, Any],
    account: str | None,
) -> None:  # fmt: skip
    """Revoke the grant (the refresh token revokes all of it): ``{"token": ...}`` as JSON, the app authenticated by
    HTTP Basic as at the token endpoint.
    https://developer.intuit.com/app/developer/qbo/docs/develop/authentication-and-authorization/oauth-2.0#revoke-token-disconnect
    """
    token = tokens.get("refresh_token") or tokens.get("access_token")
    basic = httpx.BasicAuth(app.get("client_id", ""), app.get("client_secret", ""))
    try:
        response = client.post(
            url(REVOKE_URL), json={"token": token}, auth=basic, headers={"Accept": "application/json"}
        )
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(f"Could not reach Intuit to revoke the grant: {type(exc).__name__}") from exc
    if response.is_error:
        raise ProviderError(
            f"Intuit refused to revoke the grant (HTTP {response.status_code}).", status=response.status_code
        )
