"""Where the OAuth callback sends a browser that started on a marketplace page.

The callback URL is fixed (it is registered with the provider), so the page to come back to travels in the
state's server-side row (``oauth_states.return_to``). Only paths on this server are followed: the callback never
becomes an open redirect, and what it adds to the URL is a fixed error code, never free text."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from vrtx_pipelines.db.models import OAuthState

PAGE_PATH = re.compile(r"^/marketplace/[a-z0-9_]+/connected$")
PROVIDER_ERROR = re.compile(r"^[a-z_]{1,40}$")


def page_return_to(return_to: str | None) -> str | None:
    return return_to if return_to and PAGE_PATH.match(return_to) else None


def return_to_for_state(session: Session, state: str) -> str | None:
    """The marketplace page an OAuth state was started from, if any (for callbacks that fail)."""
    nonce = state.split(".", 1)[0]
    if not nonce:
        return None
    row = session.get(OAuthState, hashlib.sha256(nonce.encode()).hexdigest())
    return page_return_to(row.return_to) if row is not None else None


def failure_url(return_to: str, code: str, provider_error: str | None) -> str:
    query = {"error": code}
    if provider_error and PROVIDER_ERROR.match(provider_error):
        query["reason"] = provider_error
    return f"{return_to}?{urlencode(query)}"
