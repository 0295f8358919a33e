"""Graph's Outlook mail over a mailbox: mail folders, a message by id, and a folder's messages delta
(https://learn.microsoft.com/en-us/graph/api/message-delta, .../graph/delta-query-messages).

Messages delta takes ``$select`` (an unknown property: 400), ``$filter`` on ``receivedDateTime ge|gt`` only,
``$orderby=receivedDateTime desc`` only, ``$top`` and the custom ``changeType`` (created, updated, deleted), all
carried in the round's tokens; ``Prefer: odata.maxpagesize`` (answered with ``Preference-Applied``) and
``Prefer: IdType="ImmutableId"`` are read on every request. Deviations: ``$expand`` is refused; Graph's links name
the folder as ``mailFolders('{id}')``, the sandbox's keep the path the request used.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from providers.microsoft365.sandbox.delta import (
    Body,
    Key,
    Preferences,
    Round,
    Tokens,
    envelope,
    page_after,
    page_size,
    preference_applied,
    removed,
)
from providers.microsoft365.sandbox.errors import GraphError
from providers.microsoft365.sandbox.ids import change_key, well_formed
from providers.microsoft365.sandbox.mailbox import FOLDERS, ROOT, Content, Item, Mailbox, Person

Reply = tuple[Body, dict[str, str]]
METADATA = "https://graph.microsoft.com/v1.0/$metadata"
MESSAGE = "#microsoft.graph.message"
# A message's properties without $select (https://learn.microsoft.com/en-us/graph/api/resources/message), in
# Graph's order; internetMessageHeaders and uniqueBody only when selected.
DEFAULT_PROPERTIES = (
    "id", "createdDateTime", "lastModifiedDateTime", "changeKey", "categories", "receivedDateTime", "sentDateTime",
    "hasAttachments", "internetMessageId", "subject", "bodyPreview", "importance", "parentFolderId",
    "conversationId", "conversationIndex", "isDeliveryReceiptRequested", "isReadReceiptRequested", "isRead",
    "isDraft", "webLink", "inferenceClassification", "body", "sender", "from", "toRecipients", "ccRecipients",
    "bccRecipients", "replyTo", "flag",
)  # fmt: skip
SELECTABLE = {name.lower(): name for name in (*DEFAULT_PROPERTIES, "internetMessageHeaders", "uniqueBody")}
NOT_FOUND = GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
MALFORMED = GraphError(400, "ErrorInvalidIdMalformed", "Id is malformed.")
_FILTER = re.compile(r"^\s*receivedDateTime\s+(ge|gt)\s+(\S+)\s*$", re.IGNORECASE)
_ORDER = re.compile(r"^\s*receivedDateTime\s+desc\s*$", re.IGNORECASE)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def recipient(person: Person) -> Body:
    return {"emailAddress": {"name": person[0], "address": person[1]}}


def select_of(params: Mapping[str, str]) -> list[str] | None:
    """``$select``'s properties by Graph's spelling; an unknown one answers Graph's 400."""
    raw = params.get("$select")
    if raw is None:
        return None
    chosen = []
    for name in (part.strip() for part in raw.split(",") if part.strip()):
        if name.lower() not in SELECTABLE:
            raise GraphError(400, "RequestBroker--ParseUri", f"Could not find a property named '{name}' on type "
                             "'Microsoft.OutlookServices.Message'.")  # fmt: skip
        chosen.append(SELECTABLE[name.lower()])
    return chosen


def message(box: Mailbox, item: Item, *, immutable: bool, select: list[str] | None) -> Body:
    """The message resource as Graph answers it (``select``: those properties and the id only)."""
    content = box.content(item)
    message_id = box.ids.message(item.seq, item.moves, immutable=immutable)
    key = change_key("message", item.seq, item.version)
    full: Body = {
        "id": message_id, "createdDateTime": iso(item.created_ms), "lastModifiedDateTime": iso(item.modified_ms),
        "changeKey": key, "categories": list(item.categories), "receivedDateTime": iso(item.received_ms),
        "sentDateTime": None if content.is_draft else iso(content.sent_ms or item.received_ms - 2000),
        "hasAttachments": content.attachments > 0,
        "internetMessageId": content.message_id, "subject": content.subject,
        "bodyPreview": content.text.replace("\n", " ").strip()[:255], "importance": "normal",
        "parentFolderId": box.ids.folder(item.folder), "conversationId": box.ids.conversation(content.thread),
        "conversationIndex": _conversation_index(box, content), "isDeliveryReceiptRequested": False,
        "isReadReceiptRequested": False, "isRead": item.is_read, "isDraft": content.is_draft,
        "webLink": f"https://outlook.office365.com/owa/?ItemID={quote(message_id, safe='')}&exvsurl=1"
                   "&viewmodel=ReadMessageItem",
        "inferenceClassification": "focused", "body": _body(content),
        "sender": recipient(content.sender), "from": recipient(content.sender),
        "toRecipients": [recipient(p) for p in content.to], "ccRecipients": [recipient(p) for p in content.cc],
        "bccRecipients": [recipient(p) for p in content.bcc], "replyTo": [],
        "flag": {"flagStatus": "flagged" if item.flagged else "notFlagged"},
    }  # fmt: skip
    row: Body = {"@odata.etag": f'W/"{key}"'}
    if select is None:
        return row | full
    for name in ("id", *select):
        if name == "internetMessageHeaders":
            row[name] = _headers(content, item)
        elif name == "uniqueBody":
            row[name] = full["body"]
        else:
            row[name] = full[name]
    return row


def _body(content: Content) -> Body:
    if content.body is not None:
        return {"contentType": content.body[0], "content": content.body[1]}
    return {"contentType": "html", "content": _html(content.text)}


def _html(text: str) -> str:
    paragraphs = "".join(f"<p>{line}</p>" for line in text.split("\n\n"))
    return f'<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"></head><body>{paragraphs}</body></html>'  # noqa: E501


def _conversation_index(box: Mailbox, content: Content) -> str:
    """Outlook's thread index: a 22-byte header for the conversation, five bytes more per reply."""
    head = base64.urlsafe_b64decode(box.ids.conversation(content.thread))[-22:]
    return base64.b64encode(head + bytes(5) * content.position).decode()


def _headers(content: Content, item: Item) -> list[Body]:
    def address(person: Person) -> str:
        return f"{person[0]} <{person[1]}>"

    pairs = [
        ("Message-ID", content.message_id),
        ("From", address(content.sender)),
        ("To", ", ".join(address(p) for p in content.to)),
        ("Subject", content.subject),
        ("Date", datetime.fromtimestamp(item.received_ms / 1000, UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")),
    ]
    if content.cc:
        pairs.append(("Cc", ", ".join(address(p) for p in content.cc)))
    if content.references:
        pairs += [("In-Reply-To", content.references[-1]), ("References", " ".join(content.references))]
    kind = content.body[0] if content.body is not None else "html"
    pairs += [*content.headers, ("MIME-Version", "1.0"), ("Content-Type", f"text/{kind}; charset=utf-8")]
    return [{"name": name, "value": value} for name, value in pairs]  # fmt: skip


# --- folders --------------------------------------------------------------------------------------------------


def folder_of(box: Mailbox, name_or_id: str) -> str:
    """The well-known name a path segment means: a well-known name (any case) or a folder id."""
    lowered = name_or_id.lower()
    if lowered in FOLDERS:
        return lowered
    for name in FOLDERS:
        if box.ids.folder(name) == name_or_id:
            return name
    raise NOT_FOUND if well_formed(name_or_id) else MALFORMED


def mail_folder(box: Mailbox, name: str) -> Body:
    entries = box.listing(name)
    unread = sum(1 for _, seq in entries if not (box.item(seq) or box.seeded(seq)).is_read)
    return {"id": box.ids.folder(name), "displayName": FOLDERS[name], "parentFolderId": box.ids.folder(ROOT),
            "childFolderCount": 0, "unreadItemCount": unread, "totalItemCount": len(entries),
            "sizeInBytes": 4096 * len(entries), "isHidden": False}  # fmt: skip


def list_folders(box: Mailbox, user_id: str, params: Mapping[str, str], link_base: str) -> Body:
    """``GET /me/mailFolders``: ``$top`` (default 10) and ``$skip`` pages, the next link carrying ``$skip``."""
    try:
        top, skip = int(params.get("$top", "10")), int(params.get("$skip", "0"))
    except ValueError:
        raise GraphError(400, "BadRequest", "Invalid $top or $skip value.") from None
    names = list(FOLDERS)
    body: Body = {"@odata.context": f"{METADATA}#users('{user_id}')/mailFolders",
                  "value": [mail_folder(box, n) for n in names[skip : skip + max(top, 1)]]}  # fmt: skip
    if skip + top < len(names):
        body["@odata.nextLink"] = f"{link_base}?$top={top}&$skip={skip + top}"
    return body


def get_message(box: Mailbox, user_id: str, message_id: str, params: Mapping[str, str], prefs: Preferences) -> Body:
    """``GET /me/messages/{id}``: a REST id from before a move no longer finds the message (an immutable id does)."""
    found = box.ids.message_seq(message_id)
    if found is None:
        raise NOT_FOUND if well_formed(message_id) else MALFORMED
    seq, moves = found
    item = box.item(seq)
    if item is None or (moves is not None and moves != item.moves % (1 << 16)):
        raise NOT_FOUND
    context = f"{METADATA}#users('{user_id}')/messages/$entity"
    return {"@odata.context": context} | message(box, item, immutable=prefs.immutable_ids, select=select_of(params))


# --- delta ----------------------------------------------------------------------------------------------------


def delta_query(params: Mapping[str, str]) -> Body:
    """A round's options from its first request, refused as Graph refuses them."""
    for refused in ("$search", "$expand"):
        if refused in params:
            raise GraphError(400, "ErrorInvalidUrlQuery", f"The query parameter '{refused}' is not supported.")
    query: Body = {"select": select_of(params)}
    if "$filter" in params:
        found = _FILTER.match(params["$filter"])
        moment = _instant(found.group(2)) if found else None
        if found is None or moment is None:
            raise GraphError(400, "ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid nodes.")
        query["lo"], query["strict"] = moment, found.group(1).lower() == "gt"
    if "$orderby" in params and not _ORDER.match(params["$orderby"]):
        raise GraphError(400, "ErrorInvalidUrlQuery", "The only supported $orderby is 'receivedDateTime desc'.")
    if "$top" in params:
        if not params["$top"].isdigit() or int(params["$top"]) < 1:
            raise GraphError(400, "BadRequest", f"Invalid $top value '{params['$top']}'.")
        query["top"] = int(params["$top"])
    change_type = params.get("changeType")
    if change_type is not None and change_type not in ("created", "updated", "deleted"):
        raise GraphError(400, "ErrorInvalidUrlQuery", f"The value '{change_type}' of changeType is not supported.")
    query["change"] = change_type
    return query


def _instant(value: str) -> int | None:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() * 1000)


def messages_delta(
    box: Mailbox, tokens: Tokens, folder: str, params: Mapping[str, str], prefs: Preferences, link_base: str
) -> Reply:
    """One page of a folder's messages delta round."""
    query = {} if "$skiptoken" in params or "$deltatoken" in params else delta_query(params)
    done = tokens.round(params, f"{box.address}/messages/{folder}", box.epoch, box.sequence, query)
    size, select, immutable = page_size(prefs, done.query), done.query["select"], prefs.immutable_ids
    lo, strict = done.query.get("lo"), bool(done.query.get("strict"))
    order: list[tuple[Key, Any]]
    if done.since is None:
        order = list(box.received_since(folder, lo, strict))
    else:
        order = _changes(box, folder, done, lo, strict, immutable)
    chosen, more = page_after(order, done.cursor, size)
    rows: list[Body] = []
    for _, entry in chosen:
        if isinstance(entry, str):
            rows.append(removed(MESSAGE, entry))
        elif (item := box.item(entry)) is not None:
            rows.append({"@odata.type": MESSAGE} | message(box, item, immutable=immutable, select=select))
    body = envelope(tokens, done, rows, chosen[-1][0] if more else None, f"{METADATA}#Collection(message)", link_base)
    return body, preference_applied(prefs, size)


def _changes(
    box: Mailbox, folder: str, done: Round, lo: int | None, strict: bool, immutable: bool
) -> list[tuple[Key, Any]]:
    """A delta round's entries since ``done.since``: messages changed or arrived in the folder (their seq) and the
    ids of messages that left it, ordered by the change's sequence."""
    since, change = done.since or 0, done.query.get("change")
    entries: list[tuple[Key, Any]] = []
    if change != "deleted":
        for item in box.items.values():
            if item.folder != folder or not since < item.changed <= done.upto:
                continue
            if lo is not None and (item.received_ms < lo or (strict and item.received_ms == lo)):
                continue
            if change is None or (change == "created") == (item.born > since):
                entries.append(([item.changed, 0, item.seq], item.seq))
    if change in (None, "deleted"):
        for gone in box.departures:
            if gone.folder != folder or not since < gone.sequence <= done.upto:
                continue
            now = box.item(gone.seq)
            if now is not None and now.folder == folder and (immutable or now.moves == gone.moves):
                continue  # it came back under the same id: its current state is served instead
            entries.append(([gone.sequence, 1, gone.seq], box.ids.message(gone.seq, gone.moves, immutable=immutable)))
    return sorted(entries)
