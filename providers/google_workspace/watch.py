"""Keeping a mailbox's push notifications on (https://developers.google.com/gmail/api/guides/push): ``users.watch``
names the platform app's Pub/Sub topic (``VRTX_OAUTH_CLIENTS.google_workspace.pubsub_topic``) and the synced
labels, and lasts 7 days; Google asks for it to be renewed daily. Calling it again renews it (one watch per user
and topic). ``users.stop`` ends it, on the disconnect of the last connection to the mailbox.

Two tenants may connect the same Google account: with one OAuth client that is one grant at Google (revoking
either token revokes both) and one watch, so the mailbox is what a disconnect must find held elsewhere before it
revokes or stops anything.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from providers.base import Holdings, ProviderConnection, RevocationSpec, WatchSpec
from providers.errors import ProviderError
from providers.google_workspace.client import GoogleClient

JSON_HEADERS = {"Content-Type": "application/json"}


def start(connection: ProviderConnection, app: Mapping[str, str]) -> datetime | None:
    topic = app.get("pubsub_topic")
    if not topic:
        return None
    client = GoogleClient.for_connection(connection)
    labels = [str(label) for label in connection.settings.get("mailbox_labels") or ("INBOX", "SENT")]
    body = {"topicName": topic, "labelIds": labels, "labelFilterBehavior": "include"}
    # Renewing is idempotent: retried like a read.
    answer = client.send("POST", "watch", headers=JSON_HEADERS, content=json.dumps(body).encode(), read_only=True)
    try:
        expiration: Any = json.loads(answer.content).get("expiration")
        return datetime.fromtimestamp(int(expiration) / 1000, UTC)
    except (ValueError, TypeError, AttributeError):
        raise ProviderError("Google answered users.watch without an expiration.", status=answer.status_code) from None


def held(_tokens: Mapping[str, Any], meta: Mapping[str, Any]) -> Holdings:
    mailbox = meta.get("external_account_id")
    if not mailbox:
        return Holdings()
    return Holdings(grant=f"mailbox:{mailbox}", links=(f"watch:{mailbox}",))


def unlink(connection: ProviderConnection, link: str) -> None:
    if link.startswith("watch:"):
        GoogleClient.for_connection(connection).send("POST", "stop", headers=JSON_HEADERS, content=b"{}")


WATCHES = WatchSpec(start=start, renew_within_s=6 * 86_400.0)
REVOCATION = RevocationSpec(held=held, unlink=unlink)
