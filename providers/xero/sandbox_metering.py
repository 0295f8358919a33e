"""Xero's API rate limits (per organisation and app, plus app-wide) and the sandbox's call counters.

Limits per https://developer.xero.com/documentation/guides/oauth2/limits/ (reference "Rate limits"): 5 calls in
flight, 60 a minute and 5,000 a day per organisation, 10,000 a minute across the app. Windows roll on the
sandbox's clock, so tests move time instead of waiting.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

MINUTE_S = 60.0
DAY_S = 86_400.0


@dataclass
class TenantStats:
    api_calls: int = 0  # accounting calls that got past authentication (429s and injected 5xx included)
    pages_served: Counter[str] = field(default_factory=Counter)  # successful list responses, per entity
    token_requests: int = 0  # POSTs to /connect/token (code exchanges and refreshes)
    refresh_requests: int = 0  # refresh_token grants among them
    rate_limited_responses: int = 0  # 429s answered (real or injected)


@dataclass
class SandboxStats(TenantStats):
    """Totals across the sandbox, with the same counters per organisation in ``tenants`` (``stats[tenant_id]``).

    Token requests count once in the totals and once for each organisation the grant reaches."""

    tenants: dict[str, TenantStats] = field(default_factory=dict)

    def __getitem__(self, tenant_id: str) -> TenantStats:
        return self.tenants.setdefault(tenant_id, TenantStats())

    def bump(self, name: str, tenant_ids: Iterable[str]) -> None:
        setattr(self, name, getattr(self, name) + 1)
        for tenant_id in tenant_ids:
            stats = self[tenant_id]
            setattr(stats, name, getattr(stats, name) + 1)

    def page(self, tenant_id: str, entity: str) -> None:
        self.pages_served[entity] += 1
        self[tenant_id].pages_served[entity] += 1


@dataclass(frozen=True)
class Limits:
    enforce: bool
    minute: int
    day: int
    concurrent: int
    app_minute: int


@dataclass(frozen=True)
class Refusal:
    problem: str  # X-Rate-Limit-Problem: minute | day | concurrent | appminute
    retry_after_s: int


class RateLimiter:
    """Rolling windows of call times per (app, organisation) and per app; in-flight counts per (app, org)."""

    def __init__(self) -> None:
        self._minute: defaultdict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._day: defaultdict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._app: defaultdict[str, deque[float]] = defaultdict(deque)
        self._in_flight: Counter[tuple[str, str]] = Counter()

    def _prune(self, client_id: str, tenant_id: str, now: float) -> None:
        for window, span in (
            (self._minute[(client_id, tenant_id)], MINUTE_S),
            (self._day[(client_id, tenant_id)], DAY_S),
            (self._app[client_id], MINUTE_S),
        ):
            while window and window[0] <= now - span:
                window.popleft()

    def acquire(self, client_id: str, tenant_id: str, now: float, limits: Limits) -> Refusal | None:
        """Count a call and take an in-flight slot, or say which limit refuses it (nothing is counted then)."""
        key = (client_id, tenant_id)
        self._prune(client_id, tenant_id, now)
        if limits.enforce:
            day, minute, app = self._day[key], self._minute[key], self._app[client_id]
            if len(day) >= limits.day:
                return Refusal("day", _wait(day, limits.day, DAY_S, now))
            if len(app) >= limits.app_minute:
                return Refusal("appminute", _wait(app, limits.app_minute, MINUTE_S, now))
            if len(minute) >= limits.minute:
                return Refusal("minute", _wait(minute, limits.minute, MINUTE_S, now))
            if self._in_flight[key] >= limits.concurrent:
                return Refusal("concurrent", 1)  # a slot frees when a call ends: no better guess exists
        for window in (self._day[key], self._minute[key], self._app[client_id]):
            window.append(now)
        self._in_flight[key] += 1
        return None

    def release(self, client_id: str, tenant_id: str) -> None:
        self._in_flight[(client_id, tenant_id)] -= 1

    def in_flight(self, client_id: str, tenant_id: str) -> int:
        return self._in_flight[(client_id, tenant_id)]

    def headers(self, client_id: str | None, tenant_id: str | None, now: float, limits: Limits) -> dict[str, str]:
        """``X-DayLimit-Remaining``, ``X-MinLimit-Remaining``, ``X-AppMinLimit-Remaining`` (every response)."""
        day, minute, app = limits.day, limits.minute, limits.app_minute
        if client_id is not None:
            app -= len(self._app[client_id])
            if tenant_id is not None:
                self._prune(client_id, tenant_id, now)
                day -= len(self._day[(client_id, tenant_id)])
                minute -= len(self._minute[(client_id, tenant_id)])
        return {
            "X-DayLimit-Remaining": str(max(day, 0)),
            "X-MinLimit-Remaining": str(max(minute, 0)),
            "X-AppMinLimit-Remaining": str(max(app, 0)),
        }


def _wait(window: deque[float], limit: int, span: float, now: float) -> int:
    """Whole seconds until enough calls leave ``window`` for one more to fit (at least 1)."""
    frees_at = window[len(window) - limit] + span
    return max(1, math.ceil(frees_at - now))
