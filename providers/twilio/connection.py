"""Twilio connection test: one authenticated ``GET /2010-04-01/Accounts/{AccountSid}.json``.

API doc: https://www.twilio.com/docs/iam/api/account#fetch-an-account-resource
Errors: https://www.twilio.com/docs/usage/twilios-response#response-formats-exceptions
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NoReturn

import httpx

from providers.base import ConnectionInfo
from providers.errors import ProviderAuthError, ProviderError
from providers.kit.http_errors import json_object, raise_for_provider_status, transport_errors

ACCOUNT_SID_PATTERN = r"^AC[0-9a-f]{32}$"
AUTH_TOKEN_PATTERN = r"^[0-9a-f]{32}$"  # noqa: S105 -- a format, not a token
_ACCOUNT_SID_RE = re.compile(ACCOUNT_SID_PATTERN)
_AUTH_TOKEN_RE = re.compile(AUTH_TOKEN_PATTERN)


def test_connection(credentials: Mapping[str, str], base_url: str, client: httpx.Client) -> ConnectionInfo:
    """Fetch the account the credentials belong to; it must exist, accept the token and be active."""
    account_sid = (credentials.get("account_sid") or "").strip()
    auth_token = (credentials.get("auth_token") or "").strip()
    # The SID goes into the URL path, so it is checked before anything is sent.
    if not _ACCOUNT_SID_RE.match(account_sid):
        raise ProviderAuthError("The Twilio Account SID must be 'AC' followed by 32 hexadecimal characters.")
    if not _AUTH_TOKEN_RE.match(auth_token):
        raise ProviderAuthError("The Twilio Auth Token must be 32 hexadecimal characters.")
    # https://www.twilio.com/docs/iam/api/account#fetch-an-account-resource
    url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}.json"
    with transport_errors("Twilio", lambda text: _redact(text, auth_token)):
        response = client.get(url, auth=(account_sid, auth_token), headers={"Accept": "application/json"})

    if response.status_code != 200:
        _raise_for_status(response, auth_token)
    account = json_object(response)
    if account is None or not isinstance(account.get("sid"), str):
        raise ProviderError("Twilio answered the account fetch without an account resource.", status=200)
    status = account.get("status")
    if status != "active":
        # Suspended and closed accounts cannot send or receive messages; do not store credentials for them.
        raise ProviderAuthError(
            f"The Twilio account {account['sid']} is {status or 'not active'}: only an active account can be "
            "connected. Reactivate it in the Twilio Console (or from its parent account) and try again.",
            provider_code=f"account_{status}" if isinstance(status, str) else None,
        )
    return _connection_info(account)


def _connection_info(account: Mapping[str, Any]) -> ConnectionInfo:
    sid = str(account["sid"])
    owner = account.get("owner_account_sid")
    # Never copied from the resource: auth_token (Twilio returns the account's token in this body).
    details: dict[str, Any] = {
        "status": account.get("status"),
        "account_type": account.get("type"),
        "is_subaccount": bool(owner) and owner != sid,
    }
    if owner and owner != sid:
        details["owner_account_sid"] = owner
    if account.get("date_created"):
        details["date_created"] = account["date_created"]
    name = account.get("friendly_name")
    return ConnectionInfo(external_account_id=sid, external_account_name=str(name) if name else None, details=details)


def _raise_for_status(response: httpx.Response, auth_token: str) -> NoReturn:
    """Map Twilio's error body (``{"code", "message", "more_info", "status"}``) to a typed error."""
    status = response.status_code
    body = json_object(response) or {}
    message = body.get("message")
    code = body.get("code")
    if isinstance(message, str) and message:
        text = message
        if code is not None:
            more_info = body.get("more_info")
            text += f" (Twilio error {code}" + (f", see {more_info})" if more_info else ")")
    else:
        text = f"Twilio answered HTTP {status} without an error message."
    text = _redact(text, auth_token)
    provider_code = str(code) if code is not None else None
    raise_for_provider_status(response, text, provider_code=provider_code)


def _redact(text: str, auth_token: str) -> str:
    return text.replace(auth_token, "*" * len(auth_token)) if auth_token else text
