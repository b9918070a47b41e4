"""Google Calendar v3 JSON <-> domain types. No HTTP here.

The busy rules of DESIGN.md as Google expresses them: ``transparency``
(default opaque), ``status`` (cancelled items are deletions), the calendar
owner's own ``responseStatus`` (declined never blocks), ``eventType``
(``workingLocation`` never blocks; ``outOfOffice`` and ``focusTime`` follow
their transparency, which Google sets to opaque), and all-day events
(``start.date``) covering whole days in the calendar's zone.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from calsync.errors import ProviderDataError
from calsync.model import (
    Event,
    EventStatus,
    TimeSpan,
    Transparency,
    as_utc,
    local_span_of_days,
)
from calsync.providers.base import BookingDraft

NEVER_BUSY_TYPES = frozenset({"workingLocation", "birthday"})


def zone(name: str | None, fallback: ZoneInfo) -> ZoneInfo:
    try:
        return ZoneInfo(name) if name else fallback
    except (ZoneInfoNotFoundError, ValueError):
        return fallback


def is_deleted(item: dict[str, Any]) -> bool:
    return item.get("status") == "cancelled"


def to_event(item: dict[str, Any], calendar_zone: ZoneInfo) -> Event | None:
    """The domain event of one (non-cancelled) item; None for one without a usable time."""
    try:
        span, all_day = _span(item, calendar_zone)
    except (KeyError, ValueError, TypeError) as err:
        raise ProviderDataError(
            f"Google event {item.get('id')!r} has unreadable times: {err}"
        ) from err
    if span is None:
        return None
    opaque = item.get("transparency", "opaque") == "opaque"
    if item.get("eventType") in NEVER_BUSY_TYPES:
        opaque = False
    return Event(
        provider_id=item["id"],
        span=span,
        all_day=all_day,
        status=EventStatus.TENTATIVE
        if item.get("status") == "tentative"
        else EventStatus.CONFIRMED,
        transparency=Transparency.OPAQUE if opaque else Transparency.TRANSPARENT,
        declined=_declined_by_owner(item),
        etag=item.get("etag"),
        updated=instant(item["updated"]) if item.get("updated") else None,
    )


def _span(item: dict[str, Any], calendar_zone: ZoneInfo) -> tuple[TimeSpan | None, bool]:
    start, end = item["start"], item["end"]
    if "date" in start:
        first, last = date.fromisoformat(start["date"]), date.fromisoformat(end["date"])
        if last <= first:
            return None, True
        return local_span_of_days(first, last, calendar_zone), True
    begins, ends = instant(start["dateTime"]), instant(end["dateTime"])
    if ends <= begins:
        return None, False
    return TimeSpan(begins, ends), False


def instant(text: str) -> datetime:
    return as_utc(datetime.fromisoformat(text))


def _declined_by_owner(item: dict[str, Any]) -> bool:
    return any(
        attendee.get("self") and attendee.get("responseStatus") == "declined"
        for attendee in item.get("attendees", ())
    )


def event_id(booking_id: str) -> str:
    """A deterministic Google event id for a booking: base32hex characters only (a-v, 0-9)."""
    return hashlib.sha256(f"calsync:{booking_id}".encode()).hexdigest()[:32]


def booking_body(draft: BookingDraft) -> dict[str, Any]:
    return {
        "id": event_id(draft.booking_id),
        "summary": draft.attendee.name,
        "description": draft.description(),
        **time_body(draft),
        "transparency": "opaque",
        "extendedProperties": {"private": {"calsync_booking_id": draft.booking_id}},
    }


def time_body(draft: BookingDraft) -> dict[str, Any]:
    return {
        "start": {"dateTime": draft.span.start.isoformat(), "timeZone": draft.timezone},
        "end": {"dateTime": draft.span.end.isoformat(), "timeZone": draft.timezone},
    }
