"""Retrying provider calls: what every adapter shares about backing off.

Rate limits and server trouble (``RateLimitedError``, ``ProviderUnavailableError``)
are retried with exponential backoff and jitter (tenacity); when the provider
said how long to wait (``Retry-After``), exactly that is waited. Everything
else is final.
A per-account semaphore caps how many requests are in flight at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
    wait_random,
)

from calsync.errors import ProviderUnavailableError, RateLimitedError

T = TypeVar("T")
MAX_ATTEMPTS = 6
MAX_SECONDS = 120.0
_backoff = wait_exponential(multiplier=0.5, max=30) + wait_random(0, 1)


def _wait(state: RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, RateLimitedError) and error.retry_after is not None:
        return error.retry_after
    return float(_backoff(state))


class Retrier:
    """Runs provider calls with retries, at most ``concurrency`` at a time."""

    def __init__(
        self,
        *,
        concurrency: int = 4,
        attempts: int = MAX_ATTEMPTS,
        max_seconds: float = MAX_SECONDS,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self._slots = threading.BoundedSemaphore(concurrency)
        self._attempts = attempts
        self._max_seconds = max_seconds
        self._sleep = sleep or time.sleep

    def __call__(self, call: Callable[[], T]) -> T:
        retrying = Retrying(
            retry=retry_if_exception_type((RateLimitedError, ProviderUnavailableError)),
            wait=_wait,
            stop=stop_after_attempt(self._attempts) | stop_after_delay(self._max_seconds),
            reraise=True,
            sleep=self._sleep,
        )
        for attempt in retrying:
            with attempt, self.slot():
                return call()
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def slot(self) -> Iterator[None]:
        with self._slots:
            yield
