"""The rate-limit governor paces calls under budgets, on a fake clock (no real waiting)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from providers.base import RateLimit
from providers.kit.governor import DayBudgetExhausted, RateGovernor


class FakeTime:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def governor(*limits: RateLimit, fake: FakeTime) -> RateGovernor:
    return RateGovernor(limits, clock=fake.clock, sleep=fake.sleep)


def test_calls_under_a_minute_budget_are_paced_to_the_floor_not_beyond() -> None:
    fake = FakeTime()
    gov = governor(RateLimit(60, 60, "tenant"), fake=fake)
    start = fake.now
    for _ in range(180):
        with gov.slot():
            pass
    # 180 calls at 60/minute: the first 60 at once, then 60 more each minute -> two minutes, no more.
    assert fake.now - start == pytest.approx(120.0)
    assert gov.stats.calls == 180


def test_the_tightest_of_several_windows_wins_and_daily_budgets_are_not_paced() -> None:
    fake = FakeTime()
    gov = governor(RateLimit(5, 1, "tenant"), RateLimit(60, 60, "tenant"), RateLimit(5000, 86400, "tenant"), fake=fake)
    start = fake.now
    for _ in range(12):
        with gov.slot():
            pass
    assert fake.now - start == pytest.approx(2.0)


def test_a_spent_minute_reported_by_the_provider_pauses_the_next_call() -> None:
    fake = FakeTime()
    gov = governor(RateLimit(60, 60, "tenant"), fake=fake)
    with gov.slot():
        pass
    gov.observe(minute_remaining=0)
    before = fake.now
    with gov.slot():
        pass
    assert fake.now - before == pytest.approx(60.0)


def test_a_spent_day_stops_instead_of_hammering() -> None:
    gov = governor(fake=FakeTime())
    with pytest.raises(DayBudgetExhausted):
        gov.observe(day_remaining=0)


def test_a_429_waits_what_the_provider_asked() -> None:
    fake = FakeTime()
    gov = governor(fake=fake)
    gov.backoff(7)
    before = fake.now
    with gov.slot():
        pass
    assert fake.now - before == pytest.approx(7.0)
    assert gov.stats.rate_limited == 1 and gov.stats.retry_after_waited_s == 7


def test_a_call_is_dated_by_its_answer_so_the_provider_never_sees_one_too_many_in_its_window() -> None:
    fake = FakeTime()
    gov = governor(RateLimit(60, 60, "tenant"), fake=fake)
    answered: list[float] = []
    sent: list[float] = []
    for _ in range(61):
        with gov.slot():
            sent.append(fake.now)
            fake.now += 0.5  # the answer takes half a second; the provider counts the call somewhere in between
            answered.append(fake.now)
    # The 61st call leaves only once the first call's answer is a full window old.
    assert sent[60] >= answered[0] + 60


def test_calls_in_flight_fill_the_window_until_one_is_answered() -> None:
    gov = RateGovernor((RateLimit(2, 60, "tenant"),))
    release = threading.Event()
    holding = threading.Barrier(3)

    def hold() -> None:
        with gov.slot():
            holding.wait()
            release.wait(5)

    threads = [threading.Thread(target=hold) for _ in range(2)]
    for thread in threads:
        thread.start()
    holding.wait()
    # Both calls of the 2-call budget are in flight: a third must wait, with no completion time to wait for.
    with gov._lock:
        assert gov._delay_needed(time.monotonic()) is None
    release.set()
    for thread in threads:
        thread.join()
    with gov._lock:
        assert gov._delay_needed(time.monotonic()) == pytest.approx(60, abs=1)


class SharedLedger:
    """The calls of several processes' governors in one place, as the platform's database keeps them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []
        self.writes = 0

    def of(self, owner: str) -> LedgerView:
        return LedgerView(self, owner)


class LedgerView:
    def __init__(self, shared: SharedLedger, owner: str) -> None:
        self.shared, self.owner = shared, owner

    def elsewhere(self, since: float) -> list[float]:
        return sorted(at for who, at in self.shared.calls if who != self.owner and at >= since)

    def spent(self, answered: Sequence[float]) -> None:
        self.shared.writes += 1
        self.shared.calls.extend((self.owner, at) for at in answered)


def shared_governor(ledger: SharedLedger, owner: str, fake: FakeTime) -> RateGovernor:
    gov = RateGovernor([RateLimit(60, 60, "tenant")], clock=fake.clock, sleep=fake.sleep, wall=fake.clock)
    gov.share(ledger.of(owner))
    return gov


def test_calls_another_process_made_for_the_connection_fill_the_window_first() -> None:
    fake, ledger = FakeTime(), SharedLedger()
    discovery, pull = shared_governor(ledger, "connect", fake), shared_governor(ledger, "pull", fake)
    for _ in range(55):
        with discovery.slot():
            pass
    discovery.flush()
    start = fake.now
    for _ in range(10):
        with pull.slot():
            pass
    # 55 of the minute's 60 were spent elsewhere: five calls now, the other five once those age out.
    assert fake.now - start == pytest.approx(60.0)
    assert pull.stats.calls == 10 and pull.stats.waits >= 1


def test_a_governor_publishes_its_calls_at_most_once_a_second_and_all_of_them_on_flush() -> None:
    fake, ledger = FakeTime(), SharedLedger()
    gov = shared_governor(ledger, "pull", fake)
    for _ in range(30):
        with gov.slot():
            fake.now += 0.1  # three seconds of calls
    gov.flush()
    assert len(ledger.calls) == 30
    assert ledger.writes <= 4
    assert ledger.of("push").elsewhere(0) == sorted(at for _, at in ledger.calls)
    assert ledger.of("pull").elsewhere(0) == []  # its own calls are counted once, by itself


def test_a_governor_pacing_nothing_shares_nothing() -> None:
    fake, ledger = FakeTime(), SharedLedger()
    gov = RateGovernor([RateLimit(5000, 86400, "tenant")], clock=fake.clock, sleep=fake.sleep, wall=fake.clock)
    gov.share(ledger.of("pull"))
    with gov.slot():
        pass
    gov.flush()
    assert not gov.paced and ledger.calls == [] and ledger.writes == 0
