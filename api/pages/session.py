"""The marketplace's browser session.

The CRM asks for a link with the tenant's API token (``POST /api/v1/marketplace/sessions``) and opens it in an
iframe or a new tab. The link carries a signed, short-lived grant for one tenant; opening it swaps the grant for an
HttpOnly cookie holding a signed session (tenant, expiry, nonce) and redirects to the clean URL, so the grant does
not linger in the address bar or history. Every form carries a CSRF token derived from the session's nonce.
Signatures are the vault's HMAC (``Vault.sign``) over messages with a purpose prefix of their own, so a link, a
session and a CSRF token can never stand in for one another or for an OAuth state.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from api.deps import SessionDep, TenantDep, VaultDep
from api.pages.config import pages_settings
from api.pages.render import PageError
from api.pages.theme import Brand, brand_of
from vrtx_pipelines.config import Settings
from vrtx_pipelines.credentials.vault import Vault
from vrtx_pipelines.db.models import Tenant

COOKIE = "vrtx_marketplace"
LINK_PURPOSE = b"vrtx-marketplace-link-v1|"
SESSION_PURPOSE = b"vrtx-marketplace-session-v1|"
CSRF_PURPOSE = b"vrtx-marketplace-csrf-v1|"
MAX_FORM_BYTES = 256 * 1024
EXPIRED = (
    "This marketplace session has expired or is not valid. Open Integrations again from your CRM to get a new one."
)

api_router = APIRouter(prefix="/api/v1/marketplace", tags=["marketplace"])


def _message(purpose: bytes, tenant_id: str, expires: int, nonce: str) -> bytes:
    return purpose + f"{tenant_id}|{expires}|{nonce}".encode()


def _issue(vault: Vault, purpose: bytes, tenant_id: str, ttl_s: int) -> tuple[str, int]:
    expires = int(time.time()) + ttl_s
    nonce = secrets.token_urlsafe(16)
    signature = vault.sign(_message(purpose, tenant_id, expires, nonce))
    return f"{tenant_id}.{expires}.{nonce}.{signature}", expires


@dataclass(frozen=True)
class Grant:
    tenant_id: str
    expires: int
    nonce: str


def _verify(vault: Vault, purpose: bytes, token: str) -> Grant | None:
    # The signature itself is "<kid>.<mac>", so the token splits into exactly four parts before it.
    parts = token.split(".", 3)
    if len(parts) != 4 or not parts[1].isdigit():
        return None
    tenant_id, expires, nonce, signature = parts
    if not vault.verify(_message(purpose, tenant_id, int(expires), nonce), signature):
        return None
    if int(expires) < time.time():
        return None
    return Grant(tenant_id, int(expires), nonce)


def issue_link(vault: Vault, tenant_id: str) -> tuple[str, int]:
    return _issue(vault, LINK_PURPOSE, tenant_id, pages_settings().marketplace_link_ttl_s)


def csrf_token_for(vault: Vault, grant: Grant) -> str:
    return vault.sign(CSRF_PURPOSE + f"{grant.tenant_id}|{grant.nonce}".encode())


class SessionLinkIn(BaseModel):
    path: str = Field(
        "/marketplace",
        pattern=r"^/marketplace(/[a-z0-9_]+(/(settings|sync|mappings))?)?$",
        description="The page to open, e.g. /marketplace/xero/settings.",
    )


class SessionLinkOut(BaseModel):
    url: str = Field(description="Open this in the tenant admin's browser (an iframe or a new tab) before it expires.")
    expires_in: int


@api_router.post(
    "/sessions",
    response_model=SessionLinkOut,
    status_code=201,
    summary="Create a marketplace link for the tenant",
    description="A short-lived signed URL that opens the tenant's marketplace pages in a browser without its API "
    "token. The link must be opened before it expires; the browser session it starts lasts an hour.",
)
def create_session(
    tenant: TenantDep, vault: VaultDep, request: Request, body: SessionLinkIn | None = None
) -> SessionLinkOut:
    token, expires = issue_link(vault, tenant.id)
    settings: Settings = request.app.state.settings
    path = (body or SessionLinkIn()).path
    url = f"{settings.public_url.rstrip('/')}{path}?session={token}"
    return SessionLinkOut(url=url, expires_in=max(0, expires - int(time.time())))


def _active_tenant(session: SessionDep, tenant_id: str) -> Tenant | None:
    tenant = session.get(Tenant, tenant_id)
    return tenant if tenant is not None and tenant.is_active else None


def start_browser_session(request: Request, session: SessionDep, vault: Vault, link: str) -> RedirectResponse:
    """Swap a link's grant for the session cookie and send the browser to the same page without the grant."""
    grant = _verify(vault, LINK_PURPOSE, link)
    if grant is None or _active_tenant(session, grant.tenant_id) is None:
        raise PageError(401, "Link expired", EXPIRED)
    cookie, expires = _issue(vault, SESSION_PURPOSE, grant.tenant_id, pages_settings().marketplace_session_ttl_s)
    response = RedirectResponse(request.url.path, status_code=303)
    settings: Settings = request.app.state.settings
    # Embedded in the CRM over https the cookie is third-party: only SameSite=None (which needs Secure) reaches it.
    secure = settings.public_url.startswith("https://") or request.url.scheme == "https"
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=expires - int(time.time()),
        httponly=True,
        secure=secure,
        samesite="none" if secure else "lax",
        path="/",
    )
    return response


@dataclass(frozen=True)
class PageSession:
    tenant_id: str
    brand: Brand
    csrf_token: str


def page_session(request: Request, session: SessionDep, vault: VaultDep) -> PageSession:
    grant = _verify(vault, SESSION_PURPOSE, request.cookies.get(COOKIE, ""))
    tenant = _active_tenant(session, grant.tenant_id) if grant else None
    if grant is None or tenant is None:
        raise PageError(401, "Session expired", EXPIRED)
    return PageSession(tenant_id=tenant.id, brand=brand_of(tenant), csrf_token=csrf_token_for(vault, grant))


PageDep = Annotated[PageSession, Depends(page_session)]


class Form:
    """A submitted urlencoded form: ``get`` for one value, ``getlist`` for checkboxes."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def get(self, name: str, default: str = "") -> str:
        return next((value for key, value in self.pairs if key == name), default)

    def getlist(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key == name]

    def __contains__(self, name: str) -> bool:
        return any(key == name for key, _ in self.pairs)


async def _read_form(request: Request) -> Form:
    # The pages post plain urlencoded forms; parsing them here spares a multipart dependency.
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise PageError(413, "Form too large", "The form sent more than this page accepts.")
    return Form(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def checked_form(page: PageDep, form: Annotated[Form, Depends(_read_form)]) -> Form:
    """The posted form, after its CSRF token is checked against the session's."""
    if not hmac.compare_digest(form.get("csrf_token").encode(), page.csrf_token.encode()):
        raise PageError(
            403,
            "Form expired",
            "This form is out of date or did not come from this page. Reload the page and try again.",
        )
    return form


FormDep = Annotated[Form, Depends(checked_form)]
