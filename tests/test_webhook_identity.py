"""Webhook dedup on the event's normalised identity: the provider's event id where it sends one, else the
organisation, event type, resource and the parsed instant, so a redelivery re-formatted (Xero's eventDateUtc with
and without a `Z`, an offset, ids in another case) is still one event. SQLite and PostgreSQL."""
# ruff: noqa: F811 -- fixtures are imported from tests/test_webhooks.py and tests/xero/conftest.py

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from providers.base import WebhookEvent
from tests.test_webhooks import (  # noqa: F401 -- fixtures
    KEY,
    Xero,
    acme,
    api,
    inbox,
    oauth_clients,
    post,
    xero_event,
    xero_payload,
)
from tests.xero.conftest import base_urls, xero  # noqa: F401 -- fixtures
from vrtx_pipelines.config import Settings
from vrtx_pipelines.webhooks.inbox import event_identity


def formats(moment: datetime) -> list[str]:
    """One instant as Xero (and a careless proxy) may write it."""
    plain = moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    return [plain, plain + "Z", plain + "+00:00", (moment + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
            + "+02:00", plain + "000"]  # fmt: skip


def test_the_same_xero_event_with_its_date_written_differently_is_stored_once(
    api: TestClient, settings: Settings, xero: Xero, acme: str
) -> None:
    org = xero[2]
    moment = datetime.now(UTC).replace(microsecond=123000) - timedelta(minutes=1)
    for when in formats(moment):
        answer = post(api, xero_payload(org, {**xero_event(org, "INVOICE", "inv-1"), "eventDateUtc": when}), KEY)
        assert answer.status_code == 200, answer.text
    rows = inbox(settings)
    assert [row.payload["external_id"] for row in rows] == ["inv-1"]


def test_re_formatted_copies_in_one_body_are_one_event_and_other_instants_stay_distinct(
    api: TestClient, settings: Settings, xero: Xero, acme: str
) -> None:
    org = xero[2]
    moment = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    plain = moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    later = (moment + timedelta(milliseconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    base = xero_event(org, "INVOICE", "inv-1")
    body = xero_payload(
        org,
        {**base, "eventDateUtc": plain},
        {**base, "eventDateUtc": plain + "Z", "resourceId": "INV-1"},  # Xero's GUIDs carry no case
        {**base, "eventDateUtc": later},  # a second update of the same invoice
        {**base, "eventDateUtc": plain, "eventType": "CREATE"},
    )
    assert post(api, body, KEY).status_code == 200
    assert len(inbox(settings)) == 3


def event(**fields: object) -> WebhookEvent:
    values: dict[str, object] = {
        "event_id": None,
        "event_type": "invoice.update",
        "entity": "invoices",
        "external_id": "inv-1",
        "external_tenant_id": "org-1",
        "occurred_at": datetime(2026, 6, 21, 1, 15, 39, 902000, tzinfo=UTC),
    }
    return WebhookEvent(**{**values, **fields})  # type: ignore[arg-type]


def test_the_providers_own_event_id_is_the_identity_where_there_is_one() -> None:
    assert event_identity(event(event_id="evt_123")) == "evt_123"
    assert event_identity(event(event_id="evt_123", external_id="other")) == "evt_123"
    assert event_identity(event(event_id="evt_123")) != event_identity(event(event_id="evt_124"))


@pytest.mark.parametrize(
    "other",
    [
        {"external_id": "inv-2"},
        {"external_tenant_id": "org-2"},
        {"event_type": "invoice.create"},
        {"occurred_at": datetime(2026, 6, 21, 1, 15, 39, 903000, tzinfo=UTC)},
    ],
)
def test_a_derived_identity_tells_apart_what_differs(other: dict[str, object]) -> None:
    assert event_identity(event()) != event_identity(event(**other))


def test_a_derived_identity_is_the_same_for_the_same_instant_in_any_offset_and_ids_in_any_case() -> None:
    moment = datetime(2026, 6, 21, 1, 15, 39, 902000, tzinfo=UTC)
    in_sydney = moment.astimezone(timezone(timedelta(hours=10)))
    assert event_identity(event(occurred_at=moment)) == event_identity(event(occurred_at=in_sydney))
    assert event_identity(event()) == event_identity(event(external_id="INV-1", external_tenant_id="ORG-1"))
