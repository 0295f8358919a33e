"""The fields of the Xero records the pulls load, with their types: what tenants' field mappings may name.

Taken from Xero's Accounting API reference (https://developer.xero.com/documentation/api/accounting/contacts,
.../invoices, .../payments, .../items, .../taxrates, .../accounts), as the records arrive after the source's
decoding (MS-JSON dates are datetimes). Nested objects are dotted (``Contact.Name``); ``LineItems[].TaxType`` is a
field of each invoice line (lines land in the ``invoices__line_items`` child table). The ``DateString``
companions are the ones Xero sends beside ``Date`` and ``DueDate``.
"""

from __future__ import annotations

S, N, B, D, T, OBJ, A = "string", "number", "boolean", "date", "datetime", "object", "array"


def _fields(spec: str, kind: str) -> dict[str, str]:
    return dict.fromkeys(spec.split(), kind)


CONTACT_FIELDS: dict[str, str] = {
    **_fields(
        "ContactID MergedToContactID ContactNumber AccountNumber ContactStatus Name FirstName LastName CompanyNumber "
        "EmailAddress BankAccountDetails TaxNumber TaxNumberType AccountsReceivableTaxType AccountsPayableTaxType "
        "SalesDefaultLineAmountType PurchasesDefaultLineAmountType DefaultCurrency XeroNetworkKey "
        "SalesDefaultAccountCode PurchasesDefaultAccountCode TrackingCategoryName TrackingCategoryOption Website "
        "StatusAttributeString",
        S,
    ),
    **_fields("IsSupplier IsCustomer HasAttachments HasValidationErrors", B),
    "Discount": N,
    "UpdatedDateUTC": T,
    **_fields(
        "ContactPersons Addresses Phones SalesTrackingCategories PurchasesTrackingCategories ContactGroups "
        "Attachments ValidationErrors",
        A,
    ),
    **_fields("PaymentTerms BrandingTheme BatchPayments Balances", OBJ),
}

INVOICE_FIELDS: dict[str, str] = {
    **_fields(
        "Type LineAmountTypes InvoiceNumber Reference BrandingThemeID Url CurrencyCode Status InvoiceID "
        "RepeatingInvoiceID StatusAttributeString DateString DueDateString UpdatedDateUTCString",
        S,
    ),
    **_fields(
        "CurrencyRate CISDeduction CISRate SubTotal TotalTax Total TotalDiscount AmountDue AmountPaid AmountCredited",
        N,
    ),
    **_fields("SentToContact HasAttachments IsDiscounted HasErrors", B),
    **_fields("Date DueDate ExpectedPaymentDate PlannedPaymentDate FullyPaidOnDate", D),
    "UpdatedDateUTC": T,
    **_fields(
        "Payments Prepayments Overpayments CreditNotes Attachments ValidationErrors Warnings InvoiceAddresses", A
    ),
    **_fields("Contact.ContactID Contact.Name Contact.FirstName Contact.LastName Contact.EmailAddress", S),
    **_fields("Contact.ContactNumber Contact.AccountNumber Contact.ContactStatus Contact.TaxNumber", S),
    "Contact.UpdatedDateUTC": T,
    **_fields("Contact.Addresses Contact.Phones Contact.ContactPersons Contact.ContactGroups", A),
    "LineItems": A,
    **_fields(
        "LineItems[].LineItemID LineItems[].Description LineItems[].ItemCode LineItems[].AccountCode "
        "LineItems[].AccountID LineItems[].TaxType LineItems[].RepeatingInvoiceID LineItems[].Taxability",
        S,
    ),
    **_fields(
        "LineItems[].Quantity LineItems[].UnitAmount LineItems[].TaxAmount LineItems[].LineAmount "
        "LineItems[].DiscountRate LineItems[].DiscountAmount LineItems[].SalesTaxCodeId",
        N,
    ),
    "LineItems[].Item": OBJ,
    **_fields("LineItems[].Tracking LineItems[].TaxBreakdown", A),
}

PAYMENT_FIELDS: dict[str, str] = {
    **_fields(
        "InvoiceNumber CreditNoteNumber Code Reference Status PaymentType UpdatedDateUTCString PaymentID "
        "BatchPaymentID BankAccountNumber Particulars Details StatusAttributeString DateString",
        S,
    ),
    **_fields("CurrencyRate Amount BankAmount", N),
    **_fields("IsReconciled HasAccount HasValidationErrors", B),
    "Date": D,
    "UpdatedDateUTC": T,
    **_fields("ValidationErrors Warnings", A),
    **_fields(
        "Invoice.InvoiceID Invoice.InvoiceNumber Invoice.Type Invoice.CurrencyCode Invoice.Reference "
        "Invoice.Status Invoice.Contact.ContactID Invoice.Contact.Name",
        S,
    ),
    **_fields("Invoice.LineItems Invoice.Payments Invoice.CreditNotes Invoice.Prepayments Invoice.Overpayments", A),
    **_fields("Account.AccountID Account.Code Account.Name", S),
}

ITEM_FIELDS: dict[str, str] = {
    **_fields("Code InventoryAssetAccountCode Name Description PurchaseDescription ItemID StatusAttributeString", S),
    **_fields("IsSold IsPurchased IsTrackedAsInventory", B),
    **_fields("TotalCostPool QuantityOnHand", N),
    "UpdatedDateUTC": T,
    "ValidationErrors": A,
    **_fields("SalesDetails.UnitPrice PurchaseDetails.UnitPrice", N),
    **_fields(
        "SalesDetails.AccountCode SalesDetails.COGSAccountCode SalesDetails.TaxType PurchaseDetails.AccountCode "
        "PurchaseDetails.COGSAccountCode PurchaseDetails.TaxType",
        S,
    ),
}

TAX_RATE_FIELDS: dict[str, str] = {
    **_fields("Name TaxType Status ReportTaxType", S),
    **_fields("CanApplyToAssets CanApplyToEquity CanApplyToExpenses CanApplyToLiabilities CanApplyToRevenue", B),
    **_fields("DisplayTaxRate EffectiveRate", N),
    "TaxComponents": A,
}

ACCOUNT_FIELDS: dict[str, str] = {
    **_fields(
        "Code Name AccountID Type BankAccountNumber Status Description BankAccountType CurrencyCode TaxType Class "
        "SystemAccount ReportingCode ReportingCodeName",
        S,
    ),
    **_fields("EnablePaymentsToAccount ShowInExpenseClaims HasAttachments AddToWatchlist", B),
    "UpdatedDateUTC": T,
    "ValidationErrors": A,
}

RECORD_FIELDS: dict[str, dict[str, str]] = {
    "contacts": CONTACT_FIELDS,
    "invoices": INVOICE_FIELDS,
    "payments": PAYMENT_FIELDS,
    "products": ITEM_FIELDS,
    "tax_rates": TAX_RATE_FIELDS,
    "accounts": ACCOUNT_FIELDS,
}
