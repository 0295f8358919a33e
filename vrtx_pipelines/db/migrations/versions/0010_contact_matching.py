"""contact matching: the CRM's contacts and their addresses, activity records' participants, and the index marks

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from vrtx_pipelines.db.models import UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "crm_contacts",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column(
            "tenant_id",
            sa.String(50),
            sa.ForeignKey("tenants.id", name="fk_crm_contacts_tenant_id_tenants", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("contact_id", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("tenant_id", "contact_id", name="uq_crm_contacts_tenant_id_contact_id"),
    )
    op.create_table(
        "crm_contact_addresses",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column(
            "contact_row_id",
            BIG_ID,
            sa.ForeignKey(
                "crm_contacts.id", name="fk_crm_contact_addresses_contact_row_id_crm_contacts", ondelete="CASCADE"
            ),
            nullable=False,
        ),
        sa.Column("tenant_id", sa.String(50), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("address_key", sa.String(320), nullable=False),
        sa.UniqueConstraint(
            "contact_row_id", "address_key", name="uq_crm_contact_addresses_contact_row_id_address_key"
        ),
    )
    op.create_index("ix_crm_contact_addresses_key", "crm_contact_addresses", ["tenant_id", "address_key"])
    op.create_table(
        "record_participants",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column(
            "tenant_integration_id",
            sa.Integer(),
            sa.ForeignKey(
                "tenant_integrations.id",
                name="fk_record_participants_connection",
                ondelete="CASCADE",
            ),
            nullable=False,
        ),
        sa.Column(
            "record_id",
            BIG_ID,
            sa.ForeignKey(
                "canonical_records.id", name="fk_record_participants_record_id_canonical_records", ondelete="CASCADE"
            ),
            nullable=False,
        ),
        sa.Column("tenant_id", sa.String(50), nullable=False),
        sa.Column("address_key", sa.String(320), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_record_participants_key", "record_participants", ["tenant_id", "address_key", "at"])
    op.create_index("ix_record_participants_record", "record_participants", ["record_id"])
    op.create_table(
        "participant_index_marks",
        sa.Column(
            "tenant_integration_id",
            sa.Integer(),
            sa.ForeignKey(
                "tenant_integrations.id",
                name="fk_participant_index_marks_connection",
                ondelete="CASCADE",
            ),
            primary_key=True,
        ),
        sa.Column("indexed_seq", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("participant_index_marks")
    op.drop_index("ix_record_participants_record", "record_participants")
    op.drop_index("ix_record_participants_key", "record_participants")
    op.drop_table("record_participants")
    op.drop_index("ix_crm_contact_addresses_key", "crm_contact_addresses")
    op.drop_table("crm_contact_addresses")
    op.drop_table("crm_contacts")
