"""A local stand-in for Twilio's REST API (2010-04-01): what the connection test uses, on its wire protocol.

Serves ``GET /2010-04-01/Accounts/{Sid}.json`` (https://www.twilio.com/docs/iam/api/account) with HTTP Basic
``AccountSid:AuthToken``, the ``api.v2010.account`` resource of Twilio's OpenAPI spec, and Twilio's error
bodies ``{"code", "message", "more_info", "status"}``: 401/20003 for missing or wrong credentials (also for
another account's resource, and for suspended or closed accounts, which Twilio lists among 20003's causes),
404/20404 for unknown resources, 429/20429 when rate limited. Nothing else is served: endpoints appear here as
features are built.

    app = create_app()                      # one demo account: DEMO_ACCOUNT_SID / DEMO_AUTH_TOKEN
    knobs_of(app).rate_limit_next = 2       # the next two requests get Twilio's 429
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from providers.sandbox_kit.faults import FaultKnobs, install_faults
from providers.sandbox_kit.wire import basic_credentials, secret_matches
from providers.twilio.sandbox_credentials import DEMO_ACCOUNT_SID as DEMO_ACCOUNT_SID
from providers.twilio.sandbox_credentials import DEMO_AUTH_TOKEN as DEMO_AUTH_TOKEN

_MORE_INFO = "https://www.twilio.com/docs/errors/{code}"
# The subresources Twilio lists on every account (same order as the spec's example).
_SUBRESOURCES = {
    "available_phone_numbers": "AvailablePhoneNumbers",
    "calls": "Calls",
    "conferences": "Conferences",
    "incoming_phone_numbers": "IncomingPhoneNumbers",
    "notifications": "Notifications",
    "outgoing_caller_ids": "OutgoingCallerIds",
    "recordings": "Recordings",
    "transcriptions": "Transcriptions",
    "addresses": "Addresses",
    "signing_keys": "SigningKeys",
    "connect_apps": "ConnectApps",
    "sip": "SIP",
    "authorized_connect_apps": "AuthorizedConnectApps",
    "usage": "Usage",
    "keys": "Keys",
    "applications": "Applications",
    "short_codes": "SMS/ShortCodes",
    "queues": "Queues",
    "messages": "Messages",
    "balance": "Balance",
}


@dataclass(frozen=True)
class TwilioSandboxAccount:
    """One Twilio account (or subaccount) and its auth token."""

    sid: str
    auth_token: str
    friendly_name: str
    status: str = "active"  # "active" | "suspended" | "closed"
    type: str = "Full"  # "Trial" | "Full"
    owner_account_sid: str | None = None  # the parent's SID for a subaccount; None for a main account
    date_created: str = "Tue, 14 Nov 2023 09:30:00 +0000"
    date_updated: str = "Tue, 14 Nov 2023 09:30:00 +0000"


DEMO_ACCOUNT = TwilioSandboxAccount(
    sid=DEMO_ACCOUNT_SID, auth_token=DEMO_AUTH_TOKEN, friendly_name="Vrtx Demo Coffee Roasters"
)


def create_app(accounts: Sequence[TwilioSandboxAccount] | None = None, *, knobs: FaultKnobs | None = None) -> FastAPI:
    """The sandbox ASGI app; ``accounts`` defaults to the one demo account."""
    by_sid = {account.sid: account for account in (list(accounts) if accounts is not None else [DEMO_ACCOUNT])}
    app = FastAPI(title="Twilio sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    request_ids = iter(range(1, 1 << 62))
    install_faults(
        app,
        _error,
        knobs=knobs,
        response_headers=lambda: {"Twilio-Request-Id": f"RQ{next(request_ids):032x}"},
    )

    @app.exception_handler(StarletteHTTPException)
    async def not_found(request: Request, exc: StarletteHTTPException) -> Response:
        return _error(404, f"The requested resource {request.url.path} was not found")

    @app.get("/2010-04-01/Accounts/{sid}.json")
    async def fetch_account(sid: str, request: Request) -> Response:
        caller = _authenticate(request, by_sid)
        if caller is None:
            return _error(401)
        account = by_sid.get(sid)
        if account is None:
            return _error(404, f"The requested resource {request.url.path} was not found")
        # An account sees itself and its own subaccounts; anyone else's resource is a 20003.
        if account.sid != caller.sid and account.owner_account_sid != caller.sid:
            return _error(401)
        return JSONResponse(account_resource(account))

    return app


def account_resource(account: TwilioSandboxAccount) -> dict[str, Any]:
    """The ``api.v2010.account`` resource as Twilio returns it (including the account's auth token)."""
    base = f"/2010-04-01/Accounts/{account.sid}"
    return {
        "auth_token": account.auth_token,
        "date_created": account.date_created,
        "date_updated": account.date_updated,
        "friendly_name": account.friendly_name,
        "owner_account_sid": account.owner_account_sid or account.sid,
        "sid": account.sid,
        "status": account.status,
        "subresource_uris": {name: f"{base}/{path}.json" for name, path in _SUBRESOURCES.items()},
        "type": account.type,
        "uri": f"{base}.json",
    }


def _authenticate(request: Request, by_sid: dict[str, TwilioSandboxAccount]) -> TwilioSandboxAccount | None:
    """The active account whose ``AccountSid:AuthToken`` is in the Basic ``Authorization`` header, if any."""
    credentials = basic_credentials(request)
    if credentials is None:
        return None
    username, password = credentials
    account = by_sid.get(username)
    if account is None or not secret_matches(account.auth_token, password):
        return None
    return account if account.status == "active" else None


def _error(status: int, message: str | None = None) -> JSONResponse:
    """Twilio's REST error body; 401 is always code 20003 "Authenticate" with a Basic challenge."""
    code = 20003 if status in (401, 403) else 20000 + status
    if message is None:
        message = {401: "Authenticate", 403: "Authenticate", 429: "Too Many Requests"}.get(
            status, HTTPStatus(status).phrase
        )
    headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if status == 401 else None
    body = {"code": code, "message": message, "more_info": _MORE_INFO.format(code=code), "status": status}
    return JSONResponse(body, status_code=status, headers=headers)
