"""Gmail API v1 answers (https://developers.google.com/gmail/api/reference/rest) over a ``Mailbox``: messages list
with the search operators the platform and mail clients use, get in every format, send, history, labels,
profile, watch and stop. Each function returns (status, JSON body); the app adds the wire.

Search (``q``): ``after:``/``before:`` (epoch seconds or yyyy/mm/dd), ``in:``/``label:``, ``from:``/``to:``,
``rfc822msgid:``, ``has:attachment``; other words match the subject. Deviation: no other operators.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from providers.google_workspace.sandbox.errors import GoogleError
from providers.google_workspace.sandbox.mailbox import SYSTEM_LABELS, Change, Mailbox, Message, Watch, addresses, raw

Body = dict[str, Any]
MAX_RESULTS = 500
WATCH_S = 7 * 86_400
# Quota units per method (https://developers.google.com/gmail/api/reference/quota).
COSTS = {"list": 5, "get": 5, "history": 2, "profile": 1, "send": 100, "labels": 1, "watch": 100, "stop": 50,
         "thread": 10, "modify": 5, "delete": 10, "attachment": 5}  # fmt: skip
_FORMATS = ("full", "metadata", "minimal", "raw")


def page_size(params: Mapping[str, str]) -> int:
    raw_size = params.get("maxResults", "100")
    if not raw_size.isdigit() or int(raw_size) < 1:
        raise GoogleError(400, f"Invalid value '{raw_size}'. Values must be within the range: [1, 500]", "invalid")
    return min(int(raw_size), MAX_RESULTS)


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(base64.urlsafe_b64decode(token.encode() + b"==").decode())
    except (ValueError, binascii.Error):
        raise GoogleError(400, "Invalid pageToken", "invalidArgument") from None


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode().rstrip("=")


def _instant_ms(value: str) -> int:
    if value.isdigit():
        return int(value) * 1000
    try:
        return int(datetime.strptime(value, "%Y/%m/%d").replace(tzinfo=UTC).timestamp() * 1000)
    except ValueError:
        raise GoogleError(400, f"Invalid search query: {value}", "invalidArgument") from None


def _predicate(query: str, label_ids: Sequence[str], include_spam_trash: bool) -> tuple[Any, bool]:
    """The search as a predicate on messages, and whether it reads their content (headers, attachments)."""
    after = before = None
    labels = {label.upper() for label in label_ids}
    senders: list[str] = []
    recipients: list[str] = []
    ids: list[str] = []
    attachment = False
    words: list[str] = []
    for term in re.findall(r'\S+:"[^"]*"|\S+', query):
        name, _, value = term.partition(":")
        value = value.strip('"')
        if name == "after" and value:
            after = _instant_ms(value)
        elif name == "before" and value:
            before = _instant_ms(value)
        elif name in ("in", "label") and value:
            labels.add(value.upper())
        elif name == "from" and value:
            senders.append(value.lower())
        elif name == "to" and value:
            recipients.append(value.lower())
        elif name == "rfc822msgid" and value:
            ids.append(value.strip("<>"))
        elif term == "has:attachment":
            attachment = True
        else:
            words.append(term.lower())

    def keep(message: Message) -> bool:
        if after is not None and message.internal_ms <= after:
            return False
        if before is not None and message.internal_ms >= before:
            return False
        if not include_spam_trash and message.labels & {"SPAM", "TRASH"} and not labels & {"SPAM", "TRASH"}:
            return False
        if labels and not labels <= message.labels:
            return False
        if not (senders or recipients or ids or attachment or words):
            return True
        mail = message.parsed()
        if senders and not any(s in a for s in senders for a in addresses(mail["From"])):
            return False
        if recipients and not any(r in a for r in recipients for a in addresses(mail["To"]) + addresses(mail["Cc"])):
            return False
        if ids and str(mail.get("Message-ID", "")).strip("<> ") not in ids:
            return False
        if attachment and not any(True for _ in mail.iter_attachments()):
            return False
        subject = str(mail.get("Subject", "")).lower()
        return all(word in subject for word in words)

    return keep, bool(senders or recipients or ids or attachment or words)


def list_messages(box: Mailbox, params: Mapping[str, str], label_ids: Sequence[str]) -> Body:
    size = page_size(params)
    query = params.get("q", "")
    spam_trash = params.get("includeSpamTrash", "false").lower() == "true"
    keep, content = _predicate(query, label_ids, spam_trash)
    ids = box.listing(("messages", query, tuple(sorted(label_ids)), spam_trash), keep, content=content)
    start = _offset(params.get("pageToken"))
    page = ids[start : start + size]
    body: Body = {"resultSizeEstimate": len(ids)}
    if page:
        body["messages"] = [{"id": i, "threadId": _thread(box, i)} for i in page]
    if start + size < len(ids):
        body["nextPageToken"] = _token(start + size)
    return body


def _thread(box: Mailbox, message_id: str) -> str:
    message = box.get(message_id)
    return message.thread_id if message is not None else message_id


def _headers(mail: EmailMessage) -> list[dict[str, str]]:
    return [{"name": name, "value": str(value)} for name, value in mail.items()]


def _part(part: EmailMessage, part_id: str, message_id: str, with_bodies: bool) -> Body:
    body: Body = {"size": 0}
    children = list(part.iter_parts()) if part.is_multipart() else []
    if not children:
        content = part.get_payload(decode=True)
        data = content if isinstance(content, bytes) else b""
        body["size"] = len(data)
        if part.get_filename():
            body["attachmentId"] = _attachment_id(message_id, part_id)
        elif with_bodies:
            body["data"] = base64.urlsafe_b64encode(data).decode()
    out: Body = {
        "partId": part_id,
        "mimeType": part.get_content_type(),
        "filename": part.get_filename() or "",
        "headers": _headers(part),
        "body": body,
    }
    if children:
        prefix = f"{part_id}." if part_id else ""
        out["parts"] = [_part(c, f"{prefix}{n}", message_id, with_bodies) for n, c in enumerate(children)]  # type: ignore[arg-type]
    return out


def _attachment_id(message_id: str, part_id: str) -> str:
    return "ANGjdJ" + hashlib.sha256(f"{message_id}/{part_id}".encode()).hexdigest()[:40]


def _snippet(mail: EmailMessage) -> str:
    text = mail.get_body(("plain",))
    content = text.get_content() if text is not None else ""
    return " ".join(str(content).split())[:200]


def message_resource(message: Message, fmt: str, metadata_headers: Sequence[str]) -> Body:
    if fmt not in _FORMATS:
        raise GoogleError(400, f"Invalid value at 'format' ({fmt})", "invalidArgument")
    mail = message.parsed()
    body: Body = {
        "id": message.id,
        "threadId": message.thread_id,
        "labelIds": sorted(message.labels),
        "snippet": _snippet(mail),
        "historyId": str(message.history_id),
        "internalDate": str(message.internal_ms),
        "sizeEstimate": len(message.mime),
    }
    if fmt == "raw":
        body["raw"] = raw(message)
    elif fmt == "metadata":
        wanted = {name.lower() for name in metadata_headers}
        headers = [h for h in _headers(mail) if not wanted or h["name"].lower() in wanted]
        body["payload"] = {"mimeType": mail.get_content_type(), "headers": headers}
    elif fmt == "full":
        body["payload"] = _part(mail, "", message.id, with_bodies=True)
    return body


def get_message(box: Mailbox, message_id: str, params: Mapping[str, str], metadata_headers: Sequence[str]) -> Body:
    message = box.get(message_id)
    if message is None:
        raise GoogleError.not_found()
    return message_resource(message, params.get("format", "full"), metadata_headers)


def get_attachment(box: Mailbox, message_id: str, attachment_id: str) -> Body:
    message = box.get(message_id)
    if message is None:
        raise GoogleError.not_found()
    for n, part in enumerate(message.parsed().iter_attachments()):
        for part_id in (str(n + 1), f"{n + 1}"):
            if _attachment_id(message_id, part_id) == attachment_id:
                data = part.get_payload(decode=True)
                data = data if isinstance(data, bytes) else b""
                return {"size": len(data), "data": base64.urlsafe_b64encode(data).decode()}
    raise GoogleError.not_found()


def get_thread(box: Mailbox, thread_id: str, params: Mapping[str, str]) -> Body:
    ids = box.listing(("thread", thread_id), lambda m: m.thread_id == thread_id, content=False)
    if not ids:
        raise GoogleError.not_found()
    fmt = params.get("format", "full")
    messages = [message_resource(m, fmt, ()) for i in reversed(ids) if (m := box.get(i)) is not None]
    return {"id": thread_id, "historyId": str(box.history_id), "messages": messages}


def send(box: Mailbox, body: Any, now_ms: int) -> Body:
    if not isinstance(body, dict) or not isinstance(body.get("raw"), str) or not body["raw"]:
        raise GoogleError(400, "'raw' RFC822 payload message string or uploading message via /upload/* URL "
                          "required", "invalidArgument")  # fmt: skip
    try:
        mime = base64.urlsafe_b64decode(body["raw"].encode() + b"==")
    except (ValueError, binascii.Error):
        raise GoogleError(400, "Invalid value for ByteString", "invalidArgument") from None
    mail = message_from_bytes(mime, policy=policy.default)
    assert isinstance(mail, EmailMessage)
    recipients = addresses(mail["To"]) + addresses(mail["Cc"]) + addresses(mail["Bcc"])
    if not recipients:
        raise GoogleError(400, "Recipient address required", "invalidArgument")
    # Gmail sends as the authenticated user whatever From says, keeping the display name; Bcc never travels.
    del mail["Bcc"]
    if not mail["Message-ID"]:
        mail["Message-ID"] = make_msgid(domain="mail.gmail.com")
    if not mail["Date"]:
        mail["Date"] = datetime.fromtimestamp(now_ms / 1000, UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
    from_name = addresses(mail["From"])
    if not from_name or from_name[0] != box.address.lower():
        del mail["From"]
        mail["From"] = box.address
    thread_id = body.get("threadId")
    if isinstance(thread_id, str) and thread_id:
        if not box.listing(("thread", thread_id), lambda m: m.thread_id == thread_id, content=False):
            raise GoogleError.not_found()
    else:
        refs = str(mail.get("References", "")).split() + str(mail.get("In-Reply-To", "")).split()
        thread_id = box.thread_of_reply(list(reversed(refs))) if refs else None
    message = box.add(bytes(mail), {"SENT"}, now_ms, thread_id)
    return {"id": message.id, "threadId": message.thread_id, "labelIds": ["SENT"]}


def history(box: Mailbox, params: Mapping[str, str], history_types: Sequence[str]) -> Body:
    start_raw = params.get("startHistoryId", "")
    if not start_raw.isdigit():
        raise (
            GoogleError(400, "Invalid startHistoryId", "invalidArgument")
            if start_raw
            else GoogleError(400, "Required parameter: startHistoryId", "required")
        )
    start = int(start_raw)
    if start < box.history_floor or start > box.history_id:
        raise GoogleError.not_found()
    size = page_size(params)
    label = params.get("labelId")
    kinds = set(history_types) or {"messageAdded", "messageDeleted", "labelAdded", "labelRemoved"}
    changes = [c for c in box.history if c.history_id > start and c.kind in kinds and _has_label(c, label)]
    offset = _offset(params.get("pageToken"))
    page = changes[offset : offset + size]
    out: Body = {"historyId": str(box.history_id)}
    records = []
    for change in page:
        ref = {"id": change.message_id, "threadId": change.thread_id}
        record: Body = {"id": str(change.history_id), "messages": [ref]}
        labelled = {**ref, "labelIds": list(change.message_labels)}
        if change.kind == "messageAdded":
            record["messagesAdded"] = [{"message": labelled}]
        elif change.kind == "messageDeleted":
            record["messagesDeleted"] = [{"message": ref}]
        else:
            key = "labelsAdded" if change.kind == "labelAdded" else "labelsRemoved"
            record[key] = [{"message": labelled, "labelIds": list(change.labels)}]
        records.append(record)
    if records:
        out["history"] = records
    if offset + size < len(changes):
        out["nextPageToken"] = _token(offset + size)
    return out


def _has_label(change: Change, label: str | None) -> bool:
    return label is None or label in change.message_labels or label in change.labels


def profile(box: Mailbox) -> Body:
    total = box.total()
    return {
        "emailAddress": box.address,
        "messagesTotal": total,
        "threadsTotal": (total + 2) // 3,
        "historyId": str(box.history_id),
    }


def labels() -> Body:
    return {
        "labels": [
            {"id": label, "name": label, "type": "system", "messageListVisibility": "show",
             "labelListVisibility": "labelShow"}
            for label in SYSTEM_LABELS
        ]
    }  # fmt: skip


def watch(box: Mailbox, body: Any, now_ms: int) -> Body:
    topic = body.get("topicName") if isinstance(body, dict) else None
    if not isinstance(topic, str) or not re.fullmatch(
        r"projects/[a-z][-a-z0-9]{4,28}[a-z0-9]/topics/[\w.~+%-]{3,255}", topic
    ):
        raise GoogleError(
            400, "Invalid topicName does not match projects/SOME-PROJECT/topics/SOME-TOPIC", "invalidArgument"
        )
    label_ids = body.get("labelIds") or []
    behaviour = body.get("labelFilterBehavior") or body.get("labelFilterAction") or "include"
    if not isinstance(label_ids, list) or behaviour not in ("include", "exclude"):
        raise GoogleError(400, "Invalid labelIds or labelFilterBehavior", "invalidArgument")
    expiration = now_ms + WATCH_S * 1000
    box.watch = Watch(topic, tuple(str(label) for label in label_ids), behaviour, expiration)
    return {"historyId": str(box.history_id), "expiration": str(expiration)}


def stop(box: Mailbox) -> Body:
    box.watch = None
    return {}
