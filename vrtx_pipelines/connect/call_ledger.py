"""The rate budgets a connection's processes share: every governor of one provider account (the pull run, a push
run, the webhook worker, the connect's discovery) writes its calls here and counts the others' (``CallLedger`` in
``providers.kit.governor``).

Calls are kept per whole second of their answer and per governor, and read back as answered at the end of their
second: late, never early, so a window never reopens before the provider's does. Each read and write is its own
short transaction on the app database, apart from the caller's session (a run's session may be mid-transaction, and
is not shared between threads). A database that cannot be reached costs the sharing, not the call: the governor
goes on with its own count and the provider's headers, and the failure is logged once.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from providers.base import Provider, RateLimit
from providers.kit.governor import RateGovernor, paced_limits
from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.models import ProviderCall
from vrtx_pipelines.db.session import engine_for

log = logging.getLogger(__name__)

KEEP_S = 300  # rows older than this go as new ones are written (paced windows are a minute at most)


class DatabaseLedger:
    def __init__(
        self,
        engine: Engine,
        provider: str,
        account: str,
        *,
        owner: str | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.engine, self.provider, self.account, self.wall = engine, provider, account[:255], wall
        self.owner = owner or str(uuid.uuid4())
        self._warned = False

    def elsewhere(self, since: float) -> list[float]:
        query = (
            select(ProviderCall.second, func.sum(ProviderCall.calls))
            .where(
                ProviderCall.provider == self.provider,
                ProviderCall.account == self.account,
                ProviderCall.owner != self.owner,
                ProviderCall.second >= math.floor(since),
            )
            .group_by(ProviderCall.second)
            .order_by(ProviderCall.second)
        )
        try:
            with self.engine.connect() as db:
                buckets = db.execute(query).all()
        except SQLAlchemyError as exc:
            self._failed(exc)
            return []
        return [float(second + 1) for second, calls in buckets for _ in range(int(calls))]

    def spent(self, answered: Sequence[float]) -> None:
        per_second = Counter(math.floor(at) for at in answered)
        if not per_second:
            return
        rows = [
            {"provider": self.provider, "account": self.account, "second": s, "owner": self.owner, "calls": n}
            for s, n in per_second.items()
        ]
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        insert = dialect.insert(ProviderCall).values(rows)
        upsert = insert.on_conflict_do_update(
            index_elements=["provider", "account", "second", "owner"],
            set_={"calls": ProviderCall.calls + insert.excluded.calls},
        )
        stale = delete(ProviderCall).where(
            ProviderCall.provider == self.provider,
            ProviderCall.account == self.account,
            ProviderCall.second < math.floor(self.wall()) - KEEP_S,
        )
        try:
            with self.engine.begin() as db:
                db.execute(upsert)
                db.execute(stale)
        except SQLAlchemyError as exc:
            self._failed(exc)

    def _failed(self, exc: SQLAlchemyError) -> None:
        if not self._warned:
            self._warned = True
            log.warning(
                "%s calls for one account are paced without the other processes' count: %s",
                self.provider,
                type(exc).__name__,
            )


def published_limits(settings: Settings, provider: Provider) -> tuple[RateLimit, ...]:
    """The limits a connection's calls are paced under: the provider's published ones (``VRTX_PACING=published``),
    or none, pacing only on what its headers and 429s say (``headers``)."""
    return tuple(provider.rate_limits) if settings.pacing == "published" else ()


def share_budget(governor: RateGovernor, settings: Settings, provider: Provider, account: str | None) -> None:
    """Have ``governor`` pace with every other process calling for ``account`` (nothing to share when it paces
    no window, or the connection names no account yet)."""
    if governor.paced and account:
        governor.share(DatabaseLedger(engine_for(settings.sqlalchemy_url), provider.slug, account))


def spent_elsewhere(settings: Settings, provider: Provider, accounts: Sequence[str], answered: Sequence[float]) -> None:
    """Calls made without a governor (the connect's discovery, before the connection exists), written for each
    account they reached so that the first sync right after counts them."""
    if not answered or not paced_limits(published_limits(settings, provider)):
        return
    engine = engine_for(settings.sqlalchemy_url)
    for account in dict.fromkeys(accounts):
        DatabaseLedger(engine, provider.slug, account).spent(answered)
