"""Graph's delta query mechanics, shared by messages and calendar views
(https://learn.microsoft.com/en-us/graph/delta-query-overview).

A round is one or more pages: every page but the last carries ``@odata.nextLink`` (a ``$skiptoken``), the last
``@odata.deltaLink`` (a ``$deltatoken``); calling the delta link starts the next round, which answers what changed
since. Both tokens are opaque state tokens that carry the round's first request's options (``$select``, ``$filter``,
the calendar window, the page size), so the links are followed verbatim. Here a token is signed JSON: a garbled or
forged one answers 400, a voided one (``expire_delta``) 410 ``syncStateNotFound``.

Pages are keyset-paged (each skip token carries the last row served), so changes while a client pages never make it
skip a row: whatever changes after a round began is served again in the next one (Graph warns of such replays).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from providers.microsoft365.sandbox.errors import GraphError

Body = dict[str, Any]
T = TypeVar("T")
Key = list[int]  # a row's position in its round's order
DEFAULT_PAGE_SIZE = 10  # Graph's default for Outlook collections when no page size is preferred
MAX_PAGE_SIZE = 1000  # the largest page served; a larger preference is capped (Preference-Applied says so)
SYNC_STATE_NOT_FOUND = GraphError(
    410, "syncStateNotFound", "The sync state generation is not found. The delta token is expired and data must be "
    "synchronized again."
)  # fmt: skip
_PAGE_SIZE = re.compile(r"^\s*odata\.maxpagesize\s*=\s*(\d+)\s*$", re.IGNORECASE)
_ID_TYPE = re.compile(r'^\s*IdType\s*=\s*"?ImmutableId"?\s*$', re.IGNORECASE)


def bad_token(name: str) -> GraphError:
    return GraphError(400, "ErrorInvalidUrlQuery", f"The value of the parameter '{name}' is invalid.")


@dataclass(frozen=True)
class Preferences:
    """What the ``Prefer`` headers ask for (one header may carry several, comma-separated)."""

    max_page_size: int | None = None
    immutable_ids: bool = False

    @classmethod
    def of(cls, values: Sequence[str]) -> Preferences:
        size, immutable = None, False
        for value in values:
            for part in value.split(","):
                if found := _PAGE_SIZE.match(part):
                    size = int(found.group(1))
                elif _ID_TYPE.match(part):
                    immutable = True
        return cls(size, immutable)


@dataclass(frozen=True)
class Round:
    """Where a delta round stands: the first request's options (``query``), the token generation it belongs to
    (``epoch``), what it answers (everything now when ``since`` is None, else the changes after sequence ``since``),
    the sequence it began at (the next round's ``since``), the last row served and the page asked for."""

    resource: str
    query: Body
    epoch: int
    since: int | None
    upto: int
    cursor: Key | None = None
    page: int = 1


class Tokens:
    """Issues and reads state tokens, signed with a key of this sandbox's own."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def _sign(self, state: Body) -> str:
        raw = json.dumps(state, separators=(",", ":"), sort_keys=True).encode()
        mac = hmac.new(self._key, raw, hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(raw + mac).decode().rstrip("=")

    def _read(self, token: str, kind: str, name: str) -> Body:
        try:
            raw = base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4))
            body, mac = raw[:-12], raw[-12:]
            if not hmac.compare_digest(mac, hmac.new(self._key, body, hashlib.sha256).digest()[:12]):
                raise ValueError("signature")
            state = json.loads(body)
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise bad_token(name) from None
        if not isinstance(state, dict) or state.get("k") != kind:
            raise bad_token(name)
        return state

    def next_token(self, done: Round, cursor: Key) -> str:
        return self._sign({"k": "s", "r": done.resource, "q": done.query, "e": done.epoch, "s": done.since,
                           "u": done.upto, "c": cursor, "p": done.page + 1})  # fmt: skip

    def delta_token(self, done: Round) -> str:
        return self._sign({"k": "d", "r": done.resource, "q": done.query, "e": done.epoch, "u": done.upto})

    def page_of(self, params: Mapping[str, str]) -> int:
        """The page a request asks for (1 but for a skip token's), before the sandbox's lock is taken."""
        token = params.get("$skiptoken")
        if token is None:
            return 1
        try:
            return int(self._read(token, "s", "$skiptoken")["p"])
        except (GraphError, KeyError, TypeError, ValueError):
            return 1

    def round(self, params: Mapping[str, str], resource: str, epoch: int, sequence: int, query: Body) -> Round:
        """The round a request continues (its token's) or begins (``query``: its own options, already checked).
        A token of another resource reads as garbled; one from before ``epoch`` as expired."""
        if "$skiptoken" in params:
            state = self._read(params["$skiptoken"], "s", "$skiptoken")
            found = Round(state["r"], state["q"], state["e"], state["s"], state["u"], state["c"], state["p"])
        elif "$deltatoken" in params:
            state = self._read(params["$deltatoken"], "d", "$deltatoken")
            found = Round(state["r"], state["q"], state["e"], state["u"], sequence)
        else:
            return Round(resource, query, epoch, None, sequence)
        if found.resource != resource:
            raise bad_token("$skiptoken" if "$skiptoken" in params else "$deltatoken")
        if found.epoch != epoch:
            raise SYNC_STATE_NOT_FOUND
        return found


def page_size(preferences: Preferences, query: Body) -> int:
    """The page size a request gets: its ``Prefer: odata.maxpagesize`` (else the round's ``$top``, else Graph's
    default), capped at ``MAX_PAGE_SIZE``."""
    wanted = preferences.max_page_size or query.get("top") or DEFAULT_PAGE_SIZE
    return max(1, min(int(wanted), MAX_PAGE_SIZE))


def preference_applied(preferences: Preferences, size: int) -> dict[str, str]:
    """The ``Preference-Applied`` header answering a page size preference: the size served."""
    return {"Preference-Applied": f"odata.maxpagesize={size}"} if preferences.max_page_size is not None else {}


def removed(odata_type: str, record_id: str) -> Body:
    """A row for a record gone from the collection. Outlook says ``deleted`` for messages deleted or moved out of the
    folder and for events deleted or out of the window; ``changed`` is the directory's reason for a soft-deleted
    object still restorable from deletedItems."""
    return {"@odata.type": odata_type, "id": record_id, "@removed": {"reason": "deleted"}}


def envelope(tokens: Tokens, done: Round, rows: list[Body], cursor: Key | None, context: str, link_base: str) -> Body:
    """A delta page of ``rows``: a next link past ``cursor`` (the page's last entry) when more follow, else (None)
    the delta link. ``link_base``: the request's absolute URL without its query, on the origin it came in on."""
    body: Body = {"@odata.context": context}
    if cursor is not None:
        body["@odata.nextLink"] = f"{link_base}?$skiptoken={tokens.next_token(done, cursor)}"
    else:
        body["@odata.deltaLink"] = f"{link_base}?$deltatoken={tokens.delta_token(done)}"
    body["value"] = rows
    return body


def page_after(order: Sequence[tuple[Key, T]], cursor: Key | None, size: int) -> tuple[list[tuple[Key, T]], bool]:
    """The next ``size`` entries past ``cursor`` in ``order`` (sorted by key), and whether more follow. Entries are
    cheap handles: only a page's are made into resources."""
    start = 0 if cursor is None else bisect.bisect_right(order, cursor, key=lambda entry: entry[0])
    chosen = list(order[start : start + size])
    return chosen, start + size < len(order)
