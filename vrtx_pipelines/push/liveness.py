"""A push run's sign of life: while its op sends, it holds a process lock of its own.

A run whose process was killed with its daemon (one machine's crash) writes no failure: Dagster keeps it STARTED,
and the DefaultRunLauncher offers no health check to the run monitor. Left so, it would hold its pushes
``running`` until their lease ran out, and its connection's place in the push queue for good. The lock tells: the
op takes it before it claims a row and gives it back once every outcome is committed, and the database (or the
kernel, on SQLite) frees it the moment the process dies. So a run still STARTED whose lock is free while it holds
claimed rows is dead (``vrtx_pipelines.orchestration.pushes`` fails it and returns its rows to the outbox).
No Dagster here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.process_locks import ProcessLock, forget, hold, is_free

_NAMESPACE = 0x56525850  # "VRXP": apart from the pulls' connection locks


def _run_lock(run_id: str) -> ProcessLock:
    # Two runs sharing a key (1 in 2^32 a pair) would take turns, and a dead one look alive while the other runs.
    key = int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:4], "big", signed=True)
    return ProcessLock(_NAMESPACE, "push-runs", key)


@contextmanager
def alive(settings: Settings, run_id: str) -> Iterator[None]:
    """Hold the run's lock for the block: its sign of life while it claims and sends. Waits, so a sensor looking
    at that instant (taking and giving it back) never leaves the run sending without it."""
    lock = _run_lock(run_id)
    try:
        with hold(settings, lock, wait=True):
            yield
    finally:
        forget(settings, lock)


def gone(settings: Settings, run_id: str) -> bool:
    """Whether no process holds the run's lock: it never took it, finished with it, or died."""
    return is_free(settings, _run_lock(run_id))
