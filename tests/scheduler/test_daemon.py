"""The background schedule with a real APScheduler: passes repeat, never overlap, push = now."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from calsync.clock import SystemClock
from calsync.model import CalendarRef, Event, TimeSpan
from calsync.scheduler.daemon import Daemon
from calsync.scheduler.sync import SyncEngine, SyncResult
from calsync.store import Store
from tests.fakes.memory import FakeProvider

PRIMARY = CalendarRef("office", "primary")


def wait_for(condition: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


class CountingEngine(SyncEngine):
    """Counts passes per calendar and how many ran at once."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.passes: dict[CalendarRef, int] = {}
        self.running: dict[CalendarRef, int] = {}
        self.max_parallel = 0
        self._lock = threading.Lock()
        self.delay = 0.0

    def sync(self, ref: CalendarRef, *, full: bool = False, requested: bool = False) -> SyncResult:
        with self._lock:
            self.running[ref] = self.running.get(ref, 0) + 1
            self.max_parallel = max(self.max_parallel, self.running[ref])
        time.sleep(self.delay)
        try:
            return super().sync(ref, full=full, requested=requested)
        finally:
            with self._lock:
                self.running[ref] -= 1
                self.passes[ref] = self.passes.get(ref, 0) + 1


@pytest.fixture
def provider() -> FakeProvider:
    fake = FakeProvider(("primary", "team"))
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    fake.put("primary", Event("a", TimeSpan(start, start + timedelta(hours=1))))
    return fake


def make(
    store: Store, provider: FakeProvider, wanted: list[CalendarRef], interval: float
) -> tuple[CountingEngine, Daemon]:
    engine = CountingEngine(store, {"office": provider}, SystemClock(), horizon_days=30)
    return engine, Daemon(engine, wanted, timedelta(seconds=interval), SystemClock())


def test_every_calendar_syncs_at_start_and_then_repeatedly(
    store: Store, provider: FakeProvider
) -> None:
    engine, daemon = make(store, provider, [CalendarRef("office", "*")], interval=0.5)
    daemon.start()
    try:
        team = CalendarRef("office", "team")
        assert set(daemon.scheduled) == {PRIMARY, team}
        assert wait_for(lambda: engine.passes.get(PRIMARY, 0) >= 3)
        assert wait_for(lambda: engine.passes.get(team, 0) >= 3)
    finally:
        daemon.stop()
    assert store.events.count(PRIMARY) == 1


def test_a_pass_never_overlaps_itself(store: Store, provider: FakeProvider) -> None:
    engine, daemon = make(store, provider, [PRIMARY], interval=0.1)
    engine.delay = 0.35  # each pass takes longer than the interval
    daemon.start()
    try:
        assert wait_for(lambda: engine.passes.get(PRIMARY, 0) >= 3)
    finally:
        daemon.stop()
    assert engine.max_parallel == 1


def test_sync_now_runs_a_pass_long_before_the_interval(
    store: Store, provider: FakeProvider
) -> None:
    engine, daemon = make(store, provider, [PRIMARY], interval=300)
    daemon.start()
    try:
        assert wait_for(lambda: engine.passes.get(PRIMARY, 0) == 1)
        assert daemon.sync_now(PRIMARY)
        assert wait_for(lambda: engine.passes.get(PRIMARY, 0) == 2, timeout=5)
        assert not daemon.sync_now(CalendarRef("office", "unknown"))
    finally:
        daemon.stop()


def test_new_calendars_behind_a_wildcard_are_picked_up(
    store: Store, provider: FakeProvider
) -> None:
    engine, daemon = make(store, provider, [CalendarRef("office", "*")], interval=0.5)
    daemon.start()
    try:
        provider.events["holidays"] = {}
        provider._log["holidays"] = []
        holidays = CalendarRef("office", "holidays")
        assert wait_for(lambda: holidays in daemon.scheduled)
        assert wait_for(lambda: engine.passes.get(holidays, 0) >= 1)
    finally:
        daemon.stop()


def test_a_change_announced_during_a_pass_gets_one_more_pass(
    store: Store, provider: FakeProvider
) -> None:
    engine, daemon = make(store, provider, [PRIMARY], interval=300)
    engine.delay = 0.5
    daemon.start()
    try:
        assert wait_for(lambda: engine.running.get(PRIMARY, 0) == 1)  # the first pass is under way
        assert daemon.sync_now(PRIMARY)
        assert daemon.sync_now(PRIMARY)  # announced twice: still one more pass, not two
        assert wait_for(lambda: engine.passes.get(PRIMARY, 0) == 2, timeout=5)
        time.sleep(1)
        assert engine.passes[PRIMARY] == 2
    finally:
        daemon.stop()
    assert engine.max_parallel == 1
