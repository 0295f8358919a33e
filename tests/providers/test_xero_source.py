"""The Xero dlt source run into a local duckdb, pulling from the Xero sandbox over real HTTP on loopback."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dlt
import httpx
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed
from dlt.sources import DltSource

from providers.kit.governor import RateGovernor
from providers.kit.streams import build_source
from providers.sandbox_kit.serve import ServedApp
from providers.xero import ENTITIES as CATALOG_ENTITIES
from providers.xero import PROVIDER
from providers.xero.client import XeroClient
from providers.xero.mappers import MAPPERS
from providers.xero.sandbox import XeroSandbox, XeroSandboxKnobs, create_app
from providers.xero.source import STREAMS
from vrtx_pipelines.records.canonical import Contact, Invoice

ENTITIES = tuple(stream.name for stream in STREAMS)
RESOURCE_ENDPOINTS = {stream.name: stream for stream in STREAMS}
PRIMARY_KEYS = {stream.name: stream.primary_key for stream in STREAMS}
TABLES = ("contacts", "invoices", "invoices__line_items", "payments", "products", "tax_rates", "accounts")


def xero_source(
    client: XeroClient | None, entities: Sequence[str] = ENTITIES, initial_modified_since: datetime | None = None
) -> DltSource:
    """The Xero source as the core builds it: the kit's builder over Xero's streams."""
    return build_source("xero", STREAMS, client, entities, initial_value=initial_modified_since, title="Xero")


@dataclass
class FakeTime:
    """One clock for the sandbox (rate-limit windows, change stamps) and the governor: sleeping moves it."""

    now: float = field(default_factory=time.time)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Xero:
    sandbox: XeroSandbox
    tenant_id: str
    knobs: XeroSandboxKnobs
    http: httpx.Client
    base_url: str
    token: str
    time: FakeTime

    def client(self) -> XeroClient:
        return XeroClient(
            self.http,
            base_url=self.base_url,
            tenant_id=self.tenant_id,
            access_token=lambda: self.token,
            governor=RateGovernor(PROVIDER.rate_limits, max_concurrent=5, clock=self.time.clock, sleep=self.time.sleep),
            sleep=self.time.sleep,
        )

    def count(self, entity: str) -> int:
        return int(self.sandbox.count(self.tenant_id, entity))


@pytest.fixture
def xero() -> Iterator[Xero]:
    fake = FakeTime()
    sandbox = XeroSandbox(seed=42, clock=fake.clock)
    tenant_id = sandbox.add_organisation("Acme", contacts=30, invoices=250, lines_per_invoice=3, payments=40, items=10)
    app = create_app(sandbox, knobs=XeroSandboxKnobs())
    with ServedApp(app) as served, httpx.Client(timeout=10) as http:
        yield Xero(
            sandbox=sandbox,
            tenant_id=tenant_id,
            knobs=app.state.sandbox,
            http=http,
            base_url=served.base_url + "/api.xro/2.0",
            token=sandbox.issue_access_token([tenant_id]),
            time=fake,
        )


@pytest.fixture
def pipeline(tmp_path: Path) -> dlt.Pipeline:
    return dlt.pipeline(
        pipeline_name="xero_test",
        pipelines_dir=str(tmp_path / "pipelines"),
        destination=dlt.destinations.duckdb(str(tmp_path / "w.duckdb")),
        dataset_name="xero_acme",
    )


def rows(pipeline: dlt.Pipeline, query: str) -> list[tuple[Any, ...]]:
    with pipeline.sql_client() as sql:
        return [tuple(row) for row in sql.execute_sql(query) or []]


def table_counts(pipeline: dlt.Pipeline, tables: tuple[str, ...] = TABLES) -> dict[str, int]:
    return {table: rows(pipeline, f"SELECT count(*) FROM {table}")[0][0] for table in tables}  # noqa: S608


def loaded_rows(pipeline: dlt.Pipeline) -> dict[str, int]:
    """Rows the last run normalised per data table (what it loaded)."""
    trace = pipeline.last_trace
    assert trace is not None and trace.last_normalize_info is not None
    counts: dict[str, int] = trace.last_normalize_info.row_counts
    return {table: n for table, n in counts.items() if not table.startswith("_dlt")}


# --- declaration -------------------------------------------------------------------------------------------


def test_source_declares_one_merge_resource_per_catalog_entity() -> None:
    # Built with no client, as the core does for definitions: nothing may run.
    source = xero_source(None)

    assert set(ENTITIES) == set(CATALOG_ENTITIES) == set(source.resources) == set(RESOURCE_ENDPOINTS)
    for name, resource in source.resources.items():
        schema = resource.compute_table_schema()
        assert schema["write_disposition"] == "merge"
        primary_key = [column for column, hint in schema["columns"].items() if hint.get("primary_key")]
        assert primary_key == [PRIMARY_KEYS[name]]
    incremental = {name for name, endpoint in RESOURCE_ENDPOINTS.items() if endpoint.incremental}
    assert incremental == {"contacts", "invoices", "payments", "products", "accounts"}


def test_unknown_entities_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown Xero entities"):
        xero_source(None, entities=["contacts", "journals"])


# --- loading -----------------------------------------------------------------------------------------------


def test_full_pull_loads_every_entity_with_line_items_as_a_child_table(xero: Xero, pipeline: dlt.Pipeline) -> None:
    client = xero.client()

    pipeline.run(xero_source(client))

    expected = {
        "contacts": xero.count("contacts"),
        "invoices": 250,
        "invoices__line_items": 250 * 3,
        "payments": 40,
        "products": 10,
        "tax_rates": xero.count("tax_rates"),
        "accounts": xero.count("accounts"),
    }
    assert table_counts(pipeline) == expected
    assert loaded_rows(pipeline) == expected
    # Nested lists other than line items stay json columns: no other child tables.
    data_tables = {t["name"] for t in pipeline.default_schema.data_tables()}
    assert data_tables == set(TABLES)
    columns = pipeline.default_schema.get_table_columns("contacts")
    assert columns["addresses"]["data_type"] == "json" and columns["phones"]["data_type"] == "json"
    assert columns["updated_date_utc"]["data_type"] == "timestamp"
    line_columns = pipeline.default_schema.get_table_columns("invoices__line_items")
    assert line_columns["unit_amount"]["data_type"] == "decimal"
    assert client.pages["invoices"] == 1  # 250 invoices fit one page of 1000 (pages are counted per stream)


def test_second_run_loads_only_touched_rows_and_merges_without_duplicates(xero: Xero, pipeline: dlt.Pipeline) -> None:
    pipeline.run(xero_source(xero.client()))
    newest = rows(pipeline, "SELECT max(updated_date_utc) FROM invoices")[0][0]
    xero.sandbox.touch(xero.tenant_id, "invoices", 5)
    xero.sandbox.create(xero.tenant_id, "contacts", 3)
    sent: dict[str, str | None] = {}
    xero.http.event_hooks["request"].append(
        lambda request: sent.__setitem__(request.url.path.rsplit("/", 1)[-1], request.headers.get("If-Modified-Since"))
    )

    pipeline.run(xero_source(xero.client()))

    # Xero was asked only for changes since the newest record already loaded (TaxRates cannot be asked).
    assert datetime.fromisoformat(sent["Invoices"] or "") == newest.astimezone(UTC)
    assert sent["TaxRates"] is None
    assert all(sent[endpoint] for endpoint in ("Contacts", "Payments", "Items", "Accounts"))
    loaded = loaded_rows(pipeline)
    assert loaded["invoices"] == 5 and loaded["invoices__line_items"] == 15
    assert loaded["contacts"] == 3
    assert loaded.get("payments", 0) == loaded.get("products", 0) == loaded.get("accounts", 0) == 0
    assert loaded["tax_rates"] == xero.count("tax_rates")  # fetched whole every run, merged on TaxType
    counts = table_counts(pipeline)
    assert counts["invoices"] == 250 and counts["invoices__line_items"] == 750
    assert counts["contacts"] == xero.count("contacts")
    assert counts["tax_rates"] == xero.count("tax_rates")
    assert rows(pipeline, "SELECT count(DISTINCT invoice_id) FROM invoices") == [(250,)]


def test_nothing_changed_loads_nothing_but_tax_rates(xero: Xero, pipeline: dlt.Pipeline) -> None:
    pipeline.run(xero_source(xero.client()))

    pipeline.run(xero_source(xero.client()))

    assert {table: n for table, n in loaded_rows(pipeline).items() if n} == {"tax_rates": xero.count("tax_rates")}
    assert table_counts(pipeline)["invoices"] == 250


def test_archived_contact_and_voided_invoice_arrive_as_updates(xero: Xero, pipeline: dlt.Pipeline) -> None:
    pipeline.run(xero_source(xero.client(), entities=["contacts", "invoices"]))
    contact_id = rows(pipeline, "SELECT contact_id FROM contacts WHERE contact_status = 'ACTIVE' LIMIT 1")[0][0]
    invoice_id = rows(pipeline, "SELECT invoice_id FROM invoices WHERE status = 'AUTHORISED' LIMIT 1")[0][0]
    xero.sandbox.archive_contact(xero.tenant_id, contact_id)
    xero.sandbox.void_invoice(xero.tenant_id, invoice_id)

    pipeline.run(xero_source(xero.client(), entities=["contacts", "invoices"]))

    assert loaded_rows(pipeline)["contacts"] >= 1 and loaded_rows(pipeline)["invoices"] >= 1
    assert rows(pipeline, f"SELECT contact_status FROM contacts WHERE contact_id = '{contact_id}'") == [  # noqa: S608
        ("ARCHIVED",)
    ]
    assert rows(pipeline, f"SELECT status FROM invoices WHERE invoice_id = '{invoice_id}'") == [("VOIDED",)]  # noqa: S608
    assert table_counts(pipeline, ("contacts",))["contacts"] == xero.count("contacts")


def test_incremental_pull_resumes_after_5xx_without_duplicates(xero: Xero, pipeline: dlt.Pipeline) -> None:
    pipeline.run(xero_source(xero.client(), entities=["invoices"]))
    xero.sandbox.touch(xero.tenant_id, "invoices", 5)
    xero.knobs.fail_on_page = 1
    xero.knobs.fail_on_page_status = 502
    xero.knobs.fail_on_page_times = 10  # more than the client's retries: this run fails

    with pytest.raises(PipelineStepFailed):
        pipeline.run(xero_source(xero.client(), entities=["invoices"]))
    xero.knobs.fail_on_page = None

    pipeline.run(xero_source(xero.client(), entities=["invoices"]))

    assert loaded_rows(pipeline)["invoices"] == 5  # the failed run moved no cursor
    assert table_counts(pipeline, ("invoices", "invoices__line_items")) == {
        "invoices": 250,
        "invoices__line_items": 750,
    }


def test_initial_modified_since_bounds_the_first_run(xero: Xero, pipeline: dlt.Pipeline) -> None:
    future = datetime(2100, 1, 1, tzinfo=UTC)

    pipeline.run(xero_source(xero.client(), initial_modified_since=future))

    loaded = {table: n for table, n in loaded_rows(pipeline).items() if n}
    assert loaded == {"tax_rates": xero.count("tax_rates")}


def collector(into: list[dict[str, Any]]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def collect(record: dict[str, Any]) -> dict[str, Any]:
        into.append(record)
        return record

    return collect


def test_source_records_map_to_canonical_models(xero: Xero, pipeline: dlt.Pipeline) -> None:
    # What a resource yields (before dlt normalises names) is what the mappers read.
    source = xero_source(xero.client())
    raw: dict[str, list[dict[str, Any]]] = {name: [] for name in ENTITIES}
    for name in ENTITIES:
        source.resources[name].add_map(collector(raw[name]))

    pipeline.extract(source)

    for name in ENTITIES:
        assert all(isinstance(r["UpdatedDateUTC"], datetime) for r in raw[name] if "UpdatedDateUTC" in r)
    mapped = {name: [MAPPERS[name](record) for record in records] for name, records in raw.items()}
    invoices = [invoice for invoice in mapped["invoices"] if isinstance(invoice, Invoice)]
    assert len(invoices) == 250
    assert all(len(invoice.lines) == 3 and invoice.updated_at is not None for invoice in invoices)
    contact_ids = {contact.external_id for contact in mapped["contacts"] if isinstance(contact, Contact)}
    assert len(contact_ids) == xero.count("contacts")
    assert {invoice.contact_id for invoice in invoices} <= contact_ids
    assert len(mapped["payments"]) == 40 and len(mapped["products"]) == 10
    assert len(mapped["tax_rates"]) == xero.count("tax_rates") and len(mapped["accounts"]) == xero.count("accounts")
