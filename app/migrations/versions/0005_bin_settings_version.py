"""a version on each bin's settings, for the capture path's per-process cache

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

Every change to what the capture path reads of a bin raises ``settings_version``; a capture's
transaction returns it, so a process whose cached copy is older reads the bin again
(app/domain/settings.py).
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    # A plain ADD COLUMN on every engine: no table rebuild.
    op.add_column(
        "bins", sa.Column("settings_version", sa.Integer(), nullable=False, server_default="0")
    )


def downgrade():
    with op.batch_alter_table("bins", schema=None) as batch_op:
        batch_op.drop_column("settings_version")
