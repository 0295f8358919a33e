"""The API's immediate push launcher hands each outbox row to one run: a burst of pushes does not become a queue of
runs that claim nothing (each would hold the connection's push slot and a process start)."""

# ruff: noqa: F811 -- the Xero fixtures imported below are requested by name
from __future__ import annotations

from typing import Any

import pytest
from dagster import DagsterRunStatus
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.helpers import bearer, make_tenant
from tests.xero.conftest import base_urls, connect_xero, oauth_clients, xero  # noqa: F401 -- fixtures
from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.models import TenantIntegration
from vrtx_pipelines.db.session import engine_for, session_factory, session_scope
from vrtx_pipelines.names import push_op_name
from vrtx_pipelines.push import launch as push_launch
from vrtx_pipelines.push.launch import PushLauncher


def test_rows_already_handed_to_a_run_are_not_launched_again_until_the_relaunch_delay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    launcher = PushLauncher(lambda: None, "http://127.0.0.1:9")  # type: ignore[arg-type,return-value] -- unused here
    clock = [1000.0]
    monkeypatch.setattr(push_launch.time, "monotonic", lambda: clock[0])
    try:
        assert launcher._unlaunched((1, 2, 3)) is True
        assert launcher._unlaunched((1, 2, 3)) is False
        assert launcher._unlaunched((2, 3, 4)) is True  # row 4 is new: the batch goes to a run
        clock[0] += push_launch.RELAUNCH_AFTER_S + 1
        assert launcher._unlaunched((1, 2, 3)) is True  # a run that died long ago: launched again
    finally:
        launcher.close()


class _Dagster:
    """The webserver's GraphQL client as the launcher uses it: submissions recorded, run states set by the test."""

    def __init__(self) -> None:
        self.submitted: list[list[int]] = []
        self.status = DagsterRunStatus.QUEUED

    def submit_job_execution(self, job_name: str, **kwargs: Any) -> str:
        self.submitted.append(kwargs["run_config"]["ops"][push_op_name("xero")]["config"]["push_ids"])
        return f"run-{len(self.submitted)}"

    def get_run_status(self, run_id: str) -> DagsterRunStatus:
        return self.status


def test_no_second_run_is_launched_for_a_connection_while_the_last_one_has_not_started(
    api: TestClient, settings: Settings, xero: Any
) -> None:
    api.app.state.push_launcher = None  # type: ignore[attr-defined] -- the launcher under test is driven below
    token = make_tenant(settings, "acme")
    connect_xero(settings, "acme")
    sessions = session_factory(engine_for(settings.sqlalchemy_url))
    launcher = PushLauncher(sessions, "http://127.0.0.1:9")
    dagster = _Dagster()
    launcher._client = dagster
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        connection_id = session.scalars(select(TenantIntegration.id)).one()

    def pushed(*names: str) -> list[int]:
        ids = []
        for name in names:
            answer = api.post(
                "/api/v1/integrations/xero/push/contact",
                json={"operation": "create", "data": {"id": name, "name": name}},
                headers={**bearer(token), "Idempotency-Key": name},
            )
            assert answer.status_code == 202, answer.text
            ids.append(int(answer.json()["id"]))
        return ids

    try:
        first = pushed("a", "b")
        launcher._launch("xero", connection_id)
        assert dagster.submitted == [first]
        pushed("c", "d")
        launcher._launch("xero", connection_id)  # run-1 is queued: it takes c and d when it starts
        assert dagster.submitted == [first]
        dagster.status = DagsterRunStatus.STARTED  # it may have claimed already: later pushes need a run
        later = pushed("e")
        launcher._launch("xero", connection_id)
        assert len(dagster.submitted) == 2 and set(later) <= set(dagster.submitted[1])
    finally:
        launcher.close()
