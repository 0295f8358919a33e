"""Write helpers over real HTTP: a batch endpoint that reads lenient values, validates every element before
committing any, merges sent fields into stored records and echoes refused elements as they were sent."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from providers.sandbox_kit.clock import ms_at
from providers.sandbox_kit.serve import ServedApp
from providers.sandbox_kit.writes import (
    Prepared,
    batch_elements,
    decode,
    half_up,
    iso_day_ms,
    jsonable,
    merge_by,
    merge_text,
    number,
    prepare_all,
    text,
)


@pytest.fixture
def customers() -> Iterator[tuple[httpx.Client, dict[str, dict[str, Any]]]]:
    stored: dict[str, dict[str, Any]] = {"c1": {"Name": "Ada", "Phones": [{"Type": "MOBILE", "Number": "1"}]}}
    app = FastAPI()

    @app.post("/customers")
    async def upsert(request: Request) -> Response:
        try:
            elements = batch_elements(decode(await request.body()), "Customers")
        except ValueError:
            return JSONResponse({"error": "not json"}, status_code=400)
        if elements is None:
            return JSONResponse({"error": "no Customers list"}, status_code=400)

        def prepare(element: dict[str, Any]) -> Prepared:
            errors = [] if text(element.get("Name")) or element.get("Id") in stored else ["Name is required"]
            try:
                credit = half_up(number(element.get("Credit"), Decimal(0)) * 100)
            except (InvalidOperation, ValueError):
                errors.append("Credit must be a number")
            if errors:
                return errors
            record_id = text(element.get("Id")) or f"c{len(stored) + 1}"

            def commit() -> dict[str, Any]:
                record = stored.setdefault(record_id, {"Phones": []})
                merge_text(record, element, ("Name", "Email"))
                record["Phones"] = merge_by(record["Phones"], element.get("Phones", []), "Type", ("Number",))
                record["CreditCents"] = credit
                return record

            return commit

        prepared = prepare_all(elements, prepare)
        refused = [(e, p) for e, p in zip(elements, prepared, strict=True) if isinstance(p, list)]
        if refused:
            return JSONResponse({"refused": [{**jsonable(e), "errors": p} for e, p in refused]}, status_code=400)
        return JSONResponse({"Customers": [p() for p in prepared if not isinstance(p, list)]})

    with ServedApp(app) as served, httpx.Client(base_url=served.base_url) as http:
        yield http, stored


def test_a_valid_batch_commits_every_element_merging_what_was_sent(
    customers: tuple[httpx.Client, dict[str, dict[str, Any]]],
) -> None:
    http, stored = customers
    sent = {
        "customers": [  # the list's key is matched without case
            {"Id": "c1", "Email": " ada@example.com ", "Credit": "12.345", "Phones": [{"Type": "home", "Number": 2}]},
            {"Name": "Grace", "Credit": 0.5},
        ]
    }
    answer = http.post("/customers", json=sent)
    assert answer.status_code == 200
    ada = stored["c1"]
    assert ada["Name"] == "Ada" and ada["Email"] == "ada@example.com" and ada["CreditCents"] == 1235  # half up
    assert ada["Phones"] == [{"Type": "MOBILE", "Number": "1"}, {"Type": "HOME", "Number": "2"}]
    assert stored["c2"]["Name"] == "Grace" and stored["c2"]["CreditCents"] == 50


def test_one_invalid_element_refuses_the_whole_batch_and_echoes_it_as_sent(
    customers: tuple[httpx.Client, dict[str, dict[str, Any]]],
) -> None:
    http, stored = customers
    answer = http.post(
        "/customers", json={"Customers": [{"Name": "Ok"}, {"Name": " ", "Credit": 1.5}, {"Credit": True}]}
    )
    assert answer.status_code == 400 and len(stored) == 1  # nothing committed
    assert answer.json() == {
        "refused": [
            {"Name": " ", "Credit": 1.5, "errors": ["Name is required"]},
            {"Credit": True, "errors": ["Name is required", "Credit must be a number"]},
        ]
    }
    assert http.post("/customers", json={"Name": "Bare"}).status_code == 200  # one bare object is a batch of one
    assert http.post("/customers", json={"Customers": 3}).json() == {"error": "no Customers list"}
    assert http.post("/customers", content=b"{nope").json() == {"error": "not json"}


def test_values_are_read_leniently_but_exactly() -> None:
    assert text("  x ") == "x" and text("   ") is None and text(None) is None and text(5) == "5"
    assert number("0.1", Decimal(0)) + number(0.2, Decimal(0)) == Decimal("0.3")
    assert number(None, Decimal(7)) == Decimal(7)
    with pytest.raises(ValueError, match="not a number"):
        number(False, Decimal(0))
    assert half_up(Decimal("2.5")) == 3 and half_up(Decimal("-2.5")) == -3
    assert iso_day_ms("2024-03-05") == iso_day_ms("2024-03-05T23:59:59") == ms_at(2024, 3, 5)
    assert iso_day_ms("2024-03-05T01:00:00+02:00") == ms_at(2024, 3, 4)
    assert jsonable({"a": [Decimal("1.50")]}) == {"a": [1.5]}
