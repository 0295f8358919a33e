"""`vrtx dev`'s quiet terminal: the children's whole output in files, on screen only problems and the activity
feed (syncs started and finished, pushes, webhooks), read from Dagster's run storage and the app database."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus
from fastapi.testclient import TestClient

from providers.sandbox_kit.serve import free_port
from tests.helpers import make_tenant
from tests.xero.conftest import (  # the Xero sandbox fixtures, for tests outside tests/xero
    base_urls,  # noqa: F401
    connect_xero,
    oauth_clients,  # noqa: F401
    xero,  # noqa: F401
)
from vrtx_pipelines.cli.activity import ActivityFeed
from vrtx_pipelines.cli.devlog import QuietFilter, Terminal, pump
from vrtx_pipelines.cli.sync import sync_now
from vrtx_pipelines.config import Settings, reset_settings_cache
from vrtx_pipelines.connect.context import get_connection
from vrtx_pipelines.db.models import PushOutbox, WebhookInbox
from vrtx_pipelines.db.session import engine_for, session_factory, session_scope
from vrtx_pipelines.errors import IntegrationError
from vrtx_pipelines.names import PARTITION_TAG, Trigger, push_run_tags, run_tags

# What `vrtx dev` printed before (SensorDaemon ticks every 5 s, run events at DEBUG, the access log), and what a
# person needs to see (errors with their traceback, our own warnings).
D = "2026-12-03 05:36:16 +0000"
RUN = "xero_sync - 3901fb4c-5341-4163-bd82-5aa475776915"
CHILD_OUTPUT = "".join(
    line + "\n"
    for line in (
        f"\x1b[32m{D}\x1b[0m - dagster.daemon.SensorDaemon - \x1b[34mINFO\x1b[0m - Checking for new runs for sensor: x",
        f"{D} - dagster.daemon.EventLogConsumerDaemon - WARNING - No cursor for event type RUN_FAILURE",
        f'{D} - dagster - DEBUG - {RUN} - 26116 - RUN_START - Started execution of run for "xero_sync".',
        f'{D} - dagster - ERROR - {RUN} - 26244 - xero_pull - STEP_FAILURE - Execution of step "xero_pull" failed.',
        "dagster._core.definitions.events.Failure: Xero: Could not reach Xero (GET /Contacts)",
        "Stack Trace:",
        '  File "/x/dagster/_core/execution/plan/utils.py", line 57, in op_execution_error_boundary',
        'INFO:     127.0.0.1:55706 - "GET /healthz HTTP/1.1" 200 OK',
        '2026-12-03 05:36:40,001 level=INFO logger=httpx HTTP Request: GET http://127.0.0.1:40905/Contacts "200 OK"',
        "2026-12-03 05:36:41,002 level=WARNING logger=vrtx_pipelines.push.launch push run not launched at once",
        "2026-12-03 05:36:42,003 level=ERROR logger=api.errors unhandled error on GET /api/v1/x: KeyError",
        "Traceback (most recent call last):",
        '  File "/x/api/routes/x.py", line 3, in get',
        "KeyError: 'y'",
        "2026-12-03 05:36:43 +0000 - dagster.daemon - ERROR - Could not load the code location vrtx",
        "/x/site-packages/authlib/integrations/httpx_client/assertion_client.py:5: AuthlibDeprecationWarning: old",
        "  from ._compat import httpx2",
        "ERROR:    [Errno 98] error while attempting to bind on address ('127.0.0.1', 8000): address already in use",
    )
)
SHOWN = [
    "2026-12-03 05:36:41,002 level=WARNING logger=vrtx_pipelines.push.launch push run not launched at once",
    "2026-12-03 05:36:42,003 level=ERROR logger=api.errors unhandled error on GET /api/v1/x: KeyError",
    "Traceback (most recent call last):",
    '  File "/x/api/routes/x.py", line 3, in get',
    "KeyError: 'y'",
    "2026-12-03 05:36:43 +0000 - dagster.daemon - ERROR - Could not load the code location vrtx",
    "ERROR:    [Errno 98] error while attempting to bind on address ('127.0.0.1', 8000): address already in use",
]


def test_the_quiet_terminal_shows_problems_whole_and_nothing_else(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", f"import sys; sys.stdout.write({CHILD_OUTPUT!r})"], stdout=subprocess.PIPE
    )
    assert child.stdout is not None
    screen = io.StringIO()
    pump("api", child.stdout, tmp_path / "api.log", Terminal(screen), verbose=False).join(timeout=30)
    child.wait()
    assert screen.getvalue().splitlines() == [f"[api] {line}" for line in SHOWN]
    # The file has every line, colour codes removed.
    written = (tmp_path / "api.log").read_text().splitlines()
    assert len(written) == CHILD_OUTPUT.count("\n") and "\x1b[" not in "".join(written)
    assert written[0].startswith(f"{D} - dagster.daemon.SensorDaemon - INFO - Checking")


def test_verbose_shows_everything_as_the_children_printed_it(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "print('\\x1b[32mgreen\\x1b[0m'); print('plain')"], stdout=-1)
    assert child.stdout is not None
    screen = io.StringIO()
    pump("dagster", child.stdout, tmp_path / "d.log", Terminal(screen), verbose=True).join(timeout=30)
    assert screen.getvalue() == "\x1b[32mgreen\x1b[0m\nplain\n"


def test_a_record_keeps_its_continuation_lines_with_it() -> None:
    quiet = QuietFilter()
    lines = ["2026-12-03 05:36:42,003 level=ERROR logger=vrtx x", "  detail", "INFO:     access", "  not shown"]
    assert [quiet.shows(line) for line in lines] == [True, True, False, False]


@pytest.fixture
def feed(api: TestClient, settings: Settings, instance: DagsterInstance) -> tuple[ActivityFeed, list[str]]:
    make_tenant(settings, "acme")
    connect_xero(settings, "acme")
    written: list[str] = []
    return ActivityFeed(instance, session_factory(engine_for(settings.sqlalchemy_url)), written.append), written


def add_run(instance: DagsterInstance, job: str, status: DagsterRunStatus, tags: dict[str, str]) -> str:
    run_id = str(uuid.uuid4())
    instance.add_run(DagsterRun(job_name=job, run_id=run_id, status=status, tags=tags))
    return run_id


@pytest.mark.dagster
def test_the_feed_tells_syncs_started_finished_and_failed_once_each(
    feed: tuple[ActivityFeed, list[str]],
    settings: Settings,
    instance: DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    activity, written = feed
    tags = {**run_tags("xero", "acme", trigger=Trigger.API), PARTITION_TAG: "acme"}
    queued = add_run(instance, "xero_sync", DagsterRunStatus.STARTED, tags)
    [started] = activity.poll()
    assert "sync started" in started and "xero · acme" in started and f"(sync now, run {queued[:8]})" in started

    sync_now(settings, "xero", "acme", ["contacts", "invoices"], instance=instance)
    [finished] = activity.poll()
    assert "sync finished" in finished and "xero · acme" in finished
    assert "contacts 30, invoices 120 rows; 150 records changed" in finished

    monkeypatch.setenv("VRTX_PROVIDER_BASE_URLS", json.dumps({"xero": f"http://127.0.0.1:{free_port()}"}))
    reset_settings_cache()
    with pytest.raises(IntegrationError):
        sync_now(settings, "xero", "acme", ["contacts"], instance=instance)
    [failed] = activity.poll()
    assert "sync failed" in failed and "Could not reach Xero (GET /Contacts)" in failed
    assert activity.poll() == [] and written == [started, finished, failed]


def test_the_feed_tells_pushes_with_their_outcome_and_webhooks_by_connection(
    feed: tuple[ActivityFeed, list[str]], settings: Settings, instance: DagsterInstance
) -> None:
    activity, _written = feed
    run_id = add_run(instance, "xero_push", DagsterRunStatus.SUCCESS, push_run_tags("xero", "acme"))
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        connection = get_connection(session, "acme", "xero")
        assert connection is not None
        common: dict[str, Any] = {"tenant_integration_id": connection.id, "entity_type": "contact", "payload": {}}
        session.add(PushOutbox(**common, operation="create", idempotency_key="a", status="done", run_id=run_id))
        session.add(
            PushOutbox(
                **common, operation="create", idempotency_key="b", status="failed", run_id=run_id,
                error_message="Xero said: name is taken",
            )
        )  # fmt: skip
        for n, kind in enumerate(("CONTACT.UPDATE", "CONTACT.UPDATE", "INVOICE.CREATE")):
            session.add(
                WebhookInbox(
                    tenant_integration_id=connection.id, provider_event_id=f"e{n}", event_type=kind, payload={}
                )
            )
    push, webhook = activity.poll()
    assert "push finished" in push and "xero · acme" in push
    assert "contact create: 1 done, 1 failed (push " in push and "name is taken" in push
    assert "webhook" in webhook and "3 events: CONTACT.UPDATE x2, INVOICE.CREATE" in webhook
