"""Incremental pulls through Stripe's events: a kit ``ChangeFeed`` over ``GET /v1/events``.

https://docs.stripe.com/api/events/list: events are listed newest first, filtered by ``types[]`` (explicit types,
at most 20) and ``created``, and kept for 30 days. A stream's position is the newest event it applied: its
``created`` second and the ids of the events of that second already applied, so the next run lists
``created[gte]=<that second>`` and skips exactly those. Each changed object is the event's own object (the newest
event of it wins; ``*.deleted`` marks it deleted, so the warehouse row goes and the canonical record is marked);
an object the event carries incompletely (a list with more) is fetched. A position older than the retention
(less an hour's margin) cannot be resumed (``ChangesExpired``): the stream is listed in full again, and the run says
so in its log and its sync log (``full_sync_reason``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from providers.kit.client import ApiClient
from providers.kit.paginators import AfterLastRecord
from providers.kit.streams import ChangeFeed, Changes, ChangesExpired, Records, Stream, read_listing
from providers.stripe.webhooks import changed_record, complete, flatten_lists

log = logging.getLogger("vrtx.providers.stripe")
RETENTION_S = 30 * 86_400
MARGIN_S = 3600  # an event this close to the retention may be gone by the time the listing reaches it
LATE_S = 300  # with no event yet, start a little before now: an event stamped by a clock behind ours still counts


@dataclass(frozen=True)
class EventsFeed(ChangeFeed):
    """The events of one stream's objects (``types``), holding ``object`` objects."""

    object: str
    types: tuple[str, ...]
    now: Any = field(default=time.time, compare=False)  # the clock positions age by

    def listing(self, client: ApiClient, stream: Stream) -> Changes:
        start = self._position(client)  # before listing: what changes meanwhile comes next time
        return Changes(read_listing(client, stream), lambda: start)

    def _position(self, client: ApiClient) -> dict[str, Any]:
        body = client.get("events", params={"limit": 1, **self._types()})
        newest = body.get("data") or []
        if newest:
            return {"created": int(newest[0]["created"]), "seen": [newest[0]["id"]]}
        return {"created": int(self.now()) - LATE_S, "seen": []}

    def changes(self, client: ApiClient, stream: Stream, position: Any, kept_at: float | None) -> Changes:
        since = int(position.get("created", 0)) if isinstance(position, dict) else 0
        if since < self.now() - RETENTION_S + MARGIN_S:
            log.warning(
                "stripe %s: the last event applied (%d) is older than Stripe keeps events (30 days): full sync",
                stream.name, since,
            )  # fmt: skip
            days = (self.now() - since) / 86_400
            raise ChangesExpired(f"its last event applied is {days:.1f} days old; Stripe keeps events for 30 days")
        seen = set(position.get("seen", []))
        newest: dict[str, Any] = {"created": since, "seen": sorted(seen)}

        def pages() -> Iterator[Records]:
            applied: set[str] = set()
            params = {"limit": 100, "created[gte]": since, **self._types()}
            for page in client.paginate(
                "events", "data", paginator=AfterLastRecord(), params=params, stream=stream.name
            ):
                rows = []
                for event in page:
                    created = int(event["created"])
                    if created > newest["created"]:
                        newest.update(created=created, seen=[])
                    if created == newest["created"] and event["id"] not in newest["seen"]:
                        newest["seen"].append(event["id"])
                    obj = (event.get("data") or {}).get("object") or {}
                    if event["id"] in seen or obj.get("object") != self.object or obj.get("id") in applied:
                        continue  # applied last time, about another object, or older than this object's newest
                    applied.add(obj["id"])
                    rows.append(self._record(client, stream, event))
                if rows:
                    yield rows

        return Changes(pages(), lambda: newest)

    def _record(self, client: ApiClient, stream: Stream, event: dict[str, Any]) -> dict[str, Any]:
        record = changed_record(event)
        if complete(record) or record.get("deleted"):
            return flatten_lists(record)
        fetched = client.get(f"{stream.path}/{record['id']}")  # the event carries part of it: read it whole
        return flatten_lists({**fetched, "event": record["event"]})

    def _types(self) -> dict[str, Any]:
        return {f"types[{n}]": event_type for n, event_type in enumerate(self.types)}
