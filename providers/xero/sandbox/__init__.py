"""A local stand-in for Xero: identity (OAuth 2.0), ``/connections`` and the Accounting API 2.0 (reads, writes), on
Xero's real paths under one origin (the platform maps login.xero.com, identity.xero.com and api.xero.com onto it).

The official ``xero-python`` SDK works against it unchanged and its responses validate against Xero's OpenAPI
spec (tests/providers/test_xero_sdk.py, test_xero_sandbox.py). Wire details follow the shared reference
(``provider-apis.md`` section 1) and ``xero-accounting.yaml``/``xero-identity.yaml``; deviations are noted where
they are made. Data is rendered on demand from the seed (``records``), so organisations of any size are cheap.

    sandbox = XeroSandbox(seed=42)
    tenant_id = sandbox.add_organisation("Acme", invoices=100_000)
    app = create_app(sandbox)                # app.state.xero is the sandbox, app.state.sandbox the knobs
    app.state.sandbox.rate_limit_next = 2    # the next two Accounting API calls get Xero's 429

Where Xero's behaviour had to be chosen or guessed (each is also noted at the code that does it):
- Errors: 401 is the reference's lower-case ``{"title","status","detail","instance"}``; 403/429/5xx/501 use the
  PascalCase problem shape seen from Xero since 2023 (429/5xx bodies are guesses: status and headers are the
  contract); 404 is Xero's plain-text "The resource you're looking for cannot be found" (Xero-OpenAPI#163); a bad
  ``where``/``order`` is ``{"ErrorNumber": 16, "Type": "QueryParseException", "Message"}`` as Xero sends it.
- Paging, ``where``/``order`` and lists without ``page``: ``reads``. OAuth and connections (per app and user, as at
  Xero): ``identity``.
- A missing scope is 401 ``AuthorizationUnsuccessful``; ``Accept`` without JSON (e.g. application/xml) is 406, while
  ``*/*`` or no Accept get JSON (Xero would default to XML there).
- Writes (``writes``): contacts, invoices and payments, counted against the same limits as reads, with
  ``Idempotency-Key`` replay; other writes answer 501. Every change, by the API or a test helper, is sent to the
  webhook subscribers (``webhooks``): ``sandbox.subscribe_webhooks(url, key)``.
- Organisations are NZ-flavoured (GST 15%, NZD, the spec's examples), whatever their name. Seeded history spans
  2021-2025; changes are stamped max(clock, 2025-01-01, last change) so they always sort after it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

import providers.xero.sandbox.reads as reads
import providers.xero.sandbox.writes as writes
from providers.sandbox_kit.edge import RequestIds, request_id
from providers.sandbox_kit.faults import knobs_of
from providers.sandbox_kit.gate import Answers, Call, Caller, Gate, bearer_caller, json_only
from providers.sandbox_kit.idempotency import fingerprint
from providers.sandbox_kit.metering import Refusal
from providers.sandbox_kit.oauth import AccessToken
from providers.sandbox_kit.wire import json_response
from providers.xero.sandbox.identity import register_identity_routes
from providers.xero.sandbox.state import XeroSandbox as XeroSandbox
from providers.xero.sandbox.state import XeroSandboxKnobs as XeroSandboxKnobs
from providers.xero.sandbox_credentials import DEMO_CLIENT_ID as DEMO_CLIENT_ID
from providers.xero.sandbox_credentials import DEMO_CLIENT_SECRET as DEMO_CLIENT_SECRET
from providers.xero.sandbox_credentials import DEMO_ORGANISATION as DEMO_ORGANISATION
from providers.xero.sandbox_credentials import DEMO_USER_EMAIL as DEMO_USER_EMAIL

_JSON = "application/json; charset=utf-8"
_NOT_IMPLEMENTED = "This sandbox does not implement that write."
_SERVER_ERROR = (
    "An error occurred in Xero. Check the API Status page http://status.developer.xero.com for current service status."
)
# Reference "Rate limits": what is left of each quota, on every response.
_RATE_HEADERS = {
    "day": "X-DayLimit-Remaining",
    "minute": "X-MinLimit-Remaining",
    "appminute": "X-AppMinLimit-Remaining",
}


def create_app(sandbox: XeroSandbox | None = None, *, knobs: XeroSandboxKnobs | None = None) -> FastAPI:
    """The sandbox ASGI app. Default sandbox: one "Demo Company (Global)" of default size, the demo app."""
    if sandbox is None:
        sandbox = XeroSandbox()
        sandbox.add_organisation(DEMO_ORGANISATION)
    app = FastAPI(title="Xero sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.xero, app.state.sandbox = sandbox, knobs or XeroSandboxKnobs()
    # Xero's paths are case-insensitive (xero-python asks for /Connections, others /connections).
    app.add_middleware(RequestIds, header="xero-correlation-id", rewrite_path=_route_path)
    gate = Gate.of(sandbox, authenticate=bearer_caller(sandbox.oauth.authenticate), answers=_ANSWERS)
    prepare = gate.preparer(lambda: knobs_of(app, XeroSandboxKnobs))

    register_identity_routes(app, sandbox.oauth, sandbox.lock, prepare=prepare, unauthorized=_unauthorized)

    def tenant_of(request: Request, caller: Caller) -> str | None:
        # Missing, unknown or not connected: 403 (reference "Tenant selection").
        assert isinstance(caller, AccessToken)
        tenant_id = request.headers.get("xero-tenant-id", "").strip().lower()
        return tenant_id if tenant_id in sandbox.oauth.tenants_of(caller.client_id, caller.user) else None

    @app.exception_handler(StarletteHTTPException)
    async def not_served(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405 and request.url.path.startswith("/api.xro/"):
            return _problem_response(request, 501, "NotImplemented", _NOT_IMPLEMENTED)
        if exc.status_code == 405:
            return Response("Method Not Allowed", 405, media_type="text/plain")
        return Response(reads.NOT_FOUND_TEXT, exc.status_code, media_type="text/plain")

    async def accounting(request: Request, resource: str, record_id: str | None = None) -> Response:
        """One Accounting API call: a read (GET) or a write (PUT creates, POST creates or updates)."""
        current, write = knobs_of(app, XeroSandboxKnobs), request.method != "GET"
        declared = None if record_id is not None and resource == "organisation" else reads.RESOURCES.get(resource)
        listing = not write and record_id is None and declared is not None and declared.entity != "organisation"
        page = reads.page_of(resource, request.query_params) if not write and record_id is None and declared else None
        gate.prepare(current, page=page)
        if write and resource not in writes.WRITABLE:
            return _problem_response(request, 501, "NotImplemented", _NOT_IMPLEMENTED)
        if write:
            scopes: frozenset[str] | None = writes.WRITABLE[resource][3]
        else:
            scopes = declared.scopes if declared is not None else None
        call = gate.admit(
            request, current, limits=current.limits(), tenant_of=tenant_of, scopes=scopes, check=_JSON_ONLY
        )
        if isinstance(call, Response):
            return call
        org = sandbox.tenants[call.tenant_id]
        with call:
            if write:
                key = request.headers.get("idempotency-key")
                if key is not None and not sandbox.idempotency.valid_key(key):
                    detail = f"Idempotency-Key must be 1 to {sandbox.idempotency.max_key} characters"  # guess
                    return _problem_response(request, 400, "Bad Request", detail, call.headers)
                body = await request.body()
                answer = await gate.run(
                    request, call, current, lambda: _write(sandbox, call, request, body), write=True
                )
            elif declared is None:  # an endpoint the sandbox does not serve (yet): Xero's 404, counted like any call
                return Response(reads.NOT_FOUND_TEXT, 404, headers=call.headers, media_type="text/plain")
            else:
                answer = await gate.run(request, call, current, lambda: _read(sandbox, call, request), page=page)
        if isinstance(answer, Response):
            return answer
        if answer.status == 200 and write and (lost := gate.lost(request, call, current)) is not None:
            return lost
        if answer.status == 200 and listing and declared is not None:
            with sandbox.lock:
                sandbox.stats.page(org.tenant_id, declared.entity)
        if isinstance(answer.body, str):
            return Response(answer.body, answer.status, headers=call.headers, media_type="text/plain")
        return json_response(answer.status, answer.body, call.headers, _JSON)

    app.add_api_route("/api.xro/2.0/{resource}", accounting, methods=["GET", "PUT", "POST"])
    app.add_api_route("/api.xro/2.0/{resource}/{record_id}", accounting, methods=["GET", "POST"])
    return app


def _read(sandbox: XeroSandbox, call: Call, request: Request) -> reads.Answer:
    resource, record_id = request.path_params["resource"], request.path_params.get("record_id")
    with sandbox.lock:
        name, now_ms = sandbox.app_name(call.caller.client_id), int(sandbox.clock() * 1000)
        org = sandbox.tenants[call.tenant_id]
        return reads.serve(org, resource, record_id, request.query_params, request.headers, name, now_ms)


def _write(sandbox: XeroSandbox, call: Call, request: Request, body: bytes) -> reads.Answer:
    resource, record_id = request.path_params["resource"], request.path_params.get("record_id")
    key = request.headers.get("idempotency-key")
    # One lock around check, write and record: the same key sent twice at once still writes once.
    with sandbox.lock:
        now, org = sandbox.clock(), sandbox.tenants[call.tenant_id]
        envelope = reads.envelope(sandbox.app_name(call.caller.client_id), int(now * 1000))
        return sandbox.idempotency.run(
            None if key is None else (call.caller.client_id, org.tenant_id, key),
            fingerprint(request.method, request.url.path, request.url.query, body),
            now,
            lambda: writes.write(org, resource, record_id, body, request.query_params, envelope),
            mismatch=writes.key_reused,
        )


def _unauthorized(request: Request, insufficient_scope: bool = False) -> Response:
    """Reference "Errors": 401, ``WWW-Authenticate: Bearer error=...`` and a lower-case problem body."""
    detail = "AuthorizationUnsuccessful" if insufficient_scope else "AuthenticationUnsuccessful"
    error = "insufficient_scope" if insufficient_scope else "invalid_token"
    body = {"title": "Unauthorized", "status": 401, "detail": detail, "instance": request_id(request)}
    return json_response(401, body, {"WWW-Authenticate": f'Bearer error="{error}"'}, _JSON)


def _problem_response(
    request: Request, status: int, title: str, detail: str, headers: dict[str, str] | None = None
) -> Response:
    """Xero's problem-details body, PascalCase with ``Type: null`` and ``Extensions`` (as in xero-python#116)."""
    body: dict[str, Any] = {"Type": None, "Title": title, "Status": status, "Detail": detail}
    return json_response(status, {**body, "Instance": request_id(request), "Extensions": {}}, headers, _JSON)


def _rate_limited(request: Request, refusal: Refusal) -> Response:
    # Reference "Rate limits": 429 with Retry-After and X-Rate-Limit-Problem. The body is a guess in Xero's
    # problem shape: the documented contract is the status and the headers.
    detail = f"You've exceeded the per {refusal.problem} rate limit"
    headers = {"Retry-After": str(refusal.retry_after_s), "X-Rate-Limit-Problem": refusal.problem}
    return _problem_response(request, 429, "Too Many Requests", detail, headers)


# Xero would answer XML (or a PDF) to other Accepts; the sandbox speaks JSON only and says so.
_JSON_ONLY = json_only(lambda request: Response("This sandbox answers JSON only: send Accept: application/json", 406))
_ANSWERS = Answers(
    unauthorized=_unauthorized,
    # The PascalCase problem shape Xero answers today (XeroAPI/xero-python#116, XeroAPI/xero-node#432).
    forbidden=lambda request: _problem_response(request, 403, "Forbidden", "AuthenticationUnsuccessful"),
    rate_limited=_rate_limited,
    server_error=lambda request, status: _problem_response(request, status, "An error occurred", _SERVER_ERROR),
    rate_headers=lambda remaining: {_RATE_HEADERS[name]: str(left) for name, left in remaining.items()},
    storm_problem="minute",
)


def _route_path(path: str) -> str:
    # Lower-case the fixed segments; keep record IDs/numbers as sent (they are matched case-insensitively later).
    parts = path.split("/")
    if path.lower().startswith("/api.xro/2.0/") and len(parts) > 3:
        return "/".join([*(p.lower() for p in parts[:4]), *parts[4:]])
    if path.lower().startswith("/connections/"):
        return "/connections/" + "/".join(parts[2:])
    return path.lower()
