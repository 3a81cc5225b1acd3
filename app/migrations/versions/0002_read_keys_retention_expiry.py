"""read keys, retention, expiry, ingest protection, pins

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Bins made before read keys existed get a random key nobody holds: they stay private (and expire
in 7 days) rather than becoming readable by anyone who knows their capture URL.
"""

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

WEEK = 7 * 24 * 3600


def upgrade():
    with op.batch_alter_table("bins", schema=None) as batch_op:
        batch_op.add_column(sa.Column("description", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("read_key_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("request_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("max_requests", sa.Integer(), nullable=False, server_default="1000")
        )
        batch_op.add_column(sa.Column("expires_after", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("ingest_auth", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("ingest_secret_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("fixed", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_index("ix_bins_expires_at", ["expires_at"], unique=False)

    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", sa.Integer(), nullable=False, server_default="200"))
        batch_op.add_column(
            sa.Column("rejected", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("pinned", sa.Boolean(), nullable=False, server_default=sa.false())
        )

    conn = op.get_bind()
    expires_at = datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=WEEK)
    for (bin_id,) in conn.execute(sa.text("SELECT id FROM bins")).all():
        conn.execute(
            sa.text(
                "UPDATE bins SET read_key_hash = :h, expires_after = :after, expires_at = :at,"
                " request_count = (SELECT count(*) FROM requests WHERE bin_id = :id)"
                " WHERE id = :id"
            ),
            {
                "h": hashlib.sha256(secrets.token_bytes(32)).hexdigest(),
                "after": WEEK,
                "at": expires_at,
                "id": bin_id,
            },
        )


def downgrade():
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_column("pinned")
        batch_op.drop_column("rejected")
        batch_op.drop_column("status")

    with op.batch_alter_table("bins", schema=None) as batch_op:
        batch_op.drop_index("ix_bins_expires_at")
        batch_op.drop_column("fixed")
        batch_op.drop_column("ingest_secret_hash")
        batch_op.drop_column("ingest_auth")
        batch_op.drop_column("expires_at")
        batch_op.drop_column("expires_after")
        batch_op.drop_column("max_requests")
        batch_op.drop_column("request_count")
        batch_op.drop_column("read_key_hash")
        batch_op.drop_column("description")
