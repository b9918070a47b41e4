"""Microsoft Graph JSON <-> domain types. No HTTP here.

The busy-relevant fields as Graph expresses them: ``showAs`` (busy and oof
are opaque; tentative is opaque with status tentative, so the resource's
``tentative_busy`` decides; free, workingElsewhere and unknown never
block), ``isCancelled`` (status cancelled), the calendar owner's own
``responseStatus`` (declined never blocks) and ``isAllDay``.

Times are asked for in UTC (``Prefer: outlook.timezone="UTC"``) but read
robustly: ``start``/``end`` carry a wall time without offset plus a zone
that may be ``UTC``, a Windows zone id (mapped through CLDR's
windowsZones table as shipped with icalendar) or an IANA name. All-day
events are the exception: Graph returns their bounds as midnight whatever
zone was asked for (they float; Microsoft's answer in
microsoftgraph/microsoft-graph-docs#1802, reproduced by the fake), so only
their dates count and become whole days in the calendar's zone.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from calsync.errors import ProviderDataError
from calsync.model import (
    Event,
    EventStatus,
    TimeSpan,
    Transparency,
    as_utc,
    local_span_of_days,
)
from calsync.providers.base import BookingDraft, CalendarInfo

log = logging.getLogger(__name__)
PRIMARY = "primary"  # calsync's name for the mailbox's default calendar
NEVER_BUSY = frozenset({"free", "workingElsewhere", "unknown"})
NEEDED = ("start", "end", "isAllDay", "showAs", "isCancelled", "responseStatus")
_WINDOWS: dict[str, str] = {str(k).lower(): str(v) for k, v in WINDOWS_TO_OLSON.items()}
_TRANSACTIONS = uuid.UUID("6f1c3f0e-5b7a-4c44-9d1e-0c4a1d2f7a11")  # namespace for transactionId


# --- calendars ----------------------------------------------------------------------------


def calendar_info(item: Mapping[str, Any]) -> CalendarInfo:
    """A ``/me/calendars`` entry; the default calendar is listed as ``primary``."""
    default = bool(item.get("isDefaultCalendar"))
    return CalendarInfo(
        id=PRIMARY if default else item_id(item),
        name=str(item.get("name") or item_id(item)),
        access="writer" if item.get("canEdit") else "reader",
        primary=default,
    )


# --- events -------------------------------------------------------------------------------


def is_removed(item: Mapping[str, Any]) -> bool:
    return "@removed" in item


def is_partial(item: Mapping[str, Any]) -> bool:
    """A delta entry carrying only its id and the properties that changed."""
    return any(name not in item for name in NEEDED)


def item_id(item: Any) -> str:
    """The ``id`` of a Graph entry; an entry without one is a data error."""
    if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
        raise ProviderDataError(f"Microsoft Graph sent an entry without an id: {item!r:.200}")
    return str(item["id"])


def to_event(item: Mapping[str, Any], calendar_zone: ZoneInfo) -> Event | None:
    """The domain event of one full item; None when it covers no time (zero length)."""
    try:
        span, all_day = _span(item, calendar_zone)
        modified = item.get("lastModifiedDateTime")
        updated = instant(modified) if modified else None
    except (KeyError, ValueError, TypeError) as err:
        raise ProviderDataError(
            f"Outlook event {item.get('id')!r} has unreadable times: {err}"
        ) from err
    if span is None:
        return None
    show_as = item.get("showAs") or "busy"
    status = EventStatus.TENTATIVE if show_as == "tentative" else EventStatus.CONFIRMED
    if item.get("isCancelled"):
        status = EventStatus.CANCELLED
    response = (item.get("responseStatus") or {}).get("response")
    return Event(
        provider_id=item_id(item),
        span=span,
        all_day=all_day,
        status=status,
        transparency=Transparency.TRANSPARENT if show_as in NEVER_BUSY else Transparency.OPAQUE,
        declined=response == "declined",
        etag=item.get("@odata.etag") or item.get("changeKey"),
        updated=updated,
    )


def blocks(event: Event) -> bool:
    """Busy for a live re-check: not cancelled, not declined, opaque (tentative included)."""
    return (
        event.status is not EventStatus.CANCELLED
        and not event.declined
        and event.transparency is Transparency.OPAQUE
    )


def _span(item: Mapping[str, Any], calendar_zone: ZoneInfo) -> tuple[TimeSpan | None, bool]:
    start, end = item["start"], item["end"]
    if item.get("isAllDay"):
        first = _day(start, calendar_zone, end=False)
        last = _day(end, calendar_zone, end=True)
        if last <= first:
            return None, True
        return local_span_of_days(first, last, calendar_zone), True
    begins, ends = wall(start), wall(end)
    if ends <= begins:
        return None, False
    return TimeSpan(begins, ends), False


def wall(value: Mapping[str, Any]) -> datetime:
    """A ``dateTimeTimeZone`` as a UTC instant (an offset in ``dateTime`` wins over the zone)."""
    parsed = datetime.fromisoformat(str(value["dateTime"]))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone_named(value.get("timeZone")))
    return as_utc(parsed)


def _day(value: Mapping[str, Any], calendar_zone: ZoneInfo, *, end: bool) -> date:
    """The date of an all-day bound: midnight as sent, else the instant's day in the calendar."""
    parsed = datetime.fromisoformat(str(value["dateTime"]))
    if parsed.tzinfo is None and parsed.time() == time():
        return parsed.date()
    local = wall(value).astimezone(calendar_zone)
    past_midnight = local.time() != time()
    return local.date() + timedelta(days=1) if end and past_midnight else local.date()


def zone_named(name: Any) -> ZoneInfo:
    """``UTC``, a Windows zone id (CLDR) or an IANA name; anything else is read as UTC."""
    text = str(name or "UTC").strip()
    iana = _WINDOWS.get(text.lower(), text)
    if iana.upper() == "UTC":
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("outlook: unknown time zone %r read as UTC", text)
        return ZoneInfo("UTC")


def instant(text: str) -> datetime:
    """A Graph timestamp (``2026-03-02T09:00:00.1234567Z``) as a UTC instant."""
    parsed = datetime.fromisoformat(text)
    return as_utc(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


def query_time(value: datetime) -> str:
    """A query-string instant: UTC with ``Z`` (no ``+``, which a URL would turn into a space)."""
    return f"{value.astimezone(UTC):%Y-%m-%dT%H:%M:%S}Z"


# --- writes -------------------------------------------------------------------------------


def transaction_id(booking_id: str) -> str:
    """Graph's idempotency key for creating a booking's event: the same booking, the same id."""
    return str(uuid.uuid5(_TRANSACTIONS, f"calsync:{booking_id}"))


def booking_body(draft: BookingDraft) -> dict[str, Any]:
    return {
        "subject": draft.attendee.name,
        "body": {"contentType": "text", "content": draft.description()},
        **time_body(draft),
        "showAs": "busy",
        "transactionId": transaction_id(draft.booking_id),
    }


def time_body(draft: BookingDraft) -> dict[str, Any]:
    return {"start": utc_wall(draft.span.start), "end": utc_wall(draft.span.end)}


def utc_wall(value: datetime) -> dict[str, str]:
    """A ``dateTimeTimeZone`` in UTC: wall time without offset, zone ``UTC``."""
    return {"dateTime": f"{value.astimezone(UTC):%Y-%m-%dT%H:%M:%S}", "timeZone": "UTC"}
