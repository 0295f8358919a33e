"""A provider's list endpoints served from the store: what each resource's listing accepts is declared (pages,
modified-since, records named by id, values of a field, a search term, records hidden unless asked for) and turned
into a store selection; the provider parses its own filter and order syntax and shapes its own envelope.

    INVOICES = Resource("invoices", "Invoices", SCOPES, paging=PageNumbers(), ids="IDs",
                        value_filters={"Statuses": "Status", "ContactIDs": "Contact.ContactID"},
                        search=("searchTerm", ("InvoiceNumber", "Reference")))
    total, fetch = store.select(INVOICES.entity, **selection(INVOICES, params, headers, where=..., order=...))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from providers.sandbox_kit.clock import parse_if_modified_since
from providers.sandbox_kit.filters import Filter, Predicate


@dataclass(frozen=True)
class PageNumbers:
    """Page-number paging (``page`` 1-based, ``pageSize``); a size alone asks for the first page."""

    page: str = "page"
    size: str = "pageSize"
    default: int = 100
    maximum: int = 1000

    def page_of(self, params: Mapping[str, str]) -> int | None:
        """The page asked for; None when no page (the whole listing at once)."""
        raw = params.get(self.page)
        if raw is None:
            return 1 if self.size in params else None
        try:
            return max(int(raw), 1)
        except ValueError:
            return 1

    def size_of(self, params: Mapping[str, str]) -> int:
        try:
            size = int(params.get(self.size, self.default))
        except ValueError:
            size = self.default
        return min(max(size, 1), self.maximum)

    def count(self, total: int, size: int) -> int:
        return math.ceil(total / size)


@dataclass(frozen=True)
class Resource:
    """One entity an API serves: its envelope key, the scopes that open it (any one), and its listing's options."""

    entity: str
    key: str
    scopes: frozenset[str] = frozenset()
    paging: PageNumbers | None = None
    modified_since: bool = True  # If-Modified-Since selects records changed strictly after it
    ids: str | None = None  # a parameter naming records by id (comma-separated)
    value_filters: Mapping[str, str] = field(default_factory=dict)  # parameter -> field path (a.b), values without case
    search: tuple[str, tuple[str, ...]] | None = None  # (parameter, fields it looks in, without case)
    hidden: tuple[str, str, str] | None = None  # (parameter showing them, field, value): e.g. archived records


def csv(params: Mapping[str, str], name: str) -> list[str] | None:
    """A comma-separated parameter's values (quotes and blanks dropped); None when absent."""
    raw = params.get(name)
    if raw is None:
        return None
    return [part.strip().strip('"').strip() for part in raw.split(",") if part.strip().strip('"').strip()]


def path_value(record: Mapping[str, Any], path: str) -> Any:
    value: Any = record
    for name in path.split("."):
        value = value.get(name) if isinstance(value, Mapping) else None
    return value


def selection(
    resource: Resource,
    params: Mapping[str, str],
    headers: Mapping[str, str],
    *,
    where: Filter,
    order: Sequence[tuple[str, bool]],
    where_key: Hashable = None,
    index_of: Callable[[str], int | None] = lambda record_id: None,
) -> dict[str, Any]:
    """``Store.select`` arguments for a listing: ``where`` (the provider's parsed filter) first, so its errors show
    whatever else excludes; then the declared options. ``where_key`` identifies ``where`` for the cache."""
    lo, hi = where.lo_ms, where.hi_ms
    since = parse_if_modified_since(headers.get("if-modified-since")) if resource.modified_since else None
    if since is not None:
        lo = since + 1 if lo is None else max(lo, since + 1)  # strictly after
    predicates: list[Predicate] = [] if where.predicate is None else [where.predicate]
    key: list[Any] = [where_key]
    if resource.hidden is not None:
        shown_by, hidden_field, hidden_value = resource.hidden
        if params.get(shown_by, "").lower() != "true":
            predicates.append(lambda r: r.get(hidden_field) != hidden_value)
            key.append(shown_by)
    for name, path in resource.value_filters.items():
        values = csv(params, name)
        if values is not None:
            wanted = frozenset(v.casefold() for v in values)
            predicates.append(lambda r, p=path, w=wanted: str(path_value(r, p) or "").casefold() in w)  # type: ignore[misc]
            key.append((name, tuple(sorted(wanted))))
    if resource.search is not None and params.get(resource.search[0]):
        needle, fields = params[resource.search[0]].casefold(), resource.search[1]
        predicates.append(lambda r: any(needle in str(r.get(f) or "").casefold() for f in fields))
        key.append((resource.search[0], needle))
    ids = csv(params, resource.ids) if resource.ids is not None else None
    indices = None if ids is None else [i for i in map(index_of, ids) if i is not None]
    chosen = tuple(predicates)
    predicate: Predicate | None = None
    if chosen:
        predicate = chosen[0] if len(chosen) == 1 else (lambda r: all(p(r) for p in chosen))
    return {"lo": lo, "hi": hi, "predicate": predicate, "predicate_key": tuple(key), "order": order, "indices": indices}
