"""Salesforce REST API (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/)."""

from __future__ import annotations

from providers.base import AuthSpec, AuthType, Category, OAuth2Spec, Provider, RateLimit
from providers.schema import settings_schema

# Salesforce Accounts are companies; "accounts" is kept for the ledger's chart of accounts.
ENTITIES = ("contacts", "leads", "companies", "deals")

PROVIDER = Provider(
    slug="salesforce",
    name="Salesforce",
    category=Category.CRM,
    tier=3,
    description=(
        "Will keep Salesforce contacts, leads, accounts and opportunities in step with VRTX, in both directions."
    ),
    icon="☁️",
    docs_url="https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/",
    auth=AuthSpec(
        type=AuthType.OAUTH2,
        oauth2=OAuth2Spec(
            # Sandbox orgs sign in through test.salesforce.com instead.
            authorize_url="https://login.salesforce.com/services/oauth2/authorize",
            token_url="https://login.salesforce.com/services/oauth2/token",  # noqa: S106 -- a URL, not a secret
            revoke_url="https://login.salesforce.com/services/oauth2/revoke",
            scopes=("api", "refresh_token"),
            pkce=True,
            # Refresh tokens do not rotate unless the org's connected-app policy turns rotation on.
            refresh_token_rotates=False,
            # Not returned: the org's session timeout (15 minutes to 24 hours) decides; refresh on 401.
            access_token_lifetime_s=None,
            tenant_discovery="token response -> instance_url and id (identity URL carrying the org id)",
        ),
    ),
    config_schema=settings_schema(
        entities=ENTITIES,
        properties={
            "default_owner_id": {
                "type": "string",
                "title": "Default record owner",
                "description": "Salesforce user id owning records VRTX creates; empty: the connecting user.",
                "pattern": "^(005[A-Za-z0-9]{12}([A-Za-z0-9]{3})?)?$",
                "default": "",
            },
            "push_contacts_as": {
                "type": "string",
                "title": "Push new VRTX contacts as",
                "description": "Create new VRTX contacts in Salesforce as leads or as contacts.",
                "enum": ["lead", "contact"],
                "default": "lead",
            },
            "conflict_policy": {
                "type": "string",
                "title": "When both sides changed",
                "description": "Which edit wins when a record changed on both sides since the last sync.",
                "enum": ["newest_wins", "vrtx_wins", "salesforce_wins"],
                "default": "newest_wins",
            },
        },
    ),
    capabilities=(
        *(f"pull:{entity}" for entity in ENTITIES),
        "push:contact",
        "push:lead",
        "push:company",
        "push:deal",
    ),
    display_order=210,
    api_base_url="{instance_url}/services/data/v62.0",
    rate_limits=(
        RateLimit(
            15000,
            86400,
            "org",
            "Daily API allocation per org, shared with its other integrations: 15,000 on Developer Edition, "
            "100,000+ on Enterprise; Sforce-Limit-Info reports the real figure",
        ),
    ),
    implemented=frozenset(),
    connection_tester=None,
)
