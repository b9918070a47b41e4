"""Holds become bookings rows in status "held"; no two active rows of a resource overlap.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

from calsync.store.schema import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ACTIVE = "('held', 'pending', 'confirmed')"
SQLITE_GUARD = """
CREATE TRIGGER bookings_no_overlap_{event} BEFORE {event_sql} ON bookings
WHEN NEW.status IN {active} AND EXISTS (
    SELECT 1 FROM bookings AS other
    WHERE other.resource = NEW.resource AND other.id != NEW.id
      AND other.status IN {active}
      AND other.block_start < NEW.block_end AND NEW.block_start < other.block_end
)
BEGIN SELECT RAISE(ABORT, 'bookings_no_overlap'); END
"""


def upgrade() -> None:
    op.drop_table("holds")
    with op.batch_alter_table("bookings") as batch:
        batch.add_column(sa.Column("block_start", UTCDateTime()))
        batch.add_column(sa.Column("block_end", UTCDateTime()))
        batch.add_column(sa.Column("expires_at", UTCDateTime()))
        batch.add_column(sa.Column("call_id", sa.String(255)))
        batch.add_column(sa.Column("cancel_reason", sa.Text()))
        batch.alter_column("attendee_name", existing_type=sa.String(256), nullable=True)
    op.execute("UPDATE bookings SET block_start = start_at, block_end = end_at")
    with op.batch_alter_table("bookings") as batch:
        batch.alter_column("block_start", existing_type=UTCDateTime(), nullable=False)
        batch.alter_column("block_end", existing_type=UTCDateTime(), nullable=False)
        batch.create_index("ix_bookings_call_id", ["call_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        op.execute(
            "ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap EXCLUDE USING gist "
            "(resource WITH =, tstzrange(block_start, block_end) WITH &&) "
            f"WHERE (status IN {ACTIVE})"
        )
    else:
        for event, event_sql in (
            ("insert", "INSERT"),
            ("update", "UPDATE OF resource, block_start, block_end, status"),
        ):
            op.execute(SQLITE_GUARD.format(event=event, event_sql=event_sql, active=ACTIVE))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE bookings DROP CONSTRAINT bookings_no_overlap")
    else:
        op.execute("DROP TRIGGER bookings_no_overlap_insert")
        op.execute("DROP TRIGGER bookings_no_overlap_update")
    with op.batch_alter_table("bookings") as batch:
        batch.drop_index("ix_bookings_call_id")
        for column in ("cancel_reason", "call_id", "expires_at", "block_end", "block_start"):
            batch.drop_column(column)
    op.create_table(
        "holds",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("resource", sa.String(64), nullable=False),
        sa.Column("start_at", UTCDateTime(), nullable=False),
        sa.Column("end_at", UTCDateTime(), nullable=False),
        sa.Column("call_id", sa.String(255)),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_holds"),
    )
    op.create_index("ix_holds_resource_time", "holds", ["resource", "start_at"])
