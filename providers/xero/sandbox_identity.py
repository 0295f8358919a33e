"""Xero's identity endpoints on their real paths: login.xero.com's authorize/consent page, identity.xero.com's
token and revocation endpoints, and api.xero.com's ``/connections``.

The consent page is plain HTML for automation to read: a form posting ``request_id``, one checked ``tenant_id``
checkbox per organisation of the signed-in user, and ``decision`` buttons ``allow``/``deny``.
"""

from __future__ import annotations

import base64
import binascii
import html
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from providers.xero.sandbox_oauth import AccessToken, Connection, OAuthError, OAuthState

Prepare = Callable[[Request], Awaitable[None]]
Unauthorized = Callable[[Request], Response]

_SCOPE_TEXT = {
    "openid": "Verify your identity",
    "profile": "See your name",
    "email": "See your email address",
    "offline_access": "Stay connected when you are not using the app",
}


def register_identity_routes(
    app: FastAPI,
    oauth: OAuthState,
    lock: threading.RLock,
    *,
    prepare: Prepare,
    unauthorized: Unauthorized,
    user_of: Callable[[str | None], str],
) -> None:
    """Add the identity routes; ``prepare`` runs first on each (latency, forced expiry), ``unauthorized`` renders
    Xero's 401, ``user_of(login_hint)`` names the signed-in user (the sandbox has no login form)."""

    @app.get("/identity/connect/authorize")
    async def authorize(request: Request) -> Response:
        await prepare(request)
        params = dict(request.query_params)
        with lock:
            client = oauth.clients.get(params.get("client_id", ""))
            redirect_uri = params.get("redirect_uri", "")
            # Never redirect to an unverified URI: unknown app or redirect_uri is an error page.
            if client is None:
                return _error_page("unauthorized_client", "Unknown client or client not enabled")
            if not redirect_uri or not oauth.redirect_allowed(client, redirect_uri):
                return _error_page("invalid_request", "Invalid redirect_uri")
            try:
                request_id, consent = oauth.begin(params, user_of(params.get("login_hint")))
            except OAuthError as exc:
                extra = {"state": params["state"]} if "state" in params else {}
                error = {"error": exc.error, **({"error_description": exc.description} if exc.description else {})}
                return _redirect(redirect_uri, {**error, **extra})
            organisations = oauth.organisations_of(consent.user_email)
        api_scopes = any(s not in _SCOPE_TEXT for s in consent.scopes)
        return HTMLResponse(
            _consent_page(
                client.name, consent.user_email, consent.scopes, organisations if api_scopes else [], request_id
            )
        )

    @app.post("/identity/connect/authorize/consent")
    async def decide(request: Request) -> Response:
        await prepare(request)
        form = parse_qsl((await request.body()).decode(), keep_blank_values=True)
        values = dict(form)
        tenant_ids = [value for key, value in form if key == "tenant_id"]
        with lock:
            try:
                uri, params = oauth.decide(values.get("request_id", ""), values.get("decision") == "allow", tenant_ids)
            except OAuthError as exc:
                return _error_page(exc.error, exc.description)
        return _redirect(uri, params)

    @app.post("/connect/token")
    async def token(request: Request) -> Response:
        await prepare(request)
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        with lock:
            try:
                body = oauth.token(form, _basic(request))
            except OAuthError as exc:
                return _oauth_error(exc)
        return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    @app.post("/connect/revocation")
    async def revocation(request: Request) -> Response:
        await prepare(request)
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        with lock:
            try:
                oauth.revoke(form, _basic(request))
            except OAuthError as exc:
                return _oauth_error(exc)
        return Response(status_code=200)

    @app.get("/connections")
    async def connections(request: Request, authEventId: str | None = None) -> Response:
        await prepare(request)
        with lock:
            access = oauth.authenticate(_bearer(request))
            if not isinstance(access, AccessToken):
                return unauthorized(request)
            found = [c for c in oauth.connections_of(access) if authEventId is None or c.auth_event_id == authEventId]
            body = [_connection(c, oauth.organisation_name(c.tenant_id)) for c in found]
        return JSONResponse(body)

    @app.delete("/connections/{connection_id}")
    async def disconnect(request: Request, connection_id: str) -> Response:
        await prepare(request)
        with lock:
            access = oauth.authenticate(_bearer(request))
            if not isinstance(access, AccessToken):
                return unauthorized(request)
            if not oauth.disconnect(access, connection_id.lower()):
                return Response("The resource you're looking for cannot be found", 404, media_type="text/plain")
        return Response(status_code=204)


def _connection(connection: Connection, name: str) -> dict[str, Any]:
    return {
        "id": connection.id,
        "authEventId": connection.auth_event_id,
        "tenantId": connection.tenant_id,
        "tenantType": "ORGANISATION",
        "tenantName": name,
        "createdDateUtc": _connection_date(connection.created_at),
        "updatedDateUtc": _connection_date(connection.updated_at),
    }


def _connection_date(seconds: float) -> str:
    """Xero writes these with 7 fractional digits and no offset (UTC): ``2019-12-07T18:46:19.5165400`` (spec)."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0"


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def _basic(request: Request) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return ("", "")
    return user, password


def _oauth_error(exc: OAuthError) -> JSONResponse:
    body = {"error": exc.error, **({"error_description": exc.description} if exc.description else {})}
    headers = {"Cache-Control": "no-store"}
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="identity.xero.com"'
    return JSONResponse(body, status_code=exc.status, headers=headers)


def _redirect(uri: str, params: dict[str, str]) -> RedirectResponse:
    parts = urlsplit(uri)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return RedirectResponse(urlunsplit(parts._replace(query=query)), status_code=302)


def _error_page(error: str, description: str) -> HTMLResponse:
    body = (
        '<!doctype html><html><head><meta charset="utf-8"><title>Xero | Error</title></head><body>'
        f'<h1>Sorry, something went wrong</h1><p id="error">{html.escape(error)}</p>'
        f'<p id="error_description">{html.escape(description)}</p></body></html>'
    )
    return HTMLResponse(body, status_code=400)


def _consent_page(
    app_name: str, email: str, scopes: tuple[str, ...], organisations: list[tuple[str, str]], request_id: str
) -> str:
    esc = html.escape
    scope_items = "".join(f'<li data-scope="{esc(s)}">{esc(_SCOPE_TEXT.get(s, s))}</li>' for s in scopes)
    boxes = "".join(
        f'<label><input type="checkbox" name="tenant_id" value="{esc(tenant_id)}" checked> {esc(name)}</label><br>'
        for tenant_id, name in organisations
    )
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>Xero | Authorise app</title></head><body>'
        f"<h1>{esc(app_name)} wants to access your Xero organisations</h1>"
        f"<p>Signed in as <strong>{esc(email)}</strong></p>"
        f"<p>{esc(app_name)} will be able to:</p><ul>{scope_items}</ul>"
        '<form method="post" action="/identity/connect/authorize/consent">'
        f'<input type="hidden" name="request_id" value="{esc(request_id)}">'
        f"<fieldset><legend>Organisations</legend>{boxes}</fieldset>"
        '<button type="submit" name="decision" value="allow">Allow access</button> '
        '<button type="submit" name="decision" value="deny">Cancel</button>'
        "</form></body></html>"
    )
