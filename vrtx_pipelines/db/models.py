"""The app database: the seed's five tables plus what the flows need.

Column names and constraints of ``integrations``, ``tenant_integrations``, ``integration_sync_logs``,
``integration_field_mappings`` and ``integration_webhooks`` follow the seed design. JSON columns are JSONB on
PostgreSQL and JSON elsewhere. Encrypted values are vault envelopes (see ``vrtx_pipelines.credentials.vault``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

JSONType = JSON().with_variant(JSONB(), "postgresql")
# Integer ids on SQLite (its rowid alias); BIGSERIAL-sized on PostgreSQL for the high-volume tables.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Status:
    """A connection's ``status``."""

    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    ERROR = "error"
    EXPIRED = "expired"


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend: SQLite keeps no offset and would hand back naive ones,
    which Python then reads as local time."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def table_of(model: type[Any]) -> Table:
    """A mapped class's table, for Core statements (they skip the ORM's per-object machinery)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSONType, list[Any]: JSONType}


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Tenant(Timestamps, Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(50), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # SHA-256 of the API token; the token itself is shown once and never stored.
    api_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    api_token_prefix: Mapped[str] = mapped_column(String(16))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    branding: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    # Where the CRM hears events; the signing secret is a vault envelope.
    callback_url: Mapped[str | None] = mapped_column(String(500))
    callback_secret: Mapped[str | None] = mapped_column(String(1024))
    # Counts token rotations: marketplace links and sessions carry the generation they were issued under, so a
    # rotation ends every one of them at once.
    token_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Integration(Timestamps, Base):
    __tablename__ = "integrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(50))
    icon_url: Mapped[str | None] = mapped_column(String(255))
    auth_type: Mapped[str] = mapped_column(String(20))
    config_schema: Mapped[dict[str, Any]] = mapped_column(JSONType)
    capabilities: Mapped[list[Any]] = mapped_column(JSONType)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    display_order: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    tier: Mapped[int] = mapped_column(Integer, default=3)
    # Capabilities that work today (a subset of ``capabilities`` plus "connect").
    implemented: Mapped[list[Any]] = mapped_column(JSONType, default=list)


class TenantIntegration(Timestamps, Base):
    __tablename__ = "tenant_integrations"
    __table_args__ = (UniqueConstraint("tenant_id", "integration_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(50), ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id"))
    status: Mapped[str] = mapped_column(String(20), default="disconnected", server_default="disconnected")
    credentials: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    settings: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    last_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    connected_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    connected_by: Mapped[int | None] = mapped_column(Integer)
    # The schedule's bookkeeping (vrtx_pipelines.pull.fleet): the batch run that holds the connection (None when
    # none does), when it was last claimed, and how many scheduled attempts in a row failed.
    sync_claim: Mapped[str | None] = mapped_column(String(64), index=True)
    sync_claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sync_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The entities whose canonical records may be behind the warehouse: a pull's load committed (its cursors
    # with it) but its records did not. Set before each load, cleared with the records' commit
    # (vrtx_pipelines.pull.catch_up).
    canonical_behind: Mapped[list[Any] | None] = mapped_column(JSONType)

    integration: Mapped[Integration] = relationship(lazy="joined")


class IntegrationSyncLog(Base):
    __tablename__ = "integration_sync_logs"
    __table_args__ = (
        Index("ix_sync_logs_connection_created", "tenant_integration_id", "created_at"),
        Index("ix_sync_logs_run", "run_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_integration_id: Mapped[int] = mapped_column(ForeignKey("tenant_integrations.id", ondelete="CASCADE"))
    sync_type: Mapped[str] = mapped_column(String(50))
    entity_type: Mapped[str | None] = mapped_column(String(50))
    entity_id: Mapped[int | None] = mapped_column(Integer)
    external_id: Mapped[str | None] = mapped_column(String(100))
    direction: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20))
    request_data: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    response_data: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    error_message: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The Dagster run this row mirrors; one row per (run, entity).
    run_id: Mapped[str | None] = mapped_column(String(64))
    # Rows per entity per run are upserted by run-status sensors; pushes log one row per push.
    counts: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    cursor: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    push_id: Mapped[int | None] = mapped_column(BigInteger)


class IntegrationFieldMapping(Timestamps, Base):
    __tablename__ = "integration_field_mappings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_integration_id: Mapped[int] = mapped_column(
        ForeignKey("tenant_integrations.id", ondelete="CASCADE"), index=True
    )
    entity_type: Mapped[str] = mapped_column(String(50))
    vrtx_field: Mapped[str] = mapped_column(String(100))
    external_field: Mapped[str] = mapped_column(String(100))
    transform_type: Mapped[str | None] = mapped_column(String(20))
    transform_config: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # Which way the mapping applies: "both", "pull" (provider -> VRTX) or "push" (VRTX -> provider).
    direction: Mapped[str] = mapped_column(String(10), default="both", server_default="both")
    position: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class FieldMappingVersion(Base):
    """Every change of a connection's mappings for one entity type: who, when, and the whole set after it."""

    __tablename__ = "integration_field_mapping_versions"
    __table_args__ = (UniqueConstraint("tenant_integration_id", "entity_type", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_integration_id: Mapped[int] = mapped_column(ForeignKey("tenant_integrations.id", ondelete="CASCADE"))
    entity_type: Mapped[str] = mapped_column(String(50))
    version: Mapped[int] = mapped_column(Integer)
    mappings: Mapped[list[Any]] = mapped_column(JSONType)
    changed_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SyncConflict(Timestamps, Base):
    """A change made on both sides between syncs that the tenant's conflict policy could not settle."""

    __tablename__ = "sync_conflicts"
    __table_args__ = (Index("ix_sync_conflicts_open", "tenant_integration_id", "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_integration_id: Mapped[int] = mapped_column(ForeignKey("tenant_integrations.id", ondelete="CASCADE"))
    entity_type: Mapped[str] = mapped_column(String(50))
    vrtx_id: Mapped[str | None] = mapped_column(String(100))
    external_id: Mapped[str | None] = mapped_column(String(100))
    fields: Mapped[list[Any]] = mapped_column(JSONType)  # the fields both sides changed
    base_data: Mapped[dict[str, Any] | None] = mapped_column(JSONType)  # as last synced
    crm_data: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    provider_data: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    policy: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | resolved
    resolution: Mapped[str | None] = mapped_column(String(20))  # crm | provider | merged | auto:<policy>
    resolved_data: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    push_id: Mapped[int | None] = mapped_column(BigInteger)


class IntegrationWebhook(Timestamps, Base):
    __tablename__ = "integration_webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_integration_id: Mapped[int] = mapped_column(
        ForeignKey("tenant_integrations.id", ondelete="CASCADE"), index=True
    )
    webhook_id: Mapped[str | None] = mapped_column(String(100))
    endpoint_url: Mapped[str | None] = mapped_column(String(255))
    # A vault envelope (serialised); wider than the seed's 255 because ciphertext outgrows the secret.
    secret_key: Mapped[str | None] = mapped_column(String(1024))
    events: Mapped[list[Any] | None] = mapped_column(JSONType)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    last_received_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class EntityLink(Timestamps, Base):
    """The seed's SyncableInterface: a VRTX record and its copy at one connection."""

    __tablename__ = "entity_links"
    __table_args__ = (
        UniqueConstraint("tenant_integration_id", "entity_type", "vrtx_id"),
        UniqueConstraint("tenant_integration_id", "entity_type", "external_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_integration_id: Mapped[int] = mapped_column(ForeignKey("tenant_integrations.id", ondelete="CASCADE"))
    entity_type: Mapped[str] = mapped_column(String(50))
    vrtx_id: Mapped[str] = mapped_column(String(100))
    external_id: Mapped[str] = mapped_column(String(100))
    last_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    remote_version: Mapped[str | None] = mapped_column(String(100))
    remote_hash: Mapped[str | None] = mapped_column(String(64))
    # The CRM's side as last synced: its canonical hash and data (the common base a conflict is judged from).
    local_hash: Mapped[str | None] = mapped_column(String(64))
    synced_data: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class PushOutbox(Timestamps, Base):
    __tablename__ = "push_outbox"
    __table_args__ = (
        UniqueConstraint("tenant_integration_id", "idempotency_key"),
        Index("ix_push_outbox_pending", "status", "next_attempt_at"),
        Index("ix_push_outbox_batch", "tenant_integration_id", "batch_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_integration_id: Mapped[int] = mapped_column(ForeignKey("tenant_integrations.id", ondelete="CASCADE"))
    entity_type: Mapped[str] = mapped_column(String(50))
    operation: Mapped[str] = mapped_column(String(20))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    external_id: Mapped[str | None] = mapped_column(String(100))
    error_message: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(String(64))
    vrtx_id: Mapped[str | None] = mapped_column(String(100))
    # SHA-256 of the canonical payload: the same Idempotency-Key with another payload is refused.
    request_hash: Mapped[str | None] = mapped_column(String(64))
    remote_version: Mapped[str | None] = mapped_column(String(100))
    provider_status: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The provider call this push went out in with others (``vrtx_pipelines.push.batches``), fixed before the call:
    # a resend regroups exactly its members under the same idempotency key.
    batch_key: Mapped[str | None] = mapped_column(String(40))


class WebhookInbox(Base):
    __tablename__ = "webhook_inbox"
    __table_args__ = (
        UniqueConstraint("tenant_integration_id", "provider_event_id"),
        Index("ix_webhook_inbox_status", "status", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_integration_id: Mapped[int] = mapped_column(ForeignKey("tenant_integrations.id", ondelete="CASCADE"))
    provider_event_id: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str | None] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(20), default="received")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error_message: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(String(64))


class OAuthState(Base):
    __tablename__ = "oauth_states"

    # SHA-256 of the state's nonce: a leaked table row cannot be replayed as a state.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(50), ForeignKey("tenants.id", ondelete="CASCADE"))
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id"))
    code_verifier: Mapped[str | None] = mapped_column(String(1024))  # vault envelope
    redirect_uri: Mapped[str] = mapped_column(String(500))
    return_to: Mapped[str | None] = mapped_column(String(500))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MarketplaceLink(Base):
    """A marketplace link that was opened: links are single-use, so opening one burns its nonce here. Rows past
    their link's expiry are deleted as new links are opened (an expired link fails before this table is read)."""

    __tablename__ = "marketplace_links"

    # SHA-256 of the link's nonce, like oauth_states.id.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(50), ForeignKey("tenants.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    used_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OutboundEvent(Base):
    """Domain events for the CRM (IntegrationConnected, SyncCompleted, ...), delivered with retries."""

    __tablename__ = "outbound_events"
    __table_args__ = (Index("ix_outbound_events_tenant_created", "tenant_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(50), ForeignKey("tenants.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(100))
    integration_slug: Mapped[str | None] = mapped_column(String(50))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CanonicalRecord(Timestamps, Base):
    """A provider record as a canonical VRTX entity; ``change_seq`` is the records API's change cursor."""

    __tablename__ = "canonical_records"
    __table_args__ = (
        UniqueConstraint("tenant_integration_id", "entity_type", "external_id"),
        Index("ix_canonical_records_changes", "tenant_integration_id", "entity_type", "change_seq"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_integration_id: Mapped[int] = mapped_column(ForeignKey("tenant_integrations.id", ondelete="CASCADE"))
    entity_type: Mapped[str] = mapped_column(String(50))
    external_id: Mapped[str] = mapped_column(String(100))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    content_hash: Mapped[str] = mapped_column(String(64))
    # Increases with every change of any record of the connection; assigned under the connection's lock.
    change_seq: Mapped[int] = mapped_column(BigInteger)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    remote_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CrmContact(Timestamps, Base):
    """A CRM contact as the CRM told the platform (``PUT /api/v1/contacts/{id}``): what activity is matched to."""

    __tablename__ = "crm_contacts"
    __table_args__ = (UniqueConstraint("tenant_id", "contact_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    contact_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200), default="")


class CrmContactAddress(Base):
    """One of a contact's email addresses, with its comparison key (``records.addresses.address_key``)."""

    __tablename__ = "crm_contact_addresses"
    __table_args__ = (
        UniqueConstraint("contact_row_id", "address_key"),
        Index("ix_crm_contact_addresses_key", "tenant_id", "address_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    contact_row_id: Mapped[int] = mapped_column(ForeignKey("crm_contacts.id", ondelete="CASCADE"))
    tenant_id: Mapped[str] = mapped_column(String(50))
    address: Mapped[str] = mapped_column(String(320))
    address_key: Mapped[str] = mapped_column(String(320))


class RecordParticipant(Base):
    """Who took part in an activity record (a message's sender and recipients, a meeting's organiser and
    attendees), by address key: contacts are matched by joining their addresses with these, so a contact added or
    changed later matches at once. ``at`` orders the timeline (sent at, or starts at)."""

    __tablename__ = "record_participants"
    __table_args__ = (
        Index("ix_record_participants_key", "tenant_id", "address_key", "at"),
        Index("ix_record_participants_record", "record_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # Named here: the convention's name passes PostgreSQL's 63 characters.
    tenant_integration_id: Mapped[int] = mapped_column(
        ForeignKey("tenant_integrations.id", ondelete="CASCADE", name="fk_record_participants_connection")
    )
    record_id: Mapped[int] = mapped_column(ForeignKey("canonical_records.id", ondelete="CASCADE"))
    tenant_id: Mapped[str] = mapped_column(String(50))
    address_key: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ParticipantIndexMark(Base):
    """How far a connection's activity records are indexed into ``record_participants``: its change number."""

    __tablename__ = "participant_index_marks"

    tenant_integration_id: Mapped[int] = mapped_column(
        ForeignKey("tenant_integrations.id", ondelete="CASCADE", name="fk_participant_index_marks_connection"),
        primary_key=True,
    )
    indexed_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class ProviderCall(Base):
    """The calls made for one provider account, counted per second and per governor (a process's pacer of that
    connection): the rate budgets every process shares (``vrtx_pipelines.connect.call_ledger``). Rows older than
    five minutes (``KEEP_S``, past every paced window) are deleted as new ones are written."""

    __tablename__ = "provider_calls"

    provider: Mapped[str] = mapped_column(String(50), primary_key=True)
    account: Mapped[str] = mapped_column(String(255), primary_key=True)
    second: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    owner: Mapped[str] = mapped_column(String(36), primary_key=True)
    calls: Mapped[int] = mapped_column(Integer, nullable=False)
