"""Listings declared per resource and served from the store over real HTTP: pages, modified-since, records named
by id, values of a field, a search term, hidden records, and the caller's own filter first."""

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
from providers.sandbox_kit.filters import Filter
from providers.sandbox_kit.listing import PageNumbers, Resource, csv, path_value, selection
from providers.sandbox_kit.serve import ServedApp
from providers.sandbox_kit.store import Store

CODEC = IdCodec(stable_key("customers"))
CUSTOMERS = Resource(
    "customers",
    "Customers",
    paging=PageNumbers(default=4, maximum=10),
    ids="ids",
    value_filters={"cities": "Address.City"},
    search=("q", ("Name", "Email")),
    hidden=("includeArchived", "Status", "ARCHIVED"),
)
CITIES = ("Nelson", "Napier", "Auckland")


def customer(i: int) -> dict[str, Any]:
    return {
        "Id": CODEC.encode(i),
        "Name": f"Customer {i:02d}",
        "Email": f"c{i}@example.com",
        "Status": "ARCHIVED" if i % 7 == 6 else "ACTIVE",
        "Address": {"City": CITIES[i % 3]},
    }


def changed_ms(i: int) -> int:
    return ms_of(datetime(2024, 1, 1, tzinfo=UTC)) + i * 1000


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    store = Store(ManualClock(), change_field="Changed")
    store.add_table("customers", 20, changed_ms, CODEC.encode, customer)
    app = FastAPI()

    @app.get("/customers")
    async def customers(request: Request) -> Response:
        params = request.query_params
        mine = (
            Filter(None, None, lambda r: r["Name"] != "Customer 00")
            if params.get("not_first")
            else Filter(None, None, None)
        )
        chosen = selection(
            CUSTOMERS, params, request.headers, where=mine, order=(), where_key=params.get("not_first"),
            index_of=CODEC.decode,
        )  # fmt: skip
        total, fetch = store.select("customers", **chosen)
        assert CUSTOMERS.paging is not None
        page, size = CUSTOMERS.paging.page_of(params), CUSTOMERS.paging.size_of(params)
        start, stop = (0, total) if page is None else ((page - 1) * size, page * size)
        names = [int(r["Name"][-2:]) for r in fetch(start, stop)]
        return JSONResponse({"total": total, "n": names, "pages": CUSTOMERS.paging.count(total, size)})

    with ServedApp(app) as served, httpx.Client(base_url=served.base_url) as client:
        yield client


def test_hidden_records_show_only_when_asked_for(http: httpx.Client) -> None:
    assert http.get("/customers").json()["total"] == 18  # 6 and 13 are archived
    assert http.get("/customers", params={"includeArchived": "TRUE"}).json()["total"] == 20


def test_pages_have_a_default_size_a_cap_and_a_size_alone_means_page_one(http: httpx.Client) -> None:
    first = http.get("/customers", params={"page": 1, "includeArchived": "true"}).json()
    assert first == {"total": 20, "n": [0, 1, 2, 3], "pages": 5}
    assert http.get("/customers", params={"pageSize": 50, "includeArchived": "true"}).json()["n"] == list(range(10))
    assert http.get("/customers", params={"page": "x", "pageSize": "y", "includeArchived": "true"}).json()["n"] == [
        0,
        1,
        2,
        3,
    ]


def test_modified_since_ids_values_and_search_narrow_the_listing(http: httpx.Client) -> None:
    since = datetime.fromtimestamp((changed_ms(15)) / 1000, UTC).isoformat()
    assert http.get("/customers", headers={"If-Modified-Since": since}).json()["n"] == [
        16,
        17,
        18,
        19,
    ]  # strictly after
    ids = f'{CODEC.encode(9)}, "{CODEC.encode(2)}",nonsense'
    assert http.get("/customers", params={"ids": ids}).json()["n"] == [2, 9]
    assert http.get("/customers", params={"cities": "nelson,NAPIER"}).json()["total"] == 12
    assert http.get("/customers", params={"q": "C1"}).json()["n"] == [1, 10, 11, 12, 14, 15, 16, 17, 18, 19]
    assert http.get("/customers", params={"not_first": "1", "cities": "Nelson"}).json()["n"] == [3, 9, 12, 15, 18]


def test_comma_separated_parameters_and_field_paths() -> None:
    assert csv({"a": ' x, "y" ,, '}, "a") == ["x", "y"] and csv({}, "a") is None
    assert path_value({"a": {"b": 1}}, "a.b") == 1 and path_value({"a": None}, "a.b") is None
