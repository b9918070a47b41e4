"""Benchmark: many callers racing for few slots over HTTP; prints bookings/s and double bookings.

64 client threads each keep trying to book one of 10 slots (a new
Idempotency-Key per attempt) until every slot is gone, for several rounds,
on SQLite and on PostgreSQL. Then every stored booking is checked for
overlaps: the double-booking count must be 0.

    .venv/bin/python bench/booking_race.py [--clients 64] [--slots 10] [--rounds 5]
        [--backends sqlite,postgresql] [--pg postgresql+psycopg://postgres@127.0.0.1/test]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import requests
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).parent))

from _harness import Running, cli, free_port

VIENNA = ZoneInfo("Europe/Vienna")
CONFIG = """[daemon]
listen = "127.0.0.1:{port}"
state_dir = "state"
database = "{database}"

[resources.race]
timezone = "Europe/Vienna"
duration = "30m"
step = "30m"
max_days_ahead = 60
{hours}
"""
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@contextmanager
def database(backend: str, directory: Path, pg: str) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{directory}/race.db"
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{pg}{'&' if '?' in pg else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def race(url: str, token: str, starts: list[str], clients: int) -> tuple[int, int]:
    """Every client tries the slots it has not seen taken; returns (attempts, bookings)."""
    counts = {"attempts": 0, "booked": 0}
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {token}"}

    def client(seed: int) -> None:
        rng = random.Random(seed)
        open_slots = list(starts)
        session = requests.Session()
        while open_slots:
            start = rng.choice(open_slots)
            body = {"resource": "race", "start": start, "attendee": {"name": f"Client {seed}"}}
            key = {"Idempotency-Key": str(uuid.uuid4())}
            answer = session.post(
                f"{url}/v1/bookings", json=body, headers=headers | key, timeout=60
            )
            with lock:
                counts["attempts"] += 1
                counts["booked"] += answer.status_code == 201
            if answer.status_code not in (201, 409):
                raise SystemExit(f"unexpected {answer.status_code}: {answer.text}")
            open_slots.remove(start)
        session.close()

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return counts["attempts"], counts["booked"]


def double_bookings(url: str, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    found = requests.get(
        f"{url}/v1/bookings", params={"resource": "race"}, headers=headers, timeout=30
    )
    spans = sorted(
        (datetime.fromisoformat(b["start"]), datetime.fromisoformat(b["end"]))
        for b in found.json()["bookings"]
        if b["status"] == "confirmed"
    )
    return sum(1 for (_, end), (start, _) in pairwise(spans) if start < end)


def run(backend: str, args: argparse.Namespace) -> None:
    directory = Path(tempfile.mkdtemp(prefix="calsync-race-"))
    hours = "\n".join(f'hours.{d} = ["08:00-20:00"]' for d in DAYS)
    with database(backend, directory, args.pg) as url:
        port = free_port()
        config = directory / "config.toml"
        config.write_text(CONFIG.format(port=port, database=url, hours=hours))
        token = cli(config, "apikey", "create", "--name", "race", "--scope", "write")
        daemon = Running(config, port)
        try:
            first = datetime.now(VIENNA).date() + timedelta(days=2)
            attempts = booked = 0
            started = time.perf_counter()
            for round_number in range(args.rounds):
                day = first + timedelta(days=round_number)
                starts = [f"{day}T{8 + i // 2:02d}:{30 * (i % 2):02d}" for i in range(args.slots)]
                a, b = race(daemon.url, token, starts, args.clients)
                attempts, booked = attempts + a, booked + b
            took = time.perf_counter() - started
            doubles = double_bookings(daemon.url, token)
        finally:
            daemon.stop()
    print(
        f"{backend:<10} {args.clients} clients, {args.rounds * args.slots} slots: "
        f"{attempts} requests in {took:.1f} s = {attempts / took:.0f} requests/s, "
        f"{booked} booked ({booked / took:.1f} bookings/s), double bookings: {doubles}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--slots", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    for backend in args.backends.split(","):
        run(backend, args)


if __name__ == "__main__":
    main()
