"""No double booking, ever: 32 concurrent callers race for one slot, many times over.

Runs against the real ``calsync run`` process, on SQLite and on PostgreSQL.
Holds and bookings race together: exactly one request may win each slot.
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import requests

from tests.api.daemon import VIENNA, Daemon

CALLERS = 32
ROUNDS = 25


def race(daemon: Daemon, token: str, start: str) -> list[int]:
    barrier = threading.Barrier(CALLERS)
    headers = {"Authorization": f"Bearer {token}"}

    def attempt(i: int) -> int:
        session = requests.Session()
        body = {"resource": "clinic", "start": start, "attendee": {"name": f"Caller {i}"}}
        barrier.wait()
        if i % 4 == 0:  # every fourth caller tries to hold instead of book
            del body["attendee"]
            answer = session.post(f"{daemon.url}/v1/holds", json=body, headers=headers, timeout=30)
        else:
            key = {"Idempotency-Key": str(uuid.uuid4())}
            answer = session.post(
                f"{daemon.url}/v1/bookings", json=body, headers=headers | key, timeout=30
            )
        session.close()
        return answer.status_code

    with ThreadPoolExecutor(CALLERS) as pool:
        return list(pool.map(attempt, range(CALLERS)))


def test_exactly_one_caller_wins_each_slot(daemon: Daemon) -> None:
    token = daemon.key("write")
    first_day = datetime.now(VIENNA).date() + timedelta(days=20)
    for round_number in range(ROUNDS):
        day = first_day + timedelta(days=round_number // 12)
        start = f"{day.isoformat()}T{8 + round_number % 12:02d}:00"
        statuses = race(daemon, token, start)
        assert sorted(statuses) == [201] + [409] * (CALLERS - 1), (start, statuses)
    headers = {"Authorization": f"Bearer {token}"}
    span = {
        "resource": "clinic",
        "start": first_day.isoformat(),
        "end": str(first_day + timedelta(days=2)),
    }
    booked = requests.get(f"{daemon.url}/v1/bookings", params=span, headers=headers, timeout=10)
    starts = [b["start"] for b in booked.json()["bookings"]]
    assert len(starts) == len(set(starts))  # never two bookings at one time
