"""The Stripe sandbox's state: its accounts (the kit's tenants), their API keys, the Connect platform and its
grants, Idempotency-Key answers, metering, the webhook sender and the fault knobs."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from providers.sandbox_kit.data import stable_key
from providers.sandbox_kit.faults import FaultKnobs
from providers.sandbox_kit.idempotency import IdempotencyStore
from providers.sandbox_kit.metering import Quota, RateLimits
from providers.sandbox_kit.sandbox import Sandbox
from providers.stripe.sandbox.account import StripeAccount
from providers.stripe.sandbox.connect import StripeConnect
from providers.stripe.sandbox.objects import KINDS, AccountData, StripeSizes
from providers.stripe.sandbox.webhooks import new_sender
from providers.stripe.sandbox.wire import StripeIds
from providers.stripe.sandbox_credentials import (
    DEMO_ACCOUNT_ID,
    DEMO_CONNECT_CLIENT_ID,
    DEMO_CONNECTED_ACCOUNT_ID,
    DEMO_RESTRICTED_KEY,
    DEMO_SECRET_KEY,
    DEMO_USER_EMAIL,
)


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: tuple[tuple[str, str], ...] = ()


def remembered(answer: Answer) -> bool:
    """What an Idempotency-Key replays: requests that ran (2xx, and a declined card's 402). A validation error, a
    429 or a 5xx did nothing, so a retry with the same key runs for real (https://docs.stripe.com/api/idempotent_requests)."""
    return answer.status < 300 or answer.status == 402


@dataclass
class StripeSandboxKnobs(FaultKnobs):
    """The kit's fault knobs and Stripe's limits (https://docs.stripe.com/rate-limits): 25 operations a second in
    test mode, 100 in live mode, per account. Counted always, enforced only when ``enforce_rate_limits`` (tools that
    do not pace, like the official SDK in tests, would otherwise be throttled); ``should_retry`` is the
    ``Stripe-Should-Retry`` a 429 carries (None: no header)."""

    enforce_rate_limits: bool = False
    test_limit: int = 25
    live_limit: int = 100
    should_retry: bool | None = True

    def limits(self, live: bool) -> RateLimits:
        quota = Quota("second", self.live_limit if live else self.test_limit, 1.0)
        return RateLimits((quota,), None, self.enforce_rate_limits)


class StripeSandbox(Sandbox[StripeAccount, Answer]):
    """Accounts by id (``tenants``), the API keys that authenticate as them, the Connect platform; one lock."""

    def __init__(self, *, seed: int = 42, clock: Callable[[], float] = time.time) -> None:
        super().__init__(
            seed=seed, clock=clock, webhooks=new_sender(clock), entities=tuple(KINDS),
            idempotency=IdempotencyStore[Answer](keeps=remembered),
        )  # fmt: skip
        self.keys: dict[str, str] = {}  # secret or restricted key -> account id
        self.restricted: set[str] = set()
        self._account_ids = StripeIds(seed, "sandbox", "acct")
        self.oauth: StripeConnect = StripeConnect(clock, self.stats, self.tenants, DEMO_USER_EMAIL)

    def add_account(
        self, name: str, *, account_id: str | None = None, keys: Sequence[str] = (), email: str = DEMO_USER_EMAIL,
        country: str = "US", currency: str = "usd", live: bool = False, sizes: StripeSizes | None = None,
        **counts: int,
    ) -> str:  # fmt: skip
        """A new account with seeded objects (``sizes``, or ``StripeSizes`` with ``counts`` changed); its id."""
        chosen = sizes or StripeSizes(**counts)
        with self.lock:
            account = account_id or self._account_ids.encode(len(self.tenants))[:21]
            data = AccountData(self.seed, account, currency, chosen)
            self.tenants[account] = StripeAccount(
                data, self.clock, self.webhooks, name=name, email=email, country=country, live=live
            )
            for key in keys:
                self.add_key(account, key)
            return account

    def add_key(self, account: str, key: str) -> None:
        with self.lock:
            self.keys[key] = account
            self.tenants[account].secret_keys.append(key)
            if key.startswith("rk_"):
                self.restricted.add(key)

    def key_owner(self, key: str) -> str | None:
        """The account a secret key (or a Connect access token) belongs to."""
        from providers.sandbox_kit.wire import find_by_secret

        return find_by_secret(self.keys, key) or self.oauth.key_account(key)

    def make_platform(self, account: str, client_id: str, *, name: str) -> None:
        """Turn ``account`` into a Connect platform whose OAuth app is ``client_id`` (``ca_...``)."""
        with self.lock:
            # A confidential app (no PKCE): its secret is the platform's API key, checked by ``key_owner``.
            self.oauth.register(client_id, f"platform:{account}", None, name)
            self.oauth.platform_of[client_id] = account

    def connect(self, platform: str, account: str) -> None:
        """``account`` connected to ``platform``'s app without the OAuth dance (tests)."""
        client_id = next(c for c, owner in self.oauth.platform_of.items() if owner == platform)
        with self.lock:
            self.oauth.mint(client_id, None, ["read_write"], 3600, [account])
            self.tenants[account].platform = platform

    # --- data helpers for tests, besides the kit's count, touch and create ---------------------------------

    def account(self, account_id: str) -> StripeAccount:
        return self.tenant(account_id)

    def pay_payment_link(self, account_id: str, link_id: str, email: str = "payer@example.com") -> dict[str, Any]:
        """A customer pays through the link (a completed checkout): the payment intent it made."""
        from providers.stripe.sandbox.catalog import Write
        from providers.stripe.sandbox.payments import complete_checkout

        with self.lock:
            account = self.tenant(account_id)
            index, _ = account.get("payment_links", link_id)
            return complete_checkout(Write(account, {}, (None, None)), index, email)

    def events(self, account_id: str) -> list[dict[str, Any]]:
        """Every event of the account, oldest first (retention ignored)."""
        with self.lock:
            account = self.tenant(account_id)
            total, fetch = account.select("events")
            return fetch(0, total)


def demo_sandbox(
    seed: int = 42, clock: Callable[[], float] = time.time, sizes: StripeSizes | None = None
) -> StripeSandbox:
    """The demo: a platform account (the demo keys; its Connect app) and one account its user may connect."""
    sandbox = StripeSandbox(seed=seed, clock=clock)
    sandbox.add_account(
        "Vrtx Demo Coffee Roasters", account_id=DEMO_ACCOUNT_ID, keys=(DEMO_SECRET_KEY, DEMO_RESTRICTED_KEY),
        country="GB", currency="gbp", sizes=sizes,
    )  # fmt: skip
    sandbox.make_platform(DEMO_ACCOUNT_ID, DEMO_CONNECT_CLIENT_ID, name="Vrtx Integrations")
    sandbox.add_account("Harbour Bikes", account_id=DEMO_CONNECTED_ACCOUNT_ID, sizes=sizes)
    return sandbox


def sandbox_key(seed: int, account: str) -> str:
    """A deterministic test-mode secret key for an account (tests that add accounts)."""
    return f"sk_test_51{stable_key('stripe-key', seed, account):020d}Sandbox"
