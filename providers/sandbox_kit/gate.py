"""Admitting an API call the way providers do, in their order: who calls (the token or key), which tenant it
names and may reach, the scope the endpoint needs, the provider's own checks, injected faults, then the rate
limits; every answer from then on carries the provider's rate-limit headers.

    call = gate.admit(request, knobs, limits=knobs.limits(), tenant_of=tenant_header, scopes=READ_SCOPES)
    if isinstance(call, Response):
        return call                        # 401, 403, 406, an injected 5xx or a 429, in the provider's shape
    with call:                             # holds an in-flight slot until the answer is ready
        await knobs.delay()                # a slow provider is slow inside the slot, so slowness meets the cap
        ...

The provider supplies its wire shapes (``Answers``) and who a caller is (``authenticate``); the gate counts
``api_calls``, ``rate_limited_responses`` and the peak of calls in flight (``max_in_flight``) in ``CallStats``.
Everything runs under the sandbox's lock.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, TypeVar

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from providers.sandbox_kit.clock import Clock
from providers.sandbox_kit.faults import FaultKnobs
from providers.sandbox_kit.metering import CallStats, RateLimits, RateMeter, Refusal
from providers.sandbox_kit.wire import accepts_json, bearer_token

if TYPE_CHECKING:
    from providers.sandbox_kit.oauth import OAuthServer

R = TypeVar("R")


class Caller(Protocol):
    """Who makes an API call: an access token's record, or the account an API key belongs to."""

    @property
    def client_id(self) -> str: ...

    @property
    def scopes(self) -> frozenset[str]: ...


class Gated(Protocol):
    """What a gate runs on: a sandbox's meter, stats, lock and clock, and its OAuth server if it has one."""

    @property
    def meter(self) -> RateMeter: ...

    @property
    def stats(self) -> CallStats: ...

    @property
    def lock(self) -> threading.RLock: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def oauth(self) -> OAuthServer | None: ...


def bearer_caller(authenticate: Callable[[str | None], Caller | str]) -> Callable[[Request], Caller | None]:
    """A gate's ``authenticate`` for OAuth APIs: the bearer token's record (``OAuthServer.authenticate``), else
    None (an unknown, revoked or expired token)."""

    def caller(request: Request) -> Caller | None:
        found = authenticate(bearer_token(request))
        return None if isinstance(found, str) else found

    return caller


def json_only(refusal: Callable[[Request], Response]) -> Callable[[Request], Response | None]:
    """A gate's ``check`` refusing clients that do not take JSON (``Accept``), with the provider's answer."""
    return lambda request: None if accepts_json(request) else refusal(request)


@dataclass(frozen=True)
class Answers:
    """The provider's answers for what the gate refuses (each gets the rate-limit headers added)."""

    unauthorized: Callable[[Request, bool], Response]  # (request, insufficient_scope): no, bad or expired token
    forbidden: Callable[[Request], Response]  # the tenant asked for is missing or not reachable by this caller
    rate_limited: Callable[[Request, Refusal], Response]  # a 429, with Retry-After and whatever the provider adds
    server_error: Callable[[Request, int], Response]  # an injected failure with this status
    rate_headers: Callable[[dict[str, int]], dict[str, str]] = lambda remaining: {}  # calls left per quota
    storm_problem: str = "minute"  # the quota an injected 429 storm names


@dataclass
class Call:
    """An admitted call: its caller, tenant and rate-limit headers; leaving ``with call:`` frees its slot."""

    caller: Caller
    tenant_id: str
    headers: dict[str, str]
    _release: Callable[[], None] = field(repr=False)

    def __enter__(self) -> Call:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._release()


class Gate:
    def __init__(
        self,
        *,
        authenticate: Callable[[Request], Caller | None],
        answers: Answers,
        meter: RateMeter,
        stats: CallStats,
        lock: threading.RLock,
        clock: Clock,
        expire_tokens: Callable[[], None] = lambda: None,
    ) -> None:
        self._authenticate, self._answers = authenticate, answers
        self.meter, self.stats, self._lock, self._clock = meter, stats, lock, clock
        self._expire_tokens = expire_tokens

    @classmethod
    def of(
        cls,
        sandbox: Gated,
        *,
        authenticate: Callable[[Request], Caller | None],
        answers: Answers,
        expire_tokens: bool = True,
    ) -> Gate:
        """The gate over a sandbox's meter, stats, lock and clock; a forced token expiry expires the tokens of its
        OAuth server (``expire_tokens``, when it has one)."""
        oauth = sandbox.oauth if expire_tokens else None
        return cls(
            authenticate=authenticate, answers=answers, meter=sandbox.meter, stats=sandbox.stats, lock=sandbox.lock,
            clock=sandbox.clock, expire_tokens=oauth.expire_all if oauth is not None else lambda: None,
        )  # fmt: skip

    def preparer(self, knobs: Callable[[], FaultKnobs]) -> Callable[[Request], Awaitable[None]]:
        """The ``prepare`` of a sandbox's non-API routes (OAuth, consent): ``prepare`` with the knobs in force, then
        their delay."""

        async def prepare(request: Request) -> None:
            current = knobs()
            self.prepare(current)
            await current.delay()

        return prepare

    def prepare(self, knobs: FaultKnobs, *, page: int | None = None) -> None:
        """What every request does first, API call or not: count it, and apply a forced token expiry (``page``:
        the listing page the request asks for, if any)."""
        knobs.seen()
        if knobs.take_token_expiry(page):
            with self._lock:
                self._expire_tokens()

    def admit(
        self,
        request: Request,
        knobs: FaultKnobs,
        *,
        limits: RateLimits,
        tenant_of: Callable[[Request, Caller], str | None],
        scopes: frozenset[str] | None = None,
        check: Callable[[Request], Response | None] = lambda request: None,
        cost: int = 1,
    ) -> Call | Response:
        """The admitted call (an in-flight slot taken), or the answer refusing it. ``scopes``: any one of them
        opens the endpoint (None: no scope needed); ``check`` is the provider's own test (e.g. content types);
        ``cost``: the quota units the call uses."""
        answers = self._answers
        with self._lock:
            now = self._clock()
            caller = self._authenticate(request)
            if caller is None:
                return self._with(answers.unauthorized(request, False), limits, None, None, now)
            tenant_id = tenant_of(request, caller)
            if tenant_id is None:
                return self._with(answers.forbidden(request), limits, caller.client_id, None, now)
            if scopes is not None and not caller.scopes & scopes:
                return self._with(answers.unauthorized(request, True), limits, caller.client_id, None, now)
            refused = check(request)
            if refused is not None:
                return self._with(refused, limits, caller.client_id, None, now)
            self.stats.bump("api_calls", [tenant_id])
            failure = knobs.take_failure()
            if failure is not None:
                return self._with(answers.server_error(request, failure), limits, caller.client_id, None, now)
            if knobs.take_rate_limit():
                refusal: Refusal | None = Refusal(answers.storm_problem, knobs.retry_after_s)
            else:
                refusal = self.meter.acquire(caller.client_id, tenant_id, now, limits, cost)
            headers = answers.rate_headers(self.meter.remaining(caller.client_id, tenant_id, now, limits))
            if refusal is not None:
                self.stats.bump("rate_limited_responses", [tenant_id])
                response = answers.rate_limited(request, refusal)
                response.headers.update(headers)
                return response
            self.stats.in_flight(tenant_id, self.meter.in_flight(None, tenant_id))

        def release() -> None:
            with self._lock:
                self.meter.release(caller.client_id, tenant_id)

        return Call(caller, tenant_id, headers, release)

    async def run(
        self,
        request: Request,
        call: Call,
        knobs: FaultKnobs,
        work: Callable[[], R],
        *,
        page: int | None = None,
        write: bool = False,
    ) -> R | Response:
        """An admitted call's ``work`` as the fault knobs have it: slow inside the in-flight slot (so slowness meets
        the concurrency cap), a listing's ``page`` or a ``write`` failed instead of done, else ``work`` run in a
        worker thread (it takes the sandbox's lock itself), a write's answer held back while it is slow."""
        await knobs.delay()
        failure = knobs.take_write_failure() if write else knobs.take_page_failure(page)
        if failure is not None:
            response = self._answers.server_error(request, failure)
            response.headers.update(call.headers)
            return response
        done = await run_in_threadpool(work)
        if write:
            await knobs.delay_write_answer()
        return done

    def lost(self, request: Request, call: Call, knobs: FaultKnobs) -> Response | None:
        """The 504 a write that succeeded is answered with while ``lose_write_responses`` lasts (a lost answer)."""
        if not knobs.take_lost_response():
            return None
        response = self._answers.server_error(request, 504)
        response.headers.update(call.headers)
        return response

    def _with(
        self, response: Response, limits: RateLimits, client_id: str | None, tenant_id: str | None, now: float
    ) -> Response:
        response.headers.update(self._answers.rate_headers(self.meter.remaining(client_id, tenant_id, now, limits)))
        return response
