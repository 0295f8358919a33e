"""Graph change notifications through webhooks for Outlook messages and events
(https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks, .../graph/api/resources/subscription).

A subscription names a resource (``me/messages``, ``me/mailFolders('inbox')/messages``, ``me/events``, or the same
under ``users/{id}``), change types, a notification URL and an expiry. Before it exists, each URL passes Graph's
validation handshake: ``POST {url}?validationToken=<URL-encoded token>`` answered within 10 s by 200, ``text/plain``
and the decoded token. Then every change of a subscribed message or event (the mailbox's and calendar's ``on_change``,
where every write ends) is POSTed as ``{"value": [changeNotification...]}`` by the kit's sender (retries, every
attempt kept); notifications queued together for one URL go in one POST, as Graph batches them. Lifecycle
notifications (``reauthorizationRequired``, ``subscriptionRemoved``, ``missed``) go to the lifecycle URL.

In a folder's subscription a move into the folder is ``created`` and one out of it ``deleted`` (the item joins or
leaves what is watched); in ``me/messages`` a move is ``updated``.

Deviations: ``http://`` is taken for loopback hosts (Graph wants https); no rich notifications
(``includeResourceData``); no automatic reauthorization challenges (tests send them, ``lifecycle``); while one is
unanswered notifications stop at once (Graph: "eventually") and changes meanwhile are lost, as Graph loses them.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from providers.microsoft365.sandbox.calendar import Event
from providers.microsoft365.sandbox.directory import User
from providers.microsoft365.sandbox.errors import GraphError
from providers.microsoft365.sandbox.identity import CALENDAR_SCOPES, MAIL_SCOPES
from providers.microsoft365.sandbox.ids import change_key
from providers.microsoft365.sandbox.mail import folder_of
from providers.microsoft365.sandbox.mailbox import Item, Mailbox
from providers.sandbox_kit.clock import Clock
from providers.sandbox_kit.webhooks import Subscription as Hook
from providers.sandbox_kit.webhooks import WebhookSender

Body = dict[str, Any]
# Outlook messages and events without resource data: 10,080 minutes in the docs, but live Graph refuses more than
# 10,070 ("Subscription expiration can only be 10070 minutes in the future."), and so does the sandbox.
MAX_MINUTES = 10_070
CHANGE_TYPES = frozenset({"created", "updated", "deleted"})
LIFECYCLE_EVENTS = frozenset({"reauthorizationRequired", "subscriptionRemoved", "missed"})
TLS_VERSIONS = frozenset({"v1_0", "v1_1", "v1_2", "v1_3"})
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_OWNER = r"(?:me|users/(?P<user>[^/()']+)|users\('(?P<quoted>[^']+)'\))"
_RESOURCE = re.compile(
    rf"/?{_OWNER}/(?:(?P<events>events)|(?:mailfolders(?:\('(?P<folder>[^']+)'\)|/(?P<path>[^/()']+))/)?messages)",
    re.IGNORECASE,
)
VALIDATION_FAILED = GraphError(400, "InvalidRequest", "Subscription validation request failed. Notification endpoint "
                               "must respond with 200 OK to validation request.")  # fmt: skip
UNREADABLE = GraphError(400, "InvalidRequest", "Could not process subscription creation payload. Are all property "
                        "names spelled and camelCased properly?")  # fmt: skip
NO_EXPIRY = GraphError(400, "InvalidRequest", "expirationDateTime is a required property for subscription creation")
TOO_LATE = GraphError(400, "ExtensionError", f"Subscription expiration can only be {MAX_MINUTES} minutes in the "
                      "future.")  # fmt: skip
# Not verified against live Graph: the sandbox's best guess at the code and words (statuses as the docs imply).
PAST = GraphError(400, "ExtensionError", "Subscription expiration date time must be in the future.")
NOT_FOUND = GraphError(404, "ResourceNotFound", "The object was not found.")
DENIED = GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
FORBIDDEN = GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")


def _invalid(message: str) -> GraphError:
    return GraphError(400, "InvalidRequest", message)


def iso(moment: datetime) -> str:
    """Graph's DateTimeOffset as it echoes expirations: seven fractional digits, UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


@dataclass(frozen=True)
class Target:
    kind: str  # "messages" or "events"
    folder: str | None  # a well-known folder name; None: every message of the mailbox


@dataclass
class GraphSubscription:
    id: str
    app_id: str
    user: str  # the owner's key in the sandbox's users (lower-case mail)
    creator_id: str  # the owner's object id
    tenant_id: str
    resource: str  # as sent
    target: Target
    change_type: str  # as sent
    notification_url: str
    lifecycle_url: str | None
    client_state: str | None
    expires: datetime
    tls: str
    immutable: bool  # created with Prefer: IdType="ImmutableId": notifications name messages by immutable ids
    reauthorization_required: bool = False
    notified: int = 0  # change notifications queued

    @property
    def change_types(self) -> frozenset[str]:
        return frozenset(self.change_type.split(","))

    def body(self) -> Body:
        return {
            "id": self.id, "resource": self.resource, "applicationId": self.app_id, "changeType": self.change_type,
            "clientState": self.client_state, "notificationUrl": self.notification_url,
            "notificationQueryOptions": None, "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": iso(self.expires), "creatorId": self.creator_id, "includeResourceData": False,
            "latestSupportedTlsVersion": self.tls, "encryptionCertificate": None, "encryptionCertificateId": None,
            "notificationUrlAppId": None, "notificationContentType": "application/json",
        }  # fmt: skip


@dataclass(frozen=True)
class Validation:
    """A validation handshake as sent and answered (status None: no answer in time)."""

    url: str
    token: str
    status: int | None
    content_type: str
    text: str
    seconds: float

    @property
    def passed(self) -> bool:
        return self.status == 200 and self.content_type.startswith("text/plain") and self.text == self.token


@dataclass
class Subscriptions:
    """Every app's subscriptions, the handshakes made, and the sender (one kit hook per URL, so notifications for
    several subscriptions to one URL share a POST). Callers hold the sandbox's lock, except around ``validate``."""

    clock: Clock
    validation_timeout_s: float = 10.0
    live: dict[str, GraphSubscription] = field(default_factory=dict)
    validations: list[Validation] = field(default_factory=list)
    sender: WebhookSender = field(init=False)
    _hooks: dict[str, Hook] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Graph waits 3 s for an answer before it counts a delivery failed and retries it.
        self.sender = WebhookSender(sign=lambda _body, _key: {}, payload=lambda events, _f, _l: {"value": events},
                                    timeout_s=3.0, name="sandbox-graph-notifications")  # fmt: skip

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # --- the API ----------------------------------------------------------------------------------------------

    def draft(self, owner: User, key: str, box: Mailbox | None, app_id: str, scopes: frozenset[str], body: Any,
              immutable: bool) -> GraphSubscription:  # fmt: skip
        """A subscription as asked for (not yet validated nor kept), or the GraphError refusing it."""
        if not isinstance(body, dict):
            raise UNREADABLE
        resource, change_type = body.get("resource"), body.get("changeType")
        url, lifecycle = body.get("notificationUrl"), body.get("lifecycleNotificationUrl")
        state = body.get("clientState")
        if not isinstance(change_type, str) or not change_type:
            raise _invalid("changeType is a required property for subscription creation.")
        if not {c.strip() for c in change_type.split(",")} <= CHANGE_TYPES:
            raise _invalid(f"'{change_type}' is not a valid change type. Valid values: created, updated, deleted.")
        if not isinstance(url, str) or not url:
            raise _invalid("notificationUrl is a required property for subscription creation.")
        for address in (url, lifecycle) if lifecycle is not None else (url,):
            _check_url(address)
        if state is not None and (not isinstance(state, str) or len(state) > 128):
            raise _invalid("clientState must be a string of at most 128 characters.")
        if body.get("includeResourceData"):
            raise _invalid("Rich notifications (includeResourceData) are not served by this sandbox.")
        tls = body.get("latestSupportedTlsVersion") or "v1_2"
        if tls not in TLS_VERSIONS:
            raise _invalid(f"'{tls}' is not a valid latestSupportedTlsVersion.")
        if not isinstance(resource, str):
            raise _invalid("resource is a required property for subscription creation.")
        target = self._target(owner, box, resource)
        needed = MAIL_SCOPES if target.kind == "messages" else CALENDAR_SCOPES
        if not scopes & needed:
            raise FORBIDDEN
        return GraphSubscription(
            str(uuid.uuid4()), app_id, key, owner.id, owner.tenant_id, resource, target,
            ",".join(c.strip() for c in change_type.split(",")), url, lifecycle, state,
            self._expiry(body.get("expirationDateTime")), str(tls), immutable,
        )  # fmt: skip

    async def validate(self, url: str) -> None:
        """Graph's handshake with ``url`` (not under the sandbox's lock: it waits up to 10 s on the subscriber)."""
        token = f"Validation: Testing client application reachability for subscription Request-Id: {uuid.uuid4()}"
        target = f"{url}{'&' if '?' in url else '?'}{urlencode({'validationToken': token})}"
        started, status, content_type, text = time.monotonic(), None, "", ""
        try:
            async with httpx.AsyncClient() as http:
                request = http.post(target, headers={"Content-Type": "text/plain; charset=utf-8"})
                answer = await asyncio.wait_for(request, self.validation_timeout_s)
            status, content_type, text = answer.status_code, answer.headers.get("content-type", ""), answer.text
        except (httpx.HTTPError, TimeoutError):
            pass  # no answer in time: refused like a wrong one
        done = Validation(url, token, status, content_type, text, time.monotonic() - started)
        self.validations.append(done)
        if not done.passed:
            raise VALIDATION_FAILED

    def add(self, subscription: GraphSubscription) -> GraphSubscription:
        for url in (subscription.notification_url, subscription.lifecycle_url):
            if url is not None and url not in self._hooks:
                self._hooks[url] = self.sender.subscribe(url, "", tenants=[url])
        self.live[subscription.id] = subscription
        return subscription

    def find(self, app_id: str, user: str, subscription_id: str) -> GraphSubscription:
        """The caller's live subscription: another app's or user's, or an expired one, is not found."""
        found = self.live.get(subscription_id.lower())
        if found is None or found.app_id != app_id or found.user != user or found.expires <= self.now():
            raise NOT_FOUND
        return found

    def mine(self, app_id: str, user: str) -> list[GraphSubscription]:
        now = self.now()
        return [s for s in self.live.values() if s.app_id == app_id and s.user == user and s.expires > now]

    def renew(self, subscription: GraphSubscription, body: Any) -> None:
        """PATCH: a new expiry, which also reauthorizes (the docs: renewing reauthorizes the subscription)."""
        if not isinstance(body, dict):
            raise UNREADABLE
        subscription.expires = self._expiry(body.get("expirationDateTime"))
        subscription.reauthorization_required = False

    def delete(self, subscription: GraphSubscription) -> None:
        self.live.pop(subscription.id, None)

    # --- notifications ------------------------------------------------------------------------------------------

    def message_changed(self, key: str, box: Mailbox, item: Item, was: str | None, now: str | None) -> None:
        for subscription in self._watching(key, "messages"):
            folder = subscription.target.folder
            if folder is None:
                change = "created" if was is None else "deleted" if now is None else "updated"
            elif folder not in (was, now):
                continue
            else:
                change = "updated" if was == now else "created" if now == folder else "deleted"
            message_id = box.ids.message(item.seq, item.moves, immutable=subscription.immutable)
            etag = change_key("message", item.seq, item.version)
            self._notify(subscription, change, "Messages", "#Microsoft.Graph.Message", message_id, etag)

    def event_changed(self, key: str, event_id: str, event: Event) -> None:
        change = "deleted" if event.deleted else "created" if event.version == 1 else "updated"
        for subscription in self._watching(key, "events"):
            etag = change_key("event", event.seq, event.version)
            self._notify(subscription, change, "Events", "#Microsoft.Graph.Event", event_id, etag)

    def lifecycle(self, subscription: GraphSubscription, event: str) -> None:
        if event not in LIFECYCLE_EVENTS:
            raise ValueError(f"unknown lifecycle event {event!r}: one of {sorted(LIFECYCLE_EVENTS)}")
        if event == "reauthorizationRequired":
            subscription.reauthorization_required = True
        if subscription.lifecycle_url is None:
            return  # Graph sends lifecycle notifications only to subscriptions created with the URL
        self.sender.publish(subscription.lifecycle_url, {
            "subscriptionId": subscription.id, "subscriptionExpirationDateTime": iso(subscription.expires),
            "tenantId": subscription.tenant_id, "clientState": subscription.client_state, "lifecycleEvent": event,
        })  # fmt: skip

    def close(self) -> None:
        self.sender.close()

    def _watching(self, key: str, kind: str) -> list[GraphSubscription]:
        now = self.now()
        return [s for s in self.live.values() if s.user == key and s.target.kind == kind and s.expires > now
                and not s.reauthorization_required]  # fmt: skip

    def _notify(self, subscription: GraphSubscription, change: str, kind: str, odata_type: str, item_id: str,
                etag: str) -> None:  # fmt: skip
        if change not in subscription.change_types:
            return
        path = f"Users/{subscription.creator_id}/{kind}/{item_id}"
        subscription.notified += 1
        self.sender.publish(subscription.notification_url, {
            "id": secrets.token_urlsafe(9), "subscriptionId": subscription.id,
            "subscriptionExpirationDateTime": iso(subscription.expires), "changeType": change, "resource": path,
            "resourceData": {"@odata.type": odata_type, "@odata.id": path, "@odata.etag": f'W/"{etag}"',
                             "id": item_id},
            "clientState": subscription.client_state, "tenantId": subscription.tenant_id,
        })  # fmt: skip

    def _target(self, owner: User, box: Mailbox | None, resource: str) -> Target:
        found = _RESOURCE.fullmatch(resource.strip())
        if found is None:
            raise _invalid(f"Invalid resource '{resource}': this sandbox serves Outlook messages and events.")
        named = found.group("user") or found.group("quoted")
        # Delegated permissions reach only the signed-in user's mailbox (docs: outlook subscription notes).
        if named is not None and named.lower() not in {owner.id, owner.user_principal_name.lower(),
                                                       (owner.mail or "").lower()}:  # fmt: skip
            raise DENIED
        if found.group("events"):
            return Target("events", None)
        folder = found.group("folder") or found.group("path")
        if folder is None:
            return Target("messages", None)
        if box is None:
            raise NOT_FOUND
        return Target("messages", folder_of(box, folder))

    def _expiry(self, value: Any) -> datetime:
        if value is None:
            raise NO_EXPIRY
        try:
            asked = datetime.fromisoformat(str(value))
        except ValueError:
            raise UNREADABLE from None
        asked = asked if asked.tzinfo else asked.replace(tzinfo=UTC)
        now = self.now()
        if asked <= now:
            raise PAST
        if asked > now + timedelta(minutes=MAX_MINUTES):
            raise TOO_LATE
        return asked.astimezone(UTC)


def _check_url(url: Any) -> None:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or not parts.hostname:
        raise _invalid(f"Invalid notification url '{url}'.")
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in LOOPBACK):
        raise _invalid(f"Invalid notification url '{url}': it must use the HTTPS protocol.")
