"""The deterministic data generator and the sandbox clock: ids, keys, names and pools that never drift."""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from providers.sandbox_kit import pools
from providers.sandbox_kit.clock import ManualClock, floor_day, ms_at, ms_of, parse_if_modified_since
from providers.sandbox_kit.data import (
    IdCodec,
    Timeline,
    cents,
    company_email,
    company_name,
    mix64,
    money,
    person_email,
    person_name,
    record_rng,
    stable_key,
)


def test_keys_and_ids_are_the_same_in_every_process_and_on_every_day() -> None:
    # Fixed values: a change here changes every sandbox's ids and data, which tests and demos rely on.
    assert stable_key("vrtx", 42) == 14526909501271214401
    codec = IdCodec(stable_key("k"))
    assert codec.encode(0) == "70ef26e0-59e7-49ac-aa96-409d9c1d4131"
    assert codec.encode(123_456_789) == "29f62d5b-3760-49b4-881b-52c5fa703980"
    assert mix64(1, 2) == mix64(1, 2) != mix64(1, 3)


def test_id_codec_is_a_keyed_permutation_that_knows_its_own_ids() -> None:
    codec, other = IdCodec(stable_key("contacts")), IdCodec(stable_key("invoices"))
    indices = [*range(2000), 1 << 40, (1 << 62) - 1]
    ids = [codec.encode(i) for i in indices]
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(value).version == 4 for value in ids)
    assert [codec.decode(value) for value in ids] == indices
    assert codec.decode(ids[5].upper()) == 5  # ids are matched without case
    assert not {codec.encode(i) for i in range(2000)} & {other.encode(i) for i in range(2000)}
    for foreign in (other.encode(5), str(uuid.uuid4()), "not-an-id", "", "INV-000001"):
        assert codec.decode(foreign) is None


def test_timeline_increases_strictly_across_its_span() -> None:
    timeline = Timeline((1000, 2000), 10)
    stamps = [timeline(i) for i in range(10)]
    assert stamps[0] == 1000 and stamps == sorted(set(stamps)) and stamps[-1] < 2000
    assert Timeline((0, 5), 100)(99) == 99  # more records than milliseconds: still one apart


def test_person_and_company_names_are_unique_for_every_index() -> None:
    people = len(pools.FIRST_NAMES) * len(pools.LAST_NAMES)
    names = [person_name(j)[2] for j in range(2 * people + 3)]
    assert len(set(names)) == len(names)
    assert person_name(0) == ("Olivia", "Smith", "Olivia Smith") and person_name(people)[2] == "Olivia Smith 2"
    companies = [company_name(j) for j in range(2 * len(pools.COMPANY_WORDS) * len(pools.COMPANY_TRADES) + 3)]
    assert len(set(companies)) == len(companies) and companies[0] == "Kauri Builders Ltd"


def test_records_draw_the_same_values_from_the_same_seed() -> None:
    first, second = record_rng(stable_key("seed"), 7), record_rng(stable_key("seed"), 7)
    nz = pools.NEW_ZEALAND
    drawn = [
        (nz.street(r), nz.po_box(r), nz.local_number(r), nz.mobile_number(r), nz.tax_number(r)) for r in (first, second)
    ]
    assert drawn[0] == drawn[1]
    street, po_box, local, mobile, tax = drawn[0]
    assert street.split(" ", 1)[1] in nz.streets and po_box.startswith("PO Box ")
    assert len(local) == 8 and mobile.startswith("21 ") and len(tax.split("-")) == 3
    assert person_email("Mia", "Chen", random.Random(1)).endswith((".com", ".net", ".org"))
    assert person_email("Mia", "Chen", random.Random(1)).startswith("mia.chen@example.")
    assert company_email("Kauri Builders & Co") == "accounts@kauribuildersco.example.com"


def test_money_is_kept_in_cents() -> None:
    assert money(4600) == 46.0 and cents(0.1 + 0.2) == 30 and cents(money(123_456)) == 123_456


def test_the_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock()
    assert clock() == clock() == 1_800_000_000.0
    clock.advance(1800)
    assert clock() == 1_800_001_800.0


def test_millisecond_conversions_round_down_and_read_naive_times_as_utc() -> None:
    moment = datetime(2024, 1, 1, 12, 0, 0, 999_999, tzinfo=UTC)
    assert ms_of(moment) == ms_at(2024, 1, 1) + 12 * 3_600_000 + 999
    assert ms_of(moment.replace(tzinfo=None)) == ms_of(moment)
    assert floor_day(ms_of(moment)) == ms_at(2024, 1, 1)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("2024-06-01T00:00:00", datetime(2024, 6, 1, tzinfo=UTC)),
        ("2024-06-01T02:00:00.250+02:00", datetime(2024, 6, 1, 0, 0, 0, 250_000, tzinfo=UTC)),
        ("2024-06-01T00:00:00.1234567Z", datetime(2024, 6, 1, 0, 0, 0, 123_456, tzinfo=UTC)),
        ("Sat, 01 Jun 2024 00:00:00 GMT", datetime(2024, 6, 1, tzinfo=UTC)),
        ("2024-05-31T19:00:00-05:00", datetime(2024, 5, 31, 19, tzinfo=timezone(timedelta(hours=-5)))),
    ],
)
def test_if_modified_since_reads_iso_8601_and_http_dates(header: str, expected: datetime) -> None:
    assert parse_if_modified_since(header) == ms_of(expected)


@pytest.mark.parametrize("header", [None, "", "   ", "yesterday", "2024-13-01T00:00:00"])
def test_an_unreadable_if_modified_since_is_ignored(header: str | None) -> None:
    assert parse_if_modified_since(header) is None


def test_a_real_clock_reads_now() -> None:
    assert abs(ms_of(datetime.now(UTC)) - time.time() * 1000) < 5000
