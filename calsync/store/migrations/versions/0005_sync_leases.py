"""Sync leases: which daemon instance syncs a calendar, until when, and pending requests.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

from calsync.store.schema import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sync_state") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(64)))
        batch.add_column(sa.Column("lease_until", UTCDateTime()))
        batch.add_column(sa.Column("requested_at", UTCDateTime()))


def downgrade() -> None:
    with op.batch_alter_table("sync_state") as batch:
        for column in ("requested_at", "lease_until", "lease_owner"):
            batch.drop_column(column)
