"""Keeping a mailbox's change notifications on: one Graph subscription
(https://learn.microsoft.com/en-us/graph/api/subscription-post-subscriptions) per chosen mail folder's messages and
one for the calendar's events, notifying the connection's own webhook URL with the connection's webhook secret as
``clientState``. Outlook subscriptions last at most 10,080 minutes (under 7 days): each is renewed a day before it
ends (``PATCH``, https://learn.microsoft.com/en-us/graph/api/subscription-update), or at once when a lifecycle
notification asks; one Graph no longer has (404) is created again. A disconnect deletes the connection's own
subscriptions; another tenant connected to the same mailbox keeps its own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from providers.base import Holdings, ProviderConnection, RevocationSpec, WatchChannel, Watching, WatchSpec
from providers.errors import ProviderError
from providers.kit.client import ApiClient
from providers.kit.values import iso_utc
from providers.microsoft365.client import GraphClient
from providers.microsoft365.source import STREAMS, CalendarWindow, FolderDeltas, folders, iso_z

JSON_HEADERS = {"Content-Type": "application/json"}
LIFETIME = timedelta(minutes=10_070)  # Outlook's maximum is 10,080 minutes without resource data
CHANGES = "created,updated,deleted"
EVENTS = next(stream for stream in STREAMS if stream.name == "events")


def _resources(client: ApiClient) -> list[tuple[str, str]]:
    """(entity, Graph resource) of each subscription the connection's settings call for."""
    found = [("messages", f"me/mailFolders('{folder}')/messages") for folder in folders(client)]
    if client.settings.get("sync_calendar", True):
        found.append(("events", "me/events"))
    return found


def _subscription(answer: Mapping[str, Any], entity: str) -> dict[str, str]:
    expires = answer.get("expirationDateTime")
    if not answer.get("id") or not isinstance(expires, str):
        raise ProviderError("Microsoft Graph answered a subscription without its id or expiration.")
    return {"id": str(answer["id"]), "resource": str(answer.get("resource") or ""), "entity": entity,
            "expires": expires}  # fmt: skip


def _create(client: ApiClient, entity: str, resource: str, channel: WatchChannel, until: datetime) -> dict[str, str]:
    body = {"changeType": CHANGES, "notificationUrl": channel.address, "lifecycleNotificationUrl": channel.address,
            "resource": resource, "expirationDateTime": iso_z(until), "clientState": channel.token}  # fmt: skip
    # Graph calls the URL back (the validation handshake) before it answers: a retry may meet a second
    # subscription created, which the next renewal's bookkeeping does not know; so not retried as a read.
    answer = client.send("POST", "subscriptions", headers=JSON_HEADERS, content=json.dumps(body).encode())
    return {**_subscription(json.loads(answer.content), entity), "resource": resource}


def _renew(client: ApiClient, old: Mapping[str, Any], until: datetime) -> dict[str, str] | None:
    """The subscription renewed, or None when Graph no longer has it."""
    body = json.dumps({"expirationDateTime": iso_z(until)}).encode()
    try:
        answer = client.send("PATCH", f"subscriptions/{quote(str(old['id']), safe='')}", headers=JSON_HEADERS,
                             content=body, read_only=True)  # fmt: skip
    except ProviderError as exc:
        if exc.status == 404:
            return None
        raise
    return {**_subscription(json.loads(answer.content), str(old["entity"])), "resource": str(old["resource"])}


def _delete(client: ApiClient, subscription_id: str) -> None:
    try:
        client.send("DELETE", f"subscriptions/{quote(subscription_id, safe='')}")
    except ProviderError as exc:
        if exc.status != 404:  # gone already
            raise


def _positions(client: ApiClient, kept: Mapping[str, Any]) -> dict[str, Any]:
    """The fast path's change-feed positions: kept across renewals; new ones taken before the subscriptions open,
    so no change falls between."""
    positions = dict(kept)
    messages = next(stream for stream in STREAMS if stream.name == "messages")
    if "messages" not in positions and isinstance(messages.feed, FolderDeltas):
        positions["messages"] = messages.feed.positions(client)
    if "events" not in positions and client.settings.get("sync_calendar", True):
        assert isinstance(EVENTS.feed, CalendarWindow)
        listing = EVENTS.feed.listing(client, EVENTS)
        for _page in listing.pages:
            pass
        positions["events"] = listing.position()
    return {entity: position for entity, position in positions.items() if position}


def start(connection: ProviderConnection, app: Mapping[str, str], channel: WatchChannel) -> Watching | None:
    client = GraphClient.for_connection(connection)
    wanted = _resources(client)
    if not wanted:
        return None
    kept = channel.previous.get("positions")
    positions = _positions(client, kept if isinstance(kept, Mapping) else {})
    previous = {str(s.get("resource")): s for s in channel.previous.get("subscriptions") or []
                if isinstance(s, Mapping) and s.get("id") and s.get("entity")}  # fmt: skip
    until = datetime.now(UTC) + LIFETIME
    subscriptions = []
    for entity, resource in wanted:
        old = previous.pop(resource, None)
        renewed = _renew(client, old, until) if old is not None else None
        subscriptions.append(renewed or _create(client, entity, resource, channel, until))
    for stale in previous.values():  # folders no longer chosen
        _delete(client, str(stale["id"]))
    ends = min(iso_utc(s["expires"]) for s in subscriptions)
    return Watching(ends, {"subscriptions": subscriptions, "positions": positions})


def held(_tokens: Mapping[str, Any], meta: Mapping[str, Any]) -> Holdings:
    """The connection's own subscriptions (no grant to revoke: the identity platform offers apps no revocation)."""
    watch: Any = meta.get("watch")
    state: Any = watch.get("state") if isinstance(watch, dict) else None
    found = state.get("subscriptions") if isinstance(state, dict) else None
    links = tuple(f"subscription:{s['id']}" for s in found or [] if isinstance(s, dict) and s.get("id"))
    return Holdings(links=links)


def unlink(connection: ProviderConnection, link: str) -> None:
    if link.startswith("subscription:"):
        _delete(GraphClient.for_connection(connection), link.removeprefix("subscription:"))


WATCHES = WatchSpec(start=start, renew_within_s=86_400.0)
REVOCATION = RevocationSpec(held=held, unlink=unlink)
