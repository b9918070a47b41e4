"""The JSON shape of a booking and a hold, as the HTTP API returns them and webhooks carry them.

Every time has an explicit offset: the resource's zone, plus UTC copies for
receivers that prefer them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from calsync.model import Booking, Hold, TimeSpan


def iso(value: datetime, tz: tzinfo) -> str:
    return value.astimezone(tz).isoformat()


def minutes(value: timedelta) -> int:
    return int(value.total_seconds() // 60)


def span_view(span: TimeSpan, tz: ZoneInfo) -> dict[str, str]:
    return {"start": iso(span.start, tz), "end": iso(span.end, tz)}


def booking_view(booking: Booking, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "id": booking.id,
        "resource": booking.resource,
        **span_view(booking.span, tz),
        "start_utc": iso(booking.span.start, UTC),
        "end_utc": iso(booking.span.end, UTC),
        "duration": minutes(booking.span.duration),
        "timezone": tz.key,
        "status": booking.status.value,
        "attendee": {
            "name": booking.attendee.name,
            "phone": booking.attendee.phone,
            "email": booking.attendee.email,
        },
        "notes": booking.notes,
        "metadata": dict(booking.metadata),
        "provider": dict(booking.provider),
        "call_id": booking.call_id,
        "cancel_reason": booking.cancel_reason,
        "created_at": iso(booking.created_at, tz),
        "updated_at": iso(booking.updated_at, tz),
    }


def hold_view(hold: Hold, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "id": hold.id,
        "resource": hold.resource,
        **span_view(hold.span, tz),
        "expires_at": iso(hold.expires_at, tz),
        "call_id": hold.call_id,
    }
