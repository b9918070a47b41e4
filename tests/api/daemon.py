"""A real ``calsync run`` process on a free port, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import requests
from prometheus_client.parser import text_string_to_metric_families

VIENNA = ZoneInfo("Europe/Vienna")

CONFIG = """
[daemon]
listen = "127.0.0.1:{port}"
state_dir = "state"
database = "{database}"
sync_interval = "10s"
horizon_days = 90
hold_ttl = "{hold_ttl}"

[accounts.feed]
provider = "ics"
url = "feed.ics"

[resources.clinic]
name = "Praxis Test"
timezone = "Europe/Vienna"
language = "de"
check = ["feed:primary"]
duration = "30m"
step = "30m"
max_days_ahead = 60
hours.mon = ["08:00-20:00"]
hours.tue = ["08:00-20:00"]
hours.wed = ["08:00-20:00"]
hours.thu = ["08:00-20:00"]
hours.fri = ["08:00-20:00"]
hours.sat = ["08:00-20:00"]
hours.sun = ["08:00-20:00"]

[resources.studio]
name = "Studio"
timezone = "America/New_York"
language = "en"
duration = "60m"
step = "60m"
buffer_after = "30m"
min_notice = "1h"
max_per_day = 2
max_days_ahead = 30
hours.mon = ["09:00-17:00"]
hours.tue = ["09:00-17:00"]
hours.wed = ["09:00-17:00"]
hours.thu = ["09:00-17:00"]
hours.fri = ["09:00-17:00"]
hours.sat = ["09:00-17:00"]
hours.sun = ["09:00-17:00"]
"""


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def feed(busy_day: date) -> str:
    """One busy hour, 12:00-13:00 Vienna, on ``busy_day``."""
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calsync tests//EN\r\n"
        "BEGIN:VEVENT\r\nUID:lunch@test\r\nDTSTAMP:20261101T000000Z\r\n"
        f"DTSTART;TZID=Europe/Vienna:{busy_day:%Y%m%d}T120000\r\n"
        f"DTEND;TZID=Europe/Vienna:{busy_day:%Y%m%d}T130000\r\n"
        "SUMMARY:Lunch\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


class Daemon:
    """``config`` is a template with ``{port}`` (default: the ICS clinic/studio config)."""

    def __init__(
        self, directory: Path, database: str, hold_ttl: str = "5m", config: str | None = None
    ) -> None:
        self.dir = directory
        self.database = database
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = directory / "config.toml"
        self.busy_day = datetime.now(VIENNA).date() + timedelta(days=3)
        (directory / "feed.ics").write_text(feed(self.busy_day))
        template = config if config is not None else CONFIG
        self.config.write_text(
            template.format(port=self.port, database=database, hold_ttl=hold_ttl, url=self.url)
        )
        self.process: subprocess.Popen[str] | None = None
        self.log = ""
        self.env: dict[str, str] = {}  # extra environment for every calsync process

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "calsync.cli", "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, **self.env},
        )

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        """A CLI command running in the background, its output unbuffered."""
        return subprocess.Popen(
            [sys.executable, "-m", "calsync.cli", "--config", str(self.config), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"},
        )

    def key(self, scope: str) -> str:
        created = self.cli("apikey", "create", "--name", f"tests-{scope}", "--scope", scope)
        assert created.returncode == 0, created.stderr
        return created.stdout.strip()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "calsync.cli", "--config", str(self.config), "run"],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"},
        )
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, args=(self.process,), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._reader.join(timeout=5)
                raise AssertionError(f"calsync run exited: {self.current_log()}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise AssertionError("calsync run did not answer /healthz within 30 s")

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            self._lines.append(line)
        process.stderr.close()

    def current_log(self) -> str:
        """What the running daemon logged so far."""
        return "".join(self._lines)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop the daemon (SIGTERM, or e.g. SIGKILL) and collect its log in ``log``."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=10)
        self.log = self.current_log()
        return self.process.returncode

    def metric(self, name: str, **labels: str) -> float:
        """One sample of the daemon's ``/metrics`` (0 while the series does not exist)."""
        text = requests.get(f"{self.url}/metrics", timeout=5).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and sample.labels == labels:
                    return float(sample.value)
        return 0.0

    def wait_synced(self, headers: dict[str, str]) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            answer = requests.get(
                f"{self.url}/v1/resources/clinic/freebusy", headers=headers, timeout=5
            )
            if answer.ok and not answer.json()["stale"]:
                return
            time.sleep(0.2)
        raise AssertionError("the daemon did not sync the feed within 30 s")
