"""Asking the provider what changed before starting dlt: most scheduled syncs find nothing, and dlt's extract
alone costs ~70 ms of CPU for a tenant with nothing new (its configuration is resolved afresh for every resource
and step), normalize and load as much again.

The probe makes exactly the listing calls dlt's resources would make, with the cursors of the tenant's own dlt
state, and decides whether dlt would load anything:
- a cursor stream's row is new when its cursor is past the state's last value (or it has none); a row at the last
  value (providers answer "modified since" inclusively, to the second) is new unless its canonical record is
  stored with the same content (dlt keeps it out by its key either way); rows before it dlt drops too;
- a stream without a cursor (lists read whole every time, e.g. Xero's tax rates) is new when its rows differ from
  those of the last load (a digest kept beside the pipeline, ``warehouse.listing_digests``).
When nothing is new, the sync is done: no dlt, no canonical apply. When something is, the listings already read
are handed to dlt (``Replay``) so no call is made twice. The probe declines (None: run dlt as before) whenever it
cannot decide exactly: a full sync, no local dlt state (first sync, or a machine that never pulled this tenant),
packages dlt has yet to load, or a stream followed by a change feed (a provider token, Stripe's events).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from providers.kit.streams import Records, Stream, stream_pages
from vrtx_pipelines.db.models import CanonicalRecord
from vrtx_pipelines.records.canonical import content_hash
from vrtx_pipelines.records.store import canonical_json


@dataclass
class Probe:
    new: dict[str, int]  # entity -> rows dlt would load (only entities with any)
    pages: dict[str, list[Records]]  # entity -> every page its listing answered, for dlt to replay
    rows: dict[str, int]  # entity -> rows the provider answered
    cursors: dict[str, str] = field(default_factory=dict)  # entity -> the cursor the listing was asked from

    @property
    def unchanged(self) -> bool:
        return not self.new


def last_values(state: Mapping[str, Any], source_name: str) -> dict[str, Any]:
    """Each resource's incremental ``last_value`` in a dlt pipeline state (the ``state.json`` dict)."""
    resources = state.get("sources", {}).get(source_name, {}).get("resources", {})
    values: dict[str, Any] = {}
    for name, resource in resources.items():
        for spec in (resource.get("incremental") or {}).values():
            if isinstance(spec, Mapping) and spec.get("last_value") is not None:
                values[name] = spec["last_value"]
    return values


def row_line(row: Mapping[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, default=str)


def listing_digest(lines: Iterable[str]) -> str:
    """The digest of a whole listing's rows (``row_line`` each): the same rows in any order give the same one."""
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()


def _instant(value: Any) -> Any:
    """Cursor values as comparable instants: dlt keeps typed values in its state (a datetime is ISO text behind a
    private-use character), rows carry datetimes."""
    if isinstance(value, str):
        from dlt.common.json import custom_pua_decode  # dlt's own decoding of its state's typed values

        value = custom_pua_decode(value)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def probe(
    client: Any,
    streams: Sequence[Stream],
    selected: Sequence[str],
    state: Mapping[str, Any],
    source_name: str,
    digests: Mapping[str, str],
    known: Callable[[str, list[dict[str, Any]]], set[int]],
) -> Probe | None:
    """What dlt would load for ``selected`` from the tenant's ``state``; None when the probe cannot tell.

    ``known(entity, rows)`` answers which of ``rows`` (by position) are stored unchanged (``stored_unchanged``).
    """
    by_name = {stream.name: stream for stream in streams}
    chosen = [by_name[name] for name in selected]
    if any(stream.feed is not None for stream in chosen):
        return None  # a change feed's position moves as it is read: only the resource itself can read it
    cursors = last_values(state, source_name)
    if any(stream.cursor is not None and stream.name not in cursors for stream in chosen):
        return None  # a resource dlt never loaded: its first listing is a full one
    result = Probe(new={}, pages={}, rows={})
    for stream in chosen:
        since = _instant(cursors[stream.name]) if stream.cursor is not None else None
        if stream.cursor is not None:
            result.cursors[stream.name] = str(cursors[stream.name])
        pages = list(stream_pages(client, stream, since=since))
        result.pages[stream.name] = pages
        rows = [row for page in pages for row in page]
        result.rows[stream.name] = len(rows)
        if stream.cursor is None:
            if rows and listing_digest(row_line(row) for row in rows) != digests.get(stream.name):
                result.new[stream.name] = len(rows)
            continue
        name = stream.cursor.field
        boundary: list[dict[str, Any]] = []
        fresh = 0
        for row in rows:
            value = _instant(row.get(name))
            if value is None:
                fresh += 1  # loaded by dlt without a cursor value ("include")
            elif _later(value, since):
                fresh += 1
            elif value == since:
                boundary.append(row)
        if boundary:
            fresh += len(boundary) - len(known(stream.name, boundary))
        if fresh:
            result.new[stream.name] = fresh
    return result


def _later(value: Any, since: Any) -> bool:
    try:
        return bool(value > since)
    except TypeError:
        return str(value) > str(since)


def stored_unchanged(
    session: Session, connection_id: int, mappers: Mapping[str, Callable[[Mapping[str, Any]], Any]]
) -> Callable[[str, list[dict[str, Any]]], set[int]]:
    """``known`` for ``probe``: the rows whose canonical form (through the tenant's mappings) is stored as is."""

    def known(entity: str, rows: list[dict[str, Any]]) -> set[int]:
        mapper = mappers.get(entity)
        if mapper is None:
            return set()
        hashes: dict[int, tuple[str, str]] = {}
        for index, row in enumerate(rows):
            try:
                data = canonical_json(mapper(row))
            except ValueError:
                continue
            if data.get("external_id"):
                hashes[index] = (str(data["external_id"]), content_hash(data))
        if not hashes:
            return set()
        rows_stored = session.execute(
            select(CanonicalRecord.external_id, CanonicalRecord.content_hash).where(
                CanonicalRecord.tenant_integration_id == connection_id,
                CanonicalRecord.entity_type == entity,
                CanonicalRecord.external_id.in_([external_id for external_id, _digest in hashes.values()]),
            )
        )
        stored = {external_id: digest for external_id, digest in rows_stored}
        return {index for index, (external_id, digest) in hashes.items() if stored.get(external_id) == digest}

    return known


class Replay:
    """The provider client, answering each listing the probe already read from its pages (once), and every
    other call as the client would."""

    def __init__(self, client: Any, pages: Mapping[str, list[Records]]) -> None:
        self._client = client
        self._pages = dict(pages)

    def paginate(self, path: str, records: Any, *, stream: str | None = None, **options: Any) -> Iterator[Records]:
        recorded = self._pages.pop(stream, None) if stream is not None else None
        if recorded is not None:
            return iter(recorded)
        listing: Iterator[Records] = self._client.paginate(path, records, stream=stream, **options)
        return listing

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)
