"""The sd_notify protocol, with the test playing systemd's side of the notify socket.

A datagram socket bound to a path (or an abstract ``@name``) stands in for
systemd; ``NOTIFY_SOCKET`` points the code at it. The last test runs the
real ``calsync run`` under that socket, as systemd would with
``Type=notify`` and ``WatchdogSec=``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from calsync import systemd


class FakeSystemd:
    """systemd's end of ``$NOTIFY_SOCKET``: receives the datagrams and keeps them in order."""

    def __init__(self, address: str, bind_to: str | bytes) -> None:
        self.address = address  # the value for NOTIFY_SOCKET
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(bind_to)
        self.received: list[tuple[float, dict[str, str]]] = []  # (monotonic time, assignments)

    def receive(self, timeout: float = 5.0) -> dict[str, str] | None:
        """The next datagram as ``{KEY: value}``, or None when none comes within ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096)
        except TimeoutError:
            return None
        message = dict(line.split("=", 1) for line in data.decode().split("\n") if line)
        self.received.append((time.monotonic(), message))
        return message

    def wait_for(
        self, key: str, timeout: float, sender: subprocess.Popen[bytes] | None = None
    ) -> dict[str, str]:
        """The next datagram that sets ``key``; fails early when ``sender`` has exited."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            message = self.receive(min(left, 1.0))
            if message is not None and key in message:
                return message
            if message is None and sender is not None and sender.poll() is not None:
                break
        raise AssertionError(f"no {key}=1 within {timeout} s; got {self.messages()}")

    def drain(self, quiet: float = 0.001) -> list[dict[str, str]]:
        """Everything queued, and whatever else arrives until ``quiet`` seconds pass without."""
        drained = []
        while (message := self.receive(quiet)) is not None:
            drained.append(message)
        return drained

    def collect(self, seconds: float) -> list[dict[str, str]]:
        """Whatever arrives within the next ``seconds``."""
        deadline = time.monotonic() + seconds
        collected = []
        while (left := deadline - time.monotonic()) > 0:
            if (message := self.receive(left)) is not None:
                collected.append(message)
        return collected

    def messages(self) -> list[dict[str, str]]:
        return [message for _, message in self.received]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(params=["path", "abstract"])
def fake_systemd(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[FakeSystemd]:
    if request.param == "path":
        path = str(tmp_path_factory.mktemp("sd") / "notify")  # short: sun_path has 108 bytes
        fake = FakeSystemd(path, path)
    else:
        name = f"calsync-test-{uuid.uuid4().hex}"
        fake = FakeSystemd(f"@{name}", b"\0" + name.encode())
    monkeypatch.setenv("NOTIFY_SOCKET", fake.address)
    yield fake
    fake.close()


@pytest.fixture
def no_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        monkeypatch.delenv(name, raising=False)


def test_each_state_arrives_as_one_datagram(fake_systemd: FakeSystemd) -> None:
    assert systemd.ready("listening on 127.0.0.1:8765")
    assert fake_systemd.receive() == {"READY": "1", "STATUS": "listening on 127.0.0.1:8765"}
    assert systemd.status("syncing 3 calendars")
    assert fake_systemd.receive() == {"STATUS": "syncing 3 calendars"}
    assert systemd.watchdog_ping()
    assert fake_systemd.receive() == {"WATCHDOG": "1"}
    assert systemd.stopping()
    assert fake_systemd.receive() == {"STOPPING": "1"}
    assert systemd.notify("READY=1\nSTATUS=raw")
    assert fake_systemd.receive() == {"READY": "1", "STATUS": "raw"}


def test_reloading_carries_the_monotonic_clock(fake_systemd: FakeSystemd) -> None:
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert systemd.reloading()
    message = fake_systemd.receive()
    assert message is not None
    assert message["RELOADING"] == "1"
    assert before <= int(message["MONOTONIC_USEC"]) <= before + 5_000_000


def test_a_status_text_cannot_smuggle_in_another_assignment(fake_systemd: FakeSystemd) -> None:
    systemd.status("sync failed:\nREADY=1")
    assert fake_systemd.receive() == {"STATUS": "sync failed: READY=1"}


@pytest.mark.usefixtures("no_systemd")
def test_without_notify_socket_everything_is_a_noop() -> None:
    assert systemd.notify("READY=1") is False
    assert systemd.ready("x") is False
    assert systemd.stopping() is False
    assert systemd.watchdog_ping() is False
    assert systemd.watchdog_interval() is None
    watchdog = systemd.Watchdog(lambda: True)
    assert watchdog.interval is None
    assert watchdog.start() is False
    watchdog.stop()


@pytest.mark.parametrize("address", ["relative/notify", "vsock:2:1234", "@"])
def test_an_address_of_another_kind_is_not_used(
    monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    assert systemd.notify("READY=1") is False


def test_a_socket_that_is_gone_returns_false(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone"))
    assert systemd.ready() is False


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [
        ("30000000", None, 15.0),
        ("2000000", "self", 1.0),
        ("30000000", "other", None),  # meant for another process
        ("30000000", "not-a-pid", None),
        ("0", None, None),
        ("-1000000", None, None),
        ("soon", None, None),
        ("", None, None),
        (None, "self", None),
    ],
)
def test_watchdog_interval_is_half_the_period_for_this_process(
    monkeypatch: pytest.MonkeyPatch, usec: str | None, pid: str | None, expected: float | None
) -> None:
    pids = {"self": str(os.getpid()), "other": str(os.getpid() + 1)}
    for name, value in (("WATCHDOG_USEC", usec), ("WATCHDOG_PID", pids.get(pid or "", pid))):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert systemd.watchdog_interval() == expected


def test_the_watchdog_pings_only_while_healthy(fake_systemd: FakeSystemd) -> None:
    healthy = threading.Event()
    healthy.set()
    watchdog = systemd.Watchdog(healthy.is_set, interval=0.05)
    assert watchdog.start()
    try:
        assert len(_pings_within(fake_systemd, 0.5)) >= 5
        healthy.clear()
        fake_systemd.drain(quiet=0.15)  # a ping decided before the change may still arrive
        assert _pings_within(fake_systemd, 0.4) == []
        healthy.set()
        assert len(_pings_within(fake_systemd, 0.3)) >= 2
    finally:
        watchdog.stop()
    fake_systemd.drain()
    assert _pings_within(fake_systemd, 0.2) == []


def test_a_health_check_that_raises_means_no_ping(fake_systemd: FakeSystemd) -> None:
    def broken() -> bool:
        raise RuntimeError("store unreachable")

    watchdog = systemd.Watchdog(broken, interval=0.05)
    watchdog.start()
    try:
        assert _pings_within(fake_systemd, 0.3) == []
    finally:
        watchdog.stop()


def test_stop_returns_while_a_check_hangs_and_no_ping_follows(fake_systemd: FakeSystemd) -> None:
    release = threading.Event()
    watchdog = systemd.Watchdog(lambda: release.wait(5.0), interval=0.05)
    watchdog.start()
    started = time.monotonic()
    watchdog.stop(timeout=0.1)
    assert time.monotonic() - started < 1.0
    release.set()  # the hung check now says healthy: too late to ping
    assert _pings_within(fake_systemd, 0.3) == []
    assert watchdog.start() is False  # stopped for good


def test_the_watchdog_takes_its_period_from_systemd(
    fake_systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "100000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    watchdog = systemd.Watchdog(lambda: True)
    assert watchdog.interval == pytest.approx(0.05)
    watchdog.start()
    try:
        assert len(_pings_within(fake_systemd, 0.5)) >= 5
    finally:
        watchdog.stop()


def _pings_within(fake: FakeSystemd, seconds: float) -> list[dict[str, str]]:
    pings = fake.collect(seconds)
    assert all(message == {"WATCHDOG": "1"} for message in pings), pings
    return pings


def test_loop_responds_tells_a_running_loop_from_a_stuck_or_closed_one() -> None:
    loop = asyncio.new_event_loop()
    assert systemd.loop_responds(loop, timeout=0.1) is False  # not running yet
    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    try:
        assert systemd.loop_responds(loop, timeout=1.0) is True
        loop.call_soon_threadsafe(time.sleep, 0.5)  # wedge it
        assert systemd.loop_responds(loop, timeout=0.1) is False
        assert systemd.loop_responds(loop, timeout=2.0) is True  # and it recovers
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
    assert systemd.loop_responds(loop, timeout=0.1) is False


# --- the real daemon under a fake systemd -------------------------------------------------

CONFIG = """
[daemon]
listen = "127.0.0.1:{port}"
state_dir = "state"
sync_interval = "10s"

[accounts.feed]
provider = "ics"
url = "feed.ics"

[resources.doc]
timezone = "Europe/Vienna"
check = ["feed:primary"]
hours.mon = ["09:00-12:00"]
"""

FEED = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calsync tests//EN\r\n"
    "BEGIN:VEVENT\r\nUID:meeting@test\r\nDTSTAMP:20261101T000000Z\r\n"
    "DTSTART;TZID=Europe/Vienna:20261207T100000\r\n"
    "DTEND;TZID=Europe/Vienna:20261207T110000\r\n"
    "SUMMARY:Meeting\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("fake_systemd", ["path"], indirect=True)
def test_the_daemon_reports_ready_pings_the_watchdog_and_stops_cleanly(
    fake_systemd: FakeSystemd, tmp_path: Path
) -> None:
    port = _free_port()
    (tmp_path / "feed.ics").write_text(FEED)
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(port=port))
    log_file = tmp_path / "calsync.log"  # a file, not a pipe: what was logged is there at once
    env = {k: v for k, v in os.environ.items() if k != "WATCHDOG_PID"}
    env |= {
        "NOTIFY_SOCKET": fake_systemd.address,
        "WATCHDOG_USEC": "2000000",
        "PYTHONUNBUFFERED": "1",
    }
    with log_file.open("w") as log_out:
        process = subprocess.Popen(
            [sys.executable, "-m", "calsync.cli", "--config", str(config), "run"],
            stdout=subprocess.DEVNULL,
            stderr=log_out,
            env=env,
        )
    try:
        ready = fake_systemd.wait_for("READY", timeout=30, sender=process)
        # READY=1 comes only once the API listens and the schedule (first passes: now) runs.
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok
        assert "scheduler started" in log_file.read_text()
        assert ready["READY"] == "1"
        assert ready.get("STATUS"), f"READY=1 without a STATUS: {ready}"

        pings = [m for m in fake_systemd.collect(3.0) if "WATCHDOG" in m]
        assert len(pings) >= 2, f"WatchdogSec=2s, yet in ~3 s only {fake_systemd.messages()}"

        process.send_signal(signal.SIGTERM)
        fake_systemd.wait_for("STOPPING", timeout=15)
        assert process.wait(timeout=20) == 0, log_file.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log = log_file.read_text()
    assert "sync calendar=feed:primary" in log, log
    assert "scheduler stopped" in log
    states = [key for m in fake_systemd.messages() for key in m if key in ("READY", "STOPPING")]
    assert states == ["READY", "STOPPING"], fake_systemd.messages()
