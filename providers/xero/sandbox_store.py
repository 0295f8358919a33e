"""One entity's records in the default order (UpdatedDateUTC ASC, then ID) without materialising them.

Seeded records are indices 0..seeded-1 with strictly increasing seeded timestamps. Changed and created records are
"overrides": a stored record plus a ``(ms, id, index)`` entry in a small sorted ``tail``; a changed seeded index is
also in ``moved`` (its seeded position is empty). The ordered sequence is the merge of the unmoved seeded indices
with the tail, and any position in it is found with bisect, so a page costs O(page + overrides), not O(records).
Writes (PUT/POST) go through ``put`` the same way ``touch`` and ``create`` do, so ``on_put`` (set by the
organisation) sees every change, whoever makes it: that is what feeds webhooks and the contact-name index.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

Record = dict[str, Any]


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
    """The records with UpdatedDateUTC in [lo, hi], default order: ``total`` and ``indices(start, stop)``."""

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
