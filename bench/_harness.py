"""Shared by the benchmarks: a store filled with synthetic calendars, and a running daemon."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from calsync.model import CalendarRef, Event, TimeSpan
from calsync.providers.base import ChangeBatch
from calsync.scheduler.sync import rolling_window
from calsync.store import Store

EVENTS_PER_CALENDAR = 500  # ~2 a working day for a year
HOURS = "\n".join(
    f'hours.{d} = ["08:00-12:00", "13:00-18:00"]' for d in ("mon", "tue", "wed", "thu", "fri")
)


def fill(store: Store, calendars: int, now: datetime) -> None:
    """``calendars`` calendars (account ``accN``, calendar ``primary``) x one year of events."""
    rng = random.Random(7)
    window = rolling_window(now, 365)
    for n in range(calendars):
        ref = CalendarRef(f"acc{n}", "primary")
        store.calendars.ensure(ref)
        events = []
        for i in range(EVENTS_PER_CALENDAR):
            day = now + timedelta(days=rng.randrange(365))
            start = day.replace(hour=rng.randrange(6, 17), minute=rng.choice((0, 15, 30, 45)))
            length = timedelta(minutes=rng.choice((15, 30, 45, 60, 90)))
            events.append(Event(f"e{i}", TimeSpan(start, start + length)))
        store.events.apply(ref, ChangeBatch(tuple(events), (), "c", full=True), window, now)


def write_config(directory: Path, database: str, calendars: int, port: int) -> Path:
    """One ICS account per calendar (their feeds do not exist, so the stored data stays)
    and one resource per calendar."""
    parts = [
        f'[daemon]\nlisten = "127.0.0.1:{port}"\nstate_dir = "state"\n'
        f'database = "{database}"\nsync_interval = "5m"\nhorizon_days = 365\n'
    ]
    for n in range(calendars):
        parts.append(f'[accounts.acc{n}]\nprovider = "ics"\nurl = "missing/acc{n}.ics"\n')
        parts.append(
            f'[resources.r{n}]\ntimezone = "Europe/Vienna"\nlanguage = "de"\n'
            f'check = ["acc{n}:primary"]\nduration = "30m"\nstep = "15m"\n'
            f'buffer_after = "10m"\nmax_days_ahead = 300\n{HOURS}\n'
        )
    path = directory / "config.toml"
    path.write_text("\n".join(parts))
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cli(config: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "calsync.cli", "--config", str(config), *args],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()


class Running:
    """``calsync run`` in the background until ``stop()``."""

    def __init__(self, config: Path, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        command = [
            sys.executable,
            "-m",
            "calsync.cli",
            "--config",
            str(config),
            "--log-level",
            "error",
            "run",
        ]
        self.process = subprocess.Popen(command, env=env)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.2)
        self.stop()
        raise SystemExit("calsync run did not come up")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)


def now_utc() -> datetime:
    return datetime.now(UTC)
