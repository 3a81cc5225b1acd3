"""storage budgets: bytes stored per request and per bin, a bin's own budget, its creator

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04

Each request counts what it holds as stored (body, header list, URL: app/domain/budgets.py) and
each bin the sum over its requests, so the capture path never sums a bin. Requests stored before
this revision are counted once here. ``max_bytes`` NULL follows the operator's
HOOKSCOPE_BIN_MAX_BYTES; ``last_capture_at``, ``created_by`` and the index on ``stored_bytes``
are for the admin view (biggest first) and the instance's total.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# What a request holds as stored, in bytes, by engine (length() of TEXT counts characters).
_SIZE = {
    "sqlite": "length(CAST(p.body AS BLOB)) + length(CAST(p.headers AS BLOB))"
    " + length(CAST(p.url AS BLOB))",
    "postgresql": "octet_length(p.body) + octet_length(p.headers::text) + octet_length(p.url)",
}


def upgrade():
    # Plain ADD COLUMNs on every engine: no table rebuild.
    op.add_column(
        "requests", sa.Column("stored_bytes", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.add_column(
        "bins", sa.Column("stored_bytes", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.add_column("bins", sa.Column("max_bytes", sa.BigInteger(), nullable=True))
    op.add_column("bins", sa.Column("last_capture_at", sa.DateTime(), nullable=True))
    op.add_column("bins", sa.Column("created_by", sa.String(length=200), nullable=True))
    op.create_index("ix_bins_stored_bytes", "bins", ["stored_bytes", "id", "request_count"])
    size = _SIZE[op.get_bind().dialect.name]
    op.execute(
        f"UPDATE requests SET stored_bytes = (SELECT {size} FROM payloads AS p"  # noqa: S608
        " WHERE p.request_id = requests.id) WHERE EXISTS"
        " (SELECT 1 FROM payloads AS p WHERE p.request_id = requests.id)"
    )
    op.execute(
        "UPDATE bins SET stored_bytes = (SELECT coalesce(sum(r.stored_bytes), 0)"
        " FROM requests AS r WHERE r.bin_id = bins.id),"
        " last_capture_at = (SELECT max(r.received_at) FROM requests AS r WHERE r.bin_id = bins.id)"
    )


def downgrade():
    op.drop_index("ix_bins_stored_bytes", table_name="bins")
    # DROP COLUMN in place (SQLite 3.35+): a batch rebuild of requests would drop the search
    # index's triggers with the old table.
    for table, column in (
        ("bins", "created_by"),
        ("bins", "last_capture_at"),
        ("bins", "max_bytes"),
        ("bins", "stored_bytes"),
        ("requests", "stored_bytes"),
    ):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
