"""The webhook worker (`vrtx webhook-worker`): applies received events' records and launches their targeted pulls,
in its own process, so the API's receiving path only verifies, stores and acknowledges.

It polls the inbox for connections with received events (one indexed query, ten times a second) and hands each to
the ``ImmediateDispatcher``: an atomic claim (several workers and the sensor never take the same event), the fast
path (records fetched by id, or taken from the event, and applied), the run launch. Events it hands back
(``release``: the webserver did not take the launch) are the sensor's. A connection whose events stay unclaimed
(held while its pushes are in flight) is offered again once a second, not on every poll.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from vrtx_pipelines.config import Settings
from vrtx_pipelines.credentials.vault import vault_from_settings
from vrtx_pipelines.db.models import Integration, TenantIntegration, WebhookInbox
from vrtx_pipelines.db.session import engine_for, session_factory
from vrtx_pipelines.errors import UnknownIntegration
from vrtx_pipelines.orchestrator import dagster_webserver_url
from vrtx_pipelines.registry import get_provider
from vrtx_pipelines.webhooks.apply import WebhookApplier
from vrtx_pipelines.webhooks.dispatch import RELEASED
from vrtx_pipelines.webhooks.launch import GraphQLRunLauncher, ImmediateDispatcher

log = logging.getLogger("vrtx.webhooks")

POLL_INTERVAL_S = 0.1
# An unchanged connection whose events were not claimed (held for in-flight pushes) is offered again this often.
REOFFER_AFTER_S = 1.0
MAX_CONNECTIONS_PER_POLL = 1000


class WebhookWorker:
    def __init__(
        self,
        sessions: Callable[[], Session],
        dispatcher: ImmediateDispatcher,
        *,
        poll_s: float = POLL_INTERVAL_S,
        reoffer_after_s: float = REOFFER_AFTER_S,
    ) -> None:
        self.sessions = sessions
        self.dispatcher = dispatcher
        self.poll_s = poll_s
        self.reoffer_after_s = reoffer_after_s
        # connection id -> (newest inbox id offered, when)
        self._offered: dict[int, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def pending(self) -> list[tuple[str, int, int]]:
        """(provider slug, connection id, newest inbox id) of each connection with received events not handed
        back to the sensor, oldest waiting first."""
        inbox = WebhookInbox
        session = self.sessions()
        try:
            rows = session.execute(
                select(Integration.slug, inbox.tenant_integration_id, func.max(inbox.id))
                .join(TenantIntegration, TenantIntegration.id == inbox.tenant_integration_id)
                .join(Integration, Integration.id == TenantIntegration.integration_id)
                .where(inbox.status == "received", or_(inbox.run_id.is_(None), inbox.run_id != RELEASED))
                .group_by(Integration.slug, inbox.tenant_integration_id)
                .order_by(func.min(inbox.id))
                .limit(MAX_CONNECTIONS_PER_POLL)
            ).all()
        finally:
            session.close()
        return [(slug, connection_id, newest) for slug, connection_id, newest in rows]

    def poll(self, *, force: bool = False) -> int:
        """Offer each connection with new events (or waiting ones, now and then) to the dispatcher; returns how
        many were offered. ``force``: offer every pending connection."""
        now = time.monotonic()
        offered = 0
        pending = self.pending()
        with self._lock:
            waiting = {connection_id for _, connection_id, _ in pending}
            self._offered = {k: v for k, v in self._offered.items() if k in waiting}
        for slug, connection_id, newest in pending:
            with self._lock:
                last = self._offered.get(connection_id)
                due = force or last is None or newest > last[0] or now - last[1] >= self.reoffer_after_s
                if due:
                    self._offered[connection_id] = (newest, now)
            if not due:
                continue
            try:
                provider = get_provider(slug)
            except UnknownIntegration:
                continue  # a provider removed from this build: its rows stay for an operator to look at
            if provider.pulls is None:
                continue
            self.dispatcher.notify(provider, connection_id)
            offered += 1
        return offered

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set, then let the dispatches in progress finish."""
        log.info("webhook worker started")
        while not stop.is_set():
            try:
                self.poll()
            except Exception:  # a database hiccup must not end the worker: the next poll retries
                log.exception("webhook worker poll failed")
                stop.wait(1.0)
            stop.wait(self.poll_s)
        self.dispatcher.close()
        log.info("webhook worker stopped")

    def start(self) -> tuple[threading.Thread, threading.Event]:
        """Run in a background thread of this process (the CLI runs it in the foreground)."""
        stop = threading.Event()
        thread = threading.Thread(target=self.run, args=(stop,), name="vrtx-webhook-worker", daemon=True)
        thread.start()
        return thread, stop

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Offer everything pending now and wait for the dispatches to finish (tests, shutdown)."""
        self.poll(force=True)
        return self.dispatcher.wait_idle(timeout_s)


def build_worker(settings: Settings, *, dispatch_threads: int = 4) -> WebhookWorker:
    """The worker as `vrtx webhook-worker` runs it: the fast path on, runs launched on the Dagster webserver."""
    sessions = session_factory(engine_for(settings.sqlalchemy_url))
    applier = WebhookApplier(sessions, vault_from_settings(settings), settings)
    launcher = GraphQLRunLauncher(dagster_webserver_url(settings))
    dispatcher = ImmediateDispatcher(sessions, launcher, applier=applier, workers=dispatch_threads)
    return WebhookWorker(sessions, dispatcher)
