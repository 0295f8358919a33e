"""``vrtx dev``'s activity feed: one readable line per thing that happened, read from where it is recorded.

Syncs and pushes from Dagster's run storage (started, finished with rows per entity, failed with the failure's own
sentence), pushes' outcomes from the outbox, webhooks from the inbox. Polled once a second by a thread of the dev
process; reading, never writing, so it cannot change what it reports on.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunRecord, RunsFilter
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from vrtx_pipelines.db.models import Integration, PushOutbox, TenantIntegration, WebhookInbox
from vrtx_pipelines.names import (
    CONNECTION_TAG,
    KIND_TAG,
    PARTITION_TAG,
    PROVIDER_TAG,
    PUSH_CONNECTION_TAG,
    PUSH_KIND,
    TRIGGER_TAG,
    health_job_name,
)
from vrtx_pipelines.registry import load_providers
from vrtx_pipelines.synclog.mirror import run_failure_message

TRIGGERS = {
    "schedule": "schedule",
    "connected": "first sync",
    "cli": "vrtx sync",
    "api": "sync now",
    "webhook": "webhook",
    "push": "push",
}
STARTED = {DagsterRunStatus.STARTING, DagsterRunStatus.STARTED}
ENDED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
LATE_UPDATES = timedelta(seconds=2)  # runs updated in the same instant as the last one read are read again


class ActivityFeed:
    def __init__(
        self,
        instance: DagsterInstance,
        sessions: sessionmaker[Session],
        write: Callable[[str], None],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._instance = instance
        self._sessions = sessions
        self._write = write
        self._clock = clock
        self._told: dict[str, str] = {}  # run id -> "started" | "ended": what the feed already said
        self._runs_after = clock() - LATE_UPDATES
        with sessions() as session:
            self._last_webhook = session.scalar(select(func.max(WebhookInbox.id))) or 0
        self._last_problem = ""

    def poll(self) -> list[str]:
        """Everything new since the last poll, as lines (also written)."""
        lines = [*self._runs(), *self._webhooks()]
        for line in lines:
            self._write(line)
        return lines

    def run(self, stop: threading.Event, interval_s: float = 1.0) -> None:
        while not stop.wait(interval_s):
            try:
                self.poll()
            except Exception as exc:  # noqa: BLE001 -- a feed that stops would hide everything after it
                problem = f"activity feed: {type(exc).__name__}: {exc}"[:300]
                if problem != self._last_problem:
                    self._write(self._line("note", "", problem))
                self._last_problem = problem

    # --- runs ---------------------------------------------------------------------------------------------

    def _runs(self) -> list[str]:
        records = self._instance.get_run_records(
            filters=RunsFilter(updated_after=self._runs_after), order_by="update_timestamp", ascending=True, limit=200
        )
        lines = []
        for record in records:
            self._runs_after = max(self._runs_after, record.update_timestamp - LATE_UPDATES)
            lines += self._run_lines(record)
        return lines

    def _run_lines(self, record: RunRecord) -> list[str]:
        run = record.dagster_run
        slug = run.tags.get(PROVIDER_TAG)
        state = "ended" if run.status in ENDED else "started" if run.status in STARTED else None
        told = self._told.get(run.run_id)
        if slug is None or state is None or state == told or told == "ended":
            return []
        self._told[run.run_id] = state
        connection = run.tags.get(CONNECTION_TAG) or run.tags.get(PUSH_CONNECTION_TAG, "")
        tenant = run.tags.get(PARTITION_TAG) or connection.partition(":")[2]
        who = f"{slug} · {tenant}" if tenant else slug
        push = run.tags.get(KIND_TAG) == PUSH_KIND
        health = run.job_name == health_job_name(slug)  # daily and quiet: told only when it fails
        what = "push" if push else "health check" if health else "sync"
        short = run.run_id[:8]
        if state == "started":
            if health:
                return []
            trigger = run.tags.get(TRIGGER_TAG, "")
            return [self._line(f"{what} started", who, f"({TRIGGERS.get(trigger, trigger or 'dagster')}, run {short})")]
        if run.status == DagsterRunStatus.SUCCESS:
            if health:
                return []
            took = f"{record.end_time - record.start_time:.1f} s, " if record.end_time and record.start_time else ""
            detail = self._pushed(run.run_id) if push else self._pulled(run.run_id, slug)
            return [self._line(f"{what} finished", who, f"{detail}  ({took}run {short})")]
        if run.status == DagsterRunStatus.FAILURE:
            failure = run_failure_message(self._instance, run.run_id)
            detail = f"{self._pushed(run.run_id)}; {failure}" if push else failure
            return [self._line(f"{what} failed", who, f"{detail}  (run {short})")]
        return [self._line(f"{what} canceled", who, f"(run {short})")]

    def _pulled(self, run_id: str, slug: str) -> str:
        rows: dict[str, int] = {}
        changed = 0
        for entry in self._instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
            materialization = entry.asset_materialization
            if materialization is None or materialization.asset_key.path[0] != slug:
                continue
            meta = {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
            rows[materialization.asset_key.path[-1]] = _count(meta.get("rows_loaded"))
            changed += _count(meta.get("records_changed"))
        if not rows:
            return "nothing to pull"
        provider = load_providers().get(slug)
        order = list(provider.pulls.entities) if provider is not None and provider.pulls is not None else []
        ordered = sorted(rows.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order))
        per_entity = ", ".join(f"{entity.replace('_', ' ')} {count}" for entity, count in ordered)
        return f"{per_entity} rows; {changed} record{'' if changed == 1 else 's'} changed"

    def _pushed(self, run_id: str) -> str:
        with self._sessions() as session:
            rows = list(session.scalars(select(PushOutbox).where(PushOutbox.run_id == run_id).order_by(PushOutbox.id)))
        if not rows:
            return "no pushes"
        statuses = Counter(row.status for row in rows)
        told = ", ".join(f"{count} {status}" for status, count in sorted(statuses.items()))
        failed = next((row for row in rows if row.status == "failed" and row.error_message), None)
        entities = ", ".join(sorted({f"{row.entity_type} {row.operation}" for row in rows}))
        why = f" (push {failed.id}: {(failed.error_message or '')[:160]})" if failed else ""
        return f"{entities}: {told}{why}"

    # --- webhooks ---------------------------------------------------------------------------------------------

    def _webhooks(self) -> list[str]:
        with self._sessions() as session:
            found = session.execute(
                select(WebhookInbox.id, WebhookInbox.event_type, Integration.slug, TenantIntegration.tenant_id)
                .join(TenantIntegration, TenantIntegration.id == WebhookInbox.tenant_integration_id)
                .join(Integration, Integration.id == TenantIntegration.integration_id)
                .where(WebhookInbox.id > self._last_webhook)
                .order_by(WebhookInbox.id)
                .limit(1000)
            ).all()
        by_connection: dict[tuple[str, str], Counter[str]] = {}
        for row in found:
            self._last_webhook = max(self._last_webhook, row.id)
            by_connection.setdefault((row.slug, row.tenant_id), Counter())[row.event_type or "event"] += 1
        lines = []
        for (slug, tenant), kinds in by_connection.items():
            total = sum(kinds.values())
            detail = ", ".join(f"{kind} x{n}" if n > 1 else kind for kind, n in kinds.most_common(4))
            lines.append(
                self._line("webhook", f"{slug} · {tenant}", f"{total} event{'' if total == 1 else 's'}: {detail}")
            )
        return lines

    def _line(self, what: str, who: str, detail: str) -> str:
        return f"{self._clock().astimezone():%H:%M:%S}  {what:<15} {who:<18} {detail}".rstrip()


def _count(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def start_feed(feed: ActivityFeed, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(target=feed.run, args=(stop,), name="vrtx-dev-activity", daemon=True)
    thread.start()
    return thread
