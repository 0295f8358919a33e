"""Microsoft Graph v1.0 for Outlook mail and calendar (https://learn.microsoft.com/en-us/graph/overview)."""

from __future__ import annotations

from providers.base import AuthSpec, AuthType, Category, OAuth2Spec, Provider, RateLimit
from providers.schema import settings_schema

ENTITIES = ("messages", "events")

PROVIDER = Provider(
    slug="microsoft365",
    name="Microsoft 365",
    category=Category.EMAIL,
    tier=1,
    description=(
        "Will log Outlook conversations and calendar meetings with your contacts against their VRTX records, "
        "and send email from VRTX through the user's own mailbox."
    ),
    icon="📬",
    docs_url="https://learn.microsoft.com/en-us/graph/overview",
    auth=AuthSpec(
        type=AuthType.OAUTH2,
        oauth2=OAuth2Spec(
            # "common" lets any work, school or personal account sign in; the token's tid names its tenant.
            authorize_url="https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
            token_url="https://login.microsoftonline.com/common/oauth2/v2.0/token",  # noqa: S106 -- a URL, not a secret
            # The identity platform has no token revocation endpoint.
            revoke_url=None,
            scopes=("offline_access", "User.Read", "Mail.Read", "Mail.Send", "Calendars.Read"),
            pkce=True,
            # Each refresh returns a new refresh token, but the old one stays valid until it expires (90 d).
            refresh_token_rotates=False,
            # Lifetimes are randomised between 60 and 90 minutes; plan for the shortest.
            access_token_lifetime_s=3600,
            tenant_discovery="tid claim of the token; GET https://graph.microsoft.com/v1.0/me -> the mailbox",
        ),
    ),
    config_schema=settings_schema(
        entities=ENTITIES,
        properties={
            "folders": {
                "type": "array",
                "title": "Mail folders to sync",
                "description": "Folder ids or well-known names (inbox, sentitems) whose messages are logged.",
                "items": {"type": "string", "minLength": 1},
                "uniqueItems": True,
                "default": ["inbox", "sentitems"],
            },
            "match_contacts_only": {
                "type": "boolean",
                "title": "Only messages with known contacts",
                "description": "Log a message only when a sender or recipient is a VRTX contact.",
                "default": True,
            },
            "sync_calendar": {
                "type": "boolean",
                "title": "Sync calendar",
                "description": "Also log Outlook calendar events that have VRTX contacts as attendees.",
                "default": True,
            },
            "history_days": {
                "type": "integer",
                "title": "History on first sync (days)",
                "description": "How far back the first sync reaches.",
                "minimum": 1,
                "maximum": 365,
                "default": 30,
            },
        },
    ),
    capabilities=("pull:messages", "pull:events", "push:message", "webhooks"),
    display_order=50,
    api_base_url="https://graph.microsoft.com/v1.0",
    rate_limits=(
        RateLimit(10000, 600, "mailbox", "Outlook: 10,000 requests per 10 minutes per app per mailbox (4 in flight)"),
        RateLimit(130000, 10, "app", "130,000 requests per 10 seconds per app across all tenants"),
    ),
    implemented=frozenset(),
    connection_tester=None,
)
