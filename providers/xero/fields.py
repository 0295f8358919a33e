"""The fields of the Xero records the pulls load, with their types: what tenants' field mappings may name, and
where the warehouse's column types come from.

Taken from Xero's Accounting API reference (https://developer.xero.com/documentation/api/accounting/contacts,
.../invoices, .../payments, .../items, .../taxrates, .../accounts), as the records arrive after the source's
decoding (MS-JSON dates are datetimes). Nested objects are dotted (``Contact.Name``); ``LineItems[].TaxType`` is a
field of each invoice line (lines land in the ``invoices__line_items`` child table). The ``DateString``
companions are the ones Xero sends beside ``Date`` and ``DueDate``.
"""

from __future__ import annotations

from providers.kit.streams import fields_of

RECORD_FIELDS: dict[str, dict[str, str]] = {
    "contacts": fields_of(
        "string: ContactID MergedToContactID ContactNumber AccountNumber ContactStatus Name FirstName LastName "
        "CompanyNumber EmailAddress BankAccountDetails TaxNumber TaxNumberType AccountsReceivableTaxType "
        "AccountsPayableTaxType SalesDefaultLineAmountType PurchasesDefaultLineAmountType DefaultCurrency "
        "XeroNetworkKey SalesDefaultAccountCode PurchasesDefaultAccountCode TrackingCategoryName "
        "TrackingCategoryOption Website StatusAttributeString",
        "boolean: IsSupplier IsCustomer HasAttachments HasValidationErrors",
        "number: Discount",
        "datetime: UpdatedDateUTC",
        "array: ContactPersons Addresses Phones SalesTrackingCategories PurchasesTrackingCategories ContactGroups "
        "Attachments ValidationErrors",
        "object: PaymentTerms BrandingTheme BatchPayments Balances",
    ),
    "invoices": fields_of(
        "string: Type LineAmountTypes InvoiceNumber Reference BrandingThemeID Url CurrencyCode Status InvoiceID "
        "RepeatingInvoiceID StatusAttributeString DateString DueDateString UpdatedDateUTCString",
        "number: CurrencyRate CISDeduction CISRate SubTotal TotalTax Total TotalDiscount AmountDue AmountPaid "
        "AmountCredited",
        "boolean: SentToContact HasAttachments IsDiscounted HasErrors",
        "date: Date DueDate ExpectedPaymentDate PlannedPaymentDate FullyPaidOnDate",
        "datetime: UpdatedDateUTC",
        "array: Payments Prepayments Overpayments CreditNotes Attachments ValidationErrors Warnings InvoiceAddresses",
        "string of Contact: ContactID Name FirstName LastName EmailAddress ContactNumber AccountNumber ContactStatus "
        "TaxNumber",
        "datetime of Contact: UpdatedDateUTC",
        "array of Contact: Addresses Phones ContactPersons ContactGroups",
        "array: LineItems",
        "string of LineItems[]: LineItemID Description ItemCode AccountCode AccountID TaxType RepeatingInvoiceID "
        "Taxability",
        "number of LineItems[]: Quantity UnitAmount TaxAmount LineAmount DiscountRate DiscountAmount SalesTaxCodeId",
        "object of LineItems[]: Item",
        "array of LineItems[]: Tracking TaxBreakdown",
    ),
    "payments": fields_of(
        "string: InvoiceNumber CreditNoteNumber Code Reference Status PaymentType UpdatedDateUTCString PaymentID "
        "BatchPaymentID BankAccountNumber Particulars Details StatusAttributeString DateString",
        "number: CurrencyRate Amount BankAmount",
        "boolean: IsReconciled HasAccount HasValidationErrors",
        "date: Date",
        "datetime: UpdatedDateUTC",
        "array: ValidationErrors Warnings",
        "string of Invoice: InvoiceID InvoiceNumber Type CurrencyCode Reference Status Contact.ContactID Contact.Name",
        "array of Invoice: LineItems Payments CreditNotes Prepayments Overpayments",
        "string of Account: AccountID Code Name",
    ),
    "products": fields_of(
        "string: Code InventoryAssetAccountCode Name Description PurchaseDescription ItemID StatusAttributeString",
        "boolean: IsSold IsPurchased IsTrackedAsInventory",
        "number: TotalCostPool QuantityOnHand",
        "datetime: UpdatedDateUTC",
        "array: ValidationErrors",
        "number of SalesDetails: UnitPrice",
        "number of PurchaseDetails: UnitPrice",
        "string of SalesDetails: AccountCode COGSAccountCode TaxType",
        "string of PurchaseDetails: AccountCode COGSAccountCode TaxType",
    ),
    "tax_rates": fields_of(
        "string: Name TaxType Status ReportTaxType",
        "boolean: CanApplyToAssets CanApplyToEquity CanApplyToExpenses CanApplyToLiabilities CanApplyToRevenue",
        "number: DisplayTaxRate EffectiveRate",
        "array: TaxComponents",
    ),
    "accounts": fields_of(
        "string: Code Name AccountID Type BankAccountNumber Status Description BankAccountType CurrencyCode TaxType "
        "Class SystemAccount ReportingCode ReportingCodeName",
        "boolean: EnablePaymentsToAccount ShowInExpenseClaims HasAttachments AddToWatchlist",
        "datetime: UpdatedDateUTC",
        "array: ValidationErrors",
    ),
}
