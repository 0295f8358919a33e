"""Streams declared as data, and the generic builders over them: the dlt source of a provider's pulls, and the
records a webhook named fetched by id.

A ``Stream`` is what a listing endpoint is: its path, where the records sit in the answer, primary key, incremental
cursor and how the cursor is sent, paginator, parameters, column hints (and child tables with their own), how
records are fetched by id, and the provider's doc URL. ``build_source`` turns streams into one merge resource each,
incremental cursors declared in the resource (``dlt.sources.incremental``); a token cursor (Graph's delta link,
Google's sync token) and a change feed's position (Stripe's events) are kept in the resource's dlt state instead.
A stream with a ``deleted`` column deletes the rows whose value is true (dlt's hard delete).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypedDict

import dlt

from providers.errors import ProviderError
from providers.kit.paginators import Paginator
from providers.kit.read_ahead import read_ahead

if TYPE_CHECKING:
    from dlt.sources import DltResource, DltSource

    from providers.kit.client import ApiClient

Records = list[dict[str, Any]]
RESUME_KEY = "resume_from"  # where a token cursor sits in the resource state


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


@dataclass(frozen=True)
class TokenCursor:
    """A cursor the provider hands out: the paginator's ``token`` after a full listing (Graph's delta link, Google's
    sync token, Gmail's history id), kept in dlt's resource state. The next run resumes from it: as the URL to call
    when ``param`` is None, else as that parameter on ``path`` (default: the stream's) with ``params`` (default:
    the stream's). An answer in ``restart_on`` (Graph's 410) says the token expired: everything is listed again."""

    param: str | None = None
    path: str | None = None
    params: Mapping[str, str] | None = None
    restart_on: tuple[int, ...] = ()


class ChangeFeed(Protocol):
    """Incremental through a feed of changes the provider keeps (Stripe's ``/v1/events``) instead of a filter on
    the listing. ``position`` is where the feed stands (taken before a full listing, so that nothing changed while
    listing is missed); ``changes`` reads the changed records after a kept position (deleted ones carrying the
    stream's ``deleted`` column), or None when it cannot (the provider no longer keeps changes that old): then
    everything is listed again. Positions are JSON data kept in the resource's dlt state."""

    def position(self, client: ApiClient, stream: Stream) -> Any: ...

    def changes(self, client: ApiClient, stream: Stream, position: Any) -> Changes | None: ...


@dataclass
class Changes:
    """A feed's changed records, a page at a time, and the position after them (once every page was read)."""

    pages: Iterator[Records]
    position: Callable[[], Any]


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
    cursor: Cursor | None = None
    token: TokenCursor | None = None
    feed: ChangeFeed | None = None
    deleted: str | None = None  # a boolean column: rows where it is true are deleted from the warehouse
    json_columns: tuple[str, ...] = ()
    decimal_columns: tuple[str, ...] = ()
    children: tuple[Child, ...] = ()
    by_id: ById | None = None

    def __post_init__(self) -> None:
        if sum(kind is not None for kind in (self.cursor, self.token, self.feed)) > 1:
            raise ValueError(f"stream {self.name!r}: one of a field cursor, a token cursor or a change feed")
        if self.token is not None and self.paginator is None:
            raise ValueError(f"stream {self.name!r}: a token cursor comes from a paginator")

    @property
    def incremental(self) -> bool:
        return self.cursor is not None or self.token is not None or self.feed is not None


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
    client: ApiClient,
    stream: Stream,
    *,
    since: Any = None,
    resume: str | None = None,
    paginator: Paginator | None = None,
) -> Iterator[Records]:
    """A listing of ``stream``: records changed after ``since`` (its cursor's last value), or from a token the
    last listing left (``resume``)."""
    params: dict[str, Any] = dict(stream.params)
    headers: dict[str, str] = {}
    path = stream.path
    if since is not None and stream.cursor is not None:
        sent = stream.cursor.format(since)
        if stream.cursor.header:
            headers[stream.cursor.header] = sent
        else:
            params[str(stream.cursor.param)] = sent
    if resume is not None and stream.token is not None:
        if stream.token.param is None:
            path, params = resume, {}  # the token is the URL to call
        else:
            path = stream.token.path or path
            params = {**(stream.token.params if stream.token.params is not None else params)}
            params[stream.token.param] = resume
    if paginator is None:
        paginator = stream.paginator() if stream.paginator is not None else Paginator()
    return client.paginate(
        path, stream.records, paginator=paginator, params=params, headers=headers, stream=stream.name
    )


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

    def pages(**options: Any) -> Iterator[Records]:
        assert client is not None, "a source built without a client only describes its resources"
        listing = stream_pages(client, stream, **options)
        return read_ahead(listing) if stream.paginator is not None else listing

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

        def fed() -> Iterator[Records]:
            """The feed's changes since the kept position; everything when there is none (or it is too old)."""
            assert client is not None, "a source built without a client only describes its resources"
            state = dlt.current.resource_state()
            kept = state.get(RESUME_KEY)
            changes = feed.changes(client, stream, kept) if kept is not None else None
            if changes is None:
                start = feed.position(client, stream)  # before listing: what changes meanwhile comes next time
                yield from pages()
                state[RESUME_KEY] = start
                return
            yield from changes.pages
            state[RESUME_KEY] = changes.position()  # only a feed read to its end moves the position

        changed_records: DltResource = dlt.resource(fed, **hints)()
        return changed_records

    if stream.token is not None:
        token = stream.token

        def resumed() -> Iterator[Records]:
            """Changes since the token the last run kept; everything when there is none (or it expired)."""
            state = dlt.current.resource_state()
            start = state.get(RESUME_KEY)

            def listing(resume: str | None) -> Iterator[Records]:
                assert stream.paginator is not None
                paginator = stream.paginator()
                yield from pages(resume=resume, paginator=paginator)
                if paginator.token:  # only a listing read to its end moves the token
                    state[RESUME_KEY] = paginator.token

            try:
                yield from listing(start)
            except ProviderError as exc:
                if start is None or exc.status not in token.restart_on:
                    raise
                yield from listing(None)

        tokened: DltResource = dlt.resource(resumed, **hints)()
        return tokened

    def every() -> Iterator[Records]:
        """Every record, every run (no cursor to filter by; the merge keeps one row each)."""
        yield from pages()

    whole: DltResource = dlt.resource(every, **hints)()
    return whole
