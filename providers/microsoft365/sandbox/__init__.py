"""A local stand-in for Microsoft 365: the Microsoft identity platform v2.0 (login.microsoftonline.com) and
Microsoft Graph v1.0 (graph.microsoft.com) on their real paths under one origin (the platform maps both hosts onto
it). What connecting needs is served: authorize, consent and token (``identity``), and ``GET /v1.0/me``; and what
pulling mail and calendars needs (``routes``): mail folders, a folder's messages delta, a message, calendarView
delta, over each user's seeded mailbox and calendar (``mailbox``, ``calendar``; delta mechanics in ``delta``); and
what pushing needs (``writes``): drafts, replies and sends (``drafts``), events booked, moved and cancelled
(``bookings``), every change seen by the delta queries.
change notification subscriptions with their validation handshake, notifications and lifecycle notifications
(``subscriptions``, ``subscription_routes``).

    sandbox = demo_sandbox()                        # the demo organisation and its user's mailbox
    sandbox.add_user("ada@contoso.example", "Ada Lovelace", tenant_id="...")
    sandbox.add_mailbox("ada@contoso.example", messages=50_000, days=30)   # seeded lazily: free until read
    app = create_app(sandbox)                       # app.state.microsoft365: the sandbox; app.state.sandbox: knobs
    app.state.sandbox.admin_consent_required = "token"   # the token endpoint answers AADSTS65001

Graph errors are Graph's body (``{"error": {"code", "message", "innerError"}}``): 401 InvalidAuthenticationToken
for a missing, unknown or expired token, 403 for a token without the scope, 429 with ``Retry-After`` past Outlook's
per-mailbox limits (10,000 requests in 10 minutes, 4 in flight), 410 syncStateNotFound for a voided delta token.
The control API tests drive the mailboxes with is ``MicrosoftSandbox``'s (``count``, ``touch``, ``create``,
``deliver``, ``delete_message``, ``move_message``, ``delete_event``, ``expire_delta``; for subscriptions
``subscriptions``, ``deliveries``, ``lifecycle``, ``remove_subscription``, ``expire_subscription``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from fastapi import FastAPI, Request, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from providers.microsoft365.sandbox.batch import register_batch_route
from providers.microsoft365.sandbox.delta import Body
from providers.microsoft365.sandbox.errors import (
    INSUFFICIENT_PRIVILEGES,
    MAX_REQUEST,
    TOKEN_EMPTY,
    TOKEN_EXPIRED,
    TOKEN_INVALID,
    TOO_LARGE,
    UNREADABLE,
    GraphError,
)
from providers.microsoft365.sandbox.identity import graph_scope, register_identity_routes
from providers.microsoft365.sandbox.routes import Work, register_graph_routes
from providers.microsoft365.sandbox.state import MicrosoftKnobs as MicrosoftKnobs
from providers.microsoft365.sandbox.state import MicrosoftSandbox as MicrosoftSandbox
from providers.microsoft365.sandbox.state import demo_sandbox as demo_sandbox
from providers.microsoft365.sandbox.subscription_routes import Run, register_subscription_routes
from providers.microsoft365.sandbox.writes import Answer, WriteWork, register_write_routes
from providers.sandbox_kit.faults import knobs_of
from providers.sandbox_kit.gate import Answers, Call, Caller, Gate
from providers.sandbox_kit.metering import Refusal
from providers.sandbox_kit.oauth import AccessToken
from providers.sandbox_kit.wire import bearer_token, json_response

__all__ = ["MicrosoftKnobs", "MicrosoftSandbox", "create_app", "demo_sandbox"]
JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
CHALLENGE = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
    'client_id="00000003-0000-0000-c000-000000000000"'
)
# Who may read the signed-in user's profile (https://learn.microsoft.com/en-us/graph/api/user-get#permissions).
PROFILE_SCOPES = frozenset({"user.read"})


@dataclass(frozen=True)
class GraphCaller:
    """An access token's holder as Graph checks it: scopes by their short lower-case names."""

    client_id: str
    scopes: frozenset[str]
    user: str


def create_app(sandbox: MicrosoftSandbox | None = None, *, knobs: MicrosoftKnobs | None = None) -> FastAPI:
    """The sandbox ASGI app. Default sandbox: ``demo_sandbox()``."""
    sandbox = sandbox or demo_sandbox()
    app = FastAPI(title="Microsoft 365 sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.microsoft365, app.state.sandbox = sandbox, knobs or MicrosoftKnobs()

    def current() -> MicrosoftKnobs:
        return knobs_of(app, MicrosoftKnobs)

    sandbox.admin_consent = lambda: current().admin_consent_required

    def error(request: Request, exc: GraphError, headers: dict[str, str] | None = None) -> Response:
        body = exc.body(sandbox.clock(), request.headers.get("client-request-id"))
        return json_response(exc.status, body, headers, JSON)

    def unauthorized(request: Request, insufficient: bool) -> Response:
        if insufficient:
            return error(request, INSUFFICIENT_PRIVILEGES)
        token = bearer_token(request)
        found = TOKEN_EMPTY if not token else TOKEN_EXPIRED if sandbox.oauth.authenticate(token) == "expired" else None
        return error(request, found or TOKEN_INVALID, {"WWW-Authenticate": CHALLENGE})

    def rate_limited(request: Request, refusal: Refusal) -> Response:
        problem = "MailboxConcurrency" if refusal.problem == "concurrent" else refusal.problem
        message = f"Application is over its {problem} limit."
        throttled = GraphError(429, "ApplicationThrottled", message)
        return error(request, throttled, {"Retry-After": str(refusal.retry_after_s)})

    def server_error(request: Request, status: int) -> Response:
        code = {503: "ServiceUnavailable", 504: "GatewayTimeout"}.get(status, "InternalServerError")
        return error(request, GraphError(status, code, "The service is unavailable." if status == 503 else
                                         "An internal server error occurred."))  # fmt: skip

    def authenticate(request: Request) -> Caller | None:
        found = sandbox.oauth.authenticate(bearer_token(request))
        if not isinstance(found, AccessToken):
            return None
        return GraphCaller(found.client_id, frozenset(graph_scope(s) for s in found.scopes), found.user)

    def user_of(request: Request, caller: Caller) -> str | None:
        user = getattr(caller, "user", "")
        return user if user in sandbox.users else None

    gate = Gate.of(
        sandbox,
        authenticate=authenticate,
        answers=Answers(
            unauthorized=unauthorized,
            forbidden=lambda request: error(request, TOKEN_INVALID, {"WWW-Authenticate": CHALLENGE}),
            rate_limited=rate_limited,
            server_error=server_error,
            storm_problem="MailboxConcurrency",
        ),
    )
    prepare = gate.preparer(current)

    register_identity_routes(app, sandbox.oauth, sandbox.lock, prepare=prepare)

    @app.exception_handler(StarletteHTTPException)
    async def not_served(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:
            return error(request, GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed for "
                                             "the request target."))  # fmt: skip
        segment = request.url.path.removeprefix("/v1.0/").split("/")[0]
        return error(request, GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'."))

    def admitted(
        request: Request, scopes: frozenset[str], page: int | None = None
    ) -> tuple[MicrosoftKnobs, Call | Response]:
        """The knobs, and the call the gate admits for the mailbox's limits (or the answer refusing it)."""
        knobs = current()
        gate.prepare(knobs, page=page)
        return knobs, gate.admit(request, knobs, limits=knobs.mailbox_limits(), tenant_of=user_of, scopes=scopes)

    async def graph_read(request: Request, scopes: frozenset[str], work: Work, page: int | None = None) -> Response:
        """A read through the gate: ``work(user)`` under the sandbox's lock answers the body (and headers), or
        raises the ``GraphError`` answered instead; ``page``: the listing page asked for (1 for a first page)."""
        knobs, call = admitted(request, scopes, page)
        if isinstance(call, Response):
            return call
        user = call.tenant_id

        def locked() -> Body | tuple[Body, dict[str, str]]:
            with sandbox.lock:
                return work(user)

        with call:
            try:
                answer = await gate.run(request, call, knobs, locked, page=page)
            except GraphError as refused:
                return error(request, refused, call.headers)
        if isinstance(answer, Response):
            return answer
        body, extra = answer if isinstance(answer, tuple) else (answer, {})
        return json_response(200, body, {**call.headers, **extra}, JSON)

    # https://learn.microsoft.com/en-us/graph/api/user-get (the signed-in user)
    @app.get("/v1.0/me")
    async def me(request: Request) -> Response:
        return await graph_read(request, PROFILE_SCOPES, lambda user: sandbox.users[user].me())

    async def graph_write(request: Request, scopes: frozenset[str], work: WriteWork) -> Response:
        """A write through the gate: its JSON body (at most Graph's 4 MB) decoded, ``work(user, body)`` under the
        sandbox's lock answering (status, body or None); the fault knobs' failed and lost writes apply."""
        knobs, call = admitted(request, scopes)
        if isinstance(call, Response):
            return call
        with call:
            declared = request.headers.get("content-length", "0")
            too_large = declared.isdigit() and int(declared) > MAX_REQUEST  # refused before it is read
            raw = b"" if too_large else await request.body()
            if too_large or len(raw) > MAX_REQUEST:
                return error(request, TOO_LARGE, call.headers)
            try:
                body = json.loads(raw) if raw.strip() else None
            except ValueError:
                return error(request, UNREADABLE, call.headers)

            def locked() -> Answer:
                with sandbox.lock:
                    return work(call.tenant_id, body)

            try:
                answer = await gate.run(request, call, knobs, locked, write=True)
            except GraphError as refused:
                return error(request, refused, call.headers)
        if isinstance(answer, Response):
            return answer
        if (lost := gate.lost(request, call, knobs)) is not None:
            return lost
        status, payload = answer
        if payload is None:
            return Response(status_code=status, headers=call.headers)
        return json_response(status, payload, call.headers, JSON)

    async def graph_call(request: Request, scopes: frozenset[str], run: Run) -> Response:
        """A call through the gate that answers for itself, ``run(user, caller)`` -> (status, body or None): the
        subscription routes, whose work waits on a subscriber's handshake and so cannot hold the sandbox's lock."""
        knobs, call = admitted(request, scopes)
        if isinstance(call, Response):
            return call
        with call:
            await knobs.delay()
            try:
                status, body = await run(call.tenant_id, call.caller)
            except GraphError as refused:
                return error(request, refused, call.headers)
        if body is None:
            return Response(status_code=status, headers=call.headers)
        return json_response(status, body, call.headers, JSON)

    register_graph_routes(app, sandbox, graph_read)
    register_write_routes(app, sandbox, graph_read, graph_write)
    register_subscription_routes(app, sandbox, graph_call)
    register_batch_route(app, error, JSON)
    return app
