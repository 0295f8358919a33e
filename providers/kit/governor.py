"""Rate-limit governor: paces a connection's calls under its provider's budgets instead of tripping them.

One governor per (provider, tenant) connection, inside the run that syncs it; the run queue allows one pull run per
connection at a time (``vrtx/connection`` tag limit). It counts only its own process's calls: what the connection
spends elsewhere in the same window (a push run beside the pull, the webhook worker's fetches, the connect's
discovery just before a first sync) is learnt from the provider's headers (``observe``) and 429s (``backoff``).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from providers.base import RateLimit
from providers.errors import ProviderRateLimited


@dataclass
class GovernorStats:
    calls: int = 0
    waits: int = 0
    waited_s: float = 0.0
    rate_limited: int = 0  # 429s answered by the provider
    retry_after_waited_s: float = 0.0


@dataclass
class _Window:
    """A budget's calls: those in flight, and the completion times of those done within the window.

    A call is dated by when its answer arrived, not when it was sent: the provider counts it on arrival, which lies
    between the two, so dating by the answer never lets the window's next call reach the provider early.
    """

    requests: int
    per_seconds: float
    done: deque[float] = field(default_factory=deque)
    in_flight: int = 0

    def used(self, now: float) -> int:
        while self.done and self.done[0] <= now - self.per_seconds:
            self.done.popleft()
        return len(self.done) + self.in_flight


class DayBudgetExhausted(ProviderRateLimited):
    """The provider's daily budget is spent: stop and resume after it resets, never hammer."""

    code = "provider_day_budget_exhausted"


class RateGovernor:
    def __init__(
        self,
        limits: Sequence[RateLimit] = (),
        *,
        max_concurrent: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        # Windows up to a minute are paced; longer ones (daily budgets) are enforced from the provider's headers.
        self._windows = [
            _Window(limit.requests, float(limit.per_seconds)) for limit in limits if limit.per_seconds <= 60
        ]
        self._slots = threading.BoundedSemaphore(max_concurrent) if max_concurrent else None
        self._lock = threading.Lock()
        self._call_done = threading.Condition(self._lock)
        self._clock = clock
        self._sleep = sleep
        self._paused_until = 0.0
        self.stats = GovernorStats()

    def _delay_needed(self, now: float) -> float | None:
        """Seconds to wait for budget; None when only calls still in flight fill a window."""
        delay = max(0.0, self._paused_until - now)
        for window in self._windows:
            if window.used(now) >= window.requests:
                if not window.done:
                    return None
                delay = max(delay, window.done[0] + window.per_seconds - now)
        return delay

    def _wait_for_budget(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                delay = self._delay_needed(now)
                if delay is None:
                    self._call_done.wait(timeout=1.0)
                    continue
                if delay <= 0:
                    for window in self._windows:
                        window.in_flight += 1
                    self.stats.calls += 1
                    return
            self.stats.waits += 1
            self.stats.waited_s += delay
            self._sleep(delay)

    def _finish_call(self) -> None:
        with self._lock:
            now = self._clock()
            for window in self._windows:
                window.in_flight -= 1
                window.done.append(now)
            self._call_done.notify_all()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one call's place: under the concurrency cap and every paced window."""
        if self._slots is not None:
            self._slots.acquire()
        try:
            self._wait_for_budget()
            try:
                yield
            finally:
                self._finish_call()
        finally:
            if self._slots is not None:
                self._slots.release()

    def observe(self, *, minute_remaining: int | None = None, day_remaining: int | None = None) -> None:
        """What the provider's headers say is left. A spent minute pauses; a spent day stops the sync."""
        if day_remaining is not None and day_remaining <= 0:
            raise DayBudgetExhausted("the provider's daily API budget for this connection is spent")
        if minute_remaining is not None and minute_remaining <= 0:
            with self._lock:
                now = self._clock()
                oldest = min((w.done[0] for w in self._windows if w.done), default=now)
                self._paused_until = max(self._paused_until, oldest + 60.0, now + 1.0)

    def backoff(self, retry_after_s: float) -> None:
        """The provider answered 429: wait what it asked before the next call."""
        self.stats.rate_limited += 1
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + retry_after_s)
        self.stats.retry_after_waited_s += retry_after_s
