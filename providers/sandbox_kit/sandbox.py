"""What every sandbox's state holds, under one lock: its tenants (each a ``Store``), the clock, call stats, the
rate meter, Idempotency-Key answers and the webhook sender; with the helpers tests use on a tenant's data.

A provider's sandbox subclasses ``Sandbox`` with how tenants are made (Xero's organisations, a QuickBooks
company), its OAuth server, and its own data helpers (archive a contact, void an invoice...).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Generic, TypeVar

from providers.sandbox_kit.clock import Clock
from providers.sandbox_kit.idempotency import IdempotencyStore
from providers.sandbox_kit.metering import CallStats, RateMeter
from providers.sandbox_kit.oauth import OAuthServer
from providers.sandbox_kit.store import Store
from providers.sandbox_kit.webhooks import Subscription, WebhookSender

T = TypeVar("T", bound=Store)
A = TypeVar("A")  # what the sandbox answers a write with (replayed for an Idempotency-Key)


class Sandbox(Generic[T, A]):
    def __init__(
        self,
        *,
        seed: int,
        clock: Clock = time.time,
        webhooks: WebhookSender,
        idempotency: IdempotencyStore[A],
        entities: Sequence[str] = (),
    ) -> None:
        self.seed, self.clock, self.lock = seed, clock, threading.RLock()
        self.tenants: dict[str, T] = {}
        self.stats, self.meter = CallStats(), RateMeter()
        self.webhooks, self.idempotency = webhooks, idempotency
        self.entities = tuple(entities)  # what the data helpers accept (checked, so a typo is not a new table)
        self.oauth: OAuthServer | None = None  # an OAuth provider's authorization server

    def register_client(
        self,
        client_id: str,
        client_secret: str | None,
        redirect_uris: Sequence[str] | None = None,
        *,
        name: str | None = None,
    ) -> None:
        """An OAuth app. ``client_secret`` None is a PKCE app; ``redirect_uris`` None accepts any loopback http
        URI (http://127.0.0.1:*, http://localhost:*), a documented leniency for local runs. ``name`` is what the
        consent page (and whatever the provider names apps in) shows; default: the client id."""
        assert self.oauth is not None, "this sandbox has no OAuth server"
        with self.lock:
            self.oauth.register(client_id, client_secret, redirect_uris, name or client_id)

    def access_token_for(
        self, tenant_ids: Sequence[str], *, client_id: str, scopes: Sequence[str], expires_in: int
    ) -> str:
        """An access token of ``client_id`` reaching exactly ``tenant_ids``, for a user of its own (tests skip the
        OAuth dance)."""
        assert self.oauth is not None, "this sandbox has no OAuth server"
        with self.lock:
            unknown = [t for t in tenant_ids if t not in self.tenants]
            if unknown:
                raise KeyError(f"unknown tenants: {unknown}")
            return self.oauth.mint(client_id, None, scopes, expires_in, tenant_ids)

    def app_name(self, client_id: str) -> str:
        """An app's registered name, else its client id."""
        app = self.oauth.apps.get(client_id) if self.oauth is not None else None
        return app.name if app is not None else client_id

    def tenant(self, tenant_id: str, entity: str | None = None) -> T:
        if entity is not None and entity not in self.entities:
            raise ValueError(f"unknown entity {entity!r}: one of {', '.join(self.entities)}")
        try:
            return self.tenants[tenant_id]
        except KeyError:
            raise KeyError(f"unknown tenant {tenant_id!r}") from None

    # --- data helpers for tests ----------------------------------------------------------------------------

    def count(self, tenant_id: str, entity: str) -> int:
        """All records of ``entity``, whatever their status."""
        with self.lock:
            return len(self.tenant(tenant_id, entity).tables[entity])

    def touch(self, tenant_id: str, entity: str, record_ids: Sequence[str] | str | int) -> list[str]:
        """Change records (or the N least recently changed) now: see ``Store.touch``. Returns their ids."""
        with self.lock:
            return self.tenant(tenant_id, entity).touch(entity, record_ids)

    def create(self, tenant_id: str, entity: str, n: int = 1) -> list[str]:
        """``n`` new records changed now: see ``Store.create``. Returns their ids."""
        with self.lock:
            return self.tenant(tenant_id, entity).create(entity, n)

    def in_flight(self, tenant_id: str, client_id: str | None = None) -> int:
        with self.lock:
            return self.meter.in_flight(client_id, tenant_id)

    # --- webhooks ------------------------------------------------------------------------------------------

    def subscribe_webhooks(self, url: str, secret: str, tenants: Sequence[str] | None = None) -> Subscription:
        """Send every later change of ``tenants`` (default: all) to ``url``, signed with ``secret``."""
        return self.webhooks.subscribe(url, secret, list(tenants) if tenants is not None else None)

    def unsubscribe_webhooks(self, subscription: Subscription) -> None:
        self.webhooks.unsubscribe(subscription)

    def flush_webhooks(self, timeout_s: float = 10.0) -> bool:
        """Wait for every queued delivery to finish (delivered or given up); False on timeout."""
        return self.webhooks.flush(timeout_s)
