"""Messages and meetings matched to CRM contacts by address, end to end: synced from the Google sandbox, read on
each contact's activity timeline whatever spelling the mailbox used, re-matched when contacts change, never across
tenants."""

from __future__ import annotations

from typing import Any

import pytest
from dagster import DagsterInstance
from fastapi.testclient import TestClient

from providers.google_workspace.sandbox_credentials import DEMO_CONTACTS, DEMO_MAILBOX
from tests.google_workspace.conftest import Google, by_id, sync
from tests.helpers import bearer, make_tenant
from vrtx_pipelines.config import Settings
from vrtx_pipelines.records.addresses import address_key

pytestmark = pytest.mark.dagster


def put(api: TestClient, token: str, contact_id: str, name: str, *emails: str) -> Any:
    return api.put(f"/api/v1/contacts/{contact_id}", json={"name": name, "emails": list(emails)}, headers=bearer(token))


def timeline(api: TestClient, token: str, contact_id: str, limit: int = 200) -> list[dict[str, Any]]:
    items, cursor = [], None
    while True:
        params = {"limit": str(limit), **({"cursor": cursor} if cursor else {})}
        answer = api.get(f"/api/v1/contacts/{contact_id}/activity", params=params, headers=bearer(token))
        assert answer.status_code == 200, answer.text
        page = answer.json()
        items += page["activity"]
        if not page["next_cursor"]:
            return items
        cursor = page["next_cursor"]


def spellings(item: dict[str, Any]) -> set[str]:
    data = item["data"]
    people = [data.get("sender"), *data.get("to", []), *data.get("cc", []), data.get("organizer"),
              *data.get("attendees", [])]  # fmt: skip
    return {person["address"] for person in people if person}


def test_activity_finds_its_contacts_whatever_the_spelling_and_follows_their_changes(
    api: TestClient, settings: Settings, google: Google, instance: DagsterInstance, connected: str
) -> None:
    sync(settings, instance, ["messages", "events"])
    emma, mia, olivia = (dict(DEMO_CONTACTS)[n] for n in ("Emma Williams", "Mia Hernandez", "Olivia Smith"))
    assert put(api, connected, "c-emma", "Emma Williams", emma).status_code == 200
    assert put(api, connected, "c-mia", "Mia Hernandez", mia).status_code == 200

    for contact, address in (("c-emma", emma), ("c-mia", mia)):
        items = timeline(api, connected, contact)
        assert items and all(address_key(address) in {address_key(s) for s in spellings(i)} for i in items)
        # The mailbox wrote these under other spellings (+tag and case; Gmail's dots), and they still match.
        assert any(address not in spellings(item) for item in items), contact
        assert {i["entity"] for i in items} <= {"messages", "events"} and items[0]["integration"] == "google_workspace"
        times = [i["at"] for i in items]
        assert times == sorted(times, reverse=True)  # newest first
    paged = timeline(api, connected, "c-emma", limit=1)
    assert [i["external_id"] for i in paged] == [i["external_id"] for i in timeline(api, connected, "c-emma")]

    # A contact re-addressed matches its new address's activity at once, and no longer its old one's.
    assert put(api, connected, "c-emma", "Emma Williams", olivia).status_code == 200
    moved = timeline(api, connected, "c-emma")
    assert moved and all(address_key(olivia) in {address_key(s) for s in spellings(i)} for i in moved)
    meetings = [i for i in moved if i["entity"] == "events"]
    assert meetings and all("attendee" in i["roles"] or "organizer" in i["roles"] for i in meetings)

    # A message deleted in Gmail leaves the timeline after the next sync.
    gone = next(i for i in moved if i["entity"] == "messages")
    google.sandbox.delete_message(DEMO_MAILBOX, gone["external_id"])
    sync(settings, instance, ["messages"])
    assert by_id(api, connected, "messages")[gone["external_id"]]["deleted"] is True
    assert gone["external_id"] not in {i["external_id"] for i in timeline(api, connected, "c-emma")}

    assert api.delete("/api/v1/contacts/c-emma", headers=bearer(connected)).status_code == 204
    assert api.get("/api/v1/contacts/c-emma/activity", headers=bearer(connected)).status_code == 404


def test_another_tenant_with_the_same_contact_sees_none_of_this_tenants_activity(
    api: TestClient, settings: Settings, google: Google, instance: DagsterInstance, connected: str
) -> None:
    sync(settings, instance, ["messages"])
    olivia = dict(DEMO_CONTACTS)["Olivia Smith"]
    put(api, connected, "c-1", "Olivia Smith", olivia)
    assert timeline(api, connected, "c-1")
    other = make_tenant(settings, "beta")
    assert api.get("/api/v1/contacts/c-1", headers=bearer(other)).status_code == 404
    put(api, other, "c-1", "Olivia Smith", olivia)
    assert timeline(api, other, "c-1") == []
    listed = api.get("/api/v1/contacts", headers=bearer(other)).json()["contacts"]
    assert [c["id"] for c in listed] == ["c-1"] and listed[0]["emails"] == [olivia]


def test_contacts_refuse_what_is_not_an_address_and_bound_every_input(api: TestClient, settings: Settings) -> None:
    token = make_tenant(settings, "acme")
    bad = put(api, token, "c-1", "Ann", "not-an-address")
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_failed"
    assert put(api, token, "x" * 101, "Ann", "ann@example.com").status_code == 422
    assert (
        api.put("/api/v1/contacts/c-1", json={"emails": ["a@example.com"] * 21}, headers=bearer(token)).status_code
        == 422
    )
    for cursor in ("junk", "dDE6OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5fDE="):
        put(api, token, "c-1", "Ann", "ann@example.com")
        answer = api.get("/api/v1/contacts/c-1/activity", params={"cursor": cursor}, headers=bearer(token))
        assert answer.status_code == 422, answer.text
    assert api.get("/api/v1/contacts", params={"cursor": "azE6OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5"},
                   headers=bearer(token)).status_code == 422  # fmt: skip
    bulk = [{"id": f"c-{n}", "name": f"Person {n}", "emails": [f"person{n}@example.com"]} for n in range(1000)]
    assert api.post("/api/v1/contacts/bulk", json={"contacts": bulk}, headers=bearer(token)).json() == {
        "upserted": 1000
    }
    too_many = [*bulk, {"id": "c-x", "emails": []}]
    assert api.post("/api/v1/contacts/bulk", json={"contacts": too_many}, headers=bearer(token)).status_code == 422
    twice = [bulk[0], bulk[0]]
    assert api.post("/api/v1/contacts/bulk", json={"contacts": twice}, headers=bearer(token)).status_code == 422
