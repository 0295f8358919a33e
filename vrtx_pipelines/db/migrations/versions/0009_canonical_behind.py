"""canonical records behind the warehouse: the entities a pull loaded without committing their records

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Set before a pull's warehouse load, cleared in the transaction that commits its canonical records: what is
    # left set names the entities the next pull re-derives from the warehouse (vrtx_pipelines.pull.catch_up).
    json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    with op.batch_alter_table("tenant_integrations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("canonical_behind", json, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenant_integrations", schema=None) as batch_op:
        batch_op.drop_column("canonical_behind")
