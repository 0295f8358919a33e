"""marketplace links single-use and bound to the tenant's token generation

Revision ID: 0005_marketplace
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_marketplace"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("token_generation", sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        "marketplace_links",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=50), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_marketplace_links_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_marketplace_links")),
    )
    with op.batch_alter_table("marketplace_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_marketplace_links_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("marketplace_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_marketplace_links_expires_at"))
    op.drop_table("marketplace_links")
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("token_generation")
