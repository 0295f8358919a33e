"""Zapier catch hooks, Webhooks by Zapier (https://zapier.com/apps/webhook/integrations)."""

from __future__ import annotations

from providers.base import AuthField, AuthSpec, AuthType, Category, Provider, RateLimit
from providers.schema import events_setting, settings_schema

PROVIDER = Provider(
    slug="zapier",
    name="Zapier",
    category=Category.AUTOMATION,
    tier=3,
    description=(
        "Will send VRTX events (new or updated contacts, new or paid invoices, sync results) to a Zapier "
        "catch hook so your Zaps can act on them."
    ),
    icon="⚡",
    docs_url="https://zapier.com/apps/webhook/integrations",
    auth=AuthSpec(
        type=AuthType.API_KEY,
        fields=(
            # Secret because anyone holding the URL can trigger the Zap.
            AuthField(
                name="webhook_url",
                label="Catch hook URL",
                secret=True,
                pattern="https://hooks\\.zapier\\.com/hooks/catch/[0-9]+/[A-Za-z0-9]+(/silent)?/?",
                description="From a Zap whose trigger is Webhooks by Zapier > Catch Hook.",
            ),
        ),
    ),
    config_schema=settings_schema(
        entities=(),
        properties={
            "events": events_setting(
                "Events to send",
                "VRTX events posted to the catch hook.",
                ["contact.created", "contact.updated", "invoice.created", "invoice.paid"],
                min_items=1,
            ),
        },
    ),
    capabilities=("triggers",),
    display_order=250,
    api_base_url="https://hooks.zapier.com",
    rate_limits=(RateLimit(20000, 300, "account", "Webhooks by Zapier: 20,000 requests per 5 minutes per user"),),
    implemented=frozenset(),
    connection_tester=None,
)
