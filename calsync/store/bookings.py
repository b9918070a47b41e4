"""Bookings and holds as the availability engine sees them: time a resource has given away.

Owns the ``bookings`` and ``holds`` tables.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from calsync.model import BookingStatus, TimeSpan
from calsync.store.schema import bookings, holds

if TYPE_CHECKING:
    from calsync.store.core import Store

ACTIVE = (BookingStatus.PENDING.value, BookingStatus.CONFIRMED.value)


class BookingRepo:
    def __init__(self, store: Store) -> None:
        self._store = store

    def taken(self, resource: str, span: TimeSpan, now: datetime) -> list[TimeSpan]:
        """Raw spans of active bookings and unexpired holds of ``resource`` overlapping ``span``."""
        booked = select(bookings.c.start_at, bookings.c.end_at).where(
            bookings.c.resource == resource,
            bookings.c.status.in_(ACTIVE),
            bookings.c.start_at < span.end,
            bookings.c.end_at > span.start,
        )
        held = select(holds.c.start_at, holds.c.end_at).where(
            holds.c.resource == resource,
            holds.c.expires_at > now,
            holds.c.start_at < span.end,
            holds.c.end_at > span.start,
        )
        with self._store.read() as conn:
            rows = [*conn.execute(booked), *conn.execute(held)]
        return sorted(TimeSpan(row.start_at, row.end_at) for row in rows)
