"""Graph v1.0's subscription routes (https://learn.microsoft.com/en-us/graph/api/resources/subscription): create (201,
after the validation handshakes), get, list, renew (PATCH), delete (204) and reauthorize (204), each through the gate.
The gate opens them to any Outlook read scope; the resource's own (Mail.Read for messages, Calendars.Read for
events) is checked against the subscription, as Graph does for creating and managing one."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from providers.microsoft365.sandbox.identity import CALENDAR_SCOPES, MAIL_SCOPES
from providers.microsoft365.sandbox.state import MicrosoftSandbox
from providers.microsoft365.sandbox.subscriptions import (
    FORBIDDEN,
    UNREADABLE,
    GraphSubscription,
)
from providers.sandbox_kit.gate import Caller

Answer = tuple[int, dict[str, Any] | None]  # (status, JSON body; None: no body)
Run = Callable[[str, Caller], Awaitable[Answer]]
Call = Callable[[Request, frozenset[str], Run], Awaitable[Response]]
CONTEXT = "https://graph.microsoft.com/v1.0/$metadata#subscriptions"


async def _body(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"null")
    except ValueError:
        raise UNREADABLE from None


def register_subscription_routes(app: FastAPI, sandbox: MicrosoftSandbox, call: Call) -> None:
    service = sandbox.notifications

    def locked(work: Callable[[], Any]) -> Awaitable[Any]:
        """``work`` under the sandbox's lock, in a worker thread (a long read elsewhere must not stall the loop)."""

        def run() -> Any:
            with sandbox.lock:
                return work()

        return run_in_threadpool(run)

    def yours(user: str, caller: Caller, subscription_id: str) -> GraphSubscription:
        found = service.find(caller.client_id, user, subscription_id)
        if not caller.scopes & (MAIL_SCOPES if found.target.kind == "messages" else CALENDAR_SCOPES):
            raise FORBIDDEN
        return found

    # https://learn.microsoft.com/en-us/graph/api/subscription-post-subscriptions
    @app.post("/v1.0/subscriptions")
    async def create(request: Request) -> Response:
        immutable = any('idtype="immutableid"' in p.lower() for p in request.headers.getlist("prefer"))

        async def run(user: str, caller: Caller) -> Answer:
            body = await _body(request)
            owner, box = sandbox.users[user], sandbox.mailboxes.get(user)
            draft = await locked(lambda: service.draft(owner, user, box, caller.client_id, caller.scopes, body,
                                                       immutable))  # fmt: skip
            for url in filter(None, (draft.notification_url, draft.lifecycle_url)):
                await service.validate(url)  # outside the lock: it waits on the subscriber
            created = await locked(lambda: service.add(draft))
            return 201, {"@odata.context": f"{CONTEXT}/$entity"} | created.body()

        return await call(request, MAIL_SCOPES | CALENDAR_SCOPES, run)

    # https://learn.microsoft.com/en-us/graph/api/subscription-list
    @app.get("/v1.0/subscriptions")
    async def list_subscriptions(request: Request) -> Response:
        async def run(user: str, caller: Caller) -> Answer:
            mine = await locked(lambda: service.mine(caller.client_id, user))
            return 200, {"@odata.context": CONTEXT, "value": [s.body() for s in mine]}

        return await call(request, MAIL_SCOPES | CALENDAR_SCOPES, run)

    # https://learn.microsoft.com/en-us/graph/api/subscription-get
    @app.get("/v1.0/subscriptions/{subscription_id}")
    async def get_subscription(request: Request, subscription_id: str) -> Response:
        async def run(user: str, caller: Caller) -> Answer:
            found = await locked(lambda: yours(user, caller, subscription_id))
            return 200, {"@odata.context": f"{CONTEXT}/$entity"} | found.body()

        return await call(request, MAIL_SCOPES | CALENDAR_SCOPES, run)

    # https://learn.microsoft.com/en-us/graph/api/subscription-update
    @app.patch("/v1.0/subscriptions/{subscription_id}")
    async def renew(request: Request, subscription_id: str) -> Response:
        async def run(user: str, caller: Caller) -> Answer:
            body = await _body(request)

            def work() -> dict[str, Any]:
                found = yours(user, caller, subscription_id)
                service.renew(found, body)
                return found.body()

            return 200, {"@odata.context": f"{CONTEXT}/$entity"} | await locked(work)

        return await call(request, MAIL_SCOPES | CALENDAR_SCOPES, run)

    # https://learn.microsoft.com/en-us/graph/api/subscription-delete
    @app.delete("/v1.0/subscriptions/{subscription_id}")
    async def delete(request: Request, subscription_id: str) -> Response:
        async def run(user: str, caller: Caller) -> Answer:
            await locked(lambda: service.delete(yours(user, caller, subscription_id)))
            return 204, None

        return await call(request, MAIL_SCOPES | CALENDAR_SCOPES, run)

    # https://learn.microsoft.com/en-us/graph/api/subscription-reauthorize (no body; 204)
    @app.post("/v1.0/subscriptions/{subscription_id}/reauthorize")
    async def reauthorize(request: Request, subscription_id: str) -> Response:
        async def run(user: str, caller: Caller) -> Answer:
            def work() -> None:
                yours(user, caller, subscription_id).reauthorization_required = False

            await locked(work)
            return 204, None

        return await call(request, MAIL_SCOPES | CALENDAR_SCOPES, run)
