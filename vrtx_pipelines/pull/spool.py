"""A pull's canonical records: mapped while dlt extracts, spooled to disk, applied to the app database alongside
dlt's load and committed only once the load succeeded."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from dlt.common.runtime.collector import NullCollector

from vrtx_pipelines.db.models import utcnow
from vrtx_pipelines.pull.catch_up import unmark_behind
from vrtx_pipelines.records.store import ApplyReport, apply_spool, canonical_json, spool_line, sweep_unlisted


class RecordSpool:
    """Canonical records captured during extraction, kept on disk until the load has succeeded."""

    def __init__(self, directory: Path, mappers: Mapping[str, Callable[[Mapping[str, Any]], Any]]) -> None:
        self.directory = directory
        self.mappers = mappers
        self._files: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.skipped: dict[str, int] = {}
        self.rows: dict[str, int] = {}

    def capture(self, entity: str) -> Callable[[Any], Any]:
        mapper = self.mappers[entity]

        def _capture(item: Any) -> Any:
            self.rows[entity] = self.rows.get(entity, 0) + 1
            try:
                line = spool_line(canonical_json(mapper(item)))
            except ValueError:
                # No canonical form (e.g. a deleted payment): the raw row still loads; the run counts it.
                with self._lock:
                    self.skipped[entity] = self.skipped.get(entity, 0) + 1
                return item
            with self._lock:
                handle = self._files.get(entity)
                if handle is None:
                    handle = self._files[entity] = self.path(entity).open("w", encoding="utf-8", newline="")
                handle.write(line)
            return item

        return _capture

    def count(self, entity: str) -> Callable[[Any], Any]:
        """Rows of an entity with no canonical form at all (QuickBooks' tax codes, Stripe's prices and payouts) are
        only counted: nothing to spool."""

        def _count(item: Any) -> Any:
            self.rows[entity] = self.rows.get(entity, 0) + 1
            return item

        return _count

    def entities(self) -> list[str]:
        for handle in self._files.values():
            handle.close()
        return list(self._files)

    def path(self, entity: str) -> Path:
        """The entity's spool file: one ``records.spool_line`` per record."""
        return self.directory / f"{entity}.tsv"


class CanonicalApply:
    """Applies a pull's spooled canonical records in a thread while dlt loads the warehouse (PostgreSQL: the two
    are mostly database work and the load leaves a core idle), and commits them only once the load succeeded.

    ``start`` is called when dlt's load step begins (extraction, hence the spool, is complete by then); ``finish``
    commits and returns the per-entity reports; ``abandon`` rolls back. Without a ``start`` (on SQLite, one writer
    at a time), ``finish`` starts the apply itself, after the load.
    """

    def __init__(
        self,
        sessions: Callable[[], Any],
        connection_id: int,
        spool: RecordSpool,
        marked: Sequence[str] = (),
        *,
        relisted: Callable[[], Collection[str]] = frozenset,
        listing_began: datetime | None = None,
    ) -> None:
        """``marked``: the entities the load marked behind (``pull.catch_up``), unmarked on commit. ``relisted``: the
        entities the pull had to list in full because their change feed could not be followed (known once
        extraction is done); their records the listing no longer had are marked deleted."""
        self.sessions = sessions
        self.connection_id = connection_id
        self.spool = spool
        self.marked = list(marked)
        self.relisted = relisted
        self.listing_began = listing_began or utcnow()
        self.reports: dict[str, ApplyReport] = {}
        self.apply_ms = 0
        self._error: BaseException | None = None
        self._commit = False
        self._verdict = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="vrtx-canonical-apply", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        session = self.sessions()
        try:
            started = time.monotonic()
            relisted = set(self.relisted())
            spooled = self.spool.entities()
            for entity in spooled:
                sweep = self.listing_began if entity in relisted else None
                path = self.spool.path(entity)
                self.reports[entity] = apply_spool(session, self.connection_id, entity, path, sweep_before=sweep)
            for entity in sorted(relisted - set(spooled)):
                if entity in self.spool.mappers:  # listed in full and found empty: every record is gone
                    gone = sweep_unlisted(session, self.connection_id, entity, set(), self.listing_began)
                    self.reports[entity] = ApplyReport(deleted=gone)
            self.apply_ms = round((time.monotonic() - started) * 1000)
            self._verdict.wait()
            if self._commit:
                unmark_behind(session, self.connection_id, self.marked)
                session.commit()
            else:
                session.rollback()
        except BaseException as exc:  # noqa: BLE001 -- handed to the run's thread by finish()
            self._error = exc
            session.rollback()
        finally:
            session.close()

    def finish(self) -> dict[str, ApplyReport]:
        self.start()
        self._commit = True
        self._verdict.set()
        assert self._thread is not None
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.reports

    def abandon(self) -> None:
        self._verdict.set()
        if self._thread is not None:
            self._thread.join()


class OnLoadStart(NullCollector):
    """Calls ``hook`` when dlt's load step starts, and otherwise reports to the pipeline's own progress display."""

    def __init__(self, inner: Any, hook: Callable[[], None]) -> None:
        self.inner = inner
        self.hook = hook

    def update(self, *args: Any, **kwargs: Any) -> None:
        self.inner.update(*args, **kwargs)

    def __call__(self, step: str) -> Any:
        return self.inner(step)

    def on_start_trace_step(self, trace: Any, step: Any, pipeline: Any) -> None:
        if step == "load":
            self.hook()
        self.inner.on_start_trace_step(trace, step, pipeline)

    def on_start_trace(self, *args: Any, **kwargs: Any) -> None:
        self.inner.on_start_trace(*args, **kwargs)

    def on_end_trace_step(self, *args: Any, **kwargs: Any) -> None:
        self.inner.on_end_trace_step(*args, **kwargs)

    def on_end_trace(self, *args: Any, **kwargs: Any) -> None:
        self.inner.on_end_trace(*args, **kwargs)

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self.inner  # a pipeline copied by dlt keeps the plain display, not this run's hook
