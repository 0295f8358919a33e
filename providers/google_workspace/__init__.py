"""Gmail and Google Calendar APIs for Google Workspace mailboxes (https://developers.google.com/gmail/api)."""

from __future__ import annotations

from providers.base import AuthSpec, AuthType, Category, OAuth2Spec, Provider, RateLimit
from providers.schema import settings_schema

ENTITIES = ("messages", "events")

PROVIDER = Provider(
    slug="google_workspace",
    name="Gmail / Google Workspace",
    category=Category.EMAIL,
    tier=1,
    description=(
        "Will log Gmail conversations and Google Calendar meetings with your contacts against their VRTX "
        "records, and send email from VRTX through the user's own mailbox."
    ),
    icon="📧",
    docs_url="https://developers.google.com/gmail/api",
    auth=AuthSpec(
        type=AuthType.OAUTH2,
        oauth2=OAuth2Spec(
            authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
            token_url="https://oauth2.googleapis.com/token",  # noqa: S106 -- a URL, not a secret
            revoke_url="https://oauth2.googleapis.com/revoke",
            # Bodies are needed to log conversations, so gmail.metadata is not enough.
            scopes=(
                "https://www.googleapis.com/auth/gmail.readonly",
                "https://www.googleapis.com/auth/gmail.send",
                "https://www.googleapis.com/auth/calendar.events.readonly",
            ),
            pkce=True,
            refresh_token_rotates=False,
            access_token_lifetime_s=3599,
            # Google issues a refresh token only with access_type=offline, and again only on renewed consent.
            extra_authorize_params={
                "access_type": "offline",
                "prompt": "consent",
                "include_granted_scopes": "true",
            },
            tenant_discovery="GET https://gmail.googleapis.com/gmail/v1/users/me/profile -> emailAddress",
        ),
    ),
    config_schema=settings_schema(
        entities=ENTITIES,
        properties={
            "mailbox_labels": {
                "type": "array",
                "title": "Labels to sync",
                "description": "Gmail label ids whose messages are logged (e.g. INBOX, SENT).",
                "items": {"type": "string", "minLength": 1},
                "uniqueItems": True,
                "default": ["INBOX", "SENT"],
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
                "description": "Also log Google Calendar events that have VRTX contacts as attendees.",
                "default": True,
            },
            "calendar_ids": {
                "type": "array",
                "title": "Calendars",
                "description": "Calendar ids to read; 'primary' is the user's own calendar.",
                "items": {"type": "string", "minLength": 1},
                "uniqueItems": True,
                "default": ["primary"],
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
    display_order=40,
    # Calendar is served from https://www.googleapis.com/calendar/v3, a separate host.
    api_base_url="https://gmail.googleapis.com",
    rate_limits=(
        RateLimit(
            1200,
            60,
            "user",
            "6,000 quota units a minute per mailbox for projects created from May 2026 "
            "(messages.list/get cost 5 units; messages.send 100)",
        ),
        RateLimit(240000, 60, "app", "1,200,000 quota units a minute per Google Cloud project"),
    ),
    implemented=frozenset(),
    connection_tester=None,
)
