"""Write endpoints: holds, bookings (idempotent), cancel, reschedule; and admin sync."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from calsync.api.auth import require
from calsync.api.schemas import (
    ERRORS,
    BookingIn,
    BookingOut,
    BookingsOut,
    CancelIn,
    HoldIn,
    HoldOut,
    RescheduleIn,
    SyncOut,
)
from calsync.api.services import Services, services
from calsync.api.views import booking_view, hold_view
from calsync.errors import ConflictError, InputError, NotFoundError, SlotUnavailableError
from calsync.model import Attendee, Booking, Scope, TimeSpan, parse_instant
from calsync.scheduler.booking import BookingRequest

router = APIRouter(responses=ERRORS)
Svc = Annotated[Services, Depends(services)]
UTC = ZoneInfo("UTC")
READ = [Depends(require(Scope.READ))]
WRITE = [Depends(require(Scope.WRITE))]


@router.post("/v1/holds", status_code=201, dependencies=WRITE, response_model=HoldOut)
def create_hold(body: HoldIn, svc: Svc, http: Request) -> JSONResponse:
    resource = svc.availability.resource(body.resource)
    start = parse_instant(body.start, resource.timezone, name="start")
    duration = _minutes(body.duration)
    metrics = http.app.state.metrics
    try:
        hold = svc.bookings.hold(resource.id, start, duration, body.call_id)
    except (SlotUnavailableError, ConflictError, InputError):
        if metrics is not None:
            metrics.observe_hold("refused")
        raise
    if metrics is not None:
        metrics.observe_hold("created")
    return JSONResponse(hold_view(hold, resource.timezone), status_code=201)


@router.delete("/v1/holds/{hold_id}", status_code=204, dependencies=WRITE)
def release_hold(hold_id: str, svc: Svc) -> Response:
    svc.bookings.release(hold_id)
    return Response(status_code=204)


@router.post(
    "/v1/bookings",
    status_code=201,
    dependencies=WRITE,
    response_model=BookingOut,
    responses={200: {"model": BookingOut, "description": "the same key was used before"}},
)
def create_booking(
    body: BookingIn,
    svc: Svc,
    http: Request,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    if idempotency_key is None:
        raise InputError(
            "send an Idempotency-Key header (e.g. a UUID) so a retried request cannot book twice"
        )
    resource = svc.availability.resource(body.resource)
    request = BookingRequest(
        resource=resource.id,
        start=parse_instant(body.start, resource.timezone, name="start"),
        attendee=Attendee(body.attendee.name, body.attendee.phone, body.attendee.email),
        duration=_minutes(body.duration),
        hold_id=body.hold_id,
        call_id=body.call_id,
        notes=body.notes,
        metadata=body.metadata,
    )
    started = time.perf_counter()
    outcome = "failed"
    try:
        booking, created = svc.bookings.book(request, idempotency_key)
        outcome = "created" if created else "replayed"
    except (SlotUnavailableError, ConflictError, InputError):
        outcome = "refused"
        raise
    finally:
        metrics = http.app.state.metrics
        if metrics is not None:
            metrics.observe_booking(outcome, time.perf_counter() - started)
    return _booking(svc, booking, 201 if created else 200)


@router.get("/v1/bookings", dependencies=READ, response_model=BookingsOut)
def list_bookings(
    svc: Svc,
    resource: str | None = None,
    phone: Annotated[str | None, Query(max_length=40)] = None,
    start: str | None = None,
    end: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="at most this many, by start")] = 100,
) -> JSONResponse:
    zone = svc.availability.resource(resource).timezone if resource else UTC
    span = None
    if start or end:
        if not (start and end):
            raise InputError("give both start and end, or neither")
        first = parse_instant(start, zone, name="start")
        last = parse_instant(end, zone, name="end", end_of_day=True)
        if last <= first:
            raise InputError(f"end ({end}) must be after start ({start})")
        span = TimeSpan(first, last)
    found = svc.bookings.find(resource=resource, phone=phone, span=span, limit=limit)
    return JSONResponse({"bookings": [_view(svc, b) for b in found]})


@router.get("/v1/bookings/{booking_id}", dependencies=READ, response_model=BookingOut)
def get_booking(booking_id: str, svc: Svc) -> JSONResponse:
    return _booking(svc, svc.bookings.get(booking_id))


@router.post("/v1/bookings/{booking_id}/cancel", dependencies=WRITE, response_model=BookingOut)
def cancel_booking(booking_id: str, svc: Svc, body: CancelIn | None = None) -> JSONResponse:
    booking = svc.bookings.cancel(booking_id, body.reason if body else None)
    return _booking(svc, booking)


@router.post("/v1/bookings/{booking_id}/reschedule", dependencies=WRITE, response_model=BookingOut)
def reschedule_booking(booking_id: str, body: RescheduleIn, svc: Svc) -> JSONResponse:
    current = svc.bookings.get(booking_id)
    zone = svc.availability.resource(current.resource).timezone
    start = parse_instant(body.start, zone, name="start")
    return _booking(svc, svc.bookings.reschedule(booking_id, start))


@router.post(
    "/v1/sync",
    status_code=202,
    dependencies=[Depends(require(Scope.ADMIN))],
    response_model=SyncOut,
)
def sync_now(svc: Svc) -> JSONResponse:
    return JSONResponse({"calendars": svc.sync_now()}, status_code=202)


def _booking(svc: Services, booking: Booking, status: int = 200) -> JSONResponse:
    return JSONResponse(_view(svc, booking), status_code=status)


def _view(svc: Services, booking: Booking) -> dict[str, object]:
    try:
        zone = svc.availability.resource(booking.resource).timezone
    except NotFoundError:  # the resource left the config; its bookings stay readable
        zone = UTC
    return booking_view(booking, zone)


def _minutes(value: int | None) -> timedelta | None:
    return timedelta(minutes=value) if value is not None else None
