"""Request ids and path rewriting at the edge, and the wire helpers (credentials, forms, redirects, JSON), over
real HTTP on loopback."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from providers.sandbox_kit.edge import RequestIds, request_id
from providers.sandbox_kit.serve import ServedApp
from providers.sandbox_kit.wire import (
    basic_credentials,
    bearer_token,
    find_by_secret,
    form_pairs,
    json_response,
    redirect,
    secret_matches,
)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    app = FastAPI()
    counter = iter(range(1, 100))
    app.add_middleware(RequestIds, header="X-Trace", rewrite_path=str.lower, new_id=lambda: f"id-{next(counter)}")

    @app.get("/echo")
    async def echo(request: Request) -> Response:
        return JSONResponse(
            {"id": request_id(request), "bearer": bearer_token(request), "basic": basic_credentials(request)}
        )

    @app.post("/form")
    async def form(request: Request) -> Response:
        return json_response(200, {"pairs": await form_pairs(request)}, {"X-Extra": "1"}, "application/json; v=1")

    @app.get("/go")
    async def go() -> Response:
        return redirect("https://app.example/cb?keep=1", {"code": "a b", "state": "s"})

    with ServedApp(app) as served, httpx.Client(base_url=served.base_url) as client:
        yield client


def test_every_answer_carries_a_fresh_request_id_that_handlers_can_quote(http: httpx.Client) -> None:
    first, second = http.get("/ECHO"), http.get("/echo")  # the path is rewritten before routing
    assert first.json()["id"] == first.headers["x-trace"] == "id-1" and second.headers["x-trace"] == "id-2"
    assert http.get("/missing").headers["x-trace"] == "id-3"  # errors too


def test_credentials_are_read_from_bearer_and_basic_headers(http: httpx.Client) -> None:
    assert http.get("/echo", headers={"Authorization": "Bearer  tok"}).json()["bearer"] == "tok"
    assert http.get("/echo", headers={"Authorization": "Bearer"}).json()["bearer"] is None
    basic = base64.b64encode(b"user:pa:ss").decode()
    assert http.get("/echo", headers={"Authorization": f"Basic {basic}"}).json()["basic"] == ["user", "pa:ss"]
    assert http.get("/echo", headers={"Authorization": "Basic %%%"}).json()["basic"] == ["", ""]
    assert http.get("/echo").json() == {"id": "id-5", "bearer": None, "basic": None}


def test_forms_read_urlencoded_or_json_bodies_keeping_repeated_names(http: httpx.Client) -> None:
    posted = http.post(
        "/form", content="a=1&t=x&t=y&empty=", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert posted.json() == {"pairs": [["a", "1"], ["t", "x"], ["t", "y"], ["empty", ""]]}
    assert posted.headers["content-type"] == "application/json; v=1" and posted.headers["x-extra"] == "1"
    assert posted.text == '{"pairs":[["a","1"],["t","x"],["t","y"],["empty",""]]}'  # compact
    assert http.post("/form", json={"token": "abc"}).json() == {"pairs": [["token", "abc"]]}
    assert http.post("/form", content=b"{not json", headers={"Content-Type": "application/json"}).json() == {
        "pairs": []
    }


def test_redirects_keep_the_query_they_already_have(http: httpx.Client) -> None:
    answer = http.get("/go", follow_redirects=False)
    assert answer.status_code == 302 and answer.headers["location"] == "https://app.example/cb?keep=1&code=a+b&state=s"


def test_secrets_are_found_and_compared_in_constant_time() -> None:
    assert find_by_secret({"sk_1": "acct-1", "sk_2": "acct-2"}, "sk_2") == "acct-2"
    assert find_by_secret({"sk_1": "acct-1"}, "sk_") is None
    assert secret_matches("s3cret", "s3cret") and not secret_matches("s3cret", "s3cre")
