"""The Xero sandbox's state: its organisations, the OAuth apps and grants, metering, webhooks and fault knobs."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import providers.xero.sandbox.catalog as cat
import providers.xero.sandbox.writes as writes
from providers.sandbox_kit.books import Sizes
from providers.sandbox_kit.clock import DAY_S, MINUTE_S
from providers.sandbox_kit.data import IdCodec, stable_key
from providers.sandbox_kit.faults import FaultKnobs
from providers.sandbox_kit.idempotency import IdempotencyStore
from providers.sandbox_kit.metering import Quota, RateLimits
from providers.sandbox_kit.sandbox import Sandbox
from providers.xero.sandbox.identity import XeroIdentity
from providers.xero.sandbox.org import ENTITIES, Organisation
from providers.xero.sandbox.reads import Answer
from providers.xero.sandbox.records import OrgData
from providers.xero.sandbox.webhooks import IntentToReceive, change_events, intent_to_receive, new_sender
from providers.xero.sandbox_credentials import DEMO_APP_NAME, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_USER_EMAIL


@dataclass
class XeroSandboxKnobs(FaultKnobs):
    """The kit's fault knobs (``app.state.sandbox``, read fresh on every request; the request-level ones apply to
    Accounting API calls) and Xero's rate limits, changeable while the sandbox runs."""

    enforce_rate_limits: bool = True
    minute_limit: int = 60
    day_limit: int = 5000
    concurrent_limit: int = 5
    app_minute_limit: int = 10000

    def limits(self) -> RateLimits:
        """Xero's limits in the order Xero checks them (reference "Rate limits")."""
        quotas = (
            Quota("day", self.day_limit, DAY_S),
            Quota("appminute", self.app_minute_limit, MINUTE_S, per="app"),
            Quota("minute", self.minute_limit, MINUTE_S),
        )
        return RateLimits(quotas, self.concurrent_limit, self.enforce_rate_limits)


class XeroSandbox(Sandbox[Organisation, Answer]):
    """Every organisation, app, grant and token; thread-safe (one lock). Reachable as ``app.state.xero``; its
    ``tenants`` are the organisations by tenantId."""

    def __init__(self, *, seed: int = 42, clock: Callable[[], float] = time.time) -> None:
        idempotency = IdempotencyStore[Answer](keeps=writes.remembered, max_key=writes.MAX_IDEMPOTENCY_KEY)
        super().__init__(seed=seed, clock=clock, webhooks=new_sender(), idempotency=idempotency, entities=ENTITIES)
        self._tenant_ids = IdCodec(stable_key("xero-sandbox-tenants", seed))
        self.oauth: XeroIdentity = XeroIdentity(clock, self.stats, self.tenants)
        self.register_client(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, None, name=DEMO_APP_NAME)

    def add_organisation(
        self,
        name: str,
        *,
        contacts: int = 50,
        invoices: int = 200,
        lines_per_invoice: int = 3,
        payments: int = 100,
        items: int = 20,
        user_email: str = DEMO_USER_EMAIL,
    ) -> str:
        """A new organisation of ``user_email`` with seeded records; returns its tenantId (= OrganisationID)."""
        sizes = Sizes(contacts, invoices, lines_per_invoice, payments, items)
        with self.lock:
            ordinal = len(self.tenants)
            tenant_id = self._tenant_ids.encode(ordinal)
            org = Organisation(OrgData(self.seed, ordinal, tenant_id, name, sizes), user_email, self.clock)
            org.observers.append(change_events(self.webhooks, tenant_id))
            self.tenants[tenant_id] = org
            return tenant_id

    def issue_access_token(self, tenant_ids: Sequence[str], *, expires_in: int = 1800) -> str:
        """An access token of the demo app reaching exactly ``tenant_ids`` (tests skip the OAuth dance)."""
        scopes = ("openid", *sorted(cat.ALL_ACCOUNTING_SCOPES))
        return self.access_token_for(tenant_ids, client_id=DEMO_CLIENT_ID, scopes=scopes, expires_in=expires_in)

    @staticmethod
    def intent_to_receive(url: str, key: str) -> IntentToReceive:
        return intent_to_receive(url, key)

    # --- data helpers for tests, besides the kit's count, touch (a field changes, UpdatedDateUTC becomes now),
    # create (a new payment pays the newest unpaid AUTHORISED invoice in full) and in_flight --------------------

    def archive_contact(self, tenant_id: str, contact_id: str) -> None:
        with self.lock:
            self.tenant(tenant_id).archive_contact(contact_id)

    def void_invoice(self, tenant_id: str, invoice_id: str) -> None:
        """VOIDED now; payments on it become DELETED (Xero voids only once payments are removed)."""
        with self.lock:
            self.tenant(tenant_id).void_invoice(invoice_id)
