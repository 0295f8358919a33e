"""Graph's Outlook mail writes over a mailbox: drafts made (``POST /me/messages``, ``createReply``), edited
(``PATCH``) and sent (``POST .../send``), a message sent at once (``sendMail``), and messages found by their
Internet message id (``GET /me/messages?$filter=internetMessageId eq '...'``).

https://learn.microsoft.com/en-us/graph/api/user-post-messages, .../message-update, .../message-send,
.../message-createreply, .../user-sendmail, .../user-list-messages; the message resource's writable properties:
https://learn.microsoft.com/en-us/graph/api/resources/message. A draft lands in Drafts; sending moves it to Sent
Items under the same immutable id, ``isDraft`` false and ``sentDateTime`` set. ``internetMessageId`` may be set
while the message is a draft; custom ``internetMessageHeaders`` only when it is created, and only ``x-`` names.
Recipients are checked when a message is sent, as Exchange resolves them then.

Deviations: sent mail is not delivered to other sandbox mailboxes; ``$filter`` on the message list takes
``internetMessageId eq`` only; the list is not paged past ``$top``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from providers.microsoft365.sandbox.calendar import preview
from providers.microsoft365.sandbox.delta import Body, Preferences
from providers.microsoft365.sandbox.errors import GraphError
from providers.microsoft365.sandbox.ids import well_formed
from providers.microsoft365.sandbox.mail import MALFORMED, METADATA, NOT_FOUND, message, select_of
from providers.microsoft365.sandbox.mailbox import FOLDERS, Content, Item, Mailbox, Person

# Properties a client may write on a message; any other answers 400 (OData annotations aside).
WRITABLE = frozenset({
    "subject", "body", "toRecipients", "ccRecipients", "bccRecipients", "internetMessageId",
    "internetMessageHeaders", "importance", "replyTo", "categories", "isRead",
})  # fmt: skip
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MESSAGE_ID = re.compile(r"^<[^<>\s@]+@[^<>\s@]+>$")
_FILTER = re.compile(r"^\s*internetMessageId\s+eq\s+'((?:[^']|'')*)'\s*$", re.IGNORECASE)
NOT_A_DRAFT = GraphError(400, "ErrorInvalidOperation", "The message can't be sent because it isn't a draft.")
SENT_ALREADY = GraphError(400, "ErrorInvalidPropertyUpdateSentMessage", "Update operation is not supported on sent "
                          "messages for the given properties.")  # fmt: skip


def _bad(message_text: str) -> GraphError:
    return GraphError(400, "ErrorInvalidRequest", message_text)


def parameter(body: Any, name: str) -> Any:
    """An action's parameter: Graph reads their names without case (the SDK sends ``Message``, ``Comment``)."""
    if not isinstance(body, Mapping):
        return None
    return next((value for key, value in body.items() if key.lower() == name.lower()), None)


def fields_of(body: Any, key: str | None = None) -> dict[str, Any]:
    """The message object of a request body (``key``: the action parameter holding it), unknown names refused."""
    found = parameter(body, key) if key else body
    if found is None and key:
        return {}
    if not isinstance(found, Mapping):
        raise GraphError(400, "RequestBodyRead", "Cannot read the request body: a JSON object is expected.")
    for name in found:
        if not name.startswith("@odata.") and name not in WRITABLE:
            raise GraphError(400, "RequestBodyRead", f"The property '{name}' does not exist on type "
                             "'Microsoft.OutlookServices.Message'. Make sure to only use property names that are "
                             "defined by the type or mark the type as open type.")  # fmt: skip
    return dict(found)


def _people(values: Any, name: str) -> tuple[Person, ...]:
    if not isinstance(values, list):
        raise _bad(f"The value of '{name}' must be a collection of recipients.")
    people = []
    for value in values:
        address = value.get("emailAddress") if isinstance(value, Mapping) else None
        if not isinstance(address, Mapping) or not isinstance(address.get("address"), str):
            raise _bad(f"Each of '{name}' needs an emailAddress with an address.")
        people.append((str(address.get("name") or address["address"]), address["address"].strip()))
    return tuple(people)


def compose(fields: Mapping[str, Any], base: Content, *, creating: bool) -> Content:
    """``base`` with the written ``fields`` applied, each checked as Graph checks it."""
    changes: dict[str, Any] = {}
    if "subject" in fields:
        changes["subject"] = str(fields["subject"] or "")
    if "body" in fields:
        body = fields["body"] if isinstance(fields["body"], Mapping) else {}
        kind = str(body.get("contentType") or "text").lower()
        if kind not in ("text", "html") or not isinstance(body.get("content", ""), str):
            raise _bad("The body's contentType must be text or html, its content a string.")
        content = str(body.get("content") or "")
        changes["body"], changes["text"] = (kind, content), preview(content) if kind == "html" else content
    for name, attribute in (("toRecipients", "to"), ("ccRecipients", "cc"), ("bccRecipients", "bcc")):
        if name in fields:
            changes[attribute] = _people(fields[name], name)
    if "internetMessageId" in fields:
        value = fields["internetMessageId"]
        if not isinstance(value, str) or not _MESSAGE_ID.match(value):
            raise _bad("The internetMessageId must be an RFC 2822 message id: <local@domain>.")
        changes["message_id"] = value
    if "internetMessageHeaders" in fields:
        if not creating:
            raise _bad("Internet message headers can only be set when the message is created.")
        changes["headers"] = _headers(fields["internetMessageHeaders"])
    return replace(base, **changes)


def _headers(values: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(values, list):
        raise _bad("internetMessageHeaders must be a collection of name and value pairs.")
    pairs = []
    for value in values:
        name = value.get("name") if isinstance(value, Mapping) else None
        if not isinstance(name, str) or not name.lower().startswith("x-"):
            raise GraphError(400, "InvalidInternetMessageHeader", f"The internet message header name '{name}' "
                             "should start with 'x-' or 'X-'.")  # fmt: skip
        pairs.append((name, str(value.get("value") or "")))
    return tuple(pairs)


def _new(box: Mailbox, seq: int) -> Content:
    return Content("", "", (box.owner, box.address), (), (), 0, 0, box.message_id(seq), (), 0, True)


def _answer(box: Mailbox, user_id: str, item: Item, prefs: Preferences) -> Body:
    context = f"{METADATA}#users('{user_id}')/messages/$entity"
    return {"@odata.context": context} | message(box, item, immutable=prefs.immutable_ids, select=None)


def create_draft(box: Mailbox, user_id: str, body: Any, prefs: Preferences, now_ms: int) -> Body:
    """``POST /me/messages``: a draft in Drafts."""
    fields = fields_of(body)
    content = compose(fields, _new(box, box.next_seq), creating=True)
    return _answer(box, user_id, box.deliver(content, "drafts", now_ms), prefs)


def find(box: Mailbox, message_id: str) -> Item:
    """The message a path's id names (an immutable id, or a REST id from before no move)."""
    found = box.ids.message_seq(message_id)
    if found is None:
        raise NOT_FOUND if well_formed(message_id) else MALFORMED
    item = box.item(found[0])
    if item is None or (found[1] is not None and found[1] != item.moves % (1 << 16)):
        raise NOT_FOUND
    return item


def update(box: Mailbox, user_id: str, message_id: str, body: Any, prefs: Preferences, now_ms: int) -> Body:
    """``PATCH /me/messages/{id}``: a draft's content; of a sent or received message only ``isRead``."""
    item, fields = find(box, message_id), fields_of(body)
    content = box.content(item)
    written = {name for name in fields if not name.startswith("@odata.")}
    if not content.is_draft and written - {"isRead"}:
        raise SENT_ALREADY
    if "isRead" in fields:
        item = box.update(item.seq, now_ms, is_read=bool(fields["isRead"]))
    if content.is_draft:
        item = box.revise(item.seq, now_ms, compose(fields, content, creating=False))
    return _answer(box, user_id, item, prefs)


def create_reply(box: Mailbox, user_id: str, message_id: str, body: Any, prefs: Preferences, now_ms: int) -> Body:
    """``POST /me/messages/{id}/createReply``: a draft answering the message's sender (its replyTo, else its
    from) in its conversation, ``In-Reply-To``/``References`` naming it; ``comment`` or ``message`` written."""
    original = box.content(find(box, message_id))
    fields = fields_of(body, "message")
    comment = parameter(body, "comment")
    if comment is not None and "body" in fields:
        raise _bad("Specify either a comment or the body property of the message parameter, not both.")
    subject = original.subject if original.subject.lower().startswith("re:") else f"RE: {original.subject}"
    quoted = f"{comment or ''}\n\nFrom: {original.sender[0]}\nSubject: {original.subject}\n\n{original.text}"
    to = (original.sender,) if original.sender[1].lower() != box.address else original.to
    draft = replace(
        _new(box, box.next_seq), subject=subject, text=quoted.strip(), to=to, thread=original.thread,
        position=original.position + 1, references=(*original.references, original.message_id),
    )  # fmt: skip
    return _answer(box, user_id, box.deliver(compose(fields, draft, creating=True), "drafts", now_ms), prefs)


def _check_recipients(content: Content) -> None:
    people = (*content.to, *content.cc, *content.bcc)
    if not people:
        raise GraphError(400, "ErrorInvalidRecipients", "At least one recipient is not valid., A message can't be "
                         "sent because it contains no recipients.")  # fmt: skip
    for _, address in people:
        if not _ADDRESS.match(address):
            raise GraphError(400, "ErrorInvalidRecipients", f"At least one recipient is not valid., Recipient "
                             f"'{address}' is not resolved. All recipients must be resolved before a message can be "
                             "submitted.")  # fmt: skip


def send(box: Mailbox, message_id: str, now_ms: int) -> None:
    """``POST /me/messages/{id}/send``: the draft moves to Sent Items, sent now."""
    item = find(box, message_id)
    content = box.content(item)
    if not content.is_draft:
        raise NOT_A_DRAFT
    _check_recipients(content)
    box.revise(item.seq, now_ms, replace(content, is_draft=False, sent_ms=now_ms), folder="sentitems")


def send_mail(box: Mailbox, body: Any, now_ms: int) -> None:
    """``POST /me/sendMail``: ``{"message": {...}, "saveToSentItems": true}`` sent at once."""
    fields = fields_of(body, "message")
    if not fields:
        raise _bad("The 'message' parameter is required.")
    content = replace(compose(fields, _new(box, box.next_seq), creating=True), is_draft=False, sent_ms=now_ms)
    _check_recipients(content)
    save = parameter(body, "saveToSentItems")
    save = True if save is None else save
    if save not in (True, False, "true", "false"):
        raise _bad("saveToSentItems must be a boolean.")
    if save in (True, "true"):
        box.deliver(content, "sentitems", now_ms)


def by_internet_id(box: Mailbox, wanted: str) -> list[Item]:
    """The messages whose Internet message id is ``wanted``: written or changed ones, then a seeded one."""
    found = [item for item in box.items.values() if box.content(item).message_id == wanted]
    seeded = re.match(rf"^<(\d+)\.{box.seed}\.", wanted)
    if seeded and int(seeded.group(1)) <= box.size and int(seeded.group(1)) not in box.items:
        item = box.item(int(seeded.group(1)))
        if item is not None and box.content(item).message_id == wanted:
            found.append(item)
    return found


def list_messages(box: Mailbox, user_id: str, params: Mapping[str, str], prefs: Preferences) -> Body:
    """``GET /me/messages``: every folder's messages newest first, or those ``$filter`` names by
    ``internetMessageId eq '...'``; ``$select`` and ``$top`` (default 10)."""
    raw_top = params.get("$top", "10")
    if not raw_top.isdigit() or int(raw_top) < 1:
        raise GraphError(400, "BadRequest", f"Invalid $top value '{raw_top}'.")
    select = select_of(params)
    if "$filter" in params:
        matched = _FILTER.match(params["$filter"])
        if matched is None:
            raise GraphError(400, "ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid nodes.")
        items = by_internet_id(box, matched.group(1).replace("''", "'"))
    else:
        entries = sorted(entry for folder in FOLDERS for entry in box.listing(folder))
        items = [item for _, seq in entries[: int(raw_top)] if (item := box.item(seq)) is not None]
    rows = [message(box, item, immutable=prefs.immutable_ids, select=select) for item in items[: int(raw_top)]]
    return {"@odata.context": f"{METADATA}#users('{user_id}')/messages", "value": rows}
