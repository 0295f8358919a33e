"""Fault injection shared by the provider sandboxes: one knob object per app (``app.state.sandbox``), read fresh
on every request, so tests and demos make a running sandbox slow, rate limited or failing.

    knobs_of(app).rate_limit_next = 2     # a 429 storm: the next two requests get the provider's 429
    knobs_of(app).fail_on_page = 3        # page 3 of any listing answers 500 (fail_on_page_times times)
    knobs_of(app).expire_tokens = True    # every access token issued so far is expired now
    knobs_of(app).expire_tokens_on_page = 2   # ...or when page 2 of a listing is asked for (mid-pagination)
    knobs_of(app).slow_write_answers = 1  # the next write is applied, its answer sent slow_write_answer_s later

The ``take_*`` methods consume a knob as a request meets it (counting down, resetting one-shot knobs), so every
sandbox applies them the same way. A sandbox with simple needs installs ``install_faults``, a middleware that
applies the request-level knobs (latency, storm, one-shot failure) to every request; a sandbox that checks its
callers first (an OAuth API) applies them after authentication through ``providers.sandbox_kit.gate``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from fastapi import FastAPI, Request, Response


@dataclass
class FaultKnobs:
    request_count: int = 0  # requests seen, for tests that count calls
    latency_s: float = 0.0  # delay before every answer
    fail_next_with_status: int | None = None  # answer the next request with this status (once)
    rate_limit_next: int = 0  # answer this many upcoming requests with the provider's 429
    retry_after_s: int = 1  # the Retry-After sent with those 429s
    expire_tokens: bool = False  # expire every access token issued so far (consumed: resets to False)
    expire_tokens_on_page: int | None = None  # the same, when page N of a listing is asked for (once)
    fail_on_page: int | None = None  # answer page N of any paged listing with fail_on_page_status...
    fail_on_page_status: int = 500
    fail_on_page_times: int = 1  # ...this many times (counts down), then serve it normally
    # Writes: from the Nth write on (1-based, counted in write_count), answer fail_on_write_status
    # fail_on_write_times times without writing anything.
    fail_on_write: int | None = None
    fail_on_write_status: int = 500
    fail_on_write_times: int = 1
    lose_write_responses: int = 0  # the next N writes are applied, then answered 504 (the answer lost)
    # The next N writes are applied, then answered only slow_write_answer_s later: a provider slower than its
    # client's timeout, whose client resends while the first answer is still coming.
    slow_write_answers: int = 0
    slow_write_answer_s: float = 0.0
    release_held_answers: bool = False  # set: a held answer goes out now (a test done looking at the wait)
    write_count: int = 0

    def seen(self) -> None:
        self.request_count += 1

    async def delay(self) -> None:
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)

    def take_failure(self) -> int | None:
        """The status the next request must fail with, once."""
        status, self.fail_next_with_status = self.fail_next_with_status, None
        return status

    def take_rate_limit(self) -> bool:
        """True while a 429 storm lasts (each call uses up one)."""
        if self.rate_limit_next <= 0:
            return False
        self.rate_limit_next -= 1
        return True

    def take_token_expiry(self, page: int | None = None) -> bool:
        """True when every access token must expire before this request (``page``: the listing page it asks for)."""
        on_page = page is not None and page == self.expire_tokens_on_page
        if on_page:
            self.expire_tokens_on_page = None
        expire, self.expire_tokens = self.expire_tokens, False
        return expire or on_page

    def take_page_failure(self, page: int | None) -> int | None:
        """The status to answer page ``page`` of a listing with, while ``fail_on_page_times`` lasts."""
        if page is None or page != self.fail_on_page or self.fail_on_page_times <= 0:
            return None
        self.fail_on_page_times -= 1
        return self.fail_on_page_status

    def take_write_failure(self) -> int | None:
        """Count a write; the status to refuse it with (nothing written) while ``fail_on_write_times`` lasts."""
        self.write_count += 1
        failing = self.fail_on_write is not None and self.write_count >= self.fail_on_write
        if not failing or self.fail_on_write_times <= 0:
            return None
        self.fail_on_write_times -= 1
        return self.fail_on_write_status

    async def delay_write_answer(self) -> None:
        """Hold a write's answer while ``slow_write_answers`` lasts (each write uses up one)."""
        if self.slow_write_answers <= 0:
            return
        self.slow_write_answers -= 1
        loop = asyncio.get_running_loop()
        until = loop.time() + self.slow_write_answer_s
        while not self.release_held_answers and loop.time() < until:
            await asyncio.sleep(min(0.05, max(0.0, until - loop.time())))

    def take_lost_response(self) -> bool:
        """True when a write that succeeded must be answered as if its response was lost (a 504)."""
        if self.lose_write_responses <= 0:
            return False
        self.lose_write_responses -= 1
        return True


K = TypeVar("K", bound=FaultKnobs)


@overload
def knobs_of(app: Any) -> FaultKnobs: ...


@overload
def knobs_of(app: Any, kind: type[K]) -> K: ...


def knobs_of(app: Any, kind: type[FaultKnobs] = FaultKnobs) -> FaultKnobs:
    """The app's knobs as they are now (tests may have replaced them), of the provider's ``kind``."""
    knobs = app.state.sandbox
    if not isinstance(knobs, kind):
        raise TypeError(f"app.state.sandbox is a {type(knobs).__name__}, not a {kind.__name__}")
    return knobs


def install_faults(
    app: FastAPI,
    failure_response: Callable[[int], Response],
    *,
    knobs: FaultKnobs | None = None,
    response_headers: Callable[[], Mapping[str, str]] | None = None,
) -> None:
    """Give ``app`` its knobs (``app.state.sandbox``) and the middleware that applies the request-level ones.

    ``failure_response(status)`` builds the provider's error for an injected failure; ``response_headers()``,
    called once per response (injected or not), adds headers the provider sends on every answer.
    """
    app.state.sandbox = knobs or FaultKnobs()

    @app.middleware("http")
    async def faults(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        # Looked up per request, not captured: tests reset the knobs by replacing app.state.sandbox.
        current = knobs_of(app)
        current.seen()
        await current.delay()
        if current.take_rate_limit():
            response = failure_response(429)
        elif (status := current.take_failure()) is not None:
            response = failure_response(status)
        else:
            response = await call_next(request)
        if response.status_code == 429:
            response.headers["Retry-After"] = str(current.retry_after_s)
        if response_headers is not None:
            response.headers.update(response_headers())
        return response
