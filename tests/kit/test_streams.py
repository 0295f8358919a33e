"""Declared streams turned into a dlt source (run into duckdb) and into fetches by id, against the crafted API over
real loopback HTTP; change feeds (a delta link, a sync token, a provider's own feed of changes) kept in dlt's resource
state across runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dlt
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed

from providers.kit.paginators import AfterLastRecord, ChangedSince, NextLink, Offset, PageNumber, PageToken, Stamped
from providers.kit.streams import (
    RESUME_KEY,
    ById,
    ChangeFeed,
    Changes,
    ChangesExpired,
    Child,
    Cursor,
    Stream,
    TokenCursor,
    build_source,
    fetch_by_ids,
    fields_of,
    read_listing,
    typed_columns,
)
from tests.kit.apis import Served

LINES = Child("lines", json_columns=("meta",), decimal_columns=("qty",))
ITEMS = Stream(
    "items",
    doc_url="https://api.example.com/docs/items",
    path="numbered",
    records="Items",
    primary_key="id",
    paginator=lambda: PageNumber(3, page_count="pagination.pageCount"),
    params={"order": "updated"},
    cursor=Cursor("updated", param="since"),
    json_columns=("tags",),
    decimal_columns=("amount",),
    children=(LINES,),
    by_id=ById(lambda ids: {"ids": ",".join(ids)}, per_call=2, valid=lambda v: v if v.startswith("r") else None),
)
AS_JSON = ("tags", "lines")
WHOLE = Stream("whole", path="linked", primary_key="id", json_columns=AS_JSON)
DELTA = Stream(
    "delta",
    path="v1.0/me/items/delta",
    records="value",
    primary_key="id",
    paginator=NextLink,
    feed=TokenCursor(restart_on=(410,)),
    json_columns=AS_JSON,
)
SYNCED = Stream(
    "synced",
    path="calendar/v3/items",
    records="items",
    primary_key="id",
    paginator=PageToken,
    feed=TokenCursor(param="syncToken", params={}, restart_on=(410,)),
    json_columns=AS_JSON,
)
ISSUED: dict[str, datetime] = {}  # when each /changes token was issued, as a provider's token would say
CHANGES = Stream(
    "changes",
    path="changes",
    records="Items",
    primary_key="id",
    paginator=lambda: Stamped(Offset(4, start=1, offset_param="start", limit_param="max"), "time"),
    feed=TokenCursor(
        param="since",
        params={},
        records="Changed",
        paginator=lambda: Stamped(ChangedSince("since", "updated", 3), "time"),
        max_age_s=3600,
        issued_at=lambda token: ISSUED.get(token, datetime.now(UTC)),
    ),
    json_columns=AS_JSON,
)
BY_PATH = Stream(
    "stripe_items",
    path="v1/items",
    records="data",
    primary_key="id",
    by_id=ById(lambda ids: {}, per_call=1, path="v1/items/{id}", records=lambda body: [body]),
)


@pytest.fixture
def pipeline(tmp_path: Path) -> dlt.Pipeline:
    return dlt.pipeline(
        pipeline_name="kit_test",
        pipelines_dir=str(tmp_path / "pipelines"),
        destination=dlt.destinations.duckdb(str(tmp_path / "w.duckdb")),
        dataset_name="kit",
    )


def loaded(pipeline: dlt.Pipeline) -> dict[str, int]:
    trace = pipeline.last_trace
    assert trace is not None and trace.last_normalize_info is not None
    counts: dict[str, int] = trace.last_normalize_info.row_counts
    return {table: n for table, n in counts.items() if not table.startswith("_dlt") and n}


def count(pipeline: dlt.Pipeline, table: str) -> int:
    with pipeline.sql_client() as sql:
        return int(sql.execute_sql(f"SELECT count(*) FROM {table}")[0][0])  # noqa: S608 -- the test's own tables


def resume_token(pipeline: dlt.Pipeline, resource: str) -> Any:
    return pipeline.state["sources"]["kit"]["resources"][resource].get(RESUME_KEY)


# --- declaration -------------------------------------------------------------------------------------------------


def test_a_source_without_a_client_only_describes_its_resources(served: Served) -> None:
    source = build_source("kit", (ITEMS, WHOLE, DELTA), None)

    assert (
        source.name == "kit" and source.max_table_nesting == 1 and list(source.resources) == ["items", "whole", "delta"]
    )
    schema = source.resources["items"].compute_table_schema()
    assert schema["write_disposition"] == "merge"
    assert [c for c, hint in schema["columns"].items() if hint.get("primary_key")] == ["id"]
    assert schema["columns"]["tags"]["data_type"] == "json" and schema["columns"]["amount"]["data_type"] == "decimal"
    assert source.resources["items"].incremental is not None and source.resources["whole"].incremental is None
    assert ITEMS.incremental and DELTA.incremental and not WHOLE.incremental
    assert served.api.seen == []


def test_unknown_entities_are_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown Example entities: \['journals'\]"):
        build_source("kit", (ITEMS,), None, ["items", "journals"], title="Example")


def test_a_stream_declares_a_cursor_or_a_change_feed_and_a_token_needs_a_paginator() -> None:
    with pytest.raises(ValueError, match="a field cursor or a change feed, not both"):
        Stream("x", path="x", primary_key="id", paginator=NextLink, cursor=Cursor("u", param="u"), feed=TokenCursor())
    with pytest.raises(ValueError, match="comes from a paginator"):
        Stream("x", path="x", primary_key="id", feed=TokenCursor())
    with pytest.raises(ValueError, match="header or as a parameter"):
        Cursor("updated")


def test_typed_columns_read_the_published_field_types() -> None:
    fields = {
        "id": "string",
        "total": "number",
        "tags": "array",
        "terms": "object",
        "contact.phones": "array",
        "contact.balance": "number",
        "lines": "array",
        "lines[].qty": "number",
        "lines[].item": "object",
        "lines[].tracking": "array",
    }

    assert typed_columns(fields, tables=("lines",)) == {
        "json_columns": ("tags", "contact__phones"),
        "decimal_columns": ("total", "contact__balance"),
    }
    assert typed_columns(fields, child="lines") == {"json_columns": ("item", "tracking"), "decimal_columns": ("qty",)}


# --- pulls -------------------------------------------------------------------------------------------------------


def test_a_full_then_an_incremental_pull_sends_the_cursor_and_loads_only_the_changes(
    served: Served, pipeline: dlt.Pipeline
) -> None:
    served.api.add(7)
    client = served.client()

    pipeline.run(build_source("kit", (ITEMS,), client))

    assert loaded(pipeline) == {"items": 7, "items__lines": 14}
    columns = pipeline.default_schema.get_table_columns("items")
    assert columns["amount"]["data_type"] == "decimal" and columns["tags"]["data_type"] == "json"
    line_columns = pipeline.default_schema.get_table_columns("items__lines")
    assert line_columns["qty"]["data_type"] == "decimal" and line_columns["meta"]["data_type"] == "json"
    assert client.pages["items"] == 3

    served.api.touch("r002", "r005")
    served.api.add(1)
    served.api.seen.clear()
    pipeline.run(build_source("kit", (ITEMS,), served.client()))

    assert loaded(pipeline) == {"items": 3, "items__lines": 6}
    assert {s.params["since"] for s in served.api.asked("/numbered")} == {"7"}
    assert served.api.asked("/numbered")[0].params["order"] == "updated"
    assert count(pipeline, "items") == 8 and count(pipeline, "items__lines") == 16


def test_the_cursor_can_travel_as_a_header_formatted_as_the_provider_reads_it(
    served: Served, pipeline: dlt.Pipeline
) -> None:
    served.api.add(4)
    by_header = Stream(
        "items",
        path="numbered",
        records="Items",
        primary_key="id",
        cursor=Cursor("updated", header="X-Changed-Since", format=lambda value: f"{value:d}"),
    )
    pipeline.run(build_source("kit", (by_header,), served.client()))
    served.api.touch("r001")

    pipeline.run(build_source("kit", (by_header,), served.client()))

    assert loaded(pipeline)["items"] == 1
    assert served.api.asked("/numbered")[-1].headers["x-changed-since"] == "4"
    assert "since" not in served.api.asked("/numbered")[-1].params


def test_a_stream_without_a_cursor_is_listed_whole_every_run_and_merged(served: Served, pipeline: dlt.Pipeline) -> None:
    served.api.add(3)
    pipeline.run(build_source("kit", (WHOLE,), served.client()))

    pipeline.run(build_source("kit", (WHOLE,), served.client()))

    assert loaded(pipeline) == {"whole": 3} and count(pipeline, "whole") == 3


def test_a_delta_link_is_kept_in_resource_state_and_the_next_run_resumes_from_it(
    served: Served, pipeline: dlt.Pipeline
) -> None:
    served.api.add(7)
    pipeline.run(build_source("kit", (DELTA,), served.client()))
    assert loaded(pipeline) == {"delta": 7}
    assert resume_token(pipeline, "delta") == f"{served.base_url}/v1.0/me/items/delta?$deltatoken=7"

    served.api.touch("r002")
    served.api.add(1)
    served.api.seen.clear()
    pipeline.run(build_source("kit", (DELTA,), served.client()))

    assert loaded(pipeline) == {"delta": 2} and count(pipeline, "delta") == 8
    assert served.api.asked("/v1.0/me/items/delta")[0].params == {"$deltatoken": "7"}
    assert resume_token(pipeline, "delta").endswith("$deltatoken=9")


def test_an_expired_token_starts_the_listing_over(served: Served, pipeline: dlt.Pipeline) -> None:
    served.api.add(5)
    pipeline.run(build_source("kit", (DELTA,), served.client()))
    served.api.expired_tokens.add("5")

    pipeline.run(build_source("kit", (DELTA,), served.client()))

    assert loaded(pipeline) == {"delta": 5} and count(pipeline, "delta") == 5
    assert resume_token(pipeline, "delta").endswith("$deltatoken=5")


def test_a_failed_listing_keeps_the_token_it_started_from(served: Served, pipeline: dlt.Pipeline) -> None:
    served.api.add(5)
    unforgiving = Stream(
        "delta",
        path="v1.0/me/items/delta",
        records="value",
        primary_key="id",
        paginator=NextLink,
        feed=TokenCursor(),
        json_columns=AS_JSON,
    )
    pipeline.run(build_source("kit", (unforgiving,), served.client()))
    served.api.expired_tokens.add("5")

    with pytest.raises(PipelineStepFailed):
        pipeline.run(build_source("kit", (unforgiving,), served.client()))

    assert resume_token(pipeline, "delta").endswith("$deltatoken=5")


def test_a_sync_token_resumes_as_a_parameter(served: Served, pipeline: dlt.Pipeline) -> None:
    served.api.add(6)
    pipeline.run(build_source("kit", (SYNCED,), served.client()))
    assert loaded(pipeline) == {"synced": 6} and resume_token(pipeline, "synced") == "6"

    served.api.touch("r006")
    served.api.seen.clear()
    pipeline.run(build_source("kit", (SYNCED,), served.client()))

    assert loaded(pipeline) == {"synced": 1} and resume_token(pipeline, "synced") == "7"
    assert served.api.asked("/calendar/v3/items")[0].params == {"syncToken": "6"}


def test_changes_resume_from_the_stamp_of_the_first_page_and_follow_capped_answers(
    served: Served, pipeline: dlt.Pipeline
) -> None:
    served.api.add(7)
    pipeline.run(build_source("kit", (CHANGES,), served.client()))
    assert count(pipeline, "changes") == 7 and resume_token(pipeline, "changes") == "7"
    served.api.touch("r001", "r002", "r003", "r004")
    served.api.seen.clear()

    pipeline.run(build_source("kit", (CHANGES,), served.client()))

    assert [s.params for s in served.api.asked("/changes")] == [{"since": "7"}, {"since": "9"}, {"since": "11"}]
    assert count(pipeline, "changes") == 7 and resume_token(pipeline, "changes") == "11"
    with pipeline.sql_client() as sql:
        assert sql.execute_sql("SELECT count(*) FROM changes WHERE name LIKE '%(changed)'")[0][0] == 4


def test_a_token_past_its_age_lists_everything_again_and_the_client_says_why(
    served: Served, pipeline: dlt.Pipeline
) -> None:
    served.api.add(5)
    pipeline.run(build_source("kit", (CHANGES,), served.client()))
    ISSUED["5"] = datetime.now(UTC) - timedelta(hours=2)
    served.api.seen.clear()
    client = served.client()

    pipeline.run(build_source("kit", (CHANGES,), client))

    assert [s.params for s in served.api.asked("/changes")] == [{"start": "1", "max": "4"}, {"start": "5", "max": "4"}]
    assert client.full_listings["changes"].startswith("changes listed in full: its change token is")


# --- by id -------------------------------------------------------------------------------------------------------


def test_records_are_fetched_by_id_a_few_per_call_and_impossible_ids_never_sent(served: Served) -> None:
    served.api.add(6)

    rows = fetch_by_ids((ITEMS, WHOLE), served.client(), "items", ["r001", "nope", "r003", "r001", "r005"])

    assert [row["id"] for row in rows] == ["r001", "r003", "r005"]
    assert [s.params["ids"] for s in served.api.asked("/numbered")] == ["r001,r003", "r005"]
    assert {s.params["page"] for s in served.api.asked("/numbered")} == {"1"}  # paged as the stream pages


def test_records_can_be_fetched_one_by_one_from_their_own_path(served: Served) -> None:
    served.api.add(3)

    rows = fetch_by_ids((BY_PATH,), served.client(), "stripe_items", ["r002", "r003"])

    assert [row["id"] for row in rows] == ["r002", "r003"]
    assert [s.path for s in served.api.seen] == ["/v1/items/r002", "/v1/items/r003"]


def test_a_stream_without_a_by_id_filter_cannot_be_fetched_by_id(served: Served) -> None:
    with pytest.raises(ValueError, match="cannot be fetched by id"):
        fetch_by_ids((ITEMS, WHOLE), served.client(), "whole", ["r001"])

    assert fetch_by_ids((ITEMS,), served.client(), "items", ["nope"]) == [] and served.api.seen == []


def test_published_fields_are_declared_by_type_in_order() -> None:
    fields = fields_of("string: id name", "number of lines[]: qty", "object of contact: address", "array: tags")

    assert list(fields.items()) == [
        ("id", "string"),
        ("name", "string"),
        ("lines[].qty", "number"),
        ("contact.address", "object"),
        ("tags", "array"),
    ]
    with pytest.raises(ValueError, match="unknown field type 'money'"):
        fields_of("money: total")


class VersionFeed(ChangeFeed):
    """A provider's change feed over the crafted API: its position is the API's version; records changed after it
    come back, deleted ones as ``{"id", "deleted": true}``; a position before ``kept_from`` is no longer kept."""

    def __init__(self, served: Served, kept_from: int = 0) -> None:
        self.served, self.kept_from = served, kept_from
        self.deleted: list[str] = []

    def listing(self, client: Any, stream: Stream) -> Changes:
        start = {"version": self.served.api.version}
        return Changes(read_listing(client, stream), lambda: start)

    def changes(self, client: Any, stream: Stream, position: Any, kept_at: float | None) -> Changes:
        since = int(position["version"])
        if since < self.kept_from:
            raise ChangesExpired(f"version {since} is no longer kept")
        api = self.served.api
        changed = [dict(r) for r in api.records if r["updated"] > since and r["id"] not in self.deleted]
        gone = [{"id": record_id, "deleted": True} for record_id in self.deleted]
        return Changes(iter([changed + gone] if changed or gone else []), lambda: {"version": api.version})


def test_a_change_feed_applies_changes_and_deletes_and_lists_everything_when_its_position_expired(
    served: Served, pipeline: dlt.Pipeline
) -> None:
    served.api.add(7)
    feed = VersionFeed(served)
    fed = Stream("fed", path="v1/items", records="data", primary_key="id", paginator=lambda: AfterLastRecord(3),
                 feed=feed, deleted="deleted", json_columns=AS_JSON)  # fmt: skip
    client = served.client()
    pipeline.run(build_source("kit", (fed,), client))
    assert count(pipeline, "fed") == 7 and resume_token(pipeline, "fed") == {"version": 7}
    served.api.seen.clear()
    served.api.add(2)
    feed.deleted.append("r003")
    pipeline.run(build_source("kit", (fed,), client))
    assert served.api.asked("/v1/items") == []  # the feed, not the listing
    assert count(pipeline, "fed") == 8 and resume_token(pipeline, "fed") == {"version": 9}
    with pipeline.sql_client() as sql:
        assert sql.execute_sql("SELECT count(*) FROM fed WHERE id = 'r003'")[0][0] == 0
    feed.kept_from = 100  # the provider no longer keeps changes from version 9
    pipeline.run(build_source("kit", (fed,), client))
    assert len(served.api.asked("/v1/items")) == 3  # listed in full again (9 records, 3 a page)
    assert client.full_listings["fed"] == "fed listed in full: version 9 is no longer kept"
