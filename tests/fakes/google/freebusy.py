"""freeBusy.query: merged busy blocks per calendar, with Google's per-calendar errors.

Busy = not cancelled, ``transparency`` opaque (the default), not declined by
the calendar's own attendee entry; recurring series are expanded; blocks are
clipped to the window and overlapping/adjacent blocks merged. Windows longer
than ``MAX_WINDOW`` (90 days, the ceiling cal.com measured; providers.md 1.6)
are a 400. The caller holds the lock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .errors import ApiError, bad_parameter, time_range_empty
from .store import CalendarState, EventStore
from .wire import format_time, parse_moment, parse_rfc3339, zone

MAX_WINDOW = timedelta(days=90)
MAX_CALENDARS = 50
MAX_GROUP = 100


def query(store: EventStore, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "badRequest", "Bad Request")
    time_min = _time(body, "timeMin")
    time_max = _time(body, "timeMax")
    if time_max <= time_min:
        raise time_range_empty()
    if time_max - time_min > MAX_WINDOW:
        raise ApiError(
            400, "timeRangeTooLong", "The requested time range is too long.", domain="calendar"
        )
    limit = _limit(body, "calendarExpansionMax", MAX_CALENDARS)
    _limit(body, "groupExpansionMax", MAX_GROUP)
    try:
        shown = zone(body.get("timeZone") or "UTC")
    except ValueError as err:
        raise bad_parameter("timeZone") from err
    calendars: dict[str, Any] = {}
    for position, item in enumerate(body.get("items") or []):
        calendar_id = item.get("id") if isinstance(item, dict) else None
        if not isinstance(calendar_id, str):
            raise ApiError(400, "required", "Missing calendar id.")
        if position >= limit:
            calendars[calendar_id] = _failed("tooManyCalendarsRequested")
            continue
        try:
            cal = store.calendar(calendar_id)
        except ApiError:
            calendars[calendar_id] = _failed("notFound")
            continue
        blocks = busy(store, cal, time_min, time_max)
        calendars[calendar_id] = {
            "busy": [
                {"start": format_time(s, shown), "end": format_time(e, shown)} for s, e in blocks
            ]
        }
    return {
        "kind": "calendar#freeBusy",
        "timeMin": body["timeMin"],
        "timeMax": body["timeMax"],
        "calendars": calendars,
    }


def busy(
    store: EventStore, cal: CalendarState, lo: datetime, hi: datetime
) -> list[tuple[datetime, datetime]]:
    """Merged busy intervals of ``cal`` within ``[lo, hi)``."""
    spans: list[tuple[datetime, datetime]] = []
    for record in list(cal.records.values()):
        res = record.resource
        if record.cancelled or not _blocks(res, cal.id):
            continue
        if record.is_master:
            overridden = cal.exceptions_of(record.id)
            spans += [
                (o.start, o.end)
                for o in store.occurrences(cal, record, lo, hi)
                if f"{record.id}_{o.suffix}" not in overridden
            ]
        else:
            if record.master_id is not None:
                master = cal.records.get(record.master_id)
                if master is None or master.cancelled:
                    continue
            spans.append(_span(res, cal.tz))
    clipped = sorted((max(s, lo), min(e, hi)) for s, e in spans if e > lo and s < hi and e > s)
    merged: list[tuple[datetime, datetime]] = []
    for start, end in clipped:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _blocks(resource: dict[str, Any], calendar_id: str) -> bool:
    if resource.get("transparency", "opaque") == "transparent":
        return False
    for attendee in resource.get("attendees") or []:
        mine = attendee.get("self") or attendee.get("email") == calendar_id
        if mine and attendee.get("responseStatus") == "declined":
            return False
    return True


def _span(resource: dict[str, Any], tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = parse_moment(resource["start"], "start").utc(tz)
    return start, parse_moment(resource["end"], "end").utc(tz)


def _time(body: dict[str, Any], name: str) -> datetime:
    raw = body.get(name)
    if raw is None:
        raise ApiError(400, "required", f"Missing {name} parameter.", location=name)
    try:
        return parse_rfc3339(raw) if isinstance(raw, str) else parse_rfc3339("")
    except ValueError as err:
        raise ApiError(400, "badRequest", "Bad Request") from err


def _limit(body: dict[str, Any], name: str, ceiling: int) -> int:
    value = body.get(name, ceiling)
    if isinstance(value, str) and value.isdigit():  # int32 fields may arrive as JSON strings
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= ceiling:
        raise bad_parameter(name)
    return value


def _failed(reason: str) -> dict[str, Any]:
    return {"busy": [], "errors": [{"domain": "global", "reason": reason}]}
