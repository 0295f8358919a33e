"""Canonical records: upserted from pulls, read by the CRM with a change cursor.

Every change to a connection's records takes the next ``change_seq`` of that connection, assigned while the
connection row is locked (one writer at a time), so a reader paging by ``change_seq > cursor`` never skips a
change that commits later with a smaller number.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.orm import Session

from vrtx_pipelines import cursors
from vrtx_pipelines.db.locks import lock_connection
from vrtx_pipelines.db.models import CanonicalRecord, EntityLink, Status, table_of, utcnow
from vrtx_pipelines.errors import ConnectionGone
from vrtx_pipelines.records.canonical import content_hash, record_line

BATCH = 2000


@dataclass
class ApplyReport:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0  # records a re-listing no longer had (``sweep_unlisted``)

    @property
    def changed(self) -> int:
        return self.inserted + self.updated + self.deleted


def canonical_json(model: BaseModel) -> dict[str, Any]:
    data: dict[str, Any] = model.model_dump(mode="json", exclude_none=True)
    return data


def lock_synced_connection(session: Session, connection_id: int) -> None:
    """``lock_connection`` for writers of synced data: a connection disconnected meanwhile (a purge that took the
    lock first) takes nothing back."""
    if lock_connection(session, connection_id) == Status.DISCONNECTED:
        raise ConnectionGone("the connection was disconnected while this sync ran: nothing of it was kept")


def _last_change_seq(session: Session, connection_id: int) -> int:
    """The connection's newest change number (0 before its first record); call it under the connection's lock."""
    found = session.scalar(
        select(func.coalesce(func.max(CanonicalRecord.change_seq), 0)).where(
            CanonicalRecord.tenant_integration_id == connection_id
        )
    )
    return int(found or 0)


def apply_records(
    session: Session, connection_id: int, entity_type: str, items: Iterable[Mapping[str, Any]]
) -> ApplyReport:
    """Upsert canonical records (``canonical_json`` of a model) by external id; a new change number only for
    a real change."""
    lock_synced_connection(session, connection_id)
    next_seq = _last_change_seq(session, connection_id)
    report = ApplyReport()
    for batch in _batches(items):
        by_id = {str(item["external_id"]): item for item in batch}
        # Only the columns needed to decide: loading whole rows (JSON data) would double the cost.
        rows = session.execute(
            select(CanonicalRecord.external_id, CanonicalRecord.content_hash, CanonicalRecord.remote_updated_at).where(
                CanonicalRecord.tenant_integration_id == connection_id,
                CanonicalRecord.entity_type == entity_type,
                CanonicalRecord.external_id.in_(list(by_id)),
            )
        )
        existing = {external_id: (digest, updated) for external_id, digest, updated in rows}
        now = utcnow()
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for external_id, data in by_id.items():
            digest = content_hash(data)
            known, known_updated = existing.get(external_id, (None, None))
            remote_updated = _parse_time(data.get("updated_at"))
            # An older copy (a long pull's page read before a webhook's fetch) never overwrites a newer one.
            stale = known_updated is not None and remote_updated is not None and remote_updated < known_updated
            if known == digest or stale:
                report.unchanged += 1
                continue
            next_seq += 1
            values = {
                "data": dict(data),
                "content_hash": digest,
                "change_seq": next_seq,
                "deleted": _is_deleted(data),
                "remote_updated_at": remote_updated,
                "updated_at": now,
            }
            if known is None:
                inserts.append(
                    {
                        **values,
                        "tenant_integration_id": connection_id,
                        "entity_type": entity_type,
                        "external_id": external_id,
                        "created_at": now,
                    }
                )
            else:
                updates.append({**values, "_external_id": external_id})
        # Executemany statements, not one ORM object per record: a 100,000-invoice pull writes them in seconds.
        if inserts:
            session.execute(insert(CanonicalRecord), inserts)
        if updates:
            table = table_of(CanonicalRecord)
            session.execute(
                update(table).where(
                    table.c.tenant_integration_id == connection_id,
                    table.c.entity_type == entity_type,
                    table.c.external_id == bindparam("_external_id"),
                ),
                updates,
            )
        report.inserted += len(inserts)
        report.updated += len(updates)
        _touch_links(session, connection_id, entity_type, by_id, now)
    return report


def spool_line(data: Mapping[str, Any]) -> str:
    """A record as a line of a pull's spool file, in PostgreSQL's COPY text format (tab-separated, backslash
    escapes): what the merge needs, computed once while extracting. Writing it is a join, where CSV quoting
    of the JSON column cost more than the hash (bench/pull.py)."""
    line = record_line(data)
    updated = data.get("updated_at")
    fields = (
        _copy_escape(str(data["external_id"])),
        hashlib.sha256(line.encode()).hexdigest(),
        "t" if _is_deleted(data) else "f",
        _copy_escape(updated) if isinstance(updated, str) else "",
        # record_line escapes every control character, so a backslash is all COPY needs escaped here.
        line.replace("\\", "\\\\"),
    )
    return "\t".join(fields) + "\n"


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_UNESCAPE = re.compile(r"\\(.)")
_COPY_UNESCAPES = {"t": "\t", "n": "\n", "r": "\r"}


def _copy_escape(value: str) -> str:
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_COPY_ESCAPES)
    return value


def _spooled_records(path: Path) -> Iterator[Any]:
    """The records of a spool file, decoded (the SQLite path; PostgreSQL reads the file with COPY)."""
    with path.open(encoding="utf-8", newline="\n") as handle:
        for line in handle:
            data = line.rstrip("\n").split("\t")[4]
            yield json.loads(_COPY_UNESCAPE.sub(lambda match: _COPY_UNESCAPES.get(match[1], match[1]), data))


def apply_spool(
    session: Session, connection_id: int, entity_type: str, path: Path, *, sweep_before: datetime | None = None
) -> ApplyReport:
    """``apply_records`` for a spool file of ``spool_line`` lines, in the order the pull met the records.

    On PostgreSQL the file is copied as it is into a temporary table and merged with set-based statements: a
    large pull's records are written at COPY speed, with no per-record work in Python.

    ``sweep_before``: the file is a complete listing of the entity (``sweep_unlisted``), begun at that time.
    """
    if session.get_bind().dialect.name != "postgresql":
        listed: set[str] = set()

        def noted(items: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
            for item in items:
                listed.add(str(item["external_id"]))
                yield item

        report = apply_records(session, connection_id, entity_type, noted(_spooled_records(path)))
        if sweep_before is not None:
            report.deleted = sweep_unlisted(session, connection_id, entity_type, listed, sweep_before)
        return report
    lock_synced_connection(session, connection_id)
    raw: Any = session.connection().connection.dbapi_connection  # psycopg2: COPY is not in the DB-API
    with raw.cursor() as cursor, path.open("rb") as handle:
        cursor.execute(_STAGE_DDL)
        cursor.copy_expert(
            "COPY vrtx_stage_records (external_id, content_hash, deleted, updated_at_raw, data) FROM STDIN", handle
        )
    params = {"cid": connection_id, "etype": entity_type, "now": utcnow()}
    inserted, updated_count, distinct = session.execute(text(_MERGE_STAGE), params).one()
    session.execute(text(_TOUCH_LINKS_FROM_STAGE), params)
    deleted = 0
    if sweep_before is not None:
        listed = set(session.scalars(text("SELECT DISTINCT external_id FROM vrtx_stage_records")))
        deleted = sweep_unlisted(session, connection_id, entity_type, listed, sweep_before)
    session.execute(text("DROP TABLE vrtx_stage_records"))
    return ApplyReport(
        inserted=inserted, updated=updated_count, unchanged=distinct - inserted - updated_count, deleted=deleted
    )


def sweep_unlisted(
    session: Session, connection_id: int, entity_type: str, listed: set[str], listing_began: datetime
) -> int:
    """Mark deleted the live records of the entity that a complete listing no longer had: a change feed that could
    not be followed (its window passed) never told of what was deleted meanwhile. A record written after the listing
    began (a webhook's, while it ran) is not judged by it. Returns how many were marked."""
    lock_synced_connection(session, connection_id)
    table = table_of(CanonicalRecord)
    live = session.execute(
        select(table.c.external_id, table.c.data).where(
            table.c.tenant_integration_id == connection_id,
            table.c.entity_type == entity_type,
            table.c.deleted.is_(False),
            table.c.updated_at < listing_began,
        )
    ).all()
    gone = [(external_id, data) for external_id, data in live if external_id not in listed]
    if not gone:
        return 0
    next_seq = _last_change_seq(session, connection_id)
    now = utcnow()
    changes = []
    for offset, (external_id, data) in enumerate(sorted(gone), start=1):
        tombstone = {**(data or {}), "deleted": True}
        changes.append(
            {
                "_external_id": external_id,
                "data": tombstone,
                "content_hash": content_hash(tombstone),
                "change_seq": next_seq + offset,
                "deleted": True,
                "updated_at": now,
            }
        )
    session.execute(
        update(table).where(
            table.c.tenant_integration_id == connection_id,
            table.c.entity_type == entity_type,
            table.c.external_id == bindparam("_external_id"),
        ),
        changes,
    )
    return len(changes)


def _is_deleted(data: Mapping[str, Any]) -> bool:
    return data.get("deleted") is True or bool(data.get("archived")) or data.get("status") in ("deleted", "voided")


_STAGE_DDL = """
CREATE TEMP TABLE vrtx_stage_records (
    ord bigserial, external_id text, content_hash text, deleted boolean, updated_at_raw text, data text
)
"""

# The last copy of each external id wins; only records whose content changed get the next change numbers, in
# the order the pull met them. Runs under the connection's row lock (lock_connection). Deciding and numbering
# sort only ids, hashes and positions; the JSON is joined in for the write (sorting whole rows spilled to disk).
_MERGE_STAGE = """
WITH latest AS (
    SELECT DISTINCT ON (external_id) ord, external_id, content_hash, updated_at_raw
    FROM vrtx_stage_records
    ORDER BY external_id, ord DESC
),
changed AS (
    SELECT l.ord, row_number() OVER (ORDER BY l.ord) AS n
    FROM latest l
    LEFT JOIN canonical_records c
      ON c.tenant_integration_id = :cid AND c.entity_type = :etype AND c.external_id = l.external_id
    WHERE c.content_hash IS DISTINCT FROM l.content_hash
      -- an older copy (a long pull's page read before a webhook's fetch) never overwrites a newer one
      AND (c.remote_updated_at IS NULL OR l.updated_at_raw = '' OR l.updated_at_raw::timestamptz >= c.remote_updated_at)
),
base AS (
    SELECT coalesce(max(change_seq), 0) AS seq FROM canonical_records WHERE tenant_integration_id = :cid
),
written AS (
    INSERT INTO canonical_records AS r (
        tenant_integration_id, entity_type, external_id, data, content_hash, change_seq, deleted,
        remote_updated_at, created_at, updated_at
    )
    SELECT :cid, :etype, s.external_id, s.data::jsonb, s.content_hash, base.seq + ch.n, s.deleted,
           nullif(s.updated_at_raw, '')::timestamptz, :now, :now
    FROM changed ch JOIN vrtx_stage_records s ON s.ord = ch.ord CROSS JOIN base
    ON CONFLICT (tenant_integration_id, entity_type, external_id) DO UPDATE SET
        data = excluded.data, content_hash = excluded.content_hash, change_seq = excluded.change_seq,
        deleted = excluded.deleted, remote_updated_at = excluded.remote_updated_at, updated_at = excluded.updated_at
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted), (SELECT count(*) FROM latest)
FROM written
"""

_TOUCH_LINKS_FROM_STAGE = """
UPDATE entity_links AS l
SET last_synced_at = :now, remote_hash = s.content_hash, remote_version = nullif(s.updated_at_raw, ''),
    updated_at = :now
FROM (
    SELECT DISTINCT ON (external_id) external_id, content_hash, updated_at_raw
    FROM vrtx_stage_records ORDER BY external_id, ord DESC
) AS s
WHERE l.tenant_integration_id = :cid AND l.entity_type = :etype AND l.external_id = s.external_id
"""


def _touch_links(
    session: Session, connection_id: int, entity_type: str, items: Mapping[str, Mapping[str, Any]], now: datetime
) -> None:
    """The seed's SyncableInterface: linked records learn when they were last synced and the remote version."""
    links = session.scalars(
        select(EntityLink).where(
            EntityLink.tenant_integration_id == connection_id,
            EntityLink.entity_type == entity_type,
            EntityLink.external_id.in_(list(items)),
        )
    )
    for link in links:
        data = items[link.external_id]
        link.last_synced_at = now
        link.remote_hash = content_hash(data)
        link.remote_version = data.get("updated_at")


def _parse_time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _batches(items: Iterable[Mapping[str, Any]]) -> Iterator[list[Mapping[str, Any]]]:
    batch: list[Mapping[str, Any]] = []
    for item in items:
        batch.append(item)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


# --- reading -------------------------------------------------------------------------------------------


def encode_cursor(change_seq: int) -> str:
    return cursors.encode("v1", change_seq)


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    (value,) = cursors.decode(cursor, "v1", 1)
    return cursors.row_id(value)


@dataclass
class RecordsPage:
    records: list[CanonicalRecord]
    next_cursor: str
    has_more: bool


def changed_since(
    session: Session, connection_id: int, entity_type: str, cursor: str | None, limit: int
) -> RecordsPage:
    after = decode_cursor(cursor)
    rows = list(
        session.scalars(
            select(CanonicalRecord)
            .where(
                CanonicalRecord.tenant_integration_id == connection_id,
                CanonicalRecord.entity_type == entity_type,
                CanonicalRecord.change_seq > after,
            )
            .order_by(CanonicalRecord.change_seq)
            .limit(limit + 1)
        )
    )
    has_more = len(rows) > limit
    rows = rows[:limit]
    return RecordsPage(rows, encode_cursor(rows[-1].change_seq if rows else after), has_more)
