"""NetSuite REST: https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/chapter_1540391670.html"""

from __future__ import annotations

from providers.base import AuthField, AuthSpec, AuthType, Category, OAuth2Spec, Provider, RateLimit
from providers.schema import settings_schema

ENTITIES = ("contacts", "invoices", "payments", "products", "inventory_levels", "tax_rates", "accounts")

PROVIDER = Provider(
    slug="netsuite",
    name="NetSuite",
    category=Category.ERP,
    tier=3,
    description=(
        "Will bring NetSuite customers, invoices, payments, items, stock levels and the chart of accounts "
        "into VRTX, and send VRTX customers, invoices and payments to NetSuite."
    ),
    icon="🏢",
    docs_url="https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/chapter_1540391670.html",
    auth=AuthSpec(
        type=AuthType.OAUTH2,
        oauth2=OAuth2Spec(
            # Both hosts carry the account id, so the admin must enter it before consent.
            authorize_url="https://{account_id}.app.netsuite.com/app/login/oauth2/authorize.nl",
            token_url="https://{account_id}.suitetalk.api.netsuite.com/services/rest/auth/oauth2/v1/token",  # noqa: S106 -- a URL, not a secret
            revoke_url=None,
            scopes=("rest_webservices",),
            pkce=True,
            # Refresh tokens of the code grant expire 7 days after consent whatever their use; lasting
            # connections need the client-credentials (certificate) flow.
            refresh_token_rotates=False,
            access_token_lifetime_s=3600,
            tenant_discovery=(
                "account id entered by the admin, in host form (123456_SB1 -> 123456-sb1); "
                "it prefixes every NetSuite host"
            ),
        ),
        fields=(
            AuthField(
                name="account_id",
                label="NetSuite account ID",
                secret=False,
                pattern="^[A-Za-z0-9]+([_-](SB|sb|RP|rp)[0-9]*)?$",
                description="Setup > Company > Company Information: e.g. 1234567, or 1234567_SB1 (sandbox).",
            ),
        ),
    ),
    config_schema=settings_schema(
        entities=ENTITIES,
        properties={
            "subsidiary_id": {
                "type": "string",
                "title": "Subsidiary",
                "description": "Internal id of the subsidiary pushed records belong to (OneWorld accounts).",
                "pattern": "^[0-9]*$",
                "default": "",
            },
            "default_item_id": {
                "type": "string",
                "title": "Default item",
                "description": "Internal id of the item for pushed invoice lines without a matching item.",
                "pattern": "^[0-9]*$",
                "default": "",
            },
            "location_ids": {
                "type": "array",
                "title": "Inventory locations",
                "description": "Internal ids of locations whose stock levels are pulled; empty pulls all.",
                "items": {"type": "string", "pattern": "^[0-9]+$"},
                "uniqueItems": True,
                "default": [],
            },
            "include_inactive": {
                "type": "boolean",
                "title": "Include inactive records",
                "description": "Also pull customers and items marked inactive.",
                "default": False,
            },
        },
    ),
    capabilities=(
        *(f"pull:{entity}" for entity in ENTITIES),
        "push:contact",
        "push:invoice",
        "push:payment",
    ),
    display_order=220,
    api_base_url="https://{account_id}.suitetalk.api.netsuite.com/services/rest",
    rate_limits=(
        # NetSuite governs concurrency (15 per account, +10 per SuiteCloud Plus licence) rather than a
        # published rate, and shares it with the account's other integrations: pace conservatively.
        RateLimit(60, 60, "account", "Conservative pacing under NetSuite's per-account concurrency limit"),
    ),
    implemented=frozenset(),
    connection_tester=None,
)
