"""Xero -> canonical mappers, on records shaped like the Accounting API's own examples (xero-accounting.yaml)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from providers.kit.ms_json_dates import convert_ms_json_dates, parse_ms_json_date
from providers.xero.dates import format_if_modified_since, parse_date_string, to_date
from providers.xero.mappers import (
    MAPPERS,
    UnmappableRecord,
    to_account,
    to_contact,
    to_invoice,
    to_payment,
    to_product,
    to_tax_rate,
)
from providers.xero.source import STREAMS
from vrtx_pipelines.records.canonical import Address

ENTITIES = tuple(stream.name for stream in STREAMS)


def contact_katherine() -> dict[str, Any]:
    # GET /Contacts example from the spec, trimmed.
    return {
        "ContactID": "5cc8cf28-567e-4d43-b287-687cfcaec47c",
        "ContactStatus": "ACTIVE",
        "Name": "Katherine Warren",
        "FirstName": "Katherine",
        "LastName": "Warren",
        "CompanyNumber": "NumberBusiness1234",
        "EmailAddress": "kat.warren@clampett.com",
        "BankAccountDetails": "",
        "TaxNumber": "",
        "Addresses": [
            {"AddressType": "STREET", "City": "", "Region": "", "PostalCode": "", "Country": ""},
            {
                "AddressType": "POBOX",
                "AddressLine1": "",
                "AddressLine2": "",
                "AddressLine3": "",
                "AddressLine4": "",
                "City": "Palo Alto",
                "Region": "CA",
                "PostalCode": "94020",
                "Country": "United States",
            },
        ],
        "Phones": [
            {"PhoneType": "DDI", "PhoneNumber": "", "PhoneAreaCode": "", "PhoneCountryCode": ""},
            {"PhoneType": "DEFAULT", "PhoneNumber": "847-1294", "PhoneAreaCode": "(626)", "PhoneCountryCode": ""},
            {"PhoneType": "FAX", "PhoneNumber": "", "PhoneAreaCode": "", "PhoneCountryCode": ""},
            {"PhoneType": "MOBILE", "PhoneNumber": "555-1212", "PhoneAreaCode": "415", "PhoneCountryCode": "1"},
        ],
        "UpdatedDateUTC": "/Date(1551399321043+0000)/",
        "ContactGroups": [],
        "IsSupplier": False,
        "IsCustomer": True,
        "ContactPersons": [],
        "HasAttachments": False,
        "HasValidationErrors": False,
    }


def voided_invoice() -> dict[str, Any]:
    # GET /Invoices example (INV-0001, VOIDED), with line items added the way GET /Invoices returns them.
    return {
        "Type": "ACCREC",
        "InvoiceID": "d4956132-ed94-4dd7-9eaa-aa22dfdf06f2",
        "InvoiceNumber": "INV-0001",
        "Reference": "Red Fish, Blue Fish",
        "Payments": [],
        "AmountDue": Decimal("0.00"),
        "AmountPaid": Decimal("0.00"),
        "CurrencyRate": Decimal("1.000000"),
        "Contact": {"ContactID": "a3675fc4-f8dd-4f03-ba5b-f1870566bcd7", "Name": "Barney Rubble-83203"},
        "DateString": "2018-10-20T00:00:00",
        "Date": "/Date(1539993600000+0000)/",
        "DueDateString": "2018-12-30T00:00:00",
        "DueDate": "/Date(1546128000000+0000)/",
        "Status": "VOIDED",
        "LineAmountTypes": "Exclusive",
        "LineItems": [
            {
                "LineItemID": "f5e5b3c5-1e5c-4b1f-9d0c-0c1a5e6b2f10",
                "Description": "Guitars Fender Strat",
                "Quantity": Decimal("2.0000"),
                "UnitAmount": Decimal("15.0000"),
                "ItemCode": "123",
                "AccountCode": "200",
                "TaxType": "OUTPUT2",
                "TaxAmount": Decimal("4.50"),
                "LineAmount": Decimal("30.00"),
                "Tracking": [],
            },
            {"LineItemID": "0b6c2f0e-1b1e-4a8e-9d8d-1f2b3c4d5e6f", "Description": "Thank you for your business"},
            {
                "LineItemID": "1c2d3e4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5",
                "Description": "Strings",
                "Quantity": 1,
                "LineAmount": 10.0,
                "Item": {"ItemID": "c8c54d65-f3f2-452d-926e-bf450b12fb07", "Code": "STR", "Name": "Strings"},
            },
        ],
        "SubTotal": Decimal("40.00"),
        "TotalTax": Decimal("0.00"),
        "Total": Decimal("40.00"),
        "UpdatedDateUTC": "/Date(1541176290160+0000)/",
        "UpdatedDateUTCString": "2018-11-02T16:31:30Z",
        "CurrencyCode": "NZD",
    }


def test_ms_json_dates_parse_to_aware_utc_whatever_the_offset() -> None:
    expected = datetime(2018, 11, 2, 16, 31, 30, 160000, tzinfo=UTC)

    assert parse_ms_json_date("/Date(1541176290160+0000)/") == expected
    assert parse_ms_json_date("/Date(1541176290160+1300)/") == expected  # the offset never moves the instant
    assert parse_ms_json_date("/Date(1541176290160)/") == expected
    assert parse_ms_json_date("/Date(-86400000)/") == datetime(1969, 12, 31, tzinfo=UTC)
    with pytest.raises(ValueError, match="not an MS-JSON date"):
        parse_ms_json_date("2018-11-02")


def test_date_strings_parse_as_utc_dates() -> None:
    assert parse_date_string("2018-10-20T00:00:00") == datetime(2018, 10, 20, tzinfo=UTC)
    assert parse_date_string("2019-11-14T18:10:38Z") == datetime(2019, 11, 14, 18, 10, 38, tzinfo=UTC)
    assert to_date("2018-10-20T00:00:00") == date(2018, 10, 20)
    assert to_date("/Date(1539993600000+0000)/") == date(2018, 10, 20)
    assert to_date(None) is None


def test_convert_ms_json_dates_reaches_nested_objects_and_leaves_other_strings() -> None:
    converted = convert_ms_json_dates(voided_invoice())

    assert converted["UpdatedDateUTC"] == datetime(2018, 11, 2, 16, 31, 30, 160000, tzinfo=UTC)
    assert converted["Date"] == datetime(2018, 10, 20, tzinfo=UTC)
    assert converted["DateString"] == "2018-10-20T00:00:00"
    assert converted["Reference"] == "Red Fish, Blue Fish"
    assert convert_ms_json_dates([{"A": {"B": ["/Date(0)/"]}}]) == [{"A": {"B": [datetime(1970, 1, 1, tzinfo=UTC)]}}]


def test_if_modified_since_is_utc_iso_with_milliseconds() -> None:
    aware = datetime(2024, 5, 1, 21, 30, 0, 123456, tzinfo=UTC)
    naive = datetime(2024, 5, 1, 21, 30, 0, 123456)

    assert format_if_modified_since(aware) == "2024-05-01T21:30:00.123+00:00"
    assert format_if_modified_since(naive) == "2024-05-01T21:30:00.123+00:00"


def test_contact_maps_person_phones_and_non_empty_addresses() -> None:
    contact = to_contact(convert_ms_json_dates(contact_katherine()))

    assert contact.external_id == "5cc8cf28-567e-4d43-b287-687cfcaec47c"
    assert contact.updated_at == datetime(2019, 3, 1, 0, 15, 21, 43000, tzinfo=UTC)
    assert (contact.name, contact.first_name, contact.last_name) == ("Katherine Warren", "Katherine", "Warren")
    assert contact.company is None  # the name is the person's own
    assert contact.email == "kat.warren@clampett.com"
    assert contact.phone == "(626) 847-1294"
    assert contact.mobile == "1 415 555-1212"
    assert contact.tax_number is None
    assert contact.addresses == [Address(city="Palo Alto", region="CA", postal_code="94020", country="United States")]
    assert (contact.is_customer, contact.is_supplier, contact.archived) == (True, False, False)


def test_archived_organisation_contact_maps_archived_with_company_name() -> None:
    raw = {
        "ContactID": "430fa14a-f945-44d3-9f97-5df5e28441b8",
        "ContactStatus": "ARCHIVED",
        "Name": "Ridgeway University",
        "FirstName": "Liam",
        "LastName": "Gallagher",
        "TaxNumber": "12-345-678",
        "IsSupplier": True,
        "IsCustomer": False,
        "Addresses": [{"AddressType": "STREET", "AddressLine1": "1 Main St", "AddressLine2": "Suite 2", "City": "X"}],
        "UpdatedDateUTC": "/Date(1551812346173+0000)/",  # not converted: mappers read raw MS-JSON too
    }

    contact = to_contact(raw)

    assert contact.archived is True
    assert contact.company == "Ridgeway University"
    assert contact.tax_number == "12-345-678"
    assert (contact.is_customer, contact.is_supplier) == (False, True)
    assert contact.addresses == [Address(line1="1 Main St", line2="Suite 2", city="X")]
    assert contact.updated_at == datetime(2019, 3, 5, 18, 59, 6, 173000, tzinfo=UTC)


def test_voided_invoice_maps_status_dates_amounts_and_lines() -> None:
    invoice = to_invoice(convert_ms_json_dates(voided_invoice()))

    assert invoice.external_id == "d4956132-ed94-4dd7-9eaa-aa22dfdf06f2"
    assert invoice.number == "INV-0001"
    assert invoice.status == "voided"
    assert invoice.contact_id == "a3675fc4-f8dd-4f03-ba5b-f1870566bcd7"
    assert (invoice.issue_date, invoice.due_date) == (date(2018, 10, 20), date(2018, 12, 30))
    assert invoice.currency == "NZD"
    assert (invoice.subtotal, invoice.total_tax, invoice.total, invoice.amount_due) == (
        Decimal("40.00"),
        Decimal("0.00"),
        Decimal("40.00"),
        Decimal("0.00"),
    )
    assert invoice.reference == "Red Fish, Blue Fish"
    assert invoice.updated_at == datetime(2018, 11, 2, 16, 31, 30, 160000, tzinfo=UTC)

    priced, note, from_item = invoice.lines
    assert (priced.description, priced.quantity, priced.unit_amount, priced.line_amount) == (
        "Guitars Fender Strat",
        Decimal("2.0000"),
        Decimal("15.0000"),
        Decimal("30.00"),
    )
    assert (priced.account_code, priced.tax_type, priced.item_code) == ("200", "OUTPUT2", "123")
    assert (note.description, note.quantity, note.unit_amount, note.line_amount) == (
        "Thank you for your business",
        Decimal(1),
        Decimal(0),
        None,
    )
    assert (from_item.item_code, from_item.unit_amount, from_item.line_amount) == ("STR", Decimal(10), Decimal("10.0"))


@pytest.mark.parametrize(
    ("xero_status", "canonical_status"),
    [
        ("DRAFT", "draft"),
        ("SUBMITTED", "submitted"),
        ("AUTHORISED", "authorised"),
        ("PAID", "paid"),
        ("VOIDED", "voided"),
        ("DELETED", "deleted"),
    ],
)
def test_invoice_statuses_map_to_canonical_lowercase(xero_status: str, canonical_status: str) -> None:
    assert to_invoice({**voided_invoice(), "Status": xero_status}).status == canonical_status


def test_invoice_dates_fall_back_to_date_strings_and_unknown_status_is_refused() -> None:
    raw = voided_invoice()
    del raw["Date"], raw["DueDate"], raw["DueDateString"]

    invoice = to_invoice(raw)

    assert (invoice.issue_date, invoice.due_date) == (date(2018, 10, 20), None)
    with pytest.raises(ValueError, match="unknown Xero invoice status"):
        to_invoice({**voided_invoice(), "Status": "ARCHIVED"})


def test_payment_maps_invoice_link_amount_account_and_currency() -> None:
    # GET /Payments example from the spec.
    raw = {
        "PaymentID": "99ea7f6b-c513-4066-bc27-b7c65dcd76c2",
        "Date": "/Date(1543449600000+0000)/",
        "BankAmount": Decimal("46.00"),
        "Amount": Decimal("46.00"),
        "Reference": "",
        "CurrencyRate": Decimal("1.000000"),
        "PaymentType": "ACCRECPAYMENT",
        "Status": "AUTHORISED",
        "UpdatedDateUTC": "/Date(1541176592690+0000)/",
        "Account": {"AccountID": "5690f1e8-1d02-4893-90c2-ee1a69eff942", "Code": "970"},
        "Invoice": {
            "Type": "ACCREC",
            "InvoiceID": "046d8a6d-1ae1-4b4d-9340-5601bdf41b87",
            "InvoiceNumber": "INV-0002",
            "Contact": {"ContactID": "a3675fc4-f8dd-4f03-ba5b-f1870566bcd7"},
            "CurrencyCode": "NZD",
        },
    }

    payment = to_payment(convert_ms_json_dates(raw))

    assert payment.external_id == "99ea7f6b-c513-4066-bc27-b7c65dcd76c2"
    assert payment.invoice_id == "046d8a6d-1ae1-4b4d-9340-5601bdf41b87"
    assert (payment.amount, payment.date, payment.currency) == (Decimal("46.00"), date(2018, 11, 29), "NZD")
    assert (payment.account_code, payment.reference) == ("970", None)
    assert payment.updated_at == datetime(2018, 11, 2, 16, 36, 32, 690000, tzinfo=UTC)


def test_payments_without_an_invoice_or_deleted_are_unmappable() -> None:
    payment = {"PaymentID": "p1", "Amount": 2.0, "Date": "/Date(1552521600000+0000)/", "Status": "AUTHORISED"}

    with pytest.raises(UnmappableRecord, match="settles no invoice"):
        to_payment(payment)
    with pytest.raises(UnmappableRecord, match="deleted"):
        to_payment({**payment, "Status": "DELETED", "Invoice": {"InvoiceID": "i1"}})


def test_item_maps_to_product_with_sales_price() -> None:
    guitars = {
        "ItemID": "c8c54d65-f3f2-452d-926e-bf450b12fb07",
        "Code": "123",
        "Description": "Guitars Fender Strat",
        "UpdatedDateUTC": "/Date(1551981476267+0000)/",
        "PurchaseDetails": {},
        "SalesDetails": {"UnitPrice": 5000.0, "AccountCode": "200", "TaxType": "OUTPUT2"},
        "Name": "Guitars",
        "IsTrackedAsInventory": False,
        "IsSold": True,
        "IsPurchased": False,
    }
    no_price = {"ItemID": "a4544d51", "Code": "abc65591", "SalesDetails": {}, "IsSold": True, "IsPurchased": True}

    product = to_product(guitars)
    bare = to_product(no_price)

    assert (product.external_id, product.code, product.name) == (
        "c8c54d65-f3f2-452d-926e-bf450b12fb07",
        "123",
        "Guitars",
    )
    assert (product.description, product.unit_price) == ("Guitars Fender Strat", Decimal("5000.0"))
    assert (product.is_sold, product.is_purchased) == (True, False)
    assert (bare.name, bare.unit_price, bare.is_purchased) == ("abc65591", None, True)


def test_tax_rate_maps_effective_rate_and_status_keyed_by_tax_type() -> None:
    gst = {
        "Name": "15% GST on Income",
        "TaxType": "OUTPUT2",
        "ReportTaxType": "OUTPUT",
        "DisplayTaxRate": Decimal("15.0000"),
        "EffectiveRate": Decimal("15.0000"),
        "Status": "ACTIVE",
        "TaxComponents": [{"Name": "GST", "Rate": Decimal("15.0000"), "IsCompound": False}],
    }
    archived = {"Name": "Old", "TaxType": "TAX001", "Status": "ARCHIVED", "TaxComponents": [{"Rate": 2.5}]}

    rate = to_tax_rate(gst)
    old = to_tax_rate(archived)

    assert (rate.external_id, rate.tax_type, rate.name) == ("OUTPUT2", "OUTPUT2", "15% GST on Income")
    assert (rate.rate_percent, rate.is_active) == (Decimal("15.0000"), True)
    assert (old.rate_percent, old.is_active) == (Decimal("2.5"), False)


def test_account_maps_code_type_and_status() -> None:
    sales = {
        "AccountID": "7d05a53d-613d-4eb2-a2fc-dcb6adb80b80",
        "Code": "200",
        "Name": "Sales",
        "Type": "REVENUE",
        "TaxType": "OUTPUT2",
    }
    archived = {
        "AccountID": "66b262e2-561e-423e-8937-47d558f13442",
        "Code": "",
        "Name": "Foobar",
        "Status": "ARCHIVED",
        "Type": "EXPENSE",
        "UpdatedDateUTC": "/Date(1550793549320+0000)/",
    }

    assert to_account(sales).model_dump(exclude_none=True) == {
        "external_id": "7d05a53d-613d-4eb2-a2fc-dcb6adb80b80",
        "code": "200",
        "name": "Sales",
        "type": "REVENUE",
        "is_active": True,
    }
    old = to_account(archived)
    assert (old.code, old.is_active, old.updated_at) == (None, False, datetime(2019, 2, 21, 23, 59, 9, 320000, UTC))


def test_mappers_cover_every_source_resource() -> None:
    assert set(MAPPERS) == set(ENTITIES)
