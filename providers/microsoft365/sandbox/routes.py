"""Graph v1.0's Outlook mail and calendar routes for the signed-in user (``/me``), each a read through the gate.

Graph's paths are case-insensitive and a function may be called as ``delta``, ``delta()`` (what the SDK sends) or
``microsoft.graph.delta``: the sandbox serves the spellings clients use, listed in ``_spellings``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

from providers.microsoft365.sandbox.calendar import calendar_view_delta
from providers.microsoft365.sandbox.delta import Body, Preferences
from providers.microsoft365.sandbox.errors import GraphError
from providers.microsoft365.sandbox.identity import CALENDAR_SCOPES, MAIL_SCOPES
from providers.microsoft365.sandbox.mail import folder_of, get_message, list_folders, mail_folder, messages_delta
from providers.microsoft365.sandbox.state import MicrosoftSandbox

Work = Callable[[str], Body | tuple[Body, dict[str, str]]]
Read = Callable[[Request, frozenset[str], Work, int | None], Awaitable[Response]]
# Who may read mail and calendars (https://learn.microsoft.com/en-us/graph/api/message-delta#permissions,
# .../event-delta#permissions). Mail.ReadBasic and Calendars.ReadBasic are not granted by this sandbox.
NO_MAILBOX = GraphError(404, "MailboxNotEnabledForRESTAPI", "The mailbox is either inactive, soft-deleted, or is "
                        "hosted on-premise.")  # fmt: skip


def _spellings(path: str) -> list[str]:
    forms = {path, path.replace("mailFolders", "mailfolders").replace("calendarView", "calendarview")}
    if path.endswith("/delta"):
        forms |= {f"{form}()" for form in forms} | {f"{form[:-5]}microsoft.graph.delta" for form in forms}
    return sorted(forms)


def register_graph_routes(app: FastAPI, sandbox: MicrosoftSandbox, read: Read) -> None:
    def get(path: str) -> Callable[[Callable[..., Awaitable[Response]]], Callable[..., Awaitable[Response]]]:
        def register(endpoint: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
            for form in _spellings(path):
                app.add_api_route(form, endpoint, methods=["GET"])
            return endpoint

        return register

    def preferences(request: Request) -> Preferences:
        return Preferences.of(request.headers.getlist("prefer"))

    def link_base(request: Request) -> str:
        """The request's URL without its query, on the origin it came in on: what next links start with."""
        return f"{request.url.scheme}://{request.url.netloc}{request.url.path}"

    def owner(user: str) -> str:
        if user not in sandbox.mailboxes:
            raise NO_MAILBOX
        return user

    # https://learn.microsoft.com/en-us/graph/api/user-list-mailfolders
    @get("/v1.0/me/mailFolders")
    async def mail_folders(request: Request) -> Response:
        def work(user: str) -> Body:
            box = sandbox.mailboxes[owner(user)]
            return list_folders(box, sandbox.users[user].id, request.query_params, link_base(request))

        return await read(request, MAIL_SCOPES, work, None)

    # https://learn.microsoft.com/en-us/graph/api/mailfolder-get
    @get("/v1.0/me/mailFolders/{folder_id}")
    async def one_folder(request: Request, folder_id: str) -> Response:
        def work(user: str) -> Body:
            box = sandbox.mailboxes[owner(user)]
            context = (
                f"https://graph.microsoft.com/v1.0/$metadata#users('{sandbox.users[user].id}')/mailFolders/$entity"
            )
            return {"@odata.context": context} | mail_folder(box, folder_of(box, folder_id))

        return await read(request, MAIL_SCOPES, work, None)

    # https://learn.microsoft.com/en-us/graph/api/message-delta
    @get("/v1.0/me/mailFolders/{folder_id}/messages/delta")
    async def folder_delta(request: Request, folder_id: str) -> Response:
        def work(user: str) -> tuple[Body, dict[str, str]]:
            box = sandbox.mailboxes[owner(user)]
            answer = messages_delta(box, sandbox.tokens, folder_of(box, folder_id), request.query_params,
                                    preferences(request), link_base(request))  # fmt: skip
            sandbox.stats.page(user, "messages")
            return answer

        return await read(request, MAIL_SCOPES, work, sandbox.tokens.page_of(request.query_params))

    # https://learn.microsoft.com/en-us/graph/api/message-get
    @get("/v1.0/me/messages/{message_id}")
    async def one_message(request: Request, message_id: str) -> Response:
        def work(user: str) -> Body:
            box = sandbox.mailboxes[owner(user)]
            return get_message(box, sandbox.users[user].id, message_id, request.query_params, preferences(request))

        return await read(request, MAIL_SCOPES, work, None)

    # https://learn.microsoft.com/en-us/graph/api/event-delta
    @get("/v1.0/me/calendarView/delta")
    async def events_delta(request: Request) -> Response:
        def work(user: str) -> tuple[Body, dict[str, str]]:
            calendar = sandbox.calendars[owner(user)]
            answer = calendar_view_delta(calendar, sandbox.tokens, request.query_params, preferences(request),
                                         link_base(request))  # fmt: skip
            sandbox.stats.page(user, "events")
            return answer

        return await read(request, CALENDAR_SCOPES, work, sandbox.tokens.page_of(request.query_params))
