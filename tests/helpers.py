"""Small helpers shared by tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from alembic.script import ScriptDirectory

from vrtx_pipelines.config import Settings
from vrtx_pipelines.connect.consent import consent_in_sandbox
from vrtx_pipelines.connect.context import ConnectionContext
from vrtx_pipelines.credentials.vault import vault_from_settings
from vrtx_pipelines.db import migrate
from vrtx_pipelines.db.session import engine_for, session_scope
from vrtx_pipelines.registry import get_provider
from vrtx_pipelines.tenants import create_tenant
from vrtx_pipelines.webhooks.launch import ImmediateDispatcher
from vrtx_pipelines.webhooks.worker import WebhookWorker


def make_tenant(settings: Settings, tenant_id: str, name: str | None = None) -> str:
    """Create a tenant in the settings' database and return its API token."""
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        _tenant, token = create_tenant(session, tenant_id, name)
    return token


def consent(settings: Settings, tenant_id: str, slug: str, accounts: list[str] | None = None) -> None:
    """The real OAuth flow through the provider sandbox's consent page (what `vrtx connect <slug>` does);
    ``accounts``: the organisations (realms, ...) to tick on it, else the sandbox's default."""
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        ctx = ConnectionContext(session=session, vault=vault_from_settings(settings), settings=settings)
        consent_in_sandbox(ctx, tenant_id, get_provider(slug), accounts)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class FakeTime:
    """A clock and a sleep for governors and clients: sleeping moves the clock, nothing waits."""

    now: float = field(default_factory=time.time)
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def head_revision() -> str:
    """The app migrations' newest revision (tests name it, not a literal that every new migration breaks)."""
    head = ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


@contextmanager
def running_worker(dispatcher: ImmediateDispatcher) -> Iterator[WebhookWorker]:
    """The webhook worker's loop on a thread of the test, as `vrtx webhook-worker` runs it, around ``dispatcher``."""
    worker = WebhookWorker(dispatcher.sessions, dispatcher)
    thread, stop = worker.start()
    try:
        yield worker
    finally:
        stop.set()
        thread.join(timeout=30)


def stop_group(process: subprocess.Popen[bytes], first: int = signal.SIGTERM, timeout: float = 30) -> None:
    """Stop a process started with ``start_new_session`` and everything of its group: ``first``, then SIGKILL to
    the group whether or not its leader has exited (a Dagster code server can outlive its parent's clean exit and
    wait forever on a run whose database a test has dropped)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, first)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
