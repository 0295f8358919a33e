"""push batches: the provider call a push went out in with others

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("push_outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("batch_key", sa.String(length=40), nullable=True))
        batch_op.create_index("ix_push_outbox_batch", ["tenant_integration_id", "batch_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("push_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_push_outbox_batch")
        batch_op.drop_column("batch_key")
