"""The QuickBooks sandbox's state: its companies (realms), the OAuth apps and grants, metering, webhooks, knobs."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import providers.quickbooks.sandbox.writes as writes
from providers.quickbooks.sandbox.answers import Answer
from providers.quickbooks.sandbox.company import ENTITIES, Company
from providers.quickbooks.sandbox.identity import ACCOUNTING, IntuitIdentity
from providers.quickbooks.sandbox.records import CompanyData
from providers.quickbooks.sandbox.webhooks import Format, change_events, new_sender
from providers.quickbooks.sandbox_credentials import DEMO_APP_NAME, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_USER_EMAIL
from providers.sandbox_kit.books import Sizes
from providers.sandbox_kit.clock import MINUTE_S
from providers.sandbox_kit.data import stable_key
from providers.sandbox_kit.faults import FaultKnobs
from providers.sandbox_kit.idempotency import IdempotencyStore
from providers.sandbox_kit.metering import Quota, RateLimits
from providers.sandbox_kit.sandbox import Sandbox


@dataclass
class QuickBooksKnobs(FaultKnobs):
    """The kit's knobs (applied to Accounting API calls after authentication) and QuickBooks' own: its limits,
    and Faults answered inside HTTP 200 as Intuit sometimes does."""

    enforce_rate_limits: bool = True
    minute_limit: int = 500  # per realm (reference "Rate limits")
    concurrent_limit: int = 10
    fault_in_ok_next: int = 0  # answer this many calls with HTTP 200 carrying a Fault
    fault_in_ok_code: str = "3200"  # ... with this code (3200: AuthenticationFailed)

    def limits(self) -> RateLimits:
        return RateLimits(
            (Quota("minute", self.minute_limit, MINUTE_S),), self.concurrent_limit, self.enforce_rate_limits
        )

    def take_fault_in_ok(self) -> bool:
        if self.fault_in_ok_next <= 0:
            return False
        self.fault_in_ok_next -= 1
        return True


class QuickBooksSandbox(Sandbox[Company, Answer]):
    """Every company, app, grant and token; thread-safe (one lock). Reachable as ``app.state.quickbooks``; its
    ``tenants`` are the companies by realmId."""

    def __init__(self, *, seed: int = 42, clock: Callable[[], float] = time.time) -> None:
        self.webhook_shape = Format()
        idempotency = IdempotencyStore[Answer](keeps=writes.remembered, max_key=50)
        super().__init__(
            seed=seed,
            clock=clock,
            webhooks=new_sender(self.webhook_shape),
            idempotency=idempotency,
            entities=tuple(ENTITIES),
        )
        self.oauth: IntuitIdentity = IntuitIdentity(clock, self.stats, self.tenants)
        self.register_client(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, None, name=DEMO_APP_NAME)

    @property
    def webhook_format(self) -> str:
        return self.webhook_shape.value

    @webhook_format.setter
    def webhook_format(self, value: str) -> None:
        self.webhook_shape.value = value

    def add_company(
        self,
        name: str,
        *,
        customers: int = 50,
        invoices: int = 200,
        lines_per_invoice: int = 3,
        payments: int = 100,
        items: int = 20,
        user_email: str = DEMO_USER_EMAIL,
    ) -> str:
        """A new company of ``user_email`` with seeded records; returns its realmId."""
        sizes = Sizes(customers, invoices, lines_per_invoice, payments, items)
        with self.lock:
            ordinal = len(self.tenants)
            realm_id = str(9130_3500_0000_0000 + stable_key("quickbooks-realm", self.seed, ordinal) % 10**11)
            company = Company(CompanyData(self.seed, ordinal, realm_id, name, sizes), user_email, self.clock)
            company.observers.append(change_events(self.webhooks, company))
            self.tenants[realm_id] = company
            return realm_id

    def issue_access_token(self, realm_ids: Sequence[str], *, expires_in: int = 3600) -> str:
        """An access token of the demo app reaching exactly ``realm_ids`` (tests skip the OAuth dance)."""
        return self.access_token_for(realm_ids, client_id=DEMO_CLIENT_ID, scopes=(ACCOUNTING,), expires_in=expires_in)

    # --- data helpers for tests, besides the kit's count, touch and create --------------------------------------

    def delete(self, realm_id: str, entity: str, record_id: str) -> None:
        """Delete an invoice or payment (a tombstone stays for change data capture)."""
        with self.lock:
            company = self.tenant(realm_id, entity)
            (index,) = company.resolve(entity, [record_id])
            if entity == "payments":
                company.unapply(company.record(entity, index))
            company.delete(entity, index)

    def deactivate(self, realm_id: str, entity: str, record_id: str) -> None:
        """Make a customer or item inactive, QuickBooks' way of deleting names."""
        with self.lock:
            company = self.tenant(realm_id, entity)
            (index,) = company.resolve(entity, [record_id])
            company.operation = "Update"
            company.change(entity, index, lambda record: record.update(Active=False))
            company.changed()
