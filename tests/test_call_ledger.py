"""The rate budgets a connection's processes share through the app database (``DatabaseLedger``): what one
governor spent for an account, another governor of the same account counts; other accounts are untouched."""

from __future__ import annotations

import logging
import math

import pytest
from sqlalchemy import create_engine, func, select

from providers.base import RateLimit
from providers.kit.governor import RateGovernor
from tests.test_governor import FakeTime
from vrtx_pipelines.connect.call_ledger import KEEP_S, DatabaseLedger
from vrtx_pipelines.db.models import ProviderCall
from vrtx_pipelines.db.session import engine_for

EPOCH = 1_700_000_000.25  # a wall-clock time, a quarter into its second


def governor(db_url: str, account: str, fake: FakeTime) -> RateGovernor:
    gov = RateGovernor([RateLimit(60, 60, "realm")], clock=fake.clock, sleep=fake.sleep, wall=fake.clock)
    gov.share(DatabaseLedger(engine_for(db_url), "quickbooks", account, wall=fake.clock))
    return gov


def test_a_second_process_waits_for_what_the_first_spent_on_the_same_account_only(db_url: str) -> None:
    fake = FakeTime(EPOCH)
    connect, pull, other = (governor(db_url, a, fake) for a in ("realm-1", "realm-1", "realm-2"))
    for _ in range(60):
        with connect.slot():
            pass
    connect.flush()
    start = fake.now
    with other.slot():
        pass
    assert fake.now == start  # another company's budget is its own
    with pull.slot():
        pass
    # The minute was spent elsewhere; read back as answered at the end of their second, never earlier.
    assert fake.now - start == pytest.approx(60.0 + (math.floor(start) + 1 - start))


def test_its_own_calls_are_not_counted_twice_and_old_rows_go(db_url: str) -> None:
    fake = FakeTime(EPOCH)
    ledger = DatabaseLedger(engine_for(db_url), "quickbooks", "realm-1", wall=fake.clock)
    ledger.spent([fake.now - KEEP_S - 5, fake.now - KEEP_S - 5])
    ledger.spent([fake.now, fake.now, fake.now + 0.5])
    assert ledger.elsewhere(fake.now - 60) == []
    seen = DatabaseLedger(engine_for(db_url), "quickbooks", "realm-1", wall=fake.clock).elsewhere(fake.now - 60)
    assert seen == [float(math.floor(fake.now) + 1)] * 3
    with engine_for(db_url).connect() as db:
        kept = db.execute(select(func.sum(ProviderCall.calls))).scalar_one()
    assert kept == 3  # the rows older than the longest window went with the next write


def test_an_unreachable_database_costs_the_sharing_not_the_calls(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeTime(EPOCH)
    dead = create_engine("postgresql+psycopg2://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 1})
    gov = RateGovernor([RateLimit(60, 60, "realm")], clock=fake.clock, sleep=fake.sleep, wall=fake.clock)
    gov.share(DatabaseLedger(dead, "quickbooks", "realm-1", wall=fake.clock))
    with caplog.at_level(logging.WARNING, logger="vrtx_pipelines.connect.call_ledger"):
        for _ in range(3):
            with gov.slot():
                fake.now += 1.5
        gov.flush()
    assert gov.stats.calls == 3 and gov.stats.waits == 0
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "without the other processes' count" in warnings[0]
