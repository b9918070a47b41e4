"""Bookings and holds: the ledger of a resource's reserved time.

Owns the ``bookings`` table, where a hold is a row in status ``held`` with
an expiry. Writes happen inside ``ledger(resource)``: one write transaction
that holds the resource's lock (SQLite: the database write lock; PostgreSQL:
a transaction-level advisory lock), drops expired holds first, and lets the
database itself refuse an overlapping active row (exclusion constraint or
trigger) as the last line of defence. Booking rules are not checked here:
the booking service does that inside the ledger.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from calsync.errors import NotFoundError, SlotUnavailableError
from calsync.model import Attendee, Booking, BookingStatus, Hold, OutboxEvent, TimeSpan
from calsync.store.outbox import write_event
from calsync.store.schema import UTCDateTime, bookings

if TYPE_CHECKING:
    from calsync.store.core import Store

HELD = "held"
ACTIVE = (HELD, BookingStatus.PENDING.value, BookingStatus.CONFIRMED.value)
OVERLAP = "bookings_no_overlap"


@dataclass(frozen=True, slots=True)
class Reservation:
    """A new row: a hold (``expires_at`` set) or a booking (``attendee`` set)."""

    id: str
    resource: str
    span: TimeSpan
    block: TimeSpan  # the span widened by the resource's buffers
    status: str
    created_at: datetime
    expires_at: datetime | None = None
    call_id: str | None = None
    attendee: Attendee | None = None
    notes: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    request_hash: str | None = None


class BookingRepo:
    def __init__(self, store: Store) -> None:
        self._store = store

    def taken(self, resource: str, span: TimeSpan, now: datetime) -> list[TimeSpan]:
        """Raw spans of active bookings and unexpired holds of ``resource`` overlapping ``span``."""
        with self._store.read_one() as conn:
            return _taken(conn, resource, span, now, ignore=())

    @contextmanager
    def ledger(self, resource: str, now: datetime) -> Iterator[Ledger]:
        with self._store.write() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(select(func.pg_advisory_xact_lock(_lock_key(resource))))
            conn.execute(
                delete(bookings).where(
                    bookings.c.resource == resource,
                    bookings.c.status == HELD,
                    bookings.c.expires_at <= now,
                )
            )
            yield Ledger(conn, resource, now)

    def get(self, booking_id: str) -> Booking:
        with self._store.read() as conn:
            return _get(conn, booking_id)

    def by_key(self, key: str) -> tuple[Booking, str | None] | None:
        """The booking made with this idempotency key, and its request hash."""
        with self._store.read() as conn:
            return _by_key(conn, key)

    def find(
        self,
        *,
        resource: str | None = None,
        phone: str | None = None,
        span: TimeSpan | None = None,
        limit: int = 100,
    ) -> list[Booking]:
        query = select(bookings).where(bookings.c.status != HELD)
        if resource is not None:
            query = query.where(bookings.c.resource == resource)
        if phone is not None:
            query = query.where(bookings.c.attendee_phone == phone)
        if span is not None:
            query = query.where(bookings.c.start_at < span.end, bookings.c.end_at > span.start)
        query = query.order_by(bookings.c.start_at, bookings.c.id).limit(limit)
        with self._store.read() as conn:
            return [_to_booking(row) for row in conn.execute(query)]

    def update(
        self,
        booking_id: str,
        now: datetime,
        emit: Callable[[Booking], OutboxEvent] | None = None,
        **values: Any,
    ) -> Booking:
        """Change a booking; ``emit`` builds the outbox event written in the same transaction."""
        with self._store.write() as conn:
            _update(conn, booking_id, now, values)
            booking = _get(conn, booking_id)
            if emit is not None:
                write_event(conn, emit(booking))
            return booking

    def release_hold(self, hold_id: str) -> bool:
        """Delete a hold; False if there is no such (unexpired or expired) hold."""
        with self._store.write() as conn:
            done = conn.execute(
                delete(bookings).where(bookings.c.id == hold_id, bookings.c.status == HELD)
            )
            return done.rowcount > 0

    def release_call_holds(self, call_id: str) -> int:
        """Delete the holds of one call; how many there were."""
        with self._store.write() as conn:
            done = conn.execute(
                delete(bookings).where(bookings.c.call_id == call_id, bookings.c.status == HELD)
            )
            return done.rowcount

    def release(self, reservation_id: str) -> bool:
        """Delete a hold or a booking whose provider write failed; False if it was not there."""
        with self._store.write() as conn:
            done = conn.execute(delete(bookings).where(bookings.c.id == reservation_id))
            return done.rowcount > 0


class Ledger:
    """The write transaction of one resource, under its lock."""

    def __init__(self, conn: Connection, resource: str, now: datetime) -> None:
        self._conn = conn
        self.resource = resource
        self.now = now

    def taken(self, span: TimeSpan, *, ignore: Collection[str] = ()) -> list[TimeSpan]:
        return _taken(self._conn, self.resource, span, self.now, ignore=ignore)

    def by_key(self, key: str) -> tuple[Booking, str | None] | None:
        return _by_key(self._conn, key)

    def get(self, booking_id: str) -> Booking:
        return _get(self._conn, booking_id)

    def hold(self, hold_id: str) -> Hold | None:
        row = self._conn.execute(
            select(bookings).where(
                bookings.c.id == hold_id,
                bookings.c.resource == self.resource,
                bookings.c.status == HELD,
            )
        ).first()
        return _to_hold(row) if row is not None else None

    def holds_of_call(self, call_id: str) -> list[str]:
        query = select(bookings.c.id).where(
            bookings.c.resource == self.resource,
            bookings.c.status == HELD,
            bookings.c.call_id == call_id,
        )
        return list(self._conn.execute(query).scalars())

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self._conn.execute(delete(bookings).where(bookings.c.id.in_(ids)))

    def insert(self, new: Reservation) -> None:
        """Insert a row; an overlap with an active row is a SlotUnavailableError."""
        with _guarded(self._conn):
            self._conn.execute(insert(bookings).values(**_to_row(new)))

    def update(self, booking_id: str, **values: Any) -> None:
        with _guarded(self._conn):
            _update(self._conn, booking_id, self.now, values)

    def emit(self, event: OutboxEvent) -> None:
        """Announce a change of this transaction (it commits, or vanishes, with it)."""
        write_event(self._conn, event)


@contextmanager
def _guarded(conn: Connection) -> Iterator[None]:
    savepoint = conn.begin_nested()
    try:
        yield
    except IntegrityError as err:
        savepoint.rollback()
        if OVERLAP in str(err.orig):
            raise SlotUnavailableError("that time was just taken") from err
        raise
    else:
        savepoint.commit()


def _lock_key(resource: str) -> int:
    digest = hashlib.sha256(f"calsync.resource:{resource}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


_TAKEN = select(bookings.c.id, bookings.c.start_at, bookings.c.end_at).where(
    bookings.c.resource == bindparam("resource"),
    bookings.c.status.in_(ACTIVE),
    or_(
        bookings.c.expires_at.is_(None), bookings.c.expires_at > bindparam("now", type_=UTCDateTime)
    ),
    bookings.c.start_at < bindparam("span_end", type_=UTCDateTime),
    bookings.c.end_at > bindparam("span_start", type_=UTCDateTime),
)


def _taken(
    conn: Connection, resource: str, span: TimeSpan, now: datetime, ignore: Collection[str]
) -> list[TimeSpan]:
    params = {"resource": resource, "now": now, "span_start": span.start, "span_end": span.end}
    rows = conn.execute(_TAKEN, params)
    return sorted(TimeSpan(row.start_at, row.end_at) for row in rows if row.id not in ignore)


def _get(conn: Connection, booking_id: str) -> Booking:
    row = conn.execute(
        select(bookings).where(bookings.c.id == booking_id, bookings.c.status != HELD)
    ).first()
    if row is None:
        raise NotFoundError(f"no booking {booking_id!r}")
    return _to_booking(row)


def _by_key(conn: Connection, key: str) -> tuple[Booking, str | None] | None:
    row = conn.execute(select(bookings).where(bookings.c.idempotency_key == key)).first()
    return (_to_booking(row), row.request_hash) if row is not None else None


def _update(conn: Connection, booking_id: str, now: datetime, values: dict[str, Any]) -> None:
    if "span" in values:
        span = values.pop("span")
        values.update(start_at=span.start, end_at=span.end)
    if "block" in values:
        block = values.pop("block")
        values.update(block_start=block.start, block_end=block.end)
    done = conn.execute(
        update(bookings).where(bookings.c.id == booking_id).values(updated_at=now, **values)
    )
    if done.rowcount == 0:
        raise NotFoundError(f"no booking {booking_id!r}")


def _to_row(new: Reservation) -> dict[str, Any]:
    attendee = new.attendee or Attendee(name="")
    return {
        "id": new.id,
        "resource": new.resource,
        "start_at": new.span.start,
        "end_at": new.span.end,
        "block_start": new.block.start,
        "block_end": new.block.end,
        "status": new.status,
        "expires_at": new.expires_at,
        "call_id": new.call_id,
        "attendee_name": attendee.name or None,
        "attendee_phone": attendee.phone,
        "attendee_email": attendee.email,
        "notes": new.notes,
        "metadata": new.metadata,
        "provider": {},
        "idempotency_key": new.idempotency_key,
        "request_hash": new.request_hash,
        "created_at": new.created_at,
        "updated_at": new.created_at,
    }


def _to_booking(row: Any) -> Booking:
    return Booking(
        id=row.id,
        resource=row.resource,
        span=TimeSpan(row.start_at, row.end_at),
        status=BookingStatus(row.status),
        attendee=Attendee(row.attendee_name or "", row.attendee_phone, row.attendee_email),
        created_at=row.created_at,
        updated_at=row.updated_at,
        notes=row.notes,
        metadata=row.metadata or {},
        provider=row.provider or {},
        call_id=row.call_id,
        cancel_reason=row.cancel_reason,
    )


def _to_hold(row: Any) -> Hold:
    return Hold(
        row.id, row.resource, TimeSpan(row.start_at, row.end_at), row.expires_at, row.call_id
    )
