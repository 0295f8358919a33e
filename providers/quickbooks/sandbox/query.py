"""Reads: the query language (``SELECT * FROM Invoice WHERE MetaData.LastUpdatedTime > '...' ORDERBY Id
STARTPOSITION 1 MAXRESULTS 1000``, ``SELECT COUNT(*)``), change data capture and reads by id.

Reference (``provider-apis.md`` section 2, "Query language & pagination", "Incremental: CDC"): conditions are
ANDed comparisons (``= < > <= >= !=``), ``IN (...)`` and ``LIKE`` with ``%``; no OR, no JOIN. STARTPOSITION is
1-based, MAXRESULTS 100 by default and at most 1000; the entity's key is left out of an empty answer. As in
QuickBooks, inactive customers, items and accounts are only listed when the condition names ``Active``. The kit's
filter engine parses the conditions; ``MetaData.LastUpdatedTime`` bounds become the store's change-time window.
CDC lists what changed at or after ``changedSince`` (at most 30 days back, 1,000 records per entity, oldest
first), deletes as ``{"status": "Deleted"}`` tombstones. Parser messages imitate QuickBooks' (guess).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from providers.quickbooks.sandbox.answers import Answer, Fault, not_found
from providers.quickbooks.sandbox.company import DELETED, ENTITIES, TABLES, Company
from providers.quickbooks.sandbox.records import answer_time
from providers.sandbox_kit import filters
from providers.sandbox_kit.clock import DAY_MS, ms_of
from providers.sandbox_kit.filters import Dialect, FilterError, Messages
from providers.sandbox_kit.store import Fetch, Record

MAX_RESULTS, DEFAULT_RESULTS = 1000, 100
CDC_WINDOW_MS = 30 * DAY_MS
CDC_CAP = 1000
CDC_UNSUPPORTED = frozenset({"tax_codes", "tax_rates"})  # reference: no CDC for TaxCode, TaxRate
WITH_ACTIVE = frozenset({"customers", "items", "accounts", "tax_codes", "tax_rates"})
_CHANGE = "MetaData.LastUpdatedTime"
_STATEMENT = re.compile(
    r"^\s*select\s+(?P<fields>.+?)\s+from\s+(?P<entity>[A-Za-z]+)(?P<rest>.*)$", re.IGNORECASE | re.DOTALL
)
_CLAUSES = re.compile(r"\b(where|orderby|order\s+by|startposition|maxresults)\b", re.IGNORECASE)
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'")
_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
_MESSAGES = Messages(
    unknown_field="QueryValidationError: property '{name}' is not queryable",
    unknown_member="QueryValidationError: property '{name}' is not queryable",
    bad_character='QueryParserError: Encountered "{char}"',
    trailing="QueryParserError: Encountered extra tokens",
    expected='QueryParserError: Was expecting "{token}"',
    expression_expected="QueryParserError: Encountered <EOF>",
    incompatible="QueryValidationError: cannot compare {left} with {right}",
    boolean_expected="QueryParserError: a condition was expected",
)


def parse_error(detail: str) -> Fault:
    return Fault("4000", "Error parsing query", detail)


def _plain(value: Any) -> Any:
    """A record's value as conditions compare it: references by their value, date-times as instants."""
    if isinstance(value, dict) and "value" in value:
        value = value["value"]
    return _literal(value) if isinstance(value, str) else value


def _literal(text: str) -> Any:
    if not _ISO_TIME.match(text):
        return text
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


_FIELDS = {
    "customers": "DisplayName GivenName FamilyName CompanyName FullyQualifiedName PrintOnCheckName Active Taxable "
    "Job BillWithParent IsProject Balance PrimaryEmailAddr PrimaryPhone Mobile BillAddr CurrencyRef",
    "items": "Name Sku Description Active FullyQualifiedName Taxable UnitPrice Type IncomeAccountRef PurchaseCost",
    "invoices": "DocNumber TxnDate DueDate CustomerRef TotalAmt Balance EmailStatus PrintStatus CurrencyRef",
    "payments": "TxnDate TotalAmt UnappliedAmt CustomerRef PaymentRefNum DepositToAccountRef CurrencyRef",
    "accounts": "Name AccountType AccountSubType Classification Active AcctNum FullyQualifiedName SubAccount",
    "tax_codes": "Name Description Active Taxable TaxGroup",
    "tax_rates": "Name Description Active RateValue AgencyRef",
}
DIALECTS = {
    table: Dialect(
        ENTITIES[table],
        frozenset({"Id", "SyncToken", "MetaData", *names.split()}),
        comparisons={"=": "==", "!=": "!=", "<>": "!=", ">": ">", ">=": ">=", "<": "<", "<=": "<="},
        and_words=("AND",),
        or_words=(),
        not_words=(),
        string=r"'(?:[^'\\]|\\.)*'",
        unquote=lambda text: text[1:-1].replace("\\'", "'"),
        plain=_plain,
        literal=_literal,
        in_word="IN",
        like_word="LIKE",
        messages=_MESSAGES,
    )
    for table, names in _FIELDS.items()
}


def _clauses(rest: str) -> dict[str, str]:
    """The clauses after FROM, found outside quoted strings."""
    masked = _QUOTED.sub(lambda m: "'" + " " * (len(m.group()) - 2) + "'", rest)
    found = list(_CLAUSES.finditer(masked))
    if masked[: found[0].start() if found else len(masked)].strip():
        raise parse_error(f'QueryParserError: Encountered "{rest.strip().split()[0]}"')
    clauses: dict[str, str] = {}
    for n, match in enumerate(found):
        name = re.sub(r"\s+", "", match.group(1)).lower()
        end = found[n + 1].start() if n + 1 < len(found) else len(rest)
        if name in clauses:
            raise parse_error(f'QueryParserError: Encountered "{match.group(1)}"')
        clauses[name] = rest[match.end() : end].strip()
    return clauses


def _number(clauses: Mapping[str, str], name: str, default: int) -> int:
    text = clauses.get(name)
    if text is None:
        return default
    if not text.isdigit():
        raise parse_error(f'QueryParserError: Encountered "{text}"')
    return int(text)


def query(company: Company, statement: str, now_ms: int) -> tuple[Answer, str | None, int]:
    """(answer, table, page number) of one query statement."""
    match = _STATEMENT.match(statement or "")
    if match is None:
        raise parse_error('QueryParserError: Encountered <EOF>. Was expecting "select"')
    table = TABLES.get(next((n for n in ENTITIES.values() if n.lower() == match["entity"].lower()), ""))
    if table is None:
        raise Fault("4001", "Invalid query", f"QueryValidationError: Unable to identify entity {match['entity']}")
    clauses = _clauses(match["rest"])
    start, size = _number(clauses, "startposition", 1), _number(clauses, "maxresults", DEFAULT_RESULTS)
    if start < 1 or not 1 <= size <= MAX_RESULTS:
        raise Fault("4001", "Invalid query", f"QueryValidationError: MAXRESULTS must be 1 to {MAX_RESULTS}")
    fields = match["fields"].strip()
    total, fetch = _selection(company, table, clauses.get("where"), clauses.get("orderby"))
    entity = ENTITIES[table]
    if re.fullmatch(r"count\(\s*\*\s*\)", fields, re.IGNORECASE):
        return Answer(200, {"QueryResponse": {"totalCount": total}, "time": answer_time(now_ms)}), table, 1
    rows = fetch(start - 1, start - 1 + size)
    if not re.fullmatch(r"\*(\s*,\s*\w+)*", fields):
        wanted = {"Id", *(name.strip() for name in fields.split(","))}
        rows = [{k: v for k, v in row.items() if k in wanted} for row in rows]
    body: dict[str, Any] = {"QueryResponse": {}, "time": answer_time(now_ms)}
    if rows:
        body["QueryResponse"] = {entity: rows, "startPosition": start, "maxResults": len(rows)}
    return Answer(200, body), table, (start - 1) // size + 1


def _selection(company: Company, table: str, where: str | None, order: str | None) -> tuple[int, Fetch]:
    dialect = DIALECTS[table]
    try:
        parsed = filters.parse_filter(dialect, where, change_field=_CHANGE)
        keys = _order(dialect, order)
    except FilterError as exc:
        raise parse_error(str(exc)) from None
    predicates = [parsed.predicate] if parsed.predicate is not None else []
    if table in WITH_ACTIVE and not re.search(r"\bactive\b", _QUOTED.sub("''", where or ""), re.IGNORECASE):
        predicates.append(lambda record: record.get("Active") is not False)
    if company.deleted.get(table):
        predicates.append(lambda record: record.get("status") != DELETED)
    changing = keys[:1] == [(_CHANGE, True)] or keys[:1] == [(_CHANGE, False)]
    descending = changing and keys[0][1]
    if changing:
        keys = keys[1:]
    if keys == [("Id", False)] and not predicates and parsed.lo_ms is None and parsed.hi_ms is None:
        records = company.tables[table]  # by Id is by index: ids count up as records are made
        return len(records), lambda start, stop: [records.record(i) for i in range(start, min(stop, len(records)))]
    try:
        total, fetch = company.select(
            table,
            lo=parsed.lo_ms,
            hi=parsed.hi_ms,
            order=keys,
            predicate=(lambda r: all(p(r) for p in predicates)) if predicates else None,
            predicate_key=(where, tuple(sorted(company.deleted.items()))),
        )
    except FilterError as exc:
        raise parse_error(str(exc)) from None
    if not descending:
        return total, fetch
    return total, lambda start, stop: list(reversed(fetch(max(total - stop, 0), total - start)))


def _order(dialect: Dialect, text: str | None) -> list[tuple[str, bool]]:
    keys: list[tuple[str, bool]] = []
    canonical = {name.lower(): name for name in dialect.fields} | {_CHANGE.lower(): _CHANGE}
    for part in (text or "").split(",") if text and text.strip() else []:
        words = part.split()
        if not 1 <= len(words) <= 2 or (len(words) == 2 and words[1].upper() not in ("ASC", "DESC")):
            raise FilterError(f'QueryParserError: Encountered "{part.strip()}"')
        name = canonical.get(words[0].lower())
        if name is None or (name != _CHANGE and "." in words[0]):
            raise FilterError(f"QueryValidationError: property '{words[0]}' is not sortable")
        keys.append((name, len(words) == 2 and words[1].upper() == "DESC"))
    return keys


def cdc(company: Company, params: Mapping[str, str], now_ms: int) -> Answer:
    """``GET /cdc?entities=Customer,Invoice&changedSince=...``."""
    names = [n.strip() for n in params.get("entities", "").split(",") if n.strip()]
    tables = [TABLES.get(next((e for e in ENTITIES.values() if e.lower() == n.lower()), "")) for n in names]
    if not names or None in tables:
        raise Fault("4001", "Invalid query", "entities must name QuickBooks entities such as Customer,Invoice")
    unsupported = [ENTITIES[t] for t in tables if t in CDC_UNSUPPORTED]
    if unsupported:
        raise Fault("4001", "Invalid query", f"Change data capture does not support {', '.join(unsupported)}")
    since = _literal(params.get("changedSince", ""))
    if not isinstance(since, datetime):
        raise Fault("4001", "Invalid query", "changedSince must be a date-time such as 2024-06-01T00:00:00-07:00")
    since_ms = ms_of(since)
    if since_ms < now_ms - CDC_WINDOW_MS:  # guess at the words: QuickBooks looks back 30 days at most
        raise Fault("4001", "Invalid query", "changedSince cannot be more than 30 days in the past")
    responses: list[dict[str, Any]] = []
    for table in tables:
        assert table is not None
        total, fetch = company.select(table, lo=since_ms)
        rows: list[Record] = fetch(0, min(total, CDC_CAP))
        response: dict[str, Any] = {"startPosition": 1, "maxResults": len(rows)}
        if rows:
            response = {ENTITIES[table]: rows, **response}
        responses.append(response)
    return Answer(200, {"CDCResponse": [{"QueryResponse": responses}], "time": answer_time(now_ms)})


def read(company: Company, table: str, record_id: str, now_ms: int) -> Answer:
    record = company.live(table, company.index_of(table, record_id))
    if record is None:
        raise not_found("Id")
    return Answer(200, {ENTITIES[table]: record, "time": answer_time(now_ms)})
