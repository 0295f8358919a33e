"""``disconnect?purge=true`` deletes everything synced for the connection, says what it deleted, and leaves another
tenant's data for the same provider as it was; on SQLite (duckdb warehouse) and PostgreSQL (warehouse schemas)."""

from __future__ import annotations

from typing import Any

import pytest
from dagster import DagsterInstance
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from providers.sandbox_kit.serve import ServedApp
from providers.xero.sandbox import XeroSandbox
from tests.helpers import bearer, make_tenant
from tests.xero.conftest import all_records, connect_xero
from vrtx_pipelines.cli.sync import sync_now
from vrtx_pipelines.config import Settings
from vrtx_pipelines.connect.purge import connection_tables
from vrtx_pipelines.db.models import (
    CanonicalRecord,
    EntityLink,
    FieldMappingVersion,
    IntegrationFieldMapping,
    IntegrationSyncLog,
    IntegrationWebhook,
    ParticipantIndexMark,
    PushOutbox,
    RecordParticipant,
    SyncConflict,
    TenantIntegration,
    WebhookInbox,
)
from vrtx_pipelines.db.session import engine_for, session_scope
from vrtx_pipelines.names import dataset_name

pytestmark = pytest.mark.dagster
Xero = tuple[XeroSandbox, ServedApp, str]
ENTITIES = ["contacts", "invoices"]


def connection_id(settings: Settings, tenant_id: str) -> int:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        return session.scalars(select(TenantIntegration.id).where(TenantIntegration.tenant_id == tenant_id)).one()


def seed_rows(settings: Settings, tenant_id: str, n: int) -> None:
    """``n`` rows of every kind a connection owns besides its canonical records (which the pull makes)."""
    cid = connection_id(settings, tenant_id)
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        records = session.scalars(
            select(CanonicalRecord.id).where(CanonicalRecord.tenant_integration_id == cid).limit(n)
        ).all()
        # Xero's records are not activity: the participants a mailbox's messages would have, on its records.
        session.add_all(
            RecordParticipant(
                tenant_integration_id=cid, record_id=rid, tenant_id=tenant_id, address_key=f"p{rid}@x.example",
                role="from",
            )
            for rid in records
        )  # fmt: skip
        session.merge(ParticipantIndexMark(tenant_integration_id=cid, indexed_seq=1))
        for i in range(n):
            session.add_all(
                [
                    EntityLink(tenant_integration_id=cid, entity_type="contacts", vrtx_id=f"v{i}", external_id=f"x{i}"),
                    PushOutbox(
                        tenant_integration_id=cid, entity_type="contact", operation="create",
                        idempotency_key=f"k{i}", payload={"name": "n"}, status="pending" if i % 2 else "done",
                    ),
                    WebhookInbox(
                        tenant_integration_id=cid, provider_event_id=f"e{i}", payload={"entities": ["contacts"]},
                        status="received" if i % 2 else "processed",
                    ),
                    IntegrationWebhook(tenant_integration_id=cid, webhook_id=f"w{i}"),
                    IntegrationFieldMapping(
                        tenant_integration_id=cid, entity_type="contacts", vrtx_field="notes", external_field=f"f{i}"
                    ),
                    FieldMappingVersion(tenant_integration_id=cid, entity_type="contacts", version=i + 1, mappings=[]),
                    SyncConflict(tenant_integration_id=cid, entity_type="contacts", fields=["name"], policy="manual"),
                    IntegrationSyncLog(tenant_integration_id=cid, sync_type="incremental", direction="pull",
                                       status="success"),
                ]
            )  # fmt: skip


def rows_per_table(settings: Settings, tenant_id: str) -> dict[str, int]:
    cid = connection_id(settings, tenant_id)
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        return {
            table.name: session.scalar(
                select(func.count()).select_from(table).where(table.c.tenant_integration_id == cid)
            )
            or 0
            for table in connection_tables()
        }


def warehouse_rows(settings: Settings, tenant_id: str) -> dict[str, int] | None:
    """Rows per data table of the tenant's Xero dataset (and dlt's staging dataset), None when neither exists."""
    name = dataset_name("xero", tenant_id)
    if settings.uses_postgres:
        with session_scope(engine_for(settings.sqlalchemy_url)) as session:
            schemas = [name, f"{name}_staging"]
            found = session.execute(
                text("SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema = ANY(:s)"),
                {"s": schemas},
            ).all()
            if not session.scalar(
                text("SELECT count(*) FROM information_schema.schemata WHERE schema_name = ANY(:s)"), {"s": schemas}
            ):
                return None
            return {
                f"{schema}.{table}": session.scalar(text(f'SELECT count(*) FROM "{schema}"."{table}"')) or 0  # noqa: S608
                for schema, table in found
                if not table.startswith("_dlt")
            }
    import duckdb

    path = settings.home / "warehouse" / name / "warehouse.duckdb"
    if not path.exists():
        return None
    with duckdb.connect(str(path), read_only=True) as db:
        listed = db.execute("SELECT table_schema, table_name FROM information_schema.tables").fetchall()
        counts = {}
        for schema, table in (row for row in listed if not row[1].startswith("_dlt")):
            counted = db.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()  # noqa: S608 -- listed names
            counts[f"{schema}.{table}"] = int(counted[0]) if counted else 0
        return counts


def everything(api: TestClient, settings: Settings, token: str, tenant_id: str) -> dict[str, Any]:
    return {
        "rows": rows_per_table(settings, tenant_id),
        "warehouse": warehouse_rows(settings, tenant_id),
        "records": {entity: len(all_records(api, token, entity)) for entity in ENTITIES},
    }


def test_purge_deletes_every_kind_of_data_says_how_much_and_leaves_the_other_tenants_alone(
    api: TestClient, settings: Settings, xero: Xero, instance: DagsterInstance
) -> None:
    sandbox, _served, first = xero
    second = sandbox.add_organisation("Globex", contacts=9, invoices=14, payments=2, items=2)
    tokens = {"a": make_tenant(settings, "a"), "b": make_tenant(settings, "b")}
    connect_xero(settings, "a", [first])
    connect_xero(settings, "b", [second])
    for tenant in tokens:
        sync_now(settings, "xero", tenant, ENTITIES, instance=instance)
        seed_rows(settings, tenant, 3)
    a_before = everything(api, settings, tokens["a"], "a")
    b_before = everything(api, settings, tokens["b"], "b")
    assert b_before["records"] == {"contacts": 9, "invoices": 14} and b_before["warehouse"]
    assert all(b_before["rows"].values())  # something of every kind to purge

    purged = api.delete("/api/v1/integrations/xero/disconnect?purge=true", headers=bearer(tokens["b"]))

    assert purged.status_code == 200, purged.text
    body = purged.json()
    assert body["status"] == "disconnected" and body["settings"] is None and body["account"] is None
    warehouse = b_before["warehouse"]
    assert body["purged"] == {
        **b_before["rows"],
        "warehouse_tables": body["purged"]["warehouse_tables"],
        "warehouse_rows": sum(warehouse.values()),
    }
    assert body["purged"]["canonical_records"] == 9 + 14
    assert body["purged"]["warehouse_tables"] >= len(warehouse)
    b_after = everything(api, settings, tokens["b"], "b")
    assert b_after == {
        "rows": dict.fromkeys(b_before["rows"], 0),
        "warehouse": None,
        "records": dict.fromkeys(ENTITIES, 0),
    }
    assert not (settings.home / "dlt" / dataset_name("xero", "b")).exists()  # no local dlt state to resume from
    assert everything(api, settings, tokens["a"], "a") == a_before

    # Connected again, the tenant starts over: a full first pull, not cursors of deleted data.
    connect_xero(settings, "b", [second])
    sync_now(settings, "xero", "b", ENTITIES, instance=instance)
    assert everything(api, settings, tokens["b"], "b")["records"] == {"contacts": 9, "invoices": 14}


def test_purge_of_a_connection_that_never_synced_deletes_nothing_and_says_so(
    api: TestClient, settings: Settings, xero: Xero
) -> None:
    token = make_tenant(settings, "a")
    connect_xero(settings, "a")

    body = api.delete("/api/v1/integrations/xero/disconnect?purge=true", headers=bearer(token)).json()

    assert set(body["purged"].values()) == {0} and "canonical_records" in body["purged"]
    assert api.get("/api/v1/integrations/xero/records/contacts", headers=bearer(token)).json()["records"] == []
