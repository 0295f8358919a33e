"""Every name the platform derives from a provider's slug and a tenant: Dagster asset keys, jobs, ops, sensors,
schedules, partition sets and run tags, and each tenant's dlt pipeline and dataset. Nothing else spells them.

Imports nothing heavy: the API and the CLI read these names without loading Dagster (asset keys are paths here;
callers wrap them in ``dagster.AssetKey``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from enum import StrEnum

# Run tags. The run queue limits on the connection tags (dagster_home/dagster.yaml); the sync log reads them all.
PROVIDER_TAG = "vrtx/provider"
CONNECTION_TAG = "vrtx/connection"  # one pull run per connection at a time
PUSH_CONNECTION_TAG = "vrtx/push-connection"  # one push run per connection at a time, beside its pulls
KIND_TAG = "vrtx/kind"  # "push" on push runs; pulls carry none
TRIGGER_TAG = "vrtx/trigger"
WEBHOOK_BATCH_TAG = "vrtx/webhook_batch"  # the claimed inbox batch a webhook-driven pull settles
WEBHOOK_EVENTS_TAG = "vrtx/webhook_events"
PARTITION_TAG = "dagster/partition"  # Dagster's own
MAX_RETRIES_TAG = "dagster/max_retries"  # Dagster's own: batch runs are never retried whole
# Batch runs (many tenants of one provider; vrtx_pipelines.pull.batch) carry neither the provider nor a connection
# tag: the run queue limits them on their own, and each tenant's pull lock keeps it apart from other runs.
PULL_BATCH_TAG = "vrtx/pull-batch"  # the provider
BATCH_KEY_TAG = "vrtx/batch"  # the claim the run holds its tenants by (vrtx_pipelines.pull.fleet)

PUSH_KIND = "push"


class Trigger(StrEnum):
    """What started a run, as the sync log shows it."""

    SCHEDULE = "schedule"
    CONNECTED = "connected"  # the first full sync of a new connection
    CLI = "cli"
    API = "api"  # "Sync now" and POST .../sync
    WEBHOOK = "webhook"
    PUSH = "push"


def connection_key(slug: str, tenant_id: str) -> str:
    return f"{slug}:{tenant_id}"


def run_tags(slug: str, tenant_id: str | None = None, *, trigger: Trigger | None = None) -> dict[str, str]:
    """The tags of a pull or health run: its provider, its connection when it has one, what started it."""
    tags = {PROVIDER_TAG: slug}
    if tenant_id is not None:
        tags[CONNECTION_TAG] = connection_key(slug, tenant_id)
    if trigger is not None:
        tags[TRIGGER_TAG] = trigger.value
    return tags


def batch_run_tags(slug: str, key: str) -> dict[str, str]:
    return {PULL_BATCH_TAG: slug, BATCH_KEY_TAG: key, TRIGGER_TAG: Trigger.SCHEDULE.value, MAX_RETRIES_TAG: "0"}


def push_run_tags(slug: str, tenant_id: str) -> dict[str, str]:
    """Push runs queue one per connection under their own tag, not behind the connection's pulls: a first full
    sync may hold ``vrtx/connection`` for minutes, and a push shares no cursor with it."""
    return {
        PROVIDER_TAG: slug,
        PUSH_CONNECTION_TAG: connection_key(slug, tenant_id),
        KIND_TAG: PUSH_KIND,
        TRIGGER_TAG: Trigger.PUSH.value,
    }


# Partitions, assets, jobs, ops, schedules, sensors.


def partitions_name(slug: str) -> str:
    """The provider's dynamic partition set: one key per connected tenant."""
    return f"{slug}_tenants"


def asset_path(slug: str, entity: str) -> list[str]:
    """A pull asset's key path, ``xero/invoices``."""
    return [slug, entity]


def health_asset_path(slug: str) -> list[str]:
    return [slug, "connection_health"]


def pull_op_name(slug: str) -> str:
    """The ``@dlt_assets`` op; its config (``full``) is addressed by this name in run config."""
    return f"{slug}_pull"


def pull_job_name(slug: str) -> str:
    return f"{slug}_sync"


def pull_run_config(slug: str, *, full: bool) -> dict[str, object]:
    return {"ops": {pull_op_name(slug): {"config": {"full": full}}}}


def pull_batch_op_name(slug: str) -> str:
    """The op of a batch run; its config (``tenants``) is addressed by this name in run config."""
    return f"{slug}_pull_batch"


def pull_batch_job_name(slug: str) -> str:
    return f"{slug}_batch_sync"


def pull_batch_run_config(slug: str, tenants: Sequence[str]) -> dict[str, object]:
    return {"ops": {pull_batch_op_name(slug): {"config": {"tenants": list(tenants)}}}}


def health_batch_op_name(slug: str) -> str:
    return f"{slug}_connection_health_checks"


def health_batch_job_name(slug: str) -> str:
    return f"{slug}_connection_health_batch"


def health_batch_run_config(slug: str, tenants: Sequence[str]) -> dict[str, object]:
    return {"ops": {health_batch_op_name(slug): {"config": {"tenants": list(tenants)}}}}


def pull_schedule_name(slug: str) -> str:
    return f"{slug}_incremental_pulls"


def push_op_name(slug: str) -> str:
    return f"{slug}_push_batch"


def push_job_name(slug: str) -> str:
    return f"{slug}_push"


def push_run_config(slug: str, connection_id: int, push_ids: Sequence[int]) -> dict[str, object]:
    return {"ops": {push_op_name(slug): {"config": {"connection_id": connection_id, "push_ids": list(push_ids)}}}}


def push_sensor_name(slug: str) -> str:
    return f"{slug}_push_sensor"


def webhook_sensor_name(slug: str) -> str:
    return f"{slug}_webhook_sensor"


def health_job_name(slug: str) -> str:
    return f"{slug}_connection_health"


def health_schedule_name(slug: str) -> str:
    return f"{slug}_connection_health_schedule"


# The warehouse.


def dataset_name(slug: str, tenant_id: str) -> str:
    """The tenant's own dlt pipeline name and dataset (schema), e.g. ``xero_acme_co_5d41402a``.

    Readable, and injective: destinations normalise names ('-' and '_' alike, double underscores collapse),
    so a hash of the exact tenant id keeps "acme-co" and "acme_co" from ever sharing a dataset.
    """
    digest = hashlib.sha256(tenant_id.encode()).hexdigest()[:8]
    readable = re.sub(r"[^a-z0-9]+", "_", tenant_id.lower()).strip("_")
    return f"{slug}_{readable}_{digest}"


def definitions_pipeline_name(slug: str) -> str:
    """The pipeline that only describes a provider's assets; runs use the tenant's own."""
    return f"{slug}__definitions"
