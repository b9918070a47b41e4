"""The bookings ledger on SQLite and PostgreSQL: the database itself refuses overlaps."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from calsync.errors import NotFoundError, SlotUnavailableError
from calsync.model import Attendee, BookingStatus, TimeSpan
from calsync.store import Store
from calsync.store.bookings import HELD, Reservation
from calsync.store.schema import bookings

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
TEN = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
BUFFER = timedelta(minutes=10)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    store = Store.open(db_url)
    store.upgrade()
    yield store
    store.close()


def reservation(start: datetime, *, status: str = "confirmed", **kw: object) -> Reservation:
    span = TimeSpan(start, start + timedelta(minutes=30))
    values: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "resource": "dr",
        "span": span,
        "block": span.widen(timedelta(0), BUFFER),
        "status": status,
        "created_at": NOW,
        "attendee": Attendee("Ann", "+436641234567"),
    }
    values.update(kw)
    return Reservation(**values)  # type: ignore[arg-type]


def add(store: Store, new: Reservation, now: datetime = NOW) -> None:
    with store.bookings.ledger(new.resource, now) as ledger:
        ledger.insert(new)


def test_overlapping_blocks_are_refused_by_the_database(store: Store) -> None:
    add(store, reservation(TEN))
    with pytest.raises(SlotUnavailableError):
        add(store, reservation(TEN + timedelta(minutes=35)))  # inside the 10-minute buffer
    add(store, reservation(TEN + timedelta(minutes=40)))  # touching the buffer is fine
    add(store, reservation(TEN, resource="other"))  # other resources are independent
    assert len(store.bookings.find(resource="dr")) == 2


def test_a_raw_insert_that_skips_the_service_is_refused_too(store: Store) -> None:
    add(store, reservation(TEN))
    row = {
        "id": "raw",
        "resource": "dr",
        "start_at": TEN,
        "end_at": TEN + timedelta(minutes=30),
        "block_start": TEN,
        "block_end": TEN + timedelta(minutes=30),
        "status": "pending",
        "metadata": {},
        "provider": {},
        "created_at": NOW,
        "updated_at": NOW,
    }
    with pytest.raises(Exception, match="bookings_no_overlap"), store.write() as conn:
        conn.execute(insert(bookings).values(**row))


def test_cancelled_rows_free_their_time(store: Store) -> None:
    first = reservation(TEN)
    add(store, first)
    store.bookings.update(first.id, NOW, status=BookingStatus.CANCELLED.value)
    add(store, reservation(TEN))
    assert sorted(b.status for b in store.bookings.find(resource="dr")) == [
        "cancelled",
        "confirmed",
    ]


def test_expired_holds_vanish_and_free_their_time(store: Store) -> None:
    hold = reservation(TEN, status=HELD, attendee=None, expires_at=NOW + timedelta(minutes=5))
    add(store, hold)
    assert store.bookings.taken("dr", TimeSpan(TEN, TEN + timedelta(hours=1)), NOW) != []
    later = NOW + timedelta(minutes=5)
    assert store.bookings.taken("dr", TimeSpan(TEN, TEN + timedelta(hours=1)), later) == []
    add(store, reservation(TEN), now=later)  # the ledger dropped the expired hold first
    assert store.bookings.find(resource="dr")[0].status is BookingStatus.CONFIRMED


def test_holds_are_not_bookings(store: Store) -> None:
    hold = reservation(TEN, status=HELD, attendee=None, expires_at=NOW + timedelta(minutes=5))
    add(store, hold)
    assert store.bookings.find(resource="dr") == []
    with pytest.raises(NotFoundError):
        store.bookings.get(hold.id)
    with store.bookings.ledger("dr", NOW) as ledger:
        found = ledger.hold(hold.id)
    assert found is not None
    assert found.span.start == TEN


def test_taken_ignores_given_rows(store: Store) -> None:
    first = reservation(TEN)
    add(store, first)
    day = TimeSpan(TEN - timedelta(hours=2), TEN + timedelta(hours=2))
    with store.bookings.ledger("dr", NOW) as ledger:
        assert len(ledger.taken(day)) == 1
        assert ledger.taken(day, ignore=[first.id]) == []


def test_idempotency_keys_are_unique_and_found(store: Store) -> None:
    add(store, reservation(TEN, idempotency_key="k1", request_hash="h1"))
    found = store.bookings.by_key("k1")
    assert found is not None
    assert found[1] == "h1"
    assert store.bookings.by_key("k2") is None


def test_find_filters_by_phone_and_time(store: Store) -> None:
    add(store, reservation(TEN))
    add(store, reservation(TEN + timedelta(days=1), attendee=Attendee("Bo", "+431234567")))
    assert [b.attendee.name for b in store.bookings.find(phone="+431234567")] == ["Bo"]
    day_two = TimeSpan(TEN + timedelta(hours=20), TEN + timedelta(days=2))
    assert [b.attendee.name for b in store.bookings.find(span=day_two)] == ["Bo"]


def test_release_deletes(store: Store) -> None:
    first = reservation(TEN)
    add(store, first)
    assert store.bookings.release(first.id)
    assert not store.bookings.release(first.id)
