"""captures and refusals per bin per period, for the bin page, the API and operators

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10

A new table only: counted in each process and added in batches (app/store/usage.py), pruned
after two days by the janitor.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "bin_usage",
        sa.Column("bin_id", sa.String(length=64), nullable=False),
        sa.Column("period", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["bin_id"], ["bins.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("bin_id", "period", "reason"),
    )
    op.create_index("ix_bin_usage_period", "bin_usage", ["period"], unique=False)


def downgrade():
    op.drop_index("ix_bin_usage_period", table_name="bin_usage")
    op.drop_table("bin_usage")
