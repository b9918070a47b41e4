"""Lookups: free/busy and slots of a resource, answered from the store only.

No provider is called on this path. Each answer says how fresh it is:
``as_of`` is the oldest last successful sync among the calendars used, and
``stale`` is true when that is older than twice the sync interval (or a
calendar has never synced).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from calsync.clock import Clock
from calsync.errors import InputError, NotFoundError
from calsync.model import Resource, TimeSpan
from calsync.scheduler.busy import busy_spans
from calsync.scheduler.slots import find_slots
from calsync.store import Store

MAX_RANGE = timedelta(days=62)
FRESHNESS_CACHE = timedelta(seconds=1)  # as_of may lag a sync by this much


@dataclass(frozen=True, slots=True)
class Freshness:
    as_of: datetime | None
    stale: bool


@dataclass(frozen=True, slots=True)
class FreeBusy:
    resource: Resource
    span: TimeSpan
    busy: list[TimeSpan]
    freshness: Freshness


@dataclass(frozen=True, slots=True)
class Slots:
    resource: Resource
    span: TimeSpan
    duration: timedelta
    slots: list[TimeSpan]
    freshness: Freshness


class Availability:
    def __init__(
        self,
        store: Store,
        resources: Mapping[str, Resource],
        clock: Clock,
        *,
        sync_interval: timedelta,
    ) -> None:
        self._store = store
        self._resources = resources
        self._clock = clock
        self._stale_after = 2 * sync_interval
        self._last_sync: dict[str, tuple[datetime, list[datetime | None]]] = {}

    def use(self, resources: Mapping[str, Resource]) -> None:
        """Serve another set of resources from now on (a config reload)."""
        self._resources = resources
        self._last_sync = {}

    def resources(self) -> list[Resource]:
        return [self._resources[key] for key in sorted(self._resources)]

    def resource(self, resource_id: str) -> Resource:
        try:
            return self._resources[resource_id]
        except KeyError:
            known = ", ".join(sorted(self._resources)) or "none configured"
            raise NotFoundError(f"unknown resource {resource_id!r} (configured: {known})") from None

    def free_busy(self, resource_id: str, span: TimeSpan) -> FreeBusy:
        resource = self.resource(resource_id)
        _check_range(span)
        events = self._store.events.between(resource.check, span)
        busy = busy_spans(events, tentative_busy=resource.tentative_busy, within=span)
        return FreeBusy(resource, span, busy, self.freshness(resource))

    def slots(
        self,
        resource_id: str,
        span: TimeSpan,
        *,
        duration: timedelta | None = None,
        limit: int | None = None,
    ) -> Slots:
        resource = self.resource(resource_id)
        _check_range(span)
        length = duration or resource.rules.duration
        if length <= timedelta(0):
            raise InputError("duration must be positive")
        context = self.context(resource, span)
        now = self._clock.now()
        found = find_slots(
            resource.rules,
            span,
            now=now,
            busy=self.busy(resource, context),
            taken=self._store.bookings.taken(resource.id, context, now),
            duration=length,
            limit=limit,
        )
        return Slots(resource, span, length, found, self.freshness(resource))

    def context(self, resource: Resource, span: TimeSpan) -> TimeSpan:
        """``span`` widened to everything its rules look at: buffers and whole local days."""
        rules = resource.rules
        pad = timedelta(days=2) + rules.buffer_before + rules.buffer_after
        return span.widen(pad, pad)

    def busy(self, resource: Resource, span: TimeSpan) -> list[TimeSpan]:
        """Merged external busy time of the resource's calendars within ``span``."""
        events = self._store.events.between(resource.check, span)
        return busy_spans(events, tentative_busy=resource.tentative_busy)

    def freshness(self, resource: Resource) -> Freshness:
        if not resource.check:
            return Freshness(self._clock.now(), stale=False)
        successes = self._last_successes(resource)
        if not successes or None in successes:
            return Freshness(None, stale=True)
        as_of = min(s for s in successes if s is not None)
        return Freshness(as_of, stale=self._clock.now() - as_of > self._stale_after)

    def _last_successes(self, resource: Resource) -> list[datetime | None]:
        """The check calendars' last successful syncs, re-read at most once a second."""
        now = self._clock.now()
        cached = self._last_sync.get(resource.id)
        if cached is not None and timedelta(0) <= now - cached[0] < FRESHNESS_CACHE:
            return cached[1]
        successes = self._store.calendars.last_successes(resource.check)
        self._last_sync[resource.id] = (now, successes)
        return successes


def _check_range(span: TimeSpan) -> None:
    if span.duration > MAX_RANGE:
        raise InputError(
            f"the range is {span.duration.days} days long; ask for at most "
            f"{MAX_RANGE.days} days at a time"
        )
