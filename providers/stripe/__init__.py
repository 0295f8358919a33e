"""Stripe: payments and subscriptions (https://docs.stripe.com/api). Connect with a secret or restricted key, or
through Stripe Connect OAuth; pulls by events, pushes that collect money, signed webhooks."""

from __future__ import annotations

from providers.base import AuthField, AuthSpec, AuthType, Category, OAuth2Spec, Provider, PullSpec, RateLimit
from providers.schema import settings_schema

from .client import StripeClient
from .connection import SECRET_KEY_PATTERN, test_connection
from .fields import RECORD_FIELDS
from .identity import CONNECT_URL, deauthorize, discover_tenants
from .mappers import MAPPERS, MODELS
from .push import PUSHES
from .sandbox_credentials import DEMO_SECRET_KEY
from .source import STREAMS
from .webhooks import WEBHOOKS

ENTITIES = tuple(stream.name for stream in STREAMS)
PULLS = tuple(f"pull:{entity}" for entity in ENTITIES)
PUSH_CAPABILITIES = tuple(f"push:{entity}" for entity in PUSHES.entities)

PROVIDER = Provider(
    slug="stripe",
    name="Stripe",
    category=Category.PAYMENT,
    tier=1,
    description=(
        "Payments and subscriptions. Connect a Stripe account with a secret or restricted API key, or through "
        "Stripe Connect: VRTX keeps customers, products, prices, invoices, payments, refunds, subscriptions, "
        "balance transactions and payouts in step with Stripe's events."
    ),
    icon="💳",
    docs_url="https://docs.stripe.com/api",
    auth=AuthSpec(
        type=AuthType.API_KEY,
        fields=(
            AuthField(
                name="secret_key",
                label="Secret key",
                secret=True,
                pattern=SECRET_KEY_PATTERN,
                description=(
                    "A secret key (sk_live_… or sk_test_…) or a restricted key (rk_live_… or rk_test_…) from "
                    "Dashboard → Developers → API keys. A test-mode key connects Stripe's test data. A "
                    "restricted key must be allowed to read the account."
                ),
            ),
        ),
        # Or Stripe Connect (Standard accounts): the platform acts for the account with Stripe-Account.
        oauth2=OAuth2Spec(
            authorize_url=f"{CONNECT_URL}/oauth/authorize",
            token_url=f"{CONNECT_URL}/oauth/token",
            scopes=("read_write",),
            token_auth="client_secret_post",  # noqa: S106 -- a method: the platform key goes as client_secret
            revoke=deauthorize,
            tenant_discovery="the token answer's stripe_user_id; calls carry Stripe-Account: <it>",
        ),
    ),
    config_schema=settings_schema(
        entities=list(ENTITIES),
        properties={
            "currency": {
                "type": "string",
                "title": "Currency",
                "description": (
                    "Three-letter ISO 4217 code, lowercase as Stripe writes it, used when VRTX creates "
                    "amounts in Stripe."
                ),
                "pattern": "^[a-z]{3}$",
                "default": "usd",
            },
        },
    ),
    capabilities=(*PULLS, *PUSH_CAPABILITIES, "webhooks"),
    display_order=30,
    api_base_url="https://api.stripe.com",
    # https://docs.stripe.com/rate-limits: the global limiter counts operations per account and mode.
    rate_limits=(
        RateLimit(requests=100, per_seconds=1, scope="account", description="Live mode: 100 operations per second."),
        RateLimit(requests=25, per_seconds=1, scope="account", description="Test mode: 25 operations per second."),
    ),
    implemented=frozenset({"connect", *PULLS, *PUSH_CAPABILITIES, "webhooks"}),
    connection_tester=test_connection,
    discover_tenants=discover_tenants,
    client=StripeClient.for_connection,
    pulls=PullSpec(streams=STREAMS, mappers=MAPPERS, models=MODELS, record_fields=RECORD_FIELDS),
    pushes=PUSHES,
    webhooks=WEBHOOKS,
    sandbox="providers.stripe.sandbox:create_app",
    sandbox_credentials={"secret_key": DEMO_SECRET_KEY},
)
