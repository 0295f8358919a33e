"""Xero Accounting API 2.0 (https://developer.xero.com/documentation/api/accounting/overview)."""

from __future__ import annotations

from providers.base import AuthSpec, AuthType, Category, OAuth2Spec, Provider, RateLimit
from providers.schema import settings_schema
from vrtx_pipelines.two_way import CONTACT_FIELDS

from .identity import discover_tenants
from .pulls import PULLS
from .push import PUSHES
from .sandbox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, create_app
from .webhooks import WEBHOOKS

ENTITIES = ("contacts", "invoices", "payments", "tax_rates", "products", "accounts")

PROVIDER = Provider(
    slug="xero",
    name="Xero",
    category=Category.ACCOUNTING,
    tier=1,
    description=(
        "Will keep Xero contacts, invoices, payments, items, tax rates and the chart of accounts in step "
        "with VRTX, and send VRTX contacts, invoices and payments to Xero."
    ),
    icon="🔷",
    docs_url="https://developer.xero.com/documentation/api/accounting/overview",
    auth=AuthSpec(
        type=AuthType.OAUTH2,
        oauth2=OAuth2Spec(
            authorize_url="https://login.xero.com/identity/connect/authorize",
            token_url="https://identity.xero.com/connect/token",  # noqa: S106 -- a URL, not a secret
            revoke_url="https://identity.xero.com/connect/revocation",
            # Granular scopes: apps created from 2 March 2026 may no longer request accounting.transactions.
            # accounting.invoices also covers items; tax rates and accounts only need to be read.
            scopes=(
                "openid",
                "profile",
                "email",
                "offline_access",
                "accounting.contacts",
                "accounting.invoices",
                "accounting.payments",
                "accounting.settings.read",
            ),
            pkce=True,
            # Single use; a lost refresh response may be retried with the old token for 30 minutes.
            refresh_token_rotates=True,
            access_token_lifetime_s=1800,
            tenant_discovery=(
                "GET https://api.xero.com/connections -> tenantId per organisation; "
                "sent as the xero-tenant-id header on every call"
            ),
        ),
    ),
    config_schema=settings_schema(
        entities=ENTITIES,
        properties={
            "default_sales_account_code": {
                "type": "string",
                "title": "Default sales account code",
                "description": "Revenue account code for pushed invoice lines that name none (e.g. 200).",
                "pattern": "^[A-Za-z0-9.\\-]{1,10}$",
                "default": "200",
            },
            "default_payment_account_code": {
                "type": "string",
                "title": "Default payment account code",
                "description": "Bank account code that pushed payments go into when they name none (e.g. 090).",
                "pattern": "^[A-Za-z0-9.\\-]{1,10}$",
                "default": "090",
            },
            "default_tax_type": {
                "type": "string",
                "title": "Default tax type",
                "description": (
                    "Xero TaxType for pushed lines that name none (e.g. OUTPUT2 in New Zealand, "
                    "OUTPUT in Australia); empty uses the account's default tax."
                ),
                "maxLength": 50,
                "default": "",
            },
            "line_amount_types": {
                "type": "string",
                "title": "Line amounts on pushed invoices",
                "description": "Whether VRTX line amounts are tax exclusive, tax inclusive or carry no tax.",
                "enum": ["Exclusive", "Inclusive", "NoTax"],
                "default": "Exclusive",
            },
            "invoice_status_on_push": {
                "type": "string",
                "title": "Status of pushed invoices",
                "description": (
                    "DRAFT leaves invoices for review in Xero; SUBMITTED awaits approval; "
                    "AUTHORISED approves them at once and makes them payable."
                ),
                "enum": ["DRAFT", "SUBMITTED", "AUTHORISED"],
                "default": "DRAFT",
            },
            "conflict_policy": {
                "type": "string",
                "title": "When a contact changed in VRTX and in Xero",
                "description": (
                    "Which side a field changed on both sides since the last sync takes: crm_wins, provider_wins, "
                    "latest_wins (the later modification time; held for you to resolve when one is missing) or "
                    "per_field (each field as conflict_fields says, latest_wins for the rest). Fields changed on "
                    "one side only always merge."
                ),
                "enum": ["crm_wins", "provider_wins", "latest_wins", "per_field"],
                "default": "latest_wins",
            },
            "conflict_fields": {
                "type": "object",
                "title": "Per-field conflict rules",
                "description": (
                    "With per_field: contact field -> crm_wins, provider_wins, latest_wins or manual (always "
                    "held for you to resolve)."
                ),
                "propertyNames": {"enum": list(CONTACT_FIELDS)},
                "additionalProperties": {"enum": ["crm_wins", "provider_wins", "latest_wins", "manual"]},
                "default": {},
            },
        },
    ),
    capabilities=(
        *(f"pull:{entity}" for entity in ENTITIES),
        "push:contact",
        "push:invoice",
        "push:payment",
        "webhooks",
    ),
    display_order=10,
    api_base_url="https://api.xero.com/api.xro/2.0",
    rate_limits=(
        RateLimit(60, 60, "tenant", "60 calls a minute per organisation (and at most 5 in flight)"),
        RateLimit(5000, 86400, "tenant", "5,000 calls a day per organisation (1,000 on the Starter tier)"),
        RateLimit(10000, 60, "app", "10,000 calls a minute across all organisations"),
    ),
    implemented=frozenset(
        {
            "connect",
            *(f"pull:{entity}" for entity in ENTITIES),
            "push:contact",
            "push:invoice",
            "push:payment",
            "webhooks",
        }
    ),
    discover_tenants=discover_tenants,
    pulls=PULLS,
    pushes=PUSHES,
    webhooks=WEBHOOKS,
    sandbox_factory=create_app,
    sandbox_credentials={"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET},
)
