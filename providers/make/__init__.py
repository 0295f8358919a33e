"""Make (formerly Integromat) custom webhooks (https://www.make.com/en/help/tools/webhooks)."""

from __future__ import annotations

from providers.base import AuthField, AuthSpec, AuthType, Category, Provider, RateLimit
from providers.schema import events_setting, settings_schema

PROVIDER = Provider(
    slug="make",
    name="Make (Integromat)",
    category=Category.AUTOMATION,
    tier=3,
    description=(
        "Will send VRTX events (new or updated contacts, new or paid invoices, sync results) to a Make "
        "custom webhook so your scenarios can act on them."
    ),
    icon="🟪",
    docs_url="https://www.make.com/en/help/tools/webhooks",
    auth=AuthSpec(
        type=AuthType.API_KEY,
        fields=(
            # Secret because anyone holding the URL can run the scenario.
            AuthField(
                name="webhook_url",
                label="Catch hook URL",
                secret=True,
                pattern="https://hook\\.[a-z0-9]+\\.make\\.com/[A-Za-z0-9]+/?",
                description="From a scenario triggered by Webhooks > Custom webhook.",
            ),
        ),
    ),
    config_schema=settings_schema(
        entities=(),
        properties={
            "events": events_setting(
                "Events to send",
                "VRTX events posted to the webhook.",
                ["contact.created", "contact.updated", "invoice.created", "invoice.paid"],
                min_items=1,
            ),
        },
    ),
    capabilities=("triggers",),
    display_order=260,
    # The region in the host is the Make zone that owns the scenario (eu1, eu2, us1, us2 ...).
    api_base_url="https://hook.{region}.make.com",
    rate_limits=(RateLimit(30, 1, "webhook", "Make accepts about 30 requests a second per webhook"),),
    implemented=frozenset(),
    connection_tester=None,
)
