"""Fault: the Dagster daemon is killed (SIGKILL) while a push run is in the middle of a batch at Xero.

The real ``dagster-daemon`` runs as its own process group: its code server and, under the DefaultRunLauncher, the
push run's worker are in that group, so killing the group is a machine's crash taking its runs with it. Xero has
applied the batch's 50 contacts and holds its answer back when the kill comes; a fresh daemon must then finish
every push once, with nothing created twice at Xero.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from dagster import DagsterRunStatus, RunsFilter
from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient
from sqlalchemy import select

from providers.sandbox_kit.serve import ServedApp
from providers.xero.sandbox import XeroSandbox, XeroSandboxKnobs, create_app
from tests.faults.helpers import ROOT
from tests.faults.matrix import fault
from tests.helpers import bearer, make_tenant
from tests.xero.conftest import connect_xero
from vrtx_pipelines.cli.devserver import dagster_environment, dagster_instance, initialise_instance
from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.models import IntegrationSyncLog, PushOutbox, TenantIntegration
from vrtx_pipelines.db.session import engine_for, session_scope

pytestmark = pytest.mark.dagster
T = TypeVar("T")
PUSHES = 60  # a PUT of 50 (Xero's batch for contact creates in this platform) and ten more after it
BATCH = 50
# The longest Xero holds its answer to the first batch (the kill comes within it; a test releases it sooner once
# it has seen the fresh daemon's first sensor tick, however long a loaded machine takes to start that daemon),
# under the run's client timeout so the wait alone never makes the run resend.
HELD_ANSWER_S = 60.0
CLIENT_TIMEOUT_S = 90.0
# The sync log is written by the run-status sensors, which tick every 30 s (Dagster's default): a run that ended
# just after a tick waits a whole interval, longer on a loaded machine.
SYNC_LOG_WAIT_S = 90.0


@dataclass(frozen=True)
class Write:
    """A write as Xero received it."""

    method: str
    path: str
    idempotency_key: str | None
    body: bytes


@dataclass
class Xero:
    sandbox: XeroSandbox
    served: ServedApp
    org: str
    writes: list[Write]

    @property
    def knobs(self) -> XeroSandboxKnobs:
        knobs: XeroSandboxKnobs = self.served.app.state.sandbox
        return knobs

    def contact_names(self) -> Counter[str]:
        """Every contact of the organisation, counted by name."""
        with self.sandbox.lock:
            table = self.sandbox.tenant(self.org).tables["contacts"]
            return Counter(str(table.record(i)["Name"]) for i in range(len(table)) if table.exists(i))


@pytest.fixture
def xero() -> Iterator[Xero]:
    """A small organisation served over real HTTP, with every write it receives recorded at its door."""
    sandbox = XeroSandbox(seed=13)
    org = sandbox.add_organisation("Acme Trading", contacts=5, invoices=5, payments=0, items=2)
    app: FastAPI = create_app(sandbox)
    writes: list[Write] = []

    @app.middleware("http")
    async def record(request: Request, call_next: Callable[[Request], Any]) -> Response:
        if request.method != "GET" and request.url.path.startswith("/api.xro/"):
            body = await request.body()
            writes.append(Write(request.method, request.url.path, request.headers.get("idempotency-key"), body))
        response: Response = await call_next(request)
        return response

    with ServedApp(app) as served:
        yield Xero(sandbox, served, org, writes)


@pytest.fixture
def base_urls(xero: Xero) -> dict[str, str]:
    return {"xero": xero.served.base_url}


class Daemons:
    """``dagster-daemon run`` processes, each the leader of its own process group (its code server and run
    workers with it); every group still alive is killed at teardown."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = self.logs / f"daemon-{len(self.started)}.log"
        with log.open("wb") as out:
            daemon = subprocess.Popen(
                [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml")],
                cwd=ROOT,
                env={**os.environ, **self.env},
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        self.started.append(daemon)
        return daemon

    def said(self, index: int, text: str) -> bool:
        """Whether the ``index``-th daemon (its process group) has logged ``text``."""
        return text in (self.logs / f"daemon-{index}.log").read_text()

    def log(self) -> str:
        return "\n".join(path.read_text()[-3000:] for path in sorted(self.logs.glob("daemon-*.log")))

    def stop_all(self) -> None:
        for daemon in self.started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(daemon.pid, signal.SIGTERM)
        for daemon in self.started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                daemon.wait(timeout=30)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait(timeout=30)


@pytest.fixture
def daemons(settings: Settings, tmp_path: Path) -> Iterator[Daemons]:
    env = {**dagster_environment(settings, ROOT), "VRTX_HTTP_TIMEOUT_S": str(CLIENT_TIMEOUT_S)}
    initialise_instance(env)
    started = Daemons(env, tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


def group_members(pgid: int) -> dict[int, str]:
    """Live (not zombie) processes of a process group: pid -> command line."""
    members = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        state, _ppid, group = stat.rsplit(")", 1)[1].split()[:3]
        if int(group) == pgid and state != "Z":
            members[int(entry.name)] = cmdline
    return members


def poll(condition: Callable[[], T], what: str, timeout_s: float, log: Callable[[], str]) -> T:
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}\n{log()}"
        time.sleep(0.1)
    return value


def outbox(settings: Settings) -> list[PushOutbox]:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        rows = list(session.scalars(select(PushOutbox).order_by(PushOutbox.id)))
        session.expunge_all()
        return rows


def sync_log(settings: Settings) -> list[IntegrationSyncLog]:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        rows = list(session.scalars(select(IntegrationSyncLog).order_by(IntegrationSyncLog.id)))
        session.expunge_all()
        return rows


def logged(settings: Settings, run_ids: set[str]) -> dict[tuple[str, str | None], IntegrationSyncLog]:
    """The push sync log by (run, entity), once every one of ``run_ids`` has a row; else empty."""
    log = {(str(row.run_id), row.entity_type): row for row in sync_log(settings) if row.direction == "push"}
    return log if run_ids <= {run_id for run_id, _entity in log} else {}


def connection_status(settings: Settings) -> str:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        return str(session.scalars(select(TenantIntegration.status)).one())


def push_runs(env: dict[str, str]) -> dict[str, DagsterRunStatus]:
    with dagster_instance(env) as instance:
        return {run.run_id: run.status for run in instance.get_runs(RunsFilter(job_name="xero_push"))}


def queue_pushes(api: TestClient, settings: Settings) -> list[str]:
    """The tenant's pushes of new contacts, queued through the API before any daemon runs (so one run claims them
    all); returns their names."""
    token = make_tenant(settings, "acme")
    connect_xero(settings, "acme")
    api.app.state.push_launcher = None  # type: ignore[attr-defined] -- no webserver here: the push sensor launches
    names = [f"Crash Test Customer {n:02d}" for n in range(PUSHES)]
    for n, name in enumerate(names):
        queued = api.post(
            "/api/v1/integrations/xero/push/contact",
            json={"operation": "create", "data": {"id": f"crm-{n}", "name": name}},
            headers={**bearer(token), "Idempotency-Key": f"crash-{n}"},
        )
        assert queued.status_code == 202, queued.text
    return names


def mid_batch(xero: Xero, settings: Settings, daemons: Daemons, contacts_before: int) -> str:
    """Start a daemon and wait until its push run has had the first batch applied at Xero and waits for the answer
    (held back by the sandbox); the run's id."""
    xero.knobs.slow_write_answers, xero.knobs.slow_write_answer_s = 1, HELD_ANSWER_S
    daemon = daemons.start()

    def applied_and_waiting() -> bool:
        assert daemon.poll() is None, daemons.log()
        applied = xero.sandbox.count(xero.org, "contacts") == contacts_before + BATCH
        return applied and xero.sandbox.in_flight(xero.org) > 0

    poll(applied_and_waiting, "the first batch to be applied at Xero, its answer held", 90, daemons.log)
    rows = outbox(settings)
    assert {row.status for row in rows} == {"running"} and len({row.run_id for row in rows}) == 1
    assert len(xero.writes) == 1 and xero.writes[0].method == "PUT"
    return str(rows[0].run_id)


def names_in(write: Write) -> list[str]:
    return [contact["Name"] for contact in json.loads(write.body)["Contacts"]]


@fault(
    "kill the daemon mid-push batch",
    "daemon process group (code server, run worker) SIGKILLed while Xero held the answer to a PUT of 50 contacts "
    "it had applied: a fresh daemon fails the dead run, returns its 60 rows to pending and resends them (the "
    "batch under its same Idempotency-Key); each push done once, each contact once at Xero, the sync log says the "
    "killed run failed and the resend succeeded, the connection stays connected",
)
def test_a_push_run_killed_with_its_daemon_mid_batch_is_resent_by_a_fresh_daemon_and_applied_once(
    api: TestClient, settings: Settings, xero: Xero, daemons: Daemons
) -> None:
    names = queue_pushes(api, settings)
    contacts_before = xero.sandbox.count(xero.org, "contacts")
    killed = mid_batch(xero, settings, daemons, contacts_before)

    group = daemons.started[0].pid
    members = group_members(group)
    # The code server runs the push run in a process it spawns (multiprocessing): it is in the group too.
    assert any("dagster api grpc" in cmdline for cmdline in members.values()), members
    assert any("multiprocessing.spawn" in cmdline for cmdline in members.values()), members
    os.killpg(group, signal.SIGKILL)
    daemons.started[0].wait(timeout=30)
    poll(lambda: not group_members(group), "every process of the daemon's group to die", 30, daemons.log)
    assert push_runs(daemons.env) == {killed: DagsterRunStatus.STARTED}  # nothing left to say it ended
    assert {row.status for row in outbox(settings)} == {"running"}

    daemons.start()

    def finished() -> list[PushOutbox]:
        rows = outbox(settings)
        return rows if all(row.status in ("done", "failed") for row in rows) else []

    rows = poll(finished, "every push to finish after the fresh daemon started", 75, daemons.log)
    assert [row.status for row in rows] == ["done"] * PUSHES, [(r.id, r.status, r.error_message) for r in rows]

    # Xero: each contact once, the batch resent as the same call under the same key.
    at_xero = xero.contact_names()
    assert {name: at_xero[name] for name in names} == dict.fromkeys(names, 1)
    assert xero.sandbox.count(xero.org, "contacts") == contacts_before + PUSHES
    first = xero.writes[0]
    assert names_in(first) == names[:BATCH] and first.idempotency_key
    resent = [write for write in xero.writes[1:] if write.idempotency_key == first.idempotency_key]
    assert [write.body for write in resent] == [first.body]  # once more, the same members in the same order
    keys = Counter(write.idempotency_key for write in xero.writes)
    assert all(count == 1 for key, count in keys.items() if key != first.idempotency_key), keys
    assert sorted(name for write in xero.writes[1:] for name in names_in(write)) == sorted(names)

    # The outbox: the killed run's rows went back to pending and a later run sent them, each linked to its contact.
    assert all(row.run_id != killed and row.attempts == 2 for row in rows), [(r.id, r.run_id, r.attempts) for r in rows]
    assert len({row.external_id for row in rows}) == PUSHES
    retry_runs = {str(row.run_id) for row in rows}

    # The sync log: the killed run failed with its pushes retried, the resend succeeded (the run-status sensor
    # writes that a moment after the run ended).
    every_run = {killed, *retry_runs}
    log = poll(lambda: logged(settings, every_run), "the sync log of every push run", SYNC_LOG_WAIT_S, daemons.log)
    runs = push_runs(daemons.env)
    assert runs[killed] == DagsterRunStatus.FAILURE
    assert all(runs[run_id] == DagsterRunStatus.SUCCESS for run_id in retry_runs), runs
    dead = log[(killed, "contact")]
    assert dead.status == "failed" and dead.counts["retrying"] == PUSHES and dead.counts["done"] == 0
    assert dead.error_message and "died" in dead.error_message, dead.error_message
    assert (killed, None) not in log  # no second row claiming the run touched nothing
    done = [log[(run_id, "contact")] for run_id in retry_runs]
    assert all(row.status == "success" and row.error_message is None for row in done)
    assert sum(row.counts["done"] for row in done) == PUSHES
    assert connection_status(settings) == "connected"


@fault(
    "kill the daemon mid-push batch",
    "only the daemon process SIGKILLed while Xero held the answer to the PUT of 50: its run worker lives on and "
    "finishes; the fresh daemon leaves the live run alone (its lock is held), nothing is resent, each push done "
    "once by that run, each contact once at Xero, one successful sync-log row, the connection stays connected",
)
def test_a_push_run_whose_daemon_alone_is_killed_mid_batch_finishes_and_is_not_resent(
    api: TestClient, settings: Settings, xero: Xero, daemons: Daemons
) -> None:
    names = queue_pushes(api, settings)
    contacts_before = xero.sandbox.count(xero.org, "contacts")
    run_id = mid_batch(xero, settings, daemons, contacts_before)

    os.kill(daemons.started[0].pid, signal.SIGKILL)
    daemons.started[0].wait(timeout=30)
    daemons.start()
    # The fresh daemon's push sensor looks at the run while it still sends: STARTED, its rows running (they only
    # go on to done here, so rows running after the tick were running during it).
    poll(lambda: daemons.said(1, "Sensor xero_push_sensor skipped"), "the fresh push sensor's tick", 30, daemons.log)
    assert {row.status for row in outbox(settings)} == {"running"}
    xero.knobs.release_held_answers = True

    def finished() -> list[PushOutbox]:
        rows = outbox(settings)
        return rows if all(row.status in ("done", "failed") for row in rows) else []

    rows = poll(finished, "the run to finish its pushes", 60, daemons.log)
    assert [row.status for row in rows] == ["done"] * PUSHES, [(r.id, r.status, r.error_message) for r in rows]
    assert all(row.run_id == run_id and row.attempts == 1 for row in rows)  # never returned to the outbox
    at_xero = xero.contact_names()
    assert {name: at_xero[name] for name in names} == dict.fromkeys(names, 1)
    assert xero.sandbox.count(xero.org, "contacts") == contacts_before + PUSHES
    assert [names_in(write) for write in xero.writes] == [names[:BATCH], names[BATCH:]]  # nothing sent twice
    assert len({write.idempotency_key for write in xero.writes}) == 2

    log = poll(lambda: logged(settings, {run_id}), "the run's sync log", SYNC_LOG_WAIT_S, daemons.log)
    assert push_runs(daemons.env) == {run_id: DagsterRunStatus.SUCCESS}
    [(key, row)] = log.items()
    assert key == (run_id, "contact") and row.status == "success" and row.counts["done"] == PUSHES
    assert connection_status(settings) == "connected"
