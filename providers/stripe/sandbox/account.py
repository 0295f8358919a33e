"""One sandbox Stripe account: the kit's store of its objects in creation order, Stripe's list objects over it,
``expand[]``, and the event recorded for every change (``/v1/events``, kept 30 days, sent to webhook subscribers).

Tables are kept in creation order (the store's change field is ``created``, and an update keeps a record's place),
so a Stripe list (newest first, paged by ``starting_after``/``ending_before``, windowed by ``created``) is index
arithmetic; filters (``customer=``, ``status=``, ``types[]``) scan the window. Creation stamps are strictly
increasing within an account, so a cursor names one place exactly even when objects share a second. Deleted objects
stay as Stripe's deleted stub (``{"id", "object", "deleted": true}``) and are left out of lists.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from providers.sandbox_kit.clock import DAY_S, Clock
from providers.sandbox_kit.store import Predicate, Record, Store
from providers.sandbox_kit.webhooks import WebhookSender
from providers.stripe.sandbox.objects import KINDS, SEED_END_MS, AccountData, StripeSizes
from providers.stripe.sandbox.wire import API_VERSION, ParamError, integer, invalid, list_object, missing

EVENT_RETENTION_S = 30 * DAY_S  # https://docs.stripe.com/api/events: "going back up to 30 days"
_PREFIXES = {prefix: entity for entity, (prefix, _, _) in KINDS.items()}


class StripeAccount(Store):
    def __init__(
        self, data: AccountData, clock: Clock, webhooks: WebhookSender, *, name: str, email: str, country: str,
        live: bool = False, platform: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(clock, not_before_ms=SEED_END_MS, change_field="created")
        self.data, self.id, self.name, self.email, self.country = data, data.account_id, name, email, country
        self.currency, self.live, self.platform = data.currency, live, platform
        self.webhooks, self.clock = webhooks, clock
        self.secret_keys: list[str] = []
        for entity in KINDS:
            count = data.sizes.count(entity)
            self.add_table(
                entity, count, lambda i, e=entity: data.seeded_ms(e, i), data.ids[entity].encode,  # type: ignore[misc]
                lambda i, e=entity: data.render(e, i), decode=data.ids[entity].decode, stamped=False,  # type: ignore[misc]
            )  # fmt: skip

    @property
    def sizes(self) -> StripeSizes:
        return self.data.sizes

    def stamp(self) -> int:
        """Strictly increasing creation stamps (ms), so that a cursor names exactly one place in a list."""
        self._last_stamp = max(int(self.clock() * 1000), self._not_before_ms, self._last_stamp + 1)
        return self._last_stamp

    def now(self) -> int:
        return int(self.clock())

    # --- objects ----------------------------------------------------------------------------------------------

    def entity_of(self, object_id: str) -> str | None:
        head = object_id.partition("_")[0]
        if object_id.startswith("cs_test_"):
            head = "cs_test"
        return _PREFIXES.get(head)

    def lookup(self, entity: str, object_id: str) -> tuple[int, Record] | None:
        index = self.index_of(entity, object_id)
        if index is None:
            return None
        return index, self.record(entity, index)

    def get(self, entity: str, object_id: str, param: str = "id") -> tuple[int, Record]:
        """The live object (not deleted), or Stripe's ``resource_missing``."""
        found = self.lookup(entity, object_id)
        if found is None or found[1].get("deleted"):
            raise missing(KINDS[entity][1].replace("_", " ").replace(".", " "), object_id, param)
        return found

    def create_object(self, entity: str, build: Callable[[str, int], Record]) -> tuple[int, Record]:
        """A new object: ``build(id, created ms)`` makes it; stored at the end of its table."""
        table, ms = self.tables[entity], self.stamp()
        index = table.next_index
        record = build(table.id_of(index), ms)
        self.save(entity, index, record, ms)
        self.changed()
        return index, record

    def update_object(self, entity: str, index: int, edit: Callable[[Record], object]) -> tuple[Record, Record]:
        """(before, after) of an edit; the object keeps its place in its list."""
        table = self.tables[entity]
        before = table.record(index)
        after = copy.deepcopy(before)
        edit(after)
        self.save(entity, index, after, table.updated_ms(index))
        self.changed()
        return before, after

    def delete_object(self, entity: str, index: int) -> Record:
        """Stripe's deleted stub replaces the object; its last state is returned (for the event)."""
        table = self.tables[entity]
        last = table.record(index)
        stub = {"id": last["id"], "object": last["object"], "deleted": True}
        self.save(entity, index, stub, table.updated_ms(index))
        self.changed()
        return last

    # --- changes for tests (the kit's ``touch`` and ``create``): made the way the API makes them, events and all ---

    def touched(self, entity: str, index: int, record: Record) -> None:
        record["metadata"] = {**(record.get("metadata") or {}), "touched": str(self.version)}

    def touch(self, entity: str, record_ids: Sequence[str] | str | int) -> list[str]:
        indices = self.resolve(entity, record_ids)
        for index in indices:
            before, after = self.update_object(entity, index, lambda r, i=index: self.touched(entity, i, r))  # type: ignore[misc]
            self.changed_event(entity, before, after, (None, None))
        return [self.tables[entity].id_of(index) for index in indices]

    def made(self, entity: str, index: int, ms: int) -> Record:
        record = self.data.render(entity, index)
        if "created" in record:
            record["created"] = ms // 1000
        if entity == "products":
            record.update(default_price=None, updated=ms // 1000)
        return record

    def create(self, entity: str, n: int) -> list[str]:
        created = []
        for _ in range(n):
            index = self.tables[entity].next_index
            _, record = self.create_object(entity, lambda object_id, ms, i=index: self.made(entity, i, ms))  # type: ignore[misc]
            prefix = KINDS[entity][2]
            if prefix is not None:
                self.emit(f"{prefix}.created", record)
            created.append(str(record["id"]))
        return created

    # --- events -----------------------------------------------------------------------------------------------

    def emit(
        self, event_type: str, obj: Record, previous: Mapping[str, Any] | None = None,
        request: tuple[str | None, str | None] = (None, None),
    ) -> Record:  # fmt: skip
        """Record the event of a change and queue it for webhook subscribers (never blocks)."""
        data: dict[str, Any] = {"object": copy.deepcopy(obj)}
        if previous:
            data["previous_attributes"] = dict(previous)

        def build(event_id: str, ms: int) -> Record:
            event = {
                "id": event_id, "object": "event", "api_version": API_VERSION, "created": ms // 1000, "data": data,
                "livemode": self.live, "pending_webhooks": len(self.webhooks.subscriptions),
                "request": {"id": request[0], "idempotency_key": request[1]}, "type": event_type,
            }  # fmt: skip
            if self.platform is not None:
                event["account"] = self.id  # Connect: events of a connected account name it
            return event

        _, event = self.create_object("events", build)
        self.webhooks.publish(self.id, event)
        return event

    def changed_event(self, entity: str, before: Record, after: Record, request: tuple[str | None, str | None]) -> None:
        """``<object>.updated`` with the top-level fields that changed, as Stripe's ``previous_attributes``."""
        prefix = KINDS[entity][2]
        previous = {k: v for k, v in before.items() if after.get(k) != v}
        if prefix is not None and previous:
            self.emit(f"{prefix}.updated", after, previous, request)

    def event_visible(self, event: Record) -> bool:
        return int(event["created"]) >= self.now() - EVENT_RETENTION_S

    # --- lists ------------------------------------------------------------------------------------------------

    def listing(
        self, entity: str, params: Mapping[str, Any], url: str, *, where: Mapping[str, Callable[[Any, str], bool]] = (
        {}), render: Callable[[Record], Record] = lambda r: r, floor_s: int | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Stripe's list object of ``entity``: newest first, ``limit`` (1-100, default 10), ``starting_after`` /
        ``ending_before`` (ids of this list), ``created`` bounds; ``where`` maps a parameter to its test
        (record, value sent). ``floor_s`` hides what is older (events)."""
        limit = integer(params, "limit", low=1, high=100) or 10
        lo, hi = _created_bounds(params.get("created"))
        if floor_s is not None:
            lo = max(lo or 0, floor_s * 1000)
        after, before = params.get("starting_after"), params.get("ending_before")
        if after is not None and before is not None:
            raise invalid("You may only specify one of these parameters: ending_before, starting_after.")
        for name, cursor in (("starting_after", after), ("ending_before", before)):
            if cursor is None:
                continue
            index = self.index_of(entity, str(cursor))
            if index is None:
                raise missing(KINDS[entity][1], str(cursor), name)
            ms = self.tables[entity].updated_ms(index)
            if name == "starting_after":
                hi = ms - 1 if hi is None else min(hi, ms - 1)
            else:
                lo = ms + 1 if lo is None else max(lo, ms + 1)
        tests = [(name, where[name], str(params[name])) for name in where if params.get(name) not in (None, "")]
        predicate: Predicate | None = None
        if tests:
            predicate = lambda r: not r.get("deleted") and all(t(r, v) for _, t, v in tests)  # noqa: E731
        key = tuple((name, value) for name, _, value in tests)
        total, fetch = self.select(entity, lo=lo, hi=hi, predicate=predicate, predicate_key=key)
        # Ascending positions; a list reads them from the newest (or, with ending_before, from the cursor up).
        rows = _take(total, fetch, limit + 1, newest_first=before is None)
        has_more = len(rows) > limit
        rows = rows[:limit]
        if before is not None:
            rows.reverse()
        return list_object(url, [render(r) for r in rows], has_more)

    # --- expand -----------------------------------------------------------------------------------------------

    def expand(self, record: Record, paths: list[str], render: Callable[[str, Record], Record]) -> Record:
        """``expand[]`` paths (``customer``, ``latest_invoice.payment_intent``, ``data.customer`` in lists)."""
        expanded = copy.deepcopy(record)
        for path in paths:
            self._expand(expanded, path.split("."), path, render, 0)
        return expanded

    def _expand(
        self, node: Any, parts: list[str], path: str, render: Callable[[str, Record], Record], depth: int
    ) -> None:
        if depth >= 4:
            raise invalid(f"You cannot expand more than 4 levels of a property. Property: {path}", "expand")
        if isinstance(node, dict) and node.get("object") == "list" and parts[0] == "data":
            for item in node.get("data", []):
                self._expand(item, parts[1:], path, render, depth)
            return
        if not isinstance(node, dict) or not parts or parts[0] not in node:
            raise invalid(f"This property cannot be expanded ({parts[0] if parts else path}).", "expand")
        value = node[parts[0]]
        if isinstance(value, str):
            entity = self.entity_of(value)
            found = self.lookup(entity, value) if entity is not None else None
            if found is None:
                raise invalid(f"This property cannot be expanded ({parts[0]}).", "expand")
            node[parts[0]] = value = render(entity or "", found[1])
        if len(parts) > 1 and value is not None:
            self._expand(value, parts[1:], path, render, depth + 1)


def _created_bounds(value: Any) -> tuple[int | None, int | None]:
    """``created`` as an exact second or ``created[gt|gte|lt|lte]``, as ms bounds (inclusive)."""
    if value is None or value == "":
        return None, None
    if isinstance(value, str):
        second = integer({"created": value}, "created")
        assert second is not None
        return second * 1000, second * 1000 + 999
    if not isinstance(value, dict):
        raise ParamError("Invalid created", "created")
    lo = hi = None
    for op, raw in value.items():
        second = integer({f"created[{op}]": raw}, f"created[{op}]")
        assert second is not None
        if op == "gt":
            lo = (second + 1) * 1000
        elif op == "gte":
            lo = second * 1000
        elif op == "lt":
            hi = second * 1000 - 1
        elif op == "lte":
            hi = second * 1000 + 999
        else:
            raise ParamError(f"Received unknown parameter: created[{op}]", f"created[{op}]")
    return lo, hi


def _take(total: int, fetch: Callable[[int, int], list[Record]], wanted: int, *, newest_first: bool) -> list[Record]:
    """Up to ``wanted`` live records, from the newest down or from the oldest of the window up; deleted stubs
    are skipped (they are rare: read in chunks until enough are found)."""
    found: list[Record] = []
    position = total
    start = 0
    while len(found) < wanted:
        if newest_first:
            if position <= 0:
                break
            low = max(position - (wanted - len(found)), 0)
            chunk = list(reversed(fetch(low, position)))
            position = low
        else:
            if start >= total:
                break
            high = min(start + wanted - len(found), total)
            chunk = fetch(start, high)
            start = high
        found += [r for r in chunk if not r.get("deleted")]
    return found
