"""The Microsoft 365 streams: a mailbox's messages in the chosen folders and its calendar's events, each a change
feed of Graph delta links (https://learn.microsoft.com/en-us/graph/delta-query-overview) the kit keeps.

- ``messages`` (https://learn.microsoft.com/en-us/graph/delta-query-messages): delta is per folder. The first sync
  reads each chosen folder's ``messages/delta`` from ``history_days`` back (``$filter=receivedDateTime ge``),
  ``@odata.nextLink`` to the last page, whose ``@odata.deltaLink`` is kept per folder; later runs call the kept
  links. Graph names a message that left a folder (deleted, or moved) with ``@removed`` only: a move within the
  chosen folders shows as a removal from one and an arrival in the other, in either order, so each removal is
  checked against the message itself (``GET /me/messages/{id}``, 20 to a ``$batch``) before it deletes anything.
  A delta token Graph no longer keeps (410) lists the folders again, and the sync log says why.
- ``events`` (https://learn.microsoft.com/en-us/graph/api/event-delta): ``calendarView/delta`` over a window from
  ``history_days`` back to ``EVENTS_AHEAD_DAYS`` ahead, fixed when listed; the window is listed again once fewer
  than ``EVENTS_RELIST_DAYS`` of it remain ahead, so it rolls forward. Removed and cancelled events are deleted.

Ids are immutable ids (``Prefer: IdType="ImmutableId"``, sent by the client): a message keeps its id when it moves.
A row keeps recipients, flags and the preview; the body only where the tenant chose so (``message_bodies:
encrypted``: it is not even asked for otherwise), sealed under the connection's own key before the row exists.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from providers.errors import ProviderError
from providers.kit.client import ApiClient
from providers.kit.paginators import NextLink
from providers.kit.streams import ChangeFeed, Changes, ChangesExpired, Records, Stream, typed_columns
from providers.kit.values import timestamp

from .client import prefer
from .fields import RECORD_FIELDS

PAGE_SIZE = 200  # Prefer: odata.maxpagesize; Graph's default page of messages delta is 10
PARALLEL_CHECKS = 4  # GETs of removed messages in flight: Outlook serves 4 per mailbox at once
BATCH_SIZE = 20  # Graph's $batch limit
EVENTS_AHEAD_DAYS = 180
EVENTS_RELIST_DAYS = 150
DEFAULT_FOLDERS = ("inbox", "sentitems")
MESSAGE_FIELDS = (
    "id", "receivedDateTime", "sentDateTime", "lastModifiedDateTime", "changeKey", "subject", "bodyPreview",
    "from", "sender", "toRecipients", "ccRecipients", "bccRecipients", "replyTo", "conversationId",
    "internetMessageId", "parentFolderId", "isRead", "isDraft", "importance", "hasAttachments", "categories",
    "webLink", "flag",
)  # fmt: skip
BODY_FIELDS = {"html": "body_html", "text": "body_text"}
MAX_BODY_CHARS = 1_000_000  # a longer body is not kept


def folders(client: ApiClient) -> list[str]:
    return [str(folder) for folder in client.settings.get("folders") or DEFAULT_FOLDERS]


def _window_start(client: ApiClient) -> datetime:
    return datetime.now(UTC) - timedelta(days=int(client.settings.get("history_days") or 30))


def iso_z(at: datetime) -> str:
    """A UTC instant as Graph's query parameters and bodies take it (``2026-12-07T15:49:06Z``)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def message_select(client: ApiClient) -> str:
    return ",".join((*MESSAGE_FIELDS, "body") if client.seal is not None else MESSAGE_FIELDS)


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _recipient(value: Any) -> dict[str, Any] | None:
    address = (value or {}).get("emailAddress") if isinstance(value, Mapping) else None
    if not isinstance(address, Mapping) or not address.get("address"):
        return None
    return {"name": address.get("name") or None, "address": str(address["address"])}


def _recipients(values: Any) -> list[dict[str, Any]]:
    return [found for found in (_recipient(value) for value in values or []) if found is not None]


def message_row(message: Mapping[str, Any], mailbox: str, folder: str, client: ApiClient) -> dict[str, Any]:
    """A Graph message as it lands; its body only sealed, and only when the connection keeps bodies."""
    body = _object(message.get("body"))
    sealed: dict[str, str] = {}
    field = BODY_FIELDS.get(str(body.get("contentType") or "").lower())
    content = body.get("content")
    if client.seal is not None and field and isinstance(content, str) and len(content) <= MAX_BODY_CHARS:
        sealed[field] = client.seal("messages", str(message["id"]), field, content)
    return {
        "id": str(message["id"]),
        "conversation_id": message.get("conversationId"),
        "mailbox": mailbox,
        "folder": folder,
        "folder_id": message.get("parentFolderId"),
        "internet_message_id": message.get("internetMessageId"),
        "subject": message.get("subject") or "",
        "body_preview": message.get("bodyPreview") or "",
        "importance": message.get("importance"),
        "web_link": message.get("webLink"),
        "change_key": message.get("changeKey"),
        "flag_status": (message.get("flag") or {}).get("flagStatus"),
        "received_at": timestamp(message.get("receivedDateTime")),
        "sent_at": timestamp(message.get("sentDateTime")),
        "last_modified_at": timestamp(message.get("lastModifiedDateTime")),
        "is_read": bool(message.get("isRead")),
        "is_draft": bool(message.get("isDraft")),
        "has_attachments": bool(message.get("hasAttachments")),
        "from": _recipient(message.get("from")),
        "sender": _recipient(message.get("sender")),
        "to": _recipients(message.get("toRecipients")),
        "cc": _recipients(message.get("ccRecipients")),
        "bcc": _recipients(message.get("bccRecipients")),
        "reply_to": _recipients(message.get("replyTo")),
        "categories": [str(category) for category in message.get("categories") or []],
        "deleted": False,
        **sealed,
    }


def _tombstone(record_id: str, mailbox: str) -> dict[str, Any]:
    return {"id": record_id, "mailbox": mailbox, "deleted": True}


def _expired(exc: ProviderError, what: str) -> None:
    """Graph answers a delta token it no longer keeps with 410 Gone: the listing starts over."""
    if exc.status == 410:
        raise ChangesExpired(f"Microsoft Graph no longer keeps the {what} delta token (410)") from exc


# --- messages ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FolderDeltas(ChangeFeed):
    """Each chosen folder's messages delta: the position maps folder -> its ``@odata.deltaLink``."""

    def _read(
        self, client: ApiClient, folder: str, url: str, params: Mapping[str, str], links: dict[str, str]
    ) -> Iterator[tuple[Records, list[str]]]:
        """The folder's pages as (rows, ids Graph says were removed); its delta link kept once read to the end."""
        paginator = NextLink()
        mailbox = str(client.tenant_id or "")
        headers = prefer(f"odata.maxpagesize={PAGE_SIZE}")
        try:
            pages = client.paginate(url, "value", paginator=paginator, params=params, headers=headers,
                                    stream="messages")  # fmt: skip
            for page in pages:
                removed = [str(item["id"]) for item in page if "@removed" in item]
                rows = [message_row(item, mailbox, folder, client) for item in page if "@removed" not in item]
                yield rows, removed
        except ProviderError as exc:
            _expired(exc, f"'{folder}' folder's")
            raise
        if paginator.token:
            links[folder] = paginator.token

    def _first(self, client: ApiClient, folder: str, links: dict[str, str]) -> Iterator[tuple[Records, list[str]]]:
        params = {"$select": message_select(client), "$filter": f"receivedDateTime ge {iso_z(_window_start(client))}"}
        yield from self._read(client, folder, f"me/mailFolders/{quote(folder, safe='')}/messages/delta", params, links)

    def positions(self, client: ApiClient) -> dict[str, str]:
        """Each chosen folder's delta link as of now, over the same window as the pull (its messages are read and
        dropped: Graph's delta follows only the messages its first round covered, and a change to any of them must
        reach the webhook fast path, whose position this is)."""
        links: dict[str, str] = {}
        for folder in folders(client):
            for _page in self._first(client, folder, links):
                pass
        return links

    def listing(self, client: ApiClient, stream: Stream) -> Changes:
        links: dict[str, str] = {}

        def pages() -> Iterator[Records]:
            for folder in folders(client):
                for rows, _removed in self._first(client, folder, links):
                    if rows:
                        yield rows

        return Changes(pages(), lambda: dict(links))

    def changes(self, client: ApiClient, stream: Stream, position: Any, kept_at: float | None) -> Changes:
        kept = dict(position) if isinstance(position, Mapping) else {}
        links: dict[str, str] = {}

        def pages() -> Iterator[Records]:
            removed: list[str] = []
            arrived: set[str] = set()
            for folder in folders(client):
                link = kept.get(folder)
                read = self._read(client, folder, str(link), {}, links) if link else self._first(client, folder, links)
                for rows, gone in read:
                    removed += gone
                    arrived.update(row["id"] for row in rows)
                    if rows:
                        yield rows
            checked = _still_there(client, [i for i in dict.fromkeys(removed) if i not in arrived])
            if checked:
                yield checked

        return Changes(pages(), lambda: dict(links))


def _still_there(client: ApiClient, ids: list[str]) -> Records:
    """Removed messages as they are now: a row where one moved into another chosen folder, else a tombstone (it was
    deleted, or left every chosen folder). Read 20 to a call through Graph's ``$batch``."""
    if not ids:
        return []
    mailbox = str(client.tenant_id or "")
    chosen = {str(client.get(f"me/mailFolders/{quote(name, safe='')}", params={"$select": "id"})["id"]): name
              for name in folders(client)}  # fmt: skip

    def row(found: Mapping[str, Any]) -> dict[str, Any]:
        folder = chosen.get(str(found.get("parentFolderId")))
        return message_row(found, mailbox, folder, client) if folder else _tombstone(str(found["id"]), mailbox)

    def one(message_id: str) -> dict[str, Any]:
        try:
            return row(
                client.get(f"me/messages/{quote(message_id, safe='')}", params={"$select": message_select(client)})
            )
        except ProviderError as exc:
            if exc.status == 404:
                return _tombstone(message_id, mailbox)
            raise

    rows: Records = []
    for start in range(0, len(ids), BATCH_SIZE):
        chunk = ids[start : start + BATCH_SIZE]
        requests = [{"id": str(n), "method": "GET", "headers": prefer(),
                     "url": f"/me/messages/{quote(i, safe='')}?$select={message_select(client)}"}
                    for n, i in enumerate(chunk)]  # fmt: skip
        answer = client.send("POST", "$batch", headers={"Content-Type": "application/json"},
                             content=json.dumps({"requests": requests}).encode(), read_only=True)  # fmt: skip
        by_id = {str(r.get("id")): r for r in json.loads(answer.content).get("responses") or [] if isinstance(r, dict)}
        retry = []
        for n, message_id in enumerate(chunk):
            found = by_id.get(str(n)) or {}
            if found.get("status") == 200 and isinstance(found.get("body"), dict):
                rows.append(row(found["body"]))
            elif found.get("status") == 404:
                rows.append(_tombstone(message_id, mailbox))
            else:  # throttled or failed inside the batch: asked again alone, with the client's own patience
                retry.append(message_id)
        with ThreadPoolExecutor(max_workers=PARALLEL_CHECKS, thread_name_prefix="graph-check") as pool:
            rows += list(pool.map(one, retry))
    return rows


# --- events ------------------------------------------------------------------------------------------------------

_EVENT_FIELDS = {
    "iCalUId": "ical_uid", "subject": "subject", "bodyPreview": "body_preview", "showAs": "show_as", "type": "type",
    "seriesMasterId": "series_master_id", "webLink": "web_link", "changeKey": "change_key",
    "originalStartTimeZone": "original_start_time_zone",
}  # fmt: skip


def event_row(event: Mapping[str, Any], mailbox: str) -> dict[str, Any]:
    meeting, location = _object(event.get("onlineMeeting")), _object(event.get("location"))
    return {
        "id": str(event["id"]),
        "mailbox": mailbox,
        **{column: event.get(key) for key, column in _EVENT_FIELDS.items()},
        "location": location.get("displayName") or None,
        "online_meeting_url": meeting.get("joinUrl") or event.get("onlineMeetingUrl"),
        "last_modified_at": timestamp(event.get("lastModifiedDateTime")),
        "created_at": timestamp(event.get("createdDateTime")),
        "is_all_day": bool(event.get("isAllDay")),
        "is_online_meeting": bool(event.get("isOnlineMeeting")),
        "organizer": _recipient(event.get("organizer")),
        "start": event.get("start"),
        "end": event.get("end"),
        "recurrence": event.get("recurrence"),
        "attendees": [
            {**found, "type": item.get("type"), "response": (item.get("status") or {}).get("response")}
            for item in event.get("attendees") or []
            if isinstance(item, Mapping) and (found := _recipient(item)) is not None
        ],
        "categories": [str(category) for category in event.get("categories") or []],
        "deleted": bool(event.get("isCancelled")),
    }


def _event_rows(client: ApiClient) -> Any:
    mailbox = str(client.tenant_id or "")

    def select(body: Any) -> Records:
        return [
            _tombstone(str(item["id"]), mailbox) if "@removed" in item else event_row(item, mailbox)
            for item in body.get("value") or []
        ]

    return select


@dataclass(frozen=True)
class CalendarWindow(ChangeFeed):
    """``calendarView/delta`` over a window: the position is the delta link and the window's end."""

    def _read(self, client: ApiClient, url: str, params: Mapping[str, str], kept: dict[str, str]) -> Iterator[Records]:
        paginator = NextLink()
        headers = prefer(f"odata.maxpagesize={PAGE_SIZE}")
        try:
            yield from client.paginate(url, _event_rows(client), paginator=paginator, params=params,
                                       headers=headers, stream="events")  # fmt: skip
        except ProviderError as exc:
            _expired(exc, "calendar")
            raise
        if paginator.token:
            kept["link"] = paginator.token

    def listing(self, client: ApiClient, stream: Stream) -> Changes:
        if not client.settings.get("sync_calendar", True):
            return Changes(iter(()), lambda: None)
        until = datetime.now(UTC) + timedelta(days=EVENTS_AHEAD_DAYS)
        kept: dict[str, str] = {"until": iso_z(until)}
        params = {"startDateTime": iso_z(_window_start(client)), "endDateTime": iso_z(until)}
        return Changes(self._read(client, "me/calendarView/delta", params, kept), lambda: dict(kept))

    def changes(self, client: ApiClient, stream: Stream, position: Any, kept_at: float | None) -> Changes:
        if not client.settings.get("sync_calendar", True):
            return Changes(iter(()), lambda: None)
        kept = dict(position) if isinstance(position, Mapping) else {}
        until = timestamp(kept.get("until"))
        if not kept.get("link") or until is None:
            raise ChangesExpired("no calendar delta link was kept")
        if until - datetime.now(UTC) < timedelta(days=EVENTS_RELIST_DAYS):
            raise ChangesExpired(f"the calendar window (to {until.date()}) is listed again, rolled forward")
        following = {"until": str(kept["until"])}
        return Changes(self._read(client, str(kept["link"]), {}, following), lambda: dict(following))


STREAMS = (
    Stream(
        "messages", doc_url="https://learn.microsoft.com/en-us/graph/api/message-delta",
        path="me/mailFolders/inbox/messages/delta", primary_key="id", feed=FolderDeltas(), deleted="deleted",
        # Addresses stay whole (Graph's recipient, flattened to name and address), read back as they came.
        json_columns=(*typed_columns(RECORD_FIELDS["messages"])["json_columns"], "from", "sender"),
    ),
    Stream(
        "events", doc_url="https://learn.microsoft.com/en-us/graph/api/event-delta",
        path="me/calendarView/delta", primary_key="id", feed=CalendarWindow(), deleted="deleted",
        json_columns=(*typed_columns(RECORD_FIELDS["events"])["json_columns"], "organizer", "start", "end",
                      "recurrence"),
    ),
)  # fmt: skip
