"""The smallest provider docs/writing-a-provider.md shows: a cursor-paged API (Stripe-like ``starting_after`` and
``has_more``) is a client with one hook, one declared stream and a mapper. Run here against the crafted API over
real loopback HTTP, so the guide's example is known to work."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dlt

from providers.base import PullSpec
from providers.kit.client import ApiClient
from providers.kit.paginators import AfterLastRecord
from providers.kit.streams import ById, Stream, build_source, fetch_by_ids
from providers.kit.values import required, text
from tests.kit.apis import Served
from vrtx_pipelines.records.canonical import Product

# --- the example, as the guide shows it --------------------------------------------------------------------------


class ShopClient(ApiClient):
    name = "Shop"
    api_base_url = "https://api.shop.example/"

    def auth_headers(self, token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credentials['api_key']}"}  # an API-key provider


ITEMS = Stream(
    "products",
    doc_url="https://docs.shop.example/api/items#list",
    path="v1/items",
    records="data",
    primary_key="id",
    paginator=lambda: AfterLastRecord(100),  # ?limit=100&starting_after=<last id> while has_more
    decimal_columns=("amount",),
    json_columns=("tags", "lines"),
    by_id=ById(lambda ids: {}, per_call=1, path="v1/items/{id}", records=lambda body: [body]),
)


def to_product(raw: Mapping[str, Any]) -> Product:
    return Product(external_id=required(raw, "id"), code=required(raw, "id"), name=text(raw.get("name")) or "")


PULLS = PullSpec(streams=(ITEMS,), mappers={"products": to_product})

# --- the proof ---------------------------------------------------------------------------------------------------


def test_the_smallest_provider_pulls_every_page_and_fetches_a_record_by_id(served: Served, tmp_path: Path) -> None:
    served.api.add(250)
    client = served.client(ShopClient, credentials={"api_key": "sk_example"})
    pipeline = dlt.pipeline(
        pipeline_name="shop",
        pipelines_dir=str(tmp_path / "p"),
        destination=dlt.destinations.duckdb(str(tmp_path / "w.duckdb")),
        dataset_name="shop",
    )
    pipeline.run(build_source("shop", PULLS.streams, client, PULLS.entities))
    with pipeline.sql_client() as sql:
        assert sql.execute_sql("SELECT count(*), count(DISTINCT id) FROM products")[0] == (250, 250)
    listing = served.api.asked("/v1/items")
    assert [s.params.get("starting_after") for s in listing] == [None, "r100", "r200"]
    assert {s.headers["authorization"] for s in listing} == {"Bearer sk_example"}
    (record,) = fetch_by_ids(PULLS.streams, client, "products", ["r042"])
    assert to_product(record).name == "Record 42"
