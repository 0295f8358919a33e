"""HubSpot CRM API v3 (https://developers.hubspot.com/docs/api/overview)."""

from __future__ import annotations

from providers.base import AuthSpec, AuthType, Category, OAuth2Spec, Provider, RateLimit
from providers.schema import settings_schema

ENTITIES = ("contacts", "deals")

PROVIDER = Provider(
    slug="hubspot",
    name="HubSpot",
    category=Category.CRM,
    tier=2,
    description=(
        "Will keep HubSpot contacts in step with VRTX in both directions and bring HubSpot deals into VRTX, "
        "updated as HubSpot reports changes."
    ),
    icon="🧡",
    docs_url="https://developers.hubspot.com/docs/api/overview",
    auth=AuthSpec(
        type=AuthType.OAUTH2,
        oauth2=OAuth2Spec(
            authorize_url="https://app.hubspot.com/oauth/authorize",
            # The v1 token endpoint is deprecated from 16 February 2027.
            token_url="https://api.hubapi.com/oauth/v3/token",  # noqa: S106 -- a URL, not a secret
            revoke_url="https://api.hubapi.com/oauth/v3/token/revoke",
            # "oauth" is mandatory for every HubSpot app.
            scopes=(
                "oauth",
                "crm.objects.contacts.read",
                "crm.objects.contacts.write",
                "crm.objects.deals.read",
            ),
            pkce=True,
            refresh_token_rotates=False,
            access_token_lifetime_s=1800,
            tenant_discovery="hub_id in the token response (the HubSpot account, one token per install)",
        ),
    ),
    config_schema=settings_schema(
        entities=ENTITIES,
        properties={
            "deal_pipelines": {
                "type": "array",
                "title": "Deal pipelines",
                "description": "Pipeline ids whose deals are pulled; empty pulls every pipeline.",
                "items": {"type": "string", "minLength": 1},
                "uniqueItems": True,
                "default": [],
            },
            "create_missing_contacts": {
                "type": "boolean",
                "title": "Create missing contacts in HubSpot",
                "description": (
                    "Create a HubSpot contact for a pushed VRTX contact with no match by email; "
                    "when off, only existing contacts are updated."
                ),
                "default": True,
            },
            "include_archived": {
                "type": "boolean",
                "title": "Include archived records",
                "description": "Also pull contacts and deals archived in HubSpot.",
                "default": False,
            },
        },
    ),
    capabilities=("pull:contacts", "pull:deals", "push:contact", "webhooks"),
    display_order=130,
    api_base_url="https://api.hubapi.com",
    rate_limits=(
        RateLimit(100, 10, "account", "Public OAuth apps: 100 requests per 10 seconds per installed account"),
        # Incremental pulls run through CRM search, which has its own, lower limit and no rate headers.
        RateLimit(4, 1, "account", "CRM search: 4 requests a second per account"),
    ),
    implemented=frozenset(),
    connection_tester=None,
)
