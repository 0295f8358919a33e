"""Rate-limit metering: quotas per tenant and per app over rolling windows, calls in flight, what is left."""

from __future__ import annotations

from providers.sandbox_kit.clock import DAY_S, MINUTE_S, ManualClock
from providers.sandbox_kit.metering import CallStats, Quota, RateLimits, RateMeter, Refusal

XERO_LIKE = RateLimits(
    (Quota("day", 5, DAY_S), Quota("appminute", 4, MINUTE_S, per="app"), Quota("minute", 3, MINUTE_S)), concurrent=2
)


def test_a_full_window_refuses_until_its_oldest_call_leaves_it() -> None:
    clock, meter = ManualClock(), RateMeter()
    for _ in range(3):
        assert meter.acquire("app", "t1", clock(), XERO_LIKE) is None
        meter.release("app", "t1")
        clock.advance(10)
    assert meter.acquire("app", "t1", clock(), XERO_LIKE) == Refusal("minute", 30)
    assert meter.remaining("app", "t1", clock(), XERO_LIKE) == {"day": 2, "appminute": 1, "minute": 0}
    clock.advance(30)
    assert meter.acquire("app", "t1", clock(), XERO_LIKE) is None  # the first call left the window


def test_quotas_are_checked_in_order_and_per_app_quotas_span_tenants() -> None:
    clock, meter = ManualClock(), RateMeter()
    for tenant in ("t1", "t2", "t3", "t4"):
        assert meter.acquire("app", tenant, clock(), XERO_LIKE) is None
        meter.release("app", tenant)
    assert meter.acquire("app", "t5", clock(), XERO_LIKE) == Refusal("appminute", 60)
    assert meter.acquire("other-app", "t5", clock(), XERO_LIKE) is None  # another app has its own budget
    day_first = RateLimits((Quota("day", 1, DAY_S), Quota("minute", 1, MINUTE_S)))
    meter.acquire("x", "t", clock(), day_first)
    assert meter.acquire("x", "t", clock(), day_first) == Refusal("day", 86_400)


def test_calls_in_flight_are_capped_per_app_and_tenant() -> None:
    clock, meter = ManualClock(), RateMeter()
    assert meter.acquire("app", "t1", clock(), XERO_LIKE) is None
    assert meter.acquire("app", "t1", clock(), XERO_LIKE) is None
    assert meter.acquire("app", "t1", clock(), XERO_LIKE) == Refusal("concurrent", 1)
    assert meter.in_flight("app", "t1") == 2 and meter.acquire("app", "t2", clock(), XERO_LIKE) is None
    meter.release("app", "t1")
    assert meter.acquire("app", "t1", clock(), XERO_LIKE) is None


def test_unenforced_limits_still_count_and_a_refused_call_counts_nothing() -> None:
    clock, meter = ManualClock(), RateMeter()
    loose = RateLimits(XERO_LIKE.quotas, concurrent=1, enforce=False)
    for _ in range(6):
        assert meter.acquire("app", "t1", clock(), loose) is None
    assert meter.remaining("app", "t1", clock(), loose) == {"day": 0, "appminute": 0, "minute": 0}
    other = RateMeter()
    other.acquire("app", "t1", clock(), XERO_LIKE)
    other.acquire("app", "t1", clock(), XERO_LIKE)
    assert other.acquire("app", "t1", clock(), XERO_LIKE) is not None
    assert other.remaining("app", "t1", clock(), XERO_LIKE)["minute"] == 1


def test_remaining_reads_full_where_the_caller_or_tenant_is_unknown() -> None:
    clock, meter = ManualClock(), RateMeter()
    meter.acquire("app", "t1", clock(), XERO_LIKE)
    assert meter.remaining(None, None, clock(), XERO_LIKE) == {"day": 5, "appminute": 4, "minute": 3}
    assert meter.remaining("app", None, clock(), XERO_LIKE) == {"day": 5, "appminute": 3, "minute": 3}


def test_stats_count_totals_and_per_tenant() -> None:
    stats = CallStats()
    stats.bump("token_requests", ["t1", "t2"])
    stats.bump("api_calls", ["t1"])
    stats.page("t1", "invoices")
    assert stats.token_requests == 1 and stats["t1"].token_requests == stats["t2"].token_requests == 1
    assert stats.api_calls == 1 and stats["t2"].api_calls == 0
    assert stats.pages_served["invoices"] == stats["t1"].pages_served["invoices"] == 1
