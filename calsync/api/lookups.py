"""Read endpoints: resources, free/busy, slots and the bookings feed. Answers come from the
store only; no provider is called on this path.

The handlers are ``async`` although they read the store synchronously: a
lookup is a millisecond of CPU plus local reads that never wait on a lock
(SQLite WAL readers, PostgreSQL MVCC), so running it on the event loop is
faster than a thread hop, and it keeps many concurrent lookups from
fighting over the GIL. Writes, which may wait on locks, run in threads.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from calsync.api.auth import require, require_feed
from calsync.api.schemas import ERRORS, FreeBusyOut, ResourceOut, ResourcesOut, SlotsOut
from calsync.api.services import Services, services
from calsync.api.views import freebusy_view, resource_view, slots_view
from calsync.errors import InputError
from calsync.model import Resource, Scope, TimeSpan, parse_instant

router = APIRouter(
    prefix="/v1/resources", dependencies=[Depends(require(Scope.READ))], responses=ERRORS
)
feed_router = APIRouter(prefix="/v1/resources")
Svc = Annotated[Services, Depends(services)]
DEFAULT_RANGE = timedelta(days=7)


@router.get("", response_model=ResourcesOut)
async def list_resources(svc: Svc) -> JSONResponse:
    resources = svc.availability.resources()
    return JSONResponse({"resources": [resource_view(r) for r in resources]})


@router.get("/{resource_id}", response_model=ResourceOut)
async def get_resource(resource_id: str, svc: Svc) -> JSONResponse:
    return JSONResponse(resource_view(svc.availability.resource(resource_id)))


@router.get("/{resource_id}/freebusy", response_model=FreeBusyOut)
async def freebusy(
    resource_id: str,
    svc: Svc,
    request: Request,
    start: Annotated[str | None, Query(description="ISO 8601; default now")] = None,
    end: Annotated[str | None, Query(description="ISO 8601; default start + 7 days")] = None,
    tz: Annotated[str | None, Query(description="IANA zone of returned times")] = None,
) -> JSONResponse:
    resource = svc.availability.resource(resource_id)
    zone = zone_or(resource, tz)
    with observed(request, "freebusy"):
        result = svc.availability.free_busy(resource_id, span_of(svc, resource, zone, start, end))
    return JSONResponse(freebusy_view(result, zone))


@router.get("/{resource_id}/slots", response_model=SlotsOut)
async def slots(
    resource_id: str,
    svc: Svc,
    request: Request,
    start: Annotated[str | None, Query(description="ISO 8601; default now")] = None,
    end: Annotated[str | None, Query(description="ISO 8601; default start + 7 days")] = None,
    duration: Annotated[int | None, Query(ge=1, le=24 * 60, description="minutes")] = None,
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
    lang: Annotated[str | None, Query(description="language of spoken labels")] = None,
    tz: Annotated[str | None, Query(description="IANA zone of returned times")] = None,
) -> JSONResponse:
    resource = svc.availability.resource(resource_id)
    zone = zone_or(resource, tz)
    length = timedelta(minutes=duration) if duration else None
    span = span_of(svc, resource, zone, start, end)
    with observed(request, "slots"):
        result = svc.availability.slots(resource_id, span, duration=length, limit=limit)
    now = svc.clock.now()
    return JSONResponse(slots_view(result, now=now, tz=zone, language=lang))


@feed_router.get(
    "/{resource_id}/calendar.ics",
    dependencies=[Depends(require_feed())],
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}}, **ERRORS},
)
def calendar_feed(resource_id: str, svc: Svc, request: Request) -> Response:
    """The resource's bookings as an ICS feed, for subscribing in any calendar app."""
    resource = svc.availability.resource(resource_id)
    now = svc.clock.now()
    span = TimeSpan(
        now - timedelta(days=30), now + timedelta(days=resource.rules.max_days_ahead + 1)
    )
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//calsync//bookings//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", resource.name)
    calendar.add("x-wr-timezone", resource.timezone.key)
    for booking in svc.bookings.find(resource=resource_id, span=span):
        event = icalendar.Event()
        event.add("uid", f"{booking.id}@calsync")
        event.add("dtstamp", booking.updated_at)
        event.add("dtstart", booking.span.start)
        event.add("dtend", booking.span.end)
        event.add("summary", booking.attendee.name)
        details = [d for d in (booking.attendee.phone, booking.attendee.email, booking.notes) if d]
        if details:
            event.add("description", "\n".join(details))
        event.add("status", "CANCELLED" if booking.status.value == "cancelled" else "CONFIRMED")
        calendar.add_component(event)
    return Response(calendar.to_ical(), media_type="text/calendar; charset=utf-8")


@contextmanager
def observed(request: Request, kind: str) -> Iterator[None]:
    """Time a lookup for /metrics (when metrics are on)."""
    started = time.perf_counter()
    yield
    metrics = request.app.state.metrics
    if metrics is not None:
        metrics.observe_lookup(kind, time.perf_counter() - started)


def zone_or(resource: Resource, name: str | None, *, key: str = "tz") -> ZoneInfo:
    """The zone called ``name``, or the resource's; ``key`` names the argument in errors."""
    if not name:
        return resource.timezone
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            f"{key}: unknown time zone {name!r} (use an IANA name like Europe/Vienna)"
        ) from None


def span_of(
    svc: Services, resource: Resource, zone: ZoneInfo, start: str | None, end: str | None
) -> TimeSpan:
    first = parse_instant(start, zone, name="start") if start else svc.clock.now()
    last = parse_instant(end, zone, name="end", end_of_day=True) if end else first + DEFAULT_RANGE
    if last <= first:
        raise InputError(f"end ({end}) must be after start ({start or 'now'})")
    return TimeSpan(first, last)
