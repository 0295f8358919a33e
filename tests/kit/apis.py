"""Crafted APIs for the kit's tests, served over real loopback HTTP: each route pages the same records the way one
provider family does (Xero page numbers, QuickBooks query offsets, Stripe last-id cursors, HubSpot body cursors,
Graph next/delta links, Google page/sync tokens, Link headers), plus a scripted route for the client's rules."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from providers.kit.client import ApiClient
from providers.kit.governor import RateGovernor
from providers.sandbox_kit.serve import ServedApp
from tests.helpers import FakeTime


@dataclass
class Seen:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class Api:
    """The records every route serves, what was asked, and a script of canned answers for ``/scripted/...``."""

    records: list[dict[str, Any]] = field(default_factory=list)
    version: int = 0  # bumped by every change; delta and sync tokens are versions
    expired_tokens: set[str] = field(default_factory=set)
    seen: list[Seen] = field(default_factory=list)
    script: list[Callable[[Request], Response]] = field(default_factory=list)
    page_count: bool = True  # the numbered route says how many pages there are

    def reset(self) -> None:
        fresh = Api()
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(fresh, name))

    def add(self, n: int) -> list[str]:
        ids = []
        for _ in range(n):
            self.version += 1
            number = len(self.records) + 1
            ids.append(f"r{number:03d}")
            self.records.append(
                {
                    "id": ids[-1],
                    "name": f"Record {number}",
                    "amount": number + 0.5,
                    "updated": self.version,
                    "tags": ["a", "b"],
                    "lines": [{"n": 1, "qty": 2.5, "meta": {"k": "v"}}, {"n": 2, "qty": 1}],
                }
            )
        return ids

    def touch(self, *ids: str) -> None:
        for record in self.records:
            if record["id"] in ids:
                self.version += 1
                record["updated"] = self.version
                record["name"] += " (changed)"

    def since(self, version: int) -> list[dict[str, Any]]:
        return sorted((r for r in self.records if r["updated"] > version), key=lambda r: r["updated"])

    def asked(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]


def crafted_app(api: Api) -> FastAPI:
    app = FastAPI()

    @app.middleware("http")
    async def record(request: Request, call_next: Any) -> Any:
        body = await request.body()
        api.seen.append(Seen(request.method, request.url.path, dict(request.query_params), dict(request.headers), body))
        return await call_next(request)

    @app.api_route("/scripted/{rest:path}", methods=["GET", "POST", "PUT"])
    async def scripted(request: Request) -> Response:
        answer = api.script.pop(0) if len(api.script) > 1 else api.script[0]
        return answer(request)

    @app.get("/numbered")
    async def numbered(
        request: Request, page: int = 1, pageSize: int = 100, since: int = 0, ids: str | None = None
    ) -> dict[str, Any]:
        since = int(request.headers.get("X-Changed-Since", since))
        wanted = api.since(since)
        if ids is not None:
            wanted = [r for r in wanted if r["id"] in ids.split(",")]
        chunk = wanted[(page - 1) * pageSize : page * pageSize]
        pagination: dict[str, Any] = {"page": page, "pageSize": pageSize, "itemCount": len(wanted)}
        if api.page_count:
            pagination["pageCount"] = -(-len(wanted) // pageSize)
        return {"pagination": pagination, "Items": chunk}

    @app.get("/query")
    async def query(query: str) -> dict[str, Any]:
        # SELECT * FROM Item WHERE updated > 3 STARTPOSITION 11 MAXRESULTS 10 (1-based, as QuickBooks)
        found = re.search(r"updated > (\d+) STARTPOSITION (\d+) MAXRESULTS (\d+)$", query)
        assert found, query
        since, start, size = (int(g) for g in found.groups())
        chunk = api.since(since)[start - 1 : start - 1 + size]
        response: dict[str, Any] = {"startPosition": start, "maxResults": len(chunk)}
        if chunk:  # QuickBooks leaves the entity key out of an empty answer
            response["Item"] = chunk
        return {"QueryResponse": response, "time": "2026-01-01T00:00:00Z"}

    @app.get("/changes")
    async def changes(request: Request, start: int = 1, max: int = 100, since: int | None = None) -> dict[str, Any]:
        # A full listing by offsets, or (``since``) what changed at or after a version, three at most per call, as
        # QuickBooks' change data capture caps its answers; every answer says the version it was read at.
        if since is None:
            return {"Items": api.records[start - 1 : start - 1 + max], "time": str(api.version)}
        changed = sorted((r for r in api.records if r["updated"] >= since), key=lambda r: r["updated"])
        return {"Changed": changed[:3], "time": str(api.version)}

    @app.get("/v1/items")
    async def stripe_list(limit: int = 10, starting_after: str | None = None) -> dict[str, Any]:
        ids = [r["id"] for r in api.records]
        start = ids.index(starting_after) + 1 if starting_after else 0
        chunk = api.records[start : start + limit]
        return {"object": "list", "url": "/v1/items", "has_more": start + limit < len(ids), "data": chunk}

    @app.get("/v1/items/{item_id}")
    async def stripe_item(item_id: str) -> Response:
        found = [r for r in api.records if r["id"] == item_id]
        if not found:
            return JSONResponse({"error": {"type": "invalid_request_error", "message": "No such item"}}, 404)
        return JSONResponse(found[0])

    def hubspot(limit: int, after: str | None) -> dict[str, Any]:
        start = int(after or 0)
        chunk = api.records[start : start + limit]
        answer: dict[str, Any] = {"results": chunk}
        if start + limit < len(api.records):
            answer["paging"] = {"next": {"after": str(start + limit), "link": "ignored"}}
        return answer

    @app.get("/crm/v3/objects/items")
    async def hubspot_list(limit: int = 10, after: str | None = None) -> dict[str, Any]:
        return hubspot(limit, after)

    @app.post("/crm/v3/objects/items/search")
    async def hubspot_search(request: Request) -> dict[str, Any]:
        body = await request.json()
        return hubspot(int(body.get("limit", 10)), body.get("after"))

    def token_page(
        request: Request, since: int, skip: int, size: int, next_of: Callable[[int], str], last: dict[str, Any]
    ) -> dict[str, Any]:
        changed = api.since(since)
        chunk = changed[skip : skip + size]
        answer: dict[str, Any] = {"value": chunk}
        if skip + size < len(changed):
            answer.update({"@odata.nextLink": next_of(skip + size)})
        else:
            answer.update(last)
        return answer

    @app.get("/v1.0/me/items/delta")
    async def graph_delta(request: Request) -> Response:
        token = request.query_params.get("$deltatoken")
        if token in api.expired_tokens:
            return JSONResponse({"error": {"code": "syncStateNotFound", "message": "expired"}}, status_code=410)
        since = int(token or request.query_params.get("$skiptoken", "0:0").split(":")[0])
        skip = int(request.query_params.get("$skiptoken", "0:0").split(":")[1])
        base = str(request.base_url).rstrip("/") + "/v1.0/me/items/delta"
        answer = token_page(
            request,
            since,
            skip,
            3,
            lambda at: f"{base}?$skiptoken={since}:{at}",
            {"@odata.deltaLink": f"{base}?$deltatoken={api.version}"},
        )
        return JSONResponse(answer)

    @app.get("/calendar/v3/items")
    async def google_list(request: Request) -> Response:
        sync = request.query_params.get("syncToken")
        if sync in api.expired_tokens:
            return JSONResponse({"error": {"code": 410, "message": "Sync token is no longer valid"}}, status_code=410)
        since = int(sync or 0)
        skip = int(request.query_params.get("pageToken", 0))
        changed = api.since(since)
        answer: dict[str, Any] = {"items": changed[skip : skip + 4]}
        if skip + 4 < len(changed):
            answer["nextPageToken"] = str(skip + 4)
        else:
            answer["nextSyncToken"] = str(api.version)
        return JSONResponse(answer)

    @app.get("/linked")
    async def linked(request: Request, page: int = 1) -> Response:
        chunk = api.records[(page - 1) * 4 : page * 4]
        headers = {}
        if page * 4 < len(api.records):
            headers["Link"] = (
                f'<{request.base_url}linked?page={page + 1}>; rel="next", <{request.base_url}linked>; rel="first"'
            )
        return JSONResponse(chunk, headers=headers)

    return app


@dataclass
class Served:
    api: Api
    base_url: str
    http: httpx.Client
    time: FakeTime

    def client(self, cls: type[ApiClient] = ApiClient, **options: Any) -> ApiClient:
        """A client of the crafted API: fake time, no jitter (exact backoffs) unless the test asks for it."""
        governor = options.pop("governor", None) or RateGovernor(clock=self.time.clock, sleep=self.time.sleep)
        options = {"sleep": self.time.sleep, "jitter": lambda delay: delay, **options}
        return cls(self.http, base_url=options.pop("base_url", self.base_url), governor=governor, **options)


def serve(api: Api) -> Iterator[Served]:
    with ServedApp(crafted_app(api)) as served, httpx.Client(timeout=10) as http:
        yield Served(api, served.base_url, http, FakeTime())
