"""Benchmark: webhook ingest on PostgreSQL (signature check + durable insert into webhook_inbox).

The API is served as in production: uvicorn (`--factory api.main:serve_app`, uvloop + httptools, access log
off) with `--workers 2`, one per core of this 2-core machine. The load is `wrk` (C, one event loop per thread)
on loopback, closed loop with a fixed number of connections; a Lua script gives every request its own Xero
payload (one event with a distinct resourceId), signed with the tenant's webhook key beforehand, so each
request is a real verified insert and none is dropped as a duplicate.

Prints, in one run:
1. the load generator's ceiling: wrk against an endpoint that does nothing (same uvicorn settings), and wrk's
   own CPU use in every run, so the reader sees it is not the bottleneck;
2. a raw baseline: a bare Starlette app (bench/raw_ingest.py) doing only the HMAC check and one INSERT;
3. the platform: POST /api/v1/webhooks/xero/{tenant}: tenant lookup (cached), decrypted-secret cache, Xero's
   verifier, parse, stale/foreign/subscription filter, INSERT ... ON CONFLICT DO NOTHING committed by the
   process's inbox writer (deliveries arriving together share a commit; each is answered after its own). Beside
   it, on the same two cores, `vrtx webhook-worker` as deployed: every stored event is claimed and goes through
   the fast path (fetched by id from the sandbox); the run launch is pointed at no Dagster webserver here, so the
   claimed events are handed back to the sensor. The inbox's final states are printed.
Targets (at 64 connections): platform >= 3,000 req/s with p99 < 100 ms, >= 0.9 of the baseline's throughput, zero
non-2xx, and no acknowledged event lost (every 2xx is a row in the inbox; rows beyond the 2xx count are requests
the server finished after wrk stopped listening).
Run with `bench/run webhooks` (starts a throwaway PostgreSQL), or set VRTX_BENCH_POSTGRES_URL.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchlib import Children, Platform, free_port, fresh_database, uvicorn, wait_for

WRK_SCRIPT = r"""
-- args: payload file ("signature<TAB>body" per line), number of threads. Thread k sends lines k, k+n, k+2n...
local threads, counter = {}, 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  local n = tonumber(args[2])
  reqs, i, idx, ok, bad, sent, exhausted = {}, 0, 0, 0, 0, 0, 0
  for line in io.lines(args[1]) do
    if i % n == tid then
      local sig, body = line:match("^([^\t]+)\t(.*)$")
      reqs[#reqs + 1] = wrk.format("POST", wrk.path,
        {["Content-Type"] = "application/json", ["x-xero-signature"] = sig}, body)
    end
    i = i + 1
  end
end
function request()
  idx = idx + 1
  if idx > #reqs then
    exhausted = 1
    wrk.thread:stop()
    idx = #reqs
  end
  sent = sent + 1
  return reqs[idx]
end
function response(status, headers, body)
  if status >= 200 and status < 300 then ok = ok + 1 else bad = bad + 1 end
end
function done(summary, latency, requests)
  local o, b, s, x = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    o = o + t:get("ok"); b = b + t:get("bad"); s = s + t:get("sent"); x = x + t:get("exhausted")
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"ok":%d,"bad":%d,"sent":%d,"exhausted":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration, o, b, s, x,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""

PING_SCRIPT = r"""
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"ok":%d,"bad":%d,"sent":%d,"exhausted":0,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration, summary.requests - e.status, e.status, summary.requests,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def write_payloads(path: Path, org: str, key: str, count: int, run: str) -> None:
    """``count`` distinct Xero deliveries, one event each, signed with ``key``: ``signature<TAB>body`` lines."""
    from providers.xero.webhooks import sign as signature

    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    with path.open("w") as out:
        for n in range(count):
            category, plural = ("INVOICE", "Invoices") if n % 2 else ("CONTACT", "Contacts")
            resource = f"{run}-{n:08d}-{secrets.token_hex(4)}"
            body = json.dumps(
                {
                    "events": [
                        {
                            "resourceUrl": f"https://api.xero.com/api.xro/2.0/{plural}/{resource}",
                            "resourceId": resource,
                            "eventDateUtc": now,
                            "eventType": "UPDATE",
                            "eventCategory": category,
                            "tenantId": org,
                            "tenantType": "ORGANISATION",
                        }
                    ],
                    "firstEventSequence": n + 1,
                    "lastEventSequence": n + 1,
                    "entropy": secrets.token_hex(10).upper(),
                },
                separators=(",", ":"),
            ).encode()
            out.write(f"{signature(body, key)}\t{body.decode()}\n")


def wrk(url: str, seconds: float, threads: int, connections: int, script: Path, *args: str) -> dict[str, Any]:
    """One wrk run; its summary plus the CPU it used (user + system seconds, from the kernel's accounting)."""
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(script), url]
    if args:
        argv += ["--", *args]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _pid, status, usage = os.wait4(process.pid, 0)
    assert process.stdout is not None
    output = process.stdout.read().decode()
    found = re.search(r"^WRKJSON (\{.*\})$", output, re.MULTILINE)
    if status != 0 or found is None:
        raise SystemExit(f"error: wrk failed:\n{output}")
    result: dict[str, Any] = json.loads(found.group(1))
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    result["rate"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def settled_count(count: Any) -> int:
    """The row count once the server has finished what wrk left in flight (two equal reads 0.3 s apart)."""
    last = [-1]

    def stable() -> bool:
        now = int(count())
        same = now == last[0]
        last[0] = now
        return same

    wait_for("the inbox to settle", stable, 30, every_s=0.3)
    return last[0]


def measure(
    label: str,
    url: str,
    args: argparse.Namespace,
    workdir: Path,
    count: Any,
    write: Any,
) -> dict[str, Any]:
    """Warm-up then the measured run, each with its own distinct payloads; checks every 2xx is a stored row."""
    script = workdir / "ingest.lua"
    script.write_text(WRK_SCRIPT)
    results = []
    for phase, seconds in (("warmup", args.warmup), ("measured", args.seconds)):
        payloads = workdir / f"{label}-{phase}.tsv"
        write(payloads, max(1000, int(args.max_rate * seconds)), f"{label}-{phase}")
        before = int(count())
        result = wrk(url, seconds, args.threads, args.connections, script, str(payloads), str(args.threads))
        result["rows"] = settled_count(count) - before
        payloads.unlink()
        if result["exhausted"]:
            raise SystemExit(f"error: {label} ran out of distinct payloads: raise --max-rate")
        results.append(result)
    measured = results[1]
    measured["all_ok"] = sum(r["ok"] for r in results)
    measured["all_rows"] = sum(r["rows"] for r in results)
    measured["all_sent"] = sum(r["sent"] for r in results)
    measured["all_bad"] = sum(r["bad"] + r["connect"] + r["read"] + r["write"] + r["timeout"] for r in results)
    return measured


def report(label: str, r: dict[str, Any]) -> None:
    print(
        f"{label}: {r['rate']:,.0f} req/s over {r['duration_us'] / 1e6:.1f} s; "
        f"latency p50 {r['p50_us'] / 1000:.1f} ms, "
        f"p90 {r['p90_us'] / 1000:.1f} ms, p99 {r['p99_us'] / 1000:.1f} ms, max {r['max_us'] / 1000:.1f} ms; "
        f"wrk CPU {100 * r['cpu_s'] / (r['duration_us'] / 1e6):.0f}% of one core"
    )
    if "all_rows" in r:
        print(
            f"    warm-up + measured: {r['all_ok']:,} answered 2xx, {r['all_bad']} non-2xx or socket errors, "
            f"{r['all_rows']:,} rows stored, {r['all_sent']:,} sent "
            f"({r['all_rows'] - r['all_ok']} finished after wrk stopped listening)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15, help="measured duration of each run")
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (the concurrency)")
    parser.add_argument("--max-rate", type=float, default=8000, help="distinct payloads prepared per second of load")
    args = parser.parse_args()
    admin_url = os.environ.get("VRTX_BENCH_POSTGRES_URL") or os.environ["VRTX_TEST_POSTGRES_URL"]

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from providers.sandbox_kit.serve import ServedApp
    from providers.xero.sandbox import XeroSandbox, create_app
    from vrtx_pipelines.credentials.vault import vault_from_settings
    from vrtx_pipelines.db.session import engine_for, session_scope
    from vrtx_pipelines.registry import get_provider
    from vrtx_pipelines.webhooks.config import configure_webhook

    print(
        f"== Webhook ingest on PostgreSQL: uvicorn --workers {args.workers}; wrk -t{args.threads} "
        f"-c{args.connections}, {args.warmup:g} s warm-up + {args.seconds:g} s measured per run; "
        f"load average at start {os.getloadavg()[0]:.2f}"
    )
    sandbox = XeroSandbox(seed=1)
    org = sandbox.add_organisation("Bench Ltd", contacts=5, invoices=5, lines_per_invoice=1, payments=1, items=1)
    key = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory() as tmp, ServedApp(create_app(sandbox)) as served:
        workdir = Path(tmp)
        platform = Platform(
            admin_url, workdir / "home", served.base_url, {"VRTX_DAGSTER_URL": f"http://127.0.0.1:{free_port()}"}
        )
        platform.connect_tenant("bench")
        settings = platform.settings
        with session_scope(engine_for(settings.sqlalchemy_url)) as session:
            configure_webhook(
                session, vault_from_settings(settings), settings, get_provider("xero"), "bench",
                secret=key, events=None, is_active=True,
            )  # fmt: skip
        # psycopg2, the driver the platform uses on PostgreSQL too
        raw_url = make_url(fresh_database(admin_url)).set(drivername="postgresql+psycopg2").render_as_string(False)
        raw_engine = create_engine(raw_url)
        with raw_engine.begin() as conn:
            from raw_ingest import TABLE_DDL

            conn.execute(text(TABLE_DDL))

        def write(path: Path, count: int, run: str) -> None:
            write_payloads(path, org, key, count, run)

        children = Children(workdir)
        try:
            port = free_port()
            raw_env = {"RAW_INGEST_DATABASE_URL": raw_url, "RAW_INGEST_KEY": key}
            uvicorn(children, "raw", "raw_ingest:create_app", port, args.workers, raw_env)
            children.wait_http("raw", f"http://127.0.0.1:{port}/ping", 60)
            ping = workdir / "ping.lua"
            ping.write_text(PING_SCRIPT)
            ceiling = wrk(f"http://127.0.0.1:{port}/ping", args.seconds, args.threads, args.connections, ping)
            report("load generator ceiling (wrk -> empty 200, same uvicorn)", ceiling)

            def raw_rows() -> int:
                with raw_engine.connect() as conn:
                    return int(conn.execute(text("SELECT count(*) FROM raw_webhook_inbox")).scalar() or 0)

            raw = measure("raw", f"http://127.0.0.1:{port}/ingest", args, workdir, raw_rows, write)
            report("baseline (Starlette: HMAC + one INSERT)", raw)
            children.stop("raw")

            port = free_port()
            uvicorn(children, "api", "api.main:serve_app", port, args.workers, {})
            children.wait_http("api", f"http://127.0.0.1:{port}/healthz", 60)
            children.start("webhook-worker", [sys.executable, "-m", "vrtx_pipelines.cli.main", "webhook-worker"])
            url = f"http://127.0.0.1:{port}/api/v1/webhooks/xero/bench"

            def inbox_rows() -> int:
                return int(platform.scalar("SELECT count(*) FROM webhook_inbox"))

            ours = measure("platform", url, args, workdir, inbox_rows, write)
            report("platform (POST /api/v1/webhooks/xero/bench)", ours)
            states = platform.rows(
                "SELECT status, coalesce(run_id = 'released', false), count(*) FROM webhook_inbox GROUP BY 1, 2"
            )
            print(
                "    inbox afterwards: "
                + ", ".join(f"{n:,} {s}{' (fast path done, handed to the sensor)' if r else ''}" for s, r, n in states)
            )
        finally:
            children.stop()
        raw_engine.dispose()

    lost = ours["all_ok"] - ours["all_rows"]
    ratio = ours["rate"] / raw["rate"]
    ok_rate = ours["rate"] >= 3000
    ok_p99 = ours["p99_us"] / 1000 < 100
    ok_loss = lost <= 0 and ours["all_rows"] <= ours["all_sent"] and ours["all_bad"] == 0
    print(f"platform/baseline throughput: {ratio:.2f} (target >= 0.9): {'PASS' if ratio >= 0.9 else 'MISS'}")
    print(f"throughput {ours['rate']:,.0f} req/s (target >= 3,000): {'PASS' if ok_rate else 'MISS'}")
    print(f"p99 {ours['p99_us'] / 1000:.1f} ms (target < 100 ms): {'PASS' if ok_p99 else 'MISS'}")
    print(
        f"no acknowledged event lost, zero non-2xx ({max(lost, 0)} lost, {ours['all_bad']} non-2xx/errors): "
        f"{'PASS' if ok_loss else 'MISS'}"
    )
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
