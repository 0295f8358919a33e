"""Mailchimp: contact sync and campaigns. A tenant can connect with an API key; syncs are on the roadmap."""

from __future__ import annotations

from providers.base import AuthField, AuthSpec, AuthType, Category, Provider, RateLimit
from providers.schema import settings_schema

from .connection import API_KEY_PATTERN, test_connection
from .sandbox_credentials import DEMO_API_KEY

PROVIDER = Provider(
    slug="mailchimp",
    name="Mailchimp",
    category=Category.MARKETING,
    tier=2,
    description=(
        "Email marketing: contact sync and campaigns. Connect a Mailchimp account with an API key: VRTX "
        "checks the key against the account's data center and records which account it belongs to. Syncing "
        "contacts with an audience, reading campaigns and receiving Mailchimp webhooks are on the roadmap."
    ),
    icon="🐵",
    docs_url="https://mailchimp.com/developer/marketing/api/",
    auth=AuthSpec(
        type=AuthType.API_KEY,
        fields=(
            AuthField(
                name="api_key",
                label="API key",
                secret=True,
                pattern=API_KEY_PATTERN,
                description=(
                    "Create one under Profile → Extras → API keys. It ends with your data center "
                    "(e.g. -us21), which tells VRTX which Mailchimp server holds your account."
                ),
            ),
        ),
    ),
    config_schema=settings_schema(
        entities=["contacts", "campaigns"],
        properties={
            "audience_id": {
                "type": "string",
                "title": "Audience ID",
                "description": ("The audience (list) contacts sync with: Audience → Settings → Unique audience ID."),
                "minLength": 1,
            },
            "double_opt_in": {
                "type": "boolean",
                "title": "Double opt-in",
                "description": (
                    "Add contacts VRTX sends as 'pending' so Mailchimp asks them to confirm; when off they "
                    "are added as 'subscribed', so only send contacts who consented."
                ),
                "default": True,
            },
        },
    ),
    capabilities=("pull:contacts", "push:contact", "pull:campaigns", "webhooks"),
    display_order=120,
    api_base_url="https://{dc}.api.mailchimp.com/3.0",
    rate_limits=(
        # https://mailchimp.com/developer/marketing/docs/fundamentals/#api-limits: a cap on simultaneous
        # connections, not a rate; expressed here as a budget of 10 requests in flight per second per user.
        RateLimit(
            requests=10,
            per_seconds=1,
            scope="user",
            description="At most 10 simultaneous connections per user (a cap on concurrency, not a rate).",
        ),
    ),
    implemented=frozenset({"connect"}),
    connection_tester=test_connection,
    sandbox="providers.mailchimp.sandbox:create_app",
    sandbox_credentials={"api_key": DEMO_API_KEY},
)
