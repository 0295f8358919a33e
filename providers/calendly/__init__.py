"""Calendly API v2 (https://developer.calendly.com/api-docs)."""

from __future__ import annotations

from providers.base import AuthSpec, AuthType, Category, OAuth2Spec, Provider, RateLimit
from providers.schema import settings_schema

ENTITIES = ("events",)

PROVIDER = Provider(
    slug="calendly",
    name="Calendly",
    category=Category.SCHEDULING,
    tier=2,
    description=(
        "Will log meetings booked, rescheduled or cancelled through Calendly on the matching VRTX contacts, "
        "creating contacts for new invitees if you choose."
    ),
    icon="📅",
    docs_url="https://developer.calendly.com/api-docs",
    auth=AuthSpec(
        type=AuthType.OAUTH2,
        oauth2=OAuth2Spec(
            authorize_url="https://auth.calendly.com/oauth/authorize",
            token_url="https://auth.calendly.com/oauth/token",  # noqa: S106 -- a URL, not a secret
            revoke_url="https://auth.calendly.com/oauth/revoke",
            # Apps created after scopes shipped (March 2026) get no API access without explicit scopes.
            scopes=("users:read", "event_types:read", "scheduled_events:read", "webhooks:write"),
            pkce=True,
            # Refresh tokens never expire until used, and each is single use.
            refresh_token_rotates=True,
            access_token_lifetime_s=7200,
            tenant_discovery="GET https://api.calendly.com/users/me -> resource.current_organization (URI)",
        ),
    ),
    config_schema=settings_schema(
        entities=ENTITIES,
        properties={
            "event_types": {
                "type": "array",
                "title": "Event types",
                "description": "Calendly event type URIs to log; empty logs every event type.",
                "items": {
                    "type": "string",
                    "pattern": "^https://api\\.calendly\\.com/event_types/[A-Za-z0-9-]+$",
                },
                "uniqueItems": True,
                "default": [],
            },
            "create_contacts_from_invitees": {
                "type": "boolean",
                "title": "Create contacts for new invitees",
                "description": "Create a VRTX contact when an invitee's email matches no existing contact.",
                "default": True,
            },
            "history_days": {
                "type": "integer",
                "title": "History on first sync (days)",
                "description": "How far back the first sync reaches for scheduled events.",
                "minimum": 1,
                "maximum": 365,
                "default": 30,
            },
        },
    ),
    # Webhook subscriptions need a paid Calendly plan (Standard or above).
    capabilities=("pull:events", "webhooks"),
    display_order=140,
    api_base_url="https://api.calendly.com",
    rate_limits=(RateLimit(500, 60, "user", "500 requests a minute per user on paid plans (50 on the free plan)"),),
    implemented=frozenset(),
    connection_tester=None,
)
