"""A local stand-in for the Stripe API: what the connection test uses, on Stripe's real wire protocol.

Serves ``GET /v1/account`` (https://docs.stripe.com/api/accounts/retrieve) with secret-key auth
(``Authorization: Bearer sk_…`` as the official SDKs send it, or HTTP Basic with the key as the username), the
account object in the shape of Stripe's ``fixtures3.json``, and Stripe's error objects
(https://docs.stripe.com/api/errors) for a missing or unknown key, unknown URLs and rate limiting. Nothing
else is served: endpoints appear here as features are built.

    app = create_app()                      # one demo account, key DEMO_SECRET_KEY
    knobs_of(app).rate_limit_next = 2       # the next two requests get Stripe's 429
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from providers.sandbox_kit.faults import FaultKnobs, install_faults
from providers.sandbox_kit.wire import basic_credentials, bearer_token, find_by_secret
from providers.stripe.sandbox_credentials import DEMO_ACCOUNT_ID as DEMO_ACCOUNT_ID
from providers.stripe.sandbox_credentials import DEMO_RESTRICTED_KEY as DEMO_RESTRICTED_KEY
from providers.stripe.sandbox_credentials import DEMO_SECRET_KEY as DEMO_SECRET_KEY

_SUPPORT = "Please see https://stripe.com/docs or we can help at https://support.stripe.com/."
_NO_KEY_MESSAGE = (
    "You did not provide an API key. You need to provide your API key in the Authorization header, using "
    "Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
    "https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/."
)
_RATE_LIMIT_MESSAGE = (
    "Request rate limit exceeded. You can learn more about rate limits here https://stripe.com/docs/rate-limits."
)


@dataclass(frozen=True)
class StripeSandboxAccount:
    """One Stripe account the sandbox knows, and the API keys that authenticate as it."""

    id: str
    secret_keys: tuple[str, ...]
    business_name: str | None = None
    display_name: str | None = None
    email: str | None = None
    country: str = "US"
    default_currency: str = "usd"
    created: int = 1_700_000_000
    charges_enabled: bool = True
    payouts_enabled: bool = True
    details_submitted: bool = True
    timezone: str = "Etc/UTC"


DEMO_ACCOUNT = StripeSandboxAccount(
    id=DEMO_ACCOUNT_ID,
    secret_keys=(DEMO_SECRET_KEY, DEMO_RESTRICTED_KEY),
    business_name="Vrtx Demo Coffee Roasters",
    display_name="Vrtx Demo Coffee",
    email="billing@demo-coffee.example",
    country="GB",
    default_currency="gbp",
    timezone="Europe/London",
)


def create_app(accounts: Sequence[StripeSandboxAccount] | None = None, *, knobs: FaultKnobs | None = None) -> FastAPI:
    """The sandbox ASGI app; ``accounts`` defaults to the one demo account."""
    known = list(accounts) if accounts is not None else [DEMO_ACCOUNT]
    by_key = {key: account for account in known for key in account.secret_keys}
    app = FastAPI(title="Stripe sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    request_ids = iter(range(1, 1 << 62))
    install_faults(
        app,
        _injected_failure,
        knobs=knobs,
        response_headers=lambda: {"Request-Id": f"req_sandbox{next(request_ids):014d}"},
    )

    @app.exception_handler(StarletteHTTPException)
    async def unrecognized_url(request: Request, exc: StarletteHTTPException) -> Response:
        # Stripe answers unknown paths (and unsupported methods) with 404 and this message.
        message = f"Unrecognized request URL ({request.method}: {request.url.path}). {_SUPPORT}"
        return _error(404, "invalid_request_error", message)

    @app.get("/v1/account")
    async def retrieve_account(request: Request) -> Response:
        key = _api_key(request)
        if not key:
            return _error(401, "invalid_request_error", _NO_KEY_MESSAGE)
        account = find_by_secret(by_key, key)
        if account is None:
            return _error(401, "invalid_request_error", f"Invalid API Key provided: {_masked(key)}")
        return JSONResponse(account_object(account))

    return app


def account_object(account: StripeSandboxAccount) -> dict[str, Any]:
    """The account object in the shape Stripe returns it (``fixtures3.json`` ``resources.account``)."""
    body = copy.deepcopy(_ACCOUNT_TEMPLATE)
    body.update(
        id=account.id,
        email=account.email,
        country=account.country,
        default_currency=account.default_currency,
        created=account.created,
        charges_enabled=account.charges_enabled,
        payouts_enabled=account.payouts_enabled,
        details_submitted=account.details_submitted,
    )
    body["business_profile"]["name"] = account.business_name
    body["settings"]["dashboard"].update(display_name=account.display_name, timezone=account.timezone)
    body["external_accounts"]["url"] = f"/v1/accounts/{account.id}/external_accounts"
    if account.details_submitted:
        body["requirements"].update(currently_due=[], eventually_due=[], disabled_reason=None)
    return body


def _api_key(request: Request) -> str | None:
    """The key from ``Authorization: Bearer <key>`` or ``Basic base64(<key>:)``, as Stripe accepts both."""
    basic = basic_credentials(request)
    return bearer_token(request) or (basic[0] if basic is not None else None) or None


def _masked(key: str) -> str:
    """How Stripe echoes an unknown key: its prefix, stars, and the last four characters."""
    prefix_end = key.find("_", key.find("_") + 1) + 1 if key.count("_") >= 2 else 0
    prefix, tail = key[:prefix_end], key[prefix_end:]
    return prefix + "*" * max(len(tail) - 4, 0) + tail[-4:] if len(tail) > 4 else "*" * len(key)


def _injected_failure(status: int) -> Response:
    if status == 429:
        return _error(429, "invalid_request_error", _RATE_LIMIT_MESSAGE, code="rate_limit")
    if status >= 500:
        return _error(status, "api_error", "An unknown error occurred. Please try again later.")
    if status == 401:
        return _error(401, "invalid_request_error", _NO_KEY_MESSAGE)
    return _error(status, "invalid_request_error", HTTPStatus(status).phrase)


def _error(status: int, error_type: str, message: str, *, code: str | None = None) -> JSONResponse:
    error: dict[str, Any] = {"message": message, "type": error_type}
    if code:
        error["code"] = code
        error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    return JSONResponse({"error": error}, status_code=status)


# fixtures3.json resources.account (stripe/openapi); account_object() fills in each account's identity.
_ACCOUNT_TEMPLATE: dict[str, Any] = {
    "business_profile": {
        "annual_revenue": {"amount": None, "currency": None, "fiscal_year_end": None},
        "estimated_worker_count": None,
        "mcc": None,
        "name": None,
        "product_description": None,
        "support_address": {
            "city": None,
            "country": None,
            "line1": None,
            "line2": None,
            "postal_code": None,
            "state": None,
        },
        "support_email": None,
        "support_phone": None,
        "support_url": None,
        "url": None,
        "minority_owned_business_designation": None,
    },
    "business_type": None,
    "capabilities": {"card_payments": "active", "transfers": "active"},
    "charges_enabled": False,
    "controller": {"type": "account"},
    "country": "US",
    "created": 0,
    "default_currency": "usd",
    "details_submitted": False,
    "email": None,
    "external_accounts": {"data": [], "has_more": False, "object": "list", "url": ""},
    "future_requirements": {
        "alternatives": [],
        "current_deadline": None,
        "currently_due": [],
        "disabled_reason": None,
        "errors": [],
        "eventually_due": [],
        "past_due": [],
        "pending_verification": [],
    },
    "id": "",
    "metadata": {},
    "object": "account",
    "payouts_enabled": False,
    "requirements": {
        "alternatives": [],
        "current_deadline": None,
        "currently_due": [
            "business_profile.product_description",
            "business_profile.support_phone",
            "business_profile.url",
            "external_account",
            "tos_acceptance.date",
            "tos_acceptance.ip",
        ],
        "disabled_reason": "requirements.past_due",
        "errors": [],
        "eventually_due": [
            "business_profile.product_description",
            "business_profile.support_phone",
            "business_profile.url",
            "external_account",
            "tos_acceptance.date",
            "tos_acceptance.ip",
        ],
        "past_due": [],
        "pending_verification": [],
    },
    "settings": {
        "bacs_debit_payments": {"display_name": None, "service_user_number": None},
        "branding": {"icon": None, "logo": None, "primary_color": None, "secondary_color": None},
        "card_issuing": {"tos_acceptance": {"date": None, "ip": None}},
        "card_payments": {
            "decline_on": {"avs_failure": True, "cvc_failure": True},
            "statement_descriptor_prefix": None,
            "statement_descriptor_prefix_kana": None,
            "statement_descriptor_prefix_kanji": None,
        },
        "dashboard": {"display_name": None, "timezone": "Etc/UTC"},
        "invoices": {"default_account_tax_ids": None, "hosted_payment_method_save": None},
        "payments": {
            "statement_descriptor": None,
            "statement_descriptor_kana": None,
            "statement_descriptor_kanji": None,
            "statement_descriptor_prefix_kana": None,
            "statement_descriptor_prefix_kanji": None,
        },
        "payouts": {
            "debit_negative_balances": True,
            "schedule": {"delay_days": 2, "interval": "daily"},
            "statement_descriptor": None,
        },
        "sepa_debit_payments": {},
    },
    "tos_acceptance": {"date": None, "ip": None, "user_agent": None},
    "type": "standard",
}
