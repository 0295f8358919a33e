"""Mappings compiled and applied: every transform type in both directions, and every way a mapping is refused."""

from __future__ import annotations

from typing import Any

import pytest

from providers.xero.fields import RECORD_FIELDS
from providers.xero.mappers import to_contact, to_invoice
from vrtx_pipelines.mapping.engine import Catalog, EntityMappings, FieldMappingSpec, InvalidMappings, compile_mappings

XERO_CONTACT = {
    "ContactID": "c-1",
    "Name": "Ada Ltd",
    "FirstName": "Ada",
    "LastName": "Lovelace",
    "EmailAddress": "ada@example.com",
    "Website": "https://ada.example.com",
    "ContactStatus": "ACTIVE",
    "DefaultCurrency": "nzd",
}
XERO_INVOICE = {
    "InvoiceID": "i-1",
    "Status": "AUTHORISED",
    "Contact": {"ContactID": "c-1", "Name": "Ada Ltd"},
    "Date": "2024-03-09T00:00:00",
    "CurrencyCode": "NZD",
    "Reference": "PO-77",
    "Total": 115.5,
    "LineItems": [{"Description": "Work", "Quantity": 1, "UnitAmount": 100, "TaxType": "OUTPUT2"}],
}
CANONICAL_CONTACT = {"id": "crm-1", "name": "Ada Ltd", "first_name": "Ada", "last_name": "Lovelace", "phone": "09 1"}


def compiled(entity: str, *specs: dict[str, Any]) -> EntityMappings:
    return compile_mappings(entity, [FieldMappingSpec(**spec) for spec in specs], Catalog(RECORD_FIELDS[entity]))


def refused(entity: str, *specs: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(InvalidMappings) as caught:
        compiled(entity, *specs)
    return [dict(detail) for detail in caught.value.details]


def pulled(mappings: EntityMappings, raw: dict[str, Any]) -> dict[str, Any]:
    mapper = to_contact if mappings.entity == "contacts" else to_invoice
    record, problems = mappings.apply_pull(raw, mapper(raw))
    assert problems == []
    return record.model_dump(mode="json", exclude_none=True)


def test_direct_mapping_copies_both_ways() -> None:
    mappings = compiled("contacts", {"vrtx_field": "custom_fields.website", "external_field": "Website"})
    assert pulled(mappings, XERO_CONTACT)["custom_fields"] == {"website": "https://ada.example.com"}
    overrides, problems = mappings.push_overrides({**CANONICAL_CONTACT, "custom_fields": {"website": "w.example"}})
    assert overrides == {"Website": "w.example"} and problems == []


def test_direct_mapping_to_a_canonical_field_replaces_the_mappers_value() -> None:
    mappings = compiled("invoices", {"vrtx_field": "number", "external_field": "Reference", "direction": "pull"})
    assert pulled(mappings, XERO_INVOICE)["number"] == "PO-77"
    assert mappings.push == []


def test_nested_provider_fields_are_dotted_paths() -> None:
    mappings = compiled("invoices", {"vrtx_field": "custom_fields.customer", "external_field": "Contact.Name"})
    assert pulled(mappings, XERO_INVOICE)["custom_fields"] == {"customer": "Ada Ltd"}


def test_lookup_maps_values_with_a_default_and_inverts_for_pulls() -> None:
    xero_to_crm = {"DRAFT": "draft", "AUTHORISED": "authorised", "PAID": "paid"}
    mappings = compiled(
        "invoices",
        {
            "vrtx_field": "custom_fields.stage",
            "external_field": "Status",
            "transform_type": "lookup",
            "transform_config": {"table": {"won": "AUTHORISED", "open": "DRAFT"}, "default": "DRAFT"},
        },
        {
            "vrtx_field": "status",
            "external_field": "InvoiceNumber",
            "transform_type": "lookup",
            "direction": "pull",
            "transform_config": {"table": xero_to_crm, "case_insensitive": True},
        },
    )
    assert mappings.push_overrides({"custom_fields": {"stage": "won"}})[0] == {"Status": "AUTHORISED"}
    assert mappings.push_overrides({"custom_fields": {"stage": "lost"}})[0] == {"Status": "DRAFT"}  # default
    record = pulled(mappings, {**XERO_INVOICE, "InvoiceNumber": "paid"})
    assert record["custom_fields"] == {"stage": "won"}  # AUTHORISED read back through the inverted table
    assert record["status"] == "paid"  # case-insensitive match


def test_lookup_without_a_match_or_default_yields_no_value() -> None:
    mappings = compiled(
        "contacts",
        {
            "vrtx_field": "company",
            "external_field": "DefaultCurrency",
            "transform_type": "lookup",
            "direction": "pull",
            "transform_config": {"table": {"USD": "Yankee Co"}},
        },
    )
    unmatched: list[int] = []
    record, problems = mappings.apply_pull(XERO_CONTACT, to_contact(XERO_CONTACT), unmatched)
    assert record.model_dump()["company"] == "Ada Ltd" and problems == [] and unmatched == [0]


def test_formula_runs_push_side_and_its_inverse_on_pulls() -> None:
    mappings = compiled(
        "contacts",
        {
            "vrtx_field": "custom_fields.display",
            "external_field": "Name",
            "transform_type": "formula",
            "transform_config": {"expression": 'concat(first_name, " ", last_name)', "inverse": "upper(Name)"},
        },
    )
    assert mappings.push_overrides(CANONICAL_CONTACT)[0] == {"Name": "Ada Lovelace"}
    assert pulled(mappings, XERO_CONTACT)["custom_fields"] == {"display": "ADA LTD"}


def test_formula_numbers_reach_the_provider_as_json_numbers() -> None:
    mappings = compiled(
        "payments",
        {
            "vrtx_field": "amount",
            "external_field": "Amount",
            "transform_type": "formula",
            "direction": "push",
            "transform_config": {"expression": "round(amount * 1.1, 2)"},
        },
    )
    payment = {"invoice_id": "inv-1", "amount": "10.00", "date": "2024-03-09"}
    assert mappings.push_overrides(payment)[0] == {"Amount": 11.0}


def test_a_pull_mapping_that_fails_on_a_record_leaves_the_field_and_says_why() -> None:
    mappings = compiled(
        "contacts",
        {
            "vrtx_field": "name",
            "external_field": "Website",
            "transform_type": "formula",
            "direction": "pull",
            "transform_config": {"expression": "text(number(Website))"},
        },
    )
    record, problems = mappings.apply_pull(XERO_CONTACT, to_contact(XERO_CONTACT))
    assert record.model_dump()["name"] == "Ada Ltd"
    (problem,) = problems
    assert problem.mapping == 0 and problem.field == "name" and "not a number" in problem.message


def test_a_required_field_cannot_be_emptied_by_a_mapping() -> None:
    mappings = compiled("contacts", {"vrtx_field": "name", "external_field": "TaxNumber", "direction": "pull"})
    record, problems = mappings.apply_pull(XERO_CONTACT, to_contact(XERO_CONTACT))
    assert record.model_dump()["name"] == "Ada Ltd" and "required" in problems[0].message


def test_inactive_mappings_are_kept_but_not_applied() -> None:
    mappings = compiled("contacts", {"vrtx_field": "company", "external_field": "Website", "is_active": False})
    assert mappings.pull == [] and mappings.push == []


@pytest.mark.parametrize(
    ("spec", "field", "fragment"),
    [
        ({"vrtx_field": "nickname", "external_field": "Name"}, "vrtx_field", "unknown field 'nickname'"),
        ({"vrtx_field": "Name!", "external_field": "Name"}, "vrtx_field", "unknown field"),
        ({"vrtx_field": "external_id", "external_field": "Name"}, "vrtx_field", "unknown field 'external_id'"),
        ({"vrtx_field": "addresses", "external_field": "Name"}, "vrtx_field", "list or object"),
        ({"vrtx_field": "name", "external_field": "Nmae"}, "external_field", "no field 'Nmae'"),
        ({"vrtx_field": "name", "external_field": "Name[0]"}, "external_field", "not a field path"),
        ({"vrtx_field": "name", "external_field": "Phones"}, "external_field", "list or object"),
        ({"vrtx_field": "is_supplier", "external_field": "Name"}, "transform_type", "cannot be copied"),
        ({"vrtx_field": "name", "external_field": "IsSupplier"}, "transform_type", "cannot be copied"),
        (
            {"vrtx_field": "name", "external_field": "Name", "transform_type": "lookup", "transform_config": {}},
            "transform_config.table",
            "non-empty table",
        ),
        (
            {
                "vrtx_field": "is_supplier",
                "external_field": "IsSupplier",
                "transform_type": "lookup",
                "direction": "push",
                "transform_config": {"table": {"true": "yes"}},
            },
            "transform_config.table.true",
            "takes boolean, not string",
        ),
        (
            {
                "vrtx_field": "name",
                "external_field": "Name",
                "transform_type": "lookup",
                "transform_config": {"table": {"a": "X", "b": "X"}},
            },
            "transform_config.table",
            "cannot tell them apart",
        ),
        (
            {
                "vrtx_field": "name",
                "external_field": "Name",
                "transform_type": "formula",
                "transform_config": {"expression": "upper(name)"},
            },
            "transform_config.inverse",
            "needs an 'inverse'",
        ),
        (
            {
                "vrtx_field": "name",
                "external_field": "Discount",
                "transform_type": "formula",
                "direction": "push",
                "transform_config": {"expression": "upper(name)"},
            },
            "transform_config.expression",
            "gives string, but Discount takes number",
        ),
        (
            {
                "vrtx_field": "name",
                "external_field": "Name",
                "transform_type": "formula",
                "direction": "pull",
                "transform_config": {"expression": 'concat(FirstName, field("Contact.Nmae"))'},
            },
            "transform_config.expression",
            "no field 'Contact.Nmae'",
        ),
    ],
)
def test_invalid_mappings_are_refused_naming_the_mapping_and_field(
    spec: dict[str, Any], field: str, fragment: str
) -> None:
    ok = {"vrtx_field": "email", "external_field": "EmailAddress"}
    (detail,) = refused("contacts", ok, spec)
    assert detail["mapping"] == 1 and detail["field"] == field and detail["entity"] == "contacts"
    assert fragment in detail["message"]


def test_a_formula_error_carries_its_character_position() -> None:
    (detail,) = refused(
        "contacts",
        {
            "vrtx_field": "name",
            "external_field": "Name",
            "transform_type": "formula",
            "direction": "push",
            "transform_config": {"expression": "concat(first_name, nope(last_name))"},
        },
    )
    assert detail["position"] == 19 and "unknown function 'nope'" in detail["message"]


def test_an_invoice_status_lookup_only_yields_statuses_the_crm_knows() -> None:
    (detail,) = refused(
        "invoices",
        {
            "vrtx_field": "status",
            "external_field": "Status",
            "transform_type": "lookup",
            "direction": "pull",
            "transform_config": {"table": {"AUTHORISED": "approved"}},
        },
    )
    assert "'approved' is not a valid status" in detail["message"]


def test_two_mappings_cannot_write_the_same_field() -> None:
    details = refused(
        "contacts",
        {"vrtx_field": "company", "external_field": "Name", "direction": "pull"},
        {"vrtx_field": "company", "external_field": "Website", "direction": "pull"},
    )
    assert details[0]["mapping"] == 1 and "already set by mapping 0" in details[0]["message"]


def test_every_problem_is_reported_at_once() -> None:
    details = refused(
        "contacts",
        {"vrtx_field": "nickname", "external_field": "Name"},
        {"vrtx_field": "name", "external_field": "Nope"},
    )
    assert [d["mapping"] for d in details] == [0, 1]


def test_unknown_entities_are_refused() -> None:
    with pytest.raises(InvalidMappings, match="per entity"):
        compile_mappings("widgets", [], Catalog(None))


def test_without_a_provider_field_list_external_fields_are_checked_for_syntax_only() -> None:
    mappings = compile_mappings(
        "contacts", [FieldMappingSpec(vrtx_field="company", external_field="Anything.Nested")], Catalog(None)
    )
    assert mappings.push_overrides({"name": "A", "company": "B"})[0] == {"Anything.Nested": "B"}
