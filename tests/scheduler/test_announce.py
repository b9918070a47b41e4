"""Outbox events are written with the change that caused them, and only then."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from calsync.clock import FrozenClock
from calsync.config import WebhookSettings
from calsync.errors import ProviderAuthError, ProviderUnavailableError, SlotUnavailableError
from calsync.model import CalendarRef
from calsync.scheduler.announce import Announcer
from calsync.scheduler.availability import Availability
from calsync.scheduler.booking import BookingService
from calsync.scheduler.sync import SyncEngine
from calsync.store import Store
from calsync.store.schema import deliveries, outbox
from tests.fakes.memory import FakeProvider
from tests.scheduler.test_booking import CAL, NOW, FakeWriter, at, request, resource

CRM = WebhookSettings("https://crm.example.com/hook", Path("crm.secret"), ("appointment.created",))
ALL = WebhookSettings(
    "https://ops.example.com/hook",
    Path("ops.secret"),
    ("appointment.created", "appointment.cancelled", "appointment.rescheduled",
     "account.reauth_required", "sync.failed"),
)  # fmt: skip


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    store = Store.open(db_url)
    store.upgrade()
    store.calendars.ensure(CAL)
    yield store
    store.close()


@pytest.fixture
def writer() -> FakeWriter:
    return FakeWriter()


@pytest.fixture
def service(store: Store, clock: FrozenClock, writer: FakeWriter) -> BookingService:
    gp = resource(id="gp", book_into=CalendarRef("office", "primary"), rules={"max_per_day": None})
    resources = {"dr": resource(), "gp": gp}
    availability = Availability(store, resources, clock, sync_interval=timedelta(minutes=5))
    announcer = Announcer([CRM, ALL], resources, clock)
    return BookingService(
        store, availability, clock, hold_ttl=timedelta(minutes=5),
        writers={"office": writer}, announcer=announcer,
    )  # fmt: skip


def events(store: Store) -> list[dict[str, Any]]:
    with store.read() as conn:
        rows = conn.execute(select(outbox).order_by(outbox.c.created_at, outbox.c.id))
        return [dict(row.payload) for row in rows]


def endpoints_of(store: Store, kind: str) -> list[str]:
    with store.read() as conn:
        query = (
            select(deliveries.c.endpoint)
            .join(outbox, outbox.c.id == deliveries.c.event_id)
            .where(outbox.c.type == kind)
            .order_by(deliveries.c.endpoint)
        )
        return list(conn.execute(query).scalars())


def test_a_booking_announces_itself_to_the_subscribed_endpoints(
    service: BookingService, store: Store
) -> None:
    booking, _ = service.book(request(at(7, 9)), "k1")
    (event,) = events(store)
    assert event["type"] == "appointment.created"
    assert event["data"]["id"] == booking.id
    assert event["data"]["start"] == "2026-12-07T09:00:00+01:00"
    assert event["data"]["start_utc"] == "2026-12-07T08:00:00+00:00"
    assert event["data"]["attendee"]["phone"] == "+436641234567"
    assert endpoints_of(store, "appointment.created") == [CRM.url, ALL.url]  # sorted: crm < ops


def test_a_refused_or_failed_booking_announces_nothing(
    service: BookingService, store: Store, writer: FakeWriter
) -> None:
    service.book(request(at(7, 9)), "k1")
    with pytest.raises(SlotUnavailableError):
        service.book(request(at(7, 9)), "k2")
    writer.fail = ProviderUnavailableError("down")
    with pytest.raises(ProviderUnavailableError):
        service.book(request(at(7, 10), resource="gp"), "k3")
    assert [e["type"] for e in events(store)] == ["appointment.created"]


def test_provider_bookings_are_announced_once_confirmed(
    service: BookingService, store: Store
) -> None:
    booking, _ = service.book(request(at(7, 9), resource="gp"), "k1")
    (event,) = events(store)
    assert event["data"]["status"] == "confirmed"
    assert event["data"]["provider"] == dict(booking.provider)


def test_cancel_and_reschedule_are_announced_with_the_previous_time(
    service: BookingService, store: Store, clock: FrozenClock
) -> None:
    booking, _ = service.book(request(at(7, 9)), "k1")
    clock.advance(timedelta(seconds=1))
    service.reschedule(booking.id, at(7, 11))
    clock.advance(timedelta(seconds=1))
    service.cancel(booking.id, "no time")
    service.cancel(booking.id)  # a no-op: not announced again
    kinds = [e["type"] for e in events(store)]
    assert kinds == ["appointment.created", "appointment.rescheduled", "appointment.cancelled"]
    moved = events(store)[1]["data"]
    assert (moved["start"], moved["previous"]["start"]) == (
        "2026-12-07T11:00:00+01:00",
        "2026-12-07T09:00:00+01:00",
    )
    assert endpoints_of(store, "appointment.cancelled") == [ALL.url]  # CRM wants created only


def test_sync_trouble_is_announced_once_not_on_every_blip(store: Store, clock: FrozenClock) -> None:
    provider = FakeProvider()
    announcer = Announcer([ALL], {}, clock)
    engine = SyncEngine(store, {"cal": provider}, clock, horizon_days=30,
                        provider_names={"cal": "google"}, announcer=announcer)  # fmt: skip
    provider.fail_with = ProviderUnavailableError("down")
    for _ in range(5):
        engine.sync(CAL)
        clock.advance(timedelta(seconds=1))
    provider.fail_with = ProviderAuthError("revoked")
    engine.sync(CAL)
    engine.sync(CAL)
    kinds = [e["type"] for e in events(store)]
    assert kinds == ["sync.failed", "account.reauth_required"]
    reauth = events(store)[1]["data"]
    assert reauth["fix"] == "calsync auth google --account cal"
