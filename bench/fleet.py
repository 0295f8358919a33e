"""Benchmark: a fleet of tenants kept fresh by the real daemon and schedules, against a bare baseline.

Set-up: N tenants, each connected (real OAuth consent) to its own organisation in one Xero sandbox (its own
process; small data: 20 contacts and 20 invoices each by default); their first syncs through the batch code in this
process (``vrtx_pipelines.pull.batch``, what the schedule's batch runs execute); then a steady change rate: a
fraction of each tenant's contacts and invoices changed in the sandbox per sync interval, evenly spread.

Prints, in one run:
1. baseline: a loop doing the same API calls (the six Xero listings with If-Modified-Since, token refreshed when
   expired) and upserts (the changed records and a sync-log row per tenant, one transaction per tenant) with no
   Dagster or dlt, as fast as it goes for a fixed time: tenant-syncs/min, freshness lag, CPU per tenant-sync (this
   process + the sandbox + PostgreSQL);
2. platform: `dagster-daemon run` (schedules, sensors, run queue, run launcher) on the same PostgreSQL for a fixed
   time: tenant-syncs/min over the window and while a backlog lasted, freshness lag p50/p95/max (change in the
   sandbox -> its canonical record, from the records' own timestamps), changes still waiting at the end, schedule
   tick times, runs launched, CPU per tenant-sync (daemon, code server and run processes + the sandbox +
   PostgreSQL).
Run with `bench/run fleet --tenants 1000 --minutes 5` (starts a throwaway PostgreSQL), or set
VRTX_BENCH_POSTGRES_URL (then PostgreSQL's CPU is not measured).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin

import httpx
from benchlib import ROOT, Children, Platform, percentile

SERVE = """
import json, random, sys, threading, time
from providers.xero.sandbox import XeroSandbox, XeroSandboxKnobs, create_app
from providers.sandbox_kit.serve import ServedApp
n, contacts, invoices = (int(v) for v in sys.argv[1:4])
sandbox = XeroSandbox(seed=3)
orgs = [
    sandbox.add_organisation(f"Fleet {i}", contacts=contacts, invoices=invoices, lines_per_invoice=1, payments=2,
                             items=2, user_email=f"owner{i}@fleet.example")
    for i in range(n)
]
big = 10**9  # Xero's limits off: the bench measures the platform, not 60 calls a minute
served = ServedApp(create_app(sandbox, knobs=XeroSandboxKnobs(minute_limit=big, day_limit=big, app_minute_limit=big,
                                                             concurrent_limit=big))).start()
print(json.dumps({"base_url": served.base_url, "orgs": orgs}), flush=True)
running = None

def changes(stop, rate, path):
    # Evenly spread changes (``rate`` per second), each to the least recently changed record of a random
    # tenant's contacts or invoices; every change is logged with its time.
    with open(path, "a") as log:
        next_at = time.time()
        while True:
            next_at += 1.0 / rate
            if stop.wait(max(0.0, next_at - time.time())):
                return
            org, entity = random.choice(orgs), random.choice(("contacts", "invoices"))
            at = time.time()
            [record] = sandbox.touch(org, entity, 1)
            log.write(f"{org}\\t{entity}\\t{record}\\t{at:.3f}\\n")
            log.flush()

for line in sys.stdin:
    words = line.split()
    if running is not None:
        running[0].set()
        running[1].join()
        running = None
    if words[0] == "start":
        stop = threading.Event()
        thread = threading.Thread(target=changes, args=(stop, float(words[1]), words[2]), daemon=True)
        thread.start()
        running = (stop, thread)
    print("ok", flush=True)
"""


class Sandbox:
    """The Xero sandbox process: its organisations, and the change generator it runs on command."""

    def __init__(self, tenants: int, contacts: int, invoices: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVE, str(tenants), str(contacts), str(invoices)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        info = json.loads(self.process.stdout.readline())
        self.base_url: str = info["base_url"]
        self.orgs: list[str] = info["orgs"]

    def command(self, line: str) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        self.process.stdout.readline()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


# --- CPU, from /proc: a process tree's own time plus that of its children it has reaped ------------------------


def tree_cpu_s(root: int | None) -> float:
    if root is None:
        return 0.0
    parents: dict[int, int] = {}
    cpu: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
    children: dict[int, list[int]] = defaultdict(list)
    for pid, parent in parents.items():
        children[parent].append(pid)
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += cpu.get(pid, 0)
        stack.extend(children.get(pid, ()))
    return total / os.sysconf("SC_CLK_TCK")


def postmaster_pid() -> int | None:
    data = os.environ.get("VRTX_BENCH_PG_DATA")
    if not data:
        return None
    try:
        return int((Path(data) / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class Meter:
    """CPU seconds of named process trees between two readings."""

    def __init__(self, roots: dict[str, int | None]) -> None:
        self.roots = roots
        self.start = self.read()

    def read(self) -> dict[str, float]:
        values = {name: tree_cpu_s(pid) for name, pid in self.roots.items()}
        values["bench"] = time.process_time()
        return values

    def used(self) -> dict[str, float]:
        end = self.read()
        return {name: end[name] - self.start.get(name, 0.0) for name in end}


# --- set-up -------------------------------------------------------------------------------------------------


def connect(platform: Platform, tenant: str, owner: str, org: str) -> None:
    """The real OAuth flow for one tenant (what consent_in_sandbox does), signed in as the organisation's owner."""
    from vrtx_pipelines.connect.consent import _ConsentForm
    from vrtx_pipelines.connect.context import ConnectionContext
    from vrtx_pipelines.connect.oauth import complete_authorization, start_authorization
    from vrtx_pipelines.credentials.vault import vault_from_settings
    from vrtx_pipelines.db.session import engine_for, session_scope
    from vrtx_pipelines.registry import get_provider
    from vrtx_pipelines.tenants import create_tenant

    xero = get_provider("xero")
    engine = engine_for(platform.settings.sqlalchemy_url)
    with session_scope(engine) as session:
        create_tenant(session, tenant)
        settings = platform.settings
        ctx = ConnectionContext(session=session, vault=vault_from_settings(settings), settings=settings)
        url = start_authorization(ctx, tenant, xero) + "&" + urlencode({"login_hint": owner})
        session.commit()
        with httpx.Client(timeout=30) as client:
            page = client.get(url)
            form = _ConsentForm()
            form.feed(page.text)
            data = [*form.fields, ("tenant_id", org), ("decision", "allow")]
            answer = client.post(
                urljoin(str(page.url), form.action or ""),
                content=urlencode(data),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        query = dict(httpx.URL(answer.headers["location"]).params)
        complete_authorization(ctx, xero, query)


def first_syncs(platform: Platform, tenants: list[str], threads: int) -> dict[str, int]:
    """Every tenant's first (full) sync through the batch code, in this process."""
    from vrtx_pipelines.credentials.vault import vault_from_settings
    from vrtx_pipelines.pull.batch import run_batch
    from vrtx_pipelines.registry import get_provider

    platform.execute("UPDATE tenant_integrations SET sync_claim = 'warm-up'")
    xero = get_provider("xero")
    assert xero.pulls is not None
    counts: dict[str, int] = defaultdict(int)
    outcomes = run_batch(
        xero, xero.pulls, tenants, "warm-up", "warm-up",
        settings=platform.settings, vault=vault_from_settings(platform.settings), threads=threads,
    )  # fmt: skip
    for outcome in outcomes:
        counts[outcome.status] += 1
        if outcome.status == "failed":
            print(f"  first sync failed: {outcome.tenant_id}: {outcome.error}", file=sys.stderr)
    return dict(counts)


def no_change_cost(platform: Platform, tenants: list[str], probe: bool) -> dict[str, float]:
    """A no-change incremental sync of each of ``tenants``, one at a time in this process, through the batch code:
    CPU per tenant, and the mean of each step (wall ms) and of API calls."""
    from vrtx_pipelines.credentials.vault import vault_from_settings
    from vrtx_pipelines.pull.batch import run_batch
    from vrtx_pipelines.registry import get_provider

    xero = get_provider("xero")
    assert xero.pulls is not None
    settings = platform.settings.model_copy(update={"pull_probe": probe})
    key = f"cost-{probe}"
    platform.execute("UPDATE tenant_integrations SET sync_claim = :k WHERE tenant_id = ANY(:t)", k=key, t=tenants)
    cpu, wall = time.process_time(), time.perf_counter()
    vault = vault_from_settings(settings)
    outcomes = list(run_batch(xero, xero.pulls, tenants, key, key, settings=settings, vault=vault, threads=1))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert all(o.status == "synced" for o in outcomes), [o.error for o in outcomes if o.error]
    steps: dict[str, list[float]] = defaultdict(list)
    for outcome in outcomes:
        figures = outcome.entities["contacts"]  # the run's steps are the same figures on every entity
        for name in ("probe_ms", "extract_ms", "normalize_ms", "load_ms", "canonical_ms", "api_calls"):
            steps[name].append(float(figures.get(name, 0)))
        steps["sync_log_ms"].append(outcome.settle_ms)
        steps["rows_loaded"].append(sum(float(f.get("rows_loaded", 0)) for f in outcome.entities.values()))
    means = {name: sum(values) / len(values) for name, values in steps.items()}
    return {"cpu_ms": cpu / len(tenants) * 1000, "wall_ms": wall / len(tenants) * 1000, **means}


def cli_cost(platform: Platform, tenant: str) -> float:
    """CPU seconds of one `vrtx sync xero --tenant ...` process for a tenant with nothing new."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [sys.executable, "-m", "vrtx_pipelines.cli.main", "sync", "xero", "--tenant", tenant],
        cwd=ROOT, check=True, capture_output=True, env={**os.environ, **platform.env},
    )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def report_cost(platform: Platform, tenants: list[str]) -> None:
    print(f"no-change incremental sync, per tenant ({len(tenants)} tenants, one at a time, this process):")
    for probe in (False, True):
        c = no_change_cost(platform, tenants, probe)
        label = "with the probe   " if probe else "dlt every time   "
        print(
            f"  {label}: {c['cpu_ms']:.1f} ms CPU, {c['wall_ms']:.1f} ms wall; {c['api_calls']:.0f} API calls; "
            f"steps (wall ms): probe {c['probe_ms']:.1f}, extract {c['extract_ms']:.1f}, normalize "
            f"{c['normalize_ms']:.1f}, load {c['load_ms']:.1f}, canonical apply {c['canonical_ms']:.1f}, sync log "
            f"{c['sync_log_ms']:.1f}; rows seen {c['rows_loaded']:.0f}"
        )
    costs = [cli_cost(platform, tenants[0]) for _ in range(2)]
    print(f"  `vrtx sync xero --tenant {tenants[0]}` (a process): {min(costs):.2f} CPU-s (best of 2)")


# --- the bare baseline ----------------------------------------------------------------------------------------


def baseline(platform: Platform, sandbox: Sandbox, tenants: list[str], args: argparse.Namespace, rate: float) -> dict:
    """The same listings and upserts with nothing but httpx and SQL, ``args.threads`` tenants at a time."""
    import psycopg2
    from sqlalchemy.engine import make_url

    from providers.kit.values import iso_milliseconds
    from providers.xero.dates import parse_ms_json_date
    from vrtx_pipelines.connect import oauth
    from vrtx_pipelines.connect.context import ConnectionContext
    from vrtx_pipelines.credentials.vault import vault_from_settings
    from vrtx_pipelines.db.session import session_factory
    from vrtx_pipelines.registry import get_provider

    xero = get_provider("xero")
    assert xero.pulls is not None
    streams = xero.pulls.streams
    settings, vault = platform.settings, vault_from_settings(platform.settings)
    url = make_url(settings.sqlalchemy_url)
    dsn = dict(host=url.host, port=url.port, user=url.username, password=url.password, dbname=url.database)
    setup = psycopg2.connect(**dsn)
    with setup, setup.cursor() as cur:
        cur.execute(
            "CREATE TABLE baseline_records (tenant text, entity text, id text, data jsonb, updated_at timestamptz, "
            "applied_at timestamptz default now(), primary key (tenant, entity, id));"
            "CREATE TABLE baseline_syncs (id bigserial primary key, tenant text, rows int, "
            "at timestamptz default now())"
        )
    setup.close()
    ids = dict(platform.rows("SELECT tenant_id, id FROM tenant_integrations"))
    orgs = dict(platform.rows("SELECT tenant_id, metadata->>'external_account_id' FROM tenant_integrations"))
    cursors: dict[tuple[str, str], str] = {}
    local = threading.local()
    stop = threading.Event()
    done: list[float] = []

    def sync(tenant: str, http: httpx.Client) -> None:
        if not hasattr(local, "conn"):
            local.conn = psycopg2.connect(**dsn)
            local.session = session_factory()()
        ctx = ConnectionContext(session=local.session, vault=vault, settings=settings)
        token = oauth.access_token(ctx, ids[tenant])
        local.session.commit()
        upserts = []
        for stream in streams:
            headers = {"Authorization": f"Bearer {token}", "xero-tenant-id": orgs[tenant], "Accept": "application/json"}
            since = cursors.get((tenant, stream.name))
            if since and stream.cursor is not None:
                headers["If-Modified-Since"] = since
            page = 1
            while True:
                paging = {"page": str(page), "pageSize": "1000"} if stream.paginator is not None else {}
                params = {**stream.params, **paging}
                body = http.get(f"{sandbox.base_url}/api.xro/2.0/{stream.path}", params=params, headers=headers).json()
                rows = body.get(stream.records) or []
                for row in rows:
                    updated = row.get("UpdatedDateUTC")
                    stamp = parse_ms_json_date(updated) if updated else None
                    if stamp is not None and stream.cursor is not None:
                        mark = iso_milliseconds(stamp)
                        if mark > cursors.get((tenant, stream.name), ""):
                            cursors[(tenant, stream.name)] = mark
                    key = str(row.get(stream.primary_key))
                    upserts.append((tenant, stream.name, key, json.dumps(row), stamp))
                if stream.paginator is None or len(rows) < 1000:
                    break
                page += 1
        with local.conn, local.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO baseline_records (tenant, entity, id, data, updated_at) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (tenant, entity, id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at,"
                " applied_at = now() WHERE baseline_records.data IS DISTINCT FROM excluded.data",
                upserts,
            )
            cur.execute("INSERT INTO baseline_syncs (tenant, rows) VALUES (%s, %s)", (tenant, len(upserts)))
        done.append(time.time())

    def worker(queue: list[str]) -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                for tenant in queue:
                    if stop.is_set():
                        break
                    sync(tenant, http)

    # A first pass loads everything (not measured): the measured passes are incremental, like the platform's.
    with ThreadPoolExecutor(args.threads) as pool, httpx.Client(timeout=30) as http:
        list(pool.map(lambda t: sync(t, http), tenants))
    done.clear()
    log = Path(args.workdir) / "baseline-changes.tsv"
    sandbox.command(f"start {rate} {log}")
    meter = Meter({"sandbox": sandbox.process.pid, "postgres": postmaster_pid()})
    started = time.time()
    shares = [tenants[i :: args.threads] for i in range(args.threads)]
    threads = [threading.Thread(target=worker, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    time.sleep(args.baseline_minutes * 60)
    stop.set()
    for thread in threads:
        thread.join()
    ended = time.time()
    used = meter.used()
    sandbox.command("stop")
    lags, pending = lag_of(log, started, ended, platform, "baseline")
    return {"syncs": len(done), "seconds": ended - started, "cpu": used, "lags": lags, "pending": pending}


# --- the platform ---------------------------------------------------------------------------------------------


def lag_of(log: Path, started: float, ended: float, platform: Platform, where: str) -> tuple[list[float], list[float]]:
    """Seconds from each change (made in the window) to its record being applied; and the ages of those not yet."""
    touched: dict[tuple[str, str, str], float] = {}
    for line in log.read_text().splitlines() if log.exists() else []:
        org, entity, record, at = line.split("\t")
        if started <= float(at) <= ended:
            touched[(org, entity, record)] = float(at)  # the latest change of a record counts
    if where == "baseline":
        applied = platform.rows(
            "SELECT i.metadata->>'external_account_id', b.entity, b.id, extract(epoch from b.updated_at), "
            "extract(epoch from b.applied_at) FROM baseline_records b "
            "JOIN tenant_integrations i ON i.tenant_id = b.tenant "
            "WHERE b.entity IN ('contacts', 'invoices') AND b.applied_at >= to_timestamp(:t)",
            t=started,
        )
    else:
        applied = platform.rows(
            "SELECT i.metadata->>'external_account_id', c.entity_type, c.external_id, "
            "extract(epoch from c.remote_updated_at), extract(epoch from c.updated_at) FROM canonical_records c "
            "JOIN tenant_integrations i ON i.id = c.tenant_integration_id "
            "WHERE c.entity_type IN ('contacts', 'invoices') AND c.updated_at >= to_timestamp(:t)",
            t=started,
        )
    seen = {(org, entity, record): (float(version), float(at)) for org, entity, record, version, at in applied}
    lags, pending = [], []
    for key, at in touched.items():
        version, applied_at = seen.get(key, (0.0, 0.0))
        if version >= at - 0.01:
            lags.append(applied_at - at)
        else:
            pending.append(ended - at)
    return lags, pending


def ticks_of(dagster_env: dict[str, str], since: float) -> tuple[list[float], dict[str, int]]:
    """Tick durations (s) of the pull schedule since ``since``, and runs created since then by job."""
    from dagster import DagsterInstance, RunsFilter
    from dagster._core.scheduler.instigation import InstigatorType

    os.environ.update(dagster_env)
    with DagsterInstance.get() as instance:
        durations = []
        for state in instance.all_instigator_state(instigator_type=InstigatorType.SCHEDULE):
            if state.instigator_name != "xero_incremental_pulls":
                continue
            for tick in instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=10_000):
                if tick.timestamp >= since and tick.end_timestamp:
                    durations.append(tick.end_timestamp - tick.timestamp)
        runs: dict[str, int] = defaultdict(int)
        created_after = datetime.fromtimestamp(since, UTC)
        for record in instance.get_run_records(RunsFilter(created_after=created_after)):
            runs[record.dagster_run.job_name] += 1
    return durations, dict(runs)


def platform_window(
    platform: Platform, sandbox: Sandbox, args: argparse.Namespace, rate: float, children: Children
) -> dict[str, Any]:
    from vrtx_pipelines.cli.devserver import dagster_environment, initialise_instance

    dagster_env = dagster_environment(platform.settings, ROOT)
    initialise_instance(dagster_env)
    env = {
        **dagster_env,
        "VRTX_PULL_BATCH_SIZE": str(args.batch_size),
        "VRTX_PULL_BATCHES_IN_FLIGHT": str(args.batches),
        "VRTX_PULL_BATCH_THREADS": str(args.threads),
    }
    daemon = children.start("daemon", [sys.executable, "-m", "dagster._daemon", "run", "-w", "workspace.yaml"], env)
    log = Path(args.workdir) / "platform-changes.tsv"
    sandbox.command(f"start {rate} {log}")
    meter = Meter({"daemon": daemon.pid, "sandbox": sandbox.process.pid, "postgres": postmaster_pid()})
    sessions = sessions_opened(platform)
    started = time.time()
    samples: list[tuple[float, int, int, int]] = []  # (time, tenant-syncs so far, waiting, claimed)
    deadline = started + args.minutes * 60
    while time.time() < deadline:
        time.sleep(min(15.0, max(0.0, deadline - time.time())))
        if daemon.poll() is not None:
            raise SystemExit(f"error: the daemon exited: {children.tail('daemon')}")
        samples.append((time.time(), syncs_since(platform, started), *outstanding(platform)))
    ended = time.time()
    used = meter.used()
    sessions = sessions_opened(platform) - sessions
    # Counted before the daemon stops: stopping it interrupts the batch runs in flight, whose tenants then fail
    # for the bench's own shutdown, not the platform's.
    within = "created_at >= to_timestamp(:t) AND created_at < to_timestamp(:e)"
    syncs = syncs_since(platform, started)
    failed = platform.scalar(
        f"SELECT count(DISTINCT (run_id, tenant_integration_id)) FROM integration_sync_logs "  # noqa: S608
        f"WHERE status = 'failed' AND {within}",
        t=started,
        e=ended,
    )
    errors = platform.rows(
        f"SELECT error_message, count(*) FROM integration_sync_logs WHERE status = 'failed' "  # noqa: S608
        f"AND {within} GROUP BY error_message ORDER BY count(*) DESC LIMIT 3",
        t=started,
        e=ended,
    )
    sandbox.command("stop")
    children.stop("daemon")
    lags, pending = lag_of(log, started, ended, platform, "platform")
    durations, runs = ticks_of(dagster_env, started)
    return {
        "syncs": syncs, "seconds": ended - started, "cpu": used, "lags": lags,
        "pending": pending, "ticks": durations, "runs": runs, "samples": samples, "failed": failed, "errors": errors,
        "sessions": sessions,
    }  # fmt: skip


def sessions_opened(platform: Platform) -> int:
    """Connections PostgreSQL has accepted since its start (each one a backend process forked)."""
    return int(platform.scalar("SELECT sum(sessions) FROM pg_stat_database") or 0)


def syncs_since(platform: Platform, started: float) -> int:
    return int(
        platform.scalar(
            "SELECT count(DISTINCT (run_id, tenant_integration_id)) FROM integration_sync_logs "
            "WHERE direction = 'pull' AND status = 'success' AND created_at >= to_timestamp(:t)",
            t=started,
        )
        or 0
    )


def outstanding(platform: Platform) -> tuple[int, int]:
    """Connections due now that no batch holds (the schedule's backlog), and those a batch holds (queued or being
    pulled): both are work the platform has not done yet."""
    from vrtx_pipelines.db.session import engine_for, session_scope
    from vrtx_pipelines.pull.fleet import backlog

    with session_scope(engine_for(platform.settings.sqlalchemy_url)) as session:
        found = backlog(session, "xero", datetime.now(UTC))
        return found.waiting, found.claimed


def backlogged_rate(samples: list[tuple[float, int, int, int]], threads: int) -> float | None:
    """Tenant-syncs per minute over the intervals that began with more tenants outstanding (waiting or claimed)
    than the batches pull at once: the platform's capacity, not the demand."""
    busy_s = busy_syncs = 0.0
    for (t0, s0, waiting0, claimed0), (t1, s1, _w1, _c1) in itertools.pairwise(samples):
        if waiting0 + claimed0 > threads:
            busy_s += t1 - t0
            busy_syncs += s1 - s0
    return busy_syncs / busy_s * 60 if busy_s > 0 else None


def report(name: str, result: dict[str, Any], frequency: int) -> None:
    minutes = result["seconds"] / 60
    syncs = result["syncs"]
    cpu = result["cpu"]
    ours = sum(v for k, v in cpu.items() if k not in ("sandbox", "postgres"))
    print(f"{name}: {syncs:,} tenant-syncs in {minutes:.1f} min = {syncs / minutes:,.0f}/min")
    lags, pending = result["lags"], result["pending"]
    if lags:
        print(
            f"  freshness lag over {len(lags)} changes: p50 {percentile(lags, 50):.1f} s, "
            f"p95 {percentile(lags, 95):.1f} s, max {max(lags):.1f} s (target p95 <= {frequency * 60} s)"
        )
    oldest = f" (oldest {max(pending):.0f} s)" if pending else ""
    print(f"  changes not yet applied at the end: {len(pending)}{oldest}")
    per = {k: v / syncs * 1000 for k, v in cpu.items()} if syncs else {}
    print(
        f"  CPU: {ours:.1f} s ours, {cpu.get('sandbox', 0):.1f} s sandbox, {cpu.get('postgres', 0):.1f} s PostgreSQL"
        + (
            f"; per tenant-sync: {ours / syncs * 1000:.1f} ms ours ("
            + ", ".join(f"{k} {v:.1f}" for k, v in per.items() if k not in ("sandbox", "postgres"))
            + f"), {per.get('sandbox', 0):.1f} ms sandbox, {per.get('postgres', 0):.1f} ms PostgreSQL"
            if syncs
            else ""
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=5, help="the platform's measured window")
    parser.add_argument("--baseline-minutes", type=float, default=1)
    parser.add_argument("--frequency", type=int, default=15, help="every tenant's sync_frequency_minutes (>= 5)")
    parser.add_argument("--change-rate", type=float, default=0.01, help="share of records changed per interval")
    parser.add_argument("--contacts", type=int, default=20)
    parser.add_argument("--invoices", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=400)
    parser.add_argument("--batches", type=int, default=3, help="batch runs queued or running at once")
    parser.add_argument("--threads", type=int, default=6, help="tenants a batch (and the baseline) pulls at once")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--cost-tenants", type=int, default=20, help="tenants the no-change cost is measured on")
    parser.add_argument("--skip-platform", action="store_true")
    args = parser.parse_args()
    admin_url = os.environ.get("VRTX_BENCH_POSTGRES_URL") or os.environ["VRTX_TEST_POSTGRES_URL"]
    records = args.contacts + args.invoices
    rate = args.change_rate * records * args.tenants / (args.frequency * 60)
    print(
        f"== Fleet: {args.tenants:,} Xero tenants ({args.contacts} contacts, {args.invoices} invoices each), "
        f"sync every {args.frequency} min, {args.change_rate:.0%} of records changed per interval "
        f"({rate:.2f} changes/s); load average at start {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        args.workdir = tmp
        children = Children(Path(tmp))
        started = time.perf_counter()
        sandbox = Sandbox(args.tenants, args.contacts, args.invoices)
        try:
            platform = Platform(admin_url, Path(tmp) / "home", sandbox.base_url)
            tenants = [f"fleet-{i:05d}" for i in range(args.tenants)]
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(lambda i: connect(platform, tenants[i], f"owner{i}@fleet.example", sandbox.orgs[i]),
                              range(args.tenants)))  # fmt: skip
            print(f"set-up: {args.tenants:,} tenants connected through OAuth in {time.perf_counter() - started:.0f} s")
            platform.execute(
                "UPDATE tenant_integrations SET settings = jsonb_set(coalesce(settings, '{}'::jsonb), "
                "'{sync_frequency_minutes}', to_jsonb(:f))",
                f=args.frequency,
            )
            warm = time.perf_counter()
            cpu = time.process_time()
            counts = first_syncs(platform, tenants, args.threads)
            print(
                f"first syncs (full, through the batch code in this process): {counts} in "
                f"{time.perf_counter() - warm:.0f} s, {(time.process_time() - cpu) / args.tenants * 1000:.0f} ms CPU "
                "per tenant in this process"
            )
            if args.cost_tenants:
                report_cost(platform, tenants[: args.cost_tenants])
            if not args.skip_baseline:
                report("baseline (httpx + SQL, no Dagster or dlt)", baseline(platform, sandbox, tenants, args, rate),
                       args.frequency)  # fmt: skip
            if args.skip_platform:
                return
            result = platform_window(platform, sandbox, args, rate, children)
            report("platform (dagster-daemon, batch runs, dlt)", result, args.frequency)
            capacity = backlogged_rate(result["samples"], args.threads * args.batches)
            if capacity is not None:
                print(f"  while a backlog lasted: {capacity:,.0f} tenant-syncs/min (the capacity)")
            print(f"  tenant-syncs that failed: {result['failed']}; runs launched: {result['runs']}")
            opened = result["sessions"]
            per_sync = f" ({opened / result['syncs']:.1f} per tenant-sync)" if result["syncs"] else ""
            print(f"  PostgreSQL connections opened in the window: {opened:,}{per_sync}")
            for message, count in result["errors"]:
                print(f"    {count} sync-log rows failed with: {message}")
            ticks = result["ticks"]
            if ticks:
                print(
                    f"  schedule ticks: {len(ticks)}, p50 {percentile(ticks, 50):.2f} s, max {max(ticks):.2f} s "
                    "(target < 10 s)"
                )
            peak = max((w for _t, _s, w, _c in result["samples"]), default=0)
            held = max((c for _t, _s, _w, c in result["samples"]), default=0)
            print(f"  largest backlog seen: {peak} due and not claimed, {held} claimed by batches (queued or pulling)")
            print(f"load average at end {os.getloadavg()[0]:.2f}")
        except BaseException:
            if any(name == "daemon" for name, _p in children.started):
                print(f"--- daemon log tail ---\n{children.tail('daemon')}", file=sys.stderr)
            raise
        finally:
            children.stop()
            sandbox.stop()


if __name__ == "__main__":
    random.seed(1)
    main()
