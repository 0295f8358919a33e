"""An in-memory store of a tenant's records, ordered and windowed by change time, without materialising them.

``EntityTable`` holds one entity in its default order (change time ascending, then id). Seeded records are indices
0..seeded-1 with strictly increasing seeded timestamps, generated on demand. Changed and created records are
"overrides": a stored record plus a ``(ms, id, index)`` entry in a small sorted ``tail``; a changed seeded index is
also in ``moved`` (its seeded position is empty). The ordered sequence is the merge of the unmoved seeded indices
with the tail, and any position in it is found with bisect, so a page costs O(page + overrides), not O(records).

``Store`` is a tenant's tables plus what every sandbox does with them: selections (change-time window, filter,
order, a set of ids) cached until the next change, change stamps that never go back in time, and observers told
of every stored change, whoever makes it (API writes and test helpers alike): that is what feeds webhooks and
indexes such as ``UniqueIndex`` (unique contact names).
"""

from __future__ import annotations

import copy
from bisect import bisect_left, bisect_right, insort
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from providers.sandbox_kit.clock import Clock

Record = dict[str, Any]
Fetch = Callable[[int, int], list[Record]]  # (start, stop) -> the records at those positions of a selection
Predicate = Callable[[Record], bool]
# (entity, record id, record, created, ms): told of every stored change.
ChangeObserver = Callable[[str, str, Record, bool, int], None]


class _Seeded:
    """The seeded timestamps as a read-only sequence, so ``bisect`` can search them without a list."""

    def __init__(self, ms: Callable[[int], int], count: int) -> None:
        self._ms, self._count = ms, count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: int) -> int:
        return self._ms(index)


@dataclass(frozen=True)
class Window:
    """The records changed in [lo, hi] (ms), default order: ``total`` and ``indices(start, stop)``."""

    table: EntityTable
    first: int  # seeded range [first, stop_seeded)
    stop_seeded: int
    seeded_total: int
    tail_positions: tuple[int, ...]
    tail_indices: tuple[int, ...]

    @property
    def total(self) -> int:
        return self.seeded_total + len(self.tail_indices)

    def indices(self, start: int = 0, stop: int | None = None) -> list[int]:
        stop = self.total if stop is None else min(stop, self.total)
        out: list[int] = []
        if start >= stop:
            return out
        moved = self.table.moved
        tp = bisect_left(self.tail_positions, start)
        seeded_rank = start - tp
        x = self.table.nth_unmoved(self.first, seeded_rank) if seeded_rank < self.seeded_total else -1
        mp = bisect_left(moved, x)
        for position in range(start, stop):
            if tp < len(self.tail_positions) and self.tail_positions[tp] == position:
                out.append(self.tail_indices[tp])
                tp += 1
                continue
            out.append(x)
            x += 1
            while mp < len(moved) and moved[mp] < x:
                mp += 1
            while mp < len(moved) and moved[mp] == x:
                x, mp = x + 1, mp + 1
        return out


class EntityTable:
    def __init__(
        self,
        seeded: int,
        seeded_ms: Callable[[int], int],
        id_of: Callable[[int], str],
        generate: Callable[[int], Record],
    ) -> None:
        self.seeded = seeded
        self.seeded_ms = seeded_ms
        self.id_of = id_of
        self._generate = generate
        self.next_index = seeded
        self.overrides: dict[int, Record] = {}
        self.override_ms: dict[int, int] = {}
        self.moved: list[int] = []  # seeded indices with an override, sorted
        self.tail: list[tuple[int, str, int]] = []  # (ms, id, index) of every override, sorted
        # (index, record, created, ms) after every put; ``created`` when the index did not exist before.
        self.on_put: Callable[[int, Record, bool, int], None] | None = None
        self._seq = _Seeded(seeded_ms, seeded)

    def __len__(self) -> int:
        return self.next_index

    def exists(self, index: int) -> bool:
        return 0 <= index < self.seeded or index in self.overrides

    def record(self, index: int) -> Record:
        override = self.overrides.get(index)
        return override if override is not None else self._generate(index)

    def updated_ms(self, index: int) -> int:
        return self.override_ms[index] if index in self.override_ms else self.seeded_ms(index)

    def put(self, index: int, record: Record, ms: int) -> None:
        """Store ``record`` (changed or new) as last updated at ``ms``."""
        created = not self.exists(index)
        if index in self.override_ms:
            old = (self.override_ms[index], self.id_of(index), index)
            del self.tail[bisect_left(self.tail, old)]
        elif index < self.seeded:
            insort(self.moved, index)
        self.overrides[index] = record
        self.override_ms[index] = ms
        insort(self.tail, (ms, self.id_of(index), index))
        self.next_index = max(self.next_index, index + 1)
        if self.on_put is not None:
            self.on_put(index, record, created, ms)

    def nth_unmoved(self, first: int, rank: int) -> int:
        """The seeded index holding the ``rank``-th unmoved place from ``first`` (the least fixpoint)."""
        base = bisect_left(self.moved, first)
        x = first + rank
        while True:
            nxt = first + rank + bisect_right(self.moved, x) - base
            if nxt == x:
                return x
            x = nxt

    def _seeded_below(self, ms: int) -> int:
        return bisect_left(self._seq, ms)

    def window(self, lo: int | None = None, hi: int | None = None) -> Window:
        first = self._seeded_below(lo) if lo is not None else 0
        stop = self._seeded_below(hi + 1) if hi is not None else self.seeded
        stop = max(stop, first)
        moved_before = bisect_left(self.moved, first)
        seeded_total = (stop - first) - (bisect_left(self.moved, stop) - moved_before)
        t_lo = bisect_left(self.tail, (lo,)) if lo is not None else 0
        t_hi = bisect_left(self.tail, (hi + 1,)) if hi is not None else len(self.tail)
        positions: list[int] = []
        indices: list[int] = []
        for rank, (ms, record_id, index) in enumerate(self.tail[t_lo:t_hi]):
            # Unmoved seeded records in range that sort before this one: earlier ms, or equal ms and smaller ID.
            cut = min(max(self._seeded_below(ms), first), stop)
            if cut < stop and self.seeded_ms(cut) == ms and self.id_of(cut) < record_id and not self._is_moved(cut):
                cut += 1
            before = (cut - first) - (bisect_left(self.moved, cut) - moved_before)
            positions.append(before + rank)
            indices.append(index)
        return Window(self, first, stop, seeded_total, tuple(positions), tuple(indices))

    def _is_moved(self, index: int) -> bool:
        at = bisect_left(self.moved, index)
        return at < len(self.moved) and self.moved[at] == index


class SelectionCache:
    """Matching indices of filtered or re-ordered selections, until the organisation next changes."""

    def __init__(self, size: int = 32) -> None:
        self._size = size
        self._entries: OrderedDict[Hashable, list[int]] = OrderedDict()

    def get(self, key: Hashable) -> list[int] | None:
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def put(self, key: Hashable, value: list[int]) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


def sort_key(value: Any) -> tuple[int, Any]:
    """A total order over JSON values: null first, then booleans, numbers, times, and text without case."""
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, int | float):
        return (2, value)
    if isinstance(value, datetime):
        return (3, value)
    return (4, str(value).casefold())


class Store:
    """A tenant's tables (``tables[entity]``), their selections, change stamps and change observers.

    ``not_before_ms`` is where change stamps start (after the seeded history, so changes sort after it);
    ``change_field`` names the field holding a record's change time (ordering by it alone needs no scan), which
    ``save`` writes as ``render_ms(ms)``; ``sort_key`` orders a field's values for ``order`` (a provider decodes
    its own date strings first)."""

    def __init__(
        self,
        clock: Clock,
        *,
        not_before_ms: int = 0,
        change_field: str | None = None,
        render_ms: Callable[[int], Any] = lambda ms: ms,
        sort_key: Callable[[Any], Any] = sort_key,
    ) -> None:
        self.tables: dict[str, EntityTable] = {}
        self.observers: list[ChangeObserver] = []
        self.version = 0  # bumped by every change: selections are cached per version
        self.cache = SelectionCache()
        self._clock = clock
        self._not_before_ms = not_before_ms
        self._last_stamp = 0
        self._sort_key = sort_key
        self._change_field = change_field
        self._render_ms = render_ms
        self._decoders: dict[str, Callable[[str], int | None]] = {}
        self._unstamped: set[str] = set()
        self._id_fields: dict[str, str] = {}

    def add_table(
        self, entity: str, seeded: int, seeded_ms: Callable[[int], int], id_of: Callable[[int], str],
        generate: Callable[[int], Record], *, decode: Callable[[str], int | None] | None = None, stamped: bool = True,
        id_field: str | None = None,
    ) -> EntityTable:  # fmt: skip
        """A table of ``seeded`` generated records; ``decode`` reads an id back to its index (``IdCodec.decode``);
        ``stamped`` False: its records carry no change field; ``id_field``: what test helpers report a record by
        when it is not the id (a tax rate's code)."""
        table = EntityTable(seeded, seeded_ms, id_of, generate)
        if id_field is not None:
            self._id_fields[entity] = id_field
        if decode is not None:
            self._decoders[entity] = decode
        if not stamped:
            self._unstamped.add(entity)

        def told(index: int, record: Record, created: bool, ms: int) -> None:
            for observer in self.observers:
                observer(entity, table.id_of(index), record, created, ms)

        table.on_put = told
        self.tables[entity] = table
        return table

    def record(self, entity: str, index: int) -> Record:
        return self.tables[entity].record(index)

    def index_of(self, entity: str, record_id: str) -> int | None:
        """The index of the record ``record_id`` names, if it exists (a provider adds its other keys)."""
        decode = self._decoders.get(entity)
        index = decode(record_id) if decode is not None else None
        return index if index is not None and self.tables[entity].exists(index) else None

    def find(self, entity: str, field: str, value: str) -> int | None:
        """The first record whose ``field`` equals ``value`` without case: a scan, for small tables (codes)."""
        table, wanted = self.tables[entity], value.casefold()
        matches = (i for i in range(len(table)) if table.exists(i))
        return next((i for i in matches if str(table.record(i).get(field, "")).casefold() == wanted), None)

    def resolve(self, entity: str, record_ids: Sequence[str] | str | int) -> list[int]:
        """Indices of the records named (one id, several), or of the ``n`` least recently changed."""
        if isinstance(record_ids, int):
            return self.oldest(entity, record_ids)
        found = []
        for record_id in [record_ids] if isinstance(record_ids, str) else record_ids:
            index = self.index_of(entity, record_id)
            if index is None:
                raise KeyError(f"no {entity} record {record_id!r}")
            found.append(index)
        return found

    def save(self, entity: str, index: int, record: Record, ms: int) -> Record:
        """Store ``record`` (changed or new) as changed at ``ms``, its change field saying so."""
        if self._change_field is not None and entity not in self._unstamped:
            record[self._change_field] = self._render_ms(ms)
        self.tables[entity].put(index, record, ms)
        return record

    def change(self, entity: str, index: int, edit: Callable[[Record], object], ms: int | None = None) -> Record:
        """A copy of the record, edited and saved as changed at ``ms`` (default: a new stamp)."""
        record = copy.deepcopy(self.tables[entity].record(index))
        edit(record)
        return self.save(entity, index, record, self.stamp() if ms is None else ms)

    def stamp(self) -> int:
        """Now, in ms, for a change: never before ``not_before_ms`` nor an earlier change, so that every change
        sorts after the seeded history and after the changes made before it, whatever the clock says."""
        self._last_stamp = max(int(self._clock() * 1000), self._not_before_ms, self._last_stamp)
        return self._last_stamp

    def changed(self) -> None:
        """Call once a change is stored: cached selections are stale."""
        self.version += 1
        self.cache.clear()

    def oldest(self, entity: str, n: int) -> list[int]:
        """The indices of the ``n`` least recently changed records."""
        return self.tables[entity].window().indices(0, n)

    # --- changes for tests: what changes is the provider's (``touched``, ``made``) --------------------------------

    def touched(self, entity: str, index: int, record: Record) -> None:
        """Change a copy of record ``index`` the way ``touch`` should (a field changes, visibly)."""
        raise NotImplementedError(f"{entity} records are not touched in this sandbox")

    def made(self, entity: str, index: int, ms: int) -> Record:
        """New record ``index`` for ``create``, made at ``ms``; a hook may store it itself (when making it changes
        other records too), else ``create`` does."""
        raise NotImplementedError(f"{entity} records are not created in this sandbox")

    def touch(self, entity: str, record_ids: Sequence[str] | str | int) -> list[str]:
        """Change records (or the N least recently changed) now, never earlier than earlier changes; their ids."""
        now = self.stamp()
        for index in (indices := self.resolve(entity, record_ids)):
            self.change(entity, index, lambda record, i=index: self.touched(entity, i, record), now)  # type: ignore[misc]
        self.changed()
        return [self._reported(entity, index) for index in indices]

    def create(self, entity: str, n: int) -> list[str]:
        """``n`` new records changed now; their ids."""
        created = []
        for _ in range(n):
            now, index = self.stamp(), self.tables[entity].next_index
            record = self.made(entity, index, now)
            if not self.tables[entity].exists(index):
                self.save(entity, index, record, now)
            created.append(self._reported(entity, index))
        self.changed()
        return created

    def _reported(self, entity: str, index: int) -> str:
        id_field = self._id_fields.get(entity)
        table = self.tables[entity]
        return str(table.record(index)[id_field]) if id_field is not None else table.id_of(index)

    def select(
        self,
        entity: str,
        *,
        lo: int | None = None,
        hi: int | None = None,
        predicate: Predicate | None = None,
        predicate_key: Hashable = None,
        order: Sequence[tuple[str, bool]] = (),
        indices: Sequence[int] | None = None,
    ) -> tuple[int, Fetch]:
        """(total, fetch(start, stop)) of the records changed in [lo, hi] matching ``predicate`` (cached under
        ``predicate_key``), in ``order`` [(field, descending)] (default: change time, then id); ``indices``
        restricts to those records. Unfiltered and ordered by change time, it is index arithmetic."""
        table = self.tables[entity]
        order = list(order)
        by_change = not order or [f for f, _ in order] == [self._change_field]
        if indices is None and predicate is None and by_change:
            window = table.window(lo, hi)  # the fast path: nothing scanned
            descending = bool(order) and order[0][1]
            total = window.total

            def fetch_window(start: int, stop: int) -> list[Record]:
                if not descending:
                    return [table.record(i) for i in window.indices(start, stop)]
                return [table.record(i) for i in reversed(window.indices(max(total - stop, 0), total - start))]

            return total, fetch_window
        key = (entity, self.version, lo, hi, predicate_key, tuple(order), None if indices is None else tuple(indices))
        chosen = self.cache.get(key)
        if chosen is None:
            chosen = self._scan(table, lo, hi, predicate, order, indices)
            self.cache.put(key, chosen)
        found = chosen
        return len(found), lambda start, stop: [table.record(i) for i in found[start:stop]]

    def _scan(
        self,
        table: EntityTable,
        lo: int | None,
        hi: int | None,
        predicate: Predicate | None,
        order: list[tuple[str, bool]],
        indices: Sequence[int] | None,
    ) -> list[int]:
        if indices is None:
            candidates = table.window(lo, hi).indices()
        else:
            wanted = {i for i in indices if table.exists(i)}
            in_range = [
                i
                for i in wanted
                if (lo is None or table.updated_ms(i) >= lo) and (hi is None or table.updated_ms(i) <= hi)
            ]
            candidates = sorted(in_range, key=lambda i: (table.updated_ms(i), table.id_of(i)))
        # Stream: keep indices (and sort keys), never every record at once.
        rows: list[tuple[int, tuple[Any, ...]]] = []
        for i in candidates:
            record = table.record(i)
            if predicate is None or predicate(record):
                rows.append((i, tuple(self._sort_key(record.get(field)) for field, _ in order)))
        for position in reversed(range(len(order))):  # stable sorts, last key first
            rows.sort(key=lambda row: row[1][position], reverse=order[position][1])
        return [i for i, _ in rows]


class UniqueIndex:
    """Which record ids carry each value of one field (compared after ``normalize``), for providers that require
    unique names: built from every record on first use, then kept current by observing the store's changes.
    ``seeded_value(index)`` may give a seeded record's value without generating the whole record."""

    def __init__(
        self,
        store: Store,
        entity: str,
        field: str,
        *,
        normalize: Callable[[str], str] = str.casefold,
        seeded_value: Callable[[int], str] | None = None,
    ) -> None:
        self._store, self._entity, self._field = store, entity, field
        self._normalize, self._seeded_value = normalize, seeded_value
        self._ids: dict[str, set[str]] | None = None
        self._value_of: dict[str, str] = {}  # record id -> its normalized value
        store.observers.append(self._observe)

    def owners(self, value: str) -> set[str]:
        if self._ids is None:
            self._build()
        assert self._ids is not None
        return self._ids.get(self._normalize(value), set())

    def _build(self) -> None:
        self._ids = {}
        table = self._store.tables[self._entity]
        for index in range(len(table)):
            if not table.exists(index):
                continue
            override = table.overrides.get(index)
            if override is None and self._seeded_value is not None:
                value = self._seeded_value(index)
            else:
                value = str(table.record(index).get(self._field, ""))
            self._add(table.id_of(index), value)

    def _add(self, record_id: str, value: str) -> None:
        assert self._ids is not None
        key = self._normalize(value)
        self._ids.setdefault(key, set()).add(record_id)
        self._value_of[record_id] = key

    def _observe(self, entity: str, record_id: str, record: Record, created: bool, ms: int) -> None:
        if entity != self._entity or self._ids is None:
            return
        old = self._value_of.get(record_id)
        if old is not None:
            self._ids.get(old, set()).discard(record_id)
        self._add(record_id, str(record.get(self._field, "")))
