"""provider calls: the rate budgets a connection's processes share

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "provider_calls",
        sa.Column("provider", sa.String(50), nullable=False),
        sa.Column("account", sa.String(255), nullable=False),
        sa.Column("second", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("owner", sa.String(36), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("provider", "account", "second", "owner", name=op.f("pk_provider_calls")),
    )


def downgrade() -> None:
    op.drop_table("provider_calls")
