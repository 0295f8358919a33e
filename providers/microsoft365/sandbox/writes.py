"""Graph v1.0's Outlook mail and calendar write routes for the signed-in user (``/me``), each through the gate:
drafts, replies and sends (``drafts``), events booked, moved and cancelled (``bookings``), and the two reads a
writer needs (a message by its Internet message id, an event by id).

Permissions (least privileged per endpoint, from each endpoint's page): creating and editing drafts, createReply:
Mail.ReadWrite; send and sendMail: Mail.Send; events' writes: Calendars.ReadWrite; their reads also Calendars.Read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response

import providers.microsoft365.sandbox.bookings as bookings
import providers.microsoft365.sandbox.drafts as drafts
from providers.microsoft365.sandbox.delta import Body, Preferences
from providers.microsoft365.sandbox.identity import CALENDAR_SCOPES, MAIL_SCOPES
from providers.microsoft365.sandbox.mailbox import Mailbox
from providers.microsoft365.sandbox.routes import NO_MAILBOX, Read
from providers.microsoft365.sandbox.state import MicrosoftSandbox

# (status, body or None for an empty answer) of a write's work(user, decoded request body)
Answer = tuple[int, Body | None]
WriteWork = Callable[[str, Any], Answer]
Write = Callable[[Request, frozenset[str], WriteWork], Awaitable[Response]]
DRAFT_SCOPES = frozenset({"mail.readwrite"})
SEND_SCOPES = frozenset({"mail.send"})
CALENDAR_WRITE_SCOPES = frozenset({"calendars.readwrite"})


def register_write_routes(app: FastAPI, sandbox: MicrosoftSandbox, read: Read, write: Write) -> None:
    def route(method: str, path: str) -> Callable[[Callable[..., Awaitable[Response]]], Any]:
        def register(endpoint: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
            app.add_api_route(path, endpoint, methods=[method])
            return endpoint

        return register

    def prefs(request: Request) -> Preferences:
        return Preferences.of(request.headers.getlist("prefer"))

    def box(user: str) -> Mailbox:
        if user not in sandbox.mailboxes:
            raise NO_MAILBOX
        return sandbox.mailboxes[user]

    def user_id(user: str) -> str:
        return sandbox.users[user].id

    def now_ms() -> int:
        return int(sandbox.clock() * 1000)

    # https://learn.microsoft.com/en-us/graph/api/user-list-messages
    @route("GET", "/v1.0/me/messages")
    async def list_messages(request: Request) -> Response:
        def work(user: str) -> Body:
            return drafts.list_messages(box(user), user_id(user), request.query_params, prefs(request))

        return await read(request, MAIL_SCOPES, work, None)

    # https://learn.microsoft.com/en-us/graph/api/user-post-messages
    @route("POST", "/v1.0/me/messages")
    async def create_draft(request: Request) -> Response:
        def work(user: str, body: Any) -> Answer:
            return 201, drafts.create_draft(box(user), user_id(user), body, prefs(request), now_ms())

        return await write(request, DRAFT_SCOPES, work)

    # https://learn.microsoft.com/en-us/graph/api/message-update
    @route("PATCH", "/v1.0/me/messages/{message_id}")
    async def update_message(request: Request, message_id: str) -> Response:
        def work(user: str, body: Any) -> Answer:
            return 200, drafts.update(box(user), user_id(user), message_id, body, prefs(request), now_ms())

        return await write(request, DRAFT_SCOPES, work)

    # https://learn.microsoft.com/en-us/graph/api/message-createreply
    @route("POST", "/v1.0/me/messages/{message_id}/createReply")
    async def create_reply(request: Request, message_id: str) -> Response:
        def work(user: str, body: Any) -> Answer:
            return 201, drafts.create_reply(box(user), user_id(user), message_id, body, prefs(request), now_ms())

        return await write(request, DRAFT_SCOPES, work)

    # https://learn.microsoft.com/en-us/graph/api/message-send
    @route("POST", "/v1.0/me/messages/{message_id}/send")
    async def send(request: Request, message_id: str) -> Response:
        def work(user: str, body: Any) -> Answer:
            drafts.send(box(user), message_id, now_ms())
            return 202, None

        return await write(request, SEND_SCOPES, work)

    # https://learn.microsoft.com/en-us/graph/api/user-sendmail
    @route("POST", "/v1.0/me/sendMail")
    async def send_mail(request: Request) -> Response:
        def work(user: str, body: Any) -> Answer:
            drafts.send_mail(box(user), body, now_ms())
            return 202, None

        return await write(request, SEND_SCOPES, work)

    # https://learn.microsoft.com/en-us/graph/api/user-post-events
    @route("POST", "/v1.0/me/events")
    async def create_event(request: Request) -> Response:
        def work(user: str, body: Any) -> Answer:
            box(user)
            return 201, bookings.create(sandbox.calendars[user], user_id(user), body, now_ms())

        return await write(request, CALENDAR_WRITE_SCOPES, work)

    # https://learn.microsoft.com/en-us/graph/api/event-get
    @route("GET", "/v1.0/me/events/{event_id}")
    async def get_event(request: Request, event_id: str) -> Response:
        def work(user: str) -> Body:
            box(user)
            return bookings.get(sandbox.calendars[user], user_id(user), event_id)

        return await read(request, CALENDAR_SCOPES, work, None)

    # https://learn.microsoft.com/en-us/graph/api/event-update
    @route("PATCH", "/v1.0/me/events/{event_id}")
    async def update_event(request: Request, event_id: str) -> Response:
        def work(user: str, body: Any) -> Answer:
            box(user)
            return 200, bookings.update(sandbox.calendars[user], user_id(user), event_id, body, now_ms())

        return await write(request, CALENDAR_WRITE_SCOPES, work)

    # https://learn.microsoft.com/en-us/graph/api/event-cancel
    @route("POST", "/v1.0/me/events/{event_id}/cancel")
    async def cancel_event(request: Request, event_id: str) -> Response:
        def work(user: str, body: Any) -> Answer:
            box(user)
            bookings.cancel(sandbox.calendars[user], event_id, body, now_ms())
            return 202, None

        return await write(request, CALENDAR_WRITE_SCOPES, work)

    # https://learn.microsoft.com/en-us/graph/api/event-delete
    @route("DELETE", "/v1.0/me/events/{event_id}")
    async def delete_event(request: Request, event_id: str) -> Response:
        def work(user: str, body: Any) -> Answer:
            box(user)
            bookings.delete(sandbox.calendars[user], event_id, now_ms())
            return 204, None

        return await write(request, CALENDAR_WRITE_SCOPES, work)
