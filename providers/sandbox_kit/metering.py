"""Rate-limit metering and call counters, on the sandbox's clock (tests move time instead of waiting).

A provider states its limits as ``Quota``s, each a number of calls per rolling window, counted per (app, tenant)
or across the app, plus an optional cap on calls in flight per (app, tenant):

    Xero:       RateLimits((Quota("day", 5000, DAY_S), Quota("appminute", 10_000, MINUTE_S, per="app"),
                            Quota("minute", 60, MINUTE_S)), concurrent=5)
    QuickBooks: RateLimits((Quota("minute", 500, MINUTE_S),), concurrent=10)       # per realm
    Graph:      RateLimits((Quota("mailbox", 10_000, 600.0),), concurrent=4)       # per mailbox

Quotas are checked in the order given; the first one full refuses the call with its name (what the provider says
in its 429, e.g. Xero's ``X-Rate-Limit-Problem``) and how long until a call fits. ``remaining`` feeds the headers
some providers send on every answer. Limits are passed per call, so knobs can change them while the sandbox runs.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Quota:
    name: str
    calls: int
    span_s: float
    per: Literal["tenant", "app"] = "tenant"  # per (app, tenant), or every tenant of the app together


@dataclass(frozen=True)
class RateLimits:
    quotas: tuple[Quota, ...]
    concurrent: int | None = None  # calls in flight per (app, tenant)
    enforce: bool = True  # False: calls are counted (and reported remaining) but never refused


@dataclass(frozen=True)
class Refusal:
    problem: str  # the quota's name, or "concurrent"
    retry_after_s: int


class RateMeter:
    """Rolling windows of call times per quota and key, and in-flight counts per (app, tenant)."""

    def __init__(self) -> None:
        self._calls: defaultdict[tuple[str, tuple[str, ...]], deque[float]] = defaultdict(deque)
        self._in_flight: Counter[tuple[str, str]] = Counter()

    def _window(self, quota: Quota, app: str, tenant: str, now: float) -> deque[float]:
        calls = self._calls[(quota.name, (app,) if quota.per == "app" else (app, tenant))]
        while calls and calls[0] <= now - quota.span_s:
            calls.popleft()
        return calls

    def acquire(self, app: str, tenant: str, now: float, limits: RateLimits, cost: int = 1) -> Refusal | None:
        """Count a call and take an in-flight slot, or say which limit refuses it (nothing is counted then).
        ``cost``: the quota units the call uses (Google prices each method in units)."""
        windows = [(quota, self._window(quota, app, tenant, now)) for quota in limits.quotas]
        if limits.enforce:
            for quota, calls in windows:
                if len(calls) + cost > quota.calls:
                    return Refusal(quota.name, _wait(calls, quota, now, cost))
            if limits.concurrent is not None and self._in_flight[(app, tenant)] >= limits.concurrent:
                return Refusal("concurrent", 1)  # a slot frees when a call ends: no better guess exists
        for _, calls in windows:
            calls.extend([now] * cost)
        self._in_flight[(app, tenant)] += 1
        return None

    def release(self, app: str, tenant: str) -> None:
        self._in_flight[(app, tenant)] -= 1

    def in_flight(self, app: str | None, tenant: str) -> int:
        """Calls in flight for ``tenant`` from ``app`` (None: from every app)."""
        if app is None:
            return sum(n for (_, of), n in self._in_flight.items() if of == tenant)
        return self._in_flight[(app, tenant)]

    def remaining(self, app: str | None, tenant: str | None, now: float, limits: RateLimits) -> dict[str, int]:
        """Calls left in each quota's window; a quota whose app or tenant is not known yet reads full."""
        left = {}
        for quota in limits.quotas:
            known = app is not None and (tenant is not None or quota.per == "app")
            used = len(self._window(quota, app or "", tenant or "", now)) if known else 0
            left[quota.name] = max(quota.calls - used, 0)
        return left


def _wait(calls: deque[float], quota: Quota, now: float, cost: int = 1) -> int:
    """Whole seconds until enough calls leave the window for one more of ``cost`` to fit (at least 1)."""
    leaving = min(len(calls), len(calls) + cost - quota.calls)
    frees_at = calls[leaving - 1] + quota.span_s if leaving > 0 else now
    return max(1, math.ceil(frees_at - now))


@dataclass
class TenantStats:
    api_calls: int = 0  # API calls that got past authentication (429s and injected 5xx included)
    pages_served: Counter[str] = field(default_factory=Counter)  # successful list responses, per entity
    token_requests: int = 0  # token endpoint calls that issued tokens (code exchanges and refreshes)
    refresh_requests: int = 0  # refresh_token grants among them
    rate_limited_responses: int = 0  # 429s answered (real or injected)
    max_in_flight: int = 0  # the most admitted calls in flight at once (every app's together)


@dataclass
class CallStats(TenantStats):
    """Totals across the sandbox, with the same counters per tenant in ``tenants`` (``stats[tenant_id]``).

    A count about a grant (token requests) counts once in the totals and once for each tenant it reaches."""

    tenants: dict[str, TenantStats] = field(default_factory=dict)

    def __getitem__(self, tenant_id: str) -> TenantStats:
        return self.tenants.setdefault(tenant_id, TenantStats())

    def bump(self, name: str, tenant_ids: Iterable[str]) -> None:
        setattr(self, name, getattr(self, name) + 1)
        for tenant_id in tenant_ids:
            stats = self[tenant_id]
            setattr(stats, name, getattr(stats, name) + 1)

    def in_flight(self, tenant_id: str, calls: int) -> None:
        """Note ``calls`` in flight for ``tenant_id`` now: the peaks per tenant and across tenants."""
        self.max_in_flight = max(self.max_in_flight, calls)
        self[tenant_id].max_in_flight = max(self[tenant_id].max_in_flight, calls)

    def page(self, tenant_id: str, entity: str) -> None:
        self.pages_served[entity] += 1
        self[tenant_id].pages_served[entity] += 1
