"""Canonical records on SQLite and PostgreSQL: both write paths (rows and a pull's spool) keep one record per
external id, number real changes only, and never let an older copy overwrite a newer one."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from tests.helpers import make_tenant
from vrtx_pipelines.config import Settings
from vrtx_pipelines.connect.context import ConnectionContext
from vrtx_pipelines.connect.purge import purge_rows
from vrtx_pipelines.db.models import CanonicalRecord, Integration, Status, TenantIntegration
from vrtx_pipelines.db.session import engine_for, session_scope
from vrtx_pipelines.errors import ConnectionGone
from vrtx_pipelines.platform import prepare_database
from vrtx_pipelines.records.canonical import content_hash
from vrtx_pipelines.records.store import apply_records, apply_spool, spool_line


def _connection(settings: Settings) -> int:
    prepare_database(settings)
    make_tenant(settings, "acme")
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        xero = session.scalars(select(Integration).where(Integration.slug == "xero")).one()
        connection = TenantIntegration(tenant_id="acme", integration_id=xero.id, status="connected")
        session.add(connection)
        session.flush()
        return connection.id


def _contact(name: str, updated_at: str) -> dict[str, Any]:
    return {"external_id": "c-1", "name": name, "updated_at": updated_at}


def _spool(path: Path, *records: dict[str, Any]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.writelines(spool_line(record) for record in records)
    return path


def _stored(settings: Settings) -> list[tuple[str, int]]:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        return [(r.data["name"], r.change_seq) for r in session.scalars(select(CanonicalRecord))]


def test_an_older_copy_never_overwrites_a_newer_one_on_either_write_path(settings: Settings, tmp_path: Path) -> None:
    connection_id = _connection(settings)
    engine = engine_for(settings.sqlalchemy_url)
    newer = _contact("Newer Ltd", "2026-11-26T10:00:05+00:00")
    older = _contact("Older Ltd", "2026-11-26T10:00:00+00:00")
    with session_scope(engine) as session:
        assert apply_records(session, connection_id, "contacts", [newer]).inserted == 1
    with session_scope(engine) as session:
        report = apply_records(session, connection_id, "contacts", [older])
    assert (report.changed, report.unchanged) == (0, 1)
    with session_scope(engine) as session:
        report = apply_spool(session, connection_id, "contacts", _spool(tmp_path / "old.tsv", older))
    assert (report.changed, report.unchanged) == (0, 1)
    assert _stored(settings) == [("Newer Ltd", 1)]

    latest = _contact("Latest Ltd", "2026-11-26T10:00:09+00:00")
    with session_scope(engine) as session:
        report = apply_spool(session, connection_id, "contacts", _spool(tmp_path / "new.tsv", latest))
    assert (report.updated, report.unchanged) == (1, 0)
    assert _stored(settings) == [("Latest Ltd", 2)]


def test_a_record_met_twice_in_one_pull_is_one_record_with_its_last_content(settings: Settings, tmp_path: Path) -> None:
    connection_id = _connection(settings)
    first = _contact("First Ltd", "2026-11-26T10:00:00+00:00")
    again = _contact("Again Ltd", "2026-11-26T10:00:01+00:00")
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        report = apply_spool(session, connection_id, "contacts", _spool(tmp_path / "twice.tsv", first, again))
    assert report.inserted == 1
    assert [name for name, _ in _stored(settings)] == ["Again Ltd"]


def test_a_spooled_record_arrives_exactly_as_captured_on_either_database(settings: Settings, tmp_path: Path) -> None:
    # Text a CRM user can type, and an id no provider should send: the spool's escaping must be invisible.
    awkward = {
        "external_id": 'c\\2\t"x"',
        "name": 'Tab\there, "quoted", back\\slash \\N, new\nline, CR\r, Ünïcødé ✓',
        "updated_at": "2026-11-26T10:00:00+00:00",
        "notes": "\\.",
    }
    connection_id = _connection(settings)
    engine = engine_for(settings.sqlalchemy_url)
    with session_scope(engine) as session:
        report = apply_spool(session, connection_id, "contacts", _spool(tmp_path / "awkward.tsv", awkward))
    assert report.inserted == 1
    with session_scope(engine) as session:
        stored = session.scalars(select(CanonicalRecord)).one()
        assert (stored.external_id, stored.data) == (awkward["external_id"], awkward)
        assert stored.content_hash == content_hash(awkward)
    with session_scope(engine) as session:  # the same content again is no change
        report = apply_spool(session, connection_id, "contacts", _spool(tmp_path / "again.tsv", awkward))
    assert (report.changed, report.unchanged) == (0, 1)


def test_a_pull_whose_connection_is_purged_while_it_waits_for_the_lock_writes_nothing_back(
    settings: Settings, tmp_path: Path
) -> None:
    """A purge takes the connection's lock first; the pull's apply waiting behind it must not write the records
    back once the purge commits (on either write path)."""
    connection_id = _connection(settings)
    engine = engine_for(settings.sqlalchemy_url)
    record = _contact("Purged Ltd", "2026-11-26T10:00:00+00:00")
    outcomes: dict[str, BaseException | None] = {}

    def pull(path: str) -> None:
        try:
            with session_scope(engine) as session:
                if path == "rows":
                    apply_records(session, connection_id, "contacts", [record])
                else:
                    apply_spool(session, connection_id, "contacts", _spool(tmp_path / "pull.tsv", record))
            outcomes[path] = None
        except BaseException as exc:  # noqa: BLE001 -- handed to the test's thread
            outcomes[path] = exc

    for path in ("rows", "spool"):
        with session_scope(engine) as purge:
            connection = purge.get_one(TenantIntegration, connection_id)
            purge_rows(ConnectionContext(session=purge, vault=None, settings=settings), connection)  # type: ignore[arg-type]
            connection.status = Status.DISCONNECTED
            purge.flush()
            waiting = threading.Thread(target=pull, args=(path,))
            waiting.start()
            time.sleep(0.5)  # the apply is now blocked on the purge's lock
            assert waiting.is_alive(), "the apply did not wait for the purge"
        waiting.join(30)
        assert isinstance(outcomes[path], ConnectionGone), outcomes[path]
        assert _stored(settings) == []
        with session_scope(engine) as session:
            session.get_one(TenantIntegration, connection_id).status = Status.CONNECTED
