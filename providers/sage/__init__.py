"""Sage Accounting API v3.1 (https://developer.sage.com/accounting/reference/)."""

from __future__ import annotations

from providers.base import AuthSpec, AuthType, Category, OAuth2Spec, Provider, RateLimit
from providers.schema import settings_schema

# Tax rates and ledger accounts are pulled because every pushed invoice line must name both.
ENTITIES = ("contacts", "invoices", "tax_rates", "accounts")

PROVIDER = Provider(
    slug="sage",
    name="Sage Accounting",
    category=Category.ACCOUNTING,
    tier=3,
    description=(
        "Will keep Sage Accounting contacts and sales invoices in step with VRTX and send VRTX contacts and "
        "invoices to the connected Sage business."
    ),
    icon="🟣",
    docs_url="https://developer.sage.com/accounting/reference/",
    auth=AuthSpec(
        type=AuthType.OAUTH2,
        oauth2=OAuth2Spec(
            authorize_url="https://www.sageone.com/oauth2/auth/central",
            token_url="https://oauth.accounting.sage.com/token",  # noqa: S106 -- a URL, not a secret
            scopes=("full_access",),
            pkce=False,
            # Single use, and unused refresh tokens expire after 31 days.
            refresh_token_rotates=True,
            access_token_lifetime_s=300,
            # Limits the country picker to regions served by API v3.1.
            extra_authorize_params={"filter": "apiv3.1"},
            tenant_discovery=(
                "GET https://api.accounting.sage.com/v3.1/businesses -> business id, "
                "sent as the X-Business header (default: the user's lead business)"
            ),
        ),
    ),
    config_schema=settings_schema(
        entities=ENTITIES,
        properties={
            "default_sales_account_code": {
                "type": "string",
                "title": "Default sales ledger account",
                "description": "Nominal code of the sales account for lines that name none (e.g. 4000).",
                "pattern": "^[0-9A-Za-z]{1,10}$",
                "default": "4000",
            },
            "default_tax_type": {
                "type": "string",
                "title": "Default tax rate",
                "description": "Sage tax rate id for pushed lines that name none (e.g. GB_STANDARD).",
                "maxLength": 50,
                "default": "",
            },
        },
    ),
    capabilities=(
        *(f"pull:{entity}" for entity in ENTITIES),
        "push:contact",
        "push:invoice",
    ),
    display_order=230,
    api_base_url="https://api.accounting.sage.com/v3.1",
    rate_limits=(
        # Sage publishes no figure for API v3.1; pace conservatively and back off on 429.
        RateLimit(100, 60, "business", "Conservative pacing: Sage Accounting publishes no request rate"),
    ),
    implemented=frozenset(),
    connection_tester=None,
)
