"""The edge of a sandbox app: a fresh request id on every answer (Xero-Correlation-Id, Request-Id, ...) that error
bodies can quote, and an optional rewrite of the path before routing (case-insensitive paths, for instance)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_STATE_KEY = "sandbox_request_id"


class RequestIds:
    """ASGI middleware: ``app.add_middleware(RequestIds, header="xero-correlation-id", rewrite_path=...)``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        header: str,
        rewrite_path: Callable[[str], str] | None = None,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.app, self.header, self.rewrite_path, self.new_id = app, header.lower().encode(), rewrite_path, new_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = self.new_id()
        if self.rewrite_path is not None:
            scope = {**scope, "path": self.rewrite_path(scope["path"])}
        scope.setdefault("state", {})[_STATE_KEY] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((self.header, request_id.encode()))
            await send(message)

        await self.app(scope, receive, send_with_id)


def request_id(request: Request) -> str:
    """The id the response to ``request`` carries ("" outside ``RequestIds``)."""
    return str(request.scope.get("state", {}).get(_STATE_KEY, ""))
