"""Xero Accounting API 2.0 (https://developer.xero.com/documentation/api/accounting/overview)."""

from __future__ import annotations

from providers.base import AuthSpec, AuthType, Category, OAuth2Spec, Provider, PullSpec, RateLimit
from providers.schema import choice_setting, conflict_settings, settings_schema, text_setting
from vrtx_pipelines.push.two_way import CONTACT_FIELDS

from .client import XeroClient
from .fields import RECORD_FIELDS
from .identity import REVOCATION, discover_tenants
from .mappers import MAPPERS, MODELS
from .push import PUSHES
from .sandbox_credentials import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from .source import STREAMS
from .webhooks import WEBHOOKS

ACCOUNT_CODE = "^[A-Za-z0-9.\\-]{1,10}$"
ENTITIES = ("contacts", "invoices", "payments", "tax_rates", "products", "accounts")
# Everything on the roadmap is built and tested end to end.
CAPABILITIES = (
    *(f"pull:{entity}" for entity in ENTITIES),
    *(f"push:{entity}" for entity in PUSHES.entities),
    "webhooks",
)

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
            "default_sales_account_code": text_setting(
                "Default sales account code",
                "Revenue account code for pushed invoice lines that name none (e.g. 200).",
                "200",
                pattern=ACCOUNT_CODE,
            ),
            "default_payment_account_code": text_setting(
                "Default payment account code",
                "Bank account code that pushed payments go into when they name none (e.g. 090).",
                "090",
                pattern=ACCOUNT_CODE,
            ),
            "default_tax_type": text_setting(
                "Default tax type",
                "Xero TaxType for pushed lines that name none (e.g. OUTPUT2 in New Zealand, OUTPUT in Australia); "
                "empty uses the account's default tax.",
                max_length=50,
            ),
            "line_amount_types": choice_setting(
                "Line amounts on pushed invoices",
                "Whether VRTX line amounts are tax exclusive, tax inclusive or carry no tax.",
                ["Exclusive", "Inclusive", "NoTax"],
                "Exclusive",
            ),
            "invoice_status_on_push": choice_setting(
                "Status of pushed invoices",
                "DRAFT leaves invoices for review in Xero; SUBMITTED awaits approval; AUTHORISED approves them at "
                "once and makes them payable.",
                ["DRAFT", "SUBMITTED", "AUTHORISED"],
                "DRAFT",
            ),
            **conflict_settings("Xero", CONTACT_FIELDS),
        },
    ),
    capabilities=CAPABILITIES,
    display_order=10,
    api_base_url=XeroClient.api_base_url,
    rate_limits=(
        RateLimit(60, 60, "tenant", "60 calls a minute per organisation (and at most 5 in flight)"),
        RateLimit(5000, 86400, "tenant", "5,000 calls a day per organisation (1,000 on the Starter tier)"),
        RateLimit(10000, 60, "app", "10,000 calls a minute across all organisations"),
    ),
    implemented=frozenset({"connect", *CAPABILITIES}),
    discover_tenants=discover_tenants,
    revocation=REVOCATION,
    client=XeroClient.for_connection,
    pulls=PullSpec(
        streams=STREAMS, mappers=MAPPERS, models=MODELS, max_concurrent_calls=5, record_fields=RECORD_FIELDS
    ),
    pushes=PUSHES,
    webhooks=WEBHOOKS,
    sandbox="providers.xero.sandbox:create_app",
    sandbox_credentials={"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET},
)
