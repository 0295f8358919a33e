"""Every paginator against a crafted API over real loopback HTTP, through ``ApiClient.paginate``."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

from dlt.sources.helpers.rest_client.paginators import PageNumberPaginator
from fastapi import Request
from fastapi.responses import JSONResponse

from providers.kit.paginators import (
    AfterLastRecord,
    BodyCursor,
    Dlt,
    LinkHeader,
    NextLink,
    Offset,
    PageNumber,
    PageToken,
    Paginator,
)
from tests.kit.apis import Served


def ids(pages: list[list[dict[str, Any]]]) -> list[str]:
    return [record["id"] for page in pages for record in page]


def every_id(served: Served) -> list[str]:
    return [record["id"] for record in served.api.records]


def listing(
    served: Served, path: str, records: str, paginator: Paginator, **options: Any
) -> list[list[dict[str, Any]]]:
    return list(served.client().paginate(path, records, paginator=paginator, **options))


# --- page numbers ------------------------------------------------------------------------------------------------


def test_page_numbers_with_a_page_count_read_every_page_and_no_empty_one(served: Served) -> None:
    served.api.add(9)

    pages = listing(served, "numbered", "Items", PageNumber(3, page_count="pagination.pageCount"))

    assert ids(pages) == every_id(served) and [len(p) for p in pages] == [3, 3, 3]
    assert [s.params["page"] for s in served.api.asked("/numbered")] == ["1", "2", "3"]


def test_page_numbers_without_a_page_count_stop_at_the_short_page(served: Served) -> None:
    served.api.add(7)
    served.api.page_count = False

    pages = listing(served, "numbered", "Items", PageNumber(3, page_count="pagination.pageCount"))

    assert [len(p) for p in pages] == [3, 3, 1] and len(served.api.asked("/numbered")) == 3


def scripted(served: Served, answer: Callable[[Request], dict[str, Any]]) -> None:
    """``/scripted/Items`` answers what ``answer`` makes of each request."""
    served.api.script = [lambda request: JSONResponse(answer(request))]


def test_the_page_size_the_answer_applied_decides_what_a_short_page_is(served: Served) -> None:
    def capped(request: Request) -> dict[str, Any]:
        page = int(request.query_params["page"])
        found = [{"id": n} for n in range(5)][(page - 1) * 2 : page * 2]  # the API caps pages at 2
        return {"pagination": {"page": page, "pageSize": 2}, "Items": found}

    scripted(served, capped)
    pages = listing(served, "scripted/Items", "Items", PageNumber(1000, applied_size="pagination.pageSize"))

    assert [len(p) for p in pages] == [2, 2, 1]
    assert [s.params["page"] for s in served.api.asked("/scripted/Items")] == ["1", "2", "3"]


def numbered(
    served: Served, answers: Mapping[int, tuple[int, list[str]]], hold: threading.Event | None = None
) -> Callable[[], list[str]]:
    """Pages whose page count changes as ``answers`` says; returns what was asked."""

    def answer(request: Request) -> dict[str, Any]:
        page = int(request.query_params["page"])
        if hold is not None and page == 3:
            hold.set()
        count, found = answers[page]
        return {"pagination": {"pageCount": count}, "Items": [{"id": i} for i in found]}

    scripted(served, answer)
    return lambda: [s.params["page"] for s in served.api.asked("/scripted/Items")]


def test_a_page_the_count_promised_is_asked_for_before_the_one_before_is_handed_over(served: Served) -> None:
    third = threading.Event()
    asked = numbered(served, {1: (3, ["a", "b"]), 2: (3, ["c", "d"]), 3: (3, ["e"])}, third)
    paginator = PageNumber(2, page_count="pagination.pageCount")

    pages = served.client().paginate("scripted/Items", "Items", paginator=paginator)
    assert [r["id"] for r in next(pages)] == ["a", "b"]
    assert [r["id"] for r in next(pages)] == ["c", "d"]
    assert third.wait(timeout=5)  # on its way while page 2 is still held (page 1 alone told nothing)
    assert [[r["id"] for r in page] for page in pages] == [["e"]] and asked() == ["1", "2", "3"]


def test_a_page_asked_for_ahead_is_read_even_when_the_total_shrank(served: Served) -> None:
    asked = numbered(served, {1: (3, ["a", "b"]), 2: (2, ["c", "d"]), 3: (2, [])})

    pages = listing(served, "scripted/Items", "Items", PageNumber(2, page_count="pagination.pageCount"))

    assert ids(pages) == ["a", "b", "c", "d"] and asked() == ["1", "2", "3"]


def test_pages_added_while_paging_are_read_to_the_new_end(served: Served) -> None:
    asked = numbered(served, {1: (2, ["a", "b"]), 2: (3, ["c", "d"]), 3: (3, ["e"])})

    pages = listing(served, "scripted/Items", "Items", PageNumber(2, page_count="pagination.pageCount"))

    assert ids(pages) == ["a", "b", "c", "d", "e"] and asked() == ["1", "2", "3"]


# --- offsets -----------------------------------------------------------------------------------------------------


def test_offsets_inside_a_query_with_a_selector_for_an_answer_that_omits_empty_lists(served: Served) -> None:
    served.api.add(23)

    def statement(params: Mapping[str, Any], start: int, size: int) -> dict[str, str]:
        where = f"updated > {params.get('since', 0)}"
        return {"query": f"SELECT * FROM Item WHERE {where} STARTPOSITION {start} MAXRESULTS {size}"}  # noqa: S608

    client = served.client()
    pages = list(
        client.paginate(
            "query",
            lambda body: body["QueryResponse"].get("Item", []),
            paginator=Offset(10, start=1, render=statement),
            params={"since": 2},
        )
    )

    assert ids(pages) == every_id(served)[2:] and [len(p) for p in pages] == [10, 10, 1]
    asked = [s.params["query"] for s in served.api.asked("/query")]
    assert asked == [
        f"SELECT * FROM Item WHERE updated > 2 STARTPOSITION {start} MAXRESULTS 10"  # noqa: S608
        for start in (1, 11, 21)
    ]


def test_plain_offset_and_limit_parameters_stop_at_the_total(served: Served) -> None:
    def rows(request: Request) -> dict[str, Any]:
        offset, limit = int(request.query_params["offset"]), int(request.query_params["limit"])
        return {"total": 6, "rows": [{"id": n} for n in range(offset, min(offset + limit, 6))]}

    scripted(served, rows)
    pages = listing(served, "scripted/rows", "rows", Offset(3, total="total"))

    assert [[r["id"] for r in p] for p in pages] == [[0, 1, 2], [3, 4, 5]]
    assert [s.params for s in served.api.asked("/scripted/rows")] == [
        {"offset": "0", "limit": "3"},
        {"offset": "3", "limit": "3"},
    ]


# --- cursors -----------------------------------------------------------------------------------------------------


def test_stripe_lists_continue_after_the_last_records_id_while_has_more(served: Served) -> None:
    served.api.add(7)

    pages = listing(served, "v1/items", "data", AfterLastRecord(3))

    assert ids(pages) == every_id(served) and [len(p) for p in pages] == [3, 3, 1]
    assert [s.params.get("starting_after") for s in served.api.asked("/v1/items")] == [None, "r003", "r006"]
    assert {s.params["limit"] for s in served.api.asked("/v1/items")} == {"3"}


def test_hubspot_lists_follow_the_body_cursor(served: Served) -> None:
    served.api.add(5)

    pages = listing(
        served, "crm/v3/objects/items", "results", BodyCursor("paging.next.after", "after"), params={"limit": 2}
    )

    assert ids(pages) == every_id(served)
    assert [s.params.get("after") for s in served.api.asked("/crm/v3/objects/items")] == [None, "2", "4"]


def test_a_posted_search_carries_the_cursor_in_its_body(served: Served) -> None:
    served.api.add(5)
    client = served.client()

    pages = list(
        client.paginate(
            "crm/v3/objects/items/search",
            "results",
            paginator=BodyCursor("paging.next.after", body_path="after"),
            method="POST",
            json={"limit": 2},
        )
    )

    assert ids(pages) == every_id(served)
    bodies = [json.loads(s.body) for s in served.api.asked("/crm/v3/objects/items/search")]
    assert bodies == [{"limit": 2}, {"limit": 2, "after": "2"}, {"limit": 2, "after": "4"}]


# --- links and tokens --------------------------------------------------------------------------------------------


def test_graph_follows_next_links_and_keeps_the_final_delta_link(served: Served) -> None:
    served.api.add(7)
    paginator = NextLink()

    pages = listing(served, "v1.0/me/items/delta", "value", paginator)

    assert ids(pages) == every_id(served) and [len(p) for p in pages] == [3, 3, 1]
    assert paginator.token == f"{served.base_url}/v1.0/me/items/delta?$deltatoken=7"
    served.api.touch("r002")
    changed = listing(served, paginator.token, "value", NextLink())
    assert ids(changed) == ["r002"]


def test_google_follows_page_tokens_and_keeps_the_final_sync_token(served: Served) -> None:
    served.api.add(9)
    paginator = PageToken()

    pages = listing(served, "calendar/v3/items", "items", paginator)

    assert ids(pages) == every_id(served) and [len(p) for p in pages] == [4, 4, 1]
    assert [s.params.get("pageToken") for s in served.api.asked("/calendar/v3/items")] == [None, "4", "8"]
    assert paginator.token == "9"


def test_link_headers_are_followed_to_the_last_page(served: Served) -> None:
    served.api.add(10)

    pages = listing(served, "linked", "", LinkHeader())

    assert ids(pages) == every_id(served) and [len(p) for p in pages] == [4, 4, 2]
    assert [s.params.get("page") for s in served.api.asked("/linked")] == [None, "2", "3"]


def test_any_dlt_paginator_works_through_the_adapter(served: Served) -> None:
    served.api.add(7)
    paginator = Dlt(PageNumberPaginator(base_page=1, page_param="page", total_path="pagination.pageCount"))

    pages = listing(served, "numbered", "Items", paginator, params={"pageSize": 3})

    assert ids(pages) == every_id(served)
    assert [s.params["page"] for s in served.api.asked("/numbered")] == ["1", "2", "3"]


def test_one_page_when_no_paginator_is_given(served: Served) -> None:
    served.api.add(30)

    pages = listing(served, "linked", "", Paginator())

    assert [len(p) for p in pages] == [4] and len(served.api.asked("/linked")) == 1
