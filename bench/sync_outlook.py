"""Benchmark: syncing Outlook calendars (Graph delta) against FakeGraph in its own process.

Prints: the full sync time, the requests per calendar of an incremental pass
with no changes (goal: 1), and the CPU per changed event of an incremental
pass after CHANGES edits. The fake runs in another process, so the CPU
figures measure calsync alone.

    .venv/bin/python bench/sync_outlook.py [--calendars 100] [--events 1000] [--changes 1000]
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
    from tests.fakes.graph import FakeGraph

    rng = random.Random(3)
    with FakeGraph() as graph:
        graph.concurrency_limit = 100  # the client's own cap (4) is what is measured
        ids: list[tuple[str, str]] = []
        for n in range(calendars):
            calendar = graph.add_calendar(f"Calendar {n}")
            for _ in range(events):
                start, end = _times(rng)
                ids.append((calendar, graph.add_event("Busy", start, end, calendar_id=calendar)))
        calendar_ids = sorted({c for c, _ in ids})
        pipe.send((graph.port, graph.mint_access_token(), calendar_ids))
        while (command := pipe.recv()) != "stop":
            if command == "requests":
                pipe.send(sum(1 for r in graph.requests if "/delta" in r.path))
            else:  # ("change", n)
                for _ in range(command[1]):
                    start, end = _times(rng)
                    graph.update_event(rng.choice(ids)[1], start=start, end=end)
                pipe.send("ok")


def _times(rng: random.Random) -> tuple[datetime, datetime]:
    start = NOW + timedelta(days=rng.randrange(85), hours=rng.randrange(8, 17))
    return start, start + timedelta(minutes=rng.choice((30, 60, 90)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calendars", type=int, default=100)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=1000)
    args = parser.parse_args()

    from _sync import measure

    from calsync.clock import SystemClock
    from calsync.model import CalendarRef
    from calsync.providers.outlook.provider import OutlookProvider
    from calsync.scheduler.sync import SyncEngine
    from calsync.store import Store
    from tests.fakes.graph.transport import loopback_session

    ours, theirs = multiprocessing.Pipe()
    fake = multiprocessing.Process(target=serve, args=(theirs, args.calendars, args.events))
    fake.start()
    started = time.perf_counter()
    port, token, calendar_ids = ours.recv()
    took = time.perf_counter() - started
    print(f"fake filled: {args.calendars} x {args.events} events in {took:.0f} s")
    store = Store.open(f"sqlite:///{tempfile.mkdtemp()}/bench.db")
    store.upgrade()
    session = loopback_session(port, ["graph.microsoft.com"])

    def bearer(force_refresh: bool = False) -> str:
        return str(token)

    provider = OutlookProvider(bearer, account="bench", session=session, default_timezone=VIENNA)
    engine = SyncEngine(store, {"bench": provider}, SystemClock(), horizon_days=90)
    refs = engine.resolve([CalendarRef("bench", c) for c in calendar_ids])
    try:
        measure(engine, store, refs, ours, args.changes)
    finally:
        ours.send("stop")
        fake.join(timeout=30)
        store.close()


if __name__ == "__main__":
    main()
