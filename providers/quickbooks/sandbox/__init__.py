"""A local stand-in for QuickBooks Online: Intuit's OAuth 2.0 and the Accounting API v3 (``/v3/company/{realmId}/
...``: query, cdc, reads, writes, companyinfo) on Intuit's real paths under one origin (the platform maps
appcenter.intuit.com, oauth.platform.intuit.com, developer.api.intuit.com, developer.intuit.com and
quickbooks.api.intuit.com onto it). The official ``python-quickbooks`` with ``intuit-oauth`` works against it
unchanged (tests/providers/test_quickbooks_sdk.py).

    sandbox = QuickBooksSandbox(seed=42)
    realm = sandbox.add_company("Acme", invoices=100_000)
    app = create_app(sandbox)                # app.state.quickbooks is the sandbox, app.state.sandbox the knobs
    app.state.sandbox.rate_limit_next = 2    # the next two API calls get QuickBooks' 429 (Fault 003001)

Wire details follow the shared reference (``provider-apis.md`` section 2); where QuickBooks' behaviour had to be
chosen or guessed it is noted where it is done. Every call needs ``minorversion`` 75 or later (a 400 Fault
otherwise: the words are a guess); answers carry an ``intuit_tid`` header; 500 calls a minute per realm and 10 in
flight, then 429; a token reaches only the company it was granted (403, Fault 3100, for another realm).
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

import providers.quickbooks.sandbox.answers as answers
import providers.quickbooks.sandbox.query as query
import providers.quickbooks.sandbox.writes as writes
from providers.quickbooks.sandbox.answers import Answer, Fault
from providers.quickbooks.sandbox.company import TABLES, Company
from providers.quickbooks.sandbox.identity import ACCOUNTING, register_identity_routes
from providers.quickbooks.sandbox.records import answer_time
from providers.quickbooks.sandbox.state import QuickBooksKnobs as QuickBooksKnobs
from providers.quickbooks.sandbox.state import QuickBooksSandbox as QuickBooksSandbox
from providers.quickbooks.sandbox_credentials import DEMO_CLIENT_ID as DEMO_CLIENT_ID
from providers.quickbooks.sandbox_credentials import DEMO_CLIENT_SECRET as DEMO_CLIENT_SECRET
from providers.quickbooks.sandbox_credentials import DEMO_COMPANY as DEMO_COMPANY
from providers.quickbooks.sandbox_credentials import DEMO_USER_EMAIL as DEMO_USER_EMAIL
from providers.sandbox_kit.edge import RequestIds
from providers.sandbox_kit.faults import knobs_of
from providers.sandbox_kit.gate import Answers, Call, Caller, Gate, bearer_caller
from providers.sandbox_kit.idempotency import fingerprint
from providers.sandbox_kit.wire import bearer_token, json_response

MINIMUM_MINOR_VERSION = 75
READABLE = {"customer", "item", "invoice", "payment", "account", "taxcode", "taxrate"}
_PATH_TABLES = {name.lower(): table for name, table in TABLES.items()}


def create_app(sandbox: QuickBooksSandbox | None = None, *, knobs: QuickBooksKnobs | None = None) -> FastAPI:
    """The sandbox ASGI app. Default sandbox: one "Sandbox Company_US_1" of default size, the demo app."""
    if sandbox is None:
        sandbox = QuickBooksSandbox()
        sandbox.add_company(DEMO_COMPANY)
    app = FastAPI(title="QuickBooks Online sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.quickbooks, app.state.sandbox = sandbox, knobs or QuickBooksKnobs()
    app.add_middleware(RequestIds, header="intuit_tid")

    def now_ms() -> int:
        return int(sandbox.clock() * 1000)

    gate = Gate.of(
        sandbox,
        authenticate=bearer_caller(sandbox.oauth.authenticate),
        answers=Answers(
            unauthorized=lambda request, scope: answers.unauthorized(request, now_ms(), scope),
            forbidden=lambda request: answers.forbidden(now_ms()),
            rate_limited=lambda request, refusal: answers.throttled(now_ms(), refusal),
            server_error=lambda request, status: answers.server_error(now_ms(), status),
            storm_problem="minute",
        ),
    )
    prepare = gate.preparer(lambda: knobs_of(app, QuickBooksKnobs))

    register_identity_routes(
        app, sandbox.oauth, sandbox.lock, prepare=prepare, unauthorized=lambda r: answers.unauthorized(r, now_ms())
    )

    def tenant_of(request: Request, caller: Caller) -> str | None:
        realm = request.path_params["realm"]
        return realm if sandbox.oauth.reaches(bearer_token(request), realm) else None

    def minor_version(request: Request) -> Response | None:
        raw = request.query_params.get("minorversion", "")
        if raw.isdigit() and int(raw) >= MINIMUM_MINOR_VERSION:
            return None
        detail = f"minorversion {raw or '(none)'} is not supported: send minorversion={MINIMUM_MINOR_VERSION} or later"
        return answers.fault_response(Fault("2010", "Invalid minor version", detail), now_ms())  # words: a guess

    @app.exception_handler(StarletteHTTPException)
    async def not_served(request: Request, exc: StarletteHTTPException) -> Response:
        fault = Fault("500", "Unsupported Operation", f"{request.method} {request.url.path} is not supported.")
        return answers.fault_response(fault, now_ms())

    async def api(request: Request, realm: str, path: str) -> Response:
        current = knobs_of(app, QuickBooksKnobs)
        gate.prepare(current)
        parts = [part for part in path.split("/") if part]
        write = request.method == "POST" and parts[:1] != ["query"]
        call = gate.admit(
            request,
            current,
            limits=current.limits(),
            tenant_of=tenant_of,
            scopes=frozenset({ACCOUNTING}),
            check=minor_version,
        )
        if isinstance(call, Response):
            return call
        body = await request.body()
        with call:
            if current.take_fault_in_ok():  # Intuit answers some faults with HTTP 200
                fault = Fault(
                    current.fault_in_ok_code,
                    "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                    "",
                    kind="AuthenticationFault",
                )
                return json_response(200, fault.body(now_ms()), call.headers, answers.JSON)
            work = _work(sandbox, call, request, parts, body)
            page = _page_of(request, parts, body) if not write else None
            answer = await gate.run(request, call, current, work, page=page, write=write)
        if isinstance(answer, Response):
            return answer
        if answer.status == 200 and write and (lost := gate.lost(request, call, current)) is not None:
            return lost
        return json_response(answer.status, answer.body, call.headers, answers.JSON)

    app.add_api_route("/v3/company/{realm}/{path:path}", api, methods=["GET", "POST"])
    return app


def _work(
    sandbox: QuickBooksSandbox, call: Call, request: Request, parts: list[str], body: bytes
) -> Callable[[], Answer]:
    """The call's work, run in a worker thread under the sandbox's lock; a Fault becomes its answer."""

    def run() -> Answer:
        with sandbox.lock:
            now = int(sandbox.clock() * 1000)
            company = sandbox.tenants[call.tenant_id]
            try:
                return _serve(sandbox, call, company, request, parts, body, now)
            except Fault as fault:
                return fault.answer(now)

    return run


def _serve(
    sandbox: QuickBooksSandbox,
    call: Call,
    company: Company,
    request: Request,
    parts: list[str],
    body: bytes,
    now: int,
) -> Answer:
    params = request.query_params
    head = parts[0].lower() if parts else ""
    if head == "query" and len(parts) == 1:
        statement = params.get("query") if request.method == "GET" else body.decode(errors="replace")
        answer, table, _page = query.query(company, statement or "", now)
        if table is not None and answer.status == 200:
            sandbox.stats.page(company.realm_id, table)
        return answer
    if head == "cdc" and len(parts) == 1 and request.method == "GET":
        return query.cdc(company, params, now)
    if head == "companyinfo" and len(parts) == 2 and request.method == "GET":
        if parts[1] != company.realm_id:
            raise answers.not_found("Id")
        return Answer(200, {"CompanyInfo": company.company_info(), "time": answer_time(now)})
    table = _PATH_TABLES.get(head)
    if table is None or head not in READABLE:
        raise Fault("500", "Unsupported Operation", f"{request.method} {request.url.path} is not supported.")
    if request.method == "GET" and len(parts) == 2:
        return query.read(company, table, parts[1], now)
    if request.method != "POST" or len(parts) != 1 or head not in writes.WRITABLE:
        raise Fault("500", "Unsupported Operation", f"{request.method} {request.url.path} is not supported.")
    key = params.get("requestid")
    if key and not sandbox.idempotency.valid_key(key):  # [mem] Intuit's requestid is at most 50 characters
        raise Fault("2010", "Request has invalid or unsupported property", "requestid is at most 50 characters")
    # One lock around check, write and record: the same requestid sent twice at once still writes once.
    return sandbox.idempotency.run(
        None if not key else (call.caller.client_id, company.realm_id, key),
        fingerprint(request.method, request.url.path, _without(request.url.query, "requestid"), body),
        now / 1000,
        lambda: _written(company, table, body, params, now),
        mismatch=writes.request_reused,
    )


def _written(company: Company, table: str, body: bytes, params: object, now: int) -> Answer:
    try:
        return writes.write(company, table, body, params, now)  # type: ignore[arg-type]
    except Fault as fault:  # refused before anything was stored
        return fault.answer(now)


def _page_of(request: Request, parts: list[str], body: bytes) -> int | None:
    """The page of a query listing (for the fault knobs), from its STARTPOSITION and MAXRESULTS."""
    if parts[:1] != ["query"]:
        return None
    statement = request.query_params.get("query") if request.method == "GET" else body.decode(errors="replace")
    upper = (statement or "").upper().split()
    try:
        start = int(upper[upper.index("STARTPOSITION") + 1]) if "STARTPOSITION" in upper else 1
        size = int(upper[upper.index("MAXRESULTS") + 1]) if "MAXRESULTS" in upper else query.DEFAULT_RESULTS
    except (ValueError, IndexError):
        return None
    return (start - 1) // max(size, 1) + 1


def _without(query_string: str, name: str) -> str:
    return "&".join(part for part in query_string.split("&") if part.split("=", 1)[0] != name)
