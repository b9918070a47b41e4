"""The shared retrier: what is retried, how long it waits, how many run at once."""

from __future__ import annotations

import threading
import time

import pytest

from calsync.errors import ProviderDataError, ProviderUnavailableError, RateLimitedError
from calsync.providers.retry import Retrier


def failing(errors: list[Exception]) -> tuple[list[int], object]:
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return "ok"

    return calls, call


def test_retry_after_is_waited_exactly() -> None:
    slept: list[float] = []
    calls, call = failing([RateLimitedError("slow down", 7.0), RateLimitedError("again", 2.5)])
    assert Retrier(sleep=slept.append)(call) == "ok"  # type: ignore[arg-type]
    assert slept == [7.0, 2.5]
    assert len(calls) == 3


def test_server_trouble_backs_off_and_gives_up() -> None:
    slept: list[float] = []
    calls, call = failing([ProviderUnavailableError("503")] * 10)
    with pytest.raises(ProviderUnavailableError):
        Retrier(attempts=4, sleep=slept.append)(call)  # type: ignore[arg-type]
    assert len(calls) == 4
    assert len(slept) == 3
    assert slept[2] > slept[0]  # exponential (plus at most 1 s of jitter)


def test_other_errors_are_final() -> None:
    slept: list[float] = []
    calls, call = failing([ProviderDataError("bad request")])
    with pytest.raises(ProviderDataError):
        Retrier(sleep=slept.append)(call)  # type: ignore[arg-type]
    assert (len(calls), slept) == (1, [])


def test_at_most_n_calls_run_at_once() -> None:
    retrier = Retrier(concurrency=2)
    running, peak = [0], [0]
    lock = threading.Lock()

    def call() -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1

    threads = [threading.Thread(target=retrier, args=(call,)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak[0] == 2
