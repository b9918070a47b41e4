"""Benchmark: syncing Google calendars through the real client library against FakeGoogle.

FakeGoogle runs in its own process with CALENDARS calendars x EVENTS events,
so the CPU figures measure calsync alone. Prints: the full sync time, the
requests per calendar of an incremental pass with no changes (goal: 1), and
the CPU per changed event of an incremental pass after CHANGES edits.

    .venv/bin/python bench/sync_google.py [--calendars 200] [--events 2000] [--changes 2000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

VIENNA = ZoneInfo("Europe/Vienna")
NOW = datetime.now(UTC).replace(microsecond=0)


def serve(pipe: Connection, calendars: int, events: int) -> None:
    """The fake's process: fill it, then answer commands until told to stop."""
    from tests.fakes.google_server import FakeGoogle

    rng = random.Random(3)
    with FakeGoogle(time_zone="Europe/Vienna") as google:
        for n in range(calendars):
            google.add_calendar(f"cal{n:04d}", time_zone="Europe/Vienna")
            for i in range(events):
                google.put_event(f"cal{n:04d}", _event(f"ev{i:05d}", rng))
        pipe.send((google.api_endpoint, google.user_credentials(_scopes())))
        while (command := pipe.recv()) != "stop":
            if command == "requests":
                pipe.send(sum(1 for r in google.requests if r.endpoint == "calendar.events.list"))
            else:  # ("change", n)
                for _ in range(command[1]):
                    google.put_event(f"cal{rng.randrange(calendars):04d}", _event(
                        f"ev{rng.randrange(events):05d}", rng))  # fmt: skip
                pipe.send("ok")


def _scopes() -> tuple[str, ...]:
    from calsync.providers.google.auth import SCOPES

    return SCOPES


def _event(event_id: str, rng: random.Random) -> dict[str, object]:
    start = (NOW + timedelta(days=rng.randrange(85), hours=rng.randrange(8, 17))).astimezone(VIENNA)
    end = start + timedelta(minutes=rng.choice((30, 60, 90)))
    return {"id": event_id, "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": end.isoformat()}}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calendars", type=int, default=200)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--changes", type=int, default=2000)
    args = parser.parse_args()

    from _sync import measure
    from google.oauth2.credentials import Credentials

    from calsync.clock import SystemClock
    from calsync.model import CalendarRef
    from calsync.providers.google.provider import GoogleProvider
    from calsync.scheduler.sync import SyncEngine
    from calsync.store import Store

    ours, theirs = multiprocessing.Pipe()
    fake = multiprocessing.Process(target=serve, args=(theirs, args.calendars, args.events))
    fake.start()
    started = time.perf_counter()
    endpoint, grant = ours.recv()
    took = time.perf_counter() - started
    print(f"fake filled: {args.calendars} x {args.events} events in {took:.0f} s")
    store = Store.open(f"sqlite:///{tempfile.mkdtemp()}/bench.db")
    store.upgrade()
    provider = GoogleProvider(lambda: Credentials(**grant), account="bench",
                              default_timezone=VIENNA, endpoint=endpoint)  # fmt: skip
    engine = SyncEngine(store, {"bench": provider}, SystemClock(), horizon_days=90)
    refs = engine.resolve([CalendarRef("bench", f"cal{n:04d}") for n in range(args.calendars)])
    try:
        measure(engine, store, refs, ours, args.changes)
    finally:
        provider.close()
        ours.send("stop")
        fake.join(timeout=30)
        store.close()


if __name__ == "__main__":
    main()
