"""Cloud Pub/Sub as Gmail's notifications reach an endpoint (https://cloud.google.com/pubsub/docs/push): topics that
``users.watch`` names, push subscriptions (endpoint, OIDC token audience and service account), and one push per
published message, each with a fresh OIDC token signed by the sandbox's key (served at /oauth2/v3/certs), retried
with backoff until the endpoint answers 2xx (Pub/Sub's success codes are 102, 200, 201, 202 and 204).
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from providers.sandbox_kit.webhooks import WebhookSender

SUBSCRIPTION = re.compile(r"projects/[a-z][-a-z0-9]{4,28}[a-z0-9]/subscriptions/[A-Za-z][\w.~+%-]{2,254}")
TOPIC = re.compile(r"projects/[a-z][-a-z0-9]{4,28}[a-z0-9]/topics/[\w.~+%-]{3,255}")


@dataclass
class PushSubscription:
    name: str
    topic: str
    endpoint: str
    audience: str
    service_account: str
    sender: WebhookSender

    def resource(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "topic": self.topic,
            "pushConfig": {
                "pushEndpoint": self.endpoint,
                "oidcToken": {"serviceAccountEmail": self.service_account, "audience": self.audience},
            },
            "ackDeadlineSeconds": 10,
            "state": "ACTIVE",
        }


class PubSub:
    """Push subscriptions by name; ``publish`` only queues (each subscription's sender thread delivers)."""

    def __init__(self, token: Callable[[str, str], str], clock: Callable[[], float]) -> None:
        self._token, self._clock = token, clock
        self.subscriptions: dict[str, PushSubscription] = {}
        self._next_id = 1_000_000_000_000
        self._lock = threading.Lock()

    def subscribe(self, name: str, topic: str, endpoint: str, *, audience: str, service_account: str) -> dict[str, Any]:
        if not SUBSCRIPTION.fullmatch(name) or not TOPIC.fullmatch(topic):
            raise ValueError("names are projects/P/subscriptions/S and projects/P/topics/T")
        if not endpoint.startswith(("https://", "http://")):
            raise ValueError("pushEndpoint is an http(s) URL")

        def sign(body: bytes, _secret: str) -> dict[str, str]:
            return {"authorization": f"Bearer {self._token(audience, service_account)}"}

        def payload(events: list[Any], _first: int, _last: int) -> Any:
            (message,) = events  # one message per push
            return {"message": message, "subscription": name}

        sender = WebhookSender(
            sign=sign, payload=payload, max_batch=1, name=f"sandbox-pubsub-{name.rsplit('/', 1)[-1]}"
        )
        sender.subscribe(endpoint, name)
        subscription = PushSubscription(name, topic, endpoint, audience, service_account, sender)
        with self._lock:
            previous = self.subscriptions.pop(name, None)
            self.subscriptions[name] = subscription
        if previous is not None:
            previous.sender.close()
        return subscription.resource()

    def unsubscribe(self, name: str) -> bool:
        with self._lock:
            subscription = self.subscriptions.pop(name, None)
        if subscription is not None:
            subscription.sender.close()
        return subscription is not None

    def publish(self, topic: str, data: dict[str, Any]) -> str:
        """Queue ``data`` (JSON) to every push subscription of ``topic``; the message id."""
        with self._lock:
            self._next_id += 1
            message_id = str(self._next_id)
            targets = [s for s in self.subscriptions.values() if s.topic == topic]
        published = datetime.fromtimestamp(self._clock(), UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        encoded = base64.b64encode(json.dumps(data, separators=(",", ":")).encode()).decode()
        message = {"attributes": {}, "data": encoded, "messageId": message_id, "message_id": message_id,
                   "publishTime": published, "publish_time": published}  # fmt: skip
        for subscription in targets:
            subscription.sender.publish(topic, message)
        return message_id

    def flush(self, timeout_s: float = 10.0) -> bool:
        return all(s.sender.flush(timeout_s) for s in list(self.subscriptions.values()))

    def delivered(self) -> int:
        return sum(s.sender.stats.delivered for s in list(self.subscriptions.values()))

    def close(self) -> None:
        for subscription in list(self.subscriptions.values()):
            subscription.sender.close()
