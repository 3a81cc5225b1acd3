"""what a bin answers, and what each capture was answered

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08

``bins.response_settings`` holds a bin's custom responses, rules, handshake and CORS settings as
canonical JSON text (app/ingest/respond/settings.py); NULL is today's plain ``200 ok``.
``answers`` keeps what a capture was answered when that was anything but the default (one row,
written just after the capture's own transaction); ``requests.delivery_id`` names the delivery a
failure rehearsal counted a capture under, so its retries list together. The index is partial:
captures without a delivery id (nearly all) add nothing to it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMNs (no table rebuild) and a new table.
    op.add_column("bins", sa.Column("response_settings", sa.Text(), nullable=True))
    op.add_column("requests", sa.Column("delivery_id", sa.Text(), nullable=True))
    op.create_index(
        "ix_requests_bin_delivery",
        "requests",
        ["bin_id", "delivery_id", "seq"],
        sqlite_where=sa.text("delivery_id IS NOT NULL"),
        postgresql_where=sa.text("delivery_id IS NOT NULL"),
    )
    op.create_table(
        "answers",
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("request_id"),
    )


def downgrade():
    op.drop_table("answers")
    op.drop_index("ix_requests_bin_delivery", table_name="requests")
    # Not batch mode: on SQLite that rebuilds the table, and the rebuilt one would lack the
    # search triggers (0004). SQLite 3.35+ drops a column in place.
    op.drop_column("requests", "delivery_id")
    with op.batch_alter_table("bins", schema=None) as batch_op:
        batch_op.drop_column("response_settings")
