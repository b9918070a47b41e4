"""A client-side budget for one Cal.com API key: never more than ``limit`` requests per ``period``.

Cal.com allows an API key 120 requests per 60 s and blocks it for a minute
when that is exceeded (providers.md 3.6). Every calendar of an account, and
every thread, shares the provider's one limiter, so many calendars cannot
add up to more than the budget.

A sliding log of request *completion* times: a request may start only while
fewer than ``limit`` requests are in flight or finished within the last
``period``. Counting from completion rather than from sending keeps the
guarantee at the server, which receives each request somewhere between the
two. The server's counters win over ours: when ``X-RateLimit-Remaining-Default``
says nothing is left (or a 429 arrives), every caller waits
``X-RateLimit-Reset-Default`` seconds. This module does no I/O of its own.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

DEFAULT_LIMIT = 120
DEFAULT_PERIOD = 60.0
REMAINING_HEADER = "X-RateLimit-Remaining-Default"
RESET_HEADER = "X-RateLimit-Reset-Default"


class RateLimiter:
    """At most ``limit`` requests in any ``period`` seconds, across threads."""

    def __init__(
        self,
        limit: int = DEFAULT_LIMIT,
        period: float = DEFAULT_PERIOD,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or period <= 0:
            raise ValueError("a rate limit needs limit >= 1 and period > 0")
        self.limit = limit
        self.period = period
        self._clock = clock
        self._finished: deque[float] = deque()
        self._in_flight = 0
        self._paused_until = 0.0
        self._changed = threading.Condition()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Wait for room in the budget, then count one request until the block ends."""
        self._acquire()
        try:
            yield
        finally:
            self._release()

    def pause(self, seconds: float) -> None:
        """Hold every request back for ``seconds`` (the server said the budget is gone)."""
        with self._changed:
            self._paused_until = max(self._paused_until, self._clock() + max(0.0, seconds))

    def observe(self, headers: Mapping[str, str]) -> None:
        """Read Cal.com's rate-limit headers; pause until the reset when nothing is left."""
        remaining = number(headers.get(REMAINING_HEADER))
        if remaining is not None and remaining <= 0:
            self.pause(reset_seconds(headers) or 1.0)

    def _acquire(self) -> None:
        with self._changed:
            while True:
                wait = self._wait_needed(self._clock())
                if wait <= 0:
                    self._in_flight += 1
                    return
                self._changed.wait(wait)

    def _release(self) -> None:
        with self._changed:
            self._in_flight -= 1
            self._finished.append(self._clock())
            self._changed.notify_all()

    def _wait_needed(self, now: float) -> float:
        while self._finished and self._finished[0] <= now - self.period:
            self._finished.popleft()
        if now < self._paused_until:
            return self._paused_until - now
        if self._in_flight + len(self._finished) < self.limit:
            return 0.0
        if not self._finished:  # all of the budget is in flight: a release wakes us
            return self.period
        return self._finished[0] + self.period - now


def reset_seconds(headers: Mapping[str, str]) -> float | None:
    """``X-RateLimit-Reset-Default``: seconds until the window resets (not an epoch)."""
    value = number(headers.get(RESET_HEADER))
    return None if value is None else max(0.0, value)


def number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None
