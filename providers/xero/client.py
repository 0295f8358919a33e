"""Xero Accounting API 2.0 client for one connection (one organisation, one token): the kit's ``ApiClient`` and
Xero's hooks.

API doc: https://developer.xero.com/documentation/api/accounting/overview
Limits: https://developer.xero.com/documentation/guides/oauth2/limits/
Errors: https://developer.xero.com/documentation/api/accounting/responsecodes
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any

import httpx

from providers.kit.client import ApiClient, ErrorWords, header_int
from providers.kit.governor import DayBudgetExhausted
from providers.kit.ms_json_dates import convert_dates_hook
from providers.kit.values import records, text


class XeroClient(ApiClient):
    """Calls carry the organisation (``xero-tenant-id``); Xero's limit headers feed the governor."""

    name = "Xero"
    api_base_url = "https://api.xero.com/api.xro/2.0"
    tenant_noun = "organisation"

    def auth_headers(self, token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", "xero-tenant-id": str(self.tenant_id)}

    def refuses_credentials(self, response: httpx.Response) -> bool:
        # A 403 is Xero saying the organisation is not (or no longer) connected to this grant.
        return response.status_code in (401, 403)

    def observe_limits(self, response: httpx.Response) -> None:
        self.governor.observe(
            minute_remaining=header_int(response, "X-MinLimit-Remaining"),
            day_remaining=header_int(response, "X-DayLimit-Remaining"),
        )
        # Xero's 429 names the limit it hit; a spent day is not waited out in-call.
        if response.status_code == 429 and response.headers.get("X-Rate-Limit-Problem", "").lower() == "day":
            raise DayBudgetExhausted("Xero's daily limit is spent.")  # the kit raises its day_spent(response)

    def decode(self, response: httpx.Response) -> Any:
        # Money stays exact, and MS-JSON dates become UTC datetimes in the decoder's own pass.
        return json.loads(response.content, parse_float=Decimal, object_hook=convert_dates_hook)

    def error_words(self, body: Any) -> ErrorWords:
        """Xero's own words: the ValidationErrors of a ValidationException (the same message repeats once per
        element), else its Message or RFC 7807 title and detail (Xero never echoes the token)."""
        words = super().error_words(body)
        elements = records(body.get("Elements")) if isinstance(body, Mapping) else []
        errors = [error for element in elements for error in records(element.get("ValidationErrors"))]
        details = [message for error in errors if (message := text(error.get("Message")))]
        if not details:
            return words
        return replace(words, message="; ".join(dict.fromkeys(details)), details=tuple(details))
