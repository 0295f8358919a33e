"""The HTTP side of the sandbox OAuth server: the authorize endpoint and its consent page, the consent form's
answer, the token endpoint and RFC 7009 revocation, on the provider's paths and with its error bodies.

The consent page is plain HTML for automation to read (``vrtx_pipelines/connect/consent.py`` does): one form posting
``request_id``, one checked ``tenant_id`` checkbox per tenant the user may grant, and ``decision`` buttons
``allow``/``deny``. An unknown app or redirect URI is an error page, never a redirect (nothing unverified is
redirected to); other authorize errors go back to the app as ``error``/``error_description``/``state``.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from providers.sandbox_kit.oauth import Consent, OAuthError, OAuthServer
from providers.sandbox_kit.wire import basic_credentials, form_pairs, redirect

Prepare = Callable[[Request], Awaitable[None]]  # runs first on every request (fault knobs: latency, expiry)
ErrorResponse = Callable[[OAuthError], Response]


@dataclass(frozen=True)
class OAuthPaths:
    authorize: str
    token: str | None  # None: the provider serves its own token endpoint (Stripe authenticates platforms by key)
    revoke: str | None = None
    consent: str = ""  # where the consent form posts (default: the authorize path + "/consent")

    @property
    def consent_path(self) -> str:
        return self.consent or f"{self.authorize}/consent"


@dataclass(frozen=True)
class ConsentPages:
    """How the provider's pages read; their structure is the same for every provider."""

    title: str = "Authorise app"
    heading: str = "{app} wants to access your account"
    tenants_legend: str = "Accounts"
    error_title: str = "Error"
    scope_text: Mapping[str, str] = field(default_factory=dict)  # what the page says each scope allows


def standard_error(realm: str) -> ErrorResponse:
    """RFC 6749 section 5.2: ``{"error", "error_description"?}``, never cached; a 401 challenges for Basic."""

    def render(exc: OAuthError) -> Response:
        body = {"error": exc.error, **({"error_description": exc.description} if exc.description else {})}
        headers = {"Cache-Control": "no-store"}
        if exc.status == 401:
            headers["WWW-Authenticate"] = f'Basic realm="{realm}"'
        return JSONResponse(body, status_code=exc.status, headers=headers)

    return render


def add_oauth_routes(
    app: FastAPI,
    server: OAuthServer,
    lock: threading.RLock,
    *,
    paths: OAuthPaths,
    pages: ConsentPages,
    prepare: Prepare,
    user_of: Callable[[str | None], str],
    error_response: ErrorResponse,
) -> None:
    """``user_of(login_hint)`` names the signed-in user: a sandbox has no login form."""

    @app.get(paths.authorize)
    async def authorize(request: Request) -> Response:
        await prepare(request)
        params = dict(request.query_params)
        with lock:
            client = server.apps.get(params.get("client_id", ""))
            redirect_uri = params.get("redirect_uri", "")
            if client is None:
                return _error_page(pages, "unauthorized_client", "Unknown client or client not enabled")
            if not redirect_uri or not server.redirect_allowed(client, redirect_uri):
                return _error_page(pages, "invalid_request", "Invalid redirect_uri")
            try:
                request_id, consent = server.begin(params, user_of(params.get("login_hint")))
            except OAuthError as exc:
                extra = {"state": params["state"]} if "state" in params else {}
                error = {"error": exc.error, **({"error_description": exc.description} if exc.description else {})}
                return redirect(redirect_uri, {**error, **extra})
        return HTMLResponse(_consent_page(pages, paths.consent_path, client.name, consent, request_id))

    @app.post(paths.consent_path)
    async def decide(request: Request) -> Response:
        await prepare(request)
        form = await form_pairs(request)
        values = dict(form)
        tenant_ids = [value for key, value in form if key == "tenant_id"]
        with lock:
            try:
                uri, params = server.decide(values.get("request_id", ""), values.get("decision") == "allow", tenant_ids)
            except OAuthError as exc:
                return _error_page(pages, exc.error, exc.description)
        return redirect(uri, params)

    if paths.token is not None:

        @app.post(paths.token)
        async def token(request: Request) -> Response:
            await prepare(request)
            form = dict(await form_pairs(request))
            with lock:
                try:
                    body = server.token(form, basic_credentials(request))
                except OAuthError as exc:
                    return error_response(exc)
            return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    if paths.revoke is not None:

        @app.post(paths.revoke)
        async def revocation(request: Request) -> Response:
            await prepare(request)
            form = dict(await form_pairs(request))
            with lock:
                try:
                    server.revoke(form, basic_credentials(request))
                except OAuthError as exc:
                    return error_response(exc)
            return Response(status_code=200)


def _error_page(pages: ConsentPages, error: str, description: str) -> HTMLResponse:
    body = (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(pages.error_title)}</title></head>'
        f'<body><h1>Sorry, something went wrong</h1><p id="error">{html.escape(error)}</p>'
        f'<p id="error_description">{html.escape(description)}</p></body></html>'
    )
    return HTMLResponse(body, status_code=400)


def _consent_page(pages: ConsentPages, action: str, app_name: str, consent: Consent, request_id: str) -> str:
    esc = html.escape
    scope_items = "".join(f'<li data-scope="{esc(s)}">{esc(pages.scope_text.get(s, s))}</li>' for s in consent.scopes)
    boxes = "".join(
        f'<label><input type="checkbox" name="tenant_id" value="{esc(tenant_id)}" checked> {esc(name)}</label><br>'
        for tenant_id, name in consent.tenants
    )
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{esc(pages.title)}</title></head><body>'
        f"<h1>{esc(pages.heading.format(app=app_name))}</h1>"
        f"<p>Signed in as <strong>{esc(consent.user)}</strong></p>"
        f"<p>{esc(app_name)} will be able to:</p><ul>{scope_items}</ul>"
        f'<form method="post" action="{esc(action)}">'
        f'<input type="hidden" name="request_id" value="{esc(request_id)}">'
        f"<fieldset><legend>{esc(pages.tenants_legend)}</legend>{boxes}</fieldset>"
        '<button type="submit" name="decision" value="allow">Allow access</button> '
        '<button type="submit" name="decision" value="deny">Cancel</button>'
        "</form></body></html>"
    )
