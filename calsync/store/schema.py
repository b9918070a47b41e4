"""The database schema (SQLAlchemy Core tables) and the UTC datetime column type.

Rows never leave ``calsync.store``: the repositories turn them into domain
types. Changes to these tables need an Alembic migration in
``migrations/versions`` (a test compares the migrated database to this).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime in, an aware UTC datetime out, on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


accounts = Table(
    "accounts",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("provider", String(16), nullable=False),
    Column("status", String(32), nullable=False, default="ok"),  # ok | reauth_required
    Column("detail", Text),
    Column("updated_at", UTCDateTime, nullable=False),
)

calendars = Table(
    "calendars",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account", String(64), nullable=False),
    Column("calendar", String(512), nullable=False),  # the provider's calendar id
    Column("name", String(512), nullable=False, default=""),
    Column("timezone", String(64)),
    UniqueConstraint("account", "calendar", name="uq_calendars_account_calendar"),
)

sync_state = Table(
    "sync_state",
    metadata,
    Column(
        "calendar_id", Integer, ForeignKey("calendars.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("cursor", Text),
    Column("window_start", UTCDateTime),
    Column("window_end", UTCDateTime),
    Column("last_attempt", UTCDateTime),
    Column("last_success", UTCDateTime),
    Column("last_error", Text),
    Column("failures", Integer, nullable=False, default=0),  # consecutive
    Column("lease_owner", String(64)),  # the daemon instance that syncs this calendar
    Column("lease_until", UTCDateTime),
    Column("requested_at", UTCDateTime),  # a push asked for a sync now (for the lease owner)
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "calendar_id",
        Integer,
        ForeignKey("calendars.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("provider_id", String(1024), nullable=False),
    Column("start_at", UTCDateTime, nullable=False),
    Column("end_at", UTCDateTime, nullable=False),
    Column("all_day", Boolean, nullable=False, default=False),
    Column("status", String(16), nullable=False),
    Column("transparency", String(16), nullable=False),
    Column("declined", Boolean, nullable=False, default=False),
    Column("etag", String(256)),
    Column("updated", UTCDateTime),
    UniqueConstraint("calendar_id", "provider_id", name="uq_events_calendar_provider_id"),
    Index("ix_events_calendar_time", "calendar_id", "start_at", "end_at"),
)

# One row per reservation of a resource's time: a hold (status "held", with
# expires_at) or a booking ("pending" while its provider write is under way,
# then "confirmed"; "cancelled" frees the time). block_start/block_end are the
# span widened by the resource's buffers; no two active rows of a resource may
# overlap there. PostgreSQL enforces that with an exclusion constraint, SQLite
# with triggers (both created by migration 0002, not declared here).
bookings = Table(
    "bookings",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("resource", String(64), nullable=False),
    Column("start_at", UTCDateTime, nullable=False),
    Column("end_at", UTCDateTime, nullable=False),
    Column("block_start", UTCDateTime, nullable=False),
    Column("block_end", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False),  # held | pending | confirmed | cancelled
    Column("expires_at", UTCDateTime),  # holds only
    Column("call_id", String(255)),
    Column("attendee_name", String(256)),
    Column("attendee_phone", String(32)),
    Column("attendee_email", String(320)),
    Column("notes", Text),
    Column("metadata", JSON, nullable=False, default=dict),
    Column("provider", JSON, nullable=False, default=dict),
    Column("idempotency_key", String(255), unique=True),
    Column("request_hash", String(64)),
    Column("cancel_reason", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_bookings_resource_time", "resource", "start_at"),
    Index("ix_bookings_attendee_phone", "attendee_phone"),
    Index("ix_bookings_call_id", "call_id"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("prefix", String(16), nullable=False, unique=True),
    Column("secret_hash", String(128), nullable=False),
    Column("scope", String(8), nullable=False),  # read | write | admin
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("type", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_outbox_created_at", "created_at"),
)

push_channels = Table(
    "push_channels",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("account", String(64), nullable=False),
    Column("calendar", String(512), nullable=False),
    Column("resource_id", String(512), nullable=False),
    Column("token", String(128), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_push_channels_calendar", "account", "calendar"),
)

# One row per (event, endpoint): the delivery state machine of the outbox.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(36), ForeignKey("outbox.id", ondelete="CASCADE"), nullable=False),
    Column("endpoint", String(2048), nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("locked_until", UTCDateTime),  # claimed by a dispatcher until then
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("delivered_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("event_id", "endpoint", name="uq_deliveries_event_endpoint"),
    Index("ix_deliveries_due", "status", "next_attempt_at"),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("url", String(2048), primary_key=True),
    Column("failing_since", UTCDateTime),
    Column("last_success", UTCDateTime),
    Column("last_error", Text),
    Column("disabled_at", UTCDateTime),
    Column("disabled_reason", Text),
)
