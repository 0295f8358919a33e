"""QuickBooks Online Accounting API v3 (https://developer.intuit.com/app/developer/qbo/docs/develop)."""

from __future__ import annotations

from providers.base import AuthSpec, AuthType, Category, OAuth2Spec, Provider, PullSpec, RateLimit
from providers.schema import conflict_settings, settings_schema
from vrtx_pipelines.push.two_way import CONTACT_FIELDS

from .client import QuickBooksClient
from .fields import RECORD_FIELDS
from .identity import REVOKE_URL, discover_tenants, revoke_grant
from .mappers import MAPPERS, MODELS
from .push import PUSHES
from .sandbox_credentials import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from .source import STREAMS
from .webhooks import WEBHOOKS

ENTITIES = ("contacts", "invoices", "payments", "products", "tax_codes", "tax_rates", "accounts")
PUSHED = ("contact", "invoice", "payment", "product")

PROVIDER = Provider(
    slug="quickbooks",
    name="QuickBooks Online",
    category=Category.ACCOUNTING,
    tier=1,
    description=(
        "Will keep QuickBooks Online customers, invoices, payments and products in step with VRTX, and send "
        "VRTX contacts, invoices, payments and products to the connected company."
    ),
    icon="📗",
    docs_url="https://developer.intuit.com/app/developer/qbo/docs/develop",
    auth=AuthSpec(
        type=AuthType.OAUTH2,
        oauth2=OAuth2Spec(
            authorize_url="https://appcenter.intuit.com/connect/oauth2",
            token_url="https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",  # noqa: S106 -- a URL, not a secret
            revoke_url=REVOKE_URL,
            scopes=("com.intuit.quickbooks.accounting",),
            # Intuit documents no PKCE for QuickBooks Online web apps.
            pkce=False,
            # A refresh may return a new refresh token; only the newest is safe to keep (100-day rolling).
            refresh_token_rotates=True,
            access_token_lifetime_s=3600,
            revoke=revoke_grant,  # a JSON body, not RFC 7009's form
            tenant_discovery=(
                "realmId query parameter on the OAuth callback (the company id); "
                "every call goes to /v3/company/{realmId}/..."
            ),
        ),
    ),
    config_schema=settings_schema(
        entities=ENTITIES,
        properties={
            "default_sales_account_code": {
                "type": "string",
                "title": "Default income account",
                "description": "Id of the income account used for products VRTX creates in QuickBooks.",
                "pattern": "^[0-9]{1,20}$",
            },
            "default_item_id": {
                "type": "string",
                "title": "Default product/service",
                "description": (
                    "Id of the QuickBooks product or service for pushed invoice lines without a matching "
                    "product (every QuickBooks sales line needs one)."
                ),
                "pattern": "^[0-9]{1,20}$",
            },
            "default_tax_type": {
                "type": "string",
                "title": "Default tax code",
                "description": "TaxCode for pushed lines that name none (TAX or NON in the US, else an id).",
                "maxLength": 20,
                "default": "",
            },
            "invoice_status_on_push": {
                "type": "string",
                "title": "Email status of pushed invoices",
                "description": (
                    "QuickBooks has no draft invoices: NotSet posts them quietly, NeedToSend also queues "
                    "them for emailing from QuickBooks."
                ),
                "enum": ["NotSet", "NeedToSend"],
                "default": "NotSet",
            },
            **conflict_settings("QuickBooks", CONTACT_FIELDS),
        },
    ),
    capabilities=(*(f"pull:{entity}" for entity in ENTITIES), *(f"push:{entity}" for entity in PUSHED), "webhooks"),
    display_order=20,
    api_base_url="https://quickbooks.api.intuit.com/v3",
    rate_limits=(
        RateLimit(
            500,
            60,
            "realm",
            "500 requests a minute per company (batches count; at most 10 in flight, 40 batches a minute)",
        ),
    ),
    # Everything on the roadmap is built and tested end to end.
    implemented=frozenset(
        {"connect", *(f"pull:{entity}" for entity in ENTITIES), *(f"push:{e}" for e in PUSHED), "webhooks"}
    ),
    discover_tenants=discover_tenants,
    client=QuickBooksClient.for_connection,
    # At most 10 calls in flight per company (reference section 2, "Rate limits").
    pulls=PullSpec(
        streams=STREAMS, mappers=MAPPERS, models=MODELS, max_concurrent_calls=10, record_fields=RECORD_FIELDS
    ),
    pushes=PUSHES,
    webhooks=WEBHOOKS,
    sandbox="providers.quickbooks.sandbox:create_app",
    sandbox_credentials={"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET},
)
