"""Counting the HTTP requests adapters send: one report per request, with its outcome.

An adapter takes ``observe(provider, outcome)`` at construction (the daemon
passes ``Metrics.observe_provider``) and reports through a ``RequestCounter``
at the one place where it sends a request, so retried attempts and 429s count
one by one. Outcomes: ``ok`` for a successful answer (a 304 too),
``throttled`` when the provider asked to slow down (a 429, or whatever the
adapter reads as ``RateLimitedError``), ``error`` for everything else
(transport failures, refusals, answers that could not be read).

It must not import ``calsync.metrics`` or the scheduler: a plain callable is
all it knows. Reports carry the provider kind only, never an account, a URL
or an error text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from calsync.errors import RateLimitedError

OK = "ok"
THROTTLED = "throttled"
ERROR = "error"

Observe = Callable[[str, str], None]  # (provider, outcome)


def outcome(error: BaseException | None) -> str:
    """The outcome of a request that raised ``error`` (None: it succeeded)."""
    if error is None:
        return OK
    return THROTTLED if isinstance(error, RateLimitedError) else ERROR


class RequestCounter:
    """Reports each request of one provider kind (``google``, ``ics``, ...) to ``observe``."""

    def __init__(self, provider: str, observe: Observe | None = None) -> None:
        self._provider = provider
        self._observe = observe

    def add(self, result: str) -> None:
        """One request sent, with its outcome."""
        if self._observe is not None:
            self._observe(self._provider, result)

    @contextmanager
    def request(self) -> Iterator[None]:
        """Counts the block as one request: ``ok``, or the outcome of the error it raised.

        The block holds the request and the reading of its answer into calsync
        terms, so a refusal counts by the calsync error it became.
        """
        try:
            yield
        except Exception as err:
            self.add(outcome(err))
            raise
        self.add(OK)
