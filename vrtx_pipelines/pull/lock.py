"""One pull of a connection at a time, whichever run does it.

Single-connection runs queue one per connection under the ``vrtx/connection`` tag, but a batch run holds many
connections and carries none of their tags: this lock is what keeps a webhook's or an on-demand pull and a
batch's pull of the same connection from running dlt on one pipeline state at once. It is a process lock
(``vrtx_pipelines.db.process_locks``): an advisory lock on PostgreSQL, a file lock under VRTX_HOME on SQLite.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.process_locks import ProcessLock, hold

# Advisory-lock keys are one bigint space per database; this namespace keeps ours apart from anyone else's.
_NAMESPACE = 0x56525458  # "VRTX"


@contextmanager
def pull_lock(settings: Settings, connection_id: int, *, wait: bool) -> Iterator[bool]:
    """Hold the connection's pull lock for the block; yields False (holding nothing) when ``wait`` is off and
    another pull holds it."""
    with hold(settings, ProcessLock(_NAMESPACE, "pulls", connection_id), wait=wait) as held:
        yield held
