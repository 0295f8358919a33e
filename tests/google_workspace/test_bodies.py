"""Message bodies a tenant chose to keep (``message_bodies: encrypted``): ciphertext in the warehouse and the
records, bound to their record and sealed under the connection's own key; plain text only in the tenant's records
API; switching back to ``not_stored`` drops the key and every body with it; tenants never share keys."""

from __future__ import annotations

from typing import Any

import pytest
from dagster import DagsterInstance
from fastapi.testclient import TestClient
from sqlalchemy import select

from providers.google_workspace.sandbox_credentials import DEMO_MAILBOX
from tests.google_workspace.conftest import SLUG, Google, by_id, connect, records, sync, warehouse
from tests.helpers import bearer, make_tenant
from vrtx_pipelines.config import Settings
from vrtx_pipelines.credentials.stored import SEALING_KEY_META, reencrypt_all
from vrtx_pipelines.credentials.vault import Vault, generate_key, parse_keys, vault_from_settings
from vrtx_pipelines.db.models import CanonicalRecord, TenantIntegration
from vrtx_pipelines.db.session import engine_for, session_scope
from vrtx_pipelines.records.sealed import PREFIX, sealer_of

pytestmark = pytest.mark.dagster

SECRET_TERMS = "Confidential: 42 widgets at cost, delivery on the 9th."
# Past Gmail's snippet (the body's first 200 characters, kept as headers are): only the body holds the terms.
LETTER = "Dear Alex, thank you for your call this morning. " * 5 + SECRET_TERMS
SEEDED_MARKERS = ("<p>Hi", "in the body only")  # every seeded message's html and text bodies


def bodies(api: TestClient, token: str, choice: str) -> None:
    answer = api.put(f"/api/v1/integrations/{SLUG}/settings", json={"message_bodies": choice}, headers=bearer(token))
    assert answer.status_code == 200, answer.text


def connection_of(settings: Settings, tenant: str) -> TenantIntegration:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        found = session.scalars(select(TenantIntegration).where(TenantIntegration.tenant_id == tenant)).one()
        session.expunge(found)
        return found


def stored_records(settings: Settings, tenant: str = "acme") -> list[dict[str, Any]]:
    """The records as the app database holds them, not as the API serves them."""
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        rows = session.scalars(
            select(CanonicalRecord)
            .join(TenantIntegration, TenantIntegration.id == CanonicalRecord.tenant_integration_id)
            .where(TenantIntegration.tenant_id == tenant, CanonicalRecord.entity_type == "messages")
        )
        return [dict(row.data) for row in rows]


def warehouse_bodies(settings: Settings, message_id: str, tenant: str = "acme") -> tuple[Any, Any]:
    ((text, html),) = warehouse(
        settings,
        f"SELECT body_text, body_html FROM messages WHERE id = '{message_id}'",  # noqa: S608 -- an id we made
        tenant,
    )
    return text, html


def test_kept_bodies_are_ciphertext_at_rest_and_plain_text_in_the_tenants_records_api(
    api: TestClient, settings: Settings, google: Google, instance: DagsterInstance, connected: str
) -> None:
    bodies(api, connected, "encrypted")
    new = google.sandbox.deliver(DEMO_MAILBOX, sender="Olivia Smith <olivia.smith@northwind.example>",
                                 subject="Terms", text=LETTER)  # fmt: skip
    sync(settings, instance, ["messages"])

    served = by_id(api, connected, "messages")
    assert SECRET_TERMS in served[new]["data"]["body_text"]
    seeded = [r["data"] for key, r in served.items() if key != new]
    assert all("<p>Hi" in r["body_html"] and "in the body only" in r["body_text"] for r in seeded)

    text, html = warehouse_bodies(settings, new)
    assert str(text).startswith(PREFIX) and html is None  # the new message has no html part
    for table in ("messages",):
        dump = str(warehouse(settings, f"SELECT * FROM {table}"))  # noqa: S608 -- the pipeline's own table
        assert SECRET_TERMS not in dump and not any(marker in dump for marker in SEEDED_MARKERS)
    at_rest = str(stored_records(settings))
    assert SECRET_TERMS not in at_rest and not any(marker in at_rest for marker in SEEDED_MARKERS)

    # Bound to its place: the same sealed value does not open as another message's body, or as the html.
    sealer = sealer_of(vault_from_settings(settings), connection_of(settings, "acme"))
    assert sealer is not None
    assert SECRET_TERMS in str(sealer.open("messages", new, "body_text", text))
    other = next(key for key in served if key != new)
    assert sealer.open("messages", other, "body_text", text) is None
    assert sealer.open("messages", new, "body_html", text) is None

    # Read again unchanged (the whole window listed again), sealed bodies are no change for the CRM.
    cursor = records(api, connected, "messages")["next_cursor"]
    google.sandbox.expire_history(DEMO_MAILBOX)
    assert sync(settings, instance, ["messages"])["messages"]["rows_loaded"] == len(served)
    assert records(api, connected, "messages", cursor)["records"] == []


def test_a_key_rotation_keeps_kept_bodies_readable(
    api: TestClient, settings: Settings, google: Google, instance: DagsterInstance, connected: str
) -> None:
    bodies(api, connected, "encrypted")
    sync(settings, instance, ["messages"])
    before = connection_of(settings, "acme").meta or {}
    rotated = Vault([generate_key(), *parse_keys(str(settings.vault_keys))])
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        report = reencrypt_all(session, rotated)
    assert report.sealing_keys == 1
    after = connection_of(settings, "acme")
    assert (after.meta or {})[SEALING_KEY_META] != before[SEALING_KEY_META]
    sealer = sealer_of(rotated, after)
    assert sealer is not None
    (message_id, sealed) = next((r["external_id"], r["body_text"]) for r in stored_records(settings))
    assert "in the body only" in str(sealer.open("messages", str(message_id), "body_text", sealed))


def test_switching_bodies_off_drops_the_key_and_every_body_kept_under_it(
    api: TestClient, settings: Settings, google: Google, instance: DagsterInstance, connected: str
) -> None:
    bodies(api, connected, "encrypted")
    sync(settings, instance, ["messages"])
    message_id = next(iter(by_id(api, connected, "messages")))
    sealed_text, _ = warehouse_bodies(settings, message_id)

    bodies(api, connected, "not_stored")

    assert SEALING_KEY_META not in (connection_of(settings, "acme").meta or {})
    assert not any(r.get("body_text") or r.get("body_html") for r in stored_records(settings))
    assert not any(r["data"]["body_text"] for r in by_id(api, connected, "messages").values())
    google.sandbox.deliver(DEMO_MAILBOX, sender="ann@example.org", subject="After", text=LETTER)
    sync(settings, instance, ["messages"])
    assert SECRET_TERMS not in str(warehouse(settings, "SELECT * FROM messages"))
    # Keeping them again makes a new key: what the warehouse still holds under the old one never opens again.
    bodies(api, connected, "encrypted")
    sealer = sealer_of(vault_from_settings(settings), connection_of(settings, "acme"))
    assert sealer is not None and sealer.open("messages", message_id, "body_text", sealed_text) is None


def test_two_tenants_on_one_mailbox_keep_bodies_under_their_own_keys(
    api: TestClient, settings: Settings, google: Google, instance: DagsterInstance, connected: str
) -> None:
    other = make_tenant(settings, "globex")
    connect(settings, "globex")
    bodies(api, connected, "encrypted")
    bodies(api, other, "encrypted")
    sync(settings, instance, ["messages"])
    sync(settings, instance, ["messages"], tenant="globex")
    message_id = next(iter(by_id(api, connected, "messages")))
    acme_text, _ = warehouse_bodies(settings, message_id)
    vault = vault_from_settings(settings)
    globex = sealer_of(vault, connection_of(settings, "globex"))
    assert globex is not None and globex.open("messages", message_id, "body_text", acme_text) is None

    bodies(api, other, "not_stored")  # globex's choice leaves acme's bodies alone

    assert "in the body only" in by_id(api, connected, "messages")[message_id]["data"]["body_text"]
    assert not by_id(api, other, "messages")[message_id]["data"]["body_text"]
