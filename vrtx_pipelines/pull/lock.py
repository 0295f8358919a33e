"""One pull of a connection at a time, whichever run does it.

Single-connection runs queue one per connection under the ``vrtx/connection`` tag, but a batch run holds many
connections and carries none of their tags: this lock is what keeps a webhook's or an on-demand pull and a
batch's pull of the same connection from running dlt on one pipeline state at once. PostgreSQL: a session-level
advisory lock on a connection of its own (so it holds across processes and machines); SQLite (one machine): a
file lock under VRTX_HOME.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.session import engine_for

# Advisory-lock keys are one bigint space per database; this namespace keeps ours apart from anyone else's.
_NAMESPACE = 0x56525458  # "VRTX"
log = logging.getLogger(__name__)


@contextmanager
def pull_lock(settings: Settings, connection_id: int, *, wait: bool) -> Iterator[bool]:
    """Hold the connection's pull lock for the block; yields False (holding nothing) when ``wait`` is off and
    another pull holds it."""
    if settings.uses_postgres:
        with engine_for(settings.sqlalchemy_url).connect() as conn:
            function = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
            params = {"ns": _NAMESPACE, "id": connection_id}
            got = conn.execute(text(f"SELECT {function}(:ns, :id)"), params).scalar()
            conn.commit()  # the lock is the session's, not the transaction's: hold no transaction open meanwhile
            held = True if wait else bool(got)
            try:
                yield held
            finally:
                if held:
                    try:
                        conn.execute(text("SELECT pg_advisory_unlock(:ns, :id)"), params)
                        conn.commit()
                    except DBAPIError as exc:
                        conn.invalidate()  # a pooled connection must never keep the lock: closing it frees it
                        if not exc.connection_invalidated:
                            raise
                        # The session is gone (the server restarted, the network dropped) and its lock with it:
                        # nothing is left to release, and what the block did or raised stands.
                        log.warning("pull lock lost with its database session connection=%d", connection_id)
        return
    directory = settings.home / "locks" / "pulls"
    directory.mkdir(parents=True, exist_ok=True)
    handle: IO[str] = open(directory / f"{connection_id}.lock", "w")  # noqa: SIM115 -- held across the yield
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        handle.close()
