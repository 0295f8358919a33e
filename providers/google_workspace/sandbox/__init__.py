"""A local stand-in for Google Workspace: Google OAuth 2.0, the Gmail API v1 and the Calendar API v3 on Google's
real paths under one origin (the platform maps accounts.google.com, oauth2.googleapis.com, gmail.googleapis.com
and www.googleapis.com onto it). The official ``google-api-python-client`` and ``google-auth`` work against it
unchanged (tests/providers/test_google_sdk.py).

    sandbox = demo_sandbox()                       # the demo user's mailbox and calendar
    sandbox.add_mailbox("big@example.com", messages=50_000)
    app = create_app(sandbox)                      # app.state.google_workspace: the sandbox; app.state.sandbox: knobs
    app.state.sandbox.rate_limit_next = 2          # the next two API calls get Google's 429

Wire facts: the shared reference's section 5 and the Gmail discovery document (``specs/``). Gmail meters quota
units per user and minute (each method's cost), Calendar queries per user and minute; errors are Google's JSON
error shape; a token reaches only its own user's mailbox (``me`` or the address), as without domain-wide
delegation. Deviations are noted in ``gmail`` and ``calendar``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

import providers.google_workspace.sandbox.calendar as calendar
import providers.google_workspace.sandbox.gmail as gmail
from providers.google_workspace.sandbox.errors import INSUFFICIENT_SCOPE, UNAUTHENTICATED, GoogleError
from providers.google_workspace.sandbox.identity import (
    CALENDAR_READ,
    CALENDAR_WRITE,
    GMAIL_READ,
    GMAIL_SEND,
    register_identity_routes,
)
from providers.google_workspace.sandbox.mailbox import Mailbox
from providers.google_workspace.sandbox.state import GoogleKnobs as GoogleKnobs
from providers.google_workspace.sandbox.state import GoogleSandbox as GoogleSandbox
from providers.google_workspace.sandbox.state import demo_sandbox as demo_sandbox
from providers.sandbox_kit.faults import knobs_of
from providers.sandbox_kit.gate import Answers, Caller, Gate, bearer_caller
from providers.sandbox_kit.metering import RateLimits, Refusal
from providers.sandbox_kit.wire import json_response

__all__ = ["GoogleKnobs", "GoogleSandbox", "create_app", "demo_sandbox"]
JSON = "application/json; charset=UTF-8"
MAX_BODY = 35 * 1024 * 1024  # Gmail's message size limit


def _error(exc: GoogleError, headers: dict[str, str] | None = None) -> Response:
    return json_response(exc.code, exc.body(), headers, JSON)


def _answers(knobs: Callable[[], GoogleKnobs]) -> Answers:
    def unauthorized(request: Request, insufficient: bool) -> Response:
        if insufficient:
            return _error(INSUFFICIENT_SCOPE, {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", '
                                               'error="insufficient_scope"'})  # fmt: skip
        challenge = 'Bearer realm="https://accounts.google.com/", error="invalid_token"'
        return _error(UNAUTHENTICATED, {"WWW-Authenticate": challenge})

    def rate_limited(request: Request, refusal: Refusal) -> Response:
        status = knobs().quota_status
        reason = refusal.problem if refusal.problem != "minute" else "rateLimitExceeded"
        message = "User-rate limit exceeded." if reason == "userRateLimitExceeded" else "Rate Limit Exceeded"
        error = GoogleError(status, message, reason, "usageLimits")
        return _error(error, {"Retry-After": str(refusal.retry_after_s)})

    def server_error(request: Request, status: int) -> Response:
        reason = "backendError" if status < 503 else "serviceUnavailable"
        return _error(GoogleError(status, "Backend Error" if status < 503 else "The service is currently "
                                  "unavailable.", reason))  # fmt: skip

    return Answers(
        unauthorized=unauthorized,
        forbidden=lambda request: _error(GoogleError(403, "Delegation denied for the requested user.", "forbidden")),
        rate_limited=rate_limited,
        server_error=server_error,
    )


def create_app(sandbox: GoogleSandbox | None = None, *, knobs: GoogleKnobs | None = None) -> FastAPI:
    """The sandbox ASGI app. Default sandbox: ``demo_sandbox()``."""
    sandbox = sandbox or demo_sandbox()
    app = FastAPI(title="Google Workspace sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.google_workspace, app.state.sandbox = sandbox, knobs or GoogleKnobs()

    def current() -> GoogleKnobs:
        return knobs_of(app, GoogleKnobs)

    gate = Gate.of(sandbox, authenticate=bearer_caller(sandbox.oauth.authenticate), answers=_answers(current))
    prepare = gate.preparer(current)

    register_identity_routes(app, sandbox.oauth, sandbox.lock, prepare=prepare, jwks=sandbox.jwks)

    @app.exception_handler(StarletteHTTPException)
    async def not_served(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:
            return _error(GoogleError(405, "Method Not Allowed", "httpMethodNotAllowed"))
        return _error(GoogleError(404, f"Method not found: {request.method} {request.url.path}", "notFound"))

    def user_of(request: Request, caller: Caller) -> str | None:
        wanted = str(request.path_params.get("user_id", "me")).lower()
        user = str(getattr(caller, "user", "")).lower()
        return user if wanted in ("me", user) and user in sandbox.tenants else None

    async def admitted(
        request: Request,
        *,
        scopes: frozenset[str],
        cost: int,
        limits: RateLimits,
        work: Callable[[str, Any], Any],
        write: bool = False,
        page: int | None = None,
    ) -> Response:
        knobs = current()
        gate.prepare(knobs, page=page)
        call = gate.admit(request, knobs, limits=limits, tenant_of=user_of, scopes=scopes, cost=cost)
        if isinstance(call, Response):
            return call
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return _error(GoogleError(413, "Request Entity Too Large", "uploadTooLarge"), call.headers)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return _error(GoogleError(400, "Invalid JSON payload received.", "parseError"), call.headers)
        user = call.tenant_id

        def locked() -> Any:
            with sandbox.lock:
                return work(user, body)

        with call:
            try:
                answer = await gate.run(request, call, knobs, locked, page=page, write=write)
            except GoogleError as exc:
                return _error(exc, call.headers)
        if isinstance(answer, Response):
            return answer
        if answer is None:
            return Response(status_code=204, headers=call.headers)
        return json_response(200, answer, call.headers, JSON)

    def page_number(request: Request) -> int:
        return 1 if not request.query_params.get("pageToken") else 2

    def box(user: str) -> Mailbox:
        return sandbox.tenants[user]

    def now_ms() -> int:
        return int(sandbox.clock() * 1000)

    # --- Gmail: https://gmail.googleapis.com/gmail/v1/users/{userId}/... --------------------------------------

    prefix = "/gmail/v1/users/{user_id}"

    async def gmail_read(request: Request, cost: str, work: Callable[[Mailbox], Any], paged: bool = False) -> Response:
        return await admitted(
            request, scopes=GMAIL_READ, cost=gmail.COSTS[cost], limits=current().gmail_limits(),
            work=lambda user, _body: work(box(user)), page=page_number(request) if paged else None,
        )  # fmt: skip

    @app.get(prefix + "/profile")
    async def profile(request: Request) -> Response:
        return await gmail_read(request, "profile", gmail.profile)

    @app.get(prefix + "/labels")
    async def labels(request: Request) -> Response:
        return await gmail_read(request, "labels", lambda _box: gmail.labels())

    @app.get(prefix + "/messages")
    async def list_messages(request: Request) -> Response:
        params, label_ids = dict(request.query_params), request.query_params.getlist("labelIds")
        return await gmail_read(request, "list", lambda b: gmail.list_messages(b, params, label_ids), paged=True)

    @app.get(prefix + "/messages/{message_id}")
    async def get_message(request: Request, message_id: str) -> Response:
        params, headers = dict(request.query_params), request.query_params.getlist("metadataHeaders")
        return await gmail_read(request, "get", lambda b: gmail.get_message(b, message_id, params, headers))

    @app.get(prefix + "/messages/{message_id}/attachments/{attachment_id}")
    async def get_attachment(request: Request, message_id: str, attachment_id: str) -> Response:
        return await gmail_read(request, "attachment", lambda b: gmail.get_attachment(b, message_id, attachment_id))

    @app.get(prefix + "/threads/{thread_id}")
    async def get_thread(request: Request, thread_id: str) -> Response:
        params = dict(request.query_params)
        return await gmail_read(request, "thread", lambda b: gmail.get_thread(b, thread_id, params))

    @app.get(prefix + "/history")
    async def history(request: Request) -> Response:
        params, types = dict(request.query_params), request.query_params.getlist("historyTypes")
        return await gmail_read(request, "history", lambda b: gmail.history(b, params, types), paged=True)

    @app.post(prefix + "/messages/send")
    async def send(request: Request) -> Response:
        return await admitted(
            request, scopes=GMAIL_SEND, cost=gmail.COSTS["send"], limits=current().gmail_limits(), write=True,
            work=lambda user, body: gmail.send(box(user), body, now_ms()),
        )  # fmt: skip

    @app.post(prefix + "/watch")
    async def watch(request: Request) -> Response:
        return await admitted(
            request, scopes=GMAIL_READ, cost=gmail.COSTS["watch"], limits=current().gmail_limits(),
            work=lambda user, body: gmail.watch(box(user), body, now_ms()),
        )  # fmt: skip

    @app.post(prefix + "/stop")
    async def stop(request: Request) -> Response:
        return await admitted(
            request, scopes=GMAIL_READ, cost=gmail.COSTS["stop"], limits=current().gmail_limits(),
            work=lambda user, _body: (gmail.stop(box(user)), None)[1],  # Gmail answers 204, no body
        )  # fmt: skip

    # --- Calendar: https://www.googleapis.com/calendar/v3/... -------------------------------------------------

    def calendar_of(user: str, calendar_id: str) -> calendar.Calendar:
        found = sandbox.calendars.get(user, {}).get(user if calendar_id in ("primary", user) else calendar_id)
        if found is None:
            raise GoogleError.not_found()
        return found

    async def calendar_call(
        request: Request, calendar_id: str, work: Callable[[calendar.Calendar, Any], Any], *, write: bool = False
    ) -> Response:
        return await admitted(
            request, scopes=CALENDAR_WRITE if write else CALENDAR_READ, cost=1,
            limits=current().calendar_limits(), write=write,
            work=lambda user, body: work(calendar_of(user, calendar_id), body),
            page=None if write else page_number(request),
        )  # fmt: skip

    @app.get("/calendar/v3/users/me/calendarList")
    async def calendar_list(request: Request) -> Response:
        return await admitted(
            request, scopes=CALENDAR_READ, cost=1, limits=current().calendar_limits(),
            work=lambda user, _body: calendar.calendar_list(sandbox.calendars.get(user, {}), user),
        )  # fmt: skip

    @app.get("/calendar/v3/calendars/{calendar_id}/events")
    async def list_events(request: Request, calendar_id: str) -> Response:
        params = dict(request.query_params)
        return await calendar_call(request, calendar_id, lambda cal, _body: calendar.list_events(cal, params))

    @app.post("/calendar/v3/calendars/{calendar_id}/events")
    async def insert_event(request: Request, calendar_id: str) -> Response:
        return await calendar_call(
            request, calendar_id, lambda cal, body: calendar.insert_event(cal, body, sandbox.clock()), write=True
        )

    @app.post("/calendar/v3/calendars/{calendar_id}/events/watch")
    async def watch_events(request: Request, calendar_id: str) -> Response:
        return await calendar_call(
            request, calendar_id, lambda cal, body: sandbox.channels.watch(cal, calendar_id, body, now_ms())
        )

    @app.post("/calendar/v3/channels/stop")
    async def stop_channel(request: Request) -> Response:
        def stop(user: str, body: Any) -> None:  # answered 204, no body
            sandbox.channels.stop(user, body)

        return await admitted(
            request, scopes=CALENDAR_READ, cost=1, limits=current().calendar_limits(), work=stop
        )  # fmt: skip

    @app.get("/calendar/v3/calendars/{calendar_id}/events/{event_id}")
    async def get_event(request: Request, calendar_id: str, event_id: str) -> Response:
        return await calendar_call(request, calendar_id, lambda cal, _body: calendar.get_event(cal, event_id))

    @app.api_route("/calendar/v3/calendars/{calendar_id}/events/{event_id}", methods=["PATCH", "PUT"])
    async def update_event(request: Request, calendar_id: str, event_id: str) -> Response:
        partial = request.method == "PATCH"
        return await calendar_call(
            request, calendar_id,
            lambda cal, body: calendar.update_event(cal, event_id, body, sandbox.clock(), partial=partial),
            write=True,
        )  # fmt: skip

    @app.delete("/calendar/v3/calendars/{calendar_id}/events/{event_id}")
    async def delete_event(request: Request, calendar_id: str, event_id: str) -> Response:
        return await calendar_call(
            request, calendar_id, lambda cal, _body: calendar.delete_event(cal, event_id, sandbox.clock()), write=True
        )

    return app
