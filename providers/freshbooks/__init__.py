"""FreshBooks API (https://www.freshbooks.com/api/start)."""

from __future__ import annotations

from providers.base import AuthSpec, AuthType, Category, OAuth2Spec, Provider, RateLimit
from providers.schema import settings_schema

ENTITIES = ("contacts", "invoices", "time_entries")

PROVIDER = Provider(
    slug="freshbooks",
    name="FreshBooks",
    category=Category.ACCOUNTING,
    tier=3,
    description=(
        "Will keep FreshBooks clients and invoices in step with VRTX, send VRTX invoices to FreshBooks, and "
        "bring tracked time into VRTX for billing."
    ),
    icon="🔵",
    docs_url="https://www.freshbooks.com/api/start",
    auth=AuthSpec(
        type=AuthType.OAUTH2,
        oauth2=OAuth2Spec(
            authorize_url="https://auth.freshbooks.com/oauth/authorize",
            token_url="https://api.freshbooks.com/auth/oauth/token",  # noqa: S106 -- a URL, not a secret
            revoke_url="https://api.freshbooks.com/auth/oauth/revoke",
            # user:profile:read is needed for /users/me, which names the account and business ids.
            scopes=(
                "user:profile:read",
                "user:clients:read",
                "user:clients:write",
                "user:invoices:read",
                "user:invoices:write",
                "user:time_entries:read",
            ),
            pkce=False,
            refresh_token_rotates=True,
            access_token_lifetime_s=43200,
            tenant_discovery=(
                "GET https://api.freshbooks.com/auth/api/v1/users/me -> business_memberships[].business "
                "(account_id for accounting calls, business_id for time tracking)"
            ),
        ),
    ),
    config_schema=settings_schema(
        entities=ENTITIES,
        properties={
            # FreshBooks invoice lines carry a tax name and percentage, not a ledger account.
            "default_tax_type": {
                "type": "string",
                "title": "Default tax",
                "description": "Name of the FreshBooks tax for pushed lines that name none (e.g. VAT).",
                "maxLength": 40,
                "default": "",
            },
            "invoice_status_on_push": {
                "type": "string",
                "title": "Status of pushed invoices",
                "description": "draft keeps invoices for review; sent has FreshBooks email the client.",
                "enum": ["draft", "sent"],
                "default": "draft",
            },
            "billable_time_only": {
                "type": "boolean",
                "title": "Billable time only",
                "description": "Pull only time entries marked billable.",
                "default": True,
            },
        },
    ),
    capabilities=(
        *(f"pull:{entity}" for entity in ENTITIES),
        "push:contact",
        "push:invoice",
        "webhooks",
    ),
    display_order=240,
    api_base_url="https://api.freshbooks.com",
    rate_limits=(
        # FreshBooks answers 429 but publishes no figure; pace conservatively.
        RateLimit(60, 60, "account", "Conservative pacing: FreshBooks publishes no request rate"),
    ),
    implemented=frozenset(),
    connection_tester=None,
)
