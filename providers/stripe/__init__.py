"""Stripe: payments and subscriptions. A tenant can connect with an API key; syncs are on the roadmap."""

from __future__ import annotations

from providers.base import AuthField, AuthSpec, AuthType, Category, Provider, RateLimit
from providers.schema import settings_schema

from .connection import SECRET_KEY_PATTERN, test_connection
from .sandbox_credentials import DEMO_SECRET_KEY

PROVIDER = Provider(
    slug="stripe",
    name="Stripe",
    category=Category.PAYMENT,
    tier=1,
    description=(
        "Payment processing and subscriptions. Connect a Stripe account with a secret or restricted API key: "
        "VRTX checks the key against Stripe and records which account it belongs to. Syncing customers, "
        "charges, invoices, subscriptions and payments, and Stripe webhooks, are on the roadmap."
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
    ),
    config_schema=settings_schema(
        entities=["customers", "charges", "invoices", "subscriptions", "payments"],
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
    capabilities=(
        "pull:customers",
        "pull:charges",
        "pull:invoices",
        "pull:subscriptions",
        "pull:payments",
        "webhooks",
    ),
    display_order=30,
    api_base_url="https://api.stripe.com",
    # https://docs.stripe.com/rate-limits: the global limiter counts operations per account and mode.
    rate_limits=(
        RateLimit(requests=100, per_seconds=1, scope="account", description="Live mode: 100 operations per second."),
        RateLimit(requests=25, per_seconds=1, scope="account", description="Test mode: 25 operations per second."),
    ),
    implemented=frozenset({"connect"}),
    connection_tester=test_connection,
    sandbox="providers.stripe.sandbox:create_app",
    sandbox_credentials={"secret_key": DEMO_SECRET_KEY},
)
