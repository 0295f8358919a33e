"""Microsoft Graph v1.0 for Outlook mail and calendar (https://learn.microsoft.com/en-us/graph/overview). One
connection is one Microsoft 365 mailbox, connected by its user through the Microsoft identity platform; its
messages and meetings become canonical EmailMessage and CalendarEvent records, kept in step through Graph's delta
queries and Graph's change notifications (``watch``, ``webhooks``). VRTX sends email from the mailbox (replies
thread) and books, moves and cancels meetings (``push``).
"""

from __future__ import annotations

from providers.base import AuthSpec, AuthType, Category, OAuth2Spec, Provider, PullSpec, RateLimit, Sealing
from providers.schema import settings_schema

from .client import GraphClient
from .fields import RECORD_FIELDS
from .identity import discover_tenants, needs_admin_consent
from .mappers import MAPPERS, MODELS
from .push import PUSHES
from .sandbox_credentials import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from .source import STREAMS
from .watch import REVOCATION, WATCHES
from .webhooks import WEBHOOKS

ENTITIES = tuple(stream.name for stream in STREAMS)
PULLS = tuple(f"pull:{entity}" for entity in ENTITIES)
PUSH_CAPABILITIES = tuple(f"push:{entity}" for entity in PUSHES.entities)

PROVIDER = Provider(
    slug="microsoft365",
    name="Microsoft 365",
    category=Category.EMAIL,
    tier=1,
    description=(
        "Logs a Microsoft 365 mailbox's Outlook conversations and calendar meetings in VRTX: messages of the "
        "chosen folders (recipients, flags, preview; bodies only if the tenant chooses, encrypted) and events "
        "with their attendees' answers, kept in step incrementally. Disconnecting deletes the tokens VRTX holds "
        "(Microsoft offers apps no way to revoke them: the user withdraws VRTX's access among their Microsoft "
        "account's app permissions). VRTX sends email from the mailbox (replies thread with the message "
        "answered) and books, moves and cancels meetings with invitations. Outlook's change notifications bring "
        "a change in within seconds."
    ),
    icon="📬",
    docs_url="https://learn.microsoft.com/en-us/graph/overview",
    auth=AuthSpec(
        type=AuthType.OAUTH2,
        oauth2=OAuth2Spec(
            # "common" lets any work, school or personal account sign in; the token's tid names its tenant.
            authorize_url="https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
            token_url="https://login.microsoftonline.com/common/oauth2/v2.0/token",  # noqa: S106 -- a URL, not a secret
            # The identity platform has no token revocation endpoint: a disconnect deletes the stored tokens only.
            revoke_url=None,
            # The narrowest scopes what is built needs: sending makes a draft first (Mail.ReadWrite, which reads
            # mail too), then sends it (Mail.Send); booking meetings Calendars.ReadWrite (which reads them too).
            scopes=("offline_access", "User.Read", "Mail.ReadWrite", "Mail.Send", "Calendars.ReadWrite"),
            pkce=True,
            # Each refresh returns a new refresh token, stored at once (single-flight); the old one stays valid
            # until its own expiry (90 days), so a refresh whose answer was lost is retried with it.
            refresh_token_rotates=True,
            # Lifetimes are randomised between 60 and 90 minutes; plan for the shortest.
            access_token_lifetime_s=3600,
            tenant_discovery="GET https://graph.microsoft.com/v1.0/me -> mail; the organisation: the token's tid",
            needs_admin_consent=needs_admin_consent,
        ),
    ),
    config_schema=settings_schema(
        entities=ENTITIES,
        properties={
            "folders": {
                "type": "array",
                "title": "Mail folders to sync",
                "description": "Folder ids or well-known names (inbox, sentitems) whose messages are logged.",
                # Graph's folder ids are base64url; well-known names are letters.
                "items": {"type": "string", "minLength": 1, "maxLength": 512, "pattern": "^[A-Za-z0-9_=+/-]+$"},
                "maxItems": 20,
                "uniqueItems": True,
                "default": ["inbox", "sentitems"],
            },
            "sync_calendar": {
                "type": "boolean",
                "title": "Sync calendar",
                "description": "Also log the mailbox's Outlook calendar events.",
                "default": True,
            },
            "message_bodies": {
                "type": "string",
                "title": "Message bodies",
                "description": (
                    "not_stored: only recipients, flags and the preview are kept. encrypted: the body is kept too, "
                    "encrypted under this connection's own key; switching back to not_stored deletes that key, "
                    "and with it every body kept so far. Attachments' content is never kept."
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
                "default": 30,
            },
        },
    ),
    capabilities=(*PULLS, *PUSH_CAPABILITIES, "webhooks"),
    display_order=50,
    api_base_url="https://graph.microsoft.com/v1.0",
    rate_limits=(
        RateLimit(10000, 600, "mailbox", "Outlook: 10,000 requests per 10 minutes per app per mailbox (4 in flight)"),
        RateLimit(130000, 10, "app", "130,000 requests per 10 seconds per app across all tenants"),
    ),
    implemented=frozenset({"connect", *PULLS, *PUSH_CAPABILITIES, "webhooks"}),
    discover_tenants=discover_tenants,
    client=GraphClient.for_connection,
    pulls=PullSpec(
        streams=STREAMS,
        mappers=MAPPERS,
        models=MODELS,
        record_fields=RECORD_FIELDS,
        max_concurrent_calls=4,  # Outlook's MailboxConcurrency: a fifth call in flight is answered 429
        sealing=Sealing("message_bodies", "encrypted", {"messages": ("body_text", "body_html")}),
    ),
    pushes=PUSHES,
    webhooks=WEBHOOKS,
    watches=WATCHES,
    revocation=REVOCATION,
    sandbox="providers.microsoft365.sandbox:create_app",
    sandbox_credentials={"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET},
)
