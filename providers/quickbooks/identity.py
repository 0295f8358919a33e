"""QuickBooks identity: the company a grant reaches is the ``realmId`` Intuit puts on the OAuth callback, beside the
code (reference section 2, "OAuth2"); its name comes from ``companyinfo``. The realm is checked by that call: a
token that does not reach it (a realmId changed on the way) is refused by QuickBooks, and nothing is connected."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from providers.base import ExternalTenant, Grant
from providers.errors import ProviderAuthError
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
