"""The marketplace's browser session.

The CRM asks for a link with the tenant's API token (``POST /api/v1/marketplace/sessions``) and opens it in an
iframe or a new tab. The link carries a signed, short-lived grant for one tenant, to any page; opening it burns the
link's nonce (single use), swaps the grant for an HttpOnly cookie holding a signed session (tenant, token
generation, expiry, nonce) and redirects to the clean URL, so the grant does not linger in the address bar or
history (nor in the access log: ``api.access_log``). Links and sessions name the tenant's token generation:
``vrtx tenants rotate-token`` ends all of them. Every form carries a CSRF token derived from the session's nonce.
Signatures are the vault's HMAC (``Vault.sign``) over messages with a purpose prefix of their own, so a link, a
session and a CSRF token can never stand in for one another or for an OAuth state.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field
from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.deps import SessionDep, TenantDep, VaultDep
from api.pages.config import pages_settings
from api.pages.render import PageError
from api.pages.theme import Brand, brand_of
from api.responses import JSON_BODY, TENANT_ROUTE
from vrtx_pipelines.config import Settings
from vrtx_pipelines.credentials.vault import Vault
from vrtx_pipelines.db.models import MarketplaceLink, Tenant, table_of, utcnow

COOKIE = "vrtx_marketplace"
LINK_PARAM = "session"  # ?session=<link grant> on any page
# v2: the message carries the tenant's token generation (v1 links and cookies no longer verify).
LINK_PURPOSE = b"vrtx-marketplace-link-v2|"
SESSION_PURPOSE = b"vrtx-marketplace-session-v2|"
CSRF_PURPOSE = b"vrtx-marketplace-csrf-v1|"
MAX_FORM_BYTES = 256 * 1024
# One answer for every failure (tampered, expired, used, rotated away): the page learns nothing from which.
EXPIRED = (
    "This marketplace link or session has expired, was already used, or is not valid. Open Integrations again "
    "from your CRM to get a new one."
)

api_router = APIRouter(prefix="/api/v1/marketplace", tags=["marketplace"])


@dataclass(frozen=True)
class Grant:
    tenant_id: str
    generation: int
    expires: int
    nonce: str


def _message(purpose: bytes, grant: Grant) -> bytes:
    return purpose + f"{grant.tenant_id}|{grant.generation}|{grant.expires}|{grant.nonce}".encode()


def _issue(vault: Vault, purpose: bytes, tenant_id: str, generation: int, ttl_s: int) -> tuple[str, int]:
    grant = Grant(tenant_id, generation, int(time.time()) + ttl_s, secrets.token_urlsafe(16))
    signature = vault.sign(_message(purpose, grant))
    return f"{tenant_id}.{generation}.{grant.expires}.{grant.nonce}.{signature}", grant.expires


def _verify(vault: Vault, purpose: bytes, token: str) -> Grant | None:
    # The signature itself is "<kid>.<mac>", so the token splits into exactly five parts before it.
    parts = token.split(".", 4)
    if len(parts) != 5 or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    tenant_id, generation, expires, nonce, signature = parts
    grant = Grant(tenant_id, int(generation), int(expires), nonce)
    if not vault.verify(_message(purpose, grant), signature) or grant.expires < time.time():
        return None
    return grant


def issue_link(vault: Vault, tenant: Tenant) -> tuple[str, int]:
    """A single-use link grant for ``tenant``, valid until its token is next rotated and at most the link TTL."""
    ttl = pages_settings().marketplace_link_ttl_s
    return _issue(vault, LINK_PURPOSE, tenant.id, tenant.token_generation or 0, ttl)


def csrf_token_for(vault: Vault, grant: Grant) -> str:
    return vault.sign(CSRF_PURPOSE + f"{grant.tenant_id}|{grant.nonce}".encode())


class SessionLinkIn(BaseModel):
    path: str = Field(
        "/marketplace",
        pattern=r"^/marketplace(/[a-z0-9_]+(/(settings|sync|mappings))?)?$",
        description="The page to open, e.g. /marketplace/xero/settings.",
    )


class SessionLinkOut(BaseModel):
    url: str = Field(
        description="Open this once in the tenant admin's browser (an iframe or a new tab) before it expires."
    )
    expires_in: int


def marketplace_url(settings: Settings, vault: Vault, tenant: Tenant, path: str = "/marketplace") -> SessionLinkOut:
    """A fresh signed link to ``path`` (one of SessionLinkIn's) for ``tenant``: the API and `vrtx marketplace-link`."""
    token, expires = issue_link(vault, tenant)
    url = f"{settings.public_url.rstrip('/')}{path}?{LINK_PARAM}={token}"
    return SessionLinkOut(url=url, expires_in=max(0, expires - int(time.time())))


@api_router.post(
    "/sessions",
    response_model=SessionLinkOut,
    status_code=201,
    summary="Create a marketplace link for the tenant",
    responses=TENANT_ROUTE | JSON_BODY,
    description="A short-lived, single-use signed URL that opens the tenant's marketplace pages in a browser "
    "without its API token: any page (`path`: the marketplace, an integration, or its settings, sync or mappings "
    "page). Open it once, before it expires; the browser session it starts lasts an hour. Rotating the tenant's "
    "token ends every link and session issued before.",
)
def create_session(
    tenant: TenantDep, vault: VaultDep, request: Request, body: SessionLinkIn | None = None
) -> SessionLinkOut:
    return marketplace_url(request.app.state.settings, vault, tenant, (body or SessionLinkIn()).path)


def _current_tenant(session: Session, grant: Grant) -> Tenant | None:
    """The grant's tenant if it is active and its token has not been rotated since the grant was issued."""
    tenant = session.get(Tenant, grant.tenant_id)
    if tenant is None or not tenant.is_active or (tenant.token_generation or 0) != grant.generation:
        return None
    return tenant


def _burn(session: Session, grant: Grant) -> bool:
    """Mark the link used; False when it was used before. Committed at once in a transaction of its own, so
    nothing the request does afterwards can roll the burn back. Rows of links past their expiry go meanwhile."""
    now = utcnow()
    links = table_of(MarketplaceLink)
    with Session(session.get_bind()) as own:
        try:
            own.execute(delete(links).where(links.c.expires_at < now))
            own.execute(
                insert(links).values(
                    id=hashlib.sha256(grant.nonce.encode()).hexdigest(),
                    tenant_id=grant.tenant_id,
                    expires_at=datetime.fromtimestamp(grant.expires, UTC),
                    used_at=now,
                )
            )
            own.commit()
        except IntegrityError:
            own.rollback()
            return False
    return True


class SessionStarted(Exception):
    """Raised by the page dependency when a request carried a link: the answer is the redirect that sets the
    session cookie (``install_pages`` registers the handler)."""

    def __init__(self, response: RedirectResponse) -> None:
        super().__init__("marketplace session started")
        self.response = response


def start_browser_session(request: Request, session: Session, vault: Vault, link: str) -> RedirectResponse:
    """Swap a link's grant for the session cookie and send the browser to the same page without the grant."""
    grant = _verify(vault, LINK_PURPOSE, link)
    tenant = _current_tenant(session, grant) if grant else None
    if grant is None or tenant is None or not _burn(session, grant):
        raise PageError(401, "Link expired", EXPIRED)
    cookie, expires = _issue(
        vault, SESSION_PURPOSE, tenant.id, grant.generation, pages_settings().marketplace_session_ttl_s
    )
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
    """Every page's session: from the cookie, or, when the request opens a link (``?session=``), the redirect
    that swaps it for the cookie, whichever page the link points at."""
    link = request.query_params.get(LINK_PARAM)
    if link is not None and request.method == "GET":
        raise SessionStarted(start_browser_session(request, session, vault, link))
    grant = _verify(vault, SESSION_PURPOSE, request.cookies.get(COOKIE, ""))
    tenant = _current_tenant(session, grant) if grant else None
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
