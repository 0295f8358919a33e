"""scheduled pull claims

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The schedule's own bookkeeping (vrtx_pipelines.pull.fleet): which batch run holds a connection, since when,
    # and how many scheduled attempts in a row failed (the retry backs off by it).
    with op.batch_alter_table("tenant_integrations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sync_claim", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("sync_claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("sync_failures", sa.Integer(), server_default="0", nullable=False))
        batch_op.create_index("ix_tenant_integrations_sync_claim", ["sync_claim"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tenant_integrations", schema=None) as batch_op:
        batch_op.drop_index("ix_tenant_integrations_sync_claim")
        batch_op.drop_column("sync_failures")
        batch_op.drop_column("sync_claimed_at")
        batch_op.drop_column("sync_claim")
