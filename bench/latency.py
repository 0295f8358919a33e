"""Benchmark: daemon-driven latencies on PostgreSQL, the platform running as `vrtx dev` runs it.

Set-up: app tables and Dagster storage on one fresh PostgreSQL database; the API served by uvicorn (`vrtx api`,
one process), `dagster dev` (webserver + daemon + code server) on the same instance; a tenant connected to the
provider's sandbox (Xero, the default, and Google: the real OAuth consent; Stripe: its secret key), its first full sync
launched by the daemon's partitions sensor and awaited; the sandbox subscribed to the API's webhook URL with the
tenant's key, as `vrtx dev` does. Xero's webhooks name what changed (the fast path fetches it); Stripe's carry the
changed object, signed `Stripe-Signature: t=...,v1=...`, and the API applies it without a fetch.

Prints, in one run:
1. webhook -> canonical record visible: N rounds, alternating two entities (Xero: contacts and invoices; Stripe:
   customers and invoices), each changing one record in the sandbox (`touch`, which raises the provider's
   webhook), then polling GET /api/v1/integrations/{provider}/records/{entity}?cursor=... every 50 ms until the
   record shows. Rounds are spaced: the next starts once no run is queued or running, so each is one
   webhook -> one targeted pull, not coalesced. p50/p95/max against the provider's target (Xero p95 < 5 s,
   Stripe p95 < 1 s), and the medians of where the time goes (sandbox -> inbox, inbox -> visible); the API
   applies a webhook's records itself (fast path), so the targeted run's own timings (created, queued, process
   start, run) are printed apart, with how often the record was visible before its run was even created.
   First, the baseline the same way: the same sandbox's deliveries to a bare receiver (bench/raw_ingest.py under
   uvicorn: signature check + one INSERT of the raw body), polled every 50 ms in its table until the change's
   delivery is there: the floor of sandbox -> signed delivery -> stored row.
2. push latency: N sequential POST .../push/contact (distinct Idempotency-Keys), each polled (every 50 ms) until
   done, each started once no run is in flight (a push's contact raises a webhook whose pull would otherwise hold
   the connection's one run slot); p50/p95 against the target p95 < 10 s, and where the time goes.
   Then a burst of B pushes submitted as fast as one client can (8 threads):
   pushes/s until the last is done, and their p50/p95. Checks: every push done, distinct external ids, and the
   sandbox holds exactly as many new contacts as pushes were done (none lost, none duplicated). Xero only
   (bench/pushes.py measures pushes in batches).
Google's notifications name no record (a mailbox or a calendar changed): the platform's watch and channel are opened
as its schedule would, and each round's record shows once the targeted incremental pull has run (no fast path);
target p95 < 2 s. Microsoft 365's Graph subscriptions are the watch's too (one per synced folder, one for the calendar,
clientState the connection's secret); each notification names the message or event, and the webhook worker's fast
path reads the mailbox's delta and applies it without a run; target p95 < 2 s.
Run with `bench/run latency [--provider stripe|google_workspace|microsoft365]` (starts a throwaway PostgreSQL), or set
VRTX_BENCH_POSTGRES_URL.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import httpx
from benchlib import (
    Children,
    Platform,
    Runs,
    free_port,
    fresh_database,
    percentile,
    serve_platform,
    service_ports,
    uvicorn,
    wait_for,
)

POLL_S = 0.05


def _subscribe(sandbox: Any, org: str, url: str, key: str) -> Callable[[], None]:
    """The sandbox's deliveries for ``org`` sent to ``url`` signed with ``key``; returns how to stop them."""
    subscription = sandbox.subscribe_webhooks(url, key, [org])
    return lambda: sandbox.unsubscribe_webhooks(subscription)


def _google_subscribe(sandbox: Any, org: str, url: str, key: str) -> Callable[[], None]:
    """Pub/Sub pushes of the mailbox's changes and a channel of its calendar's, both to ``url`` (the channel's token:
    ``key``): what the platform's watch sets up, without the platform."""
    name = sandbox.subscribe_webhooks(url, key, [org])
    sandbox.watch_mailbox(org)
    channel = sandbox.open_channel(org, url, key)

    def stop() -> None:
        sandbox.unsubscribe_webhooks(name)
        sandbox.close_channel(channel)

    return stop


def _microsoft_subscribe(sandbox: Any, mailbox: str, url: str, key: str) -> Callable[[], None]:
    """Graph subscriptions of the mailbox's messages and of its calendar's events to ``url`` (``clientState``:
    ``key``; each passes the validation handshake first): what the platform's watch sets up, without the platform."""
    subscriptions = [sandbox.subscribe(mailbox, url, key, resource) for resource in ("me/messages", "me/events")]

    def stop() -> None:
        for subscription in subscriptions:
            sandbox.remove_subscription(subscription)  # made without a lifecycle URL: nothing is sent

    return stop


@dataclass(frozen=True)
class LatencyBench:
    """What the webhook rounds must know of a provider."""

    slug: str
    sandbox: Callable[[], tuple[Any, str, Any]]  # the sandbox with the bench's data, its tenant, its ASGI app
    entities: tuple[str, str]  # the rounds alternate them
    target_s: float  # webhook -> record p95, below (the provider's issue)
    raw_seen: str  # SQL: how many of the raw receiver's stored deliveries after row :after are about record :rid
    baseline_subscribe: Callable[[Any, str, str, str], Callable[[], None]] = _subscribe
    # The raw receiver's environment beyond its key, from the sandbox's base URL.
    raw_env: Callable[[str], dict[str, str]] = lambda _base_url: {}
    # The platform's own subscriptions where it opens them itself (Google: the watch and the calendar channel).
    watches: bool = False
    # The sandbox also takes the demo subscription (`subscribe_demo_webhooks`); Microsoft 365's has none to take:
    # the watch's Graph subscriptions are all its notifications.
    demo_webhooks: bool = True


def _xero_sandbox() -> tuple[Any, str, Any]:
    from providers.xero.sandbox import XeroSandbox, create_app

    sandbox = XeroSandbox(seed=1)
    org = sandbox.add_organisation("Bench Ltd", contacts=200, invoices=200, lines_per_invoice=2, payments=20, items=10)
    return sandbox, org, create_app(sandbox)


def _stripe_sandbox() -> tuple[Any, str, Any]:
    from providers.stripe.sandbox import DEMO_ACCOUNT_ID, DEMO_SECRET_KEY, StripeSandbox, create_app

    sandbox = StripeSandbox(seed=1)
    account = sandbox.add_account(
        "Bench Ltd", account_id=DEMO_ACCOUNT_ID, keys=(DEMO_SECRET_KEY,), customers=200, invoices=200,
        lines_per_invoice=2, payments=20,
    )  # fmt: skip
    return sandbox, account, create_app(sandbox)


def _google_sandbox() -> tuple[Any, str, Any]:
    from providers.google_workspace.sandbox import GoogleSandbox, create_app

    sandbox = GoogleSandbox(seed=1)
    mailbox = sandbox.add_mailbox(messages=500, days=30, events=50)
    return sandbox, mailbox, create_app(sandbox)


def _microsoft_sandbox() -> tuple[Any, str, Any]:
    from providers.microsoft365.sandbox import MicrosoftSandbox, create_app
    from providers.microsoft365.sandbox_credentials import (
        DEMO_DISPLAY_NAME,
        DEMO_MAILBOX,
        DEMO_TENANT_DOMAIN,
        DEMO_TENANT_ID,
        DEMO_USER_PRINCIPAL_NAME,
    )

    sandbox = MicrosoftSandbox(seed=1)
    sandbox.add_organisation(DEMO_TENANT_ID, DEMO_TENANT_DOMAIN)
    sandbox.add_user(DEMO_MAILBOX, DEMO_DISPLAY_NAME, user_principal_name=DEMO_USER_PRINCIPAL_NAME)
    mailbox = sandbox.add_mailbox(DEMO_MAILBOX, messages=500, days=25, events=50)  # inside the 30-day first sync
    return sandbox, mailbox, create_app(sandbox)


def _google_raw_env(base_url: str) -> dict[str, str]:
    from providers.google_workspace.sandbox_credentials import DEMO_PUSH_AUDIENCE, DEMO_PUSH_SERVICE_ACCOUNT

    app = {"push_audience": DEMO_PUSH_AUDIENCE, "push_service_account": DEMO_PUSH_SERVICE_ACCOUNT}
    return {"RAW_INGEST_JWKS_URL": f"{base_url}/oauth2/v3/certs", "RAW_INGEST_APP": json.dumps(app)}


BENCHES = {
    bench.slug: bench
    for bench in (
        LatencyBench(
            "xero", _xero_sandbox, ("contacts", "invoices"), 5.0,
            "SELECT count(*) FROM raw_webhook_inbox WHERE id > :after AND payload->'events' @> "
            "jsonb_build_array(jsonb_build_object('resourceId', CAST(:rid AS text)))",
        ),
        LatencyBench(
            "stripe", _stripe_sandbox, ("customers", "invoices"), 1.0,
            "SELECT count(*) FROM raw_webhook_inbox WHERE id > :after AND payload->'data'->'object'->>'id' = :rid",
        ),
        # Google's notifications name no record (the mailbox or calendar changed): the round's is the next one.
        LatencyBench(
            "google_workspace", _google_sandbox, ("messages", "events"), 2.0,
            "SELECT count(*) FROM raw_webhook_inbox WHERE id > :after AND CAST(:rid AS text) IS NOT NULL",
            baseline_subscribe=_google_subscribe, raw_env=_google_raw_env, watches=True,
        ),
        # Graph's notifications name the message or event (resourceData.id); a delivery may batch several.
        LatencyBench(
            "microsoft365", _microsoft_sandbox, ("messages", "events"), 2.0,
            "SELECT count(*) FROM raw_webhook_inbox WHERE id > :after AND payload->'value' @> "
            "jsonb_build_array(jsonb_build_object('resourceData', jsonb_build_object('id', CAST(:rid AS text))))",
            baseline_subscribe=_microsoft_subscribe, watches=True, demo_webhooks=False,
        ),
    )
}  # fmt: skip


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def start_platform(bench: LatencyBench, workdir: Path, children: Children) -> tuple[Any, ...]:
    from providers.sandbox_kit.serve import ServedApp

    admin_url = os.environ.get("VRTX_BENCH_POSTGRES_URL") or os.environ["VRTX_TEST_POSTGRES_URL"]
    sandbox, org, app = bench.sandbox()
    served = ServedApp(app).start()
    platform = Platform(admin_url, workdir / "home", served.base_url, service_ports(), slug=bench.slug)
    token = platform.connect_tenant("bench")
    dagster_env, api_url = serve_platform(platform, children)
    return sandbox, org, served, platform, token, dagster_env, api_url


def latest_cursor(api: httpx.Client, slug: str, entity: str, cursor: str | None = None) -> str | None:
    while True:
        page = api.get(f"/api/v1/integrations/{slug}/records/{entity}", params={"cursor": cursor, "limit": 500}).json()
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return cursor


def raw_baseline(
    bench: LatencyBench, sandbox: Any, org: str, sandbox_url: str, workdir: Path, children: Children, rounds: int
) -> float:
    """The same rounds against a bare receiver of the sandbox's signed deliveries; returns its p95."""
    from raw_ingest import TABLE_DDL
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    print(f"\n== Baseline: sandbox change -> signed delivery -> row in a bare receiver's table, {rounds} rounds")
    admin_url = os.environ.get("VRTX_BENCH_POSTGRES_URL") or os.environ["VRTX_TEST_POSTGRES_URL"]
    raw_url = make_url(fresh_database(admin_url)).set(drivername="postgresql+psycopg2").render_as_string(False)
    engine = create_engine(raw_url)
    with engine.begin() as conn:
        conn.execute(text(TABLE_DDL))
    key, port = secrets.token_urlsafe(32), free_port()
    env = {"RAW_INGEST_DATABASE_URL": raw_url, "RAW_INGEST_KEY": key, "RAW_INGEST_SIGNATURE": bench.slug,
           **bench.raw_env(sandbox_url)}  # fmt: skip
    uvicorn(children, "raw", "raw_ingest:create_app", port, 1, env)  # one process, as `vrtx api` runs
    children.wait_http("raw", f"http://127.0.0.1:{port}/ping", 60)
    unsubscribe = bench.baseline_subscribe(sandbox, org, f"http://127.0.0.1:{port}/ingest", key)

    def stored(record_id: str, after: int) -> int:
        with engine.connect() as conn:
            return int(conn.execute(text(bench.raw_seen), {"rid": record_id, "after": after}).scalar() or 0)

    def last_row() -> int:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT coalesce(max(id), 0) FROM raw_webhook_inbox")).scalar() or 0)

    latencies: list[float] = []
    try:
        for n in range(rounds):
            entity = bench.entities[n % 2]
            after = last_row()  # the change's delivery is a row after it (a record may be touched again)
            started = time.perf_counter()
            [record_id] = sandbox.touch(org, entity, 1)
            wait_for(
                f"{entity} {record_id} in the raw table", lambda r=record_id, a=after: stored(r, a) > 0, 60, POLL_S
            )
            latencies.append(time.perf_counter() - started)
    finally:
        unsubscribe()
        children.stop("raw")
        engine.dispose()
    p95 = percentile(latencies, 95)
    print(
        f"baseline latency over {len(latencies)} rounds: p50 {percentile(latencies, 50):.3f} s, p95 {p95:.3f} s, "
        f"max {max(latencies):.3f} s"
    )
    return p95


def settled(platform: Platform, runs: Runs) -> bool:
    """No run in flight and every stored event claimed, its run ended: the next round is one webhook -> one run
    (a round started while the last one's run was still being launched would share or queue behind it)."""
    pending = platform.rows("SELECT DISTINCT run_id FROM webhook_inbox WHERE status IN ('received', 'dispatched')")
    return runs.in_flight() == 0 and all(runs.timing(run_id) is not None for (run_id,) in pending)


def webhook_to_record(
    api: httpx.Client, bench: LatencyBench, sandbox: Any, org: str, platform: Platform, runs: Runs, rounds: int
) -> float:
    """Returns the p95."""
    slug, entities = bench.slug, bench.entities
    print(
        f"\n== Webhook -> canonical record visible: {rounds} spaced rounds ({entities[0]} and {entities[1]} "
        "alternately)"
    )
    cursors = {entity: latest_cursor(api, slug, entity) for entity in entities}
    latencies: list[float] = []
    observed: list[tuple[float, float, str]] = []  # (changed at, seen at, record id), epoch seconds
    for n in range(rounds):
        wait_for("the previous round's run to end", lambda: settled(platform, runs), 120, every_s=0.1)
        entity = entities[n % 2]
        touched_at = time.time()
        started = time.perf_counter()
        [record_id] = sandbox.touch(org, entity, 1)

        def visible(entity: str = entity, record_id: str = record_id) -> bool:
            page = api.get(f"/api/v1/integrations/{slug}/records/{entity}", params={"cursor": cursors[entity]}).json()
            return any(r["external_id"] == record_id for r in page["records"])

        wait_for(f"{entity} {record_id} in the records API", visible, 60, every_s=POLL_S)
        latencies.append(time.perf_counter() - started)
        observed.append((touched_at, time.time(), record_id))
        cursors[entity] = latest_cursor(api, slug, entity, cursors[entity])
    # Where the time went, from the inbox and the runs' own records (read once every run has finished).
    wait_for("the last round's run to end", lambda: settled(platform, runs), 120, every_s=0.1)
    parts: dict[str, list[float]] = {k: [] for k in ("delivered", "applied", "launched", "queued", "boot", "run")}
    before_run = before_start = 0
    for touched_at, seen_at, record_id in observed:
        # The round's delivery: the first about the record stored after its change (a record may be touched again).
        # (A notification that names no record, Google's, is the round's by its time alone.)
        first = (
            "FROM webhook_inbox WHERE coalesce(payload->>'external_id', :rid) = :rid "
            "AND received_at >= to_timestamp(:at) ORDER BY id LIMIT 1"
        )
        received_at = platform.scalar(f"SELECT received_at {first}", rid=record_id, at=touched_at)
        batch = platform.scalar(f"SELECT run_id {first}", rid=record_id, at=touched_at)
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
        f"latency over {len(latencies)} rounds: p50 {percentile(latencies, 50):.3f} s, "
        f"p95 {percentile(latencies, 95):.3f} s, max {max(latencies):.3f} s"
    )
    print(
        f"where it goes (medians over {len(parts['run'])} rounds): "
        + ", ".join(
            f"{label} {statistics.median(parts[key]):.2f} s"
            for key, label in (
                ("delivered", "change -> webhook stored"),
                ("applied", "stored -> record seen (fast path: a fetch if the event names it only, apply, 50 ms poll)"),
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
    print(f"webhook -> record p95 {p95:.2f} s (target < {bench.target_s:g} s): {verdict(p95 < bench.target_s)}")
    return p95


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
    parser.add_argument("--provider", choices=sorted(BENCHES), default="xero")
    parser.add_argument("--rounds", type=int, default=20, help="webhook -> record rounds")
    parser.add_argument("--pushes", type=int, default=10, help="sequential pushes")
    parser.add_argument("--burst", type=int, default=200, help="pushes in the burst")
    parser.add_argument("--only", choices=("webhooks", "pushes"), default=None)
    args = parser.parse_args()
    bench = BENCHES[args.provider]
    print(f"== Daemon-driven latencies on PostgreSQL, {bench.slug}; load average at start {os.getloadavg()[0]:.2f}")
    from vrtx_pipelines.credentials.vault import vault_from_settings
    from vrtx_pipelines.db.session import engine_for, session_scope
    from vrtx_pipelines.webhooks.config import subscribe_demo_webhooks

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        children = Children(workdir)
        served = None
        try:
            sandbox, org, served, platform, token, dagster_env, api_url = start_platform(bench, workdir, children)
            runs = Runs(dagster_env)
            api = httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            started = time.perf_counter()

            def synced() -> bool:
                entity = bench.entities[-1]
                records = api.get(f"/api/v1/integrations/{bench.slug}/records/{entity}", params={"limit": 1}).json()
                return bool(records["records"]) and runs.in_flight() == 0

            wait_for("the first full sync", synced, 240, every_s=0.5)
            print(
                f"first full sync (launched by the partitions sensor) done {time.perf_counter() - started:.1f} s later"
            )
            floor = None
            if args.only in (None, "webhooks"):  # before the platform subscribes: the sandbox sends only to it
                floor = raw_baseline(bench, sandbox, org, served.base_url, workdir, children, args.rounds)
            settings = platform.settings
            with session_scope(engine_for(settings.sqlalchemy_url)) as session:
                subscribed = subscribe_demo_webhooks(
                    session, vault_from_settings(settings), settings, "bench", {bench.slug: served.app}, api_url
                )
            assert subscribed == ([bench.slug] if bench.demo_webhooks else []), subscribed
            if bench.watches:
                from vrtx_pipelines.webhooks.watches import renew_watches

                public = settings.model_copy(update={"public_url": api_url})
                tick = renew_watches(public, vault_from_settings(public), platform.provider, tenant_id="bench")
                assert tick.started == 1, tick.summary
            if floor is not None:
                p95 = webhook_to_record(api, bench, sandbox, org, platform, runs, args.rounds)
                print(f"platform p95 / baseline p95: {p95 / floor:.1f}x ({p95 - floor:+.2f} s)")
            if args.only in (None, "pushes") and bench.slug != "xero":
                print(f"\n== Push latency: skipped for {bench.slug} (this part drives Xero's contact pushes)")
            elif args.only in (None, "pushes"):
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
