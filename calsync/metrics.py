"""Prometheus metrics: every calsync metric, in one registry owned by ``Metrics``.

The daemon builds one ``Metrics`` and hands it to the parts that observe
something (sync engine, lookups, bookings, provider calls, webhook
deliveries); each calls one tiny ``observe_*`` method. Sync age, event counts
and webhook backlog are not pushed by anyone: a collector reads them from
the store when ``/metrics`` is scraped, so there is no background thread and
several daemons on one database all report the same, shared truth.

It must not use prometheus_client's global default registry (tests build
fresh ``Metrics``), start threads, or put secrets in labels: an endpoint
URL label carries no userinfo, query or fragment.
"""

from __future__ import annotations

import logging
import math
import platform
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from prometheus_client import CollectorRegistry, Counter, Histogram, Info, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from calsync import __version__
from calsync.clock import Clock
from calsync.errors import CalsyncError
from calsync.model import CalendarRef

if TYPE_CHECKING:
    from calsync.store import Store

log = logging.getLogger(__name__)

# the classic text format: every name below is valid in it, and every Prometheus parses it
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

SYNC_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
LOOKUP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
BOOKING_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)

LOOKUP_KINDS = ("slots", "freebusy")
BOOKING_OUTCOMES = ("created", "replayed", "refused", "failed")
THROTTLED = "throttled"  # the provider outcome that also counts as a throttle


class Metrics:
    """The metric objects and the methods the rest of calsync observes through."""

    def __init__(self, store: Store, clock: Clock, *, endpoints: Sequence[str] = ()) -> None:
        self.registry = CollectorRegistry()
        self._store_collector = StoreCollector(store, clock, endpoints)
        self._define_sync_and_providers()
        self._define_requests()
        self._define_webhooks()
        self._define_voice()
        Info("calsync_build", "The calsync version running.", registry=self.registry).info(
            {"version": __version__, "python": platform.python_version()}
        )
        self.registry.register(self._store_collector)

    def _define_sync_and_providers(self) -> None:
        self.sync_seconds = Histogram(
            "calsync_sync_seconds", "Duration of one sync pass over one calendar.",
            ["calendar"], buckets=SYNC_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.sync_errors = Counter(
            "calsync_sync_errors", "Failed sync passes, by calendar and error code.",
            ["calendar", "code"], registry=self.registry,
        )  # fmt: skip
        self.provider_requests = Counter(
            "calsync_provider_requests", "Requests to calendar providers, by outcome.",
            ["provider", "outcome"], registry=self.registry,
        )  # fmt: skip
        self.provider_throttled = Counter(
            "calsync_provider_throttled", "Provider requests refused for rate limiting.",
            ["provider"], registry=self.registry,
        )  # fmt: skip

    def _define_requests(self) -> None:
        self.lookup_seconds = Histogram(
            "calsync_lookup_seconds", "Duration of a free/busy or slots lookup.",
            ["kind"], buckets=LOOKUP_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.booking_seconds = Histogram(
            "calsync_booking_seconds", "Duration of a booking request, by outcome.",
            ["outcome"], buckets=BOOKING_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.bookings = Counter(
            "calsync_bookings", "Booking requests, by outcome.",
            ["outcome"], registry=self.registry,
        )  # fmt: skip
        self.holds = Counter(
            "calsync_holds", "Hold requests, by outcome.", ["outcome"], registry=self.registry
        )
        for kind in LOOKUP_KINDS:  # series exist from the start, so rate() sees the first one
            self.lookup_seconds.labels(kind)
        for outcome in BOOKING_OUTCOMES:
            self.bookings.labels(outcome)

    def _define_webhooks(self) -> None:
        self.deliveries = Counter(
            "calsync_webhook_deliveries", "Webhook delivery attempts, by endpoint and outcome.",
            ["endpoint", "outcome"], registry=self.registry,
        )  # fmt: skip

    def _define_voice(self) -> None:
        self.voice_seconds = Histogram(
            "calsync_voice_tool_seconds",
            "Duration of a voice tool call, by platform, tool and outcome (ok or an error code).",
            ["platform", "tool", "outcome"], buckets=BOOKING_BUCKETS, registry=self.registry,
        )  # fmt: skip

    # --- what the rest of calsync calls -----------------------------------------------

    def observe_sync(self, calendar: str, seconds: float, error_code: str | None) -> None:
        """One pass over ``calendar`` (``account:calendar``); ``error_code`` when it failed."""
        self.sync_seconds.labels(calendar).observe(seconds)
        if error_code is not None:
            self.sync_errors.labels(calendar, error_code).inc()

    def observe_lookup(self, kind: str, seconds: float) -> None:
        """One answered lookup; ``kind`` is ``slots`` or ``freebusy``."""
        self.lookup_seconds.labels(kind).observe(seconds)

    def observe_booking(self, outcome: str, seconds: float) -> None:
        """One booking request: ``created``, ``replayed``, ``refused`` or ``failed``."""
        self.bookings.labels(outcome).inc()
        self.booking_seconds.labels(outcome).observe(seconds)

    def observe_hold(self, outcome: str) -> None:
        """One hold request: ``created``, ``refused`` (slot taken or rules) or ``failed``."""
        self.holds.labels(outcome).inc()

    def observe_provider(self, provider: str, outcome: str) -> None:
        """One HTTP request to a provider; outcome ``throttled`` also counts as a throttle."""
        self.provider_requests.labels(provider, outcome).inc()
        if outcome == THROTTLED:
            self.provider_throttled.labels(provider).inc()

    def observe_delivery(self, endpoint: str, outcome: str) -> None:
        """One attempt: ``delivered``, ``retry``, ``failed`` (gave up) or ``disabled``.

        ``endpoint`` is the URL as configured; userinfo and query are stripped here.
        """
        self.deliveries.labels(endpoint_label(endpoint), outcome).inc()

    def observe_voice(self, platform: str, tool: str, outcome: str, seconds: float) -> None:
        """One voice tool call (``tool`` is one of calsync's tools, or ``unknown``)."""
        self.voice_seconds.labels(platform, tool, outcome).observe(seconds)

    def set_calendars(self, refs: Collection[CalendarRef]) -> None:
        """The calendars the config checks: only theirs are reported (after a config reload)."""
        self._store_collector.calendars = frozenset(refs)

    def set_endpoints(self, urls: Sequence[str]) -> None:
        """The configured webhook URLs whose backlog is reported (after a config reload)."""
        self._store_collector.endpoints = tuple(urls)

    def render(self) -> tuple[bytes, str]:
        """The text exposition of every metric, and its content type."""
        return generate_latest(_WithoutCreated(self.registry)), CONTENT_TYPE


class StoreCollector(Collector):
    """Gauges read from the store at scrape time: sync age, events, backlog, store health."""

    def __init__(self, store: Store, clock: Clock, endpoints: Sequence[str]) -> None:
        self._store = store
        self._clock = clock
        self.endpoints = tuple(endpoints)
        self.calendars: frozenset[CalendarRef] | None = None  # None: every calendar stored

    def describe(self) -> Iterable[Metric]:
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        age, events, backlog, store_up = self._families()
        try:
            self._add_calendars(age, events)
            self._add_backlog(backlog)
        except CalsyncError as err:
            log.warning("metrics could not read the store: %s", err.message)
            store_up.add_metric([], 0.0)
            return [store_up]
        store_up.add_metric([], 1.0)
        return [age, events, backlog, store_up]

    def _add_calendars(self, age: GaugeMetricFamily, events: GaugeMetricFamily) -> None:
        now = self._clock.now()
        for status in self._store.calendars.statuses():
            if self.calendars is not None and not status.ref.covered_by(self.calendars):
                continue
            calendar = str(status.ref)
            last = status.last_success
            age.add_metric([calendar], (now - last).total_seconds() if last else math.inf)
            events.add_metric([calendar], float(status.events))

    def _add_backlog(self, backlog: GaugeMetricFamily) -> None:
        totals: dict[str, int] = {}  # URLs differing only in secrets share one label
        for state in self._store.outbox.endpoints(self.endpoints):
            label = endpoint_label(state.url)
            totals[label] = totals.get(label, 0) + state.backlog
        for label, count in totals.items():
            backlog.add_metric([label], float(count))

    def _families(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "calsync_sync_age_seconds",
            "Seconds since the calendar last synced successfully (+Inf: never).",
            labels=["calendar"],
        )
        yield GaugeMetricFamily(
            "calsync_calendar_events", "Events of the calendar in the cache.", labels=["calendar"]
        )
        yield GaugeMetricFamily(
            "calsync_outbox_backlog",
            "Webhook deliveries waiting to be sent, by endpoint.",
            labels=["endpoint"],
        )
        yield GaugeMetricFamily(
            "calsync_store_up", "1 when the store answered this scrape's reads, else 0."
        )


class _WithoutCreated(Collector):
    """The registry without the ``*_created`` timestamps of counters and histograms: the
    classic text format shows each as an extra gauge series that nobody queries."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        for metric in self._registry.collect():  # fresh objects on every collect
            if metric.type in ("counter", "histogram", "summary"):
                metric.samples = [s for s in metric.samples if not s.name.endswith("_created")]
            yield metric


def endpoint_label(url: str) -> str:
    """``url`` fit for a label: scheme, host, port and path; no userinfo, query or fragment."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "invalid-url"
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
