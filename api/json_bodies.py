"""JSON request bodies checked by the provider kit's strict parser before the framework parses them.

FastAPI parses with the standard library, which takes ``NaN``, a byte-order mark and any nesting (5,000 levels end
in a RecursionError). Every JSON body of the API is read here first, up to ``MAX_BYTES`` (413 otherwise), and one
the strict parser refuses is answered 400 ``invalid_json`` with the reason; webhook deliveries are answered ahead
of this (``WebhookDeliveries``) and parse their bodies with the same parser.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response
from providers.kit import strict_json

MAX_BYTES = strict_json.MAX_BYTES


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            media = bytes(value).split(b";", 1)[0].strip().lower()
            return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))
    return False


class StrictJSONBodies:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BYTES:
                answer = error_response(413, "payload_too_large", f"JSON bodies are limited to {MAX_BYTES} bytes")
                await answer(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body:
            try:
                strict_json.loads(body, max_bytes=MAX_BYTES)
            except strict_json.JSONRefused as exc:
                message_text = f"the body is not acceptable JSON: {exc.reason}"
                details = [{"field": "(body)", "message": exc.reason}]
                await error_response(400, "invalid_json", message_text, details)(scope, receive, send)
                return
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}], receive), send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` handing out the messages already read, then whatever the client sends next (a disconnect)."""
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed
