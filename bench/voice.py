"""Benchmark: concurrent simulated phone calls on the Vapi voice front; p50/p99 per step.

Fills a store with ``--resources`` calendars x 1 year of events (one resource
per calendar, no ``book_into``: calsync's own store is the booking target),
starts ``calsync run`` and lets ``--calls`` simulated calls run at once, each
check_availability -> hold_slot -> book_appointment over ``POST /voice/vapi``
(one requests.Session per call). Callers pick a random resource and one of
``--days`` days, so some want the same slots: a refused hold tries the next
offered time, then the alternatives, then checks again. A warm-up round,
then ``--rounds`` timed rounds; ``--think`` pauses about that long between a
call's steps (default 1 s: a real caller talks for seconds in between; 0 =
every step back to back, a stress test that measures throughput, not the
latency a caller meets). Prints count,
p50, p99, max per step (client-side), refusals, the issue's goals, and
checks the store for overlapping confirmed bookings.

    .venv/bin/python bench/voice.py [--calls 50] [--rounds 5] [--resources 50] [--days 3]
        [--think 1] [--backends sqlite,postgresql] [--pg postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests

sys.path.insert(0, str(Path(__file__).parent))

from _harness import Running, cli, fill, free_port, now_utc, write_config
from booking_race import database

from calsync.model import BookingStatus
from calsync.store import Store

STEPS = ("check", "hold", "book")
GOALS = {"check": 20.0, "book": 50.0}  # p99 in ms, issue 9 item 5
RETRIES = 5  # fresh checks a caller makes before giving up


class Tally:
    """Per-step latencies (ms) and refusals, shared by the callers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ms: dict[str, list[float]] = {step: [] for step in STEPS}
        self.refused: dict[str, int] = dict.fromkeys(STEPS, 0)
        self.gave_up = 0
        self.booked = 0


class Caller:
    """One simulated call: its own session, call id and caller number."""

    def __init__(self, url: str, token: str, tally: Tally, think: float, seed: int) -> None:
        self.url, self.tally, self.think = f"{url}/voice/vapi", tally, think
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.call_id = f"bench-{uuid.uuid4().hex[:12]}"
        self.number = f"+43660{seed:07d}"

    def tool(self, step: str, name: str, arguments: dict[str, Any]) -> tuple[bool, Any]:
        """One tool call, timed; (ok, the answer's document)."""
        body = {
            "message": {
                "type": "tool-calls",
                "call": {"id": self.call_id, "customer": {"number": self.number}},
                "toolCallList": [
                    {"id": uuid.uuid4().hex, "type": "function",
                     "function": {"name": name, "arguments": arguments}}
                ],
            }
        }  # fmt: skip
        started = time.perf_counter()
        answer = self.session.post(self.url, json=body, timeout=60)
        took = (time.perf_counter() - started) * 1000
        if answer.status_code != 200:
            raise SystemExit(f"{name}: unexpected {answer.status_code}: {answer.text}")
        result = answer.json()["results"][0]
        ok = "result" in result
        with self.tally.lock:
            self.tally.ms[step].append(took)
            self.tally.refused[step] += not ok
        return ok, json.loads(result["result" if ok else "error"])

    def pause(self) -> None:
        if self.think:
            time.sleep(self.think * random.uniform(0.5, 1.5))

    def run(self, resource: str, day: date) -> None:
        for _ in range(RETRIES):
            self.pause()  # with --think, calls start spread out, as real ones do
            asked = {"resource": resource, "date": day.isoformat(), "limit": 3}
            _, found = self.tool("check", "check_availability", asked)
            offered = [s["slot_id"] for s in found.get("slots", [])]
            fallback = True  # the alternatives of the first refusal of the last offer
            while offered:
                self.pause()
                slot = offered.pop(0)
                held, hold = self.tool("hold", "hold_slot", {"slot_id": slot})
                if not held:  # taken meanwhile: the next offered time, then the alternatives
                    if not offered and fallback:
                        fallback = False
                        offered = [s["slot_id"] for s in hold.get("alternatives", [])]
                    continue
                self.pause()
                arguments = {"slot_id": slot, "name": "Bench Caller", "hold_id": hold["hold_id"]}
                booked, _ = self.tool("book", "book_appointment", arguments)
                with self.tally.lock:
                    self.tally.booked += booked
                if booked:
                    return
        with self.tally.lock:
            self.tally.gave_up += 1

    def close(self) -> None:
        self.session.close()


def weekdays(first: date, count: int) -> list[date]:
    days = [first + timedelta(days=i) for i in range(count * 2 + 2)]
    return [d for d in days if d.weekday() < 5][:count]


def round_of_calls(url: str, token: str, args: argparse.Namespace, seed: int, tally: Tally) -> None:
    """``args.calls`` calls started together, counted into ``tally``; each picks a
    resource and a day."""
    rng = random.Random(seed)
    first = datetime.now(ZoneInfo("Europe/Vienna")).date() + timedelta(days=7)
    days = weekdays(first, args.days)
    plan = [(f"r{rng.randrange(args.resources)}", rng.choice(days)) for _ in range(args.calls)]
    callers = [Caller(url, token, tally, args.think, seed * 1000 + i) for i in range(args.calls)]
    gate = threading.Barrier(args.calls)

    def go(caller: Caller, resource: str, day: date) -> None:
        gate.wait()
        caller.run(resource, day)

    threads = [
        threading.Thread(target=go, args=(c, r, d)) for c, (r, d) in zip(callers, plan, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for caller in callers:
        caller.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def double_bookings(url: str, resources: int) -> tuple[int, int]:
    """(confirmed bookings, overlapping pairs of them on one resource), read from the store."""
    store = Store.open(url)
    try:
        confirmed = doubles = 0
        for n in range(resources):
            found = store.bookings.find(resource=f"r{n}", limit=1_000_000)
            spans = sorted(b.span for b in found if b.status is BookingStatus.CONFIRMED)
            confirmed += len(spans)
            doubles += sum(1 for a, b in pairwise(spans) if b.start < a.end)
        return confirmed, doubles
    finally:
        store.close()


def run(backend: str, args: argparse.Namespace) -> None:
    directory = Path(tempfile.mkdtemp(prefix="calsync-voice-"))
    with database(backend, directory, args.pg) as url:
        port = free_port()
        config = write_config(directory, url, args.resources, port)
        cli(config, "db", "upgrade")
        store = Store.open(url)
        fill(store, args.resources, now_utc())
        store.close()
        token = cli(config, "apikey", "create", "--name", "bench", "--scope", "write")
        daemon = Running(config, port)
        try:
            time.sleep(3)  # let the first (failing, feed-less) sync passes settle
            round_of_calls(daemon.url, token, args, 0, Tally())  # warm-up
            total = Tally()
            started = time.perf_counter()
            for n in range(1, args.rounds + 1):
                round_of_calls(daemon.url, token, args, n, total)
            took = time.perf_counter() - started
        finally:
            daemon.stop()
        confirmed, doubles = double_bookings(url, args.resources)
    print(
        f"\n{backend}: {os.cpu_count()} cores, {args.calls} concurrent calls x {args.rounds} "
        f"rounds, {args.resources} resources x {args.days} days, think {args.think} s; "
        f"{total.booked} booked, {total.gave_up} gave up, {took:.1f} s; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'step':<6} {'count':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'refused':>8}")
    for step in STEPS:
        ms = total.ms[step]
        print(
            f"{step:<6} {len(ms):6d} {statistics.median(ms):8.1f} {percentile(ms, 0.99):8.1f} "
            f"{max(ms):8.1f} {total.refused[step]:8d}"
        )
    for step, goal in GOALS.items():
        p99 = percentile(total.ms[step], 0.99)
        print(f"{step} p99 <= {goal:.0f} ms: {'met' if p99 <= goal else 'missed'} ({p99:.1f} ms)")
    verdict = "ok" if doubles == 0 else "DOUBLE BOOKINGS"
    print(f"store: {confirmed} confirmed (with warm-up), overlapping: {doubles} ({verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--resources", type=int, default=50, help="calendars, one per resource")
    parser.add_argument("--days", type=int, default=3, help="weekdays the callers spread over")
    parser.add_argument(
        "--think", type=float, default=1.0, help="seconds between steps (0: a stress test)"
    )
    parser.add_argument("--backends", default="sqlite")
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    for backend in args.backends.split(","):
        run(backend, args)


if __name__ == "__main__":
    main()
