"""Push channels (Google watch channels, Graph subscriptions) kept across restarts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

from calsync.store.schema import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "push_channels",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("calendar", sa.String(512), nullable=False),
        sa.Column("resource_id", sa.String(512), nullable=False),
        sa.Column("token", sa.String(128), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_push_channels"),
    )
    op.create_index("ix_push_channels_calendar", "push_channels", ["account", "calendar"])


def downgrade() -> None:
    op.drop_table("push_channels")
