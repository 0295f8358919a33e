"""Benchmark: daemon-driven latencies on PostgreSQL, the platform running as `vrtx dev` runs it.

Set-up: app tables and Dagster storage on one fresh PostgreSQL database; the API served by uvicorn (`vrtx api`,
one process), `dagster dev` (webserver + daemon + code server) on the same instance; a tenant connected to the
Xero sandbox through the real OAuth consent (its first full sync launched by the daemon's partitions sensor and
awaited); the sandbox subscribed to the API's webhook URL with the tenant's key, as `vrtx dev` does.

Prints, in one run:
1. webhook -> canonical record visible: N rounds, alternating contacts and invoices, each changing one record
   in the sandbox (`touch`), then polling GET /api/v1/integrations/xero/records/{entity}?cursor=... every 50 ms
   until the record shows. Rounds are spaced: the next starts once no run is queued or running, so each is one
   webhook -> one targeted pull, not coalesced. p50/p95 against the target p95 < 5 s, and the medians of where
   the time goes (sandbox -> inbox, inbox -> visible); the API applies a webhook's records itself (fast path),
   so the targeted run's own timings (created, queued, process start, run) are printed apart, with how often
   the record was visible before its run was even created.
2. push latency: N sequential POST .../push/contact (distinct Idempotency-Keys), each polled (every 50 ms) until
   done, each started once no run is in flight (a push's contact raises a webhook whose pull would otherwise hold
   the connection's one run slot); p50/p95 against the target p95 < 10 s, and where the time goes.
   Then a burst of B pushes submitted as fast as one client can (8 threads):
   pushes/s until the last is done, and their p50/p95. Checks: every push done, distinct external ids, and the
   sandbox holds exactly as many new contacts as pushes were done (none lost, none duplicated).
Run with `bench/run latency` (starts a throwaway PostgreSQL), or set VRTX_BENCH_POSTGRES_URL.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from pathlib import Path
from typing import Any

import httpx
from benchlib import Children, Platform, Runs, percentile, serve_platform, service_ports, wait_for

POLL_S = 0.05


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def start_platform(args: argparse.Namespace, workdir: Path, children: Children) -> tuple[Any, ...]:
    from providers.sandbox_kit.serve import ServedApp
    from providers.xero.sandbox import XeroSandbox, create_app

    admin_url = os.environ.get("VRTX_BENCH_POSTGRES_URL") or os.environ["VRTX_TEST_POSTGRES_URL"]
    sandbox = XeroSandbox(seed=1)
    org = sandbox.add_organisation("Bench Ltd", contacts=200, invoices=200, lines_per_invoice=2, payments=20, items=10)
    served = ServedApp(create_app(sandbox)).start()
    platform = Platform(admin_url, workdir / "home", served.base_url, service_ports())
    token = platform.connect_tenant("bench")
    dagster_env, api_url = serve_platform(platform, children)
    return sandbox, org, served, platform, token, dagster_env, api_url


def latest_cursor(api: httpx.Client, entity: str, cursor: str | None = None) -> str | None:
    while True:
        page = api.get(f"/api/v1/integrations/xero/records/{entity}", params={"cursor": cursor, "limit": 500}).json()
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return cursor


def webhook_to_record(api: httpx.Client, sandbox: Any, org: str, platform: Platform, runs: Runs, rounds: int) -> None:
    print(f"\n== Webhook -> canonical record visible: {rounds} spaced rounds (contacts and invoices alternately)")
    cursors = {entity: latest_cursor(api, entity) for entity in ("contacts", "invoices")}
    latencies: list[float] = []
    observed: list[tuple[float, float, str]] = []  # (changed at, seen at, record id), epoch seconds
    for n in range(rounds):
        wait_for("no run in flight", lambda: runs.in_flight() == 0, 120, every_s=0.1)
        entity = ("contacts", "invoices")[n % 2]
        touched_at = time.time()
        started = time.perf_counter()
        [record_id] = sandbox.touch(org, entity, 1)

        def visible(entity: str = entity, record_id: str = record_id) -> bool:
            page = api.get(f"/api/v1/integrations/xero/records/{entity}", params={"cursor": cursors[entity]}).json()
            return any(r["external_id"] == record_id for r in page["records"])

        wait_for(f"{entity} {record_id} in the records API", visible, 60, every_s=POLL_S)
        latencies.append(time.perf_counter() - started)
        observed.append((touched_at, time.time(), record_id))
        cursors[entity] = latest_cursor(api, entity, cursors[entity])
    # Where the time went, from the inbox and the runs' own records (read once every run has finished).
    wait_for("no run in flight", lambda: runs.in_flight() == 0, 120, every_s=0.1)
    parts: dict[str, list[float]] = {k: [] for k in ("delivered", "applied", "launched", "queued", "boot", "run")}
    before_run = before_start = 0
    for touched_at, seen_at, record_id in observed:
        received_at = platform.scalar(
            "SELECT received_at FROM webhook_inbox WHERE payload->>'external_id' = :rid ORDER BY id LIMIT 1",
            rid=record_id,
        )
        batch = platform.scalar(
            "SELECT run_id FROM webhook_inbox WHERE payload->>'external_id' = :rid ORDER BY id LIMIT 1", rid=record_id
        )
        timing = runs.timing(batch)
        if received_at is None or timing is None:
            continue
        received = received_at.replace(tzinfo=received_at.tzinfo or UTC).timestamp()
        parts["delivered"].append(received - touched_at)
        parts["applied"].append(seen_at - received)
        parts["launched"].append(timing["created"] - received)
        parts["queued"].append(timing["launching"] - timing["created"])
        parts["boot"].append(timing["started"] - timing["launching"])
        # With the fast path the record is usually visible before the run exists: then the run is the
        # warehouse catching up, not part of this latency.
        before_run += seen_at < timing["created"]
        before_start += seen_at < timing["started"]
        parts["run"].append(timing["ended"] - timing["started"])
    print(
        f"latency over {len(latencies)} rounds: p50 {percentile(latencies, 50):.2f} s, "
        f"p95 {percentile(latencies, 95):.2f} s, max {max(latencies):.2f} s"
    )
    print(
        f"where it goes (medians over {len(parts['run'])} rounds): "
        + ", ".join(
            f"{label} {statistics.median(parts[key]):.2f} s"
            for key, label in (
                ("delivered", "change -> webhook stored"),
                ("applied", "stored -> record seen (fast path fetch + apply + 50 ms poll)"),
            )
            if parts[key]
        )
    )
    print(
        "the targeted run (warehouse refresh), medians: "
        + ", ".join(
            f"{label} {statistics.median(parts[key]):.2f} s"
            for key, label in (
                ("launched", "stored -> run created"),
                ("queued", "created -> dequeued (run queue)"),
                ("boot", "dequeued -> RUN_START (run process spawn + imports)"),
                ("run", "RUN_START -> run ended"),
            )
            if parts[key]
        )
    )
    print(
        f"record visible before its run was created in {before_run}/{len(parts['run'])} rounds, "
        f"before the run started in {before_start}/{len(parts['run'])}"
    )
    p95 = percentile(latencies, 95)
    print(f"webhook -> record p95 {p95:.2f} s (target < 5 s): {verdict(p95 < 5)}")


def push_and_wait(api: httpx.Client, key: str, name: str) -> dict[str, Any]:
    answer = api.post(
        "/api/v1/integrations/xero/push/contact",
        json={"operation": "create", "data": {"id": key, "name": name}},
        headers={"Idempotency-Key": key},
    )
    if answer.status_code != 202:
        raise SystemExit(f"error: push refused: {answer.status_code} {answer.text}")
    return dict(answer.json())


def poll_pushes(
    api: httpx.Client, pushes: dict[int, float], timeout_s: float
) -> dict[int, tuple[float, dict[str, Any]]]:
    """Poll every pending push until done or failed; push id -> (seconds from its submission, final state)."""
    finished: dict[int, tuple[float, dict[str, Any]]] = {}
    deadline = time.monotonic() + timeout_s
    while len(finished) < len(pushes):
        if time.monotonic() > deadline:
            raise SystemExit(f"error: {len(pushes) - len(finished)} pushes not finished after {timeout_s:.0f} s")
        for push_id, submitted in pushes.items():
            if push_id in finished:
                continue
            state = api.get(f"/api/v1/integrations/xero/push/{push_id}").json()
            if state["status"] in ("done", "failed"):
                finished[push_id] = (time.perf_counter() - submitted, state)
        time.sleep(POLL_S)
    return finished


def pushes(api: httpx.Client, sandbox: Any, org: str, runs: Runs, sequential: int, burst: int) -> None:
    print(f"\n== Push latency: {sequential} sequential pushes, then a burst of {burst}")
    before = sandbox.count(org, "contacts")
    results: dict[int, tuple[float, dict[str, Any]]] = {}
    latencies: list[float] = []
    observed: list[tuple[float, float, str | None]] = []  # (submitted at, seen done at, run id), epoch seconds
    for n in range(sequential):
        wait_for("no run in flight", lambda: runs.in_flight() == 0, 120, every_s=0.1)
        submitted = time.perf_counter()
        submitted_at = time.time()
        queued = push_and_wait(api, f"bench-seq-{n}", f"Sequential Push {n}")
        finished = poll_pushes(api, {queued["id"]: submitted}, 120)
        results.update(finished)
        elapsed, state = finished[queued["id"]]
        latencies.append(elapsed)
        observed.append((submitted_at, time.time(), state["run_id"]))
    wait_for("no run in flight", lambda: runs.in_flight() == 0, 120, every_s=0.1)
    parts: dict[str, list[float]] = {"launched": [], "queued": [], "boot": [], "run": []}
    for submitted_at, seen_at, run_id in observed:
        timing = runs.timing(run_id)
        if timing is not None:
            parts["launched"].append(timing["created"] - submitted_at)
            parts["queued"].append(timing["launching"] - timing["created"])
            parts["boot"].append(timing["started"] - timing["launching"])
            parts["run"].append(seen_at - timing["started"])
    print(
        f"sequential: p50 {percentile(latencies, 50):.2f} s, p95 {percentile(latencies, 95):.2f} s, "
        f"max {max(latencies):.2f} s; medians: push -> run created {statistics.median(parts['launched']):.2f} s, "
        f"created -> dequeued {statistics.median(parts['queued']):.2f} s, "
        f"dequeued -> RUN_START {statistics.median(parts['boot']):.2f} s, "
        f"RUN_START -> seen done {statistics.median(parts['run']):.2f} s"
    )
    replay = api.post(
        "/api/v1/integrations/xero/push/contact",
        json={"operation": "create", "data": {"id": "bench-seq-0", "name": "Sequential Push 0"}},
        headers={"Idempotency-Key": "bench-seq-0"},
    ).json()
    first_id = next(i for i, (_e, s) in results.items() if s["idempotency_key"] == "bench-seq-0")

    wait_for("no run in flight", lambda: runs.in_flight() == 0, 120, every_s=0.1)
    started = time.perf_counter()
    submitted_at: dict[int, float] = {}

    def submit(n: int) -> tuple[int, float]:
        at = time.perf_counter()
        return push_and_wait(api, f"bench-burst-{n}", f"Burst Push {n}")["id"], at

    with ThreadPoolExecutor(max_workers=8) as pool:
        for push_id, at in pool.map(submit, range(burst)):
            submitted_at[push_id] = at
    submit_s = time.perf_counter() - started
    burst_results = poll_pushes(api, submitted_at, 600)
    total_s = time.perf_counter() - started
    results.update(burst_results)
    burst_latencies = [elapsed for elapsed, _state in burst_results.values()]
    run_ids = {state["run_id"] for _elapsed, state in burst_results.values()}
    print(
        f"burst: {burst} submitted in {submit_s:.2f} s, all finished {total_s:.2f} s after the first: "
        f"{burst / total_s:.1f} pushes/s; per push p50 {percentile(burst_latencies, 50):.2f} s, "
        f"p95 {percentile(burst_latencies, 95):.2f} s; {len(run_ids)} push runs"
    )
    sandbox.flush_webhooks(30)
    states = [state for _elapsed, state in results.values()]
    done = [s for s in states if s["status"] == "done"]
    external_ids = {s["external_id"] for s in done}
    created = sandbox.count(org, "contacts") - before
    print(
        f"pushes: {len(states)} submitted, {len(done)} done, {len(states) - len(done)} failed; "
        f"{len(external_ids)} distinct external ids; sandbox contacts created: {created}; "
        f"idempotent replay returned push {replay['id']} (first was {first_id})"
    )
    p95 = percentile(latencies, 95)
    print(f"push p95 {p95:.2f} s sequential, {percentile(burst_latencies, 95):.2f} s in the burst (target < 10 s): "
          f"{verdict(p95 < 10)} / {verdict(percentile(burst_latencies, 95) < 10)}")  # fmt: skip
    intact = len(done) == len(states) == len(external_ids) == created and replay["id"] == first_id
    print(f"no push lost or duplicated: {verdict(intact)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="webhook -> record rounds")
    parser.add_argument("--pushes", type=int, default=10, help="sequential pushes")
    parser.add_argument("--burst", type=int, default=200, help="pushes in the burst")
    parser.add_argument("--only", choices=("webhooks", "pushes"), default=None)
    args = parser.parse_args()
    print(f"== Daemon-driven latencies on PostgreSQL; load average at start {os.getloadavg()[0]:.2f}")
    from vrtx_pipelines.credentials.vault import vault_from_settings
    from vrtx_pipelines.db.session import engine_for, session_scope
    from vrtx_pipelines.webhooks.config import subscribe_demo_webhooks

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        children = Children(workdir)
        served = None
        try:
            sandbox, org, served, platform, token, dagster_env, api_url = start_platform(args, workdir, children)
            runs = Runs(dagster_env)
            api = httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            started = time.perf_counter()

            def synced() -> bool:
                records = api.get("/api/v1/integrations/xero/records/invoices", params={"limit": 1}).json()
                return bool(records["records"]) and runs.in_flight() == 0

            wait_for("the first full sync", synced, 240, every_s=0.5)
            print(
                f"first full sync (launched by the partitions sensor) done {time.perf_counter() - started:.1f} s later"
            )
            settings = platform.settings
            with session_scope(engine_for(settings.sqlalchemy_url)) as session:
                subscribed = subscribe_demo_webhooks(
                    session, vault_from_settings(settings), settings, "bench", {"xero": served.app}, api_url
                )
            assert subscribed == ["xero"], subscribed
            if args.only in (None, "webhooks"):
                webhook_to_record(api, sandbox, org, platform, runs, args.rounds)
            if args.only in (None, "pushes"):
                pushes(api, sandbox, org, runs, args.pushes, args.burst)
            print(f"\nload average at end {os.getloadavg()[0]:.2f}")
        except BaseException:
            for name in ("api", "dagster"):
                if any(n == name for n, _p in children.started):
                    print(f"--- {name} log tail ---\n{children.tail(name)}", file=sys.stderr)
            raise
        finally:
            children.stop()
            if served is not None:
                served.stop()


if __name__ == "__main__":
    main()
