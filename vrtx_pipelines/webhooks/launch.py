"""Launching a webhook's targeted pull at once from the API process, through Dagster's GraphQL API.

The sensor daemon ticks every 5 s at best, too slow for a change in the provider to show in the records API
within seconds; so after acknowledging a delivery the API claims the connection's received events and submits
the run to the Dagster webserver itself. Claims are atomic (see ``webhook_dispatch``): whatever this path does
not launch stays ``received`` for the sensor. Launches run on a small worker pool, coalesced per connection, and
pause for a while after the webserver failed to answer, so a burst of deliveries never becomes a burst of calls.

Before launching, each claimed batch goes through the fast path (``webhook_apply``): its records are fetched by id
and applied at once, since even a run launched at once spends seconds starting its process. The fast path keeps
working while launches are paused; the events are then handed back to the sensor as before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from sqlalchemy.orm import Session

from providers.base import Provider
from vrtx_pipelines.names import PARTITION_TAG, pull_job_name
from vrtx_pipelines.orchestrator import CODE_LOCATION, REPOSITORY, graphql_client
from vrtx_pipelines.webhooks.apply import WebhookApplier
from vrtx_pipelines.webhooks.dispatch import Batch, claim_batches, release

log = logging.getLogger("vrtx.webhooks")

BACKOFF_AFTER_FAILURE_S = 30.0
DRAIN_INTERVAL_S = 0.25


class RunLauncher(Protocol):
    def launch(self, batch: Batch) -> str:
        """Submit the batch's pull; returns the run id. Raises when the run could not be submitted."""
        ...


class GraphQLRunLauncher:
    """Submits runs of ``<slug>_sync`` with the batch's asset selection, partition and tags."""

    def __init__(self, url: str, timeout_s: int = 10) -> None:
        self.url = url
        self._client = graphql_client(url, timeout_s)

    def launch(self, batch: Batch) -> str:
        run_id: str = self._client.submit_job_execution(
            pull_job_name(batch.slug),
            repository_location_name=CODE_LOCATION,
            repository_name=REPOSITORY,
            run_config={},
            tags={**batch.tags, PARTITION_TAG: batch.tenant_id},
            asset_selection=[key.path for key in batch.asset_keys],
        )
        return run_id


class ImmediateDispatcher:
    """Claims a connection's received events right after they are stored, applies their records (when given an
    applier) and launches their targeted pull."""

    def __init__(
        self,
        sessions: Callable[[], Session],
        launcher: RunLauncher,
        *,
        applier: WebhookApplier | None = None,
        workers: int = 2,
        backoff_s: float = BACKOFF_AFTER_FAILURE_S,
    ) -> None:
        self.sessions = sessions
        self.launcher = launcher
        self.applier = applier
        self.backoff_s = backoff_s
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vrtx-webhook-launch")
        self._lock = threading.Lock()
        # connection id -> True when events arrived while its launch was in progress (launch again after)
        self._active: dict[int, bool] = {}
        self._paused_until = 0.0
        self.launched: list[str] = []  # run ids, newest last (bounded), for operators and tests

    def notify(self, provider: Provider, connection_id: int) -> None:
        """Never blocks the caller: the work happens on the pool."""
        if self.applier is None and self._launches_paused():
            return  # the webserver failed a moment ago: the sensor is handling events meanwhile
        with self._lock:
            if connection_id in self._active:
                self._active[connection_id] = True
                return
            self._active[connection_id] = False
        self._executor.submit(self._drain, provider, connection_id)

    def _drain(self, provider: Provider, connection_id: int) -> None:
        while True:
            started = time.monotonic()
            try:
                self.dispatch(provider, connection_id)
            except Exception:  # a launch failure must never surface: the sensor is the safety net
                log.exception("immediate webhook dispatch failed provider=%s", provider.slug)
            with self._lock:
                more = bool(self._active.get(connection_id))
                if not more:
                    self._active.pop(connection_id, None)
                    return
            # Events kept arriving: gather them a moment, so a burst of deliveries becomes a few dispatches (one
            # provider fetch and one run each), not one per delivery.
            time.sleep(max(0.0, DRAIN_INTERVAL_S - (time.monotonic() - started)))
            with self._lock:
                self._active[connection_id] = False

    def dispatch(self, provider: Provider, connection_id: int) -> list[str]:
        """Claim the connection's received events and launch their pull; returns the launched run ids."""
        session = self.sessions()
        try:
            batches = claim_batches(session, provider, connection_id=connection_id, unreleased_only=True)
            session.commit()
            run_ids = []
            for batch in batches:
                if self.applier is not None:
                    self.applier.apply(provider, batch)  # never raises: what it misses, the run applies
                if self._launches_paused():
                    release(session, batch.inbox_ids)  # the sensor launches them meanwhile
                    session.commit()
                    continue
                try:
                    run_ids.append(self.launcher.launch(batch))
                except Exception as exc:  # noqa: BLE001 -- any failure to submit: hand the rows back
                    self._paused_until = time.monotonic() + self.backoff_s
                    release(session, batch.inbox_ids)
                    session.commit()
                    log.warning(
                        "webhook pull not launched provider=%s tenant=%s events=%d (%s); the sensor will",
                        batch.slug,
                        batch.tenant_id,
                        len(batch.inbox_ids),
                        type(exc).__name__,
                    )
            with self._lock:
                self.launched = (self.launched + run_ids)[-100:]
            return run_ids
        finally:
            session.close()

    def _launches_paused(self) -> bool:
        return time.monotonic() < self._paused_until

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """True once no launch is pending (tests, shutdown)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if not self._active:
                    return True
            time.sleep(0.01)
        return False

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
