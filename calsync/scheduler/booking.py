"""The booking service: holds, bookings, cancellations and reschedules that never double-book.

Every write re-checks all of the resource's rules (working hours, notice,
horizon, buffers, daily cap) inside the resource's ledger transaction, so
the check and the reservation cannot be separated by another caller. A
booking into a provider calendar is reserved first (pending), then written
with the provider, then confirmed; a failed write releases the slot.
Requests carry an idempotency key: the same key and body give the same
booking, the same key with another body is refused.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from calsync.clock import Clock
from calsync.errors import (
    CalsyncError,
    ConflictError,
    IdempotencyMismatchError,
    InputError,
    NotFoundError,
    SlotUnavailableError,
)
from calsync.model import (
    Attendee,
    Booking,
    BookingStatus,
    Hold,
    OutboxEvent,
    Resource,
    TimeSpan,
)
from calsync.providers.base import BookingDraft, BookingWriter
from calsync.scheduler.announce import CANCELLED, CREATED, RESCHEDULED, Announcer
from calsync.scheduler.availability import Availability
from calsync.scheduler.contacts import normalize_attendee
from calsync.scheduler.slots import slot_problems
from calsync.store import Store
from calsync.store.bookings import HELD, Ledger, Reservation

MAX_KEY_LENGTH = 255
ALTERNATIVES = 3
ALTERNATIVES_REACH = (timedelta(hours=6), timedelta(days=1), timedelta(days=7))


@dataclass(frozen=True, slots=True)
class BookingRequest:
    resource: str
    start: datetime
    attendee: Attendee
    duration: timedelta | None = None
    hold_id: str | None = None
    call_id: str | None = None
    notes: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


class BookingService:
    def __init__(
        self,
        store: Store,
        availability: Availability,
        clock: Clock,
        *,
        hold_ttl: timedelta,
        writers: Mapping[str, BookingWriter] | None = None,
        announcer: Announcer | None = None,
    ) -> None:
        self._announcer = announcer
        self._store = store
        self._availability = availability
        self._clock = clock
        self._hold_ttl = hold_ttl
        self._writers = writers or {}

    def use_writers(self, writers: Mapping[str, BookingWriter]) -> None:
        """Write through other providers from now on (a config reload)."""
        self._writers = writers

    # --- holds ------------------------------------------------------------------------

    def hold(
        self,
        resource_id: str,
        start: datetime,
        duration: timedelta | None = None,
        call_id: str | None = None,
    ) -> Hold:
        """Reserve a slot for ``hold_ttl``; it blocks everyone else's slots and bookings.

        A call holds one time at a time: its new hold replaces its earlier ones,
        and holding the time it already holds (a retry) returns that hold.
        """
        resource = self._availability.resource(resource_id)
        span = _span(resource, start, duration)
        now = self._clock.now()
        hold_id = str(uuid.uuid4())
        expires = now + self._hold_ttl
        busy = self._busy(resource, span)
        with self._reserving(resource, span, now) as ledger:
            earlier = ledger.holds_of_call(call_id) if call_id else []
            for held in filter(None, map(ledger.hold, earlier)):
                if held.span == span and held.expires_at > now:
                    return held
            ledger.delete(earlier)
            self._check(resource, span, ledger, busy, ignore=())
            ledger.insert(
                Reservation(
                    hold_id, resource.id, span, _block(resource, span), HELD, now,
                    expires_at=expires, call_id=call_id,
                )
            )  # fmt: skip
        return Hold(hold_id, resource.id, span, expires, call_id)

    def release(self, hold_id: str) -> None:
        if not self._store.bookings.release_hold(hold_id):
            raise NotFoundError(f"no hold {hold_id!r} (it may have expired)")

    def release_call(self, call_id: str) -> int:
        """Release every hold of a call (it ended); how many there were."""
        return self._store.bookings.release_call_holds(call_id)

    # --- bookings ---------------------------------------------------------------------

    def book(self, request: BookingRequest, key: str) -> tuple[Booking, bool]:
        """The booking for ``key`` (made now, or earlier) and whether it was made now."""
        _check_key(key)
        resource = self._availability.resource(request.resource)
        attendee = normalize_attendee(request.attendee, resource)
        span = _span(resource, request.start, request.duration)
        digest = _digest(request, attendee, span)
        replay = self._replay(key, digest)
        if replay is not None:
            return replay, False
        now = self._clock.now()
        writer = self._writer(resource)
        status = BookingStatus.PENDING if writer else BookingStatus.CONFIRMED
        new = Reservation(
            str(uuid.uuid4()), resource.id, span, _block(resource, span), status.value, now,
            call_id=request.call_id, attendee=attendee, notes=request.notes,
            metadata=dict(request.metadata), idempotency_key=key, request_hash=digest,
        )  # fmt: skip
        busy = self._busy(resource, span)
        with self._reserving(resource, span, now) as ledger:
            again = ledger.by_key(key)
            if again is not None:
                return _same_request(again, digest), False
            ledger.delete(self._freed_holds(ledger, request, span))
            self._check(resource, span, ledger, busy, ignore=())
            ledger.insert(new)
            if writer is None:
                booking = ledger.get(new.id)
                self._emit(ledger, CREATED, booking)
        if writer is None:
            return booking, True
        return self._write(resource, writer, new), True

    def cancel(self, booking_id: str, reason: str | None = None) -> Booking:
        """Cancel (idempotent: cancelling a cancelled booking returns it unchanged)."""
        booking = self._store.bookings.get(booking_id)
        if booking.status is BookingStatus.CANCELLED:
            return booking
        resource = self._availability.resource(booking.resource)
        writer = self._writer(resource)
        if writer is not None and resource.book_into is not None and booking.provider:
            writer.cancel(resource.book_into.calendar, booking.provider)
        return self._store.bookings.update(
            booking_id, self._clock.now(), self._announce(CANCELLED),
            status=BookingStatus.CANCELLED.value, cancel_reason=reason,
        )  # fmt: skip

    def reschedule(self, booking_id: str, start: datetime) -> Booking:
        """Move a booking, keeping its id and length; every rule is re-checked."""
        booking = self._store.bookings.get(booking_id)
        if booking.status is BookingStatus.CANCELLED:
            raise ConflictError(f"booking {booking_id} is cancelled; make a new booking instead")
        resource = self._availability.resource(booking.resource)
        span = _span(resource, start, booking.span.duration)
        now = self._clock.now()
        busy = self._busy(resource, span)
        writer = self._writer(resource)
        local = writer is None or resource.book_into is None or not booking.provider
        with self._reserving(resource, span, now) as ledger:
            self._check(resource, span, ledger, busy, ignore=(booking_id,))
            ledger.update(booking_id, span=span, block=_block(resource, span))
            if local:
                self._emit(ledger, RESCHEDULED, ledger.get(booking_id), booking.span)
        if local:
            return self._store.bookings.get(booking_id)
        assert writer is not None
        assert resource.book_into is not None
        draft = _draft(resource, booking.id, span, booking.attendee, booking.notes)
        try:
            refs = writer.reschedule(resource.book_into.calendar, booking.provider, draft)
        except CalsyncError:  # the provider kept the old time: so does calsync
            old = booking.span
            self._store.bookings.update(booking_id, now, span=old, block=_block(resource, old))
            raise
        return self._store.bookings.update(
            booking_id, now, self._announce(RESCHEDULED, booking.span), provider=dict(refs)
        )

    def get(self, booking_id: str) -> Booking:
        return self._store.bookings.get(booking_id)

    def find(
        self,
        *,
        resource: str | None = None,
        phone: str | None = None,
        span: TimeSpan | None = None,
        limit: int = 100,
    ) -> list[Booking]:
        if resource is not None:
            res = self._availability.resource(resource)
            if phone is not None:
                phone = normalize_attendee(Attendee("-", phone), res).phone
        return self._store.bookings.find(resource=resource, phone=phone, span=span, limit=limit)

    # --- the steps ----------------------------------------------------------------------

    def _replay(self, key: str, digest: str) -> Booking | None:
        found = self._store.bookings.by_key(key)
        return _same_request(found, digest) if found is not None else None

    @contextmanager
    def _reserving(self, resource: Resource, span: TimeSpan, now: datetime) -> Iterator[Ledger]:
        """The resource's ledger; a refusal inside it leaves with alternatives attached."""
        try:
            with self._store.bookings.ledger(resource.id, now) as ledger:
                yield ledger
        except SlotUnavailableError as err:
            if err.alternatives:
                raise
            others = tuple(self.alternatives(resource.id, span))
            raise SlotUnavailableError(err.message, others, resource.id) from err

    def _busy(self, resource: Resource, span: TimeSpan) -> list[TimeSpan]:
        """External busy time around ``span``, read before the ledger is locked: the
        lock holder must not need a second database connection."""
        return self._availability.busy(resource, self._availability.context(resource, span))

    def _check(
        self,
        resource: Resource,
        span: TimeSpan,
        ledger: Ledger,
        busy: list[TimeSpan],
        ignore: tuple[str, ...],
    ) -> None:
        context = self._availability.context(resource, span)
        problems = slot_problems(
            resource.rules,
            span,
            now=ledger.now,
            busy=busy,
            taken=ledger.taken(context, ignore=ignore),
        )
        if problems:
            raise SlotUnavailableError(
                f"{resource.name} is not available then: {'; '.join(problems)}"
            )

    def _freed_holds(self, ledger: Ledger, request: BookingRequest, span: TimeSpan) -> list[str]:
        """Holds this booking replaces: its own hold, and the caller's other holds."""
        freed = ledger.holds_of_call(request.call_id) if request.call_id else []
        if request.hold_id is not None:
            hold = ledger.hold(request.hold_id)
            if hold is not None and hold.id not in freed:
                freed.append(hold.id)
        return freed

    def _writer(self, resource: Resource) -> BookingWriter | None:
        if resource.book_into is None:
            return None
        return self._writers.get(resource.book_into.account)

    def _write(self, resource: Resource, writer: BookingWriter, new: Reservation) -> Booking:
        assert resource.book_into is not None
        assert new.attendee is not None
        calendar = resource.book_into.calendar
        draft = _draft(resource, new.id, new.span, new.attendee, new.notes)
        try:
            if resource.verify_live:
                _verify_live(resource, writer, calendar, new)
            refs = writer.book(calendar, draft, new.idempotency_key or new.id)
        except CalsyncError:
            self._store.bookings.release(new.id)
            raise
        return self._store.bookings.update(
            new.id, self._clock.now(), self._announce(CREATED),
            status=BookingStatus.CONFIRMED.value, provider=dict(refs),
        )  # fmt: skip

    def _announce(
        self, kind: str, previous: TimeSpan | None = None
    ) -> Callable[[Booking], OutboxEvent] | None:
        """The event builder for a change, or None when nobody listens."""
        announcer = self._announcer
        if announcer is None:
            return None
        return lambda booking: announcer.booking(kind, booking, previous)

    def _emit(
        self, ledger: Ledger, kind: str, booking: Booking, previous: TimeSpan | None = None
    ) -> None:
        if self._announcer is not None:
            ledger.emit(self._announcer.booking(kind, booking, previous))

    def alternatives(self, resource_id: str, span: TimeSpan) -> list[TimeSpan]:
        """Up to three free slots of the same length near ``span``, in time order.

        Looks within a day of the requested time first, and further only if that
        finds fewer than three.
        """
        now = self._clock.now()
        found: list[TimeSpan] = []
        for reach in ALTERNATIVES_REACH:
            first, last = max(now, span.start - reach), span.start + reach
            if last <= first:
                continue
            around = TimeSpan(first, last)
            found = self._availability.slots(resource_id, around, duration=span.duration).slots
            if len(found) >= ALTERNATIVES:
                break
        nearest = sorted(found, key=lambda s: abs(s.start - span.start))[:ALTERNATIVES]
        return sorted(nearest)


def _verify_live(
    resource: Resource, writer: BookingWriter, calendar: str, new: Reservation
) -> None:
    """Ask the provider itself whether the time is still free (the cache may lag)."""
    busy = writer.free_busy([calendar], new.block)
    if any(span.overlaps(new.block) for span in busy):
        raise SlotUnavailableError(
            f"{resource.name}'s calendar shows this time as busy (checked live just now)",
            resource=resource.id,
        )


def _span(resource: Resource, start: datetime, duration: timedelta | None) -> TimeSpan:
    length = duration if duration is not None else resource.rules.duration
    if length <= timedelta(0):
        raise InputError("duration must be a positive number of minutes")
    return TimeSpan(start, start + length)


def _block(resource: Resource, span: TimeSpan) -> TimeSpan:
    return span.widen(resource.rules.buffer_before, resource.rules.buffer_after)


def _draft(
    resource: Resource, booking_id: str, span: TimeSpan, attendee: Attendee, notes: str | None
) -> BookingDraft:
    return BookingDraft(booking_id, resource.name, resource.timezone.key, span, attendee, notes)


def _check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InputError(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters, "
            "unique per booking attempt (e.g. a UUID)"
        )


def _digest(request: BookingRequest, attendee: Attendee, span: TimeSpan) -> str:
    canonical = {
        "resource": request.resource,
        "start": span.start.isoformat(),
        "end": span.end.isoformat(),
        "attendee": [attendee.name, attendee.phone, attendee.email],
        "hold_id": request.hold_id,
        "call_id": request.call_id,
        "notes": request.notes,
        "metadata": request.metadata,
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _same_request(found: tuple[Booking, str | None], digest: str) -> Booking:
    booking, previous = found
    if previous != digest:
        raise IdempotencyMismatchError(
            "this Idempotency-Key was already used for a different booking request; "
            "use a new key for a new request"
        )
    return booking
