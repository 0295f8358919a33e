"""A pull's canonical records are applied while dlt loads the warehouse, and kept only when the load succeeded.
SQLite and PostgreSQL."""
# ruff: noqa: F811 -- the Xero fixtures are imported from tests/xero/conftest.py and used by name

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from providers.xero.mappers import to_contact
from tests.helpers import make_tenant
from tests.xero.conftest import base_urls, connect_xero, oauth_clients, xero  # noqa: F401 -- fixtures
from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.models import CanonicalRecord, TenantIntegration
from vrtx_pipelines.db.session import engine_for, session_factory, session_scope
from vrtx_pipelines.platform import prepare_database
from vrtx_pipelines.pull.spool import CanonicalApply, RecordSpool


def spooled(directory: Path, *names: str) -> RecordSpool:
    spool = RecordSpool(directory, {"contacts": to_contact})
    capture = spool.capture("contacts")
    for n, name in enumerate(names):
        capture({"ContactID": f"c-{n}", "Name": name, "UpdatedDateUTC": datetime(2026, 1, 1, n, tzinfo=UTC)})
    return spool


def sessions(settings: Settings) -> Any:
    return session_factory(engine_for(settings.sqlalchemy_url))


def stored(settings: Settings) -> list[str]:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        return sorted(r.data["name"] for r in session.scalars(select(CanonicalRecord)))


def acme_connection(settings: Settings) -> int:
    prepare_database(settings)
    make_tenant(settings, "acme")
    connect_xero(settings, "acme")
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        connection_id = session.scalar(select(TenantIntegration.id).where(TenantIntegration.tenant_id == "acme"))
    assert connection_id is not None
    return connection_id


def test_records_applied_during_the_load_are_committed_once_it_succeeded(
    settings: Settings, xero: object, tmp_path: Path
) -> None:
    connection_id = acme_connection(settings)
    apply = CanonicalApply(
        session_factory(engine_for(settings.sqlalchemy_url)), connection_id, spooled(tmp_path, "Ada", "Bo")
    )
    apply.start()  # dlt's load step began
    reports = apply.finish()  # ... and succeeded
    assert reports["contacts"].changed == 2
    assert stored(settings) == ["Ada", "Bo"]


def test_records_of_a_pull_whose_load_failed_are_not_kept(settings: Settings, xero: object, tmp_path: Path) -> None:
    connection_id = acme_connection(settings)
    apply = CanonicalApply(
        session_factory(engine_for(settings.sqlalchemy_url)), connection_id, spooled(tmp_path, "Ada")
    )
    apply.start()
    apply.abandon()  # the load failed
    assert stored(settings) == []


def deleted_names(settings: Settings) -> dict[str, bool]:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        return {r.data["name"]: r.deleted for r in session.scalars(select(CanonicalRecord))}


def test_a_relisting_marks_deleted_what_it_no_longer_had_but_not_what_was_written_while_it_ran(
    settings: Settings, xero: object, tmp_path: Path
) -> None:
    connection_id = acme_connection(settings)
    (tmp_path / "first").mkdir()
    CanonicalApply(sessions(settings), connection_id, spooled(tmp_path / "first", "Ada", "Bo", "Cy")).finish()
    began = datetime.now(UTC)
    # While the listing ran, a webhook wrote a record the listing (begun before it existed) cannot have.
    (tmp_path / "webhook").mkdir()
    late = RecordSpool(tmp_path / "webhook", {"contacts": to_contact})
    late.capture("contacts")({"ContactID": "c-9", "Name": "Dee", "UpdatedDateUTC": datetime(2026, 2, 1, tzinfo=UTC)})
    CanonicalApply(sessions(settings), connection_id, late).finish()

    (tmp_path / "relisted").mkdir()
    relisting = spooled(tmp_path / "relisted", "Ada", "Bo")  # Cy (c-2) was deleted while the feed could not say
    reports = CanonicalApply(
        sessions(settings), connection_id, relisting, relisted=lambda: {"contacts"}, listing_began=began
    ).finish()

    assert reports["contacts"].deleted == 1 and reports["contacts"].changed == 1
    assert deleted_names(settings) == {"Ada": False, "Bo": False, "Cy": True, "Dee": False}
    # Not relisted: a listing that lacks records says nothing about them.
    (tmp_path / "partial").mkdir()
    CanonicalApply(sessions(settings), connection_id, spooled(tmp_path / "partial", "Ada")).finish()
    assert deleted_names(settings)["Bo"] is False


def test_a_relisting_that_found_nothing_marks_every_earlier_record_deleted(
    settings: Settings, xero: object, tmp_path: Path
) -> None:
    connection_id = acme_connection(settings)
    (tmp_path / "first").mkdir()
    CanonicalApply(sessions(settings), connection_id, spooled(tmp_path / "first", "Ada", "Bo")).finish()
    (tmp_path / "empty").mkdir()
    empty = RecordSpool(tmp_path / "empty", {"contacts": to_contact})
    reports = CanonicalApply(
        sessions(settings), connection_id, empty, relisted=lambda: {"contacts"}, listing_began=datetime.now(UTC)
    ).finish()
    assert reports["contacts"].deleted == 2
    assert deleted_names(settings) == {"Ada": True, "Bo": True}
