"""The change-time store: seeded records generated on demand plus overrides, ordered by change time, windowed by
modified-since, selections filtered, ordered and cached, change stamps, observers and unique indexes."""

from __future__ import annotations

import random
from typing import Any

import pytest

from providers.sandbox_kit.clock import ManualClock
from providers.sandbox_kit.data import IdCodec, stable_key
from providers.sandbox_kit.store import EntityTable, Record, Store, UniqueIndex, sort_key

SEEDED = 200
CODEC = IdCodec(stable_key("things"))


def seeded_ms(index: int) -> int:
    return 1_000 + index * 10  # strictly increasing, like every seeded timeline


def generate(index: int) -> Record:
    return {"id": CODEC.encode(index), "n": index, "name": f"Thing {index}", "changed": seeded_ms(index)}


def new_store(clock: ManualClock | None = None) -> Store:
    store = Store(clock or ManualClock(5.0), not_before_ms=3_000, change_field="changed")
    store.add_table("things", SEEDED, seeded_ms, CODEC.encode, generate)
    return store


def brute_force(table: EntityTable, lo: int | None, hi: int | None) -> list[int]:
    alive = [i for i in range(len(table)) if table.exists(i)]
    ordered = sorted(alive, key=lambda i: (table.updated_ms(i), table.id_of(i)))
    return [
        i for i in ordered if (lo is None or table.updated_ms(i) >= lo) and (hi is None or table.updated_ms(i) <= hi)
    ]


def test_windows_and_pages_match_a_full_sort_after_random_changes() -> None:
    rng = random.Random(3)
    table = new_store().tables["things"]
    for step in range(120):
        index = rng.randrange(len(table) + 3) if step % 4 else len(table)  # changes, and now and then a new one
        ms = rng.choice([seeded_ms(rng.randrange(SEEDED)), 2_995 + step, rng.randrange(900, 4_000)])
        table.put(index, {**table.record(index), "n": -1} if table.exists(index) else generate(index), ms)
        for lo, hi in ((None, None), (1_500, None), (None, 2_000), (1_200, 1_210), (5_000, None)):
            expected = brute_force(table, lo, hi)
            window = table.window(lo, hi)
            assert window.total == len(expected)
            assert window.indices() == expected
            start = rng.randrange(len(expected) + 1)
            assert window.indices(start, start + 17) == expected[start : start + 17]


def test_a_seeded_record_is_generated_until_changed_then_served_from_its_override() -> None:
    store = new_store()
    table = store.tables["things"]
    assert store.record("things", 7) == generate(7) and not table.overrides
    table.put(7, {**generate(7), "name": "Changed"}, 9_999)
    assert store.record("things", 7)["name"] == "Changed" and table.updated_ms(7) == 9_999
    assert table.window(9_999).indices() == [7] and 7 not in table.window(None, 9_998).indices()
    assert len(table) == SEEDED and not table.exists(SEEDED)


def test_select_filters_orders_restricts_to_ids_and_caches_until_a_change() -> None:
    store = new_store()
    calls: list[int] = []

    def odd(record: Record) -> bool:
        calls.append(record["n"])
        return record["n"] % 2 == 1

    total, fetch = store.select("things", predicate=odd, predicate_key="odd", order=[("name", True)])
    names = [r["name"] for r in fetch(0, total)]
    assert total == SEEDED // 2 and names == sorted(names, key=str.casefold, reverse=True)
    scanned = len(calls)
    assert store.select("things", predicate=odd, predicate_key="odd", order=[("name", True)])[0] == total
    assert len(calls) == scanned  # cached
    store.tables["things"].put(1, {**generate(1), "n": 2}, store.stamp())
    store.changed()
    assert store.select("things", predicate=odd, predicate_key="odd", order=[("name", True)])[0] == total - 1
    total, fetch = store.select("things", indices=[9, 3, 3, 10_000], lo=seeded_ms(3), hi=seeded_ms(9))
    assert [r["n"] for r in fetch(0, total)] == [3, 9]


def test_ordering_by_change_time_alone_is_served_without_a_scan_either_way() -> None:
    store = new_store()
    calls: list[Any] = []
    store.tables["things"]._generate = lambda i: calls.append(i) or generate(i)  # type: ignore[method-assign]
    total, fetch = store.select("things", order=[("changed", True)], lo=seeded_ms(150))
    assert total == 50 and [r["n"] for r in fetch(0, 3)] == [199, 198, 197]
    assert len(calls) == 3  # only the records served were generated


def test_change_stamps_never_go_back_and_start_after_the_seeded_history() -> None:
    clock = ManualClock(1.0)  # earlier than the seeded history
    store = new_store(clock)
    assert store.stamp() == 3_000
    clock.now = 10.0
    assert store.stamp() == 10_000
    clock.now = 4.0  # the clock went back: changes still sort after earlier ones
    assert store.stamp() == 10_000


def test_observers_hear_every_change_and_unique_indexes_follow_them() -> None:
    store = new_store()
    heard: list[tuple[str, str, bool, int]] = []
    store.observers.append(
        lambda entity, record_id, record, created, ms: heard.append((entity, record_id, created, ms))
    )
    names = UniqueIndex(store, "things", "name", normalize=lambda v: " ".join(v.split()).casefold())
    assert names.owners("thing  7") == {CODEC.encode(7)}
    table = store.tables["things"]
    table.put(7, {**generate(7), "name": "Renamed"}, 4_000)
    table.put(SEEDED, {**generate(SEEDED), "name": "THING 8"}, 4_001)
    assert heard == [("things", CODEC.encode(7), False, 4_000), ("things", CODEC.encode(SEEDED), True, 4_001)]
    assert names.owners("Thing 7") == set() and names.owners("renamed") == {CODEC.encode(7)}
    assert names.owners("thing 8") == {CODEC.encode(8), CODEC.encode(SEEDED)}


@pytest.mark.parametrize(
    ("values", "expected"),
    [([3, None, True, "b", 1.5, "A"], [None, True, 1.5, 3, "A", "b"]), (["x", "X", "w"], ["w", "x", "X"])],
)
def test_sort_key_is_a_total_order_over_json_values(values: list[Any], expected: list[Any]) -> None:
    assert sorted(values, key=sort_key) == expected


def test_records_are_named_by_id_changed_on_copies_and_saved_with_their_change_time() -> None:
    store = Store(ManualClock(5.0), not_before_ms=3_000, change_field="changed", render_ms=lambda ms: f"@{ms}")
    store.add_table("things", SEEDED, seeded_ms, CODEC.encode, generate, decode=CODEC.decode)
    store.add_table("plain", 2, seeded_ms, CODEC.encode, generate, stamped=False)
    assert store.index_of("things", CODEC.encode(4).upper()) == 4 and store.index_of("things", "nope") is None
    assert store.resolve("things", CODEC.encode(4)) == [4] and store.resolve("things", 2) == [0, 1]
    with pytest.raises(KeyError, match="no things record"):
        store.resolve("things", ["nope"])
    seeded = store.record("things", 4)
    changed = store.change("things", 4, lambda record: record.update(name="Renamed"))
    assert changed["name"] == "Renamed" and changed["changed"] == "@5000" and seeded["name"] == "Thing 4"
    assert store.tables["things"].updated_ms(4) == 5000
    saved = store.save("plain", 2, {"n": 2}, 6000)
    assert "changed" not in saved and store.tables["plain"].updated_ms(2) == 6000


class Changing(Store):
    """A store whose test helpers change a name and make numbered things, one of them stored by its hook."""

    def touched(self, entity: str, index: int, record: Record) -> None:
        record["name"] = f"Touched {index}"

    def made(self, entity: str, index: int, ms: int) -> Record:
        record = {"id": CODEC.encode(index), "name": f"New {index}", "n": index}
        if index % 2:
            self.save(entity, index, record, ms)  # as when making it changes other records too
        return record


def test_test_helpers_touch_and_create_through_the_providers_hooks() -> None:
    store = Changing(ManualClock(5.0), not_before_ms=3_000, change_field="changed")
    store.add_table("things", 3, seeded_ms, CODEC.encode, generate, decode=CODEC.decode)
    heard: list[str] = []
    store.observers.append(lambda entity, record_id, record, created, ms: heard.append(record_id))
    assert store.touch("things", 2) == [CODEC.encode(0), CODEC.encode(1)]
    assert store.record("things", 1)["name"] == "Touched 1" and store.record("things", 1)["changed"] == 5000
    assert store.create("things", 2) == [CODEC.encode(3), CODEC.encode(4)]
    assert heard == [CODEC.encode(i) for i in (0, 1, 3, 4)]  # each change told once, whoever stored it
    order = [r["n"] for r in store.select("things")[1](0, 5)]
    assert order[0] == 2 and sorted(order[1:]) == [0, 1, 3, 4]  # changed together: after the untouched one
    with pytest.raises(NotImplementedError):
        Store(ManualClock()).made("things", 0, 0)
