"""The Google Workspace streams: a mailbox's messages and its calendars' events, each a change feed the kit keeps
the position of.

- ``messages`` (https://developers.google.com/gmail/api/guides/sync): the first sync lists the chosen labels'
  messages of the last ``history_days`` (``messages.list`` with ``q=after:``, 500 ids a page) and reads each
  (``messages.get``, several at once), keeping the profile's ``historyId`` read before the listing; later runs read
  ``history.list`` from it: added or relabelled messages are read again, deleted ones (and ones that left every
  chosen label) are deleted. Google answers 404 for a history id it no longer keeps: the window is listed again,
  and the sync log says why.
- ``events`` (https://developers.google.com/calendar/api/guides/sync): each chosen calendar listed from
  ``history_days`` back (series kept whole: ``singleEvents`` is not asked for), its ``nextSyncToken`` kept per
  calendar; later runs list from the tokens (cancelled events are deleted). A 410 means the tokens are void: every
  calendar is listed again.

A row keeps headers, labels, snippet and the attachments' names and sizes. Bodies are kept only where the tenant
chose so (``message_bodies: encrypted``): the text and html bodies, each sealed under the connection's own key
before the row exists (``vrtx_pipelines.records.sealed``), so the warehouse and the records hold ciphertext only.
Attachments' content is never kept.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from typing import Any

from providers.errors import ProviderError
from providers.google_workspace.client import GoogleClient, header
from providers.kit.client import ApiClient
from providers.kit.paginators import PageToken
from providers.kit.streams import ChangeFeed, Changes, ChangesExpired, Records, Stream, typed_columns

from .fields import RECORD_FIELDS

LIST_PAGE = 500  # messages.list and history.list maxima; the default of 100 costs five times the calls
EVENTS_PAGE = 250
PARALLEL_READS = 8  # messages.get in flight per mailbox, well inside Gmail's per-user concurrency
HISTORY_TYPES = ("messageAdded", "messageDeleted", "labelAdded", "labelRemoved")
DAY_S = 86_400
MAX_BODY_CHARS = 1_000_000  # a longer body part is not kept (Gmail's own limit is 25 MB for the whole message)
BODY_FIELDS = {"text/plain": "body_text", "text/html": "body_html"}


def _settings(client: ApiClient) -> Mapping[str, Any]:
    return client.settings


def _labels(client: ApiClient) -> list[str]:
    return [str(label) for label in _settings(client).get("mailbox_labels") or ["INBOX", "SENT"]]


def _window_start(client: ApiClient) -> int:
    days = int(_settings(client).get("history_days") or 30)
    return int(time.time()) - days * DAY_S


def _parts(part: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield part
    for child in part.get("parts") or []:
        if isinstance(child, Mapping):
            yield from _parts(child)


def bodies(payload: Mapping[str, Any]) -> dict[str, str]:
    """The message's first text and first html body part (not attachments), decoded by their charsets."""
    found: dict[str, str] = {}
    for part in _parts(payload):
        field = BODY_FIELDS.get(str(part.get("mimeType") or "").lower())
        data = (part.get("body") or {}).get("data")
        if field is None or field in found or part.get("filename") or not isinstance(data, str):
            continue
        try:
            raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
        except (binascii.Error, ValueError):
            continue
        text = raw.decode(_charset(part), errors="replace")
        if len(text) <= MAX_BODY_CHARS:
            found[field] = text
    return found


def _charset(part: Mapping[str, Any]) -> str:
    """The part's declared charset, when Python knows it; UTF-8 otherwise (the stdlib parses the header)."""
    declared = Message()
    declared["Content-Type"] = header(dict(part), "Content-Type") or "text/plain"
    charset = declared.get_content_charset() or "utf-8"
    try:
        codecs.lookup(charset)
    except LookupError:
        return "utf-8"
    return charset


def message_row(
    message: Mapping[str, Any], mailbox: str, seal: Callable[[str, str, str, str], str] | None = None
) -> dict[str, Any]:
    """A Gmail message resource as it lands: headers, labels, snippet, attachment descriptions; its bodies only
    sealed, and only with ``seal`` (the connection keeps them)."""
    payload = message.get("payload") or {}
    attachments = [
        {"filename": str(part.get("filename")), "mime_type": str(part.get("mimeType") or ""),
         "size": int((part.get("body") or {}).get("size") or 0),
         "attachment_id": (part.get("body") or {}).get("attachmentId")}
        for part in _parts(payload) if part.get("filename")
    ]  # fmt: skip
    internal = message.get("internalDate")
    return {
        "id": str(message["id"]),
        "thread_id": message.get("threadId"),
        "mailbox": mailbox,
        "history_id": str(message.get("historyId") or ""),
        "internal_date": datetime.fromtimestamp(int(internal) / 1000, UTC) if internal else None,
        "label_ids": list(message.get("labelIds") or []),
        "snippet": message.get("snippet") or "",
        "size_estimate": message.get("sizeEstimate"),
        "from": header(payload, "From"),
        "to": header(payload, "To"),
        "cc": header(payload, "Cc"),
        "bcc": header(payload, "Bcc"),
        "subject": header(payload, "Subject"),
        "date": header(payload, "Date"),
        "message_id": header(payload, "Message-ID"),
        "in_reply_to": header(payload, "In-Reply-To"),
        "references": header(payload, "References"),
        "attachments": attachments,
        "deleted": False,
        **(
            {field: seal("messages", str(message["id"]), field, text) for field, text in bodies(payload).items()}
            if seal is not None
            else {}
        ),
    }


def _read(client: ApiClient, ids: Sequence[str]) -> Records:
    """The messages, read several at once; one deleted meanwhile (404) is left out."""

    def one(message_id: str) -> dict[str, Any] | None:
        try:
            found = client.get(f"messages/{message_id}", params={"format": "full"})
        except ProviderError as exc:
            if exc.status == 404:
                return None
            raise
        return message_row(found, str(client.tenant_id or ""), client.seal)

    with ThreadPoolExecutor(max_workers=PARALLEL_READS, thread_name_prefix="gmail-get") as pool:
        return [row for row in pool.map(one, ids) if row is not None]


def _tombstone(message_id: str, mailbox: str) -> dict[str, Any]:
    return {"id": message_id, "mailbox": mailbox, "deleted": True}


@dataclass(frozen=True)
class MailboxHistory(ChangeFeed):
    """Gmail's history as a change feed: the position is a history id."""

    def listing(self, client: ApiClient, stream: Stream) -> Changes:
        position = str(client.get("profile")["historyId"])

        def pages() -> Iterator[Records]:
            seen: set[str] = set()
            query = f"after:{_window_start(client)}"
            for label in _labels(client):
                params = {"q": query, "labelIds": label, "maxResults": LIST_PAGE}
                listed = client.paginate(
                    "messages", _ids, paginator=PageToken(resume_key=None), params=params, stream=stream.name
                )
                for page in listed:
                    fresh = [ref["id"] for ref in page if ref["id"] not in seen]
                    seen.update(fresh)
                    if fresh:
                        yield _read(client, fresh)

        return Changes(pages(), lambda: position)

    def changes(self, client: ApiClient, stream: Stream, position: Any, kept_at: float | None) -> Changes:
        labels = set(_labels(client))
        mailbox = str(client.tenant_id or "")
        latest = {"history_id": str(position)}

        def pages() -> Iterator[Records]:
            params = {"startHistoryId": str(position), "historyTypes": list(HISTORY_TYPES), "maxResults": LIST_PAGE}
            paginator = PageToken(resume_key="historyId")
            changed: dict[str, bool] = {}  # id -> still there (read again) or deleted
            try:
                for page in client.paginate("history", _records, paginator=paginator, params=params, stream="history"):
                    for record in page:
                        for item in record.get("messagesDeleted") or []:
                            changed[item["message"]["id"]] = False
                        for key in ("messagesAdded", "labelsAdded", "labelsRemoved"):
                            for item in record.get(key) or []:
                                message = item["message"]
                                kept = bool(labels & set(message.get("labelIds") or []))
                                changed[message["id"]] = kept and changed.get(message["id"], True)
            except ProviderError as exc:
                if exc.status == 404:
                    raise ChangesExpired("Gmail no longer has the history from the kept history id (404)") from exc
                raise
            latest["history_id"] = paginator.token or latest["history_id"]
            gone = [_tombstone(i, mailbox) for i, there in changed.items() if not there]
            again = [i for i, there in changed.items() if there]
            for start in range(0, len(again), LIST_PAGE):
                read = _read(client, again[start : start + LIST_PAGE])
                missing = set(again[start : start + LIST_PAGE]) - {row["id"] for row in read}
                yield read + [_tombstone(i, mailbox) for i in missing]
            if gone:
                yield gone

        return Changes(pages(), lambda: latest["history_id"])


def _ids(body: Any) -> Records:
    return [dict(ref) for ref in body.get("messages") or []]


def _records(body: Any) -> Records:
    return [dict(record) for record in body.get("history") or []]


# --- events ------------------------------------------------------------------------------------------------------


def synced_calendars(client: ApiClient) -> list[str]:
    if not _settings(client).get("sync_calendar", True):
        return []
    return [str(c) for c in _settings(client).get("calendar_ids") or ["primary"]]


_EVENT_FIELDS = ("status", "summary", "description", "location", "htmlLink", "hangoutLink", "iCalUID",
                 "recurringEventId", "updated", "created")  # fmt: skip


def event_row(event: Mapping[str, Any], calendar_id: str) -> dict[str, Any]:
    row = {key: event.get(key) for key in _EVENT_FIELDS}
    conference = [
        point.get("uri") for point in ((event.get("conferenceData") or {}).get("entryPoints") or [])
        if point.get("entryPointType") == "video"
    ]  # fmt: skip
    return {
        **{_snake(key): value for key, value in row.items()},
        "id": f"{calendar_id}:{event['id']}",
        "event_id": str(event["id"]),
        "calendar_id": calendar_id,
        "organizer": event.get("organizer"),
        "attendees": list(event.get("attendees") or []),
        "start": event.get("start"),
        "end": event.get("end"),
        "recurrence": list(event.get("recurrence") or []),
        "conference_url": conference[0] if conference else event.get("hangoutLink"),
        "deleted": event.get("status") == "cancelled",
    }


def _snake(key: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in key).replace("i_cal_u_i_d", "ical_uid")


def _events(calendar_id: str) -> Any:
    def select(body: Any) -> Records:
        return [event_row(event, calendar_id) for event in body.get("items") or []]

    return select


@dataclass(frozen=True)
class CalendarSync(ChangeFeed):
    """Calendar sync tokens as a change feed: the position maps each calendar to its ``nextSyncToken``."""

    def _list(
        self, client: ApiClient, calendar_id: str, params: dict[str, Any], tokens: dict[str, str]
    ) -> Iterator[Records]:
        assert isinstance(client, GoogleClient)
        paginator = PageToken()
        url = client.calendar_url(f"calendars/{calendar_id}/events")
        yield from client.paginate(url, _events(calendar_id), paginator=paginator, params=params, stream="events")
        if paginator.token:
            tokens[calendar_id] = paginator.token

    def listing(self, client: ApiClient, stream: Stream) -> Changes:
        tokens: dict[str, str] = {}
        since = datetime.fromtimestamp(_window_start(client), UTC).isoformat().replace("+00:00", "Z")

        def pages() -> Iterator[Records]:
            for calendar_id in synced_calendars(client):
                yield from self._list(client, calendar_id, {"timeMin": since, "maxResults": EVENTS_PAGE}, tokens)

        return Changes(pages(), lambda: dict(tokens))

    def changes(self, client: ApiClient, stream: Stream, position: Any, kept_at: float | None) -> Changes:
        kept = dict(position) if isinstance(position, Mapping) else {}
        tokens: dict[str, str] = {}
        since = datetime.fromtimestamp(_window_start(client), UTC).isoformat().replace("+00:00", "Z")

        def pages() -> Iterator[Records]:
            for calendar_id in synced_calendars(client):
                token = kept.get(calendar_id)
                params: dict[str, Any] = {"maxResults": EVENTS_PAGE}
                params.update({"syncToken": token} if token else {"timeMin": since})
                try:
                    yield from self._list(client, calendar_id, params, tokens)
                except ProviderError as exc:
                    if exc.status == 410:
                        raise ChangesExpired("Google Calendar voided the sync token (410): listed again") from exc
                    raise

        return Changes(pages(), lambda: dict(tokens))


STREAMS = (
    Stream(
        "messages", doc_url="https://developers.google.com/gmail/api/reference/rest/v1/users.history/list",
        path="messages", primary_key="id", feed=MailboxHistory(), deleted="deleted",
        **typed_columns(RECORD_FIELDS["messages"]),
    ),
    Stream(
        "events", doc_url="https://developers.google.com/calendar/api/v3/reference/events/list",
        path="calendars/primary/events", primary_key="id", feed=CalendarSync(), deleted="deleted",
        # Start, end and organiser stay whole (Google's own shapes, read back as they came).
        json_columns=(*typed_columns(RECORD_FIELDS["events"])["json_columns"], "organizer", "start", "end"),
    ),
)  # fmt: skip
