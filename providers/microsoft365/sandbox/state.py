"""The Microsoft 365 sandbox's state: its directory (organisations, users and their mailboxes and calendars), the
identity platform's apps, grants and tokens, call stats and the knobs; and the control API tests drive it with."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parseaddr

from providers.microsoft365.sandbox.calendar import Calendar, Event
from providers.microsoft365.sandbox.delta import Tokens
from providers.microsoft365.sandbox.directory import Organisation, User
from providers.microsoft365.sandbox.identity import GRAPH_SCOPES, AdminConsent, MicrosoftIdentity
from providers.microsoft365.sandbox.mailbox import FOLDERS, Content, Item, Mailbox
from providers.microsoft365.sandbox.subscriptions import GraphSubscription, Subscriptions
from providers.microsoft365.sandbox_credentials import (
    DEMO_APP_NAME,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_DISPLAY_NAME,
    DEMO_MAILBOX,
    DEMO_TENANT_DOMAIN,
    DEMO_TENANT_ID,
    DEMO_USER_PRINCIPAL_NAME,
)
from providers.sandbox_kit.clock import DAY_S, MINUTE_S
from providers.sandbox_kit.data import enquiry
from providers.sandbox_kit.faults import FaultKnobs
from providers.sandbox_kit.metering import CallStats, Quota, RateLimits, RateMeter
from providers.sandbox_kit.webhooks import Answer
from providers.sandbox_kit.wire import run_to_end


@dataclass
class MicrosoftKnobs(FaultKnobs):
    """The kit's knobs; Outlook's per-mailbox limits (10,000 requests in 10 minutes, 4 in flight); and an
    organisation whose administrator has not consented to the app: its users are sent back from sign-in with
    AADSTS65001 (``"redirect"``), or the token endpoint refuses code exchanges and refreshes with it (``"token"``,
    as once an administrator withdraws the app's permissions)."""

    admin_consent_required: AdminConsent = None
    enforce_limits: bool = True
    mailbox_requests_per_10_minutes: int = 10_000
    mailbox_concurrency: int = 4

    def mailbox_limits(self) -> RateLimits:
        quota = Quota("MailboxConcurrency", self.mailbox_requests_per_10_minutes, 10 * MINUTE_S)
        return RateLimits((quota,), self.mailbox_concurrency, self.enforce_limits)


class MicrosoftSandbox:
    """Organisations and users with their mailboxes and calendars, the identity platform; thread-safe (one lock).
    Reachable as ``app.state.microsoft365``; ``users`` by lower-case mail and user principal name.

    The control API (what the platform's generic flow tests call) names mailboxes by address and records by the
    immutable ids a pull lands. ``messages`` are those of Inbox and Sent Items (the platform's folders)."""

    def __init__(self, *, seed: int = 42, clock: Callable[[], float] = time.time) -> None:
        self.seed, self.clock, self.lock = seed, clock, threading.RLock()
        self.stats, self.meter = CallStats(), RateMeter()
        self.organisations: dict[str, Organisation] = {}
        self.users: dict[str, User] = {}
        self.mailboxes: dict[str, Mailbox] = {}  # by the user's key in ``users``
        self.calendars: dict[str, Calendar] = {}
        self.tokens = Tokens()
        self.notifications = Subscriptions(clock)  # Graph's change notification subscriptions
        self.admin_consent: Callable[[], AdminConsent] = lambda: None  # the app's knob, set by create_app
        self._domains: dict[str, str] = {}
        self.oauth = MicrosoftIdentity(clock, self.stats, self.users, self._domains, lambda: self.admin_consent())
        self.oauth.register(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, None, DEMO_APP_NAME)

    def add_organisation(self, tenant_id: str, domain: str) -> Organisation:
        with self.lock:
            organisation = Organisation(tenant_id.lower(), domain.lower())
            self.organisations[organisation.id] = organisation
            self._domains[organisation.id] = organisation.domain
            return organisation

    def add_user(
        self,
        mail: str | None,
        display_name: str,
        *,
        tenant_id: str = DEMO_TENANT_ID,
        user_principal_name: str | None = None,
    ) -> User:
        """A user of organisation ``tenant_id`` (added first if need be) whose object id follows from the seed."""
        with self.lock:
            if tenant_id.lower() not in self.organisations:
                self.add_organisation(tenant_id, f"{tenant_id[:8]}.onmicrosoft.com")
            organisation = self.organisations[tenant_id.lower()]
            local = (mail or display_name.replace(" ", ".")).split("@")[0].lower()
            upn = user_principal_name or f"{local}@{organisation.domain}"
            object_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox-{self.seed}:{organisation.id}:{upn.lower()}"))
            user = User(object_id, display_name, mail, upn, organisation.id)
            for key in {upn.lower(), (mail or upn).lower()}:
                self.users[key] = user
            return user

    def add_mailbox(
        self, address: str, *, messages: int = 120, days: float = 20.0, events: int = 12, name: str | None = None
    ) -> str:
        """``address``'s mailbox (its user added first if need be): ``messages`` seeded over the last ``days`` and
        ``events`` meetings around today in the primary calendar. Returns the mailbox's key (lower case)."""
        with self.lock:
            key = address.lower()
            if key not in self.users:
                self.add_user(address, name or " ".join(p.title() for p in address.split("@")[0].split(".")))
            user = self.users[key]
            now_ms = int(self.clock() * 1000)
            spacing = max(1, int(days * DAY_S * 1000 / max(messages, 1)))
            box = Mailbox(key, user.display_name, self.seed, messages, now_ms - spacing, spacing)
            self.mailboxes[key] = box
            calendar = self.calendars[key] = Calendar((user.display_name, user.mail or user.user_principal_name),
                                                      box.ids)  # fmt: skip
            calendar.seed(events, self.seed, now_ms)
            box.on_change = lambda item, was, now: self.notifications.message_changed(key, box, item, was, now)
            calendar.on_change = lambda event: self.notifications.event_changed(key, box.ids.event(event.seq), event)
            return key

    def mailbox(self, address: str) -> Mailbox:
        try:
            return self.mailboxes[address.lower()]
        except KeyError:
            raise KeyError(f"no mailbox {address!r}") from None

    def issue_access_token(self, address: str = DEMO_MAILBOX, *, scopes: tuple[str, ...] | None = None) -> str:
        """An access token of the demo app for ``address`` (tests skip the OAuth dance); default: every scope."""
        with self.lock:
            return self.oauth.mint(DEMO_CLIENT_ID, address.lower(), scopes or tuple(sorted(GRAPH_SCOPES)), 3600)

    # --- the control API --------------------------------------------------------------------------------------

    def _pulled(self, box: Mailbox) -> list[int]:
        """The seqs of the messages a pull lands, oldest first."""
        return sorted(seq for folder in ("inbox", "sentitems") for _, seq in box.listing(folder))

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def count(self, address: str, entity: str) -> int:
        """What a pull of ``entity`` holds: Inbox and Sent Items' messages, or the calendar's live events."""
        with self.lock:
            if entity == "messages":
                return len(self._pulled(self.mailbox(address)))
            if entity == "events":
                return len(self.calendars[address.lower()].live())
        raise ValueError(f"unknown entity {entity!r}: messages or events")

    def touch(self, address: str, entity: str, n: int) -> list[str]:
        """Change ``n`` records now, oldest first (messages: read flipped; events: retitled); their ids."""
        with self.lock:
            if entity == "messages":
                box = self.mailbox(address)
                ids = []
                for seq in self._pulled(box)[:n]:
                    item = box.item(seq)
                    assert item is not None
                    box.update(seq, self._now_ms(), is_read=not item.is_read)
                    ids.append(box.ids.message(seq, 0, immutable=True))
                return ids
            if entity == "events":
                calendar = self.calendars[address.lower()]
                chosen = calendar.live()[:n]
                for event in chosen:
                    event.subject = f"{event.subject} (updated)"
                    calendar.changed(event, self._now_ms())
                return [calendar.ids.event(event.seq) for event in chosen]
        raise ValueError(f"unknown entity {entity!r}: messages or events")

    def create(self, address: str, entity: str, n: int = 1) -> list[str]:
        """``n`` new records now (messages delivered to the inbox from new senders; meetings two days ahead)."""
        if entity == "messages":
            return [self.deliver(address, **enquiry(k)) for k in range(n)]
        if entity == "events":
            with self.lock:
                calendar, now_ms = self.calendars[address.lower()], self._now_ms()
                start = now_ms + 2 * int(DAY_S * 1000)
                made = [calendar.add(Event(len(calendar.events) + 1, f"New meeting {k}", start + k * 3_600_000,
                                           start + k * 3_600_000 + 1_800_000, False, "Video call", True, (),
                                           now_ms, now_ms))
                        for k in range(n)]  # fmt: skip
                return [calendar.ids.event(event.seq) for event in made]
        raise ValueError(f"unknown entity {entity!r}: messages or events")

    def deliver(self, address: str, *, sender: str, subject: str, text: str, to: str | None = None) -> str:
        """A message arriving in ``address``'s inbox now (``sender``: ``Name <address>`` or an address); its id."""
        with self.lock:
            box = self.mailbox(address)
            name, from_address = parseaddr(sender)
            to_name, to_address = parseaddr(to or f"{box.owner} <{address}>")
            seq = box.next_seq
            content = Content(subject, text, (name or from_address, from_address), ((to_name, to_address),), (), 0,
                              0, box.message_id(seq), (), 0, False)  # fmt: skip
            return box.ids.message(box.deliver(content, "inbox", self._now_ms()).seq, 0, immutable=True)

    def _item(self, box: Mailbox, message_id: str) -> Item:
        found = box.ids.message_seq(message_id)
        item = box.item(found[0]) if found is not None else None
        if item is None:
            raise KeyError(message_id)
        return item

    def delete_message(self, address: str, message_id: str) -> None:
        with self.lock:
            box = self.mailbox(address)
            box.delete(self._item(box, message_id).seq)

    def move_message(self, address: str, message_id: str, folder: str) -> str:
        """Move a message to a well-known folder; its id (immutable: the same as before)."""
        if folder.lower() not in FOLDERS:
            raise ValueError(f"unknown folder {folder!r}: one of {sorted(FOLDERS)}")
        with self.lock:
            box = self.mailbox(address)
            seq = box.move(self._item(box, message_id).seq, folder.lower(), self._now_ms()).seq
            return box.ids.message(seq, 0, immutable=True)

    def delete_event(self, address: str, event_id: str) -> None:
        with self.lock:
            calendar = self.calendars[address.lower()]
            event = calendar.find(event_id)
            event.deleted = True
            calendar.changed(event, self._now_ms())

    # --- change notification subscriptions (POST /v1.0/subscriptions) ------------------------------------------

    def subscribe(self, address: str, url: str, client_state: str, resource: str = "me/messages") -> str:
        """What the demo app's ``POST /v1.0/subscriptions`` does for ``address`` (the handshake with ``url``
        included, so it must answer it), without the HTTP call; the subscription's id."""
        body = {"changeType": "created,updated,deleted", "notificationUrl": url, "resource": resource,
                "clientState": client_state,
                "expirationDateTime": (self.notifications.now() + timedelta(days=2)).isoformat()}  # fmt: skip
        key = address.lower()
        scopes = frozenset({"mail.read", "calendars.read"})
        with self.lock:
            draft = self.notifications.draft(self.users[key], key, self.mailboxes.get(key), DEMO_CLIENT_ID, scopes,
                                             body, True)  # fmt: skip
        run_to_end(self.notifications.validate(url))
        with self.lock:
            return self.notifications.add(draft).id

    def subscriptions(self, address: str) -> list[dict[str, object]]:
        """``address``'s live subscriptions as Graph answers them, plus ``reauthorizationRequired``."""
        with self.lock:
            mine = [s for s in self.notifications.live.values() if s.user == address.lower()
                    and s.expires > self.notifications.now()]  # fmt: skip
            return [s.body() | {"reauthorizationRequired": s.reauthorization_required} for s in mine]

    @property
    def deliveries(self) -> list[Answer]:
        """Every notification POST attempt so far (change and lifecycle), oldest first, with the answer to it."""
        return list(self.notifications.sender.stats.answers)

    def _subscription(self, subscription_id: str) -> GraphSubscription:
        try:
            return self.notifications.live[subscription_id]
        except KeyError:
            raise KeyError(f"no subscription {subscription_id!r}") from None

    def lifecycle(self, subscription_id: str, event: str) -> None:
        """A lifecycle notification (``reauthorizationRequired`` also pauses notifications until renewed)."""
        with self.lock:
            self.notifications.lifecycle(self._subscription(subscription_id), event)

    def remove_subscription(self, subscription_id: str) -> None:
        """Graph removes the subscription, and says so (``subscriptionRemoved``)."""
        with self.lock:
            subscription = self._subscription(subscription_id)
            self.notifications.lifecycle(subscription, "subscriptionRemoved")
            self.notifications.delete(subscription)

    def expire_subscription(self, subscription_id: str) -> None:
        """The subscription's expiry is now: it notifies nothing more and is not found."""
        with self.lock:
            self._subscription(subscription_id).expires = self.notifications.now()

    def expire_delta(self, address: str) -> None:
        """Every delta token given so far for ``address`` (mail and calendar) is void: 410 syncStateNotFound."""
        with self.lock:
            self.mailbox(address).epoch += 1
            self.calendars[address.lower()].epoch += 1


def demo_sandbox(seed: int = 42, clock: Callable[[], float] = time.time) -> MicrosoftSandbox:
    """The demo organisation and its user Jordan Lee, whose mailbox the demo app connects."""
    sandbox = MicrosoftSandbox(seed=seed, clock=clock)
    sandbox.add_organisation(DEMO_TENANT_ID, DEMO_TENANT_DOMAIN)
    sandbox.add_user(DEMO_MAILBOX, DEMO_DISPLAY_NAME, user_principal_name=DEMO_USER_PRINCIPAL_NAME)
    sandbox.add_mailbox(DEMO_MAILBOX)  # 120 messages over 20 days: inside the platform's 30-day first sync
    return sandbox
