"""What every sandbox reads from requests and writes back: the credentials in ``Authorization``, form bodies,
redirects carrying query parameters, and JSON bodies."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
from collections.abc import Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import Request, Response
from fastapi.responses import RedirectResponse

T = TypeVar("T")


def bearer_token(request: Request) -> str | None:
    """The token of ``Authorization: Bearer <token>``, if that is what was sent."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return (value.strip() or None) if scheme.lower() == "bearer" else None


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """(user, password) of ``Authorization: Basic ...``; ("", "") when it is not valid base64 UTF-8, so a
    malformed header fails authentication instead of being ignored; None without Basic."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return ("", "")
    return user, password


def accepts_json(request: Request) -> bool:
    """Whether the client takes JSON (no Accept header counts as yes)."""
    accept = request.headers.get("accept", "*/*").lower()
    return "json" in accept or "*/*" in accept or "application/*" in accept


def secret_matches(expected: str, presented: str) -> bool:
    """Constant-time comparison, so response times say nothing about how much of a secret was right."""
    return hmac.compare_digest(expected.encode(), presented.encode())


def find_by_secret(by_secret: Mapping[str, T], presented: str) -> T | None:
    """What ``presented`` (an API key, a token) authenticates as, compared in constant time with every secret."""
    return next((value for secret, value in by_secret.items() if secret_matches(secret, presented)), None)


async def form_pairs(request: Request) -> list[tuple[str, str]]:
    """A form body as (name, value) pairs, repeated names kept; a JSON object body (some providers' revocation
    endpoints) reads the same way."""
    body = await request.body()
    if "json" in request.headers.get("content-type", ""):
        try:
            decoded = json.loads(body or b"{}")
        except ValueError:
            return []
        return [(str(k), str(v)) for k, v in decoded.items()] if isinstance(decoded, dict) else []
    return parse_qsl(body.decode(errors="replace"), keep_blank_values=True)


def redirect(uri: str, params: Mapping[str, str], status_code: int = 302) -> RedirectResponse:
    """A redirect to ``uri`` with ``params`` added to whatever query it already has."""
    parts = urlsplit(uri)
    query = "&".join(q for q in (parts.query, urlencode(dict(params))) if q)
    return RedirectResponse(urlunsplit(parts._replace(query=query)), status_code=status_code)


def json_response(
    status: int, body: Any, headers: Mapping[str, str] | None = None, media_type: str = "application/json"
) -> Response:
    """Compact JSON (as the providers send it), with the exact media type the provider uses."""
    content = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return Response(content, status, headers=dict(headers or {}), media_type=media_type)


def run_to_end(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on a loop of its own in a thread of its own: callable from code that may itself run inside
    an event loop (a test alongside Playwright's sync API, an ASGI app's thread), where ``asyncio.run`` refuses."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-loop") as pool:
        return pool.submit(asyncio.run, coroutine).result()
