"""Example Service API (https://developer.example.com/docs): copy this folder to start a provider.

Every value below is a placeholder for a fictional service; replace each with the real provider's published
value (see providers/_template/README.md and docs/writing-a-provider.md).
"""

from __future__ import annotations

from providers.base import AuthSpec, AuthType, Category, OAuth2Spec, Provider, RateLimit
from providers.schema import settings_schema

# Plural entity names; each becomes a "pull:<entity>" capability and an option of the "entities" setting.
ENTITIES = ("contacts", "invoices")

PROVIDER = Provider(
    slug="example",
    name="Example Service",
    category=Category.ACCOUNTING,
    tier=3,
    description="Will keep Example Service contacts and invoices in step with VRTX.",
    icon="🧩",
    docs_url="https://developer.example.com/docs",
    auth=AuthSpec(
        type=AuthType.OAUTH2,
        oauth2=OAuth2Spec(
            authorize_url="https://auth.example.com/oauth2/authorize",
            token_url="https://auth.example.com/oauth2/token",  # noqa: S106 -- a URL, not a secret
            revoke_url="https://auth.example.com/oauth2/revoke",
            # The fewest scopes the capabilities below need.
            scopes=("contacts.read", "contacts.write", "invoices.read", "offline_access"),
            pkce=True,
            refresh_token_rotates=True,
            access_token_lifetime_s=3600,
            tenant_discovery="GET https://api.example.com/v1/me -> organisation.id",
        ),
    ),
    config_schema=settings_schema(
        entities=ENTITIES,
        properties={
            "default_currency": {
                "type": "string",
                "title": "Default currency",
                "description": "ISO 4217 code used when a pushed record names no currency.",
                "pattern": "^[A-Z]{3}$",
                "default": "USD",
            },
        },
    ),
    capabilities=(*(f"pull:{entity}" for entity in ENTITIES), "push:contact", "webhooks"),
    display_order=999,
    api_base_url="https://api.example.com/v1",
    rate_limits=(RateLimit(60, 60, "tenant", "60 requests a minute per connected organisation"),),
    # Only what is built and tested end to end; "connect" needs a connection tester (API-key providers).
    implemented=frozenset(),
    connection_tester=None,
)
