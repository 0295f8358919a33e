"""Mappings on real syncs: a pull through the Dagster assets from the Xero sandbox applies the tenant's pull
mappings, a push through the push job sends the mapped values to the sandbox, previews use the tenant's own
records as samples, and re-deriving changes records from the warehouse without a single call to Xero."""

# ruff: noqa: F811 -- the Xero fixtures imported below are requested by name
from __future__ import annotations

from typing import Any

import httpx
import pytest
from dagster import DagsterInstance, build_sensor_context
from fastapi.testclient import TestClient

from tests.helpers import bearer, make_tenant
from tests.xero.conftest import all_records, base_urls, connect_xero, oauth_clients, records, xero  # noqa: F401
from vrtx_pipelines.cli.sync import sync_now
from vrtx_pipelines.config import Settings
from vrtx_pipelines.orchestration.pushes import push_job, push_sensor
from vrtx_pipelines.registry import get_provider

pytestmark = pytest.mark.dagster
URL = "/api/v1/integrations/xero/mappings"
XERO = get_provider("xero")
JOB = push_job(XERO)
SENSOR = push_sensor(XERO, JOB)
INITIALS = {
    "vrtx_field": "custom_fields.initials",
    "external_field": "FirstName",
    "transform_type": "formula",
    "transform_config": {"expression": "upper(concat(substr(FirstName, 0, 1), substr(LastName, 0, 1)))"},
    "direction": "pull",
}
CURRENCY = {"vrtx_field": "custom_fields.currency", "external_field": "DefaultCurrency", "direction": "pull"}
CUSTOMER = {"vrtx_field": "custom_fields.customer", "external_field": "Contact.Name", "direction": "pull"}


@pytest.fixture
def acme(api: TestClient, settings: Settings, xero: Any) -> str:
    token = make_tenant(settings, "acme")
    connect_xero(settings, "acme")
    return token


def put(api: TestClient, token: str, body: dict[str, Any]) -> None:
    response = api.put(URL, json={"mappings": body}, headers=bearer(token))
    assert response.status_code == 200, response.text


def rederive(api: TestClient, token: str, entity: str | None = None) -> dict[str, dict[str, int]]:
    params = {"entity": entity} if entity else {}
    response = api.post(f"{URL}/rederive", params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    return {r["entity"]: r for r in response.json()["results"]}


def test_a_pull_applies_the_tenants_mappings_and_the_records_api_shows_them(
    api: TestClient, settings: Settings, xero: Any, instance: DagsterInstance, acme: str
) -> None:
    sandbox, _served, org = xero
    put(api, acme, {"contacts": [INITIALS, CURRENCY], "invoices": [CUSTOMER]})
    sync_now(settings, "xero", "acme", ["contacts", "invoices"], instance=instance)
    contacts = all_records(api, acme, "contacts")
    assert len(contacts) == sandbox.count(org, "contacts")
    for contact in contacts:
        data = contact["data"]
        first, last = data.get("first_name") or "", data.get("last_name") or ""
        expected = (first[:1] + last[:1]).upper()
        assert data["custom_fields"]["initials"] == expected
        assert data["custom_fields"]["currency"] == "NZD"
    invoice = all_records(api, acme, "invoices")[0]["data"]
    assert invoice["custom_fields"]["customer"]  # the Xero contact's name, from the nested Contact object


def test_rederive_applies_changed_mappings_from_the_warehouse_without_calling_xero(
    api: TestClient, settings: Settings, xero: Any, instance: DagsterInstance, acme: str
) -> None:
    sandbox, _served, org = xero
    sync_now(settings, "xero", "acme", [], instance=instance)
    cursor = records(api, acme, "contacts", limit=1000)["next_cursor"]
    calls, tokens = sandbox.stats.api_calls, sandbox.stats.token_requests

    # With the mappings unchanged, every record re-derives to exactly what the pull stored.
    unchanged = rederive(api, acme)
    for entity in ("contacts", "invoices", "payments", "products", "tax_rates", "accounts"):
        assert unchanged[entity]["changed"] == 0, entity
        assert unchanged[entity]["read"] > 0, entity
    assert unchanged["invoices"]["unchanged"] == sandbox.count(org, "invoices")

    put(api, acme, {"contacts": [INITIALS], "invoices": [CUSTOMER]})
    changed = rederive(api, acme, "contacts")
    assert changed["contacts"]["changed"] == sandbox.count(org, "contacts")
    page = records(api, acme, "contacts", cursor=cursor)
    assert len(page["records"]) == sandbox.count(org, "contacts")  # each with a new change number
    assert all("initials" in r["data"]["custom_fields"] for r in page["records"])
    invoices = rederive(api, acme, "invoices")["invoices"]
    assert invoices["changed"] == sandbox.count(org, "invoices")
    lines = [r["data"]["lines"] for r in all_records(api, acme, "invoices")]
    assert all(len(found) == 3 for found in lines)  # lines reassembled from the child table

    put(api, acme, {"contacts": []})
    assert rederive(api, acme, "contacts")["contacts"]["changed"] == sandbox.count(org, "contacts")
    assert all("custom_fields" not in r["data"] for r in all_records(api, acme, "contacts"))
    assert (sandbox.stats.api_calls, sandbox.stats.token_requests) == (calls, tokens)


def test_preview_samples_are_the_tenants_latest_records(
    api: TestClient, settings: Settings, instance: DagsterInstance, acme: str
) -> None:
    put(api, acme, {"contacts": [INITIALS, {**CURRENCY, "direction": "both"}]})
    sync_now(settings, "xero", "acme", ["contacts"], instance=instance)
    response = api.post(f"{URL}/preview", json={"entity": "contacts"}, headers=bearer(acme))
    assert response.status_code == 200, response.text
    body = response.json()
    pulled, pushed = body["pull"], body["push"]
    assert pulled["sample"] is True and pulled["input"]["ContactID"] == pulled["before"]["external_id"]
    assert pulled["after"]["custom_fields"]["currency"] == "NZD" and "custom_fields" in pulled["changed"]
    assert pushed["sample"] is True and pushed["after"] == {"DefaultCurrency": "NZD"}


def test_a_push_sends_the_mapped_values_to_xero(
    api: TestClient, settings: Settings, xero: Any, instance: DagsterInstance, acme: str
) -> None:
    sandbox, served, org = xero
    put(
        api,
        acme,
        {
            "contacts": [
                {
                    "vrtx_field": "name",
                    "external_field": "Name",
                    "transform_type": "formula",
                    "transform_config": {"expression": 'concat(upper(last_name), ", ", first_name)'},
                    "direction": "push",
                },
                {"vrtx_field": "custom_fields.account", "external_field": "AccountNumber", "direction": "push"},
            ]
        },
    )
    contact = {
        "id": "crm-7",
        "name": "ignored by the mapping",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "custom_fields": {"account": "CRM-0007"},
    }
    response = api.post(
        "/api/v1/integrations/xero/push/contact",
        json={"operation": "create", "data": contact},
        headers={**bearer(acme), "Idempotency-Key": "map-1"},
    )
    assert response.status_code == 202, response.text
    for request in SENSOR.evaluate_tick(build_sensor_context(instance=instance)).run_requests or []:
        assert JOB.execute_in_process(run_config=request.run_config, instance=instance, tags=request.tags).success
    done = api.get(f"/api/v1/integrations/xero/push/{response.json()['id']}", headers=bearer(acme)).json()
    assert done["status"] == "done", done
    token = sandbox.issue_access_token([org])
    at_xero = httpx.get(
        f"{served.base_url}/api.xro/2.0/Contacts/{done['external_id']}",
        headers={"Authorization": f"Bearer {token}", "xero-tenant-id": org, "Accept": "application/json"},
    ).json()["Contacts"][0]
    assert at_xero["Name"] == "LOVELACE, Ada" and at_xero["AccountNumber"] == "CRM-0007"


def test_a_push_mapping_that_fails_fails_the_push_naming_it(
    api: TestClient, settings: Settings, xero: Any, instance: DagsterInstance, acme: str
) -> None:
    sandbox, _served, org = xero
    before = sandbox.count(org, "contacts")
    put(
        api,
        acme,
        {
            "contacts": [
                {
                    "vrtx_field": "custom_fields.discount",
                    "external_field": "Discount",
                    "transform_type": "formula",
                    "transform_config": {"expression": 'number(field("custom_fields.discount"))'},
                    "direction": "push",
                }
            ]
        },
    )
    response = api.post(
        "/api/v1/integrations/xero/push/contact",
        json={"operation": "create", "data": {"id": "crm-8", "name": "Bad", "custom_fields": {"discount": "lots"}}},
        headers={**bearer(acme), "Idempotency-Key": "map-2"},
    )
    for request in SENSOR.evaluate_tick(build_sensor_context(instance=instance)).run_requests or []:
        JOB.execute_in_process(run_config=request.run_config, instance=instance, tags=request.tags)
    failed = api.get(f"/api/v1/integrations/xero/push/{response.json()['id']}", headers=bearer(acme)).json()
    assert failed["status"] == "failed" and "mapping 0" in failed["error"] and "not a number" in failed["error"]
    assert sandbox.count(org, "contacts") == before
