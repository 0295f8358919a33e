"""Benchmark: a full pull of 100,000 invoices (3 lines each) into PostgreSQL, from Xero (default) or QuickBooks.

Prints, in one run:
1. the platform's rows/s (the real Dagster assets: OAuth token, paged API calls, dlt extract/normalize/load into
   PostgreSQL, canonical records) against a raw baseline (httpx fetching the same pages + psycopg2 COPY of the
   same rows into two tables), and their ratio (target: platform >= 0.5 x baseline);
2. with the provider's real rate limits on in the sandbox (Xero: 60 calls/minute per organisation; QuickBooks: 500
   a minute and 10 in flight per company), the sync's wall time against the floor the limit sets (calls needed /
   limit per minute), the 429s, and what the sandbox's meter saw (its calls and its busiest minute).

The sandbox runs in its own process so that serving pages does not share a core with the pipeline under test.
What differs per provider is declared in bench/pull_providers.py. Run with `bench/run pull [--provider quickbooks]`
(starts a throwaway PostgreSQL), or set VRTX_BENCH_POSTGRES_URL.
"""

from __future__ import annotations

import argparse
import bisect
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
from urllib.parse import urlencode, urlsplit

import httpx
import psycopg2
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from pull_providers import PROVIDERS, PullBench  # noqa: E402 -- after the path is set

SERVE = "import sys; sys.path.insert(0, 'bench'); from pull import serve_sandbox; serve_sandbox(*sys.argv[1:])"


def serve_sandbox(slug: str, invoices: str, mode: str) -> None:
    """The sandbox's process: serves the bench's data, then answers each line on stdin with what it metered."""
    from providers.sandbox_kit.serve import ServedApp

    bench = PROVIDERS[slug]
    app, tenant, stats = bench.sandbox(int(invoices), mode == "limited")
    arrivals: list[float] = []

    async def metered(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith(bench.api_prefix):
            arrivals.append(time.monotonic())
        await app(scope, receive, send)

    served = ServedApp(metered).start()
    print(json.dumps({"base_url": served.base_url, "tenant": tenant}), flush=True)
    for _ in sys.stdin:
        seen = {"api_calls": stats[tenant].api_calls, "refused": stats[tenant].rate_limited_responses}
        print(json.dumps({**seen, "busiest_minute": busiest_minute(sorted(arrivals))}), flush=True)


def busiest_minute(arrivals: list[float]) -> int:
    """The most calls that arrived within any 60 s."""
    return max((bisect.bisect_left(arrivals, t + 60) - i for i, t in enumerate(arrivals)), default=0)


class Sandbox:
    def __init__(self, bench: PullBench, invoices: int, *, limited: bool) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVE, bench.slug, str(invoices), "limited" if limited else "open"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        info = json.loads(self.process.stdout.readline())
        self.base_url, self.tenant = str(info["base_url"]), str(info["tenant"])

    def metered(self) -> dict[str, int]:
        """The sandbox's own counts for the tenant: API calls, 429s answered, the busiest minute's calls."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("stats\n")
        self.process.stdin.flush()
        return dict(json.loads(self.process.stdout.readline()))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()


def fresh_database(admin_url: str) -> str:
    url = make_url(admin_url)
    name = f"vrtx_bench_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(host=url.host, port=url.port, user=url.username, password=url.password, dbname=url.database)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return url.set(database=name).render_as_string(hide_password=False)


def platform_sync(bench: PullBench, base_url: str, database_url: str, home: Path, *, pacing: str) -> dict[str, Any]:
    """The platform end to end: tenant, OAuth consent through the sandbox, then the pull assets."""
    from dagster._core.test_utils import instance_for_test

    from vrtx_pipelines.cli.sync import sync_now
    from vrtx_pipelines.config import Settings, reset_settings_cache
    from vrtx_pipelines.connect.consent import consent_in_sandbox
    from vrtx_pipelines.connect.context import ConnectionContext
    from vrtx_pipelines.credentials.vault import generate_key, vault_from_settings
    from vrtx_pipelines.db.session import engine_for, session_scope
    from vrtx_pipelines.platform import prepare_database
    from vrtx_pipelines.registry import get_provider
    from vrtx_pipelines.tenants import create_tenant
    from vrtx_pipelines.warehouse import pipeline_for

    provider = get_provider(bench.slug)
    env = {
        "VRTX_HOME": str(home),
        "VRTX_PACING": pacing,
        "VRTX_DATABASE_URL": database_url,
        "VRTX_VAULT_KEYS": generate_key("bench").render(),
        "VRTX_PROVIDER_BASE_URLS": json.dumps({bench.slug: base_url}),
        "VRTX_OAUTH_CLIENTS": json.dumps({bench.slug: dict(provider.sandbox_credentials)}),
    }
    os.environ.update(env)
    reset_settings_cache()
    settings = Settings()
    prepare_database(settings)
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        create_tenant(session, "bench")
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        ctx = ConnectionContext(session=session, vault=vault_from_settings(settings), settings=settings)
        consent_in_sandbox(ctx, "bench", provider)
    with instance_for_test() as instance:
        started = time.perf_counter()
        rows = sync_now(settings, bench.slug, "bench", ["invoices"], instance=instance)
        elapsed = time.perf_counter() - started
        with pipeline_for(settings, bench.slug, "bench").sql_client() as client:
            warehouse_rows = sum(
                int(client.execute_sql(f"SELECT COUNT(*) FROM {table}")[0][0])  # noqa: S608 -- our own tables
                for table in bench.warehouse_tables
            )
        run = instance.get_runs(limit=1)[0]
        metadata = {}
        for event in instance.get_records_for_run(run.run_id).records:
            dagster_event = event.event_log_entry.dagster_event
            if dagster_event and dagster_event.is_step_materialization:
                materialization = dagster_event.event_specific_data.materialization  # type: ignore[union-attr]
                metadata = {k: v.value for k, v in materialization.metadata.items()}
    return {"elapsed_s": elapsed, "rows": rows, "metadata": metadata, "warehouse_rows": warehouse_rows}


def baseline(bench: PullBench, base_url: str, tenant: str, database_url: str) -> dict[str, Any]:
    """The floor a hand-written loader reaches: the same pages with httpx, the same rows by COPY."""
    url = make_url(database_url)
    conn = psycopg2.connect(host=url.host, port=url.port, user=url.username, password=url.password, dbname=url.database)
    with conn, conn.cursor() as cur:
        cur.execute("CREATE SCHEMA raw_baseline")
        cur.execute(f"CREATE TABLE raw_baseline.invoices ({bench.invoice_columns})")
        cur.execute(f"CREATE TABLE raw_baseline.invoice_lines ({bench.line_columns})")
    token = _token(bench, base_url)
    started = time.perf_counter()
    invoices = lines = calls = 0
    with httpx.Client(timeout=60) as client:
        page = 0
        while True:
            page_url, params, headers = bench.page(base_url, tenant, page)
            response = client.get(
                page_url,
                params=params,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json", **headers},
            )
            calls += 1
            response.raise_for_status()
            batch = bench.records(response.json())
            if not batch:
                break
            head, body = io.StringIO(), io.StringIO()
            heads, bodies = csv.writer(head), csv.writer(body)
            for inv in batch:
                heads.writerow(bench.invoice_row(inv))
                rows = bench.line_rows(inv)
                bodies.writerows(rows)
                lines += len(rows)
            invoices += len(batch)
            with conn, conn.cursor() as cur:
                head.seek(0)
                body.seek(0)
                cur.copy_expert("COPY raw_baseline.invoices FROM STDIN WITH (FORMAT csv)", head)
                cur.copy_expert("COPY raw_baseline.invoice_lines FROM STDIN WITH (FORMAT csv)", body)
            if len(batch) < bench.page_size:
                break
            page += 1
    elapsed = time.perf_counter() - started
    conn.close()
    return {"elapsed_s": elapsed, "invoices": invoices, "lines": lines, "calls": calls}


def _token(bench: PullBench, base_url: str, login_hint: str | None = None) -> str:
    """An access token through the sandbox's real OAuth flow (the baseline must authenticate too): the provider's
    own authorise and token paths, scopes and sandbox app, the consent form posted, the code exchanged, signed in as
    ``login_hint`` (default: the sandbox's demo user)."""
    from vrtx_pipelines.connect.consent import _ConsentForm
    from vrtx_pipelines.registry import get_provider

    provider = get_provider(bench.slug)
    assert provider.auth.oauth2 is not None and provider.sandbox_credentials
    oauth, app = provider.auth.oauth2, provider.sandbox_credentials
    redirect = "http://127.0.0.1:9/callback"
    with httpx.Client(base_url=base_url) as client:
        page = client.get(
            urlsplit(oauth.authorize_url).path,
            params={"response_type": "code", "client_id": app["client_id"], "redirect_uri": redirect,
                    "scope": " ".join(oauth.scopes), "state": "bench",
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
            urlsplit(oauth.token_url).path,
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect},
            auth=(app["client_id"], app["client_secret"]),
        )
        return str(token.json()["access_token"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", choices=sorted(PROVIDERS), default="xero")
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--limited-invoices", type=int, default=100_000, help="size of the rate-limited run")
    parser.add_argument("--skip-limited", action="store_true")
    args = parser.parse_args()
    bench = PROVIDERS[args.provider]
    admin_url = os.environ.get("VRTX_BENCH_POSTGRES_URL") or os.environ["VRTX_TEST_POSTGRES_URL"]

    print(f"== {bench.name} full pull, {args.invoices:,} invoices x {bench.lines_words}, PostgreSQL warehouse")
    sandbox = Sandbox(bench, args.invoices, limited=False)
    try:
        raw = baseline(bench, sandbox.base_url, sandbox.tenant, fresh_database(admin_url))
        raw_rows = raw["invoices"] + raw["lines"]
        with tempfile.TemporaryDirectory() as home:
            # Limits off on both sides: the sandbox enforces none, and the platform paces only on what the
            # sandbox's headers say (nothing), so both measure throughput, not the provider's rate limit.
            platform = platform_sync(bench, sandbox.base_url, fresh_database(admin_url), Path(home), pacing="headers")
    finally:
        sandbox.stop()
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
        f"= {platform_rate:,.0f} rows/s ({steps(platform['metadata'])})"
    )
    print(f"ratio platform/baseline: {platform_rate / raw_rate:.2f} (target >= 0.50)")

    if not args.skip_limited:
        rate_limited(bench, args.limited_invoices, admin_url)


def steps(metadata: dict[str, Any]) -> str:
    """The run's calls and how long each of its steps took, from its materialisation's metadata."""
    timed = ", ".join(
        f"{step} {metadata.get(f'{step}_ms', 0) / 1000:.1f} s" for step in ("extract", "normalize", "load", "canonical")
    )
    return (
        f"api_calls={metadata.get('api_calls')}, pages={metadata.get('pages')}; {timed} alongside the load, "
        f"{metadata.get('canonical_after_load_ms', 0) / 1000:.1f} s after it"
    )


def rate_limited(bench: PullBench, invoices: int, admin_url: str) -> None:
    """The same pull with the sandbox enforcing the provider's limit and the platform pacing on it."""
    print(f"\n== Same pull with {bench.name}'s real rate limits on ({invoices:,} invoices, {bench.limit_words})")
    pages = bench.limited_pages
    if pages is not None:
        size, set_size, what = pages
        needs, at_most = -(-invoices // size), -(-invoices // bench.page_size)
        never = ", within one minute's: the limit would never bind" if at_most <= bench.per_minute else ""
        print(
            f"platform page size {size} ({what}): the sync needs {needs:,} calls, {needs / bench.per_minute:.1f} "
            f"minutes' budget (at {bench.page_size:,} a page {at_most:,}{never})"
        )
        set_size(size)
    sandbox = Sandbox(bench, invoices, limited=True)
    try:
        with tempfile.TemporaryDirectory() as home:
            limited = platform_sync(bench, sandbox.base_url, fresh_database(admin_url), Path(home), pacing="published")
        seen = sandbox.metered()
    finally:
        sandbox.stop()
        if pages is not None:
            pages[1](bench.page_size)
    calls = int(limited["metadata"].get("api_calls", 0))
    floor_s = calls / bench.per_minute * 60
    waits = int(limited["metadata"].get("rate_limited_waits", 0))
    print(
        f"sandbox's meter: {seen['api_calls']} API calls for the tenant, busiest 60 s {seen['busiest_minute']} calls "
        f"(limit {bench.per_minute}), {seen['refused']} refused with 429"
    )
    print(
        f"api calls: {calls}; floor set by {bench.per_minute}/min: {floor_s:.0f} s; "
        f"wall time: {limited['elapsed_s']:.0f} s ({steps(limited['metadata'])}; "
        f"paced waits {limited['metadata'].get('paced_wait_s', 0):.0f} s)"
    )
    if seen["busiest_minute"] < bench.per_minute:
        print(f"the limit never bound: no minute reached {bench.per_minute} calls (a larger --limited-invoices would)")
    print(
        f"wall/floor: {limited['elapsed_s'] / floor_s:.2f} (target <= {bench.wall_target:.2f}); "
        f"429s received: {waits} (target 0)"
    )


if __name__ == "__main__":
    main()
