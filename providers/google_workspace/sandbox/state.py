"""The Google sandbox's state: mailboxes and calendars by user, the OAuth server, quotas, the signing key whose
public half /oauth2/v3/certs serves, and the knobs."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from providers.google_workspace.sandbox.calendar import Calendar, insert_event, seed_events
from providers.google_workspace.sandbox.calendar import store as calendar_store
from providers.google_workspace.sandbox.channels import Channels
from providers.google_workspace.sandbox.identity import GoogleIdentity
from providers.google_workspace.sandbox.mailbox import Change, Mailbox
from providers.google_workspace.sandbox.pubsub import PubSub
from providers.google_workspace.sandbox_credentials import (
    DEMO_APP_NAME,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_MAILBOX,
    DEMO_PUSH_AUDIENCE,
    DEMO_PUSH_SERVICE_ACCOUNT,
    DEMO_SUBSCRIPTION,
    DEMO_TOPIC,
)
from providers.sandbox_kit.clock import MINUTE_S
from providers.sandbox_kit.data import enquiry
from providers.sandbox_kit.faults import FaultKnobs
from providers.sandbox_kit.metering import CallStats, Quota, RateLimits, RateMeter

DAY_MS = 86_400_000


@dataclass
class GoogleKnobs(FaultKnobs):
    """The kit's knobs and Google's per-user quotas: Gmail in quota units a minute (15,000 per user; a project
    created from May 2026 gets 6,000), Calendar in queries a minute."""

    enforce_quotas: bool = True
    gmail_units_per_minute: int = 15_000
    calendar_queries_per_minute: int = 600
    quota_status: int = 429  # Google answers 429, or 403 with reason userRateLimitExceeded

    def gmail_limits(self) -> RateLimits:
        return RateLimits((Quota("userRateLimitExceeded", self.gmail_units_per_minute, MINUTE_S),), None,
                          self.enforce_quotas)  # fmt: skip

    def calendar_limits(self) -> RateLimits:
        return RateLimits((Quota("rateLimitExceeded", self.calendar_queries_per_minute, MINUTE_S),), None,
                          self.enforce_quotas)  # fmt: skip


class GoogleSandbox:
    """Every user's mailbox and calendars, the apps, grants and tokens; thread-safe (one lock). Reachable as
    ``app.state.google_workspace``; ``tenants`` are the mailboxes by (lower-case) address. (Not the kit's ``Sandbox``: a
    mailbox is no table store.)"""

    def __init__(self, *, seed: int = 42, clock: Callable[[], float] = time.time) -> None:
        self.seed, self.clock, self.lock = seed, clock, threading.RLock()
        self.stats, self.meter = CallStats(), RateMeter()
        self.tenants: dict[str, Mailbox] = {}
        self.calendars: dict[str, dict[str, Calendar]] = {}
        self.oauth = GoogleIdentity(clock, self.stats, lambda: set(self.tenants))
        self.oauth.register(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, None, DEMO_APP_NAME)
        self.signing_key = RSAKey.generate_key(
            2048, parameters={"kid": f"sandbox-{seed}", "use": "sig", "alg": "RS256"}
        )
        self.retired_keys: list[RSAKey] = []
        self.certs_served = 0
        self.channels = Channels()
        self.pubsub = PubSub(lambda audience, email: self.push_token(audience, email=email), clock)

    def add_mailbox(
        self, address: str = DEMO_MAILBOX, *, messages: int = 120, days: float = 60.0, events: int = 12
    ) -> str:
        """A user with ``messages`` seeded messages spread over the last ``days`` and a primary calendar of
        ``events`` meetings around today. Returns the address (lower case)."""
        key = address.lower()
        now_ms = int(self.clock() * 1000)
        spacing = max(1, int(days * DAY_MS / max(messages, 1)))
        with self.lock:
            self.tenants[key] = Mailbox(key, self.seed, messages, now_ms - spacing, spacing, on_change=self._notify)
            primary = Calendar(key, key)
            seed_events(primary, self.seed, events, self.clock())
            primary.on_change = lambda cal: self.channels.changed(cal, int(self.clock() * 1000))
            self.calendars[key] = {key: primary}
        return key

    def mailbox(self, address: str) -> Mailbox:
        try:
            return self.tenants[address.lower()]
        except KeyError:
            raise KeyError(f"unknown mailbox {address!r}") from None

    def calendar(self, address: str, calendar_id: str = "primary") -> Calendar:
        calendars = self.calendars[address.lower()]
        return calendars[address.lower() if calendar_id == "primary" else calendar_id]

    def issue_access_token(self, address: str = DEMO_MAILBOX, *, scopes: tuple[str, ...] | None = None) -> str:
        """An access token of the demo app for ``address`` (tests skip the OAuth dance)."""
        from providers.google_workspace.sandbox.identity import SCOPES

        with self.lock:
            return self.oauth.mint(DEMO_CLIENT_ID, address.lower(), tuple(scopes or sorted(SCOPES)), 3599)

    # --- data helpers for tests -----------------------------------------------------------------------------

    def deliver(self, address: str, *, sender: str, subject: str, text: str, to: str | None = None) -> str:
        """A message arriving in ``address``'s inbox now. Returns its id."""
        from datetime import UTC, datetime
        from email.message import EmailMessage
        from email.utils import format_datetime, make_msgid

        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = sender, to or address, subject
        mail["Date"] = format_datetime(datetime.fromtimestamp(self.clock(), UTC))
        mail["Message-ID"] = make_msgid(domain="sandbox.vrtx-demo.example")
        mail.set_content(text)
        with self.lock:
            return self.mailbox(address).add(bytes(mail), {"INBOX", "UNREAD"}, int(self.clock() * 1000)).id

    def count(self, address: str, entity: str) -> int:
        """What a pull of ``entity`` holds: the mailbox's messages (bar spam and trash), or its primary calendar's
        live events."""
        with self.lock:
            if entity == "messages":
                box = self.mailbox(address)
                return len(box.listing(("count",), lambda m: not m.labels & {"SPAM", "TRASH"}, content=False))
            if entity == "events":
                events = self.calendar(address).events.values()
                return sum(1 for event in events if event["status"] != "cancelled")
        raise ValueError(f"unknown entity {entity!r}: messages or events")

    def touch(self, address: str, entity: str, n: int) -> list[str]:
        """Change ``n`` records now (messages: starred, or unstarred when they are; events: retitled), oldest
        first; their pulled ids."""
        with self.lock:
            if entity == "messages":
                box = self.mailbox(address)
                ids = box.listing(("count",), lambda m: not m.labels & {"SPAM", "TRASH"}, content=False)[-n:]
                for message_id in ids:
                    found = box.get(message_id)
                    starred = found is not None and "STARRED" in found.labels
                    box.relabel(message_id, set() if starred else {"STARRED"}, {"STARRED"} if starred else set())
                return list(ids)
            if entity == "events":
                cal = self.calendar(address)
                chosen = [e["id"] for e in cal.events.values() if e["status"] != "cancelled"][:n]
                for event_id in chosen:
                    summary = f"{cal.events[event_id]['summary']} (moved)"
                    calendar_store(cal, event_id, {"summary": summary}, self.clock(), created=False)
                return [f"primary:{event_id}" for event_id in chosen]
        raise ValueError(f"unknown entity {entity!r}: messages or events")

    def create(self, address: str, entity: str, n: int = 1) -> list[str]:
        """``n`` new records now (messages delivered to the inbox; meetings booked); their pulled ids."""
        from datetime import UTC, datetime, timedelta

        if entity == "messages":
            return [self.deliver(address, **enquiry(k)) for k in range(n)]
        if entity == "events":
            start = datetime.fromtimestamp(self.clock(), UTC) + timedelta(days=2)
            with self.lock:
                cal = self.calendar(address)
                ids = []
                for k in range(n):
                    at = start + timedelta(hours=k)
                    body = {"summary": f"New meeting {k}", "start": {"dateTime": at.isoformat()},
                            "end": {"dateTime": (at + timedelta(minutes=30)).isoformat()}}  # fmt: skip
                    ids.append(f"primary:{insert_event(cal, body, self.clock())['id']}")
                return ids
        raise ValueError(f"unknown entity {entity!r}: messages or events")

    def delete_message(self, address: str, message_id: str) -> None:
        with self.lock:
            if not self.mailbox(address).delete(message_id):
                raise KeyError(message_id)

    def expire_history(self, address: str) -> None:
        """Every history id given so far is out of date: history.list answers 404 (a full sync is due)."""
        with self.lock:
            box = self.mailbox(address)
            box.history_floor = box.history_id + 1

    def invalidate_sync_tokens(self, address: str, calendar_id: str = "primary") -> None:
        """Every sync token of the calendar is void: events.list answers 410 fullSyncRequired."""
        with self.lock:
            self.calendar(address, calendar_id).token_epoch += 1

    def revoke_user(self, address: str) -> int:
        """The user changed their password: every grant they gave dies (refreshes answer invalid_grant)."""
        with self.lock:
            return self.oauth.revoke_user(address)

    # --- push notifications (users.watch -> Pub/Sub) -----------------------------------------------------------

    def _notify(self, box: Mailbox, change: Change) -> None:
        """Gmail publishes a watched mailbox's change to the watch's topic, if it touches a watched label."""
        watch = box.watch
        if watch is None or watch.expiration_ms <= int(self.clock() * 1000):
            return
        touched = set(change.labels) | set(change.message_labels)
        named = bool(touched & set(watch.label_ids)) if watch.label_ids else True
        if named == (watch.behaviour == "include"):
            self.pubsub.publish(watch.topic, {"emailAddress": box.address, "historyId": box.history_id})

    def subscribe_push(
        self, endpoint: str, *, name: str = DEMO_SUBSCRIPTION, topic: str = DEMO_TOPIC,
        audience: str = DEMO_PUSH_AUDIENCE, service_account: str = DEMO_PUSH_SERVICE_ACCOUNT,
    ) -> dict[str, object]:  # fmt: skip
        """A push subscription of ``topic`` delivering to ``endpoint`` (replacing one of the same name)."""
        return self.pubsub.subscribe(name, topic, endpoint, audience=audience, service_account=service_account)

    def subscribe_webhooks(self, url: str, key: str, tenants: list[str] | None = None) -> str:
        """`vrtx dev`'s hook: the demo topic pushed to ``url`` (Google signs with its own keys, not ``key``; the
        platform watches the mailboxes and opens the calendar channels itself). The subscription's name."""
        return str(self.subscribe_push(url)["name"])

    def unsubscribe_webhooks(self, name: str) -> None:
        self.pubsub.unsubscribe(name)

    def watch_mailbox(self, address: str, topic: str = DEMO_TOPIC) -> None:
        """What ``users.watch`` does, for benches and tests without a platform: the mailbox's changes published."""
        from providers.google_workspace.sandbox.gmail import watch

        with self.lock:
            watch(self.mailbox(address), {"topicName": topic}, int(self.clock() * 1000))

    def open_channel(self, address: str, url: str, token: str) -> str:
        """What ``events.watch`` on the primary calendar does; the channel's id."""
        with self.lock:
            body = {"id": secrets.token_hex(16), "type": "web_hook", "address": url, "token": token}
            opened = self.channels.watch(self.calendar(address), "primary", body, int(self.clock() * 1000))
            return str(opened["id"])

    def close_channel(self, channel_id: str) -> None:
        with self.lock:
            channel = self.channels.open.get(channel_id)
            if channel is not None:
                self.channels.stop(channel.owner, {"id": channel.id, "resourceId": channel.resource_id})

    def close(self) -> None:
        self.pubsub.close()
        self.channels.close()

    # --- signing (Pub/Sub push tokens) ----------------------------------------------------------------------

    def jwks(self) -> dict[str, object]:
        """The published signing keys (what /oauth2/v3/certs serves; counted in ``certs_served``)."""
        self.certs_served += 1
        return dict(KeySet([self.signing_key, *self.retired_keys]).as_dict(private=False))

    def rotate_signing_key(self) -> str:
        """Sign with a new key from now on, the old one still published (Google overlaps them); the new kid."""
        with self.lock:
            self.retired_keys = [self.signing_key]
            kid = f"sandbox-{self.seed}-{secrets.token_hex(4)}"
            self.signing_key = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})
            return kid

    def push_token(self, audience: str, *, email: str = DEMO_PUSH_SERVICE_ACCOUNT, lifetime_s: int = 3600) -> str:
        """The OIDC token Pub/Sub signs for a push to an endpoint with ``audience``."""
        now = int(self.clock())
        claims = {"aud": audience, "azp": "1" + str(self.seed).zfill(20), "email": email, "email_verified": True,
                  "exp": now + lifetime_s, "iat": now, "iss": "https://accounts.google.com",
                  "sub": "1" + str(self.seed).zfill(20)}  # fmt: skip
        header = {"alg": "RS256", "kid": self.signing_key.kid, "typ": "JWT"}
        return jwt.encode(header, claims, self.signing_key)


def demo_sandbox(seed: int = 42, clock: Callable[[], float] = time.time) -> GoogleSandbox:
    """The demo user's mailbox and calendar, as `vrtx dev` and the flow tests use them."""
    sandbox = GoogleSandbox(seed=seed, clock=clock)
    sandbox.add_mailbox(DEMO_MAILBOX)
    return sandbox
