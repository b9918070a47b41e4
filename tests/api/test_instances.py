"""Several daemons on one PostgreSQL: each calendar synced by one at a time, a killed
instance's calendars taken over, and a booking race across instances with one winner."""

from __future__ import annotations

import re
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests

from tests.api.daemon import VIENNA, Daemon, feed
from tests.conftest import postgres_url

FEEDS = 4
CONFIG = """
[daemon]
listen = "127.0.0.1:{port}"
state_dir = "state"
database = "{database}"
sync_interval = "10s"
ACCOUNTS
[resources.desk]
timezone = "Europe/Vienna"
check = ["feed0:primary", "feed1:primary", "feed2:primary", "feed3:primary"]
duration = "30m"
step = "30m"
max_days_ahead = 30
hours.mon = ["08:00-20:00"]
hours.tue = ["08:00-20:00"]
hours.wed = ["08:00-20:00"]
hours.thu = ["08:00-20:00"]
hours.fri = ["08:00-20:00"]
hours.sat = ["08:00-20:00"]
hours.sun = ["08:00-20:00"]
"""
ACCOUNT = '[accounts.feed{n}]\nprovider = "ics"\nurl = "feed{n}.ics"\n'


@pytest.fixture
def instances(tmp_path: Path) -> Iterator[list[Daemon]]:
    urls = postgres_url()
    database = next(urls)
    accounts = "\n".join(ACCOUNT.format(n=n) for n in range(FEEDS))
    config = CONFIG.replace("ACCOUNTS", accounts)
    running: list[Daemon] = []
    try:
        for i in range(3):
            directory = tmp_path / f"instance{i}"
            directory.mkdir()
            for n in range(FEEDS):  # each instance reads the same feeds (a shared disk)
                (directory / f"feed{n}.ics").write_text(feed(datetime.now(VIENNA).date()))
            daemon = Daemon(directory, database, config=config)
            daemon.start()
            running.append(daemon)
        yield running
    finally:
        for daemon in running:
            daemon.stop()
        for _ in urls:
            pass


def syncs(log: str) -> list[str]:
    return re.findall(r"sync calendar=(feed\d):primary", log)


@pytest.mark.postgres
def test_three_instances_share_the_calendars_and_survive_a_kill(instances: list[Daemon]) -> None:
    time.sleep(14)  # the first passes, and one more round of the 10 s interval
    victim, *others = instances
    victim.stop(signal.SIGKILL)
    before = {id(d): len(syncs(d.current_log())) for d in others}
    time.sleep(48)  # the killed instance's leases (10 s + 30 s) run out and are taken over
    for daemon in others:
        daemon.stop()
    logs = [victim.log, *(d.log for d in others)]
    # before the kill, every calendar was synced, each by exactly one instance
    early = [syncs(victim.log), *(syncs(d.log)[: before[id(d)]] for d in others)]
    owners = {calendar: {i for i, seen in enumerate(early) if calendar in seen} for calendar in
              {f"feed{n}" for n in range(FEEDS)}}  # fmt: skip
    assert all(len(who) == 1 for who in owners.values()), owners
    # after it, the victim's calendars are synced by the survivors
    later = set().union(*(syncs(d.log)[before[id(d)] :] for d in others))
    assert set(early[0]) <= later, (early[0], later)
    assert "Traceback" not in "".join(logs)


@pytest.mark.postgres
def test_a_booking_race_across_instances_has_one_winner(instances: list[Daemon]) -> None:
    token = instances[0].key("write")
    start = (datetime.now(VIENNA) + timedelta(days=3)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    barrier = threading.Barrier(33)

    def attempt(i: int) -> int:
        daemon = instances[i % 3]
        body = {"resource": "desk", "start": start.isoformat(), "attendee": {"name": f"C{i}"}}
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())}
        barrier.wait()
        answer = requests.post(f"{daemon.url}/v1/bookings", json=body, headers=headers, timeout=30)
        return answer.status_code

    with ThreadPoolExecutor(33) as pool:
        statuses = list(pool.map(attempt, range(33)))
    assert sorted(statuses) == [201] + [409] * 32
