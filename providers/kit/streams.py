"""Streams declared as data, and the generic builders over them: the dlt source of a provider's pulls, and the
records a webhook named fetched by id.

A ``Stream`` is what a listing endpoint is: its path, where the records sit in the answer, primary key, how it is
incremental, paginator, parameters, column hints (and child tables with their own), how records are fetched by id,
and the provider's doc URL. ``build_source`` turns streams into one merge resource each.

A stream is incremental in one of two ways, layered on the same listing:
- a ``Cursor`` filters the listing by a record field (Xero's ``If-Modified-Since``): dlt's incremental, declared in
  the resource (``dlt.sources.incremental``);
- a ``ChangeFeed`` reads changes the provider keeps, from a position kept in the resource's dlt state: the token a
  listing hands out (``TokenCursor``: Graph's delta link, Google's sync token, QuickBooks' change data capture) or
  the provider's own feed of events (Stripe's ``/v1/events``). A position the provider no longer has changes from
  (``ChangesExpired``: too old, or refused) means the stream is listed in full again, and the client's
  ``full_listings`` says why (the sync log's ``full_sync_reason``).
A stream with a ``deleted`` column deletes the rows whose value is true (dlt's hard delete).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict

import dlt

from providers.errors import ProviderError
from providers.kit.paginators import Paginator
from providers.kit.read_ahead import read_ahead

if TYPE_CHECKING:
    from dlt.sources import DltResource, DltSource

    from providers.kit.client import ApiClient

Records = list[dict[str, Any]]
RESUME_KEY = "resume_from"  # where a change feed's position sits in the resource state
RESUMED_AT_KEY = "resume_from_at"  # when it was kept (seconds since the epoch)


@dataclass(frozen=True)
class Cursor:
    """An incremental cursor: the record field dlt tracks, and how its last value is sent (a header such as
    ``If-Modified-Since``, or a query parameter), formatted as the provider reads it."""

    field: str
    header: str | None = None
    param: str | None = None
    format: Callable[[Any], str] = str

    def __post_init__(self) -> None:
        if (self.header is None) == (self.param is None):
            raise ValueError(f"cursor {self.field!r}: send it as a header or as a parameter")


class ChangesExpired(Exception):
    """A kept position the provider no longer has changes from (older than it keeps them, or refused): ``why``."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


@dataclass
class Changes:
    """Records a page at a time, and the position to keep after them (called once every page was read; None keeps
    the position there was)."""

    pages: Iterator[Records]
    position: Callable[[], Any]


class ChangeFeed(ABC):
    """How a stream is incremental when the provider keeps its changes: the kit keeps a position between runs (JSON
    data in the resource's dlt state, with when it was kept) and asks the feed for what changed after it.

    ``listing`` is every record (the stream's own listing, ``read_listing``) and the position after it: a first run,
    a full sync, or a position lost. ``changes`` is what changed after a kept position (records the provider
    deleted carry the stream's ``deleted`` column, or land as its tombstones), and the position after that; it
    raises ``ChangesExpired`` (when asked, or while its pages are read) when the provider no longer has changes
    from there, and the stream is listed in full again."""

    def check(self, stream: Stream) -> None:  # noqa: B027 -- most feeds follow any stream
        """Refuse (``ValueError``) a stream this feed cannot follow."""

    @abstractmethod
    def listing(self, client: ApiClient, stream: Stream) -> Changes: ...

    @abstractmethod
    def changes(self, client: ApiClient, stream: Stream, position: Any, kept_at: float | None) -> Changes: ...


@dataclass(frozen=True)
class TokenCursor(ChangeFeed):
    """The change feed of a provider that hands out a token: the paginator's ``token`` after a listing (Graph's
    delta link, Google's sync token, Gmail's history id, QuickBooks' answer time) is the position. The next run
    resumes from it: as the URL to call when ``param`` is None, else as that parameter on ``path`` (default: the
    stream's) with ``params`` (default: the stream's), with the records ``records`` selects and ``paginator`` asks
    for (defaults: the stream's; QuickBooks lists its changes at another endpoint, in another envelope). An answer
    in ``restart_on`` (Graph's 410) says the token expired, as does a token older than ``max_age_s`` (QuickBooks'
    changes go back 30 days; its age is reckoned from ``issued_at(token)`` when the token says when it was issued,
    else from when it was kept). Only a listing read to its end moves the token."""

    param: str | None = None
    path: str | None = None
    params: Mapping[str, str] | None = None
    restart_on: tuple[int, ...] = ()
    records: str | Callable[[Any], Records] | None = None
    paginator: Callable[[], Paginator] | None = None
    max_age_s: float | None = None
    issued_at: Callable[[str], datetime] | None = None

    def check(self, stream: Stream) -> None:
        if stream.paginator is None:
            raise ValueError(f"stream {stream.name!r}: a token cursor comes from a paginator")

    def listing(self, client: ApiClient, stream: Stream) -> Changes:
        assert stream.paginator is not None
        paginator = stream.paginator()
        return Changes(read_listing(client, stream, paginator=paginator), lambda: paginator.token or None)

    def changes(self, client: ApiClient, stream: Stream, position: Any, kept_at: float | None) -> Changes:
        age = self._age(str(position), kept_at)
        if age is not None and self.max_age_s is not None and age > self.max_age_s:
            window = f"{self.max_age_s / 86_400:.0f}-day"
            raise ChangesExpired(f"its change token is {age / 86_400:.1f} days old, past the {window} window")
        if self.param is None:
            path, params = str(position), {}  # the token is the URL to call
        else:
            path = self.path or stream.path
            params = {**(self.params if self.params is not None else stream.params), self.param: position}
        make = self.paginator or stream.paginator
        assert make is not None
        paginator = make()
        records = self.records if self.records is not None else stream.records
        pages = client.paginate(path, records, paginator=paginator, params=params, stream=stream.name)
        return Changes(self._refused(read_ahead(pages)), lambda: paginator.token or None)

    def _refused(self, pages: Iterator[Records]) -> Iterator[Records]:
        try:
            yield from pages
        except ProviderError as exc:
            if exc.status not in self.restart_on:
                raise
            raise ChangesExpired(f"the provider refused its change token (HTTP {exc.status})") from exc

    def _age(self, token: str, kept_at: float | None) -> float | None:
        """Seconds since the token was issued (the token's own word where it has one), or None when unknown."""
        if self.issued_at is not None:
            try:
                return time.time() - self.issued_at(token).timestamp()
            except ValueError:
                return None
        return time.time() - float(kept_at) if isinstance(kept_at, int | float) else None


@dataclass(frozen=True)
class Child:
    """A nested list that lands in its own table (an invoice's ``LineItems`` -> ``invoices__line_items``)."""

    field: str
    json_columns: tuple[str, ...] = ()
    decimal_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class ById:
    """How a stream's records are fetched by id (webhooks name ids only): ``filter`` turns up to ``per_call`` ids
    into the parameters that ask for them, beside ``params``; ``valid`` normalises an id, None for one that cannot
    exist (so it is never sent). ``path`` and ``records`` differ from the stream's where the provider reads by id
    elsewhere."""

    filter: Callable[[Sequence[str]], Mapping[str, str]]
    params: Mapping[str, str] = field(default_factory=dict)
    per_call: int = 50
    valid: Callable[[str], str | None] = lambda value: value.strip() or None
    path: str | None = None
    records: str | Callable[[Any], Records] | None = None


@dataclass(frozen=True)
class Stream:
    name: str  # the dlt resource, and the catalog entity
    path: str  # under the client's base URL
    primary_key: str | tuple[str, ...]
    records: str | Callable[[Any], Records] = ""  # dotted key of the records list ("" for the body), or a selector
    doc_url: str = ""
    paginator: Callable[[], Paginator] | None = None  # one paginator per listing; None: one call answers all
    params: Mapping[str, str] = field(default_factory=dict)
    cursor: Cursor | None = None  # incremental by a record field the listing filters on
    feed: ChangeFeed | None = None  # incremental by changes the provider keeps (a token, a feed of events)
    deleted: str | None = None  # a boolean column: rows where it is true are deleted from the warehouse
    json_columns: tuple[str, ...] = ()
    decimal_columns: tuple[str, ...] = ()
    children: tuple[Child, ...] = ()
    by_id: ById | None = None

    def __post_init__(self) -> None:
        if self.cursor is not None and self.feed is not None:
            raise ValueError(f"stream {self.name!r}: a field cursor or a change feed, not both")
        if self.feed is not None:
            self.feed.check(self)

    @property
    def incremental(self) -> bool:
        return self.cursor is not None or self.feed is not None


FIELD_TYPES = frozenset({"string", "number", "boolean", "date", "datetime", "object", "array"})


def fields_of(*groups: str) -> dict[str, str]:
    """A record's published fields (``PullSpec.record_fields``) from groups of names by type, in order:
    ``"string: Name Status"``, ``"number of Contact: Balance"`` (-> ``Contact.Balance``), ``"number of
    LineItems[]: Quantity"`` (a field of each item of a list, ``LineItems[].Quantity``)."""
    fields: dict[str, str] = {}
    for group in groups:
        head, _, names = group.partition(":")
        kind, _, parent = head.strip().partition(" of ")
        if kind not in FIELD_TYPES:
            raise ValueError(f"unknown field type {kind!r} in {group[:40]!r}")
        fields.update(dict.fromkeys((f"{parent}.{name}" if parent else name for name in names.split()), kind))
    return fields


class ColumnHints(TypedDict):
    json_columns: tuple[str, ...]
    decimal_columns: tuple[str, ...]


def typed_columns(fields: Mapping[str, str], *, child: str | None = None, tables: Collection[str] = ()) -> ColumnHints:
    """``json_columns`` and ``decimal_columns`` from a record's published field types (``PullSpec.record_fields``):
    lists become json columns, except those that are child ``tables``; numbers decimal (money and quantities: a
    first value of 1 would type the column bigint and a later 1.5 land in a variant column). Dotted fields are
    nested objects (dlt's ``__``). With ``child``, the hints of that list's items (``LineItems[].Quantity``), where
    nested objects are json too: they sit deeper than the source's table nesting."""
    prefix = f"{child}[]." if child else ""
    json_columns, decimal_columns = [], []
    for path, kind in fields.items():
        column = path.removeprefix(prefix)
        if not path.startswith(prefix) or "[]." in column or path in tables:
            continue
        if kind == "array" or (child and kind == "object"):
            json_columns.append(column.replace(".", "__"))
        elif kind == "number":
            decimal_columns.append(column.replace(".", "__"))
    return {"json_columns": tuple(json_columns), "decimal_columns": tuple(decimal_columns)}


def stream_pages(
    client: ApiClient, stream: Stream, *, since: Any = None, paginator: Paginator | None = None
) -> Iterator[Records]:
    """A listing of ``stream``: every record, or those changed after ``since`` (its cursor's last value)."""
    params: dict[str, Any] = dict(stream.params)
    headers: dict[str, str] = {}
    if since is not None and stream.cursor is not None:
        sent = stream.cursor.format(since)
        if stream.cursor.header:
            headers[stream.cursor.header] = sent
        else:
            params[str(stream.cursor.param)] = sent
    if paginator is None:
        paginator = stream.paginator() if stream.paginator is not None else Paginator()
    return client.paginate(
        stream.path, stream.records, paginator=paginator, params=params, headers=headers, stream=stream.name
    )


def read_listing(
    client: ApiClient, stream: Stream, *, since: Any = None, paginator: Paginator | None = None
) -> Iterator[Records]:
    """``stream_pages`` as a pull reads them: the next page asked for while this one is loaded."""
    listing = stream_pages(client, stream, since=since, paginator=paginator)
    return read_ahead(listing) if stream.paginator is not None else listing


def build_source(
    name: str,
    streams: Sequence[Stream],
    client: ApiClient | None,
    entities: Sequence[str] | None = None,
    *,
    initial_value: Any = None,
    title: str | None = None,
) -> DltSource:
    """The dlt source ``name`` with one merge resource per stream in ``entities`` (default: all).
    ``initial_value`` bounds the first run of each field cursor. With ``client`` None the source only describes
    its resources (the Dagster definitions are built so): nothing runs, nothing is called."""
    by_name = {stream.name: stream for stream in streams}
    chosen = list(entities) if entities is not None else list(by_name)
    unknown = sorted(set(chosen) - set(by_name))
    if unknown:
        raise ValueError(f"unknown {title or name} entities: {unknown}")
    resources = [_resource(by_name[entity], client, initial_value) for entity in chosen]
    return _declared.clone(name=name)(resources)


def fetch_by_ids(streams: Sequence[Stream], client: ApiClient, entity: str, ids: Sequence[str]) -> Records:
    """The records of ``entity`` named by ``ids``, decoded as the pulls decode them (so the mappers apply):
    ids that cannot exist are dropped, the rest asked for ``per_call`` at a time."""
    stream = next((s for s in streams if s.name == entity), None)
    if stream is None or stream.by_id is None:
        raise ValueError(f"records of {entity!r} cannot be fetched by id")
    by_id = stream.by_id
    wanted = list(dict.fromkeys(valid for value in ids if (valid := by_id.valid(value)) is not None))
    rows: Records = []
    for start in range(0, len(wanted), by_id.per_call):
        chunk = wanted[start : start + by_id.per_call]
        path = by_id.path.format(id=chunk[0], ids=",".join(chunk)) if by_id.path else stream.path
        paginator = stream.paginator() if stream.paginator is not None else Paginator()
        records = by_id.records if by_id.records is not None else stream.records
        params = {**by_id.params, **by_id.filter(chunk)}
        for page in client.paginate(path, records, paginator=paginator, params=params, stream=stream.name):
            rows.extend(page)
    return rows


@dlt.source(max_table_nesting=1)
def _declared(resources: list[DltResource]) -> list[DltResource]:
    return resources


def _columns(
    json_columns: Collection[str], decimal_columns: Collection[str], deleted: str | None = None
) -> dict[str, dict[str, Any]]:
    # Each hint names its column too: dlt's nested hints read the name from the hint, not the key.
    return {
        **{name: {"name": name, "data_type": "json"} for name in json_columns},
        **{name: {"name": name, "data_type": "decimal"} for name in decimal_columns},
        **({deleted: {"name": deleted, "data_type": "bool", "hard_delete": True}} if deleted else {}),
    }


def _resource(stream: Stream, client: ApiClient | None, initial_value: Any) -> DltResource:
    hints: dict[str, Any] = {
        "name": stream.name,
        "primary_key": stream.primary_key,
        "write_disposition": "merge",
        "columns": _columns(stream.json_columns, stream.decimal_columns, stream.deleted),
    }
    if stream.children:
        hints["nested_hints"] = {
            child.field: {"columns": _columns(child.json_columns, child.decimal_columns)} for child in stream.children
        }

    def pages(since: Any = None) -> Iterator[Records]:
        assert client is not None, "a source built without a client only describes its resources"
        return read_listing(client, stream, since=since)

    if stream.cursor is not None:
        cursor = stream.cursor.field

        def changed(
            # "include": a record without the cursor field is loaded rather than failing the run.
            updated: dlt.sources.incremental[Any] = dlt.sources.incremental(  # noqa: B008 -- dlt's idiom
                cursor, initial_value=initial_value, on_cursor_value_missing="include"
            ),
        ) -> Iterator[Records]:
            """Records changed after the cursor: the provider filters, dlt drops what it already has."""
            yield from pages(since=updated.last_value)

        incremental: DltResource = dlt.resource(changed, **hints)()
        return incremental

    if stream.feed is not None:
        feed = stream.feed

        def followed() -> Iterator[Records]:
            """The changes after the position the last run kept; everything when there is none, or when the
            provider no longer has changes from there."""
            assert client is not None, "a source built without a client only describes its resources"
            state = dlt.current.resource_state()
            kept = state.get(RESUME_KEY)
            if kept is not None:
                try:
                    changes = feed.changes(client, stream, kept, _seconds(state.get(RESUMED_AT_KEY)))
                    yield from changes.pages
                except ChangesExpired as expired:
                    _listed_in_full(client, stream, expired.why)
                else:
                    _keep(state, changes.position())
                    return
            listing = feed.listing(client, stream)
            yield from listing.pages
            _keep(state, listing.position())

        followed_changes: DltResource = dlt.resource(followed, **hints)()
        return followed_changes

    def every() -> Iterator[Records]:
        """Every record, every run (no cursor to filter by; the merge keeps one row each)."""
        yield from pages()

    whole: DltResource = dlt.resource(every, **hints)()
    return whole


def _keep(state: Any, position: Any) -> None:
    """Keep a feed's position for the next run (a position of None leaves the one there was)."""
    if position is not None:
        state[RESUME_KEY] = position
        state[RESUMED_AT_KEY] = time.time()


def _seconds(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _listed_in_full(client: ApiClient | None, stream: Stream, why: str) -> None:
    if client is not None:
        client.full_listings[stream.name] = f"{stream.name} listed in full: {why}"
