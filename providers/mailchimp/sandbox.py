"""A local stand-in for the Mailchimp Marketing API 3.0: what the connection test uses, on its wire protocol.

Serves the API root ``GET /3.0/`` (https://mailchimp.com/developer/marketing/api/root/) for one data center,
with HTTP Basic auth (any username, the API key as password) and Mailchimp's ``application/problem+json``
errors (https://mailchimp.com/developer/marketing/docs/errors/): 401 "API Key Missing" / "API Key Invalid"
(also for a key of another data center), 404 "Resource Not Found", 429 "Too Many Requests". Nothing else is
served: endpoints appear here as features are built. Point a client at ``<served base URL>/3.0`` (the SDK's
``host``).

    app = create_app()                      # one demo account, key DEMO_API_KEY, data center "us21"
    knobs_of(app).rate_limit_next = 2       # the next two requests get Mailchimp's 429
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from providers.mailchimp.sandbox_credentials import DEMO_ACCOUNT_ID as DEMO_ACCOUNT_ID
from providers.mailchimp.sandbox_credentials import DEMO_API_KEY as DEMO_API_KEY
from providers.mailchimp.sandbox_credentials import DEMO_DATACENTER as DEMO_DATACENTER
from providers.sandbox_kit.faults import FaultKnobs, install_faults
from providers.sandbox_kit.wire import basic_credentials, find_by_secret

API_PREFIX = "/3.0"

_ERROR_DOCS = "https://mailchimp.com/developer/marketing/docs/errors/"
_PROBLEMS: dict[int, tuple[str, str]] = {
    401: (
        "API Key Invalid",
        "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
    ),
    404: ("Resource Not Found", "The requested resource could not be found."),
    405: (
        "Method Not Allowed",
        "The requested method and resource are not compatible. See the Allow header for "
        "this resource's available methods.",
    ),
    429: ("Too Many Requests", "You have exceeded the limit of 10 simultaneous connections."),
    500: (
        "Internal Server Error",
        "An unexpected internal error has occurred. Please contact Support for more information.",
    ),
}
_KEY_MISSING = ("API Key Missing", "Your request did not include an API key.")


@dataclass(frozen=True)
class MailchimpSandboxAccount:
    """One Mailchimp account and the API key that authenticates as it (its suffix is the data center)."""

    api_key: str
    account_id: str
    account_name: str
    email: str
    first_name: str
    last_name: str
    username: str
    login_id: str = "118022573"
    role: str = "owner"
    member_since: str = "2021-03-04T10:15:00+00:00"
    pricing_plan_type: str = "monthly"
    account_timezone: str = "Europe/London"
    account_industry: str = "Food & Beverage"
    country: str = "GB"
    total_subscribers: int = 1280


DEMO_ACCOUNT = MailchimpSandboxAccount(
    api_key=DEMO_API_KEY,
    account_id=DEMO_ACCOUNT_ID,
    account_name="Vrtx Demo Coffee Roasters",
    email="marketing@demo-coffee.example",
    first_name="Dana",
    last_name="Okafor",
    username="vrtxdemocoffee",
)


def api_base_url(server_url: str) -> str:
    """The API base for a sandbox served at ``server_url``: Mailchimp's API lives under /3.0."""
    return server_url.rstrip("/") + API_PREFIX


def create_app(
    accounts: Sequence[MailchimpSandboxAccount] | None = None,
    *,
    datacenter: str = DEMO_DATACENTER,
    knobs: FaultKnobs | None = None,
) -> FastAPI:
    """The sandbox ASGI app for one data center; ``accounts`` defaults to the one demo account."""
    by_key = {account.api_key: account for account in (list(accounts) if accounts is not None else [DEMO_ACCOUNT])}
    app = FastAPI(title="Mailchimp sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    instances = iter(range(1, 1 << 62))

    def problem(status: int, title_detail: tuple[str, str] | None = None) -> JSONResponse:
        title, detail = title_detail or _PROBLEMS.get(status, (HTTPStatus(status).phrase, HTTPStatus(status).phrase))
        body = {
            "type": _ERROR_DOCS,
            "title": title,
            "status": status,
            "detail": detail,
            "instance": str(uuid.uuid5(uuid.NAMESPACE_URL, f"mailchimp-sandbox/{next(instances)}")),
        }
        return JSONResponse(body, status_code=status, media_type="application/problem+json; charset=utf-8")

    install_faults(app, problem, knobs=knobs)

    @app.exception_handler(StarletteHTTPException)
    async def not_found(request: Request, exc: StarletteHTTPException) -> Response:
        return problem(405 if exc.status_code == 405 else 404)

    async def api_root(request: Request) -> Response:
        key = _api_key(request)
        if key is None:
            return problem(401, _KEY_MISSING)
        account = find_by_secret(by_key, key)
        if account is None or not key.endswith(f"-{datacenter}"):
            return problem(401)
        return JSONResponse(root_resource(account, f"{request.base_url}".rstrip("/") + API_PREFIX))

    app.add_api_route(f"{API_PREFIX}/", api_root, methods=["GET"])
    app.add_api_route(API_PREFIX, api_root, methods=["GET"])
    return app


def root_resource(account: MailchimpSandboxAccount, api_base: str) -> dict[str, Any]:
    """The API root as Mailchimp returns it: the account's details and links."""
    return {
        "account_id": account.account_id,
        "login_id": account.login_id,
        "account_name": account.account_name,
        "email": account.email,
        "first_name": account.first_name,
        "last_name": account.last_name,
        "username": account.username,
        "avatar_url": "",
        "role": account.role,
        "member_since": account.member_since,
        "pricing_plan_type": account.pricing_plan_type,
        "first_payment": account.member_since,
        "account_timezone": account.account_timezone,
        "account_industry": account.account_industry,
        "contact": {
            "company": account.account_name,
            "addr1": "1 Roastery Lane",
            "addr2": "",
            "city": "London",
            "state": "",
            "zip": "E1 6AN",
            "country": account.country,
        },
        "pro_enabled": False,
        "last_login": "2024-05-02T08:00:00+00:00",
        "total_subscribers": account.total_subscribers,
        "industry_stats": {"open_rate": 0.2143, "bounce_rate": 0.0071, "click_rate": 0.0262},
        "_links": [
            {
                "rel": "self",
                "href": f"{api_base}/",
                "method": "GET",
                "targetSchema": f"{api_base.rsplit('/', 1)[0]}/schema/3.0/Root.json",
            }
        ],
    }


def _api_key(request: Request) -> str | None:
    """The password of ``Authorization: Basic base64(<anything>:<key>)``; Mailchimp ignores the username."""
    credentials = basic_credentials(request)
    return (credentials[1] or None) if credentials is not None else None
