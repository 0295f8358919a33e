"""Twilio: SMS and WhatsApp messaging. Today a tenant can connect an account; messaging is on the roadmap."""

from __future__ import annotations

from providers.base import AuthField, AuthSpec, AuthType, Category, Provider
from providers.schema import settings_schema

from .connection import ACCOUNT_SID_PATTERN, AUTH_TOKEN_PATTERN, test_connection
from .sandbox_credentials import DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN

PROVIDER = Provider(
    slug="twilio",
    name="Twilio",
    category=Category.COMMUNICATION,
    tier=2,
    description=(
        "SMS and WhatsApp messaging. Connect a Twilio account with its Account SID and Auth Token: VRTX "
        "checks them against Twilio and confirms the account is active. Sending SMS and WhatsApp messages, "
        "pulling message history and receiving Twilio webhooks are on the roadmap."
    ),
    icon="📱",
    docs_url="https://www.twilio.com/docs/usage/api",
    auth=AuthSpec(
        type=AuthType.BASIC,
        fields=(
            AuthField(
                name="account_sid",
                label="Account SID",
                secret=False,
                pattern=ACCOUNT_SID_PATTERN,
                description="Starts with AC; shown under Account Info in the Twilio Console.",
            ),
            AuthField(
                name="auth_token",
                label="Auth Token",
                secret=True,
                pattern=AUTH_TOKEN_PATTERN,
                description="The account's Auth Token, shown next to the Account SID in the Twilio Console.",
            ),
        ),
    ),
    config_schema=settings_schema(
        entities=["messages"],
        properties={
            "default_from_number": {
                "type": "string",
                "title": "Default sender number",
                "description": "A Twilio phone number in E.164 format (for example +14155552671).",
                "pattern": r"^\+[1-9][0-9]{6,14}$",
            },
            "messaging_service_sid": {
                "type": "string",
                "title": "Messaging Service SID",
                "description": "Send through this Messaging Service (MG…) instead of a single sender number.",
                "pattern": "^MG[0-9a-f]{32}$",
            },
        },
    ),
    capabilities=("push:sms", "push:whatsapp", "pull:messages", "webhooks"),
    display_order=150,
    api_base_url="https://api.twilio.com",
    implemented=frozenset({"connect"}),
    connection_tester=test_connection,
    sandbox="providers.twilio.sandbox:create_app",
    sandbox_credentials={"account_sid": DEMO_ACCOUNT_SID, "auth_token": DEMO_AUTH_TOKEN},
)
