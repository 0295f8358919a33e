"""Re-deriving canonical records from the warehouse: the provider's raw rows, read back from the tenant's dlt
dataset, through the provider mapper and the current pull mappings, without a call to the provider.

The warehouse keeps rows under dlt's snake_case names, nested objects flattened (``contact__contact_id``) and
invoice lines in a child table (``invoices__line_items``). The provider's published ``record_fields`` name every
field the mappings and mappers may read, so each column is turned back into its provider path; json columns are
decoded. Numbers and times come back in the warehouse's own form (``15.000000000`` for ``15.0000``): where a
re-derived value equals the stored record's value, the stored form is kept, so a record changes (and takes a new
change number) only when its content really changed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from dlt.common.normalizers.naming.snake_case import NamingConvention
from sqlalchemy import select
from sqlalchemy.orm import Session

from providers.base import Provider
from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.models import CanonicalRecord
from vrtx_pipelines.errors import Conflict
from vrtx_pipelines.mapping.fields import ARRAY, OBJECT, set_path
from vrtx_pipelines.mapping.store import mapped_mappers
from vrtx_pipelines.records.store import ApplyReport, apply_records, canonical_json

BATCH = 1000
_NAMING = NamingConvention()  # dlt's default: the names the pulls' tables and columns have


class RederiveUnavailable(Conflict):
    code = "rederive_unavailable"


@dataclass
class RederiveReport:
    entity: str
    read: int = 0
    changed: int = 0
    unchanged: int = 0
    without_canonical_form: int = 0


@dataclass(frozen=True)
class _Layout:
    table: str
    columns: dict[str, tuple[str, str]]  # column -> (provider path, type)
    children: dict[str, tuple[str, dict[str, tuple[str, str]]]]  # child table -> (list field, its columns)


def _column(path: str) -> str:
    return "__".join(_NAMING.normalize_identifier(part) for part in path.split("."))


def _layout(entity: str, fields: Mapping[str, str]) -> _Layout:
    columns: dict[str, tuple[str, str]] = {}
    children: dict[str, tuple[str, dict[str, tuple[str, str]]]] = {}
    for path, kind in fields.items():
        if "[]." in path:
            parent, child = path.split("[].", 1)
            table = f"{_NAMING.normalize_identifier(entity)}__{_column(parent)}"
            children.setdefault(table, (parent, {}))[1][_column(child)] = (child, kind)
        else:
            columns[_column(path)] = (path, kind)
    for _parent, _child_columns in children.values():
        columns.pop(_column(_parent), None)  # the list is rebuilt from its table, not read as a column
    return _Layout(_NAMING.normalize_identifier(entity), columns, children)


def _value(raw: Any, kind: str) -> Any:
    if kind in (ARRAY, OBJECT) and isinstance(raw, str):
        return json.loads(raw, parse_float=Decimal)
    return raw


def _assemble(row: Mapping[str, Any], columns: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for column, raw in row.items():
        found = columns.get(column)
        if found is None or raw is None:
            continue  # dlt's own columns, fields no mapping or mapper reads, and NULL (absent in the source)
        set_path(record, found[0], _value(raw, found[1]))
    return record


def warehouse_rows(
    settings: Settings, provider: Provider, tenant_id: str, entity: str, *, newest: int | None = None
) -> Iterator[dict[str, Any]]:
    """The entity's raw provider rows as the pull's mapper saw them (``newest``: only that many, latest loaded)."""
    from dlt.destinations.exceptions import DatabaseUndefinedRelation

    from vrtx_pipelines.warehouse import pipeline_for

    fields = provider.pulls.record_fields.get(entity) if provider.pulls is not None else None
    if not fields:
        raise RederiveUnavailable(f"{provider.name} does not describe its {entity} records: they cannot be re-read")
    layout = _layout(entity, fields)
    pipeline = pipeline_for(settings, provider.slug, tenant_id)
    with pipeline.sql_client() as client:
        if not client.has_dataset():
            return
        table = client.make_qualified_table_name(layout.table)
        order = "_dlt_load_id DESC" if newest else "_dlt_id"
        limit = f" LIMIT {int(newest)}" if newest else ""
        try:
            with client.execute_query(f"SELECT * FROM {table} ORDER BY {order}{limit}") as cursor:  # noqa: S608
                names = [column[0] for column in cursor.description]
                while batch := cursor.fetchmany(BATCH):
                    rows = [dict(zip(names, values, strict=True)) for values in batch]
                    yield from _with_children(client, layout, rows)
        except DatabaseUndefinedRelation:
            return


def _with_children(client: Any, layout: _Layout, rows: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    records = [(_assemble(row, layout.columns), row["_dlt_id"]) for row in rows]
    for child_table, (field_name, columns) in layout.children.items():
        ids = ", ".join("'" + str(dlt_id).replace("'", "''") + "'" for _record, dlt_id in records)
        if not ids:
            continue
        by_parent: dict[str, list[dict[str, Any]]] = {}
        query = (
            f"SELECT * FROM {client.make_qualified_table_name(child_table)} "  # noqa: S608 -- our own names
            f"WHERE _dlt_parent_id IN ({ids}) ORDER BY _dlt_parent_id, _dlt_list_idx"
        )
        with client.execute_query(query) as cursor:
            names = [column[0] for column in cursor.description]
            for values in cursor.fetchall():
                child = dict(zip(names, values, strict=True))
                by_parent.setdefault(str(child["_dlt_parent_id"]), []).append(_assemble(child, columns))
        for record, dlt_id in records:
            record[field_name] = by_parent.get(str(dlt_id), [])
    for record, _dlt_id in records:
        yield record


def rederive(
    session: Session, settings: Settings, provider: Provider, tenant_id: str, connection_id: int, entity: str
) -> RederiveReport:
    """Re-apply the provider mapper and the connection's current pull mappings to every stored raw row of
    ``entity``; records whose content changes get new change numbers. The caller commits."""
    if provider.pulls is None or entity not in provider.pulls.mappers:
        raise RederiveUnavailable(f"{provider.name} has no {entity} records")
    mapper = mapped_mappers(session, connection_id, provider.pulls.mappers)[entity]
    report = RederiveReport(entity)
    totals = ApplyReport()
    batch: list[dict[str, Any]] = []
    for raw in warehouse_rows(settings, provider, tenant_id, entity):
        report.read += 1
        try:
            batch.append(canonical_json(mapper(raw)))
        except ValueError:
            report.without_canonical_form += 1  # as in a pull: e.g. a deleted payment
            continue
        if len(batch) >= BATCH:
            _apply(session, connection_id, entity, batch, totals)
            batch = []
    if batch:
        _apply(session, connection_id, entity, batch, totals)
    report.changed, report.unchanged = totals.changed, totals.unchanged
    return report


def _apply(session: Session, connection_id: int, entity: str, batch: list[dict[str, Any]], totals: ApplyReport) -> None:
    rows = session.execute(
        select(CanonicalRecord.external_id, CanonicalRecord.data).where(
            CanonicalRecord.tenant_integration_id == connection_id,
            CanonicalRecord.entity_type == entity,
            CanonicalRecord.external_id.in_([str(item["external_id"]) for item in batch]),
        )
    )
    stored: dict[str, Any] = {external_id: data for external_id, data in rows}
    items = [_stored_form(item, stored.get(str(item["external_id"]), _MISSING)) for item in batch]
    report = apply_records(session, connection_id, entity, items)
    totals.inserted += report.inserted
    totals.updated += report.updated
    totals.unchanged += report.unchanged


_MISSING: Any = object()


def _stored_form(fresh: Any, stored: Any) -> Any:
    """``fresh`` with every value that equals the stored one in the stored one's form."""
    if stored is _MISSING:
        return fresh
    if isinstance(fresh, dict) and isinstance(stored, dict):
        return {key: _stored_form(value, stored.get(key, _MISSING)) for key, value in fresh.items()}
    if isinstance(fresh, list) and isinstance(stored, list) and len(fresh) == len(stored):
        return [_stored_form(a, b) for a, b in zip(fresh, stored, strict=True)]
    if fresh == stored or _same_number(fresh, stored) or _same_time(fresh, stored):
        return stored
    return fresh


def _same_number(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, str | int | float | Decimal):
        return False
    try:
        return Decimal(str(a)) == Decimal(str(b))
    except (InvalidOperation, ValueError):
        return False


def _same_time(a: Any, b: Any) -> bool:
    if not (isinstance(a, str) and isinstance(b, str)) or "T" not in a or "T" not in b:
        return False
    try:
        return datetime.fromisoformat(a.replace("Z", "+00:00")) == datetime.fromisoformat(b.replace("Z", "+00:00"))
    except ValueError:
        return False
