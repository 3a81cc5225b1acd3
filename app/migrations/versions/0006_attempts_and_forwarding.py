"""replay and auto-forward attempts, and each bin's forward targets

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

Every time a capture is sent somewhere (a replay, an auto-forward try) it leaves a row in
``attempts``, deleted with its request. ``bins.forward_to`` holds a bin's auto-forward targets.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    # A plain ADD COLUMN on every engine: no table rebuild.
    op.add_column("bins", sa.Column("forward_to", sa.Text(), nullable=True))
    op.create_table(
        "attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("bin_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("try_number", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("error", sa.String(length=32), nullable=True),
        sa.Column("message", sa.Text(), nullable=False, server_default=""),
        sa.Column("response_headers", sa.JSON(), nullable=True),
        sa.Column("response_body", sa.LargeBinary(), nullable=True),
        sa.Column("response_truncated", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("timings", sa.JSON(), nullable=True),
        sa.Column("retry_at", sa.DateTime(), nullable=True),
        sa.Column("edited", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("resigned", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_attempts_request", "attempts", ["request_id", "id"])
    op.create_index("ix_attempts_due", "attempts", ["state", "due_at"])


def downgrade():
    op.drop_index("ix_attempts_due", table_name="attempts")
    op.drop_index("ix_attempts_request", table_name="attempts")
    op.drop_table("attempts")
    with op.batch_alter_table("bins", schema=None) as batch_op:
        batch_op.drop_column("forward_to")
