"""DocuSign eSignature REST API v2.1 (https://developers.docusign.com/docs/esign-rest-api/)."""

from __future__ import annotations

from providers.base import AuthSpec, AuthType, Category, OAuth2Spec, Provider, RateLimit
from providers.schema import settings_schema

ENTITIES = ("envelopes",)

PROVIDER = Provider(
    slug="docusign",
    name="DocuSign",
    category=Category.DOCUMENTS,
    tier=2,
    description=(
        "Will send quotes and contracts from VRTX for e-signature with DocuSign and record each envelope's "
        "status, and the signed documents, on the VRTX record."
    ),
    icon="✍️",
    docs_url="https://developers.docusign.com/docs/esign-rest-api/",
    auth=AuthSpec(
        type=AuthType.OAUTH2,
        oauth2=OAuth2Spec(
            # Production host; developer accounts use account-d.docusign.com (a base URL override).
            authorize_url="https://account.docusign.com/oauth/auth",
            token_url="https://account.docusign.com/oauth/token",  # noqa: S106 -- a URL, not a secret
            # DocuSign offers no OAuth token revocation endpoint.
            revoke_url=None,
            # "extended" renews the 30-day refresh token on use, so connections outlive a month.
            scopes=("signature", "extended"),
            pkce=True,
            refresh_token_rotates=True,
            access_token_lifetime_s=28800,
            tenant_discovery=(
                "GET https://account.docusign.com/oauth/userinfo -> accounts[] (account_id, base_uri; "
                "is_default marks the user's default account)"
            ),
        ),
    ),
    config_schema=settings_schema(
        entities=ENTITIES,
        properties={
            "envelope_status_on_push": {
                "type": "string",
                "title": "Status of pushed envelopes",
                "description": "sent emails signers at once; created leaves a draft to review in DocuSign.",
                "enum": ["sent", "created"],
                "default": "created",
            },
            "default_email_subject": {
                "type": "string",
                "title": "Default email subject",
                "description": "Subject of the signing email when VRTX supplies none.",
                "minLength": 1,
                "maxLength": 100,
                "default": "Please review and sign",
            },
            "attach_signed_documents": {
                "type": "boolean",
                "title": "Attach signed documents",
                "description": "Store the signed PDF on the VRTX record when an envelope completes.",
                "default": True,
            },
        },
    ),
    capabilities=("pull:envelopes", "push:envelope", "webhooks"),
    display_order=160,
    # base_uri comes from userinfo per account; the client appends /accounts/{account_id}/...
    api_base_url="{base_uri}/restapi/v2.1",
    rate_limits=(
        RateLimit(3000, 3600, "account", "3,000 calls an hour per account"),
        RateLimit(500, 30, "account", "Burst: 500 calls per 30 seconds per account"),
    ),
    implemented=frozenset(),
    connection_tester=None,
)
