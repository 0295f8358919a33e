"""Stripe Connect OAuth (Standard accounts): the account a grant reaches, and deauthorizing it.

https://docs.stripe.com/connect/oauth-reference: the token answer names the connected account
(``stripe_user_id``); calls then carry the platform's key and ``Stripe-Account``. Disconnecting deauthorizes the
platform (``POST https://connect.stripe.com/oauth/deauthorize`` with ``client_id`` and ``stripe_user_id``,
authenticated by the platform's key).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx

from providers.base import ExternalTenant, Grant
from providers.errors import ProviderAuthError
from providers.kit.governor import RateGovernor
from providers.stripe.client import StripeClient

CONNECT_URL = "https://connect.stripe.com"


def discover_tenants(client: httpx.Client, url: Callable[[str], str], grant: Grant) -> list[ExternalTenant]:
    account = grant.token.get("stripe_user_id")
    if not isinstance(account, str) or not account.startswith("acct_"):
        raise ProviderAuthError("Stripe's token answer names no connected account (stripe_user_id).")
    # The grant's access token is a key of the connected account: it reads the account's own name.
    api = StripeClient(
        client, base_url=url(StripeClient.api_base_url), governor=RateGovernor(),
        credentials={"secret_key": grant.access_token},
    )  # fmt: skip
    found = api.get("account")
    profile = found.get("business_profile") or {}
    dashboard = (found.get("settings") or {}).get("dashboard") or {}
    name = profile.get("name") or dashboard.get("display_name") or found.get("email") or account
    mode = "live" if grant.token.get("livemode") else "test"
    return [ExternalTenant(id=account, name=str(name), kind=f"{mode} account")]


def deauthorize(
    client: httpx.Client, url: Callable[[str], str], app: Mapping[str, str], tokens: Mapping[str, Any],
    account: str | None,
) -> None:  # fmt: skip
    if not account:
        return
    connect = StripeClient(
        client, base_url=url(CONNECT_URL), governor=RateGovernor(),
        credentials={"secret_key": app.get("client_secret", "")},
    )  # fmt: skip
    connect.write("POST", "oauth/deauthorize", {"client_id": app.get("client_id", ""), "stripe_user_id": account})
