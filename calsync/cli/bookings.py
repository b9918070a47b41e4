"""Booking commands: ``book`` and ``cancel``, through the same service as the HTTP API."""

from __future__ import annotations

import uuid
from datetime import timedelta
from zoneinfo import ZoneInfo

import click

from calsync.api.views import booking_view
from calsync.cli._app import Runtime, main, pass_runtime, print_json
from calsync.cli.lookups import when
from calsync.errors import SlotUnavailableError
from calsync.model import Attendee, Booking, TimeSpan, parse_instant
from calsync.scheduler.booking import BookingRequest


@main.command()
@click.argument("resource")
@click.option("--start", required=True, help="ISO 8601; without offset: the resource's zone.")
@click.option("--name", required=True, help="The attendee's name.")
@click.option("--phone", help="Phone number (E.164, or national in the resource's country).")
@click.option("--email", help="Email address.")
@click.option("--duration", type=click.IntRange(min=1), metavar="MIN", help="Minutes.")
@click.option("--notes", help="Free text stored with the booking.")
@click.option("--idempotency-key", help="Retry-safe key (default: a new one).")
@click.option("--json", "as_json", is_flag=True, help="Print the HTTP API's JSON.")
@pass_runtime
def book(
    rt: Runtime,
    resource: str,
    start: str,
    name: str,
    phone: str | None,
    email: str | None,
    duration: int | None,
    notes: str | None,
    idempotency_key: str | None,
    as_json: bool,
) -> None:
    """Book RESOURCE at --start, through the same rules as the HTTP API."""
    res = rt.availability.resource(resource)
    request = BookingRequest(
        resource=res.id,
        start=parse_instant(start, res.timezone, name="--start"),
        attendee=Attendee(name, phone, email),
        duration=timedelta(minutes=duration) if duration else None,
        notes=notes,
    )
    try:
        booking, _ = rt.bookings.book(request, idempotency_key or str(uuid.uuid4()))
    except SlotUnavailableError as err:
        hints = [when(s, res.timezone) for s in err.alternatives if isinstance(s, TimeSpan)]
        raise SlotUnavailableError(
            err.message + (f"; free nearby: {', '.join(hints)}" if hints else "")
        ) from err
    _print_booking(booking, res.timezone, as_json)


@main.command()
@click.argument("booking_id")
@click.option("--reason", help="Why (stored with the booking).")
@click.option("--json", "as_json", is_flag=True, help="Print the HTTP API's JSON.")
@pass_runtime
def cancel(rt: Runtime, booking_id: str, reason: str | None, as_json: bool) -> None:
    """Cancel a booking (cancelling twice is harmless)."""
    booking = rt.bookings.cancel(booking_id, reason)
    _print_booking(booking, rt.availability.resource(booking.resource).timezone, as_json)


def _print_booking(booking: Booking, zone: ZoneInfo, as_json: bool) -> None:
    if as_json:
        print_json(booking_view(booking, zone))
        return
    who = booking.attendee.name + (f" ({booking.attendee.phone})" if booking.attendee.phone else "")
    click.echo(
        f"{booking.status.value} {booking.id}: {booking.resource} "
        f"{when(booking.span, zone)} for {who}"
    )
