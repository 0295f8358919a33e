"""Gmail API v1 and Calendar API v3 client for one connection (one Google user): the kit's ``ApiClient`` and
Google's hooks.

API docs: https://developers.google.com/gmail/api/reference/rest, https://developers.google.com/calendar/api/v3/
reference; errors: https://developers.google.com/gmail/api/guides/handle-errors.
- Paths are under the user's mailbox (``users/me``); Calendar is another host (``calendar_url``).
- Google answers a spent per-user quota with 429, or 403 ``rateLimitExceeded``/``userRateLimitExceeded``: both
  are waited out and retried; any other 403 is final.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from providers.kit.client import ApiClient

GMAIL_BASE = "https://gmail.googleapis.com/gmail/v1/users/me"
CALENDAR_BASE = "https://www.googleapis.com/calendar/v3"
RATE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})


class GoogleClient(ApiClient):
    name = "Google"
    api_base_url = GMAIL_BASE
    other_base_urls = (CALENDAR_BASE,)
    tenant_noun = "mailbox"

    def calendar_url(self, path: str) -> str:
        return f"{self.other_bases[0]}/{path.lstrip('/')}"

    def should_retry(self, response: httpx.Response) -> bool | None:
        if response.status_code == 403 and reasons(response) & RATE_REASONS:
            return True
        return None


def reasons(response: httpx.Response) -> set[str]:
    """The ``reason``s of Google's error body (``{"error": {"errors": [{"reason"}]}}``)."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return set()
    error = body.get("error") if isinstance(body, dict) else None
    found = error.get("errors") if isinstance(error, dict) else None
    return {str(item.get("reason")) for item in found or [] if isinstance(item, dict)}


def header(payload: dict[str, Any], name: str) -> str | None:
    """A message header's value (the first of that name, case-insensitive)."""
    wanted = name.lower()
    for item in payload.get("headers") or []:
        if isinstance(item, dict) and str(item.get("name", "")).lower() == wanted:
            return str(item.get("value", ""))
    return None
