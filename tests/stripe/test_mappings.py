"""Field mappings for Stripe: its entities (customers, subscriptions, ...) are offered with their canonical models'
fields and Stripe's record fields, a pull through the Dagster assets applies them, and an entity with no canonical
model is refused. SQLite and PostgreSQL; the Stripe sandbox over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from dagster import DagsterInstance
from fastapi.testclient import TestClient

from tests.helpers import bearer, make_tenant
from tests.stripe.conftest import Stripe, connect_with_key, records, sync

pytestmark = pytest.mark.dagster
URL = "/api/v1/integrations/stripe/mappings"
SHOUTED = {
    "vrtx_field": "custom_fields.shouted",
    "external_field": "name",
    "transform_type": "formula",
    "transform_config": {"expression": "upper(name)"},
    "direction": "pull",
}


@pytest.fixture
def acme(api: TestClient, settings: Any, stripe: Stripe) -> str:
    token = make_tenant(settings, "acme")
    connect_with_key(api, token)
    return token


def test_stripe_entities_are_offered_with_their_canonical_and_stripe_fields(api: TestClient, acme: str) -> None:
    answer = api.get(f"{URL}/fields", headers=bearer(acme))
    assert answer.status_code == 200, answer.text
    entities = answer.json()["entities"]
    assert set(entities) == {"customers", "products", "invoices", "payment_intents", "subscriptions", "refunds"}
    customers = entities["customers"]
    assert {"name", "email", "phone"} <= {f["name"] for f in customers["vrtx_fields"]}  # Contact's fields
    assert customers["external_fields"]["invoice_prefix"] == "string"  # Stripe's customer object
    assert "mrr" in {f["name"] for f in entities["subscriptions"]["vrtx_fields"]}


def test_a_pull_of_stripe_customers_applies_the_tenants_mappings(
    api: TestClient, settings: Any, stripe: Stripe, instance: DagsterInstance, acme: str
) -> None:
    answer = api.put(URL, json={"mappings": {"customers": [SHOUTED]}}, headers=bearer(acme))
    assert answer.status_code == 200, answer.text
    sync(settings, instance, ["customers"])
    customers = records(api, acme, "customers")
    assert customers
    for record in customers.values():
        name = record["data"].get("name")
        assert record["data"]["custom_fields"]["shouted"] == (name.upper() if name else None)


def test_a_mapping_for_a_stripe_entity_without_a_canonical_model_is_refused(api: TestClient, acme: str) -> None:
    mapping = {"vrtx_field": "custom_fields.x", "external_field": "id", "direction": "pull"}
    answer = api.put(URL, json={"mappings": {"payouts": [mapping]}}, headers=bearer(acme))
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "invalid_mappings", answer.text
