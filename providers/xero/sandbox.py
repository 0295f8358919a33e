"""A local stand-in for Xero: identity (OAuth 2.0), ``/connections`` and the Accounting API 2.0 read side, on
Xero's real paths under one origin (the platform maps login.xero.com, identity.xero.com and api.xero.com onto it).

The official ``xero-python`` SDK works against it unchanged and its responses validate against Xero's OpenAPI
spec (tests/providers/test_xero_sdk.py, test_xero_sandbox.py). Wire details follow the shared reference
(``provider-apis.md`` section 1) and ``xero-accounting.yaml``/``xero-identity.yaml``; deviations are noted where
they are made. Data is generated on demand from the seed (``sandbox_data``), so organisations of any size are cheap.

    sandbox = XeroSandbox(seed=42)
    tenant_id = sandbox.add_organisation("Acme", invoices=100_000)
    app = create_app(sandbox)                # app.state.xero is the sandbox, app.state.sandbox the knobs
    app.state.sandbox.rate_limit_next = 2    # the next two Accounting API calls get Xero's 429

Where Xero's behaviour had to be chosen or guessed (each is also noted at the code that does it):
- Errors: 401 is the reference's lower-case ``{"title","status","detail","instance"}``; 403/429/5xx/501 use the
  PascalCase problem shape seen from Xero since 2023 (429/5xx bodies are guesses: status and headers are the
  contract); 404 is Xero's plain-text "The resource you're looking for cannot be found" (Xero-OpenAPI#163); a bad
  ``where``/``order`` is ``{"ErrorNumber": 16, "Type": "QueryParseException", "Message"}`` as Xero sends it.
- A list without ``page`` returns every match unpaged (invoices without line items); ``pageSize`` alone means page 1.
- Connections belong to the (app, user) pair; revoking a refresh token removes all that user's connections to the
  app (xero-python's ``TokenApi.revoke_token`` docstring). Connection dates carry 7 fractional digits and no offset,
  like the identity spec's example (its ``format: date-time`` says otherwise).
- A missing scope is 401 ``AuthorizationUnsuccessful``; ``Accept`` without JSON (e.g. application/xml) is 406, while
  ``*/*`` or no Accept get JSON (Xero would default to XML there).
- Writes (``sandbox_writes``): contacts, invoices and payments, counted against the same limits as reads, with
  ``Idempotency-Key`` replay; other writes answer 501. Every change, by the API or a test helper, is sent to the
  webhook subscribers (``sandbox_webhooks``): ``sandbox.subscribe_webhooks(url, key)``.
- Organisations are NZ-flavoured (GST 15%, NZD, the spec's examples), whatever their name. Seeded history spans
  2021-2025; changes are stamped max(clock, 2025-01-01, last change) so they always sort after it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from providers.sandbox_kit import SandboxState
from providers.xero import sandbox_accounting as accounting
from providers.xero import sandbox_writes as writes
from providers.xero.sandbox_contacts import ContactNames
from providers.xero.sandbox_data import IdCodec, OrgData, stable_key
from providers.xero.sandbox_identity import register_identity_routes
from providers.xero.sandbox_metering import Limits, RateLimiter, SandboxStats
from providers.xero.sandbox_oauth import AccessToken, OAuthState
from providers.xero.sandbox_org import ENTITIES, Organisation, sizes_for
from providers.xero.sandbox_webhooks import IntentToReceive, Subscription, WebhookHub, intent_to_receive

DEMO_CLIENT_ID = "8D1F2C3B4A5E6F708192A3B4C5D6E7F8"
DEMO_CLIENT_SECRET = "vrtx-sandbox-demo-secret-Xk3vQ9pL2mN7rT5wZ8yB4cD6"  # noqa: S105 -- a sandbox-only demo app
DEMO_APP_NAME = "VRTX Integrations"
DEMO_USER_EMAIL = "demo.user@vrtx.example"
DEMO_ORGANISATION = "Demo Company (Global)"


@dataclass
class XeroSandboxKnobs(SandboxState):
    """Fault injection, read fresh on every request (``app.state.sandbox``). ``rate_limit_next``, ``latency_s`` and
    ``retry_after_s`` are the shared knobs, applied to Accounting API calls; the rest are Xero's own."""

    fail_on_page: int | None = None  # answer page N of any paged list with fail_on_page_status...
    fail_on_page_status: int = 500
    fail_on_page_times: int = 1  # ...this many times (counts down), then serve it normally
    expire_tokens: bool = False  # expire every access token issued so far (consumed: resets to False)
    enforce_rate_limits: bool = True  # Xero's per-organisation limits below
    minute_limit: int = 60
    day_limit: int = 5000
    concurrent_limit: int = 5
    app_minute_limit: int = 10000
    # Writes (PUT/POST): from the Nth write on (1-based, counted in write_count), answer fail_on_write_status
    # fail_on_write_times times without writing anything.
    fail_on_write: int | None = None
    fail_on_write_status: int = 500
    fail_on_write_times: int = 1
    # The next N writes are applied, then answered 504 as if the response was lost on the way back.
    lose_write_responses: int = 0
    write_count: int = 0

    def limits(self) -> Limits:
        return Limits(
            self.enforce_rate_limits, self.minute_limit, self.day_limit, self.concurrent_limit, self.app_minute_limit
        )


class XeroSandbox:
    """Every organisation, app, grant and token; thread-safe (one lock). Reachable as ``app.state.xero``."""

    def __init__(self, *, seed: int = 42, clock: Callable[[], float] = time.time) -> None:
        self.seed = seed
        self.clock = clock
        self.lock = threading.RLock()
        self.organisations: dict[str, Organisation] = {}
        self.stats = SandboxStats()
        self.limiter = RateLimiter()
        self._tenant_ids = IdCodec(stable_key("xero-sandbox-tenants", seed))
        self.oauth = OAuthState(clock, self.stats, self._organisations_of, self._organisation_name)
        self.webhooks = WebhookHub()
        self.idempotency = writes.IdempotencyStore()
        self.contact_names: dict[str, ContactNames] = {}
        self.register_client(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, None, name=DEMO_APP_NAME)

    # --- set-up ---------------------------------------------------------------------------------------------

    def add_organisation(
        self,
        name: str,
        *,
        contacts: int = 50,
        invoices: int = 200,
        lines_per_invoice: int = 3,
        payments: int = 100,
        items: int = 20,
        user_email: str = DEMO_USER_EMAIL,
    ) -> str:
        """A new organisation of ``user_email`` with seeded records; returns its tenantId (= OrganisationID)."""
        sizes = sizes_for(contacts, invoices, lines_per_invoice, payments, items)
        with self.lock:
            ordinal = len(self.organisations)
            tenant_id = self._tenant_ids.encode(ordinal)
            data = OrgData(self.seed, ordinal, tenant_id, name, sizes)
            org = Organisation(data, user_email, self.clock)
            org.observers.append(self.webhooks.observer(tenant_id))
            self.contact_names[tenant_id] = ContactNames(org)
            self.organisations[tenant_id] = org
            return tenant_id

    def register_client(
        self,
        client_id: str,
        client_secret: str | None,
        redirect_uris: Sequence[str] | None = None,
        *,
        name: str | None = None,
    ) -> None:
        """An OAuth app. ``client_secret`` None is a PKCE app; ``redirect_uris`` None accepts any loopback http
        URI (http://127.0.0.1:*, http://localhost:*), a documented leniency for local runs. ``name`` is what the
        consent page and ``ProviderName`` show (default: the client id)."""
        with self.lock:
            self.oauth.register_client(client_id, client_secret, redirect_uris, name or client_id)

    def issue_access_token(self, tenant_ids: Sequence[str], *, expires_in: int = 1800) -> str:
        """An access token of the demo app reaching exactly ``tenant_ids`` (tests skip the OAuth dance)."""
        with self.lock:
            unknown = [t for t in tenant_ids if t not in self.organisations]
            if unknown:
                raise KeyError(f"unknown organisations: {unknown}")
            return self.oauth.mint(DEMO_CLIENT_ID, tenant_ids, expires_in)

    # --- webhooks ------------------------------------------------------------------------------------------

    def subscribe_webhooks(self, url: str, key: str, organisations: Sequence[str] | None = None) -> Subscription:
        """Send every later change of ``organisations`` (default: all) to ``url``, signed with ``key``."""
        return self.webhooks.subscribe(url, key, list(organisations) if organisations is not None else None)

    def unsubscribe_webhooks(self, subscription: Subscription) -> None:
        self.webhooks.unsubscribe(subscription)

    def flush_webhooks(self, timeout_s: float = 10.0) -> bool:
        """Wait for every queued delivery to finish (delivered or given up); False on timeout."""
        return self.webhooks.flush(timeout_s)

    @staticmethod
    def intent_to_receive(url: str, key: str) -> IntentToReceive:
        return intent_to_receive(url, key)

    # --- data helpers for tests -----------------------------------------------------------------------------

    def _org(self, tenant_id: str, entity: str | None = None) -> Organisation:
        if entity is not None and entity not in ENTITIES:
            raise ValueError(f"unknown entity {entity!r}: one of {', '.join(ENTITIES)}")
        try:
            return self.organisations[tenant_id]
        except KeyError:
            raise KeyError(f"unknown organisation {tenant_id!r}") from None

    def count(self, tenant_id: str, entity: str) -> int:
        """All records of ``entity`` (archived, voided and deleted ones included)."""
        with self.lock:
            return len(self._org(tenant_id, entity).tables[entity])

    def touch(self, tenant_id: str, entity: str, record_ids: Sequence[str] | int) -> list[str]:
        """Change records (or the N oldest by UpdatedDateUTC): a field changes and UpdatedDateUTC becomes now
        (never earlier than the seeded history or a previous change). Returns their IDs."""
        with self.lock:
            return self._org(tenant_id, entity).touch(entity, record_ids)

    def create(self, tenant_id: str, entity: str, n: int = 1) -> list[str]:
        """``n`` new records, UpdatedDateUTC now. A new payment pays the newest unpaid AUTHORISED invoice in
        full, which changes that invoice too. Returns their IDs (TaxType for tax rates)."""
        with self.lock:
            return self._org(tenant_id, entity).create(entity, n)

    def archive_contact(self, tenant_id: str, contact_id: str) -> None:
        with self.lock:
            self._org(tenant_id).archive_contact(contact_id)

    def void_invoice(self, tenant_id: str, invoice_id: str) -> None:
        """VOIDED now; payments on it become DELETED (Xero voids only once payments are removed)."""
        with self.lock:
            self._org(tenant_id).void_invoice(invoice_id)

    def in_flight(self, tenant_id: str, client_id: str = DEMO_CLIENT_ID) -> int:
        with self.lock:
            return self.limiter.in_flight(client_id, tenant_id)

    def _organisations_of(self, email: str) -> list[tuple[str, str]]:
        return [(t, org.name) for t, org in self.organisations.items() if org.user_email.lower() == email.lower()]

    def _organisation_name(self, tenant_id: str) -> str:
        org = self.organisations.get(tenant_id)
        return org.name if org is not None else ""

    def _user_of(self, login_hint: str | None) -> str:
        known = {org.user_email.lower() for org in self.organisations.values()}
        return login_hint if login_hint and login_hint.lower() in known else DEMO_USER_EMAIL


def create_app(sandbox: XeroSandbox | None = None, *, knobs: XeroSandboxKnobs | None = None) -> FastAPI:
    """The sandbox ASGI app. Default sandbox: one "Demo Company (Global)" of default size, the demo app."""
    if sandbox is None:
        sandbox = XeroSandbox()
        sandbox.add_organisation(DEMO_ORGANISATION)
    app = FastAPI(title="Xero sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.xero = sandbox
    app.state.sandbox = knobs or XeroSandboxKnobs()
    app.add_middleware(_XeroEdge)

    def knobs_of() -> XeroSandboxKnobs:
        current: XeroSandboxKnobs = app.state.sandbox
        return current

    def apply_forced_expiry(current: XeroSandboxKnobs) -> None:
        if current.expire_tokens:
            with sandbox.lock:
                sandbox.oauth.expire_all()
            current.expire_tokens = False

    async def prepare(request: Request) -> None:
        current = knobs_of()
        current.request_count += 1
        apply_forced_expiry(current)
        if current.latency_s > 0:
            await asyncio.sleep(current.latency_s)

    register_identity_routes(
        app, sandbox.oauth, sandbox.lock, prepare=prepare, unauthorized=_unauthorized, user_of=sandbox._user_of
    )

    @app.exception_handler(StarletteHTTPException)
    async def not_served(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405 and request.url.path.startswith("/api.xro/"):
            return _json(501, _problem(request, "NotImplemented", 501, "This sandbox does not implement that write."))
        if exc.status_code == 405:
            return Response("Method Not Allowed", 405, media_type="text/plain")
        return Response(accounting.NOT_FOUND_TEXT, exc.status_code, media_type="text/plain")

    @app.get("/api.xro/2.0/{resource}")
    async def list_records(request: Request, resource: str) -> Response:
        return await serve_accounting(request, resource, None)

    @app.get("/api.xro/2.0/{resource}/{record_id}")
    async def one_record(request: Request, resource: str, record_id: str) -> Response:
        return await serve_accounting(request, resource, record_id)

    @app.put("/api.xro/2.0/{resource}")
    async def create_records(request: Request, resource: str) -> Response:
        return await serve_write(request, resource, None)

    @app.post("/api.xro/2.0/{resource}")
    async def upsert_records(request: Request, resource: str) -> Response:
        return await serve_write(request, resource, None)

    @app.post("/api.xro/2.0/{resource}/{record_id}")
    async def update_record(request: Request, resource: str, record_id: str) -> Response:
        return await serve_write(request, resource, record_id)

    async def serve_write(request: Request, resource: str, record_id: str | None) -> Response:
        current = knobs_of()
        current.request_count += 1
        apply_forced_expiry(current)
        if resource not in writes.WRITABLE:
            return _json(501, _problem(request, "NotImplemented", 501, "This sandbox does not implement that write."))
        entity = writes.WRITABLE[resource][0]
        with sandbox.lock:
            admitted = _admit(sandbox, current, request, entity, writes.WRITE_SCOPES[entity])
        if isinstance(admitted, Response):
            return admitted
        access, org, rate_headers = admitted
        try:
            key = request.headers.get("idempotency-key")
            if key is not None and not 0 < len(key) <= writes.MAX_IDEMPOTENCY_KEY:
                detail = f"Idempotency-Key must be 1 to {writes.MAX_IDEMPOTENCY_KEY} characters"  # guess
                return _json(400, _problem(request, "Bad Request", 400, detail), rate_headers)
            if current.latency_s > 0:
                await asyncio.sleep(current.latency_s)
            current.write_count += 1
            failing = current.fail_on_write is not None and current.write_count >= current.fail_on_write
            if failing and current.fail_on_write_times > 0:
                current.fail_on_write_times -= 1
                return _server_error(request, current.fail_on_write_status, rate_headers)
            body = await request.body()
            answer = await run_in_threadpool(_write, sandbox, org, resource, record_id, request, body, access, key)
        finally:
            with sandbox.lock:
                sandbox.limiter.release(access.client_id, org.tenant_id)
        if answer.status == 200 and current.lose_write_responses > 0:
            current.lose_write_responses -= 1
            return _server_error(request, 504, rate_headers)
        if isinstance(answer.body, str):
            return Response(answer.body, answer.status, headers=rate_headers, media_type="text/plain")
        return _json(answer.status, answer.body, rate_headers)

    async def serve_accounting(request: Request, resource: str, record_id: str | None) -> Response:
        current = knobs_of()
        current.request_count += 1
        apply_forced_expiry(current)
        known = resource in accounting.RESOURCES and not (record_id is not None and resource == "organisation")
        entity = accounting.RESOURCES[resource][0] if known else None
        with sandbox.lock:
            admitted = _admit(sandbox, current, request, entity)
        if isinstance(admitted, Response):
            return admitted
        access, org, rate_headers = admitted
        if entity is None:  # an endpoint the sandbox does not serve (yet): Xero's 404, counted like any call
            with sandbox.lock:
                sandbox.limiter.release(access.client_id, org.tenant_id)
            return Response(accounting.NOT_FOUND_TEXT, 404, headers=rate_headers, media_type="text/plain")
        try:
            if current.latency_s > 0:  # inside the in-flight slot, like a slow Xero
                await asyncio.sleep(current.latency_s)
            paged = entity in accounting.PAGED and record_id is None
            page = accounting.page_of(request.query_params) if paged else None
            if page is not None and page == current.fail_on_page and current.fail_on_page_times > 0:
                current.fail_on_page_times -= 1
                return _server_error(request, current.fail_on_page_status, rate_headers)
            answer = await run_in_threadpool(_answer, sandbox, org, resource, record_id, request, access.client_id)
        finally:
            with sandbox.lock:
                sandbox.limiter.release(access.client_id, org.tenant_id)
        if answer.status == 200 and record_id is None and entity != "organisation":
            with sandbox.lock:
                sandbox.stats.page(org.tenant_id, entity)
        if isinstance(answer.body, str):
            return Response(answer.body, answer.status, headers=rate_headers, media_type="text/plain")
        return _json(answer.status, answer.body, rate_headers)

    return app


def _admit(
    sandbox: XeroSandbox,
    knobs: XeroSandboxKnobs,
    request: Request,
    entity: str | None,
    scopes: frozenset[str] | None = None,
) -> Response | tuple[AccessToken, Organisation, dict[str, str]]:
    """Authentication, organisation, scope, Accept, injected faults and rate limits, in Xero's order. Either the
    refusal, or (token, organisation, rate-limit headers) with an in-flight slot taken (release it)."""
    limits, now = knobs.limits(), sandbox.clock()
    access = sandbox.oauth.authenticate(_bearer(request))
    if not isinstance(access, AccessToken):
        response = _unauthorized(request)
        response.headers.update(sandbox.limiter.headers(None, None, now, limits))
        return response
    headers = sandbox.limiter.headers(access.client_id, None, now, limits)
    tenant_id = request.headers.get("xero-tenant-id", "").strip().lower()
    if tenant_id not in sandbox.oauth.tenants_of(access.client_id, access.user_email):
        # Missing, unknown or not connected: 403 (reference "Tenant selection"), in the PascalCase problem shape
        # Xero answers today (XeroAPI/xero-python#116, XeroAPI/xero-node#432).
        return _json(403, _problem(request, "Forbidden", 403, "AuthenticationUnsuccessful"), headers)
    if entity is not None and not access.scopes & (scopes if scopes is not None else accounting.SCOPES[entity]):
        response = _unauthorized(request, detail="AuthorizationUnsuccessful")
        response.headers.update(headers)
        return response
    accept = request.headers.get("accept", "*/*").lower()
    if "json" not in accept and "*/*" not in accept and "application/*" not in accept:
        # Xero would answer XML (or a PDF); the sandbox speaks JSON only and says so.
        return Response("This sandbox answers JSON only: send Accept: application/json", 406, headers=headers)
    sandbox.stats.bump("api_calls", [tenant_id])
    if knobs.fail_next_with_status is not None:  # the shared one-shot knob
        status, knobs.fail_next_with_status = knobs.fail_next_with_status, None
        return _server_error(request, status, headers)
    if knobs.rate_limit_next > 0:
        knobs.rate_limit_next -= 1
        refusal: tuple[str, int] | None = ("minute", knobs.retry_after_s)
    else:
        refused = sandbox.limiter.acquire(access.client_id, tenant_id, now, limits)
        refusal = None if refused is None else (refused.problem, refused.retry_after_s)
    headers = sandbox.limiter.headers(access.client_id, tenant_id, now, limits)
    if refusal is not None:
        sandbox.stats.bump("rate_limited_responses", [tenant_id])
        return _rate_limited(request, *refusal, headers)
    return access, sandbox.organisations[tenant_id], headers


def _unauthorized(request: Request, *, detail: str = "AuthenticationUnsuccessful") -> Response:
    """Reference "Errors": 401, ``WWW-Authenticate: Bearer error=...`` and a lower-case problem body."""
    error = "insufficient_scope" if detail == "AuthorizationUnsuccessful" else "invalid_token"
    body = {"title": "Unauthorized", "status": 401, "detail": detail, "instance": _correlation_id(request)}
    return _json(401, body, {"WWW-Authenticate": f'Bearer error="{error}"'})


def _answer(
    sandbox: XeroSandbox, org: Organisation, resource: str, record_id: str | None, request: Request, client_id: str
) -> accounting.Answer:
    with sandbox.lock:
        name = sandbox.oauth.clients[client_id].name if client_id in sandbox.oauth.clients else client_id
        now_ms = int(sandbox.clock() * 1000)
        return accounting.serve(org, resource, record_id, request.query_params, request.headers, name, now_ms)


def _write(
    sandbox: XeroSandbox,
    org: Organisation,
    resource: str,
    record_id: str | None,
    request: Request,
    body: bytes,
    access: AccessToken,
    key: str | None,
) -> accounting.Answer:
    # One lock around check, write and record: the same key sent twice at once still writes once.
    with sandbox.lock:
        now = sandbox.clock()
        scope = (access.client_id, org.tenant_id, key or "")
        print_ = writes.fingerprint(request.method, request.url.path, request.url.query, body)
        if key is not None:
            replayed = sandbox.idempotency.replay(scope, print_, now)
            if replayed is not None:
                return replayed
        name = sandbox.oauth.clients[access.client_id].name if access.client_id in sandbox.oauth.clients else ""
        envelope = writes.new_envelope(name or access.client_id, int(now * 1000))
        names = sandbox.contact_names[org.tenant_id]
        answer = writes.write(org, names, resource, record_id, body, request.query_params, envelope)
        if key is not None:
            sandbox.idempotency.keep(scope, print_, answer, now)
        return answer


def _rate_limited(request: Request, problem: str, retry_after: int, headers: dict[str, str]) -> Response:
    # Reference "Rate limits": 429 with Retry-After and X-Rate-Limit-Problem. The body is a guess in Xero's
    # problem shape: the documented contract is the status and the headers.
    body = _problem(request, "Too Many Requests", 429, f"You've exceeded the per {problem} rate limit")
    return _json(429, body, {**headers, "Retry-After": str(retry_after), "X-Rate-Limit-Problem": problem})


def _server_error(request: Request, status: int, headers: dict[str, str]) -> Response:
    detail = (
        "An error occurred in Xero. Check the API Status page http://status.developer.xero.com for current service"
        " status."
    )
    return _json(status, _problem(request, "An error occurred", status, detail), headers)


def _problem(request: Request, title: str, status: int, detail: str) -> dict[str, Any]:
    """Xero's problem-details body, PascalCase with ``Type: null`` and ``Extensions`` (as in xero-python#116)."""
    return {
        "Type": None,
        "Title": title,
        "Status": status,
        "Detail": detail,
        "Instance": _correlation_id(request),
        "Extensions": {},
    }


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    content = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return Response(content, status, headers=headers, media_type="application/json; charset=utf-8")


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return (value.strip() or None) if scheme.lower() == "bearer" else None


def _correlation_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("correlation_id", ""))


class _XeroEdge:
    """Xero's paths are case-insensitive (xero-python asks for ``/Connections``, others ``/connections``): route on
    the lower-cased path. Every response carries a fresh ``Xero-Correlation-Id``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        correlation_id = str(uuid.uuid4())
        scope = {**scope, "path": _route_path(scope["path"])}
        scope.setdefault("state", {})["correlation_id"] = correlation_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"xero-correlation-id", correlation_id.encode()))
            await send(message)

        await self.app(scope, receive, send_with_id)


def _route_path(path: str) -> str:
    # Lower-case the fixed segments; keep record IDs/numbers as sent (they are matched case-insensitively later).
    parts = path.split("/")
    if path.lower().startswith("/api.xro/2.0/") and len(parts) > 3:
        return "/".join([*(p.lower() for p in parts[:4]), *parts[4:]])
    if path.lower().startswith("/connections/"):
        return "/connections/" + "/".join(parts[2:])
    return path.lower()
