"""Idempotency-Key replay over real HTTP: the same request with the same key is answered again without writing
again, the same key on another request is refused, only answers of requests that ran are kept, keys expire."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from providers.sandbox_kit.clock import ManualClock
from providers.sandbox_kit.idempotency import IdempotencyStore, fingerprint
from providers.sandbox_kit.serve import ServedApp


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, object]


@dataclass
class Charges:
    http: httpx.Client
    clock: ManualClock
    written: list[int]
    store: IdempotencyStore[Answer]
    fail_next: list[int]

    def charge(self, amount: int, key: str | None = "k1", account: str = "acct_1") -> httpx.Response:
        headers = {"Stripe-Account": account, **({"Idempotency-Key": key} if key else {})}
        return self.http.post("/v1/charges", data={"amount": amount}, headers=headers)


@pytest.fixture
def charges() -> Iterator[Charges]:
    clock, written, fail_next = ManualClock(), [], []
    store = IdempotencyStore[Answer](keeps=lambda answer: answer.status < 500)
    lock = threading.Lock()
    app = FastAPI()

    @app.post("/v1/charges")
    async def charge(request: Request) -> Response:
        body = await request.body()
        key = request.headers.get("idempotency-key")

        def write() -> Answer:
            if fail_next:
                return Answer(fail_next.pop(), {"error": "api_error"})
            written.append(len(written) + 1)
            return Answer(200, {"id": f"ch_{written[-1]}"})

        with lock:
            answer = store.run(
                None if key is None else (request.headers["stripe-account"], key),
                fingerprint(request.method, request.url.path, request.url.query, body),
                clock(),
                write,
                mismatch=lambda: Answer(400, {"error": "idempotency_error"}),
            )
        return JSONResponse(answer.body, status_code=answer.status)

    with ServedApp(app) as served, httpx.Client(base_url=served.base_url) as http:
        yield Charges(http, clock, written, store, fail_next)


def test_a_retry_with_the_same_key_gets_the_first_answer_and_writes_nothing(charges: Charges) -> None:
    first, again = charges.charge(100), charges.charge(100)
    assert first.json() == again.json() == {"id": "ch_1"} and charges.written == [1]
    assert charges.charge(100, key=None).json() == {"id": "ch_2"}  # no key: every request writes
    assert charges.charge(100, account="acct_2").json() == {"id": "ch_3"}  # keys are per account


def test_the_same_key_on_another_request_is_refused_in_the_providers_words(charges: Charges) -> None:
    charges.charge(100)
    refused = charges.charge(250)
    assert refused.status_code == 400 and refused.json() == {"error": "idempotency_error"}
    assert charges.written == [1] and charges.charge(100).json() == {"id": "ch_1"}  # the key still replays


def test_an_answer_of_a_request_that_did_nothing_is_not_kept(charges: Charges) -> None:
    charges.fail_next.append(503)
    assert charges.charge(100).status_code == 503
    assert charges.charge(100).json() == {"id": "ch_1"}  # the retry ran for real


def test_keys_expire_after_the_retention(charges: Charges) -> None:
    charges.charge(100)
    charges.clock.advance(24 * 3600 - 1)
    assert charges.charge(100).json() == {"id": "ch_1"}
    charges.clock.advance(2)
    assert charges.charge(100).json() == {"id": "ch_2"} and len(charges.store) == 1


def test_fingerprints_tell_requests_apart_but_not_the_case_of_their_paths() -> None:
    same = fingerprint("POST", "/v1/Charges", "a=1", b"x")
    assert same == fingerprint("POST", "/v1/charges", "a=1", b"x")
    assert same not in {fingerprint("PUT", "/v1/charges", "a=1", b"x"), fingerprint("POST", "/v1/charges", "", b"x")}


def test_keys_are_one_to_the_providers_maximum_characters() -> None:
    store = IdempotencyStore[int](max_key=128)
    assert store.valid_key("k") and store.valid_key("k" * 128)
    assert not store.valid_key("") and not store.valid_key("k" * 129)
