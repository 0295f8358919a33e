"""The schema: the seed's tables with their columns and constraints, up and down on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import DateTime, bindparam, create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from providers.base import WebhookEvent
from tests.helpers import head_revision
from vrtx_pipelines.db import migrate
from vrtx_pipelines.db.models import Base
from vrtx_pipelines.registry import get_provider

SEED_COLUMNS = {
    "integrations": {
        "id", "slug", "name", "description", "category", "icon_url", "auth_type", "config_schema",
        "capabilities", "is_active", "display_order", "created_at", "updated_at",
    },
    "tenant_integrations": {
        "id", "tenant_id", "integration_id", "status", "credentials", "settings", "metadata", "last_sync_at",
        "last_error", "connected_at", "connected_by", "created_at", "updated_at",
    },
    "integration_sync_logs": {
        "id", "tenant_integration_id", "sync_type", "entity_type", "entity_id", "external_id", "direction",
        "status", "request_data", "response_data", "error_message", "duration_ms", "created_at",
    },
    "integration_field_mappings": {
        "id", "tenant_integration_id", "entity_type", "vrtx_field", "external_field", "transform_type",
        "transform_config", "is_active", "created_at", "updated_at",
    },
    "integration_webhooks": {
        "id", "tenant_integration_id", "webhook_id", "endpoint_url", "secret_key", "events", "is_active",
        "last_received_at", "created_at", "updated_at",
    },
}  # fmt: skip
FLOW_TABLES = {
    "tenants",
    "entity_links",
    "push_outbox",
    "webhook_inbox",
    "oauth_states",
    "outbound_events",
    "canonical_records",
    "marketplace_links",
}


def test_upgrade_creates_every_seed_column_and_the_flow_tables(empty_db_url: str) -> None:
    migrate.upgrade(empty_db_url)
    inspector = inspect(create_engine(empty_db_url))
    tables = set(inspector.get_table_names())
    assert set(SEED_COLUMNS) | FLOW_TABLES <= tables
    for table, columns in SEED_COLUMNS.items():
        assert columns <= {c["name"] for c in inspector.get_columns(table)}, table
    unique_sets = [set(u["column_names"]) for u in inspector.get_unique_constraints("tenant_integrations")]
    assert {"tenant_id", "integration_id"} in unique_sets


def test_downgrade_removes_everything_and_upgrade_again_works(empty_db_url: str) -> None:
    migrate.upgrade(empty_db_url)
    migrate.downgrade(empty_db_url, "base")
    assert set(inspect(create_engine(empty_db_url)).get_table_names()) <= {"vrtx_alembic_version"}
    assert migrate.current_revision(empty_db_url) is None
    migrate.upgrade(empty_db_url)
    assert migrate.current_revision(empty_db_url) == head_revision()


def test_the_migrations_build_exactly_the_schema_the_models_declare(empty_db_url: str) -> None:
    migrate.upgrade(empty_db_url)
    engine = create_engine(empty_db_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": migrate.VERSION_TABLE})
        assert compare_metadata(context, Base.metadata) == []


def test_head_names_the_newest_migration_so_a_current_database_needs_no_alembic(empty_db_url: str) -> None:
    from alembic.script import ScriptDirectory

    assert ScriptDirectory.from_config(migrate.alembic_config(empty_db_url)).get_current_head() == migrate.HEAD
    assert not migrate.is_current(empty_db_url)  # nothing there yet
    migrate.upgrade(empty_db_url, "0004")
    assert not migrate.is_current(empty_db_url)
    migrate.upgrade(empty_db_url)
    assert migrate.is_current(empty_db_url)


def test_seed_defaults_apply_at_the_database_level(empty_db_url: str) -> None:
    migrate.upgrade(empty_db_url)
    engine = create_engine(empty_db_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO integrations (slug, name, category, auth_type, config_schema, capabilities, tier, "
                "implemented, created_at, updated_at) VALUES ('x', 'X', 'crm', 'api_key', '{}', '[]', 1, '[]', "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        row = conn.execute(text("SELECT is_active, display_order FROM integrations WHERE slug = 'x'")).one()
        assert bool(row.is_active) is True
        assert row.display_order == 0


def test_a_tenant_can_hold_only_one_connection_per_integration(empty_db_url: str) -> None:
    migrate.upgrade(empty_db_url)
    engine = create_engine(empty_db_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tenants (id, name, api_token_hash, api_token_prefix, is_active, created_at, "
                "updated_at) VALUES ('t1', 'T1', 'h', 'p', true, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO integrations (id, slug, name, category, auth_type, config_schema, capabilities, "
                "tier, implemented, created_at, updated_at) VALUES (1, 'x', 'X', 'crm', 'api_key', '{}', '[]', "
                "1, '[]', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    insert = text(
        "INSERT INTO tenant_integrations (tenant_id, integration_id, created_at, updated_at) "
        "VALUES ('t1', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
    )
    with engine.begin() as conn:
        conn.execute(insert)
        status = conn.execute(text("SELECT status FROM tenant_integrations")).scalar_one()
        assert status == "disconnected"
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert)


@pytest.mark.postgres
def test_json_columns_are_jsonb_on_postgres(postgres_url: str) -> None:
    migrate.upgrade(postgres_url)
    columns = {c["name"]: c for c in inspect(create_engine(postgres_url)).get_columns("tenant_integrations")}
    for name in ("credentials", "settings", "metadata"):
        assert type(columns[name]["type"]).__name__ == "JSONB"


def test_0006_rekeys_recent_xero_inbox_rows_on_the_normalised_identity_and_deletes_nothing(empty_db_url: str) -> None:
    """Rows stored before 0006 under Xero's old key (a hash over the raw date text): the first of an event's copies
    takes the identity the inbox now computes, so a redelivery is still a duplicate; a re-formatted copy keeps its
    old key; rows too old to meet a redelivery are left alone."""
    from vrtx_pipelines.db.session import session_factory
    from vrtx_pipelines.webhooks.inbox import _inbox_row as inbox_row
    from vrtx_pipelines.webhooks.inbox import event_identity, insert_ignoring_duplicates

    migrate.upgrade(empty_db_url, "0004")
    engine = create_engine(empty_db_url)
    now = datetime.now(UTC)
    moment = now.replace(microsecond=902000) - timedelta(hours=1)

    def payload(resource: str) -> str:
        return json.dumps(
            {"event_type": "invoice.update", "entity": "invoices", "entities": ["invoices", "payments"],
             "external_id": resource, "external_tenant_id": "ORG-1", "occurred_at": moment.isoformat(), "data": {}}
        )  # fmt: skip

    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tenants (id, name, api_token_hash, api_token_prefix, is_active, created_at, updated_at) "
                "VALUES ('t1', 'T1', 'h', 'p', true, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO integrations (id, slug, name, category, auth_type, config_schema, capabilities, tier, "
                "implemented, created_at, updated_at) VALUES (1, 'xero', 'Xero', 'accounting', 'oauth2', '{}', "
                "'[]', 1, '[]', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO tenant_integrations (id, tenant_id, integration_id, created_at, updated_at) "
                "VALUES (7, 't1', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        insert = text(
            "INSERT INTO webhook_inbox (id, tenant_integration_id, provider_event_id, event_type, payload, status, "
            "received_at) VALUES (:id, 7, :key, 'invoice.update', :payload, 'processed', :at)"
        ).bindparams(bindparam("at", type_=DateTime(timezone=True)))
        conn.execute(insert, {"id": 1, "key": "old-hash-of-000", "payload": payload("inv-1"), "at": now})
        conn.execute(insert, {"id": 2, "key": "old-hash-of-000Z", "payload": payload("inv-1"), "at": now})
        conn.execute(insert, {"id": 3, "key": "old-hash-other", "payload": payload("inv-2"), "at": now})
        conn.execute(
            insert, {"id": 4, "key": "old-hash-ancient", "payload": payload("inv-3"), "at": now - timedelta(days=9)}
        )

    migrate.upgrade(empty_db_url)

    event = WebhookEvent(None, "invoice.update", "invoices", "inv-1", "org-1", moment)
    with engine.connect() as conn:
        keys = dict(conn.execute(text("SELECT id, provider_event_id FROM webhook_inbox ORDER BY id")).all())
    assert keys[1] == event_identity(event)
    assert keys[2] == "old-hash-of-000Z"
    assert keys[3] == event_identity(WebhookEvent(None, "invoice.update", "invoices", "inv-2", "org-1", moment))
    assert keys[4] == "old-hash-ancient" and len(keys) == 4
    session = session_factory(engine)()
    try:
        provider = get_provider("xero")
        assert insert_ignoring_duplicates(session, [inbox_row(provider, 7, event, now)]) == set()  # a duplicate
    finally:
        session.rollback()
        session.close()
