"""Fault knobs: one object per app, read on every request, each knob consumed as requests meet it; and the
middleware simple sandboxes install, exercised over real HTTP on loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse

from providers.sandbox_kit.faults import FaultKnobs, install_faults, knobs_of
from providers.sandbox_kit.serve import ServedApp


def toy_app() -> FastAPI:
    app = FastAPI()
    ids = iter(range(1, 1000))
    install_faults(
        app,
        lambda status: JSONResponse({"injected": status}, status_code=status),
        response_headers=lambda: {"Request-Id": f"req_{next(ids)}"},
    )

    @app.get("/thing")
    async def thing() -> Response:
        return JSONResponse({"ok": True})

    return app


@pytest.fixture
def served() -> Iterator[tuple[FastAPI, httpx.Client]]:
    app = toy_app()
    with ServedApp(app) as server, httpx.Client(base_url=server.base_url) as http:
        yield app, http


def test_a_429_storm_answers_the_next_n_requests_with_retry_after(served: tuple[FastAPI, httpx.Client]) -> None:
    app, http = served
    knobs_of(app).rate_limit_next, knobs_of(app).retry_after_s = 2, 7
    answers = [http.get("/thing") for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].json() == {"injected": 429} and answers[0].headers["retry-after"] == "7"
    assert [a.headers["request-id"] for a in answers] == ["req_1", "req_2", "req_3"]  # on every answer
    assert knobs_of(app).request_count == 3 and knobs_of(app).rate_limit_next == 0


def test_a_one_shot_failure_and_latency_apply_to_the_next_request(served: tuple[FastAPI, httpx.Client]) -> None:
    app, http = served
    knobs_of(app).fail_next_with_status = 503
    assert [http.get("/thing").status_code for _ in range(2)] == [503, 200]
    knobs_of(app).latency_s = 0.3
    started = time.monotonic()
    assert http.get("/thing").status_code == 200 and time.monotonic() - started >= 0.3


def test_knobs_replaced_while_running_take_effect_at_once(served: tuple[FastAPI, httpx.Client]) -> None:
    app, http = served
    knobs_of(app).rate_limit_next = 5
    app.state.sandbox = FaultKnobs()  # what a test fixture does to reset them
    assert http.get("/thing").status_code == 200 and knobs_of(app).request_count == 1


def test_page_failures_count_down_on_the_named_page_only() -> None:
    knobs = FaultKnobs(fail_on_page=2, fail_on_page_status=503, fail_on_page_times=2)
    assert [knobs.take_page_failure(page) for page in (1, 2, None, 2, 2, 3)] == [None, 503, None, 503, None, None]


def test_write_failures_start_at_the_nth_write_and_lost_answers_count_down() -> None:
    knobs = FaultKnobs(fail_on_write=2, fail_on_write_status=502, fail_on_write_times=2, lose_write_responses=1)
    assert [knobs.take_write_failure() for _ in range(4)] == [None, 502, 502, None]
    assert knobs.write_count == 4
    assert [knobs.take_lost_response() for _ in range(2)] == [True, False]


def test_forced_token_expiry_is_consumed() -> None:
    knobs = FaultKnobs(expire_tokens=True)
    assert knobs.take_token_expiry() is True and knobs.take_token_expiry() is False


def test_token_expiry_on_a_page_happens_once_when_that_page_is_asked_for() -> None:
    knobs = FaultKnobs(expire_tokens_on_page=2)
    assert [knobs.take_token_expiry(page) for page in (None, 1, 2, 2, 3)] == [False, False, True, False, False]
    assert knobs.expire_tokens_on_page is None


def test_slow_write_answers_count_down_and_wait_that_long() -> None:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    def delay() -> None:
        # A thread of its own: the browser tests' sync Playwright keeps an event loop running in the worker's thread.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, knobs.delay_write_answer()).result()

    knobs = FaultKnobs(slow_write_answers=1, slow_write_answer_s=0.2)
    started = time.monotonic()
    delay()
    slow = time.monotonic() - started
    started = time.monotonic()
    delay()
    assert slow >= 0.2 and time.monotonic() - started < 0.2 and knobs.slow_write_answers == 0
