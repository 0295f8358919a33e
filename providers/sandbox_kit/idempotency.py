"""Idempotency-Key replay: a write sent again with the same key gets the answer the first one got, and nothing is
written twice; the same key on a different request is refused in the provider's words (Xero, Stripe, ...).

    answer = store.run((app, tenant, key), fingerprint(method, path, query, body), now, write, mismatch=refuse)

Keys live in a scope the provider chooses (Xero: per app and organisation; Stripe: per account) for
``retention_s`` (both: 24 hours). ``keeps`` says which answers are remembered: an answer to a request that did
nothing (a 429 or a 5xx) must not be, so a retry with the same key runs for real.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from providers.sandbox_kit.clock import DAY_S

A = TypeVar("A")


@dataclass(frozen=True)
class _Stored(Generic[A]):
    fingerprint: str
    answer: A
    stored_at: float


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    """What makes two requests the same request (paths compared without case, as routing does)."""
    return hashlib.sha256(b"\n".join([method.encode(), path.lower().encode(), query.encode(), body])).hexdigest()


class IdempotencyStore(Generic[A]):
    def __init__(
        self, *, retention_s: float = DAY_S, keeps: Callable[[A], bool] = lambda answer: True, max_key: int = 255
    ) -> None:
        self.retention_s, self._keeps, self.max_key = retention_s, keeps, max_key
        self._entries: dict[Hashable, _Stored[A]] = {}

    def run(
        self, key: Hashable | None, request: str, now: float, write: Callable[[], A], *, mismatch: Callable[[], A]
    ) -> A:
        """``write()``'s answer, or the one remembered under ``key`` for the same ``request`` (a fingerprint);
        ``mismatch()`` when ``key`` was used for another request. No key: just ``write()``. The caller holds
        the lock that makes check, write and remember one step (the same key sent twice at once writes once)."""
        if key is None:
            return write()
        self._expire(now)
        stored = self._entries.get(key)
        if stored is not None:
            return stored.answer if stored.fingerprint == request else mismatch()
        answer = write()
        if self._keeps(answer):
            self._entries[key] = _Stored(request, answer, now)
        return answer

    def valid_key(self, key: str) -> bool:
        """Whether a key is one the provider accepts (1 to ``max_key`` characters)."""
        return 0 < len(key) <= self.max_key

    def __len__(self) -> int:
        return len(self._entries)

    def _expire(self, now: float) -> None:
        for key in [k for k, v in self._entries.items() if v.stored_at <= now - self.retention_s]:
            del self._entries[key]
