"""Benchmark: slot and free/busy lookups straight from the store (no HTTP).

Fills a store with CALENDARS calendars x one year of events (about 500k
events by default), then times ``Availability.slots`` and ``free_busy`` for
resources that each check a few calendars. Prints p50/p99 per lookup kind.

    .venv/bin/python bench/availability.py [--calendars 1000] [--db URL] [--rounds 300]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from calsync.clock import FrozenClock
from calsync.model import CalendarRef, Event, Resource, Rules, TimeSpan, WallRange
from calsync.providers.base import ChangeBatch
from calsync.scheduler.availability import Availability
from calsync.scheduler.sync import rolling_window
from calsync.store import Store

NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
VIENNA = ZoneInfo("Europe/Vienna")
EVENTS_PER_CALENDAR = 500  # ~2 a working day for a year


def fill(store: Store, calendars: int) -> None:
    rng = random.Random(7)
    window = rolling_window(NOW, 365)
    for n in range(calendars):
        ref = CalendarRef(f"acct{n // 10}", f"cal{n}")
        store.calendars.ensure(ref)
        events = []
        for i in range(EVENTS_PER_CALENDAR):
            day = NOW + timedelta(days=rng.randrange(365))
            start = day.replace(hour=rng.randrange(6, 17), minute=rng.choice((0, 15, 30, 45)))
            length = timedelta(minutes=rng.choice((15, 30, 45, 60, 90)))
            events.append(Event(f"e{i}", TimeSpan(start, start + length)))
        store.events.apply(ref, ChangeBatch(tuple(events), (), "c", full=True), window, NOW)


def resource(n: int, calendars: int) -> Resource:
    hours = (WallRange(8 * 60, 12 * 60), WallRange(13 * 60, 18 * 60))
    rules = Rules(
        timezone=VIENNA,
        weekly=(hours,) * 5 + ((), ()),
        duration=timedelta(minutes=30),
        step=timedelta(minutes=15),
        buffer_after=timedelta(minutes=10),
        max_days_ahead=300,
    )
    check = tuple(
        CalendarRef(f"acct{(n + k) % calendars // 10}", f"cal{(n + k) % calendars}")
        for k in range(3)
    )
    return Resource(f"r{n}", f"R{n}", "de", check, None, rules)


def timed(samples: list[float], call: Callable[[], object]) -> None:
    started = time.perf_counter()
    call()
    samples.append((time.perf_counter() - started) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calendars", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    url = args.db or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    store = Store.open(url)
    store.upgrade()
    started = time.perf_counter()
    fill(store, args.calendars)
    total = args.calendars * EVENTS_PER_CALENDAR
    took = time.perf_counter() - started
    print(f"filled {args.calendars} calendars, {total} events in {took:.1f} s")
    resources = {r.id: r for r in (resource(n, args.calendars) for n in range(args.calendars))}
    availability = Availability(
        store, resources, FrozenClock(NOW), sync_interval=timedelta(minutes=5)
    )
    rng = random.Random(1)
    kinds = {"slots 1 day": 1, "slots 7 days": 7, "slots 62 days": 62, "freebusy 7 days": 7}
    for kind, days in kinds.items():
        samples: list[float] = []
        for _ in range(args.rounds):
            rid = f"r{rng.randrange(args.calendars)}"
            start = datetime.combine(
                date(2026, 11, 24) + timedelta(days=rng.randrange(200)), datetime.min.time(), VIENNA
            )
            span = TimeSpan(start, start + timedelta(days=days))
            lookup = availability.slots if kind.startswith("slots") else availability.free_busy
            timed(samples, partial(lookup, rid, span))
        samples.sort()
        p99 = samples[int(len(samples) * 0.99) - 1]
        print(f"{kind:<16} p50 {statistics.median(samples):6.2f} ms   p99 {p99:6.2f} ms")
    store.close()


if __name__ == "__main__":
    main()
