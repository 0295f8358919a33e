"""Benchmark: the first sync of a 50,000-message mailbox into PostgreSQL, against a raw httpx baseline in the same
run, for Gmail (``--provider google_workspace``, the default) or Microsoft 365 (``--provider microsoft365``).

Prints:
1. the baseline's messages/s: httpx making the calls the provider's source makes (Gmail: ``messages.list`` pages of
   500 ids per synced label, then ``messages.get`` for each, eight in flight; Microsoft 365: each synced folder's
   ``messages/delta`` with the source's ``$select``, ``$filter`` and page size to its delta link), the same rows by
   COPY into one table;
2. the platform's: the real Dagster asset (OAuth consent through the sandbox, the same calls, dlt into PostgreSQL,
   canonical records); and their ratio (target: platform >= 0.5 x baseline).

The mailbox's messages all fall within the first sync's window (the provider's ``history_days`` default); the bench
asserts that both sides load every message the sandbox holds in the synced folders. The sandbox (quotas and limits
off: the bench measures the pipeline, not the provider's limits) runs in its own process. What differs per provider
is declared in bench/mailbox_providers.py. Run with `bench/run mailbox [--provider microsoft365] [--messages N]`
(starts a throwaway PostgreSQL; `bench/run gmail` is the Gmail one), or set VRTX_BENCH_POSTGRES_URL.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg2
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchlib import Platform, access_token, fresh_database  # noqa: E402 -- after the path is set
from mailbox_providers import PROVIDERS, MailboxBench, history_days, window_start  # noqa: E402

SERVE = "import sys; sys.path.insert(0, 'bench'); from mailbox import serve_sandbox; serve_sandbox(*sys.argv[1:])"


def serve_sandbox(slug: str, messages: str) -> None:
    """The sandbox's process: serves the bench's mailbox until stdin closes."""
    from providers.sandbox_kit.serve import ServedApp

    bench = PROVIDERS[slug]
    app, held = bench.sandbox(int(messages), bench.days)
    served = ServedApp(app).start()
    print(json.dumps({"base_url": served.base_url, "held": held}), flush=True)
    for _ in sys.stdin:
        pass


def platform_sync(bench: MailboxBench, base_url: str, admin_url: str, home: Path) -> dict[str, Any]:
    from dagster._core.test_utils import instance_for_test

    from vrtx_pipelines.cli.sync import sync_now
    from vrtx_pipelines.warehouse import pipeline_for

    platform = Platform(admin_url, home, base_url, {"VRTX_PACING": "headers"}, slug=bench.slug)
    platform.connect_tenant("bench")
    with instance_for_test() as instance:
        started = time.perf_counter()
        rows = sync_now(platform.settings, bench.slug, "bench", ["messages"], instance=instance)
        elapsed = time.perf_counter() - started
    with pipeline_for(platform.settings, bench.slug, "bench").sql_client() as client:
        loaded = int(client.execute_sql("SELECT COUNT(*) FROM messages")[0][0])
    return {"elapsed_s": elapsed, "rows": rows, "warehouse_rows": loaded}


def baseline(bench: MailboxBench, base_url: str, database_url: str, since: datetime) -> dict[str, Any]:
    """The floor a hand-written loader reaches: the provider's calls with httpx, the rows by COPY into one table
    (the row's id, thread and subject as columns, the whole row as jsonb)."""
    url = make_url(database_url)
    conn = psycopg2.connect(host=url.host, port=url.port, user=url.username, password=url.password, dbname=url.database)
    with conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE raw_messages (id text PRIMARY KEY, thread text, subject text, row jsonb)")
    token = access_token(bench.slug, base_url)
    started = time.perf_counter()
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        rows = bench.fetch(client, base_url, since)
    key, thread, subject = bench.columns
    buffer = io.StringIO()
    for row in rows:
        line = json.dumps(row, default=str).replace("\\", "\\\\")
        buffer.write(f"{row[key]}\t{row[thread]}\t{(row[subject] or '').replace(chr(9), ' ')}\t{line}\n")
    buffer.seek(0)
    with conn, conn.cursor() as cur:
        cur.copy_expert("COPY raw_messages (id, thread, subject, row) FROM STDIN", buffer)
    conn.close()
    return {"elapsed_s": time.perf_counter() - started, "rows": len(rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", choices=sorted(PROVIDERS), default="google_workspace")
    parser.add_argument("--messages", type=int, default=50_000)
    args = parser.parse_args()
    bench = PROVIDERS[args.provider]
    admin_url = os.environ["VRTX_BENCH_POSTGRES_URL"]
    sandbox = subprocess.Popen([sys.executable, "-c", SERVE, bench.slug, str(args.messages)], cwd=ROOT,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert sandbox.stdout is not None
        served = json.loads(sandbox.stdout.readline())
        base_url, held = str(served["base_url"]), int(served["held"])
        print(f"first sync of a {args.messages:,}-message {bench.name} mailbox ({bench.folders}: {held:,} messages, "
              f"all within the {history_days(bench.slug)}-day window)", flush=True)  # fmt: skip
        raw = baseline(bench, base_url, fresh_database(admin_url), window_start(bench))
        raw_rate = raw["rows"] / raw["elapsed_s"]
        print(f"  raw httpx + COPY baseline ({bench.calls}): {raw['rows']:,} messages in {raw['elapsed_s']:.1f} s "
              f"({raw_rate:,.0f} messages/s)", flush=True)  # fmt: skip
        with tempfile.TemporaryDirectory() as home:
            platform = platform_sync(bench, base_url, admin_url, Path(home))
    finally:
        sandbox.terminate()
        sandbox.wait()
    loaded = platform["warehouse_rows"]
    per_s = loaded / platform["elapsed_s"]
    print(f"  platform (Dagster asset, dlt, canonical records): {loaded:,} messages in "
          f"{platform['elapsed_s']:.1f} s ({per_s:,.0f} messages/s)")  # fmt: skip
    assert raw["rows"] == held, f"the baseline read {raw['rows']:,} messages, the sandbox holds {held:,}"
    assert loaded == held, f"the platform loaded {loaded:,} messages, the sandbox holds {held:,}"
    ratio = per_s / raw_rate
    verdict = "meets" if ratio >= 0.5 else "misses"
    print(f"  ratio platform/baseline: {ratio:.2f} ({verdict} the 0.5 target)")


if __name__ == "__main__":
    main()
