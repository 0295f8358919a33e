"""Fixed material for the Xero sandbox's generated organisations: the chart of accounts, the tax rates, the
organisation profile, Xero's scopes and each entity's queryable fields (names, places and products are the kit's
pools, ``providers.sandbox_kit.pools``).

The organisations are New Zealand flavoured (GST at 15%, NZD) because that is what the Accounting API spec's own
examples use (``xero-accounting.yaml`` getTaxRates/getAccounts/getOrganisations examples: OUTPUT2, INPUT2, 090...).
"""

from __future__ import annotations

import re
from typing import Any

SALES_ACCOUNT = "200"
PURCHASES_ACCOUNT = "300"
BANK_ACCOUNT = "090"

# Chart of accounts (Code, Name, Type, TaxType, SystemAccount or "", Description or "").
CHART_OF_ACCOUNTS = (
    ("090", "Business Bank Account", "BANK", "NONE", "", ""),
    ("091", "Business Savings Account", "BANK", "NONE", "", ""),
    ("200", "Sales", "REVENUE", "OUTPUT2", "", "Income from any normal business activity"),
    ("260", "Other Revenue", "REVENUE", "OUTPUT2", "", "Any other income that does not relate to normal business"),
    ("270", "Interest Income", "REVENUE", "NONE", "", "Interest income"),
    ("300", "Purchases", "DIRECTCOSTS", "INPUT2", "", "Goods purchased with the intention of selling them"),
    ("310", "Cost of Goods Sold", "DIRECTCOSTS", "INPUT2", "", "Cost of goods sold by the business"),
    ("400", "Advertising", "OVERHEADS", "INPUT2", "", "Expenses incurred for advertising"),
    ("404", "Bank Fees", "OVERHEADS", "NONE", "", "Fees charged by your bank"),
    ("408", "Cleaning", "OVERHEADS", "INPUT2", "", "Expenses incurred for cleaning business property"),
    ("412", "Consulting & Accounting", "OVERHEADS", "INPUT2", "", "Expenses related to paying consultants"),
    ("420", "Entertainment", "OVERHEADS", "NONE", "", "Expenses paid for entertainment"),
    ("425", "Freight & Courier", "OVERHEADS", "INPUT2", "", "Expenses incurred on courier and freight costs"),
    ("429", "General Expenses", "OVERHEADS", "INPUT2", "", "General expenses related to running the business"),
    ("433", "Insurance", "OVERHEADS", "INPUT2", "", "Expenses incurred for insuring the business"),
    ("437", "Interest Expense", "OVERHEADS", "NONE", "", "Interest paid on a business bank account"),
    ("441", "Legal expenses", "OVERHEADS", "INPUT2", "", "Expenses incurred on any legal matters"),
    ("445", "Light, Power, Heating", "OVERHEADS", "INPUT2", "", "Expenses incurred for lighting and power"),
    ("449", "Motor Vehicle Expenses", "OVERHEADS", "INPUT2", "", "Expenses incurred on the running of vehicles"),
    ("453", "Office Expenses", "OVERHEADS", "INPUT2", "", "General expenses related to the running of the office"),
    ("461", "Printing & Stationery", "OVERHEADS", "INPUT2", "", "Expenses incurred on printing and stationery"),
    ("469", "Rent", "OVERHEADS", "INPUT2", "", "The payment to lease a building or area"),
    ("473", "Repairs and Maintenance", "OVERHEADS", "INPUT2", "", "Expenses incurred on a damaged or run down asset"),
    ("477", "Wages and Salaries", "EXPENSE", "NONE", "", "Payment to employees in exchange for their resources"),
    ("485", "Subscriptions", "OVERHEADS", "INPUT2", "", "E.g. magazines, professional bodies"),
    ("489", "Telephone & Internet", "OVERHEADS", "INPUT2", "", "Expenditure incurred from any business-related phone"),
    ("493", "Travel - National", "OVERHEADS", "INPUT2", "", "Expenses incurred from domestic travel"),
    ("494", "Travel - International", "OVERHEADS", "NONE", "", "Expenses incurred from international travel"),
    ("610", "Accounts Receivable", "CURRENT", "NONE", "DEBTORS", "Outstanding invoices the company has issued"),
    ("620", "Prepayments", "CURRENT", "NONE", "", "An expenditure that has been paid for in advance"),
    ("630", "Inventory", "INVENTORY", "NONE", "", "Value of tracked items for resale"),
    ("710", "Office Equipment", "FIXED", "INPUT2", "", "Office equipment that is owned and controlled"),
    ("720", "Computer Equipment", "FIXED", "INPUT2", "", "Computer equipment that is owned and controlled"),
    ("800", "Accounts Payable", "CURRLIAB", "NONE", "CREDITORS", "Outstanding invoices the company has received"),
    ("820", "GST", "CURRLIAB", "NONE", "GST", "The balance in this account represents GST owing or owed"),
    ("840", "Historical Adjustment", "CURRLIAB", "NONE", "HISTORICAL", "For accountant adjustments"),
    ("860", "Rounding", "CURRLIAB", "NONE", "ROUNDING", "An adjustment entry to allow for rounding"),
    ("877", "Tracking Transfers", "CURRLIAB", "NONE", "TRACKINGTRANSFERS", "Transfers between tracking categories"),
    ("900", "Loan", "TERMLIAB", "NONE", "", "Money that has been borrowed from a creditor"),
    ("960", "Retained Earnings", "EQUITY", "NONE", "RETAINEDEARNINGS", "Do not Use"),
    ("970", "Owner A Funds Introduced", "EQUITY", "NONE", "", "Funds contributed by the owner"),
)  # fmt: skip
ACCOUNT_CLASS = {
    **dict.fromkeys(("BANK", "CURRENT", "FIXED", "INVENTORY", "NONCURRENT", "PREPAYMENT"), "ASSET"),
    **dict.fromkeys(("CURRLIAB", "LIABILITY", "TERMLIAB", "PAYG"), "LIABILITY"),
    **dict.fromkeys(("DEPRECIATN", "DIRECTCOSTS", "EXPENSE", "OVERHEADS"), "EXPENSE"),
    **dict.fromkeys(("OTHERINCOME", "REVENUE", "SALES"), "REVENUE"),
    "EQUITY": "EQUITY",
}

# Name, TaxType, ReportTaxType, rate (%), and CanApplyTo Assets/Equity/Expenses/Liabilities/Revenue.
# The first five are the spec's getTaxRates example; the exempt pair completes a usable set.
TAX_RATES = (
    ("15% GST on Expenses", "INPUT2", "INPUT", 15.0, (True, True, True, True, False)),
    ("15% GST on Income", "OUTPUT2", "OUTPUT", 15.0, (True, True, False, True, True)),
    ("GST on Imports", "GSTONIMPORTS", "GSTONIMPORTS", 0.0, (False, False, False, True, False)),
    ("No GST", "NONE", "NONE", 0.0, (True, True, True, True, True)),
    ("Zero Rated", "ZERORATED", "OUTPUT", 0.0, (False, False, False, True, True)),
    ("Exempt Income", "EXEMPTOUTPUT", "EXEMPTOUTPUT", 0.0, (False, False, False, False, True)),
    ("Exempt Expenses", "EXEMPTEXPENSES", "EXEMPTEXPENSES", 0.0, (False, False, True, False, False)),
)
GST_RATE_PERCENT = 15

# Organisation profile (the spec's getOrganisations example is an NZ organisation).
ORGANISATION_PROFILE: dict[str, Any] = {
    "Version": "NZ", "OrganisationType": "COMPANY", "BaseCurrency": "NZD", "CountryCode": "NZ", "IsDemoCompany": False,
    "OrganisationStatus": "ACTIVE", "FinancialYearEndDay": 31, "FinancialYearEndMonth": 3, "SalesTaxBasis": "PAYMENTS",
    "SalesTaxPeriod": "TWOMONTHS", "DefaultSalesTax": "Tax Exclusive", "DefaultPurchasesTax": "Tax Exclusive",
    "OrganisationEntityType": "COMPANY", "Timezone": "NEWZEALANDSTANDARDTIME", "Edition": "BUSINESS",
    "Class": "STANDARD", "LineOfBusiness": "Professional services",
}  # fmt: skip

# Scopes Xero knows (reference "OAuth2" and "Granular scopes"): the accounting ones by name (granular report scopes
# by pattern), other API families by prefix.
ACCOUNTING_SCOPES = frozenset({
    "accounting.transactions", "accounting.transactions.read", "accounting.contacts", "accounting.contacts.read",
    "accounting.settings", "accounting.settings.read", "accounting.attachments", "accounting.attachments.read",
    "accounting.journals.read", "accounting.reports.read", "accounting.reports.tenninetynine.read",
    "accounting.budgets.read", "accounting.invoices", "accounting.invoices.read", "accounting.payments",
    "accounting.payments.read", "accounting.banktransactions", "accounting.banktransactions.read",
    "accounting.manualjournals", "accounting.manualjournals.read", "accounting.classicexpenses",
    "accounting.classicexpenses.read",
})  # fmt: skip
GRANULAR_REPORT_SCOPE = re.compile(r"^accounting\.reports\.[a-z]+\.read$")
OTHER_API_SCOPE_PREFIXES = (
    "payroll.", "files", "assets", "projects", "paymentservices", "bankfeeds", "finance.", "einvoicing",
    "app.connections", "marketplace.billing",
)  # fmt: skip
# What a token minted by XeroSandbox.issue_access_token may do.
ALL_ACCOUNTING_SCOPES = frozenset({
    "accounting.transactions", "accounting.contacts", "accounting.settings", "accounting.invoices",
    "accounting.payments", "accounting.attachments", "accounting.journals.read", "accounting.reports.read",
})  # fmt: skip

# Top-level fields a `where`/`order` may name, per entity: the properties of the spec's schemas (so an unknown
# name is Xero's "No property or field 'X' exists in type 'Y'"), plus the DateString companions Xero sends.
QUERY_FIELDS: dict[str, tuple[str, frozenset[str]]] = {
    "contacts": ("Contact", frozenset({
        "AccountNumber", "AccountsPayableTaxType", "AccountsReceivableTaxType", "Addresses", "Attachments",
        "Balances", "BankAccountDetails", "BatchPayments", "BrandingTheme", "CompanyNumber", "ContactGroups",
        "ContactID", "ContactNumber", "ContactPersons", "ContactStatus", "DefaultCurrency", "Discount",
        "EmailAddress", "FirstName", "HasAttachments", "HasValidationErrors", "IsCustomer", "IsSupplier", "LastName",
        "MergedToContactID", "Name", "PaymentTerms", "Phones", "PurchasesDefaultAccountCode",
        "PurchasesDefaultLineAmountType", "PurchasesTrackingCategories", "SalesDefaultAccountCode",
        "SalesDefaultLineAmountType", "SalesTrackingCategories", "StatusAttributeString", "TaxNumber",
        "TaxNumberType", "TrackingCategoryName", "TrackingCategoryOption", "UpdatedDateUTC", "ValidationErrors",
        "Website", "XeroNetworkKey",
    })),
    "invoices": ("Invoice", frozenset({
        "AmountCredited", "AmountDue", "AmountPaid", "Attachments", "BrandingThemeID", "CISDeduction", "CISRate",
        "Contact", "CreditNotes", "CurrencyCode", "CurrencyRate", "Date", "DateString", "DueDate", "DueDateString",
        "ExpectedPaymentDate", "FullyPaidOnDate", "HasAttachments", "HasErrors", "InvoiceAddresses", "InvoiceID",
        "InvoiceNumber", "IsDiscounted", "LineAmountTypes", "LineItems", "Overpayments", "Payments",
        "PlannedPaymentDate", "Prepayments", "Reference", "RepeatingInvoiceID", "SentToContact", "Status",
        "StatusAttributeString", "SubTotal", "Total", "TotalDiscount", "TotalTax", "Type", "UpdatedDateUTC",
        "Url", "ValidationErrors", "Warnings",
    })),
    "payments": ("Payment", frozenset({
        "Account", "Amount", "BankAccountNumber", "BankAmount", "BatchPayment", "BatchPaymentID", "Code",
        "CreditNote", "CreditNoteNumber", "CurrencyRate", "Date", "Details", "HasAccount", "HasValidationErrors",
        "Invoice", "InvoiceNumber", "IsReconciled", "Overpayment", "Particulars", "PaymentID", "PaymentType",
        "Prepayment", "Reference", "Status", "StatusAttributeString", "UpdatedDateUTC", "ValidationErrors",
        "Warnings",
    })),
    "items": ("Item", frozenset({
        "Code", "Description", "InventoryAssetAccountCode", "IsPurchased", "IsSold", "IsTrackedAsInventory",
        "ItemID", "Name", "PurchaseDescription", "PurchaseDetails", "QuantityOnHand", "SalesDetails",
        "StatusAttributeString", "TotalCostPool", "UpdatedDateUTC", "ValidationErrors",
    })),
    "tax_rates": ("TaxRate", frozenset({
        "CanApplyToAssets", "CanApplyToEquity", "CanApplyToExpenses", "CanApplyToLiabilities", "CanApplyToRevenue",
        "DisplayTaxRate", "EffectiveRate", "Name", "ReportTaxType", "Status", "TaxComponents", "TaxType",
    })),
    "accounts": ("Account", frozenset({
        "AccountID", "AddToWatchlist", "BankAccountNumber", "BankAccountType", "Class", "Code", "CurrencyCode",
        "Description", "EnablePaymentsToAccount", "HasAttachments", "Name", "ReportingCode", "ReportingCodeName",
        "ShowInExpenseClaims", "Status", "SystemAccount", "TaxType", "Type", "UpdatedDateUTC", "ValidationErrors",
    })),
}  # fmt: skip
