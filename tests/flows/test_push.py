"""Pushes, for every provider that takes them: the CRM queues a canonical record through the API, the push sensor
and job send it to the sandbox, and a pull reads back what the provider holds."""

from __future__ import annotations

from typing import Any

import pytest
from dagster import DagsterInstance, build_sensor_context
from fastapi.testclient import TestClient

from tests.flows.harness import Flows, Started
from tests.flows.test_pull import records, sync
from tests.helpers import bearer
from vrtx_pipelines.config import Settings
from vrtx_pipelines.orchestration.pushes import push_job, push_sensor

CAPABILITY = "push:"
pytestmark = pytest.mark.dagster


def queue(
    api: TestClient, token: str, flows: Flows, entity: str, operation: str, data: dict[str, Any], key: str
) -> Any:
    return api.post(
        f"/api/v1/integrations/{flows.slug}/push/{entity}",
        json={"operation": operation, "data": data},
        headers={**bearer(token), "Idempotency-Key": key},
    )


def drain(flows: Flows, instance: DagsterInstance) -> int:
    """What the daemon does: tick the push sensor and run every batch it asks for; returns the runs."""
    job = push_job(flows.provider)
    requests = push_sensor(flows.provider, job).evaluate_tick(build_sensor_context(instance=instance)).run_requests
    for request in requests or []:
        assert job.execute_in_process(run_config=request.run_config, instance=instance, tags=request.tags).success
    return len(requests or [])


def outcome(api: TestClient, token: str, flows: Flows, entity: str, push_id: int) -> dict[str, Any]:
    answer = api.get(f"/api/v1/integrations/{flows.slug}/push/{push_id}", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def pulled(api: TestClient, token: str, flows: Flows, entity: str, external_id: str) -> dict[str, Any]:
    (record,) = [r for r in records(api, token, flows, entity)["records"] if r["external_id"] == external_id]
    data: dict[str, Any] = record["data"]
    return data


@pytest.fixture
def connected(api: TestClient, flows: Flows, token: str) -> str:
    flows.connect(api, token)
    if flows.push_settings:
        current = api.get(f"/api/v1/integrations/{flows.slug}/settings", headers=bearer(token)).json()["settings"]
        answer = api.put(
            f"/api/v1/integrations/{flows.slug}/settings",
            json={**current, **flows.push_settings},
            headers=bearer(token),
        )
        assert answer.status_code == 200, answer.text
    return token


def test_pushes_create_then_update_each_record_once_and_a_pull_reads_them_back(
    api: TestClient, settings: Settings, flows: Flows, started: Started, instance: DagsterInstance, connected: str
) -> None:
    for entity, case in flows.pushes.items():
        sandbox_entity = flows.sandbox_entity(case.pulled_as)
        before = started.sandbox.count(started.tenant, sandbox_entity)
        created = queue(api, connected, flows, entity, "create", case.create, f"flow-{entity}-create")
        assert created.status_code == 202, created.text
        assert drain(flows, instance) == 1
        done = outcome(api, connected, flows, entity, created.json()["id"])
        assert done["status"] == "done" and done["external_id"], done
        assert started.sandbox.count(started.tenant, sandbox_entity) == before + 1, entity
        sync(settings, flows, instance, [case.pulled_as])
        record = pulled(api, connected, flows, case.pulled_as, done["external_id"])
        if case.update is None:
            continue
        updated = queue(api, connected, flows, entity, "update", case.update, f"flow-{entity}-update")
        assert updated.status_code == 202, updated.text
        drain(flows, instance)
        assert outcome(api, connected, flows, entity, updated.json()["id"])["status"] == "done"
        assert started.sandbox.count(started.tenant, sandbox_entity) == before + 1, f"{entity}: updated in place"
        sync(settings, flows, instance, [case.pulled_as])
        again = pulled(api, connected, flows, case.pulled_as, done["external_id"])
        assert again[case.changes] == case.update[case.changes] != record[case.changes], entity


def test_the_same_idempotency_key_is_the_same_push_and_is_sent_once(
    api: TestClient, flows: Flows, started: Started, instance: DagsterInstance, connected: str
) -> None:
    entity, case = next(iter(flows.pushes.items()))
    sandbox_entity = flows.sandbox_entity(case.pulled_as)
    before = started.sandbox.count(started.tenant, sandbox_entity)
    first = queue(api, connected, flows, entity, "create", case.create, "flow-replay")
    replay = queue(api, connected, flows, entity, "create", case.create, "flow-replay")
    assert first.status_code == 202 and replay.status_code in (200, 202), replay.text
    assert replay.json()["id"] == first.json()["id"]
    drain(flows, instance)
    late = queue(api, connected, flows, entity, "create", case.create, "flow-replay")  # after it was sent
    assert late.json()["id"] == first.json()["id"] and late.json()["status"] == "done"
    assert drain(flows, instance) == 0
    assert started.sandbox.count(started.tenant, sandbox_entity) == before + 1
    other = queue(api, connected, flows, entity, "create", {**case.create, "id": "crm-other"}, "flow-replay")
    assert other.status_code in (409, 422), other.text
    assert other.json()["error"]["code"] == "idempotency_key_reused"
