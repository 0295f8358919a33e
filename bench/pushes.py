"""Benchmark: a burst of contact creates for one Xero organisation, against the floor Xero's batch endpoint allows.

Set-up: the Xero sandbox in its own process with Xero's real limits on (60 calls a minute and 5 at once per
organisation), every Accounting API call it answers logged with its time and element count; the platform as
`vrtx dev` runs it (`vrtx api`, `dagster dev` with the daemon, on a fresh PostgreSQL database); a tenant connected
through the real OAuth consent, its first full sync (launched by the partitions sensor) awaited, the sandbox
subscribed to the API's webhook URL, then a quiet minute so the burst starts on an empty rate-limit window.

Prints, in one run:
1. the floor: the same N creates (the same request elements the platform builds) as ceil(N/50) PUT
   Contacts?summarizeErrors=false with httpx straight at the sandbox, into a second organisation, one after another
   and all at once (Xero takes 5 at a time), and the rate-limit floor computed from Xero's published limits;
2. the platform: N POST .../push/contact (8 client threads, one Idempotency-Key each) until every push is done,
   sent by the real push machinery (the API's immediate launcher, the push sensor, push runs); its API calls,
   the calls that carried several pushes, and the ratio platform/floor against the 1.2 target;
3. where the platform's time goes: submission, each push run's creation, dequeue, process start and end, the PUTs
   themselves, and the wait from the last answer to the last push recorded done;
4. the echo webhooks of the burst's own creates: how many were skipped as already current without an API call.
Checks: every push done, distinct external ids, the sandbox holds exactly N new contacts.
Run with `bench/run pushes` (starts a throwaway PostgreSQL), or set VRTX_BENCH_POSTGRES_URL.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from benchlib import ROOT, Children, Platform, Runs, serve_platform, service_ports, wait_for
from pull import access_token

BATCH = 50  # Xero's advice: at most 50 elements a request
MINUTE_LIMIT, CONCURRENT_LIMIT = 60, 5  # Xero's published per-organisation limits, the sandbox's defaults
BASELINE_USER = "baseline@bench.example"
POLL_S = 0.05

SERVE = """
import json, sys, threading, time
from providers.xero.sandbox import XeroSandbox, create_app
from providers.sandbox_kit.serve import ServedApp
sandbox = XeroSandbox(seed=1)
org = sandbox.add_organisation("Bench Ltd", contacts=20, invoices=20, lines_per_invoice=1, payments=2, items=2)
baseline = sandbox.add_organisation("Baseline Ltd", contacts=1, invoices=1, lines_per_invoice=1, payments=1, items=1,
                                    user_email=sys.argv[1])
app = create_app(sandbox)  # Xero's real limits: 60 calls a minute and 5 at once per organisation
calls, lock = [], threading.Lock()

async def metered(scope, receive, send):
    # Every Accounting API call: (organisation, method, path, elements in the body, status, started, ended).
    if scope["type"] != "http" or "/api.xro/" not in scope["path"]:
        return await app(scope, receive, send)
    started, body, status = time.time(), bytearray(), []

    async def receiving():
        message = await receive()
        body.extend(message.get("body", b""))
        return message

    async def sending(message):
        if message["type"] == "http.response.start":
            status.append(message["status"])
        await send(message)

    await app(scope, receiving, sending)
    tenant = dict(scope["headers"]).get(b"xero-tenant-id", b"").decode().lower()
    elements = 0
    if body:
        try:
            elements = sum(len(v) for v in json.loads(body).values() if isinstance(v, list))
        except ValueError:
            pass
    with lock:
        calls.append([tenant, scope["method"], scope["path"], elements, status[0] if status else None, started,
                      time.time()])

served = ServedApp(metered).start()
print(json.dumps({"base_url": served.base_url, "org": org, "baseline": baseline}), flush=True)
for line in sys.stdin:
    words = line.split()
    if words[0] == "calls":
        with lock:
            answer = [c for c in calls if c[0] == words[1]]
    elif words[0] == "subscribe":
        sandbox.subscribe_webhooks(words[1], words[2], [words[3]])
        answer = "ok"
    elif words[0] == "flush":
        answer = sandbox.flush_webhooks(60)
    elif words[0] == "count":
        answer = sandbox.count(words[1], "contacts")
    print(json.dumps(answer), flush=True)
"""


class Sandbox:
    """The Xero sandbox process, asked over its stdin for its call log, subscriptions and counts."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVE, BASELINE_USER], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        info = json.loads(self.process.stdout.readline())
        self.base_url: str = info["base_url"]
        self.org: str = info["org"]
        self.baseline_org: str = info["baseline"]

    def ask(self, *words: str) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(" ".join(words) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def calls(self, org: str, since: float = 0.0) -> list[dict[str, Any]]:
        keys = ("org", "method", "path", "elements", "status", "started", "ended")
        return [dict(zip(keys, row, strict=True)) for row in self.ask("calls", org) if row[5] >= since]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def contact(prefix: str, n: int) -> dict[str, Any]:
    return {"id": f"{prefix}-{n}", "name": f"{prefix.title()} Contact {n}", "email": f"{prefix}-{n}@example.com"}


# --- the floor ----------------------------------------------------------------------------------------------------


def rate_limit_floor_s(calls: int) -> float:
    """What Xero's published limits alone impose on ``calls`` calls started at once on an empty window: a wait of a
    minute for every full minute's budget before the last call (a burst of up to 60 calls has none)."""
    return (math.ceil(calls / MINUTE_LIMIT) - 1) * 60.0


def baseline(sandbox: Sandbox, n: int) -> dict[str, float]:
    """The same creates as batched PUTs straight at the sandbox: one after another, then all at once."""
    from providers.xero.push_mappers import contact_element
    from vrtx_pipelines.records.canonical import Contact

    token = access_token("xero", sandbox.base_url, BASELINE_USER)
    headers = {
        "Authorization": f"Bearer {token}", "xero-tenant-id": sandbox.baseline_org, "Accept": "application/json",
    }  # fmt: skip
    timings = {}
    with httpx.Client(base_url=sandbox.base_url, headers=headers, timeout=60) as http:

        def put(chunk: list[dict[str, Any]]) -> None:
            answer = http.put(
                "/api.xro/2.0/Contacts",
                params={"summarizeErrors": "false"},
                json={"Contacts": chunk},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            written = answer.json().get("Contacts", []) if answer.status_code == 200 else []
            if len(written) != len(chunk) or any(c.get("HasValidationErrors") for c in written):
                raise SystemExit(f"error: the baseline PUT was refused: {answer.status_code} {answer.text[:300]}")

        for mode in ("sequential", "concurrent"):
            elements = [contact_element(Contact.model_validate(contact(f"base-{mode}", i))) for i in range(n)]
            chunks = [elements[i : i + BATCH] for i in range(0, n, BATCH)]
            started = time.perf_counter()
            if mode == "sequential":
                for chunk in chunks:
                    put(chunk)
            else:
                with ThreadPoolExecutor(min(len(chunks), CONCURRENT_LIMIT)) as pool:
                    list(pool.map(put, chunks))
            timings[mode] = time.perf_counter() - started
            time.sleep(1)  # the sandbox's concurrency counter settles before the next mode
    return timings


# --- the platform -------------------------------------------------------------------------------------------------


def burst(api: httpx.Client, platform: Platform, n: int) -> dict[str, Any]:
    """N pushes submitted from 8 threads; returns when every one is done or failed."""

    def submit(i: int) -> int:
        answer = api.post(
            "/api/v1/integrations/xero/push/contact",
            json={"operation": "create", "data": contact("burst", i)},
            headers={"Idempotency-Key": f"burst-{i}"},
        )
        if answer.status_code != 202:
            raise SystemExit(f"error: push refused: {answer.status_code} {answer.text}")
        return int(answer.json()["id"])

    started_at = time.time()
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(submit, range(n)))
    submitted_at = time.time()

    def finished() -> bool:
        return platform.scalar(
            "SELECT count(*) FROM push_outbox WHERE id = ANY(:ids) AND status IN ('done', 'failed')", ids=ids
        ) == len(ids)

    wait_for(f"{n} pushes done", finished, 900, every_s=POLL_S)
    rows = platform.rows(
        "SELECT status, external_id, run_id, finished_at FROM push_outbox WHERE id = ANY(:ids)", ids=ids
    )
    last_done = max(_epoch(finished_at) for *_rest, finished_at in rows)
    return {
        "started_at": started_at, "submitted_at": submitted_at, "done_at": last_done,
        "done": sum(status == "done" for status, *_ in rows), "external_ids": len({row[1] for row in rows if row[1]}),
        "run_ids": sorted({row[2] for row in rows if row[2]}),
    }  # fmt: skip


def _epoch(value: datetime) -> float:
    return value.replace(tzinfo=value.tzinfo or UTC).timestamp()


def push_runs(runs: Runs, since: float) -> list[dict[str, Any]]:
    """Every push run created since ``since``, oldest first: its timings and what its op reported."""
    from dagster import DagsterEventType, RunsFilter

    from vrtx_pipelines.names import KIND_TAG, PUSH_KIND

    found = []
    records = runs.instance.get_run_records(
        RunsFilter(tags={KIND_TAG: PUSH_KIND}, created_after=datetime.fromtimestamp(since, UTC))
    )
    for record in sorted(records, key=lambda r: r.create_timestamp):
        timing = runs.timing(record.dagster_run.run_id)
        if timing is None:
            continue
        metadata: dict[str, Any] = {}
        for entry in runs.instance.all_logs(record.dagster_run.run_id, of_type=DagsterEventType.STEP_OUTPUT):
            data = entry.dagster_event.event_specific_data if entry.dagster_event else None
            metadata = {k: v.value for k, v in (getattr(data, "metadata", None) or {}).items()}
        found.append({"run_id": record.dagster_run.run_id, **timing, **metadata})
    return found


def echo_outcomes(platform: Platform, since: float) -> list[tuple[str, str | None, int]]:
    return [
        (status, error, int(count))
        for status, error, count in platform.rows(
            "SELECT status, error_message, count(*) FROM webhook_inbox WHERE received_at >= to_timestamp(:t) "
            "GROUP BY status, error_message ORDER BY count(*) DESC",
            t=since,
        )
    ]


def subscribe(platform: Platform, sandbox: Sandbox, api_url: str) -> None:
    """What `vrtx dev` does for a sandbox in its own process: a fresh key for the tenant, the sandbox told of it."""
    import secrets

    from vrtx_pipelines.credentials.vault import vault_from_settings
    from vrtx_pipelines.db.session import engine_for, session_scope
    from vrtx_pipelines.registry import get_provider
    from vrtx_pipelines.webhooks.config import configure_webhook

    key = secrets.token_urlsafe(32)
    settings = platform.settings
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        vault = vault_from_settings(settings)
        configure_webhook(session, vault, settings, get_provider("xero"), "bench", secret=key, events=None,
                          is_active=True)  # fmt: skip
    sandbox.ask("subscribe", f"{api_url}/api/v1/webhooks/xero/bench", key, sandbox.org)


# --- the report ---------------------------------------------------------------------------------------------------


def report(
    n: int,
    floor: dict[str, float],
    result: dict[str, Any],
    calls: list[dict[str, Any]],
    runs: list[dict[str, Any]],
    echoes: list[tuple[str, str | None, int]],
    created: int,
) -> None:
    t0 = result["started_at"]
    total = result["done_at"] - t0
    batches = math.ceil(n / BATCH)
    computed = rate_limit_floor_s(batches)
    floor_s = max(min(floor.values()), computed)
    writes = [c for c in calls if c["method"] in ("PUT", "POST")]
    several = [c for c in writes if c["elements"] > 1]
    reads = [c for c in calls if c["method"] == "GET"]
    print(
        f"\nfloor: {batches} PUTs of up to {BATCH}: {floor['sequential']:.2f} s one after another, "
        f"{floor['concurrent']:.2f} s all at once (httpx straight at the sandbox); Xero's limits "
        f"({MINUTE_LIMIT}/min, {CONCURRENT_LIMIT} at once) add {computed:.0f} s for {batches} calls; floor = "
        f"{floor_s:.2f} s"
    )
    print(
        f"platform: {n} creates, first request -> all {result['done']} done in {total:.2f} s "
        f"(submitting took {result['submitted_at'] - t0:.2f} s); API calls {len(calls)} "
        f"({len(writes)} writes, {len(reads)} reads, {sum(c['status'] == 429 for c in calls)} answered 429); "
        f"calls that carried several pushes: {len(several)} "
        f"(elements per write: {[c['elements'] for c in writes]})"
    )
    ratio = total / floor_s
    print(f"ratio platform/floor: {ratio:.2f} (target <= 1.2): {'PASS' if ratio <= 1.2 else 'MISS'}")

    print(f"\nwhere the platform's {total:.2f} s go (seconds after the first request):")
    for i, run in enumerate(runs):
        pushes = len(run.get("push_ids") or [])
        print(
            f"  push run {i + 1}: created {run['created'] - t0:6.2f}, dequeued {run['launching'] - t0:6.2f}, "
            f"RUN_START {run['started'] - t0:6.2f} (process start {run['started'] - run['launching']:.2f} s), "
            f"ended {run['ended'] - t0:6.2f}; {pushes} pushes claimed, {run.get('api_calls', 0)} calls "
            f"({run.get('batched_calls', 0)} batched)"
        )
    for call in writes:
        print(
            f"  {call['method']} {call['path'].rsplit('/', 1)[-1]} x{call['elements']}: sent "
            f"{call['started'] - t0:6.2f}, answered {call['ended'] - t0:6.2f} "
            f"({call['ended'] - call['started']:.2f} s, {call['status']})"
        )
    if runs:
        first = runs[0]
        fixed = {
            "first request -> first push run created": first["created"] - t0,
            "created -> dequeued (run queue)": first["launching"] - first["created"],
            "dequeued -> RUN_START (run process start)": first["started"] - first["launching"],
        }
        if writes:
            fixed["RUN_START -> first write sent (claim, prepare)"] = writes[0]["started"] - first["started"]
            committed = result["done_at"] - writes[-1]["ended"]
            fixed["last write answered -> last push done (outcomes committed)"] = committed
            fixed["first write sent -> last write answered"] = writes[-1]["ended"] - writes[0]["started"]
        print("fixed overheads: " + "; ".join(f"{label} {value:.2f} s" for label, value in fixed.items()))
    print(f"{len(runs)} push runs; excess over the floor {total - floor_s:.2f} s")

    received = sum(count for _s, _e, count in echoes)
    print(f"\necho webhooks of the burst's creates: {received} events received; by outcome: " + (
        ", ".join(f"{status} ({error or '-'}): {count}" for status, error, count in echoes) or "none"))  # fmt: skip
    intact = result["done"] == n == result["external_ids"] == created
    print(
        f"pushes done {result['done']}/{n}, distinct external ids {result['external_ids']}, "
        f"sandbox contacts created {created}: {'PASS' if intact else 'MISS'} (none lost, none duplicated)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=200)
    args = parser.parse_args()
    admin_url = os.environ.get("VRTX_BENCH_POSTGRES_URL") or os.environ["VRTX_TEST_POSTGRES_URL"]
    print(f"== Push burst: {args.pushes} contact creates, one Xero organisation; load average {os.getloadavg()[0]:.2f}")
    sandbox = Sandbox()
    with tempfile.TemporaryDirectory() as tmp:
        children = Children(Path(tmp))
        try:
            floor = baseline(sandbox, args.pushes)
            platform = Platform(admin_url, Path(tmp) / "home", sandbox.base_url, service_ports())
            token = platform.connect_tenant("bench")
            dagster_env, api_url = serve_platform(platform, children)
            runs = Runs(dagster_env)
            api = httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {token}"}, timeout=60)

            def synced() -> bool:
                page = api.get("/api/v1/integrations/xero/records/contacts", params={"limit": 1}).json()
                return bool(page["records"]) and runs.in_flight() == 0

            wait_for("the first full sync", synced, 300, every_s=0.5)
            subscribe(platform, sandbox, api_url)
            last_call = max(c["ended"] for c in sandbox.calls(sandbox.org))
            quiet_s = max(0.0, last_call + 61 - time.time())
            print(f"first full sync done; waiting {quiet_s:.0f} s for an empty rate-limit window")
            time.sleep(quiet_s)
            before = sandbox.ask("count", sandbox.org)
            result = burst(api, platform, args.pushes)
            sandbox.ask("flush")
            wait_for("no run in flight", lambda: runs.in_flight() == 0, 300, every_s=0.2)
            # Echoes held while the pushes were in flight are claimed by the webhook sensor's next tick (5 s).
            unclaimed = (
                "SELECT count(*) FROM webhook_inbox WHERE status = 'received' AND received_at >= to_timestamp(:t)"
            )
            wait_for("the echoes claimed", lambda: platform.scalar(unclaimed, t=result["started_at"]) == 0, 120)
            wait_for("no run in flight", lambda: runs.in_flight() == 0, 300, every_s=0.2)
            calls = sandbox.calls(sandbox.org, since=result["started_at"])
            created = sandbox.ask("count", sandbox.org) - before
            report(args.pushes, floor, result, calls, push_runs(runs, result["started_at"]),
                   echo_outcomes(platform, result["started_at"]), created)  # fmt: skip
            print(f"\nload average at end {os.getloadavg()[0]:.2f}")
        except BaseException:
            for name in ("api", "dagster"):
                if any(n == name for n, _p in children.started):
                    print(f"--- {name} log tail ---\n{children.tail(name)}", file=sys.stderr)
            raise
        finally:
            children.stop()
            sandbox.stop()


if __name__ == "__main__":
    main()
