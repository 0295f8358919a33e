"""The mappings API: read and replace per entity with versions, validation (422, nothing saved), preview on a
given record in both directions, the field lists, and tenant isolation."""

# ruff: noqa: F811 -- the Xero fixtures imported below are requested by name
from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers import bearer, make_tenant
from tests.xero.conftest import base_urls, connect_xero, oauth_clients, xero  # noqa: F401 -- fixtures
from vrtx_pipelines.config import Settings

URL = "/api/v1/integrations/xero/mappings"
WEBSITE = {"vrtx_field": "custom_fields.website", "external_field": "Website", "direction": "pull"}
FULL_NAME = {
    "vrtx_field": "name",
    "external_field": "Name",
    "transform_type": "formula",
    "transform_config": {"expression": 'concat(first_name, " ", last_name)'},
    "direction": "push",
}
STATUS = {
    "vrtx_field": "status",
    "external_field": "Status",
    "transform_type": "lookup",
    "transform_config": {"table": {"authorised": "SUBMITTED"}, "default": "DRAFT"},
    "direction": "push",
}


@pytest.fixture
def acme(api: TestClient, settings: Settings, xero: Any) -> str:
    token = make_tenant(settings, "acme")
    connect_xero(settings, "acme")
    return token


def put(api: TestClient, token: str, body: dict[str, Any], actor: str | None = None) -> Any:
    headers = {**bearer(token), **({"X-Actor": actor} if actor else {})}
    return api.put(URL, json={"mappings": body}, headers=headers)


def test_mappings_start_empty_for_every_entity(api: TestClient, acme: str) -> None:
    body = api.get(URL, headers=bearer(acme)).json()
    assert body["integration"] == "xero"
    assert set(body["entities"]) == {"contacts", "invoices", "payments", "products", "tax_rates", "accounts"}
    assert all(e == {"version": 0, "mappings": []} for e in body["entities"].values())


def test_a_put_replaces_an_entitys_mappings_and_records_who_changed_them(api: TestClient, acme: str) -> None:
    first = put(api, acme, {"contacts": [WEBSITE, FULL_NAME]}, actor="jane@crm.example")
    assert first.status_code == 200, first.text
    assert first.json()["changed"] == ["contacts"]
    assert first.json()["entities"]["contacts"]["version"] == 1
    saved = api.get(URL, params={"entity": "contacts"}, headers=bearer(acme)).json()["entities"]
    assert list(saved) == ["contacts"]
    assert [m["vrtx_field"] for m in saved["contacts"]["mappings"]] == ["custom_fields.website", "name"]
    assert saved["contacts"]["mappings"][1]["transform_config"] == FULL_NAME["transform_config"]

    again = put(api, acme, {"contacts": [WEBSITE, FULL_NAME]})
    assert again.json()["changed"] == [] and again.json()["entities"]["contacts"]["version"] == 1  # no change
    put(api, acme, {"contacts": [FULL_NAME], "invoices": [STATUS]})
    cleared = put(api, acme, {"contacts": []}).json()
    assert cleared["entities"]["contacts"] == {"version": 3, "mappings": []}

    versions = api.get(f"{URL}/versions", params={"entity": "contacts"}, headers=bearer(acme)).json()["versions"]
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert versions[2]["changed_by"] == "jane@crm.example"
    assert versions[0]["changed_by"].startswith("token:") and versions[0]["mappings"] == []
    assert [m["vrtx_field"] for m in versions[1]["mappings"]] == ["name"]
    everything = api.get(f"{URL}/versions", headers=bearer(acme)).json()["versions"]
    assert {(v["entity"], v["version"]) for v in everything} == {
        ("contacts", 1),
        ("contacts", 2),
        ("contacts", 3),
        ("invoices", 1),
    }


def test_invalid_mappings_are_refused_whole_and_nothing_is_saved(api: TestClient, acme: str) -> None:
    put(api, acme, {"contacts": [WEBSITE]})
    bad_formula = {**FULL_NAME, "transform_config": {"expression": "concat(first_name, last_name"}}
    response = put(
        api,
        acme,
        {
            "contacts": [FULL_NAME, {"vrtx_field": "nickname", "external_field": "Name"}],
            "invoices": [STATUS, bad_formula | {"vrtx_field": "reference", "external_field": "Reference"}],
        },
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_mappings"
    details = {(d["entity"], d["mapping"], d["field"]): d for d in error["details"]}
    assert ("contacts", 1, "vrtx_field") in details
    syntax = details[("invoices", 1, "transform_config.expression")]
    assert syntax["position"] == 28 and "expected ')'" in syntax["message"]
    state = api.get(URL, headers=bearer(acme)).json()["entities"]
    assert (
        state["contacts"]["version"] == 1 and state["contacts"]["mappings"][0]["vrtx_field"] == "custom_fields.website"
    )
    assert state["invoices"] == {"version": 0, "mappings": []}


@pytest.mark.parametrize(
    ("mapping", "fragment"),
    [
        ({"vrtx_field": "is_customer", "external_field": "Name", "direction": "pull"}, "cannot be copied"),
        (
            {**FULL_NAME, "transform_config": {"expression": '__import__("os").system("id")'}},
            "attribute access is not allowed",
        ),
        ({**FULL_NAME, "transform_config": {"expression": "shout(name)"}}, "unknown function 'shout'"),
        ({"vrtx_field": "name", "external_field": "Nmae"}, "no field 'Nmae'"),
    ],
)
def test_each_kind_of_bad_mapping_is_a_422_naming_it(api: TestClient, acme: str, mapping: Any, fragment: str) -> None:
    response = put(api, acme, {"contacts": [mapping]})
    assert response.status_code == 422
    (detail,) = response.json()["error"]["details"]
    assert detail["mapping"] == 0 and fragment in detail["message"]


def test_a_malformed_body_is_a_422_in_the_usual_shape(api: TestClient, acme: str) -> None:
    response = put(api, acme, {"contacts": [{"vrtx_field": "name", "external_field": "Name", "transform_type": "sql"}]})
    assert response.status_code == 422 and response.json()["error"]["code"] == "validation_failed"
    unknown = put(api, acme, {"widgets": [WEBSITE]})
    assert unknown.status_code == 422 and "widgets" in str(unknown.json()["error"]["details"])


def test_preview_shows_a_given_record_before_and_after_in_both_directions(api: TestClient, acme: str) -> None:
    mappings = [WEBSITE, FULL_NAME]
    pull = api.post(
        f"{URL}/preview",
        json={
            "entity": "contacts",
            "direction": "pull",
            "mappings": mappings,
            "record": {"ContactID": "c-1", "Name": "Ada Ltd", "Website": "ada.example"},
        },
        headers=bearer(acme),
    )
    assert pull.status_code == 200, pull.text
    body = pull.json()
    assert body["mappings"] == "given" and body["push"] is None
    assert "custom_fields" not in body["pull"]["before"]
    assert body["pull"]["after"]["custom_fields"] == {"website": "ada.example"}
    assert body["pull"]["changed"] == ["custom_fields"] and body["pull"]["sample"] is False

    push = api.post(
        f"{URL}/preview",
        json={
            "entity": "contacts",
            "direction": "push",
            "mappings": mappings,
            "record": {"name": "x", "first_name": "Ada", "last_name": "Lovelace"},
        },
        headers=bearer(acme),
    ).json()["push"]
    assert push["before"]["name"] == "x" and push["after"] == {"Name": "Ada Lovelace"} and push["changed"] == ["Name"]


def test_preview_uses_the_saved_mappings_by_default(api: TestClient, acme: str) -> None:
    put(api, acme, {"invoices": [STATUS]})
    body = api.post(
        f"{URL}/preview",
        json={"entity": "invoices", "direction": "push", "record": {"status": "authorised"}},
        headers=bearer(acme),
    ).json()
    assert body["mappings"] == "saved" and body["push"]["after"] == {"Status": "SUBMITTED"}


def test_preview_errors_are_422_naming_the_mapping(api: TestClient, acme: str) -> None:
    number = {**FULL_NAME, "external_field": "Website", "transform_config": {"expression": "text(number(name))"}}
    response = api.post(
        f"{URL}/preview",
        json={"entity": "contacts", "direction": "push", "mappings": [number], "record": {"name": "Ada"}},
        headers=bearer(acme),
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "mapping_failed" and error["details"][0]["mapping"] == 0
    assert "not a number" in error["message"]
    not_xero = api.post(
        f"{URL}/preview",
        json={"entity": "invoices", "direction": "pull", "record": {"InvoiceID": "i-1"}},
        headers=bearer(acme),
    )
    assert not_xero.status_code == 422 and "record" in str(not_xero.json()["error"]["details"])
    no_direction = api.post(f"{URL}/preview", json={"entity": "contacts", "record": {}}, headers=bearer(acme))
    assert no_direction.status_code == 422


def test_preview_without_any_synced_record_says_so(api: TestClient, acme: str) -> None:
    response = api.post(f"{URL}/preview", json={"entity": "contacts"}, headers=bearer(acme))
    assert response.status_code == 404 and response.json()["error"]["code"] == "no_sample"


def test_the_field_lists_name_both_sides_with_types(api: TestClient, acme: str) -> None:
    body = api.get(f"{URL}/fields", params={"entity": "invoices"}, headers=bearer(acme)).json()["entities"]
    status = next(f for f in body["invoices"]["vrtx_fields"] if f["name"] == "status")
    assert status["type"] == "string" and "voided" in status["choices"]
    assert "external_id" not in {f["name"] for f in body["invoices"]["vrtx_fields"]}
    assert body["invoices"]["external_fields"]["Contact.Name"] == "string"
    assert body["invoices"]["external_fields"]["Total"] == "number"


def test_a_tenant_never_sees_or_changes_another_tenants_mappings(
    api: TestClient, settings: Settings, acme: str
) -> None:
    put(api, acme, {"contacts": [WEBSITE]}, actor="alice")
    beta = make_tenant(settings, "beta")
    assert api.get(URL, headers=bearer(beta)).json()["error"]["code"] == "not_connected"
    assert put(api, beta, {"contacts": []}).status_code == 404
    connect_xero(settings, "beta")
    own = api.get(URL, headers=bearer(beta)).json()["entities"]["contacts"]
    assert own == {"version": 0, "mappings": []}
    assert api.get(f"{URL}/versions", headers=bearer(beta)).json()["versions"] == []
    put(api, beta, {"contacts": [FULL_NAME]}, actor="bob")
    mine = api.get(URL, headers=bearer(acme)).json()["entities"]["contacts"]
    assert mine["version"] == 1 and mine["mappings"][0]["vrtx_field"] == "custom_fields.website"
    versions = api.get(f"{URL}/versions", headers=bearer(acme)).json()["versions"]
    assert [v["changed_by"] for v in versions] == ["alice"]
    assert api.get(URL, headers={"Authorization": "Bearer nope"}).status_code == 401
