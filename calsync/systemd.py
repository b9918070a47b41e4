"""The daemon's side of systemd's notify protocol (``sd_notify(3)``), without libsystemd.

Owns: sending state datagrams (``READY=1``, ``STATUS=...``, ``RELOADING=1``,
``STOPPING=1``, ``WATCHDOG=1``) to ``$NOTIFY_SOCKET``, reading the watchdog
period from ``$WATCHDOG_USEC``/``$WATCHDOG_PID``, and the ``Watchdog`` thread
that pings only while a health check passes, so a wedged daemon is restarted.
Outside systemd (no ``$NOTIFY_SOCKET``) every call is a harmless no-op.

Must not: know what the daemon is made of (the caller passes the health
check), import anything beyond the standard library, or raise on a failed
send (systemd's own timeouts are the consequence, and a warning is logged).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

LOOP_CHECK_TIMEOUT = 5.0  # seconds an event loop may take to run a no-op before it counts as stuck


def notify(state: str) -> bool:
    """Send one notification (newline-separated ``KEY=value`` lines) to systemd.

    False when not run by systemd (no ``$NOTIFY_SOCKET``), when the address is
    of a kind this module does not speak, or when sending failed.
    """
    address = _socket_address(os.environ.get("NOTIFY_SOCKET", ""))
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(state.encode(), address)
    except OSError as err:
        shown = os.environ.get("NOTIFY_SOCKET")
        log.warning("systemd notify failed socket=%s state=%s error=%s", shown, _first(state), err)
        return False
    return True


def _socket_address(value: str) -> str | bytes | None:
    """``/path`` -> a filesystem socket, ``@name`` -> an abstract one; else None."""
    if value.startswith("/"):
        return value
    if value.startswith("@") and len(value) > 1:
        return b"\0" + value[1:].encode()
    if value:
        log.warning("systemd notify: unsupported NOTIFY_SOCKET=%s (want /path or @name)", value)
    return None


def _first(state: str) -> str:
    return state.split("\n", 1)[0]


def _one_line(text: str) -> str:
    """A status text cannot carry a newline: it would start another assignment."""
    return " ".join(text.splitlines())


def ready(status_text: str = "") -> bool:
    """Start-up (or a reload) is complete; systemd marks the unit active."""
    return notify("READY=1" + (f"\nSTATUS={_one_line(status_text)}" if status_text else ""))


def reloading() -> bool:
    """A reload began; always follow it with ``ready()``, also when the new config is refused."""
    usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000  # systemd >= 253 wants it
    return notify(f"RELOADING=1\nMONOTONIC_USEC={usec}")


def stopping(status_text: str = "") -> bool:
    """Shutdown began; systemd stops expecting watchdog pings."""
    return notify("STOPPING=1" + (f"\nSTATUS={_one_line(status_text)}" if status_text else ""))


def status(text: str) -> bool:
    """A one-line status shown by ``systemctl status calsync``."""
    return notify(f"STATUS={_one_line(text)}")


def watchdog_ping() -> bool:
    """Tell systemd the service is alive (``WATCHDOG=1``)."""
    return notify("WATCHDOG=1")


def watchdog_interval() -> float | None:
    """Seconds between pings (half of ``WatchdogSec=``), or None when no watchdog is asked for.

    As ``sd_watchdog_enabled(3)``: ``$WATCHDOG_USEC`` must be a positive number
    of microseconds, and ``$WATCHDOG_PID``, when set, must be this process.
    """
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and (not pid.isdigit() or int(pid) != os.getpid()):
        return None  # meant for another process (a parent that exec'd us, a shell)
    return int(usec) / 1_000_000 / 2


def loop_responds(loop: asyncio.AbstractEventLoop, timeout: float = LOOP_CHECK_TIMEOUT) -> bool:
    """True when ``loop`` runs a no-op callback within ``timeout`` (call from another thread)."""
    done = threading.Event()
    try:
        loop.call_soon_threadsafe(done.set)
    except RuntimeError:  # the loop is closed
        return False
    return done.wait(timeout)


class Watchdog:
    """A thread that pings systemd every ``interval`` seconds while ``healthy()`` is True.

    ``interval`` defaults to ``watchdog_interval()``; without one, ``start()``
    does nothing. A check that fails, raises or hangs means no ping, so
    systemd restarts the service after ``WatchdogSec=``. One use: after
    ``stop()``, ``start()`` does nothing (a late start cannot outlive a stop).
    """

    def __init__(self, healthy: Callable[[], bool], interval: float | None = None) -> None:
        self._healthy = healthy
        self._interval = interval if interval is not None else watchdog_interval()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._was_healthy = True

    @property
    def interval(self) -> float | None:
        return self._interval

    def start(self) -> bool:
        """Start pinging (the first check runs at once); False when no watchdog is wanted."""
        if self._interval is None or self._thread is not None or self._stop.is_set():
            return False
        self._thread = threading.Thread(target=self._loop, name="calsync-watchdog", daemon=True)
        self._thread.start()
        log.info("systemd watchdog started ping_every=%.1fs", self._interval)
        return True

    def stop(self, timeout: float = 1.0) -> None:
        """Stop pinging (at most a ping already under way still arrives).

        Waits at most ``timeout`` for the thread, so it may be called from the
        event loop that a running health check is waiting on.
        """
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    def _loop(self) -> None:
        assert self._interval is not None
        deadline = time.monotonic()
        while not self._stop.is_set():
            if self._check() and not self._stop.is_set():
                watchdog_ping()
            deadline = max(deadline + self._interval, time.monotonic())  # no burst after a hang
            self._stop.wait(max(0.0, deadline - time.monotonic()))

    def _check(self) -> bool:
        try:
            healthy = bool(self._healthy())
        except Exception as err:
            log.warning("systemd watchdog: health check failed error=%r", err)
            healthy = False
        if healthy != self._was_healthy:
            if healthy:
                log.info("systemd watchdog: healthy again, pinging")
            else:
                log.error("systemd watchdog: unhealthy, no ping (systemd restarts the service)")
            self._was_healthy = healthy
        return healthy
