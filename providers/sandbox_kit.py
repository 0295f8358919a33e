"""Fault injection shared by the provider sandboxes: one set of knobs, one middleware.

Every sandbox lets tests and demos make it slow, rate limited or failing while it runs; only the error body
(and a provider's own response headers) differ, so a sandbox passes those in and keeps nothing else.

    install_fault_injection(app, provider_error_response)
    sandbox_state(app).rate_limit_next = 2  # the next two requests get the provider's 429
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from fastapi import FastAPI, Request, Response


@dataclass
class SandboxState:
    """Fault knobs, changed by tests and demos while the sandbox runs (``app.state.sandbox``)."""

    fail_next_with_status: int | None = None  # answer the next request with this status (once)
    rate_limit_next: int = 0  # answer this many upcoming requests with 429
    retry_after_s: int = 1  # the Retry-After sent with those 429s
    latency_s: float = 0.0  # delay before every answer
    request_count: int = 0  # requests seen, for tests that count calls


def sandbox_state(app: FastAPI) -> SandboxState:
    state: SandboxState = app.state.sandbox
    return state


def install_fault_injection(
    app: FastAPI,
    failure_response: Callable[[int], Response],
    *,
    state: SandboxState | None = None,
    response_headers: Callable[[], Mapping[str, str]] | None = None,
) -> None:
    """Give ``app`` its knobs (``app.state.sandbox``) and the middleware that obeys them.

    ``failure_response(status)`` builds the provider's error for an injected failure; ``response_headers()``,
    called once per response (injected or not), adds headers the provider sends on every answer.
    """
    app.state.sandbox = state or SandboxState()

    @app.middleware("http")
    async def faults(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        # Looked up per request, not captured: tests reset the knobs by replacing app.state.sandbox.
        knobs = sandbox_state(app)
        knobs.request_count += 1
        if knobs.latency_s > 0:
            await asyncio.sleep(knobs.latency_s)
        if knobs.rate_limit_next > 0:
            knobs.rate_limit_next -= 1
            response = failure_response(429)
        elif knobs.fail_next_with_status is not None:
            status, knobs.fail_next_with_status = knobs.fail_next_with_status, None
            response = failure_response(status)
        else:
            response = await call_next(request)
        if response.status_code == 429:
            response.headers["Retry-After"] = str(knobs.retry_after_s)
        if response_headers is not None:
            response.headers.update(response_headers())
        return response
