"""Gmail push notifications: ``users.watch`` publishes a mailbox's changes to the platform app's Pub/Sub topic, and a
push subscription delivers each to ``POST /api/v1/webhooks/google_workspace``
(https://developers.google.com/gmail/api/guides/push, https://cloud.google.com/pubsub/docs/push).

- The delivery is authenticated by the OIDC token Pub/Sub puts in ``Authorization: Bearer``
  (https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions): RS256, signed with Google's keys at
  ``www.googleapis.com/oauth2/v3/certs``, ``iss`` accounts.google.com, ``aud`` the audience chosen on the push
  subscription and ``email`` its service account (verified), both from the platform app's configuration
  (``VRTX_OAUTH_CLIENTS.google_workspace.push_audience`` / ``push_service_account``).
- The body is Pub/Sub's envelope (``message.data``: base64 of ``{"emailAddress", "historyId"}``, ``messageId``,
  ``publishTime``). It names no message: it says the mailbox changed, and the pull from the stored history id
  fetches what did. Pub/Sub delivers at least once: the message id is the event's identity.
- Calendar has no Pub/Sub: ``events.watch`` opens a channel to the connection's own webhook URL with the
  connection's webhook secret as its token; each notification is an empty POST whose ``X-Goog-*`` headers name the
  channel, the resource state and a message number (the event's identity), and it triggers the events pull.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from providers.base import WebhookEvent, WebhookProof, WebhookSpec
from providers.kit import strict_json
from providers.kit.values import iso_utc

CERTS_URL = "https://www.googleapis.com/oauth2/v3/certs"
ISSUERS = ("accounts.google.com", "https://accounts.google.com")
EVENT_TYPE = "mailbox.changed"
CALENDAR_EVENT_TYPE = "calendar.changed"
CHANNEL_HEADER = "x-goog-channel-id"
TOKEN_HEADER = "x-goog-channel-token"  # noqa: S105 -- a header's name
MAX_TOKEN_CHARS = 8192
MAX_DATA_CHARS = 4096
LEEWAY_S = 60


def verify(body: bytes, headers: Mapping[str, str], proof: WebhookProof) -> bool:
    """A Calendar channel's notification: whether it carries the connection's token (compared in constant time).
    A Pub/Sub push: whether its token is Google's, for our audience, from our push service account, and current."""
    if CHANNEL_HEADER in headers:
        sent = headers.get(TOKEN_HEADER, "")
        return bool(proof.secret and sent) and hmac.compare_digest(sent.encode(), str(proof.secret).encode())
    audience, account = proof.app.get("push_audience"), proof.app.get("push_service_account")
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if not (audience and account and proof.keys) or scheme.lower() != "bearer" or not 0 < len(token) <= MAX_TOKEN_CHARS:
        return False
    try:
        decoded = jwt.decode(token.strip(), KeySet.import_key_set(proof.keys), algorithms=["RS256"])  # type: ignore[arg-type]
        jwt.JWTClaimsRegistry(
            leeway=LEEWAY_S,
            iss={"essential": True, "values": list(ISSUERS)},
            aud={"essential": True, "value": audience},
            email={"essential": True, "value": account},
            email_verified={"essential": True, "value": True},
            exp={"essential": True},
            iat={"essential": True},
        ).validate(decoded.claims)
    except (JoseError, ValueError, TypeError):
        return False
    return True


def parse(body: bytes, headers: Mapping[str, str]) -> list[WebhookEvent]:
    if CHANNEL_HEADER in headers:
        return _channel_notification(headers)
    envelope = strict_json.loads(body)
    message = envelope.get("message") if isinstance(envelope, dict) else None
    if not isinstance(message, dict):
        raise ValueError("a Pub/Sub push body is an object with a message")
    message_id = message.get("messageId") or message.get("message_id")
    published = message.get("publishTime") or message.get("publish_time")
    data = message.get("data")
    if not isinstance(message_id, str) or not message_id or not isinstance(published, str):
        raise ValueError("the Pub/Sub message has no messageId or publishTime")
    if not isinstance(data, str) or len(data) > MAX_DATA_CHARS:
        raise ValueError("the Pub/Sub message's data is missing or too long for a Gmail notification")
    try:
        notification: Any = strict_json.loads(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the Pub/Sub message's data is not base64 JSON") from exc
    address = notification.get("emailAddress") if isinstance(notification, dict) else None
    history_id = notification.get("historyId") if isinstance(notification, dict) else None
    if not isinstance(address, str) or "@" not in address or not str(history_id or "").isdigit():
        raise ValueError("a Gmail notification names an emailAddress and a numeric historyId")
    try:
        occurred = iso_utc(published)
    except ValueError as exc:
        raise ValueError(f"publishTime {published!r} is not a date-time") from exc
    return [
        WebhookEvent(
            event_id=message_id,
            event_type=EVENT_TYPE,
            entity="messages",
            external_id=None,
            external_tenant_id=address.lower(),
            occurred_at=occurred,
            data={"historyId": str(history_id)},
        )
    ]


def _channel_notification(headers: Mapping[str, str]) -> list[WebhookEvent]:
    """A Calendar channel's notification (https://developers.google.com/calendar/api/guides/push#receiving): the
    first, ``sync``, only says the channel is open; ``exists``/``not_exists`` say the calendar's events changed."""
    channel, state = headers.get(CHANNEL_HEADER, ""), headers.get("x-goog-resource-state", "")
    number = headers.get("x-goog-message-number", "")
    if not 0 < len(channel) <= 64 or not number.isdigit() or len(number) > 20:
        raise ValueError("a Calendar notification names its channel and message number")
    if state == "sync":
        return []
    if state not in ("exists", "not_exists"):
        raise ValueError(f"unknown X-Goog-Resource-State {state[:20]!r}")
    return [
        WebhookEvent(
            event_id=f"channel:{channel}:{number}",
            event_type=CALENDAR_EVENT_TYPE,
            entity="events",
            external_id=None,
            external_tenant_id=None,
            occurred_at=None,
            data={"channel": channel, "resource_state": state},
        )
    ]


WEBHOOKS = WebhookSpec(
    verify=verify,
    parse=parse,
    # Pub/Sub keeps retrying an unacknowledged message for up to 7 days.
    tolerance_s=7 * 86_400 + 3600.0,
    public_keys_url=CERTS_URL,
)
