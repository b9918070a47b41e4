"""Initial schema: accounts, calendars, sync state, events, bookings, holds, api keys, outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

from calsync.store.schema import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text()),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_accounts"),
    )
    op.create_table(
        "calendars",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("calendar", sa.String(512), nullable=False),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("timezone", sa.String(64)),
        sa.PrimaryKeyConstraint("id", name="pk_calendars"),
        sa.UniqueConstraint("account", "calendar", name="uq_calendars_account_calendar"),
    )
    op.create_table(
        "sync_state",
        sa.Column("calendar_id", sa.Integer(), nullable=False),
        sa.Column("cursor", sa.Text()),
        sa.Column("window_start", UTCDateTime()),
        sa.Column("window_end", UTCDateTime()),
        sa.Column("last_attempt", UTCDateTime()),
        sa.Column("last_success", UTCDateTime()),
        sa.Column("last_error", sa.Text()),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["calendars.id"],
            name="fk_sync_state_calendar_id_calendars",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("calendar_id", name="pk_sync_state"),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("calendar_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.String(1024), nullable=False),
        sa.Column("start_at", UTCDateTime(), nullable=False),
        sa.Column("end_at", UTCDateTime(), nullable=False),
        sa.Column("all_day", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("transparency", sa.String(16), nullable=False),
        sa.Column("declined", sa.Boolean(), nullable=False),
        sa.Column("etag", sa.String(256)),
        sa.Column("updated", UTCDateTime()),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["calendars.id"],
            name="fk_events_calendar_id_calendars",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.UniqueConstraint("calendar_id", "provider_id", name="uq_events_calendar_provider_id"),
    )
    op.create_index("ix_events_calendar_time", "events", ["calendar_id", "start_at", "end_at"])
    op.create_table(
        "bookings",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("resource", sa.String(64), nullable=False),
        sa.Column("start_at", UTCDateTime(), nullable=False),
        sa.Column("end_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attendee_name", sa.String(256), nullable=False),
        sa.Column("attendee_phone", sa.String(32)),
        sa.Column("attendee_email", sa.String(320)),
        sa.Column("notes", sa.Text()),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("provider", sa.JSON(), nullable=False),
        sa.Column("idempotency_key", sa.String(255)),
        sa.Column("request_hash", sa.String(64)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bookings"),
        sa.UniqueConstraint("idempotency_key", name="uq_bookings_idempotency_key"),
    )
    op.create_index("ix_bookings_resource_time", "bookings", ["resource", "start_at"])
    op.create_index("ix_bookings_attendee_phone", "bookings", ["attendee_phone"])
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
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("secret_hash", sa.String(128), nullable=False),
        sa.Column("scope", sa.String(8), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime()),
        sa.Column("revoked_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("prefix", name="uq_api_keys_prefix"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
    )
    op.create_index("ix_outbox_created_at", "outbox", ["created_at"])


def downgrade() -> None:
    for table in ("outbox", "api_keys", "holds", "bookings", "events", "sync_state"):
        op.drop_table(table)
    op.drop_table("calendars")
    op.drop_table("accounts")
