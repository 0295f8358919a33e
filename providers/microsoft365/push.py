"""How the core pushes to Microsoft 365: an email sent from the connected mailbox (``message``), a meeting booked,
moved or cancelled on its calendar (``event``, in ``meetings``).

API docs: https://learn.microsoft.com/en-us/graph/api/user-post-messages, .../message-createreply,
.../message-send, .../user-list-messages.

- ``message`` create: Graph takes no idempotency key, so the Internet Message-ID is derived from the push's key
  (``pushes.message_id_for``) and set on the draft; every attempt first looks for it (``$filter=internetMessageId
  eq``): sent already -> that message; a draft an interrupted attempt left -> sent now; else a draft is made with
  every field in one call (``POST /me/messages``, or for a reply ``createReply`` on the answered message with the
  fields as its ``message``, so Graph threads it: conversation, ``In-Reply-To``, ``References``) and sent. The
  outcome is the message read back from Sent Items (same immutable id as the draft).
- Scopes: drafts need Mail.ReadWrite, sending Mail.Send (each endpoint's least privileged permission).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from providers.base import PushOutcome, PushRequest
from providers.errors import ProviderRejected
from providers.kit import pushes
from providers.kit.client import ApiClient
from vrtx_pipelines.records.canonical import OutgoingEmail, Participant

from .mappers import to_message
from .meetings import PROVIDER, push_event
from .source import message_row, message_select

SENT = "sentitems"
UNKNOWN_MESSAGE = frozenset({"ErrorItemNotFound", "ErrorInvalidIdMalformed"})  # what Graph answers a stray id


def _path(graph_id: str) -> str:
    return f"me/messages/{quote(graph_id, safe='')}"


def recipients(people: list[Participant]) -> list[dict[str, Any]]:
    return [{"emailAddress": {"address": p.address, **({"name": p.name} if p.name else {})}} for p in people]


def message_fields(email: OutgoingEmail, message_id: str) -> dict[str, Any]:
    """The draft's properties; a reply without a subject keeps the one Graph gives it ("RE: ...")."""
    html = email.body_html is not None
    fields: dict[str, Any] = {
        "toRecipients": recipients(email.to),
        "ccRecipients": recipients(email.cc),
        "bccRecipients": recipients(email.bcc),
        "body": {"contentType": "html" if html else "text", "content": email.body_html if html else email.body_text},
        "internetMessageId": message_id,
    }
    if email.subject or not email.reply_to:
        fields["subject"] = email.subject
    return fields


def _read_sent(client: ApiClient, graph_id: str) -> PushOutcome:
    found = client.get(_path(graph_id), params={"$select": message_select(client)})
    row = message_row(found, str(client.tenant_id or ""), SENT, client)
    sample = {"id": graph_id, "conversationId": found.get("conversationId"), "isDraft": found.get("isDraft")}
    return pushes.outcome(graph_id, to_message(row), row, sample)


def _already(client: ApiClient, message_id: str) -> dict[str, Any] | None:
    """The message an earlier attempt of this push made, draft or sent (an OData string doubles its quotes)."""
    quoted = message_id.replace("'", "''")
    params = {"$filter": f"internetMessageId eq '{quoted}'", "$select": "id,isDraft", "$top": "1"}
    found = client.get("me/messages", params=params).get("value") or []
    return dict(found[0]) if found else None


def _draft(client: ApiClient, request: PushRequest, email: OutgoingEmail, message_id: str) -> dict[str, Any]:
    fields = pushes.with_overrides(message_fields(email, message_id), request.overrides)
    if not email.reply_to:
        return client.write("POST", "me/messages", fields)
    answered = request.linked_id("messages", email.reply_to) or email.reply_to
    try:
        return client.write("POST", f"{_path(answered)}/createReply", {"message": fields})
    except ProviderRejected as exc:
        if exc.status == 404 or exc.provider_code in UNKNOWN_MESSAGE:
            raise ProviderRejected(
                f"The message replied to ({email.reply_to}) is not in the mailbox.", status=exc.status,
                provider_code=exc.provider_code,
            ) from exc  # fmt: skip
        raise


def _send(client: ApiClient, request: PushRequest) -> PushOutcome:
    email = OutgoingEmail.model_validate(request.payload)
    message_id = pushes.message_id_for(request.idempotency_key, str(client.tenant_id or ""))
    found = _already(client, message_id) or _draft(client, request, email, message_id)
    if found.get("isDraft", True):
        client.send("POST", f"{_path(str(found['id']))}/send")  # 202, no body; the draft moves to Sent Items
    return _read_sent(client, str(found["id"]))


PUSHES = pushes.mailbox_pushes(PROVIDER, _send, push_event)
