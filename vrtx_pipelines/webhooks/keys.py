"""Providers' public signing keys (JWK sets), for deliveries signed with a provider's own keys (Google's Pub/Sub
push tokens) rather than a shared secret.

A key set is fetched once and kept for the ``Cache-Control: max-age`` the provider answers with (an hour when it
names none). Providers rotate keys with overlap, so a delivery that fails with the cached set may be signed with a
key published since: the receiver fetches once more, at most once a minute per URL, so forged tokens naming
unknown keys cannot make us hammer the provider. Fetches block: the receiver runs them on its thread pool.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

DEFAULT_TTL_S = 3600.0
MIN_REFETCH_S = 60.0
MAX_KEYS_BYTES = 256 * 1024
_MAX_AGE = re.compile(r"max-age=(\d+)")


class KeysUnavailable(Exception):
    """The provider's key set could not be fetched or is not a JWK set: deliveries cannot be verified now."""


@dataclass
class _Entry:
    keys: Mapping[str, Any]
    fetched: float
    expires: float


def _fetch(url: str) -> tuple[Mapping[str, Any], float]:
    try:
        response = httpx.get(url, timeout=5.0, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise KeysUnavailable(f"signing keys unreachable ({type(exc).__name__})") from exc
    if response.status_code != 200 or len(response.content) > MAX_KEYS_BYTES:
        raise KeysUnavailable(f"signing keys answered {response.status_code}")
    try:
        keys = json.loads(response.content)
    except ValueError as exc:
        raise KeysUnavailable("signing keys are not JSON") from exc
    if not isinstance(keys, dict) or not isinstance(keys.get("keys"), list):
        raise KeysUnavailable("signing keys are not a JWK set")
    age = _MAX_AGE.search(response.headers.get("cache-control", ""))
    return keys, float(age.group(1)) if age else DEFAULT_TTL_S


class PublicKeys:
    """Key sets by URL for one process; thread-safe."""

    def __init__(
        self,
        *,
        fetch: Callable[[str], tuple[Mapping[str, Any], float]] = _fetch,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch, self._clock = fetch, clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def cached(self, url: str) -> Mapping[str, Any] | None:
        """The fresh key set of ``url``, or None when it must be fetched (``get``)."""
        entry = self._entries.get(url)
        return entry.keys if entry is not None and entry.expires > self._clock() else None

    def get(self, url: str) -> Mapping[str, Any]:
        """The key set of ``url``, fetched when it is not cached or has expired; ``KeysUnavailable``."""
        with self._lock:
            keys = self.cached(url)
            return keys if keys is not None else self._store(url)

    def refetch(self, url: str) -> Mapping[str, Any] | None:
        """A key set fetched afresh, for a delivery the cached one did not verify; None when the last fetch is
        under a minute old (nothing new to expect)."""
        with self._lock:
            entry = self._entries.get(url)
            if entry is not None and self._clock() - entry.fetched < MIN_REFETCH_S:
                return None
            return self._store(url)

    def _store(self, url: str) -> Mapping[str, Any]:
        keys, ttl = self._fetch(url)
        now = self._clock()
        self._entries[url] = _Entry(keys, now, now + min(max(ttl, MIN_REFETCH_S), 86_400.0))
        return keys
