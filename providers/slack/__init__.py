"""Slack Web API and slash commands (https://docs.slack.dev/apis/web-api/)."""

from __future__ import annotations

from providers.base import AuthSpec, AuthType, Category, OAuth2Spec, Provider, RateLimit
from providers.schema import events_setting, settings_schema

PROVIDER = Provider(
    slug="slack",
    name="Slack",
    category=Category.COMMUNICATION,
    tier=2,
    description=(
        "Will post VRTX notifications (new contacts, paid invoices, failed syncs) to a Slack channel and "
        "answer VRTX slash commands such as contact look-ups."
    ),
    icon="💬",
    docs_url="https://docs.slack.dev/apis/web-api/",
    auth=AuthSpec(
        type=AuthType.OAUTH2,
        oauth2=OAuth2Spec(
            authorize_url="https://slack.com/oauth/v2/authorize",
            token_url="https://slack.com/api/oauth.v2.access",  # noqa: S106 -- a URL, not a secret
            revoke_url="https://slack.com/api/auth.revoke",
            # Bot scopes only: post to channels the bot was invited to, and receive slash commands.
            scopes=("chat:write", "commands"),
            pkce=False,
            # With token rotation on (VRTX enables it on its app), tokens last 12 h; refreshes are single use.
            refresh_token_rotates=True,
            access_token_lifetime_s=43200,
            scope_separator=",",
            tenant_discovery="oauth.v2.access response -> team.id (and enterprise.id on Enterprise Grid)",
        ),
    ),
    config_schema=settings_schema(
        entities=(),
        properties={
            "notification_channel": {
                "type": "string",
                "title": "Notification channel",
                "description": "Channel id (e.g. C0123456789) to post to; invite the VRTX app there first.",
                "pattern": "^[CG][A-Z0-9]{8,}$",
            },
            "notify_on": events_setting(
                "Notify on",
                "VRTX events that post a message to the channel.",
                ["invoice.paid", "sync.failed"],
            ),
        },
    ),
    capabilities=("push:notification", "commands"),
    display_order=110,
    api_base_url="https://slack.com/api",
    rate_limits=(
        RateLimit(1, 1, "channel", "chat.postMessage: about one message a second per channel"),
        RateLimit(50, 60, "workspace", "Tier 3 methods: 50+ calls a minute per method per workspace"),
    ),
    implemented=frozenset(),
    connection_tester=None,
)
