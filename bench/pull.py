"""Benchmark: a full Xero pull of 100,000 invoices (3 lines each) into PostgreSQL.

Prints, in one run:
1. the platform's rows/s (the real Dagster assets: OAuth token, paged API calls, dlt extract/normalize/load into
   PostgreSQL, canonical records) against a raw baseline (httpx fetching the same pages + psycopg2 COPY of the
   same rows into two tables), and their ratio (target: platform >= 0.5 x baseline);
2. with Xero's real rate limits on in the sandbox (60 calls/minute per tenant), the sync's wall time against the
   floor the limit sets (calls needed / 60 per minute) and the number of 429s (target: within 10%, zero 429s).

The sandbox runs in its own process so that serving pages does not share a core with the pipeline under test.
Run with `bench/run pull` (starts a throwaway PostgreSQL), or set VRTX_BENCH_POSTGRES_URL.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import psycopg2
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVE = """
import json, sys, time
from providers.xero.sandbox import XeroSandbox, XeroSandboxKnobs, create_app
from providers.sandbox_kit.serve import ServedApp
invoices, limited = int(sys.argv[1]), sys.argv[2] == "limited"
sandbox = XeroSandbox(seed=1)
org = sandbox.add_organisation("Bench Ltd", contacts=100, invoices=invoices, lines_per_invoice=3, payments=10, items=10)
# Open: budgets too large to matter, so the rate-limit headers never ask anyone to wait.
big = 10**9
knobs = XeroSandboxKnobs() if limited else XeroSandboxKnobs(minute_limit=big, day_limit=big, app_minute_limit=big)
served = ServedApp(create_app(sandbox, knobs=knobs)).start()
print(json.dumps({"base_url": served.base_url, "org": org}), flush=True)
while True:
    time.sleep(3600)
"""


def start_sandbox(invoices: int, limited: bool) -> tuple[subprocess.Popen[str], str, str]:
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(invoices), "limited" if limited else "open"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    info = json.loads(process.stdout.readline())
    return process, info["base_url"], info["org"]


def fresh_database(admin_url: str) -> str:
    url = make_url(admin_url)
    name = f"vrtx_bench_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(host=url.host, port=url.port, user=url.username, password=url.password, dbname=url.database)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return url.set(database=name).render_as_string(hide_password=False)


def platform_sync(base_url: str, database_url: str, home: Path, *, pacing: str) -> dict[str, Any]:
    """The platform end to end: tenant, OAuth consent through the sandbox, then the pull assets."""
    from dagster._core.test_utils import instance_for_test

    from providers.xero.sandbox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
    from vrtx_pipelines.cli.sync import sync_now
    from vrtx_pipelines.config import Settings, reset_settings_cache
    from vrtx_pipelines.connect.consent import consent_in_sandbox
    from vrtx_pipelines.connect.context import ConnectionContext
    from vrtx_pipelines.credentials.vault import generate_key, vault_from_settings
    from vrtx_pipelines.db.session import engine_for, session_scope
    from vrtx_pipelines.platform import prepare_database
    from vrtx_pipelines.registry import get_provider
    from vrtx_pipelines.tenants import create_tenant

    env = {
        "VRTX_HOME": str(home),
        "VRTX_PACING": pacing,
        "VRTX_DATABASE_URL": database_url,
        "VRTX_VAULT_KEYS": generate_key("bench").render(),
        "VRTX_PROVIDER_BASE_URLS": json.dumps({"xero": base_url}),
        "VRTX_OAUTH_CLIENTS": json.dumps({"xero": {"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET}}),
    }
    os.environ.update(env)
    reset_settings_cache()
    settings = Settings()
    prepare_database(settings)
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        create_tenant(session, "bench")
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        ctx = ConnectionContext(session=session, vault=vault_from_settings(settings), settings=settings)
        consent_in_sandbox(ctx, "bench", get_provider("xero"))
    with instance_for_test() as instance:
        started = time.perf_counter()
        rows = sync_now(settings, "xero", "bench", ["invoices"], instance=instance)
        elapsed = time.perf_counter() - started
        from vrtx_pipelines.warehouse import pipeline_for

        with pipeline_for(settings, "xero", "bench").sql_client() as client:
            warehouse_rows = sum(
                int(client.execute_sql(f"SELECT COUNT(*) FROM {table}")[0][0])  # noqa: S608 -- our own tables
                for table in ("invoices", "invoices__line_items")
            )
        run = instance.get_runs(limit=1)[0]
        metadata = {}
        for event in instance.get_records_for_run(run.run_id).records:
            dagster_event = event.event_log_entry.dagster_event
            if dagster_event and dagster_event.is_step_materialization:
                materialization = dagster_event.event_specific_data.materialization  # type: ignore[union-attr]
                metadata = {k: v.value for k, v in materialization.metadata.items()}
    return {"elapsed_s": elapsed, "rows": rows, "metadata": metadata, "warehouse_rows": warehouse_rows}


def baseline(base_url: str, org: str, database_url: str) -> dict[str, Any]:
    """The floor a hand-written loader reaches: the same pages with httpx, the same rows by COPY."""
    from providers.xero.sandbox import XeroSandbox  # noqa: F401 -- same import cost as the platform's side

    url = make_url(database_url)
    conn = psycopg2.connect(host=url.host, port=url.port, user=url.username, password=url.password, dbname=url.database)
    with conn, conn.cursor() as cur:
        cur.execute("CREATE SCHEMA raw_baseline")
        cur.execute(
            "CREATE TABLE raw_baseline.invoices (invoice_id text primary key, invoice_number text, type text, "
            "status text, contact_id text, date text, due_date text, currency_code text, sub_total numeric, "
            "total_tax numeric, total numeric, amount_due numeric, updated_date_utc text)"
        )
        cur.execute(
            "CREATE TABLE raw_baseline.invoice_lines (line_item_id text, invoice_id text, description text, "
            "quantity numeric, unit_amount numeric, account_code text, tax_type text, line_amount numeric)"
        )
    token = _token(base_url, org)
    started = time.perf_counter()
    invoices = lines = calls = 0
    with httpx.Client(timeout=60) as client:
        page = 1
        while True:
            response = client.get(
                f"{base_url}/api.xro/2.0/Invoices",
                params={"page": page, "pageSize": 1000},
                headers={"Authorization": f"Bearer {token}", "xero-tenant-id": org, "Accept": "application/json"},
            )
            calls += 1
            response.raise_for_status()
            batch = response.json()["Invoices"]
            if not batch:
                break
            head, body = io.StringIO(), io.StringIO()
            heads, bodies = csv.writer(head), csv.writer(body)
            for inv in batch:
                heads.writerow(
                    [inv["InvoiceID"], inv.get("InvoiceNumber"), inv.get("Type"), inv.get("Status"),
                     inv["Contact"]["ContactID"], inv.get("DateString"), inv.get("DueDateString"),
                     inv.get("CurrencyCode"), inv.get("SubTotal"), inv.get("TotalTax"), inv.get("Total"),
                     inv.get("AmountDue"), inv.get("UpdatedDateUTC")]
                )  # fmt: skip
                for line in inv.get("LineItems", []):
                    bodies.writerow(
                        [line.get("LineItemID"), inv["InvoiceID"], line.get("Description"), line.get("Quantity"),
                         line.get("UnitAmount"), line.get("AccountCode"), line.get("TaxType"), line.get("LineAmount")]
                    )  # fmt: skip
                    lines += 1
            invoices += len(batch)
            with conn, conn.cursor() as cur:
                head.seek(0)
                body.seek(0)
                cur.copy_expert("COPY raw_baseline.invoices FROM STDIN WITH (FORMAT csv)", head)
                cur.copy_expert("COPY raw_baseline.invoice_lines FROM STDIN WITH (FORMAT csv)", body)
            if len(batch) < 1000:
                break
            page += 1
    elapsed = time.perf_counter() - started
    conn.close()
    return {"elapsed_s": elapsed, "invoices": invoices, "lines": lines, "calls": calls}


def _token(base_url: str, org: str, login_hint: str | None = None) -> str:
    """An access token through the sandbox's real OAuth flow (the baseline must authenticate too), signed in as
    ``login_hint`` (default: the sandbox's demo user)."""
    from providers.xero.sandbox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
    from vrtx_pipelines.connect.consent import _ConsentForm

    redirect = "http://127.0.0.1:9/callback"
    with httpx.Client(base_url=base_url) as client:
        page = client.get(
            "/identity/connect/authorize",
            params={"response_type": "code", "client_id": DEMO_CLIENT_ID, "redirect_uri": redirect,
                    "scope": "offline_access accounting.invoices accounting.contacts", "state": "bench",
                    **({"login_hint": login_hint} if login_hint else {})},
        )  # fmt: skip
        form = _ConsentForm()
        form.feed(page.text)
        data = [*form.fields, *(("tenant_id", o) for o in form.organisations), ("decision", "allow")]
        answer = client.post(
            form.action or "",
            content=urlencode(data),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        code = httpx.URL(answer.headers["location"]).params["code"]
        token = client.post(
            "/connect/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect},
            auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        )
        return str(token.json()["access_token"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--limited-invoices", type=int, default=100_000, help="size of the rate-limited run")
    parser.add_argument("--skip-limited", action="store_true")
    args = parser.parse_args()
    admin_url = os.environ.get("VRTX_BENCH_POSTGRES_URL") or os.environ["VRTX_TEST_POSTGRES_URL"]

    print(f"== Xero full pull, {args.invoices:,} invoices x 3 lines, PostgreSQL warehouse")
    sandbox, base_url, org = start_sandbox(args.invoices, limited=False)
    try:
        raw = baseline(base_url, org, fresh_database(admin_url))
        raw_rows = raw["invoices"] + raw["lines"]
        with tempfile.TemporaryDirectory() as home:
            # Limits off on both sides: the sandbox enforces none, and the platform paces only on what the
            # sandbox's headers say (nothing), so both measure throughput, not Xero's 60 calls a minute.
            platform = platform_sync(base_url, fresh_database(admin_url), Path(home), pacing="headers")
    finally:
        sandbox.terminate()
    platform_rows = platform["warehouse_rows"]
    assert platform_rows == raw_rows, f"platform loaded {platform_rows} rows, the baseline {raw_rows}"
    raw_rate = raw_rows / raw["elapsed_s"]
    platform_rate = platform_rows / platform["elapsed_s"]
    print(
        f"baseline (httpx + COPY): {raw_rows:,} rows in {raw['elapsed_s']:.1f} s = {raw_rate:,.0f} rows/s "
        f"({raw['calls']} calls)"
    )
    print(
        f"platform (Dagster + dlt): {platform_rows:,} rows in {platform['elapsed_s']:.1f} s "
        f"= {platform_rate:,.0f} rows/s "
        f"(api_calls={platform['metadata'].get('api_calls')}, pages={platform['metadata'].get('pages')}; "
        + ", ".join(
            f"{step} {platform['metadata'].get(f'{step}_ms', 0) / 1000:.1f} s"
            for step in ("extract", "normalize", "load", "canonical")
        )
        + f" alongside the load, {platform['metadata'].get('canonical_after_load_ms', 0) / 1000:.1f} s after it)"
    )
    print(f"ratio platform/baseline: {platform_rate / raw_rate:.2f} (target >= 0.50)")

    if args.skip_limited:
        return
    print(f"\n== Same pull with Xero's real rate limits on ({args.limited_invoices:,} invoices, 60 calls/min)")
    sandbox, base_url, org = start_sandbox(args.limited_invoices, limited=True)
    try:
        with tempfile.TemporaryDirectory() as home:
            limited = platform_sync(base_url, fresh_database(admin_url), Path(home), pacing="published")
    finally:
        sandbox.terminate()
    calls = int(limited["metadata"].get("api_calls", 0))
    floor_s = calls / 60 * 60
    waits = int(limited["metadata"].get("rate_limited_waits", 0))
    print(f"api calls: {calls}; floor set by 60/min: {floor_s:.0f} s; wall time: {limited['elapsed_s']:.0f} s")
    print(f"wall/floor: {limited['elapsed_s'] / floor_s:.2f} (target <= 1.10); 429s received: {waits} (target 0)")


if __name__ == "__main__":
    main()
