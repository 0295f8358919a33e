"""Launching a queued push's run at once from the API process, through Dagster's GraphQL API.

The push sensor ticks every 5 s at best; submitting the connection's batch right after the push is queued saves
that wait. Nothing depends on it: the rows stay ``pending`` until a run claims them (atomically), so the sensor
still launches whatever this path did not, and a batch launched twice is claimed once. Launches run on one worker
thread, coalesced per connection, and pause after the webserver failed to answer. While the run launched last for
a connection has not started, no other is launched for it: a run claims every push of its connection due when it
starts, so the pushes of a burst queued meanwhile all go with it (another run would start after it, for nothing).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy.orm import Session

from providers.base import Provider
from vrtx_pipelines.db.models import utcnow
from vrtx_pipelines.names import push_job_name, push_run_config, push_run_tags
from vrtx_pipelines.orchestrator import CODE_LOCATION, REPOSITORY, graphql_client
from vrtx_pipelines.push.outbox import due_batches

log = logging.getLogger("vrtx.pushes")

BACKOFF_AFTER_FAILURE_S = 30.0
# Rows handed to a run are not launched again for this long: the queued run claims them; if it died, the sensor
# returns them to the outbox and launches them.
RELAUNCH_AFTER_S = 120.0
# A run in these states has not claimed anything yet: what is due when it starts is its to send.
NOT_STARTED = frozenset({"QUEUED", "NOT_STARTED", "STARTING"})


class PushLauncher:
    def __init__(
        self, sessions: Callable[[], Session], dagster_url: str, *, backoff_s: float = BACKOFF_AFTER_FAILURE_S
    ):
        self.sessions = sessions
        self.dagster_url = dagster_url
        self.backoff_s = backoff_s
        self._client: Any = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vrtx-push-launch")
        self._lock = threading.Lock()
        self._pending: set[tuple[str, int]] = set()
        self._paused_until = 0.0
        self._handed: dict[int, float] = {}  # push id -> when a launched run was given it
        self._last_run: dict[int, str] = {}  # connection id -> the run launched last for it
        self.launched: list[str] = []  # run ids, newest last (bounded), for operators and tests

    def notify(self, provider: Provider, connection_id: int) -> None:
        """Never blocks the caller; a connection already waiting for its launch is not queued twice."""
        if time.monotonic() < self._paused_until:
            return
        key = (provider.slug, connection_id)
        with self._lock:
            if key in self._pending:
                return
            self._pending.add(key)
        self._executor.submit(self._launch, provider.slug, connection_id)

    def _launch(self, slug: str, connection_id: int) -> None:
        with self._lock:
            self._pending.discard((slug, connection_id))
        try:
            session = self.sessions()
            try:
                batches = due_batches(session, slug, utcnow(), connection_id=connection_id)
            finally:
                session.close()
            for batch in batches:
                if not self._unlaunched(batch.push_ids):
                    continue  # a run already launched for these rows will claim them: another would claim nothing
                if self._client is None:
                    self._client = graphql_client(self.dagster_url)
                if self._not_started(connection_id):
                    continue  # the run launched last takes these rows when it starts
                run_id = self._client.submit_job_execution(
                    push_job_name(slug),
                    repository_location_name=CODE_LOCATION,
                    repository_name=REPOSITORY,
                    run_config=push_run_config(slug, batch.connection_id, batch.push_ids),
                    tags=push_run_tags(slug, batch.tenant_id),
                )
                with self._lock:
                    self.launched = [*self.launched, run_id][-100:]
                    self._last_run[connection_id] = run_id
        except Exception as exc:  # noqa: BLE001 -- the push sensor launches whatever this did not
            self._paused_until = time.monotonic() + self.backoff_s
            log.warning("push run not launched at once slug=%s (%s); the push sensor will", slug, type(exc).__name__)

    def _not_started(self, connection_id: int) -> bool:
        """Whether the run launched last for the connection is still waiting to start (asked of the webserver;
        when it cannot tell, a run is launched: a redundant one claims nothing)."""
        run_id = self._last_run.get(connection_id)
        if run_id is None:
            return False
        try:
            status = self._client.get_run_status(run_id)
        except Exception:  # noqa: BLE001 -- unknown: launch, as before this check
            return False
        return getattr(status, "value", status) in NOT_STARTED

    def _unlaunched(self, push_ids: tuple[int, ...]) -> bool:
        """Whether some of these rows were not handed to a run lately; marks them all as handed."""
        now = time.monotonic()
        with self._lock:
            self._handed = {push_id: at for push_id, at in self._handed.items() if now - at < RELAUNCH_AFTER_S}
            fresh = [push_id for push_id in push_ids if push_id not in self._handed]
            for push_id in push_ids:
                self._handed[push_id] = now
        return bool(fresh)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
