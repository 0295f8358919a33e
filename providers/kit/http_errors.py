"""HTTP plumbing every provider shares: Retry-After, JSON bodies, status codes and transport failures as typed errors.

Each provider keeps only what is its own: how its error body reads and how its secrets are masked.
"""

from __future__ import annotations

import email.utils
import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, NoReturn

import httpx

from providers.errors import ProviderAuthError, ProviderError, ProviderRateLimited, ProviderUnavailable


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), or None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    # float() accepts "inf" and "nan": neither is a wait anyone can honour.
    return max(0.0, seconds) if math.isfinite(seconds) else None


def json_object(
    response: httpx.Response,
    *,
    parse_float: Callable[[str], Any] | None = None,
    object_hook: Callable[[dict[str, Any]], Any] | None = None,
) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not JSON or not an object.

    ``parse_float`` and ``object_hook`` are handed to ``json.loads`` (e.g. ``Decimal`` where money must stay
    exact; a hook that converts a provider's date strings while decoding, instead of a second pass).
    """
    try:
        body = json.loads(response.content, parse_float=parse_float, object_hook=object_hook)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def raise_for_provider_status(response: httpx.Response, message: str, *, provider_code: str | None = None) -> NoReturn:
    """Raise the typed error for a failed answer; ``message`` must already be safe to show (secrets masked)."""
    status = response.status_code
    if status in (401, 403):
        raise ProviderAuthError(message, status=status, provider_code=provider_code)
    if status == 429:
        raise ProviderRateLimited(message, retry_after=retry_after_seconds(response))
    if status >= 500:
        raise ProviderUnavailable(message, status=status, provider_code=provider_code)
    raise ProviderError(message, status=status, provider_code=provider_code)


@contextmanager
def transport_errors(provider: str, redact: Callable[[str], str]) -> Iterator[None]:
    """Turn httpx's timeouts and transport failures inside the block into ``ProviderUnavailable``.

    ``redact`` masks the provider's secrets: httpx's text can carry the request URL and so a credential.
    """
    try:
        yield
    except httpx.TimeoutException as exc:
        raise ProviderUnavailable(f"{provider} did not answer in time.") from exc
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(f"Could not reach {provider}: {redact(str(exc) or type(exc).__name__)}") from exc
