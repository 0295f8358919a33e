"""The API gate over real HTTP: callers, tenants, scopes, provider checks, injected faults and rate limits, in
order, with the provider's rate-limit headers on every answer and an in-flight slot held while a call runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from providers.sandbox_kit.clock import MINUTE_S, ManualClock
from providers.sandbox_kit.faults import FaultKnobs, knobs_of
from providers.sandbox_kit.gate import Answers, Caller, Gate
from providers.sandbox_kit.metering import CallStats, Quota, RateLimits, RateMeter, Refusal
from providers.sandbox_kit.serve import ServedApp
from providers.sandbox_kit.wire import bearer_token


@dataclass(frozen=True)
class Key:
    client_id: str
    scopes: frozenset[str]
    tenants: frozenset[str]


KEYS = {
    "reader": Key("app-1", frozenset({"read"}), frozenset({"t1", "t2"})),
    "other": Key("app-2", frozenset({"read"}), frozenset({"t1"})),
    "no-scope": Key("app-1", frozenset({"write"}), frozenset({"t1"})),
}
LIMITS = RateLimits((Quota("minute", 3, MINUTE_S),), concurrent=1)


def _answer(status: int, kind: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": kind}, status_code=status, headers=headers)


ANSWERS = Answers(
    unauthorized=lambda request, scope: _answer(401, "scope" if scope else "token"),
    forbidden=lambda request: _answer(403, "tenant"),
    rate_limited=lambda request, refusal: _answer(429, refusal.problem, {"Retry-After": str(refusal.retry_after_s)}),
    server_error=lambda request, status: _answer(status, "injected"),
    rate_headers=lambda remaining: {"X-Calls-Left": str(remaining["minute"])},
    storm_problem="storm",
)


@dataclass
class Toy:
    http: httpx.Client
    app: FastAPI
    clock: ManualClock
    stats: CallStats
    meter: RateMeter
    expired: list[bool]

    @property
    def knobs(self) -> FaultKnobs:
        return knobs_of(self.app)

    def get(self, key: str | None = "reader", tenant: str = "t1", **headers: str) -> httpx.Response:
        sent = {"x-tenant": tenant, **headers, **({"Authorization": f"Bearer {key}"} if key else {})}
        return self.http.get("/things", headers=sent)


@pytest.fixture
def toy() -> Iterator[Toy]:
    clock, stats, meter, expired = ManualClock(), CallStats(), RateMeter(), []
    gate = Gate(
        authenticate=lambda request: KEYS.get(bearer_token(request) or ""),
        answers=ANSWERS,
        meter=meter,
        stats=stats,
        lock=threading.RLock(),
        clock=clock,
        expire_tokens=lambda: expired.append(True),
    )
    app = FastAPI()
    app.state.sandbox = FaultKnobs()

    def tenant_of(request: Request, caller: Caller) -> str | None:
        tenant = request.headers.get("x-tenant", "")
        assert isinstance(caller, Key)
        return tenant if tenant in caller.tenants else None

    def no_xml(request: Request) -> Response | None:
        return _answer(406, "json only") if "xml" in request.headers.get("accept", "") else None

    @app.get("/things")
    async def things(request: Request) -> Response:
        knobs = knobs_of(app)
        gate.prepare(knobs)
        call = gate.admit(request, knobs, limits=LIMITS, tenant_of=tenant_of, scopes=frozenset({"read"}), check=no_xml)
        if isinstance(call, Response):
            return call
        with call:
            await knobs.delay()
            return JSONResponse({"tenant": call.tenant_id, "app": call.caller.client_id}, headers=call.headers)

    @app.api_route("/things/page/{page}", methods=["GET", "POST"])
    async def work(request: Request, page: int) -> Response:
        knobs, write = knobs_of(app), request.method == "POST"
        gate.prepare(knobs, page=None if write else page)
        call = gate.admit(request, knobs, limits=LIMITS, tenant_of=tenant_of, scopes=frozenset({"read"}))
        if isinstance(call, Response):
            return call
        with call:
            done = await gate.run(request, call, knobs, lambda: {"page": page}, page=page, write=write)
        if isinstance(done, Response):
            return done
        lost = gate.lost(request, call, knobs) if write else None
        return lost or JSONResponse(done, headers=call.headers)

    with ServedApp(app) as served, httpx.Client(base_url=served.base_url, timeout=10) as http:
        yield Toy(http, app, clock, stats, meter, expired)


def test_refusals_come_in_the_providers_order_each_with_the_rate_headers(toy: Toy) -> None:
    cases = [
        (toy.get(None), 401, "token"),
        (toy.get("nobody"), 401, "token"),
        (toy.get("reader", tenant="t9"), 403, "tenant"),
        (toy.get("no-scope"), 401, "scope"),
        (toy.get("reader", accept="application/xml"), 406, "json only"),
    ]
    for response, status, kind in cases:
        assert (response.status_code, response.json()["error"]) == (status, kind)
        assert response.headers["x-calls-left"] == "3"  # refused before metering: nothing counted
    assert toy.stats.api_calls == 0
    ok = toy.get("reader", tenant="t2")
    assert ok.json() == {"tenant": "t2", "app": "app-1"} and ok.headers["x-calls-left"] == "2"
    assert toy.stats.api_calls == toy.stats["t2"].api_calls == 1


def test_quotas_refuse_with_the_providers_429_until_the_window_rolls(toy: Toy) -> None:
    assert [toy.get().status_code for _ in range(3)] == [200, 200, 200]
    refused = toy.get()
    assert refused.status_code == 429 and refused.json()["error"] == "minute"
    assert refused.headers["retry-after"] == "60" and refused.headers["x-calls-left"] == "0"
    assert toy.get("other").status_code == 200  # another app, its own budget
    toy.clock.advance(60)
    assert toy.get().status_code == 200
    assert toy.stats.rate_limited_responses == toy.stats["t1"].rate_limited_responses == 1
    assert toy.stats.api_calls == 6  # the refused call was a call


def test_a_storm_and_a_one_shot_failure_are_answered_after_authentication(toy: Toy) -> None:
    toy.knobs.rate_limit_next, toy.knobs.retry_after_s = 2, 9
    assert toy.get(None).status_code == 401 and toy.knobs.rate_limit_next == 2  # a stranger meets no fault
    storm = [toy.get() for _ in range(3)]
    assert [r.status_code for r in storm] == [429, 429, 200]
    assert storm[0].json()["error"] == "storm" and storm[0].headers["retry-after"] == "9"
    toy.knobs.fail_next_with_status = 502
    assert [toy.get().status_code for _ in range(2)] == [502, 200]
    assert toy.knobs.request_count == 6


def test_a_call_in_flight_holds_its_slot_until_answered(toy: Toy) -> None:
    toy.knobs.latency_s = 0.5
    first: list[int] = []
    slow = threading.Thread(target=lambda: first.append(toy.get().status_code))
    slow.start()
    deadline = time.monotonic() + 5
    while toy.meter.in_flight("app-1", "t1") == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    toy.knobs.latency_s = 0
    second = httpx.get(f"{toy.http.base_url}/things", headers={"Authorization": "Bearer reader", "x-tenant": "t1"})
    slow.join()
    assert second.status_code == 429 and second.json()["error"] == "concurrent"
    assert first == [200] and toy.meter.in_flight("app-1", "t1") == 0


def test_forced_expiry_runs_once_when_a_request_meets_it(toy: Toy) -> None:
    toy.knobs.expire_tokens = True
    toy.get()
    toy.get()
    assert toy.expired == [True] and toy.knobs.expire_tokens is False


def test_a_refusal_names_the_quota_that_refused() -> None:
    assert Refusal("day", 5).problem == "day"


def test_admitted_work_meets_page_and_write_failures_and_lost_answers(toy: Toy) -> None:
    auth = {"Authorization": "Bearer reader", "x-tenant": "t1"}
    toy.knobs.fail_on_page, toy.knobs.fail_on_page_status, toy.knobs.fail_on_page_times = 2, 503, 1
    pages = [toy.http.get(f"/things/page/{n}", headers=auth) for n in (1, 2, 2)]
    assert [r.status_code for r in pages] == [200, 503, 200] and pages[1].json()["error"] == "injected"
    assert pages[1].headers["x-calls-left"] == "1"  # a failed page was still a call
    toy.clock.advance(60)
    toy.knobs.fail_on_write, toy.knobs.lose_write_responses = 1, 1
    writes = [toy.http.post("/things/page/1", headers=auth).status_code for _ in range(3)]
    assert writes == [500, 504, 200] and toy.knobs.write_count == 3  # refused, done but answer lost, done


def test_bearer_callers_and_json_only_checks_for_oauth_apis() -> None:
    from fastapi import FastAPI as App
    from fastapi.testclient import TestClient

    from providers.sandbox_kit.gate import bearer_caller, json_only

    records = {"good": KEYS["reader"]}
    caller = bearer_caller(lambda token: records.get(token or "", "invalid"))
    check = json_only(lambda request: Response("JSON only", 406))
    app = App()

    @app.get("/")
    async def who(request: Request) -> Response:
        found, refused = caller(request), check(request)
        return refused or JSONResponse({"caller": found.client_id if found is not None else None})

    with TestClient(app) as client:
        assert client.get("/", headers={"Authorization": "Bearer good"}).json() == {"caller": "app-1"}
        assert client.get("/", headers={"Authorization": "Bearer bad"}).json() == {"caller": None}
        assert client.get("/", headers={"Accept": "application/xml"}).status_code == 406
        assert client.get("/", headers={"Accept": "application/json, text/plain"}).status_code == 200


def test_a_page_can_expire_the_tokens_and_a_slow_write_is_done_before_its_late_answer(toy: Toy) -> None:
    auth = {"Authorization": "Bearer reader", "x-tenant": "t1"}
    toy.knobs.expire_tokens_on_page = 2
    assert [toy.http.get(f"/things/page/{n}", headers=auth).status_code for n in (1, 2)] == [200, 200]
    assert toy.expired == [True]  # before page 2 was authenticated
    toy.knobs.slow_write_answers, toy.knobs.slow_write_answer_s = 1, 0.5
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        toy.http.post("/things/page/1", headers=auth, timeout=0.1)
    assert toy.knobs.write_count == 1  # applied; only the answer is late
    deadline = time.monotonic() + 10
    while toy.meter.in_flight("app-1", "t1") and time.monotonic() < deadline:
        time.sleep(0.01)  # the late answer still holds the call's slot (the toy allows one in flight)
    assert time.monotonic() - started >= 0.5
    toy.clock.advance(60)
    assert toy.http.post("/things/page/1", headers=auth).status_code == 200
