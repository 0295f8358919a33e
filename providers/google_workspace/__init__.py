"""Gmail and Google Calendar for Google Workspace and Gmail accounts (https://developers.google.com/gmail/api,
https://developers.google.com/calendar/api). One connection is one Google account, connected by its user through
OAuth (a tenant's connection is one mailbox: domain-wide delegation is not offered); its messages and meetings
become canonical EmailMessage and CalendarEvent records.
"""

from __future__ import annotations

from providers.base import AuthSpec, AuthType, Category, OAuth2Spec, Provider, PullSpec, RateLimit, Sealing
from providers.schema import settings_schema

from .client import GoogleClient
from .fields import RECORD_FIELDS
from .identity import discover_tenants
from .mappers import MAPPERS, MODELS
from .push import PUSHES
from .sandbox_credentials import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_PUSH_AUDIENCE,
    DEMO_PUSH_SERVICE_ACCOUNT,
    DEMO_TOPIC,
)
from .source import STREAMS
from .watch import REVOCATION, WATCHES
from .webhooks import WEBHOOKS

ENTITIES = tuple(stream.name for stream in STREAMS)
PULLS = tuple(f"pull:{entity}" for entity in ENTITIES)
PUSH_CAPABILITIES = tuple(f"push:{entity}" for entity in PUSHES.entities)

PROVIDER = Provider(
    slug="google_workspace",
    name="Gmail / Google Workspace",
    category=Category.EMAIL,
    tier=1,
    description=(
        "Logs a Google account's Gmail conversations and Google Calendar meetings in VRTX: messages (headers, "
        "labels, snippet; bodies only if the tenant chooses, encrypted) and events with their attendees' answers, "
        "kept in step incrementally. "
        "VRTX sends email through the mailbox (replies thread) and books meetings with invitations."
    ),
    icon="📧",
    docs_url="https://developers.google.com/gmail/api",
    auth=AuthSpec(
        type=AuthType.OAUTH2,
        oauth2=OAuth2Spec(
            authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
            token_url="https://oauth2.googleapis.com/token",  # noqa: S106 -- a URL, not a secret
            revoke_url="https://oauth2.googleapis.com/revoke",
            # The narrowest scopes what is built needs: gmail.metadata cannot search by date (q), so readonly; sending
            # needs gmail.send; booking meetings calendar.events (which reads them too).
            scopes=(
                "https://www.googleapis.com/auth/gmail.readonly",
                "https://www.googleapis.com/auth/gmail.send",
                "https://www.googleapis.com/auth/calendar.events",
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
            "sync_calendar": {
                "type": "boolean",
                "title": "Sync calendar",
                "description": "Also log the chosen Google Calendar calendars' events.",
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
            "message_bodies": {
                "type": "string",
                "title": "Message bodies",
                "description": (
                    "not_stored: only headers, labels and the snippet are kept. encrypted: the text and html bodies "
                    "are kept too, encrypted under this connection's own key; switching back to not_stored deletes "
                    "that key, and with it every body kept so far. Attachments' content is never kept."
                ),
                "enum": ["not_stored", "encrypted"],
                "default": "not_stored",
            },
            "history_days": {
                "type": "integer",
                "title": "History on first sync (days)",
                "description": "How far back the first sync reaches.",
                "minimum": 1,
                "maximum": 365,
                "default": 90,
            },
        },
    ),
    capabilities=(*PULLS, *PUSH_CAPABILITIES, "webhooks"),
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
    implemented=frozenset({"connect", *PULLS, *PUSH_CAPABILITIES, "webhooks"}),
    discover_tenants=discover_tenants,
    client=GoogleClient.for_connection,
    pulls=PullSpec(
        streams=STREAMS,
        mappers=MAPPERS,
        models=MODELS,
        record_fields=RECORD_FIELDS,
        sealing=Sealing("message_bodies", "encrypted", {"messages": ("body_text", "body_html")}),
    ),
    pushes=PUSHES,
    webhooks=WEBHOOKS,
    watches=WATCHES,
    revocation=REVOCATION,
    sandbox="providers.google_workspace.sandbox:create_app",
    # The demo app's notifications: its Pub/Sub topic, and what the push subscription's tokens say.
    sandbox_credentials={
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
        "pubsub_topic": DEMO_TOPIC,
        "push_audience": DEMO_PUSH_AUDIENCE,
        "push_service_account": DEMO_PUSH_SERVICE_ACCOUNT,
    },
)
