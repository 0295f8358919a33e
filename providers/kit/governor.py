"""Rate-limit governor: paces a connection's calls under its provider's budgets instead of tripping them.

One governor per (provider, tenant) connection in each process that calls for it (the pull run, a push run, the
webhook worker, the connect's discovery). Their calls meet in a ``CallLedger`` (the platform's database): each
governor publishes its finished calls and counts the others' against the same windows, so a push run beside the
pull, or the discovery just before a first sync, is paced with it instead of tripping the limit. The ledger is
read and written at most once a second (``LEDGER_EVERY_S``): what another process spent in its last second is seen
a second late, and the provider's headers (``observe``) and 429s (``backoff``) cover that edge.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

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


LEDGER_EVERY_S = 1.0


def paced_limits(limits: Sequence[RateLimit]) -> list[RateLimit]:
    """The budgets a governor paces: windows up to a minute. Longer ones (daily budgets) are enforced from the
    provider's headers instead."""
    return [limit for limit in limits if limit.per_seconds <= 60]


class CallLedger(Protocol):
    """The connection's calls as every process of the platform made them, by wall-clock time."""

    def elsewhere(self, since: float) -> list[float]:
        """When the calls other governors finished since ``since`` were answered, oldest first (a call may be
        dated late, never early)."""

    def spent(self, answered: Sequence[float]) -> None:
        """Publish this governor's calls, by when each was answered."""


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
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._windows = [_Window(limit.requests, float(limit.per_seconds)) for limit in paced_limits(limits)]
        self._slots = threading.BoundedSemaphore(max_concurrent) if max_concurrent else None
        self._lock = threading.Lock()
        self._call_done = threading.Condition(self._lock)
        self._clock = clock
        self._sleep = sleep
        self._paused_until = 0.0
        self._wall = wall
        self._ledger: CallLedger | None = None
        self._ledger_turn = threading.Lock()  # one thread reads and writes the ledger at a time
        self._ledger_at = float("-inf")  # when (clock) the ledger was last read
        self._unpublished: list[float] = []  # wall-clock answer times not yet in the ledger
        self._elsewhere: list[float] = []  # the others' answered calls, on this governor's clock
        self.stats = GovernorStats()

    @property
    def paced(self) -> bool:
        """Whether any budget is paced here (else there is nothing to share)."""
        return bool(self._windows)

    def share(self, ledger: CallLedger) -> None:
        """Count the calls other processes make for the same connection, and publish this one's; once."""
        if self._ledger is None and self._windows:
            self._ledger = ledger
            self._ledger_at = float("-inf")

    def flush(self) -> None:
        """Publish what is not yet in the ledger (a process about to end, or a discovery handing over)."""
        self._sync_ledger(force=True)

    def _sync_ledger(self, *, force: bool = False) -> None:
        ledger = self._ledger
        if ledger is None or not self._ledger_turn.acquire(blocking=force):
            return
        try:
            if not force and self._clock() - self._ledger_at < LEDGER_EVERY_S:
                return
            with self._lock:
                answered, self._unpublished = self._unpublished, []
            if answered:
                ledger.spent(answered)
            longest = max(window.per_seconds for window in self._windows)
            others = ledger.elsewhere(self._wall() - longest)
            with self._lock:
                offset = self._clock() - self._wall()
                self._elsewhere = [at + offset for at in others]
                self._ledger_at = self._clock()
        finally:
            self._ledger_turn.release()

    def _delay_needed(self, now: float) -> float | None:
        """Seconds to wait for budget; None when only calls still in flight fill a window."""
        delay = max(0.0, self._paused_until - now)
        for window in self._windows:
            others = [at for at in self._elsewhere if at > now - window.per_seconds]
            if window.used(now) + len(others) >= window.requests:
                # One more than the excess must age out of the window, oldest first; when the answered calls are
                # not enough, calls still in flight fill it and their answers are waited for.
                answered = sorted([*window.done, *others])
                excess = window.used(now) + len(others) - window.requests
                if excess >= len(answered):
                    return None
                delay = max(delay, answered[excess] + window.per_seconds - now)
        return delay

    def _wait_for_budget(self) -> None:
        while True:
            self._sync_ledger()
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
            if self._ledger is not None:
                self._unpublished.append(self._wall())
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
