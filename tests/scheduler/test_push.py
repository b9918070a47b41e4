"""The push manager: channels opened, renewed a day early, closed; notifications verified."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from calsync.clock import FrozenClock
from calsync.errors import ProviderUnavailableError
from calsync.model import CalendarRef
from calsync.providers.base import Capability, PushChannel
from calsync.scheduler.push import PushManager
from calsync.store import Store
from tests.fakes.memory import FakeProvider

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
A, B = CalendarRef("office", "primary"), CalendarRef("office", "team")


class FakeSubscriber(FakeProvider):
    capabilities = frozenset({Capability.PUSH})

    def __init__(self, clock: FrozenClock) -> None:
        super().__init__(("primary", "team"))
        self.clock = clock
        self.opened: list[PushChannel] = []
        self.closed: list[str] = []
        self.refuse = False

    def open_channel(self, calendar: str, address: str, token: str) -> PushChannel:
        if self.refuse:
            raise ProviderUnavailableError("push is down")
        channel = PushChannel(f"ch{len(self.opened)}", calendar, "res", token,
                              self.clock.now() + timedelta(days=3))  # fmt: skip
        self.opened.append(channel)
        self.address = address
        return channel

    def close_channel(self, channel: PushChannel) -> None:
        self.closed.append(channel.id)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def subscriber(clock: FrozenClock) -> FakeSubscriber:
    return FakeSubscriber(clock)


@pytest.fixture
def changed() -> list[CalendarRef]:
    return []


@pytest.fixture
def push(store: Store, subscriber: FakeSubscriber, clock: FrozenClock,
         changed: list[CalendarRef]) -> PushManager:  # fmt: skip
    def record(ref: CalendarRef) -> bool:
        changed.append(ref)
        return True

    return PushManager(
        store, {"office": subscriber}, {"office": "google"}, clock,
        public_url="https://calsync.example.com/", on_change=record,
    )  # fmt: skip


def test_channels_are_opened_once_and_renewed_a_day_early(
    push: PushManager, subscriber: FakeSubscriber, clock: FrozenClock
) -> None:
    push.refresh([A, B])
    push.refresh([A, B])
    assert [c.calendar for c in subscriber.opened] == ["primary", "team"]
    assert subscriber.address == "https://calsync.example.com/push/google"
    clock.advance(timedelta(days=2, minutes=1))  # within a day of expiry
    push.refresh([A, B])
    assert len(subscriber.opened) == 4
    assert sorted(subscriber.closed) == ["ch0", "ch1"]


def test_a_calendar_that_leaves_the_config_loses_its_channel(
    push: PushManager, subscriber: FakeSubscriber
) -> None:
    push.refresh([A, B])
    push.refresh([A])
    assert subscriber.closed == ["ch1"]


def test_notifications_need_the_channel_secret(
    push: PushManager, subscriber: FakeSubscriber, changed: list[CalendarRef]
) -> None:
    push.refresh([A])
    channel = subscriber.opened[0]
    assert push.notify(channel.id, "forged") is None
    assert push.notify("unknown", channel.token) is None
    assert push.notify(channel.id, channel.token, changed=False) == A
    assert changed == []
    assert push.notify(channel.id, channel.token) == A
    assert changed == [A]


def test_reopen_replaces_a_channel_and_catches_up(
    push: PushManager, subscriber: FakeSubscriber, changed: list[CalendarRef]
) -> None:
    push.refresh([A])
    old = subscriber.opened[0]
    assert push.reopen(old.id, "forged") is None
    assert push.reopen(old.id, old.token) == A
    assert subscriber.closed == [old.id]
    assert len(subscriber.opened) == 2
    assert changed == [A]


def test_a_provider_that_refuses_leaves_polling_alone(
    push: PushManager, subscriber: FakeSubscriber, store: Store
) -> None:
    subscriber.refuse = True
    push.refresh([A])
    assert store.channels.all() == []


def test_close_all_on_shutdown(push: PushManager, subscriber: FakeSubscriber, store: Store) -> None:
    push.refresh([A, B])
    push.close_all()
    assert sorted(subscriber.closed) == ["ch0", "ch1"]
    assert store.channels.all() == []
