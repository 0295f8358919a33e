"""The fields of the QuickBooks records the pulls load, with their types: what tenants' field mappings may name, and
where the warehouse's column types come from.

From the Accounting API reference (https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/
customer, .../invoice, .../payment, .../item, .../account, .../taxcode, .../taxrate) as the records arrive after the
client's decoding (MetaData times are datetimes). References are objects (``CustomerRef.value``); invoice and
payment lines land in the ``invoices__line`` and ``payments__line`` child tables.
"""

from __future__ import annotations

from providers.kit.streams import fields_of

_MANAGED = ("string: Id SyncToken domain status", "boolean: sparse", "datetime of MetaData: CreateTime LastUpdatedTime")
RECORD_FIELDS: dict[str, dict[str, str]] = {
    "contacts": fields_of(
        *_MANAGED,
        "string: DisplayName Title GivenName MiddleName FamilyName Suffix CompanyName FullyQualifiedName "
        "PrintOnCheckName Notes PreferredDeliveryMethod ResaleNum PrimaryTaxIdentifier",
        "boolean: Active Taxable Job BillWithParent IsProject",
        "number: Balance BalanceWithJobs Level",
        "string of PrimaryEmailAddr: Address",
        "string of PrimaryPhone: FreeFormNumber",
        "string of Mobile: FreeFormNumber",
        "string of BillAddr: Id Line1 Line2 City CountrySubDivisionCode PostalCode Country",
        "string of ShipAddr: Id Line1 Line2 City CountrySubDivisionCode PostalCode Country",
        "string of CurrencyRef: value name",
    ),
    "invoices": fields_of(
        *_MANAGED,
        "string: DocNumber PrivateNote GlobalTaxCalculation PrintStatus EmailStatus",
        "date: TxnDate DueDate",
        "number: TotalAmt Balance",
        "boolean: ApplyTaxAfterDiscount",
        "string of CustomerRef: value name",
        "string of CurrencyRef: value name",
        "string of CustomerMemo: value",
        "string of BillEmail: Address",
        "number of TxnTaxDetail: TotalTax",
        "string of TxnTaxDetail: TxnTaxCodeRef.value",
        "array of TxnTaxDetail: TaxLine",
        "array: LinkedTxn Line",
        "string of Line[]: Id Description DetailType",
        "number of Line[]: LineNum Amount",
        "object of Line[]: SalesItemLineDetail SubTotalLineDetail DescriptionOnly DiscountLineDetail",
    ),
    "payments": fields_of(
        *_MANAGED,
        "string: PaymentRefNum PrivateNote",
        "date: TxnDate",
        "number: TotalAmt UnappliedAmt",
        "boolean: ProcessPayment",
        "string of CustomerRef: value name",
        "string of CurrencyRef: value name",
        "string of DepositToAccountRef: value name",
        "array: Line",
        "number of Line[]: Amount",
        "array of Line[]: LinkedTxn",
    ),
    "products": fields_of(
        *_MANAGED,
        "string: Name Sku Description FullyQualifiedName Type PurchaseDesc",
        "boolean: Active Taxable TrackQtyOnHand SubItem",
        "number: UnitPrice PurchaseCost QtyOnHand",
        "string of IncomeAccountRef: value name",
        "string of ExpenseAccountRef: value name",
    ),
    "tax_codes": fields_of(
        *_MANAGED,
        "string: Name Description",
        "boolean: Active Hidden Taxable TaxGroup",
        "array of SalesTaxRateList: TaxRateDetail",
        "array of PurchaseTaxRateList: TaxRateDetail",
    ),
    "tax_rates": fields_of(
        *_MANAGED,
        "string: Name Description SpecialTaxType DisplayType",
        "boolean: Active",
        "number: RateValue",
        "string of AgencyRef: value",
    ),
    "accounts": fields_of(
        *_MANAGED,
        "string: Name FullyQualifiedName Classification AccountType AccountSubType AcctNum Description",
        "boolean: Active SubAccount",
        "number: CurrentBalance CurrentBalanceWithSubAccounts",
        "string of CurrencyRef: value name",
    ),
}
