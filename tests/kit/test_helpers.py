"""The kit's small helpers for mappers and push handlers."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from providers.base import PushRequest
from providers.errors import ProviderRejected
from providers.kit.pushes import (
    UnlinkedReference,
    canonical_model,
    create_or_update,
    linked,
    outcome,
    require_link,
    validated,
    with_overrides,
    written_record,
)
from providers.kit.signatures import base64_signature_matches, hex_signature_matches, hmac_sha256, unverified_claims
from providers.kit.values import (
    calendar_date,
    decimal,
    iso_milliseconds,
    json_number,
    records,
    required,
    setting,
    text,
    timestamp,
    uuid_text,
)
from providers.schema import conflict_settings
from providers.xero.push import PUSHES
from vrtx_pipelines.records.canonical import Contact, content_hash


def request(operation: str = "create", payload: dict[str, object] | None = None) -> PushRequest:
    links = {("contact", "c-1"): "ext-1"}
    return PushRequest(
        "contact", operation, payload or {"id": "c-1", "name": "Ada"}, None, "k", {}, lambda e, i: links.get((e, i))
    )


def test_value_coercions() -> None:
    assert (text("  Ada "), text(""), text(None), text(7)) == ("Ada", None, None, "7")
    assert decimal(0.1) == Decimal("0.1") and decimal("") is None and decimal(Decimal("2.50")) == Decimal("2.50")
    with pytest.raises(TypeError):
        decimal(True)
    assert records([{"a": 1}, "x", None, {"b": 2}]) == [{"a": 1}, {"b": 2}] and records("nope") == []
    with pytest.raises(ValueError, match="the record has no ContactID"):
        required({"ContactID": " "}, "ContactID")
    assert (json_number(Decimal("4")), json_number(Decimal("12.50"))) == (4, 12.5)
    assert (setting({"a": " 200 "}, "a"), setting({"a": "  "}, "a"), setting({}, "a")) == ("200", None, None)


def test_push_mappings_are_set_over_the_element_by_dotted_path() -> None:
    element = {"Name": "Ada", "Contact": {"ContactID": "x"}}

    merged = with_overrides(element, {"Reference": "PO 9", "Contact.Name": "Ada Ltd", "Branding.Theme.Id": "t"})

    assert merged == {
        "Name": "Ada",
        "Contact": {"ContactID": "x", "Name": "Ada Ltd"},
        "Reference": "PO 9",
        "Branding": {"Theme": {"Id": "t"}},
    }
    assert element == {"Name": "Ada", "Contact": {"ContactID": "x"}} and with_overrides(element, {}) is element


def test_writes_are_checked_and_references_resolved_through_the_links() -> None:
    assert canonical_model(PUSHES, request(), "Xero") is Contact
    with pytest.raises(ProviderRejected, match="Xero cannot approve a contact"):
        canonical_model(PUSHES, request("approve"), "Xero")
    with pytest.raises(ProviderRejected, match="not valid: 1 field error"):
        validated(Contact, request(payload={"id": "c-1"}))
    assert linked(request(), "contact", "c-1", "invoice's contact", "Xero") == "ext-1"
    with pytest.raises(UnlinkedReference, match=r"invoice's contact \(VRTX id c-9\) is not linked to a Xero contact"):
        linked(request(), "contact", "c-9", "invoice's contact", "Xero")


def test_an_outcome_carries_the_canonical_record_its_hash_and_its_version() -> None:
    model = Contact(external_id="ext-1", name="Ada", updated_at=datetime(2026, 5, 1, 9, 30, tzinfo=UTC))

    written = outcome("ext-1", model, {"ContactID": "ext-1"}, {"ContactID": "ext-1"})

    assert written.remote_hash == content_hash(dict(written.canonical or {}))
    assert (
        written.remote_version == "2026-05-01T09:30:00Z"
        and written.response_sample["updated_at"] == "2026-05-01T09:30:00Z"
    )


def test_two_way_sync_settings_name_the_provider_the_entity_and_its_fields() -> None:
    settings = conflict_settings("Example", ["name", "email"], entity="customer")

    assert settings["conflict_policy"]["title"] == "When a customer changed in VRTX and in Example"
    assert settings["conflict_policy"]["default"] == "latest_wins"
    assert settings["conflict_fields"]["propertyNames"] == {"enum": ["name", "email"]}


def test_timestamps_and_dates_are_aware_utc() -> None:
    assert timestamp("2019-11-14T18:10:38Z") == datetime(2019, 11, 14, 18, 10, 38, tzinfo=UTC)
    assert timestamp("2018-10-20T00:00:00") == datetime(2018, 10, 20, tzinfo=UTC)  # no offset: UTC
    assert timestamp("2018-10-20T12:00:00+13:00") == datetime(2018, 10, 19, 23, tzinfo=UTC)
    assert timestamp(date(2020, 2, 29)) == datetime(2020, 2, 29, tzinfo=UTC)
    assert timestamp("") is None and timestamp(None) is None
    assert timestamp("epoch:0", parse=lambda _: datetime(1970, 1, 1, tzinfo=UTC)) == datetime(1970, 1, 1, tzinfo=UTC)
    with pytest.raises(TypeError):
        timestamp(17)
    assert calendar_date("2018-10-20T00:00:00Z") == date(2018, 10, 20)
    assert calendar_date(date(2001, 1, 1)) == date(2001, 1, 1)
    assert iso_milliseconds(datetime(2024, 5, 1, 21, 30, 0, 123456)) == "2024-05-01T21:30:00.123+00:00"


def test_hmac_signatures_compare_in_constant_time_and_refuse_malformed_base64() -> None:
    digest = hmac_sha256("key", b'{"events":[]}')

    assert base64_signature_matches(base64.b64encode(digest).decode() + "\n", digest)
    assert not base64_signature_matches(base64.b64encode(b"other").decode(), digest)
    assert not base64_signature_matches("not base64!", digest)


def test_hex_signatures_compare_in_constant_time_and_refuse_malformed_hex() -> None:
    digest = hmac_sha256("whsec_key", b"1700000000.{}")

    assert hex_signature_matches(digest.hex().upper(), digest)
    assert not hex_signature_matches(hmac_sha256("other", b"").hex(), digest)
    assert not hex_signature_matches("zz" * 32, digest)


def test_a_jwts_claims_are_read_and_anything_else_gives_none() -> None:
    claims = base64.urlsafe_b64encode(json.dumps({"authentication_event_id": "e-1"}).encode()).decode().rstrip("=")

    assert unverified_claims(f"h.{claims}.s") == {"authentication_event_id": "e-1"}
    assert unverified_claims("opaque-token") == {} and unverified_claims("a.%%%.c") == {}


def test_a_linked_record_is_updated_an_unlinked_one_created_and_an_unlinked_update_refused() -> None:
    def save(operation: str, external_id: str | None) -> str:
        write = replace(request(operation), external_id=external_id)
        return create_or_update(write, "Xero", create=lambda: "created", update=lambda linked: f"updated {linked}")

    assert save("create", "ext-1") == "updated ext-1"  # a retried create of a record linked meanwhile
    assert save("upsert", None) == "created"
    with pytest.raises(UnlinkedReference, match="cannot be updated: it is not linked to Xero yet"):
        save("update", None)
    assert require_link(replace(request("archive"), external_id="ext-1"), "Xero") == "ext-1"
    with pytest.raises(UnlinkedReference, match="cannot be archived: it is not linked to Xero yet"):
        require_link(request("archive"), "Xero")


def test_uuid_ids_are_normalised_and_anything_else_refused() -> None:
    assert uuid_text("{5CC8CF28-567E-4D43-B287-687CFCAEC47C}") == "5cc8cf28-567e-4d43-b287-687cfcaec47c"
    assert uuid_text("not-a-guid") is None and uuid_text("") is None


def test_the_written_record_is_the_object_or_the_first_of_a_list() -> None:
    assert written_record({"Contacts": [{"ContactID": "a"}, {"ContactID": "b"}]}, "Contacts", "Xero") == {
        "ContactID": "a"
    }
    assert written_record({"Customer": {"Id": "1"}}, "Customer", "QuickBooks") == {"Id": "1"}
    with pytest.raises(ProviderRejected, match="Xero's answer has no Contacts record"):
        written_record({"Contacts": []}, "Contacts", "Xero")
