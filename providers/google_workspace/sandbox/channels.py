"""Calendar push notification channels (https://developers.google.com/calendar/api/guides/push): ``events.watch``
opens a channel to an address; the channel gets a ``sync`` notification at once, then an ``exists`` one for each
change of the calendar's events, each an empty POST whose headers say which channel, resource and state
(``X-Goog-Channel-ID``, ``X-Goog-Channel-Token``, ``X-Goog-Resource-ID``, ``X-Goog-Resource-State``,
``X-Goog-Message-Number``...) until it expires or ``channels.stop`` closes it. Channels cannot be renewed: a new
one is opened. The sandbox grants at most 7 days.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from providers.google_workspace.sandbox.calendar import Calendar
from providers.google_workspace.sandbox.errors import GoogleError
from providers.sandbox_kit.webhooks import Raw, Subscription, WebhookSender

MAX_TTL_MS = 7 * 86_400_000
CHANNEL_ID = re.compile(r"[A-Za-z0-9\-_+/=]{1,64}")
Body = dict[str, Any]


@dataclass
class Channel:
    id: str
    resource_id: str
    resource_uri: str
    calendar_key: str
    owner: str
    token: str | None
    expiration_ms: int
    subscription: Subscription


def _key(calendar: Calendar) -> str:
    return f"{calendar.owner}/{calendar.id}"


class Channels:
    """Open channels by id; deliveries go through one sender thread (``publish`` only queues)."""

    def __init__(self) -> None:
        self.open: dict[str, Channel] = {}
        self.sender = WebhookSender(sign=self._sign, payload=self._payload, max_batch=1, name="sandbox-calendar-push")

    def watch(self, calendar: Calendar, calendar_id: str, body: Any, now_ms: int) -> Body:
        if not isinstance(body, dict):
            raise GoogleError(400, "Required", "required")
        channel_id, kind, address = body.get("id"), body.get("type"), body.get("address")
        token, expiration = body.get("token"), body.get("expiration")
        if not isinstance(channel_id, str) or not CHANNEL_ID.fullmatch(channel_id):
            raise GoogleError(400, "Invalid channel id.", "invalid")
        if kind not in ("web_hook", "webhook"):
            raise GoogleError(400, f"Invalid channel type: {kind}", "invalid")
        # Google takes https addresses with a valid certificate only; the sandbox also plain http, for loopback.
        if not isinstance(address, str) or not address.startswith(("https://", "http://")):
            raise GoogleError(400, "Invalid channel address.", "pushWebhookBadDomain")
        if token is not None and (not isinstance(token, str) or len(token) > 256):
            raise GoogleError(400, "Invalid channel token.", "invalid")
        if channel_id in self.open:
            raise GoogleError(400, f"Channel id {channel_id} not unique", "channelIdNotUnique")
        try:
            asked = int(expiration) if expiration is not None else now_ms + MAX_TTL_MS
        except (TypeError, ValueError):
            raise GoogleError(400, "Invalid expiration.", "invalid") from None
        until = min(asked, now_ms + MAX_TTL_MS)
        if until <= now_ms:
            raise GoogleError(400, "Channel expiration is in the past.", "invalid")
        key = _key(calendar)
        resource_id = hashlib.sha256(key.encode()).hexdigest()[:27]
        resource_uri = f"https://www.googleapis.com/calendar/v3/calendars/{calendar_id}/events?alt=json"
        subscription = self.sender.subscribe(address, channel_id, tenants=[key, f"channel:{channel_id}"])
        self.open[channel_id] = Channel(channel_id, resource_id, resource_uri, key, calendar.owner, token, until,
                                        subscription)  # fmt: skip
        self.sender.publish(f"channel:{channel_id}", "sync")
        answer: Body = {"kind": "api#channel", "id": channel_id, "resourceId": resource_id,
                        "resourceUri": resource_uri, "expiration": str(until)}  # fmt: skip
        if token is not None:
            answer["token"] = token
        return answer

    def stop(self, owner: str, body: Any) -> None:
        channel_id = body.get("id") if isinstance(body, dict) else None
        resource_id = body.get("resourceId") if isinstance(body, dict) else None
        channel = self.open.get(str(channel_id))
        if channel is None or channel.resource_id != resource_id or channel.owner != owner:
            raise GoogleError(404, f"Channel '{channel_id}' not found for project", "notFound")
        self._close(channel)

    def changed(self, calendar: Calendar, now_ms: int) -> None:
        """A change of ``calendar``'s events: an ``exists`` notification to each of its live channels."""
        key = _key(calendar)
        mine = [c for c in self.open.values() if c.calendar_key == key]
        for channel in [c for c in mine if c.expiration_ms <= now_ms]:
            self._close(channel)
        if any(c.expiration_ms > now_ms for c in mine):
            self.sender.publish(key, "exists")

    def close(self) -> None:
        self.sender.close()

    def _close(self, channel: Channel) -> None:
        self.open.pop(channel.id, None)
        self.sender.unsubscribe(channel.subscription)

    def _sign(self, _body: bytes, channel_id: str) -> dict[str, str]:
        channel = self.open.get(channel_id)
        if channel is None:
            return {"X-Goog-Channel-ID": channel_id}
        expires = format_datetime(datetime.fromtimestamp(channel.expiration_ms / 1000, UTC), usegmt=True)
        headers = {"X-Goog-Channel-ID": channel.id, "X-Goog-Channel-Expiration": expires,
                   "X-Goog-Resource-ID": channel.resource_id, "X-Goog-Resource-URI": channel.resource_uri}  # fmt: skip
        if channel.token is not None:
            headers["X-Goog-Channel-Token"] = channel.token
        return headers

    def _payload(self, events: list[Any], first: int, _last: int) -> Raw:
        (state,) = events
        return Raw(b"", {"X-Goog-Resource-State": str(state), "X-Goog-Message-Number": str(first)})
