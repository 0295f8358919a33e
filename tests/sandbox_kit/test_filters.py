"""The filter engine: dialects for two providers' syntaxes, evaluation with the provider's words for errors,
change-time bounds lifted out for the store, order clauses; and a listing served over real HTTP on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from providers.sandbox_kit.clock import ManualClock, ms_of
from providers.sandbox_kit.data import IdCodec, stable_key
from providers.sandbox_kit.filters import Dialect, FilterError, Parser, parse_filter, parse_order
from providers.sandbox_kit.serve import ServedApp
from providers.sandbox_kit.store import Store

FIELDS = frozenset({"Name", "Total", "Status", "Paid", "Changed", "Contact"})
RECORDS: list[dict[str, Any]] = [
    {"Name": "Kauri Ltd", "Total": 120.0, "Status": "PAID", "Paid": True, "Contact": {"City": "Nelson"}},
    {"Name": "harbour co", "Total": 80.5, "Status": "DRAFT", "Paid": False, "Contact": {"City": "Napier"}},
    {"Name": "Tui Group", "Total": 300.0, "Status": "PAID", "Paid": None, "Contact": None},
]


def _date(parser: Parser) -> datetime:
    year, month, day = (int(n) for n in parser.arguments())
    return datetime(year, month, day, tzinfo=UTC)


def _method(name: str, value: Any, args: tuple[Any, ...]) -> Any:
    if name.lower() == "startswith":
        return value is not None and str(value).lower().startswith(str(args[0]).lower())
    raise FilterError(f"no method {name}")


LINQ = Dialect("Invoice", FIELDS, constructors={"date": _date}, method=_method)
ODATA = Dialect(
    "message",
    FIELDS,
    comparisons={"eq": "==", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="},
    and_words=("AND",),
    or_words=("OR",),
    not_words=("NOT",),
    string=r"'(?:[^']|'')*'",
    unquote=lambda text: text[1:-1].replace("''", "'"),
    fold_case=False,
)


def matching(dialect: Dialect, text: str) -> list[str]:
    predicate = parse_filter(dialect, text).predicate
    assert predicate is not None
    return [record["Name"] for record in RECORDS if predicate(record)]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('Status == "PAID"', ["Kauri Ltd", "Tui Group"]),
        ('status = "paid" && Total > 200', ["Tui Group"]),  # names and text without case
        ('NOT (Status == "PAID") OR Paid == true', ["Kauri Ltd", "harbour co"]),
        ("Paid != null AND Total <= 120", ["Kauri Ltd", "harbour co"]),
        ('Contact.City == "Napier"', ["harbour co"]),
        ('Name.StartsWith("t") || Total < 100', ["harbour co", "Tui Group"]),
        ('"PAID" <> Status', ["harbour co"]),
    ],
)
def test_a_linq_like_dialect_filters_records(text: str, names: list[str]) -> None:
    assert matching(LINQ, text) == names


def test_an_odata_like_dialect_reads_the_same_engine_differently() -> None:
    assert matching(ODATA, "Status eq 'PAID' AND Total gt 200") == ["Tui Group"]
    assert matching(ODATA, "NOT (Total lt 100) AND Name ne 'Kauri Ltd'") == ["Tui Group"]
    assert matching(ODATA, "Name eq 'HARBOUR CO'") == []  # this dialect compares text exactly
    assert matching(ODATA, "Name eq 'it''s'") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Nonsense == 1", "unknown field 'Nonsense'"),
        ('Status == "PAID" AND (', "expression expected"),
        ("Total == 1)", "syntax error"),
        ("Total # 1", "unexpected '#'"),
        ('Paid == "yes"', "'==' cannot compare boolean with text"),
        ("Total", "a condition was expected"),
        ('Name.StartsWith("x").Length', "unknown field 'Length'"),
    ],
)
def test_bad_filters_are_refused_in_the_dialects_words(text: str, message: str) -> None:
    with pytest.raises(FilterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        predicate = parse_filter(LINQ, text).predicate
        assert predicate is not None
        [predicate(record) for record in RECORDS]


def test_change_time_bounds_are_lifted_out_and_the_rest_stays_a_predicate() -> None:
    day = ms_of(datetime(2024, 1, 1, tzinfo=UTC))
    lifted = parse_filter(LINQ, "Changed >= Date(2024, 1, 1) AND Changed < Date(2024, 1, 2)", "Changed")
    assert (lifted.lo_ms, lifted.hi_ms, lifted.predicate) == (day, day + 86_400_000 - 1, None)
    flipped = parse_filter(LINQ, 'Date(2024, 1, 1) < Changed && Status == "PAID"', "Changed")
    assert flipped.lo_ms == day + 1 and flipped.hi_ms is None and flipped.predicate is not None
    either = parse_filter(LINQ, 'Changed >= Date(2024, 1, 1) OR Status == "PAID"', "Changed")
    assert either.lo_ms is None and either.predicate is not None  # under OR a bound is just a condition


def test_order_clauses_name_fields_canonically() -> None:
    assert parse_order(LINQ, "total DESC, name") == [("Total", True), ("Name", False)]
    assert parse_order(LINQ, None) == []
    for bad, message in (("Total UP", "syntax error in order"), ("Bogus", "unknown field 'Bogus'")):
        with pytest.raises(FilterError, match=message):
            parse_order(LINQ, bad)


@pytest.fixture
def listing() -> Iterator[httpx.Client]:
    codec = IdCodec(stable_key("rows"))

    def row(i: int) -> dict[str, Any]:
        return {"Id": codec.encode(i), "Name": f"Row {i}", "Total": float(i), "Changed": 1_000 + i}

    store = Store(ManualClock(), change_field="Changed")
    store.add_table("rows", 50, lambda i: 1_000 + i, codec.encode, row)
    app = FastAPI()

    @app.get("/rows")
    async def rows(request: Request) -> Response:
        try:
            where = parse_filter(LINQ, request.query_params.get("where"), "Changed")
            order = parse_order(LINQ, request.query_params.get("order"))
        except FilterError as exc:
            return JSONResponse({"message": str(exc)}, status_code=400)
        total, fetch = store.select(
            "rows",
            lo=where.lo_ms,
            hi=where.hi_ms,
            predicate=where.predicate,
            predicate_key=request.url.query,
            order=order,
        )
        return JSONResponse({"total": total, "names": [r["Name"] for r in fetch(0, 5)]})

    with ServedApp(app) as served, httpx.Client(base_url=served.base_url) as http:
        yield http


def test_a_listing_serves_filters_and_orders_through_the_store(listing: httpx.Client) -> None:
    assert listing.get("/rows", params={"where": "Total >= 45"}).json() == {
        "total": 5,
        "names": ["Row 45", "Row 46", "Row 47", "Row 48", "Row 49"],
    }
    assert listing.get("/rows", params={"order": "Total DESC", "where": "Total < 3"}).json()["names"] == [
        "Row 2",
        "Row 1",
        "Row 0",
    ]
    refused = listing.get("/rows", params={"where": "Nope == 1"})
    assert refused.status_code == 400 and refused.json() == {"message": "unknown field 'Nope'"}


# QuickBooks' WHERE: quoted strings with \' escapes, IN lists, LIKE with %, date-time literals in quotes, and the
# change-time bound on a nested field.
SQLISH = Dialect(
    "Invoice",
    FIELDS | {"MetaData"},
    comparisons={"=": "==", "!=": "!=", ">": ">", ">=": ">=", "<": "<", "<=": "<="},
    and_words=("AND",),
    or_words=(),
    not_words=(),
    string=r"'(?:[^'\\]|\\.)*'",
    unquote=lambda text: text[1:-1].replace("\\'", "'"),
    literal=lambda text: datetime.fromisoformat(text) if text[4:5] == "-" else text,
    plain=lambda value: datetime.fromisoformat(value) if isinstance(value, str) and value[4:5] == "-" else value,
    in_word="IN",
    like_word="LIKE",
)


def test_in_lists_and_like_patterns_match_without_case() -> None:
    found = parse_filter(SQLISH, "Status IN ('paid', 'VOID') AND Name LIKE '%ltd'")
    assert found.predicate is not None
    assert [r["Name"] for r in RECORDS if found.predicate(r)] == ["Kauri Ltd"]
    quoted = parse_filter(SQLISH, "Name = 'O\\'Brien''s'".replace("''s", "s"))
    assert quoted.predicate is not None and quoted.predicate({"Name": "O'Briens"})


def test_a_quoted_date_time_bound_on_a_nested_change_field_becomes_the_window() -> None:
    found = parse_filter(
        SQLISH, "MetaData.LastUpdatedTime > '2024-06-01T00:00:00-07:00' AND Paid = true", "MetaData.LastUpdatedTime"
    )
    assert found.lo_ms == ms_of(datetime.fromisoformat("2024-06-01T00:00:00-07:00")) + 1
    assert found.hi_ms is None and found.predicate is not None and found.predicate(RECORDS[0])
