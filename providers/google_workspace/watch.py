"""Keeping a mailbox's push notifications on (https://developers.google.com/gmail/api/guides/push): ``users.watch``
names the platform app's Pub/Sub topic (``VRTX_OAUTH_CLIENTS.google_workspace.pubsub_topic``) and the synced
labels, and lasts 7 days; Google asks for it to be renewed daily. Calling it again renews it (one watch per user
and topic). ``users.stop`` ends it, on the disconnect of the last connection to the mailbox. Each synced calendar
gets a channel (https://developers.google.com/calendar/api/guides/push) to the connection's webhook URL, replaced
by a new one at each renewal, and stopped on the connection's disconnect.

Two tenants may connect the same Google account: with one OAuth client that is one grant at Google (revoking
either token revokes both) and one watch, so the mailbox is what a disconnect must find held elsewhere before it
revokes or stops anything.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from providers.base import Holdings, ProviderConnection, RevocationSpec, WatchChannel, Watching, WatchSpec
from providers.errors import ProviderError, ProviderRejected
from providers.google_workspace.client import GoogleClient
from providers.google_workspace.source import STREAMS, synced_calendars

JSON_HEADERS = {"Content-Type": "application/json"}
EVENTS = next(stream for stream in STREAMS if stream.name == "events")
CHANNEL_TTL = timedelta(days=7)


def start(connection: ProviderConnection, app: Mapping[str, str], channel: WatchChannel) -> Watching | None:
    client = GoogleClient.for_connection(connection)
    ends: list[datetime] = []
    state: dict[str, Any] = {}
    # The fast path reads a stream's changes from its own position when a notification comes (they name no
    # record): taken as the watch begins, before the channels open, so no change falls between; a renewal keeps
    # the position the fast path has reached.
    previous = channel.previous.get("positions")
    kept = dict(previous) if isinstance(previous, Mapping) else {}
    positions: dict[str, Any] = {}
    topic = app.get("pubsub_topic")
    if topic:
        until, history_id = _watch_mailbox(client, connection, topic)
        ends.append(until)
        state["mailbox_topic"] = topic
        positions["messages"] = kept.get("messages") or history_id
    calendars = synced_calendars(client)
    if calendars:
        positions["events"] = kept.get("events") or _calendar_position(client)
        opened = [_open_channel(client, calendar, channel) for calendar in calendars]
        ends += [until for _, until in opened]
        state["channels"] = [found for found, _ in opened]
    # The old channels close once the new ones are open: no change falls between them.
    for old in channel.previous.get("channels") or []:
        _close_channel(client, old)
    if positions:
        state["positions"] = positions
    return Watching(min(ends), state) if ends else None


def _calendar_position(client: GoogleClient) -> Any:
    """The synced calendars' sync tokens as of now: Calendar gives one only at the end of a listing."""
    assert EVENTS.feed is not None
    listing = EVENTS.feed.listing(client, EVENTS)
    for _page in listing.pages:
        pass
    return listing.position() or None


def _watch_mailbox(client: GoogleClient, connection: ProviderConnection, topic: str) -> tuple[datetime, str]:
    """Until when the mailbox is watched, and its history id when the watch began."""
    labels = [str(label) for label in connection.settings.get("mailbox_labels") or ("INBOX", "SENT")]
    body = {"topicName": topic, "labelIds": labels, "labelFilterBehavior": "include"}
    # Renewing is idempotent: retried like a read.
    answer = client.send("POST", "watch", headers=JSON_HEADERS, content=json.dumps(body).encode(), read_only=True)
    history_id = str(json.loads(answer.content).get("historyId") or "")
    if not history_id.isdigit():
        raise ProviderError("Google answered users.watch without a history id.", status=answer.status_code)
    return _expiration(answer, "users.watch"), history_id


def _open_channel(client: GoogleClient, calendar: str, channel: WatchChannel) -> tuple[dict[str, str], datetime]:
    """A new channel on ``calendar``'s events (channels are not renewed: each is replaced by a new one)."""
    wanted = {
        "id": uuid.uuid4().hex,
        "type": "web_hook",
        "address": channel.address,
        "token": channel.token,
        "expiration": int((datetime.now(UTC) + CHANNEL_TTL).timestamp() * 1000),
    }
    url = client.calendar_url(f"calendars/{quote(calendar, safe='')}/events/watch")
    # A new id each time: a retry cannot open a second channel of the same id (Google refuses it as not unique).
    answer = client.send("POST", url, headers=JSON_HEADERS, content=json.dumps(wanted).encode(), read_only=True)
    opened = json.loads(answer.content)
    found = {"id": str(opened.get("id")), "resourceId": str(opened.get("resourceId")), "calendar": calendar}
    return found, _expiration(answer, "events.watch")


def _close_channel(client: GoogleClient, old: Any) -> None:
    if not isinstance(old, Mapping) or not old.get("id") or not old.get("resourceId"):
        return
    body = json.dumps({"id": old["id"], "resourceId": old["resourceId"]}).encode()
    try:
        client.send("POST", client.calendar_url("channels/stop"), headers=JSON_HEADERS, content=body)
    except ProviderRejected as exc:
        if exc.status != 404:  # already expired or stopped
            raise


def _expiration(answer: httpx.Response, call: str) -> datetime:
    try:
        expiration: Any = json.loads(answer.content).get("expiration")
        return datetime.fromtimestamp(int(expiration) / 1000, UTC)
    except (ValueError, TypeError, AttributeError):
        raise ProviderError(f"Google answered {call} without an expiration.", status=answer.status_code) from None


def held(_tokens: Mapping[str, Any], meta: Mapping[str, Any]) -> Holdings:
    """The mailbox's grant and watch (shared by every connection to it), and the connection's own channels."""
    mailbox = meta.get("external_account_id")
    if not mailbox:
        return Holdings()
    watch: Any = meta.get("watch")
    state: Any = watch.get("state") if isinstance(watch, dict) else None
    state = state if isinstance(state, dict) else {}
    channels = tuple(
        f"channel:{c['id']}:{c['resourceId']}"
        for c in state.get("channels") or []
        if isinstance(c, dict) and c.get("id") and c.get("resourceId")
    )
    return Holdings(grant=f"mailbox:{mailbox}", links=(f"watch:{mailbox}", *channels))


def unlink(connection: ProviderConnection, link: str) -> None:
    client = GoogleClient.for_connection(connection)
    if link.startswith("watch:"):
        client.send("POST", "stop", headers=JSON_HEADERS, content=b"{}")
    elif link.startswith("channel:"):
        _, channel_id, resource_id = link.split(":", 2)
        _close_channel(client, {"id": channel_id, "resourceId": resource_id})


WATCHES = WatchSpec(start=start, renew_within_s=6 * 86_400.0)
REVOCATION = RevocationSpec(held=held, unlink=unlink)
