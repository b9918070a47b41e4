"""The freshness guarantee: every calendar is synced at least every interval plus a minute,
and answers say `stale` once their data is older than twice the interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.interval import IntervalTrigger

from calsync.clock import FrozenClock
from calsync.model import CalendarRef, Resource, Rules, TimeSpan, WallRange
from calsync.providers.base import ChangeBatch
from calsync.scheduler.availability import Availability
from calsync.scheduler.daemon import job_trigger
from calsync.store import Store

INTERVAL = timedelta(minutes=5)
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
REF = CalendarRef("office", "primary")


def test_the_schedule_never_leaves_a_calendar_longer_than_interval_plus_a_minute() -> None:
    trigger = job_trigger(INTERVAL)
    assert isinstance(trigger, IntervalTrigger)
    fire = T0
    gaps = []
    for _ in range(2000):  # jitter is random: many draws
        following = trigger.get_next_fire_time(fire, fire)
        assert following is not None
        gaps.append(following - fire)
        fire = following
    assert max(gaps) <= INTERVAL + timedelta(minutes=1)
    assert min(gaps) > timedelta(0)


def test_answers_turn_stale_after_twice_the_interval(store: Store) -> None:
    clock = FrozenClock(T0)
    rules = Rules(ZoneInfo("Europe/Vienna"), ((WallRange(540, 720),),) * 7, timedelta(minutes=30),
                  timedelta(minutes=30))  # fmt: skip
    resource = Resource("doc", "Doc", "en", (REF,), None, rules)
    availability = Availability(store, {"doc": resource}, clock, sync_interval=INTERVAL)
    store.calendars.ensure(REF)
    assert availability.freshness(resource).stale  # never synced
    window = TimeSpan(T0, T0 + timedelta(days=30))
    store.events.apply(REF, ChangeBatch((), (), "c", full=True), window, T0)
    clock.advance(timedelta(seconds=2))  # past the one-second freshness cache
    fresh = availability.freshness(resource)
    assert (fresh.as_of, fresh.stale) == (T0, False)
    clock.advance(2 * INTERVAL - timedelta(seconds=3))
    assert not availability.freshness(resource).stale
    clock.advance(timedelta(seconds=2))
    assert availability.freshness(resource).stale
