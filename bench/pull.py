"""Benchmark: a full pull of 100,000 invoices (3 lines each) into PostgreSQL, from Xero (default), QuickBooks or
Stripe (100,000 customers besides).

Prints, in one run:
1. the platform's rows/s (the real Dagster assets: OAuth token or API key, paged API calls, dlt extract/normalize/
   load into PostgreSQL, canonical records) against a raw baseline (httpx fetching the same pages + psycopg2 COPY of
   the same rows into one table per warehouse table), and their ratio (target: platform >= 0.5 x baseline);
2. with the provider's real rate limits on in the sandbox (Xero: 60 calls/minute per organisation; QuickBooks: 500
   a minute and 10 in flight per company; Stripe: test mode's 25 a second per account), the sync's wall time
   against the floor the limit sets (calls needed / limit), the 429s, and what the sandbox's meter saw (its calls
   and its busiest window of the limit's length).

The sandbox runs in its own process so that serving pages does not share a core with the pipeline under test.
What differs per provider is declared in bench/pull_providers.py. Run with `bench/run pull [--provider quickbooks]`
(starts a throwaway PostgreSQL), or set VRTX_BENCH_POSTGRES_URL.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import csv
import hashlib
import io
import json
import os
import secrets
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
        print(json.dumps({**seen, "busiest_window": busiest(sorted(arrivals), bench.window_s)}), flush=True)


def busiest(arrivals: list[float], window_s: float) -> int:
    """The most calls that arrived within any ``window_s``."""
    return max((bisect.bisect_left(arrivals, t + window_s) - i for i, t in enumerate(arrivals)), default=0)


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
        """The sandbox's own counts for the tenant: API calls, 429s answered, the busiest window's calls."""
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
    """The platform end to end: tenant, connection (OAuth consent through the sandbox, or the sandbox's API key),
    then the pull assets."""
    from dagster._core.test_utils import instance_for_test

    from vrtx_pipelines.cli.sync import sync_now
    from vrtx_pipelines.config import Settings, reset_settings_cache
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
        "VRTX_OAUTH_CLIENTS": json.dumps(oauth_clients(provider)),
    }
    os.environ.update(env)
    reset_settings_cache()
    settings = Settings()
    prepare_database(settings)
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        create_tenant(session, "bench")
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        ctx = ConnectionContext(session=session, vault=vault_from_settings(settings), settings=settings)
        connect_in_sandbox(ctx, "bench", provider)
    entities = [listing.entity for listing in bench.listings]
    with instance_for_test() as instance:
        started = time.perf_counter()
        rows = sync_now(settings, bench.slug, "bench", entities, instance=instance)
        elapsed = time.perf_counter() - started
        with pipeline_for(settings, bench.slug, "bench").sql_client() as client:
            warehouse_rows = sum(
                int(client.execute_sql(f"SELECT COUNT(*) FROM {table.warehouse}")[0][0])  # noqa: S608 -- ours
                for listing in bench.listings
                for table in listing.tables
            )
        run = instance.get_runs(limit=1)[0]
        metadata: dict[str, Any] = {}
        pages = 0
        for event in instance.get_records_for_run(run.run_id).records:
            dagster_event = event.event_log_entry.dagster_event
            if dagster_event and dagster_event.is_step_materialization:
                materialization = dagster_event.event_specific_data.materialization  # type: ignore[union-attr]
                # Calls, waits and step times are the run's (every entity's is the same); pages are per entity.
                metadata = {k: v.value for k, v in materialization.metadata.items()}
                pages += int(metadata.get("pages") or 0)
        metadata["pages"] = pages
    return {"elapsed_s": elapsed, "rows": rows, "metadata": metadata, "warehouse_rows": warehouse_rows}


def by_key(provider: Any) -> bool:
    from providers.base import AuthType

    return bool(provider.auth.type == AuthType.API_KEY)


def oauth_clients(provider: Any) -> dict[str, dict[str, str]]:
    """The platform's OAuth app for the provider's sandbox (none for a provider connected with a key)."""
    return {} if by_key(provider) else {provider.slug: dict(provider.sandbox_credentials)}


def connect_in_sandbox(ctx: Any, tenant_id: str, provider: Any) -> None:
    """Connect ``tenant_id`` as a user would: the sandbox's API key (Stripe's secret key) for a provider connected by
    key, else the real OAuth consent through the sandbox."""
    from vrtx_pipelines.connect.connections import connect_with_credentials
    from vrtx_pipelines.connect.consent import consent_in_sandbox

    if by_key(provider):
        connect_with_credentials(ctx, tenant_id, provider, dict(provider.sandbox_credentials))
    else:
        consent_in_sandbox(ctx, tenant_id, provider)


def baseline(bench: PullBench, base_url: str, tenant: str, database_url: str) -> dict[str, Any]:
    """The floor a hand-written loader reaches: the same pages with httpx, one listing after another, the same rows
    by COPY."""
    url = make_url(database_url)
    conn = psycopg2.connect(host=url.host, port=url.port, user=url.username, password=url.password, dbname=url.database)
    with conn, conn.cursor() as cur:
        cur.execute("CREATE SCHEMA raw_baseline")
        for listing in bench.listings:
            for table in listing.tables:
                cur.execute(f"CREATE TABLE raw_baseline.{table.warehouse} ({table.columns})")
    token = _credential(bench, base_url)
    started = time.perf_counter()
    rows = calls = 0
    with httpx.Client(timeout=60) as client:
        for listing in bench.listings:
            page, last = 0, None
            while True:
                page_url, params, headers = listing.page(base_url, tenant, page, last)
                response = client.get(
                    page_url,
                    params=params,
                    headers={"Authorization": f"Bearer {token}", "Accept": "application/json", **headers},
                )
                calls += 1
                response.raise_for_status()
                body = response.json()
                batch = listing.records(body)
                if not batch:
                    break
                files = [io.StringIO() for _ in listing.tables]
                writers = [csv.writer(file) for file in files]
                for record in batch:
                    for table, writer in zip(listing.tables, writers, strict=True):
                        table_rows = table.rows(record)
                        writer.writerows(table_rows)
                        rows += len(table_rows)
                with conn, conn.cursor() as cur:
                    for table, file in zip(listing.tables, files, strict=True):
                        file.seek(0)
                        cur.copy_expert(f"COPY raw_baseline.{table.warehouse} FROM STDIN WITH (FORMAT csv)", file)
                if not listing.more(body, len(batch)):
                    break
                page, last = page + 1, batch[-1]
    elapsed = time.perf_counter() - started
    conn.close()
    return {"elapsed_s": elapsed, "rows": rows, "calls": calls}


def _credential(bench: PullBench, base_url: str) -> str:
    """What the baseline sends as its Bearer: the sandbox's API key for a provider connected by key (Stripe's secret
    key), else an access token through the sandbox's OAuth flow."""
    from vrtx_pipelines.registry import get_provider

    provider = get_provider(bench.slug)
    if by_key(provider):
        (key,) = provider.sandbox_credentials.values()
        return str(key)
    return access_token(bench.slug, base_url)


def access_token(slug: str, base_url: str, login_hint: str | None = None) -> str:
    """An access token through the sandbox's real OAuth flow (a baseline must authenticate too): the provider's own
    authorise and token paths, scopes and sandbox app, PKCE where its app uses it, the consent form posted, the code
    exchanged, signed in as ``login_hint`` (default: the sandbox's demo user)."""
    from vrtx_pipelines.connect.consent import _ConsentForm
    from vrtx_pipelines.registry import get_provider

    provider = get_provider(slug)
    assert provider.auth.oauth2 is not None and provider.sandbox_credentials
    oauth, app = provider.auth.oauth2, provider.sandbox_credentials
    redirect = "http://127.0.0.1:9/callback"
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    pkce = {"code_challenge": challenge, "code_challenge_method": "S256"} if oauth.pkce else {}
    with httpx.Client(base_url=base_url) as client:
        page = client.get(
            urlsplit(oauth.authorize_url).path,
            params={"response_type": "code", "client_id": app["client_id"], "redirect_uri": redirect,
                    "scope": " ".join(oauth.scopes), "state": "bench", **pkce,
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
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
                  **({"code_verifier": verifier} if oauth.pkce else {})},
            auth=(app["client_id"], app["client_secret"]),
        )  # fmt: skip
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

    print(f"== {bench.name} full pull, {bench.data_words.format(n=args.invoices)}, PostgreSQL warehouse")
    sandbox = Sandbox(bench, args.invoices, limited=False)
    try:
        raw = baseline(bench, sandbox.base_url, sandbox.tenant, fresh_database(admin_url))
        raw_rows = raw["rows"]
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
    data = bench.data_words.format(n=invoices)
    print(f"\n== Same pull with {bench.name}'s real rate limits on ({data}, {bench.limit_words})")
    pages = bench.limited_pages
    if pages is not None:
        size, set_size, what = pages
        needs, at_most = -(-invoices // size), -(-invoices // bench.page_size)
        never = ", within one minute's: the limit would never bind" if at_most <= bench.per_window else ""
        print(
            f"platform page size {size} ({what}): the sync needs {needs:,} calls, {needs / bench.per_window:.1f} "
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
    floor_s = calls / bench.per_window * bench.window_s
    waits = int(limited["metadata"].get("rate_limited_waits", 0))
    per = {60: "min", 1: "s"}.get(bench.window_s, f"{bench.window_s} s")
    print(
        f"sandbox's meter: {seen['api_calls']} API calls for the tenant, busiest {bench.window_s} s "
        f"{seen['busiest_window']} calls (limit {bench.per_window}), {seen['refused']} refused with 429"
    )
    print(
        f"api calls: {calls}; floor set by {bench.per_window}/{per}: {floor_s:.0f} s; "
        f"wall time: {limited['elapsed_s']:.0f} s ({steps(limited['metadata'])}; "
        f"paced waits {limited['metadata'].get('paced_wait_s', 0):.0f} s)"
    )
    if seen["busiest_window"] < bench.per_window:
        print(
            f"the limit never bound: no {bench.window_s} s reached {bench.per_window} calls "
            "(a larger --limited-invoices would)"
        )
    target = f"target <= {bench.wall_target:.2f}" if bench.wall_target is not None else "the issue sets no target"
    print(f"wall/floor: {limited['elapsed_s'] / floor_s:.2f} ({target}); 429s received: {waits} (target 0)")


if __name__ == "__main__":
    main()
