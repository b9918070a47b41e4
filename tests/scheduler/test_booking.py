"""The booking service: every rule re-checked on write, idempotency, holds, provider writes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from calsync.clock import FrozenClock
from calsync.errors import (
    ConflictError,
    IdempotencyMismatchError,
    InputError,
    NotFoundError,
    ProviderUnavailableError,
    SlotUnavailableError,
)
from calsync.model import (
    Attendee,
    BookingStatus,
    CalendarRef,
    Event,
    Resource,
    Rules,
    TimeSpan,
    WallRange,
)
from calsync.providers.base import BookingDraft, ChangeBatch
from calsync.scheduler.availability import Availability
from calsync.scheduler.booking import BookingRequest, BookingService
from calsync.store import Store

VIENNA = ZoneInfo("Europe/Vienna")
NOW = datetime(2026, 12, 7, 7, 0, tzinfo=VIENNA)  # Monday 07:00
ANN = Attendee("Ann Example", "0664 1234567")
CAL = CalendarRef("cal", "primary")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=VIENNA)


def resource(**changes: Any) -> Resource:
    rules: dict[str, Any] = {
        "timezone": VIENNA,
        "weekly": ((WallRange(9 * 60, 12 * 60),),) * 5 + ((), ()),
        "duration": timedelta(minutes=30),
        "step": timedelta(minutes=30),
        "buffer_after": timedelta(minutes=10),
        "min_notice": timedelta(hours=1),
        "max_days_ahead": 14,
        "max_per_day": 3,
    }
    rules.update(changes.pop("rules", {}))
    values: dict[str, Any] = {
        "id": "dr",
        "name": "Dr. Test",
        "language": "de",
        "check": (CAL,),
        "book_into": None,
        "rules": Rules(**rules),
    }
    values.update(changes)
    return Resource(**values)


class FakeWriter:
    def __init__(self) -> None:
        self.written: dict[str, BookingDraft] = {}
        self.cancelled: list[str] = []
        self.fail: Exception | None = None
        self.live_busy: list[TimeSpan] = []
        self.live_checks = 0

    def book(self, calendar: str, draft: BookingDraft, idempotency_key: str) -> Mapping[str, Any]:
        if self.fail is not None:
            raise self.fail
        self.written[draft.booking_id] = draft
        return {"event_id": f"ev-{draft.booking_id[:8]}", "calendar": calendar}

    def cancel(self, calendar: str, refs: Mapping[str, Any]) -> None:
        self.cancelled.append(refs["event_id"])

    def reschedule(
        self, calendar: str, refs: Mapping[str, Any], draft: BookingDraft
    ) -> Mapping[str, Any]:
        if self.fail is not None:
            raise self.fail
        self.written[draft.booking_id] = draft
        return refs

    def free_busy(self, calendars: list[str], span: TimeSpan) -> list[TimeSpan]:
        self.live_checks += 1
        return [s for s in self.live_busy if s.overlaps(span)]


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def writer() -> FakeWriter:
    return FakeWriter()


@pytest.fixture
def service(db_url: str, clock: FrozenClock, writer: FakeWriter) -> Iterator[BookingService]:
    store = Store.open(db_url)
    store.upgrade()
    store.calendars.ensure(CAL)
    busy = Event("meeting", TimeSpan(at(8, 10), at(8, 11)))
    window = TimeSpan(at(1, 0), at(31, 0))
    store.events.apply(CAL, ChangeBatch((busy,), (), "c", full=True), window, clock.now())
    provider_backed = resource(
        id="gp",
        book_into=CalendarRef("office", "primary"),
        rules={"max_per_day": None},
        verify_live=True,
    )
    resources = {"dr": resource(), "gp": provider_backed}
    availability = Availability(store, resources, clock, sync_interval=timedelta(minutes=5))
    yield BookingService(
        store, availability, clock, hold_ttl=timedelta(minutes=5), writers={"office": writer}
    )
    store.close()


def request(start: datetime, **kw: Any) -> BookingRequest:
    return BookingRequest(resource=kw.pop("resource", "dr"), start=start, attendee=ANN, **kw)


def test_a_booking_is_confirmed_with_a_normalised_phone(service: BookingService) -> None:
    booking, created = service.book(request(at(7, 9)), "k1")
    assert created
    assert booking.status is BookingStatus.CONFIRMED
    assert booking.span == TimeSpan(at(7, 9), at(7, 9, 30))
    assert booking.attendee.phone == "+436641234567"
    assert service.get(booking.id) == booking


def test_the_same_key_and_body_give_the_same_booking(service: BookingService) -> None:
    first, _ = service.book(request(at(7, 9)), "k1")
    again, created = service.book(request(at(7, 9)), "k1")
    assert (again.id, created) == (first.id, False)
    with pytest.raises(IdempotencyMismatchError):
        service.book(request(at(7, 10)), "k1")
    assert len(service.find(resource="dr")) == 1


@pytest.mark.parametrize(
    ("start", "reason"),
    [
        (at(7, 7), "outside working hours"),
        (at(7, 9, 15), "not on the 30-minute grid"),
        (at(7, 7, 30), "outside working hours"),
        (at(5, 9), "outside working hours"),  # Saturday
        (at(22, 9), "more than 14 days ahead"),
        (at(8, 10), "overlaps busy time"),
        (at(8, 9, 30), "too close to busy time"),  # 09:30-10:00 is fine, but not with 10 min after
    ],
)
def test_every_rule_is_checked_on_the_booking_path(
    service: BookingService, start: datetime, reason: str
) -> None:
    with pytest.raises(SlotUnavailableError) as caught:
        service.book(request(start), "k")
    assert reason in caught.value.message


def test_minimum_notice_is_checked(service: BookingService, clock: FrozenClock) -> None:
    clock.set(at(7, 8, 30))
    with pytest.raises(SlotUnavailableError, match="minimum notice"):
        service.book(request(at(7, 9)), "k")


def test_buffers_between_bookings_and_alternatives(service: BookingService) -> None:
    service.book(request(at(7, 10)), "k1")
    with pytest.raises(SlotUnavailableError) as caught:
        service.book(request(at(7, 9, 30)), "k2")  # ends 10:00 + 10 min buffer overlaps 10:00
    alternatives = caught.value.alternatives
    assert 0 < len(alternatives) <= 3
    assert all(isinstance(a, TimeSpan) for a in alternatives)
    starts = [a.start for a in alternatives]  # type: ignore[attr-defined]
    assert starts == sorted(starts)
    assert at(7, 9) in starts  # the nearest free slot


def test_the_daily_cap_is_checked(service: BookingService) -> None:
    for i, hour in enumerate((9, 10, 11)):
        service.book(request(at(9, hour)), f"k{i}")
    with pytest.raises(SlotUnavailableError, match="daily limit"):
        service.book(request(at(9, 11, 30)), "k4")


def test_a_hold_blocks_others_until_it_expires(service: BookingService, clock: FrozenClock) -> None:
    hold = service.hold("dr", at(7, 9), call_id="call-1")
    assert hold.expires_at == clock.now() + timedelta(minutes=5)
    with pytest.raises(SlotUnavailableError):
        service.book(request(at(7, 9)), "k-other")
    clock.advance(timedelta(minutes=5))
    booking, _ = service.book(request(at(7, 9)), "k-other")
    assert booking.status is BookingStatus.CONFIRMED


def test_booking_with_its_hold_converts_it(service: BookingService) -> None:
    hold = service.hold("dr", at(7, 9), call_id="call-1")
    booking, _ = service.book(request(at(7, 9), hold_id=hold.id, call_id="call-1"), "k")
    assert booking.span == hold.span
    with pytest.raises(NotFoundError):
        service.release(hold.id)  # the hold is gone


def test_a_calls_other_holds_are_released_by_its_booking(service: BookingService) -> None:
    service.hold("dr", at(7, 9), call_id="call-1")
    service.hold("dr", at(7, 10), call_id="call-1")
    service.book(request(at(7, 10), call_id="call-1"), "k")
    service.book(request(at(7, 9)), "k2")  # 09:00 is free again


def test_holds_obey_the_rules_and_can_be_released(service: BookingService) -> None:
    with pytest.raises(SlotUnavailableError):
        service.hold("dr", at(7, 7))
    hold = service.hold("dr", at(7, 9))
    service.release(hold.id)
    with pytest.raises(NotFoundError):
        service.release(hold.id)


def test_cancel_is_idempotent_and_frees_the_time(service: BookingService) -> None:
    booking, _ = service.book(request(at(7, 9)), "k1")
    cancelled = service.cancel(booking.id, "caller cancelled")
    assert cancelled.status is BookingStatus.CANCELLED
    assert cancelled.cancel_reason == "caller cancelled"
    assert service.cancel(booking.id).status is BookingStatus.CANCELLED
    service.book(request(at(7, 9)), "k2")


def test_reschedule_keeps_the_id_and_checks_the_rules(service: BookingService) -> None:
    booking, _ = service.book(request(at(7, 9)), "k1")
    moved = service.reschedule(booking.id, at(7, 11))
    assert (moved.id, moved.span.start) == (booking.id, at(7, 11))
    service.book(request(at(7, 9)), "k2")  # the old time is free
    with pytest.raises(SlotUnavailableError):
        service.reschedule(booking.id, at(7, 9))
    moved_nearby = service.reschedule(booking.id, at(7, 11, 30))  # overlaps only itself
    assert moved_nearby.span.start == at(7, 11, 30)
    service.cancel(booking.id)
    with pytest.raises(ConflictError, match="cancelled"):
        service.reschedule(booking.id, at(7, 11))


def test_find_by_phone_in_any_format(service: BookingService) -> None:
    service.book(request(at(7, 9)), "k1")
    assert len(service.find(resource="dr", phone="+43 664 1234567")) == 1
    assert service.find(resource="dr", phone="+43 664 7654321") == []


@pytest.mark.parametrize(
    ("attendee", "message"),
    [
        (Attendee(""), "attendee.name"),
        (Attendee("Ann", "12"), "attendee.phone: '12' is not a valid phone number for AT"),
        (Attendee("Ann", email="not-an-email"), "attendee.email"),
    ],
)
def test_bad_attendees_are_refused(
    service: BookingService, attendee: Attendee, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        service.book(BookingRequest("dr", at(7, 9), attendee), "k")


def test_bad_idempotency_keys_are_refused(service: BookingService) -> None:
    with pytest.raises(InputError, match="Idempotency-Key"):
        service.book(request(at(7, 9)), "")


def test_provider_backed_booking_is_written_then_confirmed(
    service: BookingService, writer: FakeWriter
) -> None:
    booking, _ = service.book(request(at(7, 9), resource="gp"), "k1")
    assert booking.status is BookingStatus.CONFIRMED
    assert booking.provider["event_id"] == f"ev-{booking.id[:8]}"
    assert writer.written[booking.id].span == booking.span
    service.cancel(booking.id)
    assert writer.cancelled == [booking.provider["event_id"]]


def test_a_failed_provider_write_releases_the_slot(
    service: BookingService, writer: FakeWriter
) -> None:
    writer.fail = ProviderUnavailableError("calendar API down")
    with pytest.raises(ProviderUnavailableError):
        service.book(request(at(7, 9), resource="gp"), "k1")
    assert service.find(resource="gp") == []
    writer.fail = None
    booking, created = service.book(request(at(7, 9), resource="gp"), "k1")  # retry works
    assert created
    assert booking.status is BookingStatus.CONFIRMED


def test_unknown_resource_and_booking(service: BookingService) -> None:
    with pytest.raises(NotFoundError, match="unknown resource 'nope'"):
        service.book(request(at(7, 9), resource="nope"), "k")
    with pytest.raises(NotFoundError):
        service.get("missing")


def test_times_are_compared_as_instants(service: BookingService) -> None:
    start = at(7, 9).astimezone(UTC)
    booking, _ = service.book(request(start), "k")
    assert booking.span.start == at(7, 9)


def test_verify_live_asks_the_provider_before_writing(
    service: BookingService, writer: FakeWriter
) -> None:
    writer.live_busy = [TimeSpan(at(7, 9, 15), at(7, 9, 45))]  # not in the cache yet
    with pytest.raises(SlotUnavailableError, match="checked live"):
        service.book(request(at(7, 9), resource="gp"), "k1")
    assert writer.written == {}
    assert service.find(resource="gp") == []  # the reservation was released
    booking, _ = service.book(request(at(7, 10), resource="gp"), "k2")
    assert booking.status is BookingStatus.CONFIRMED
    assert writer.live_checks == 2


def test_a_reschedule_the_provider_refuses_keeps_the_old_time(
    service: BookingService, writer: FakeWriter
) -> None:
    booking, _ = service.book(request(at(7, 9), resource="gp"), "k1")
    writer.fail = ProviderUnavailableError("calendar API down")
    with pytest.raises(ProviderUnavailableError):
        service.reschedule(booking.id, at(7, 11))
    assert service.get(booking.id).span == booking.span
    writer.fail = None
    service.book(request(at(7, 11), resource="gp"), "k2")  # 11:00 was never taken
