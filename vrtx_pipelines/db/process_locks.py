"""Locks a process holds for as long as it lives, across processes and machines.

PostgreSQL: a session-level advisory lock on a connection of its own; SQLite (one machine): a file lock under
VRTX_HOME. The database or the kernel frees either when its process ends, however it ends (a SIGKILL included),
so a lock serialises work across processes, and a lock found free says that whoever took it is gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.session import engine_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProcessLock:
    """One lock: a ``namespace`` of PostgreSQL's advisory-lock keys (or a ``folder`` of lock files) and a key in
    it; both fit PostgreSQL's two-int4 form."""

    namespace: int
    folder: str
    key: int

    def file(self, settings: Settings) -> Path:
        return settings.home / "locks" / self.folder / f"{self.key}.lock"


@contextmanager
def hold(settings: Settings, lock: ProcessLock, *, wait: bool) -> Iterator[bool]:
    """Hold ``lock`` for the block; yields False (holding nothing) when ``wait`` is off and another holds it."""
    if settings.uses_postgres:
        # The app's pooled engine: the lock's connection goes back to the pool only unlocked (or invalidated).
        # Never dispose of it here: other threads' sessions hold its connections, which a disposed pool orphans
        # (open until the cyclic collector finds them; a batch of 1,000 tenants ran out of connections so).
        with engine_for(settings.sqlalchemy_url).connect() as conn:
            function = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
            params = {"ns": lock.namespace, "key": lock.key}
            got = conn.execute(text(f"SELECT {function}(:ns, :key)"), params).scalar()
            conn.commit()  # the lock is the session's, not the transaction's: hold no transaction open meanwhile
            held = True if wait else bool(got)
            try:
                yield held
            finally:
                if held:
                    try:
                        conn.execute(text("SELECT pg_advisory_unlock(:ns, :key)"), params)
                        conn.commit()
                    except Exception as exc:
                        conn.invalidate()  # a pooled connection must never keep the lock: closing it frees it
                        if not (isinstance(exc, DBAPIError) and exc.connection_invalidated):
                            raise
                        # The session is gone (the server restarted, the network dropped) and its lock with
                        # it: nothing is left to release, and what the block did or raised stands.
                        log.warning("process lock lost with its database session lock=%s/%d", lock.folder, lock.key)
        return
    path = lock.file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle: IO[str] = open(path, "w")  # noqa: SIM115 -- held across the yield
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        handle.close()


def is_free(settings: Settings, lock: ProcessLock) -> bool:
    """Whether no process holds ``lock`` now (taken and given back at once: a holder starting meanwhile waits a
    moment, or, not waiting, finds it taken)."""
    if not settings.uses_postgres and not lock.file(settings).exists():
        return True  # never taken here, or given back and removed (``forget``)
    with hold(settings, lock, wait=False) as held:
        return held


def forget(settings: Settings, lock: ProcessLock) -> None:
    """Remove a lock no process will take again (SQLite's lock file; PostgreSQL keeps nothing)."""
    if not settings.uses_postgres:
        with contextlib.suppress(FileNotFoundError):
            lock.file(settings).unlink()
