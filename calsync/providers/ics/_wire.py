"""ICS text -> domain ``Event``s: parsing, time zone compat, recurrence expansion.

Owns everything that knows iCalendar: checking that a feed is a readable
VCALENDAR, resolving TZIDs (IANA, Windows names, the feed's own VTIMEZONE
blocks, unknown -> floating), expanding RRULE/RDATE/EXDATE/RECURRENCE-ID with
``recurring_ical_events`` inside a bounded window, and mapping each instance
to a frozen ``Event``. Every library error becomes ``ProviderDataError``.

Must not do I/O: no HTTP, no files, no cursors (that is ``provider.py``).

Choices (see the tests for each):
- ``STATUS:CANCELLED`` events and instances are emitted with status
  cancelled (the busy rule skips them), so a cancelled instance keeps its id.
- A DATE-TIME start without DTEND/DURATION lasts zero time (RFC 5545) and is
  skipped, as is every instance whose end is not after its start; an event
  whose DTEND/DURATION lies before its start is dropped. An all-day event with
  DTEND equal to DTSTART (a common producer bug) lasts one day.
- Floating times (and TZIDs nobody can resolve) are read in the calendar's
  zone: X-WR-TIMEZONE, else the default zone given by the caller.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import recurring_ical_events
from icalendar.cal import Component
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from calsync.errors import ProviderDataError
from calsync.model import Event, EventStatus, TimeSpan, Transparency, day_start

# Properties whose damage changes busy time: a broken one makes the feed unreadable.
_TIME_PROPERTIES = frozenset(
    {"DTSTART", "DTEND", "DURATION", "RRULE", "RDATE", "EXDATE", "RECURRENCE-ID"}
)
_CHECKED_PROPERTIES = _TIME_PROPERTIES | {"STATUS", "TRANSP", "UID", "TZID", "TZOFFSETTO"}
_ZONED_PROPERTIES = ("DTSTART", "DTEND", "RECURRENCE-ID", "RDATE", "EXDATE")
_LIBRARY_ERRORS = (ValueError, LookupError, TypeError, OverflowError)
_MAX_DETAIL = 160


class Feed:
    """One parsed, checked VCALENDAR. Build it with :func:`parse_feed`."""

    def __init__(self, calendar: icalendar.Calendar) -> None:
        self._calendar = calendar
        self.name: str | None = _text(calendar.get("X-WR-CALNAME"))
        self.timezone: ZoneInfo | None = _named_zone(_text(calendar.get("X-WR-TIMEZONE")))

    def events(self, window: TimeSpan, default_timezone: ZoneInfo) -> list[Event]:
        """Every event instance overlapping ``window``, in no particular order."""
        zone = self.timezone or default_timezone
        recurring = _recurring_uids(self._calendar)
        start, end = window.start.astimezone(zone), window.end.astimezone(zone)
        try:
            with _quiet_library_warnings():
                query = recurring_ical_events.of(self._calendar)
                instances = query.between(start, end)
                return _to_events(instances, window, zone, recurring)
        except _LIBRARY_ERRORS as err:
            raise ProviderDataError(f"cannot expand the ICS feed: {_detail(err)}") from err


def parse_feed(data: bytes) -> Feed:
    """Parse and check ICS bytes; raises ``ProviderDataError`` for anything unreadable."""
    try:
        with _quiet_library_warnings():
            component = icalendar.Calendar.from_ical(data)
    except _LIBRARY_ERRORS as err:
        raise ProviderDataError(_unparseable(data, err)) from err
    if not isinstance(component, icalendar.Calendar) or component.name != "VCALENDAR":
        found = getattr(component, "name", "") or "nothing"
        raise ProviderDataError(f"not an iCalendar feed: no VCALENDAR (found {found})")
    _check_components(component)
    try:
        with _quiet_library_warnings():
            _drop_inverted_events(component)
            _name_anonymous_events(component)
            _rebind_zones(component)
            _normalise_wr_timezone(component)
    except _LIBRARY_ERRORS as err:
        raise ProviderDataError(f"malformed ICS feed: {_detail(err)}") from err
    return Feed(component)


def _unparseable(data: bytes, err: Exception) -> str:
    """Why icalendar refused ``data``, in words for the admin."""
    text = data.upper()
    if b"BEGIN:VCALENDAR" not in text:
        return "not an iCalendar feed: " + (
            "the body is empty" if not text.strip() else _detail(err)
        )
    if b"END:VCALENDAR" not in text:
        return "malformed ICS feed: END:VCALENDAR is missing (a truncated download?)"
    return f"malformed ICS feed: {_detail(err)}"


# --- checks and repairs before expansion -------------------------------------------


def _check_components(calendar: icalendar.Calendar) -> None:
    """Refuse broken content lines and broken time-relevant properties, saying where."""
    for component in calendar.walk():
        for prop, message in component.errors:
            if prop is None or prop in _CHECKED_PROPERTIES:
                what = f"{prop}: " if prop else "unreadable line: "
                raise ProviderDataError(
                    f"malformed ICS feed at {_where(component)}: {what}{_clip(message)}"
                )
    for event in calendar.walk("VEVENT"):
        if "DTSTART" not in event:
            raise ProviderDataError(f"malformed ICS feed at {_where(event)}: no DTSTART")


def _where(component: Component) -> str:
    uid = component.get("UID") or component.get("TZID")
    return f"{component.name} {_clip(str(uid), 80)}" if uid else str(component.name)


def _drop_inverted_events(calendar: icalendar.Calendar) -> None:
    """Remove VEVENTs whose end lies before their start (the library would swap them)."""
    calendar.subcomponents = [c for c in calendar.subcomponents if not _is_inverted(c)]


def _is_inverted(component: Any) -> bool:
    if component.name != "VEVENT":
        return False
    if "DURATION" in component:
        duration = component["DURATION"].dt
        return isinstance(duration, timedelta) and duration < timedelta(0)
    if "DTEND" not in component:
        return False
    start, end = component["DTSTART"].dt, component["DTEND"].dt
    return _instant(end, UTC) < _instant(start, UTC)


def _name_anonymous_events(calendar: icalendar.Calendar) -> None:
    """Give VEVENTs without UID a stable one derived from their text."""
    for event in calendar.walk("VEVENT"):
        if not event.get("UID"):
            digest = hashlib.sha256(event.to_ical()).hexdigest()[:20]
            event["UID"] = f"calsync-nouid-{digest}"


def _recurring_uids(calendar: icalendar.Calendar) -> set[str]:
    """UIDs that name a series: their instances get ``uid/recurrence-id`` ids."""
    markers = ("RRULE", "RDATE", "RECURRENCE-ID")
    return {
        str(event["UID"])
        for event in calendar.walk("VEVENT")
        if any(marker in event for marker in markers)
    }


def _normalise_wr_timezone(calendar: icalendar.Calendar) -> None:
    """Leave X-WR-TIMEZONE only as a valid IANA name (x_wr_timezone reads it raw)."""
    zone = _named_zone(_text(calendar.get("X-WR-TIMEZONE")))
    calendar.pop("X-WR-TIMEZONE", None)
    if zone is not None:
        calendar.add("X-WR-TIMEZONE", zone.key)


# --- time zones ---------------------------------------------------------------------


def _named_zone(name: str | None) -> ZoneInfo | None:
    """An IANA zone for an IANA or Windows name, or for ``/vendor/Area/City``."""
    if not name:
        return None
    cleaned = name.strip().strip("/")
    parts = cleaned.split("/")
    candidates = [cleaned, WINDOWS_TO_OLSON.get(cleaned, "")]
    candidates += ["/".join(parts[i:]) for i in range(1, len(parts))] if name[0] == "/" else []
    for candidate in filter(None, candidates):
        try:
            return ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return None


def _feed_zones(calendar: icalendar.Calendar) -> dict[str, tzinfo | None]:
    """TZID -> zone for every TZID the feed uses; None means floating (unknown)."""
    own: dict[str, Any] = {str(tz["TZID"]): tz for tz in calendar.walk("VTIMEZONE") if "TZID" in tz}
    used = {str(tzid) for tzid in calendar.get_used_tzids() if tzid}
    zones: dict[str, tzinfo | None] = {}
    for tzid in used | set(own):
        zone: tzinfo | None = _named_zone(tzid)
        if zone is None and tzid in own:
            zone = own[tzid].to_tz(lookup_tzid=False)
        zones[tzid] = zone
    return zones


def _rebind_zones(calendar: icalendar.Calendar) -> None:
    """Give every TZID-qualified time the zone of *this* feed.

    icalendar caches a custom VTIMEZONE process-wide under its TZID, first
    definition wins, so a second feed (or a changed feed) reusing a made-up
    TZID such as Exchange's "Customized Time Zone" would get the wrong
    offsets. Here each TZID resolves against this feed only.
    """
    zones = _feed_zones(calendar)
    for event in calendar.walk("VEVENT"):
        for name in _ZONED_PROPERTIES:
            for prop in _as_list(event.get(name)):
                tzid = prop.params.get("TZID")
                if tzid is None or str(tzid) not in zones:
                    continue
                zone = zones[str(tzid)]
                for value in getattr(prop, "dts", [prop]):
                    value.dt = _with_zone(value.dt, zone)


def _with_zone(value: Any, zone: tzinfo | None) -> Any:
    if isinstance(value, tuple):
        return tuple(_with_zone(part, zone) for part in value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=zone)
    return value


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@contextmanager
def _quiet_library_warnings() -> Iterator[None]:
    """Silence icalendar's notice that it guessed ``/vendor/Europe/Berlin`` means Europe/Berlin.

    That guess is what we want; the warning would otherwise reach logs (and
    fail tests that run with warnings as errors).
    """
    guessed = getattr(icalendar, "GloballyUniqueTZIDGuessed", None)
    with warnings.catch_warnings():
        if guessed is not None:
            warnings.simplefilter("ignore", guessed)
        yield


# --- instances -> Events --------------------------------------------------------------


def _to_events(
    instances: list[Any], window: TimeSpan, zone: ZoneInfo, recurring: set[str]
) -> list[Event]:
    events: dict[str, Event] = {}
    for instance in instances:
        event = _to_event(instance, zone, recurring)
        if event is None or not event.span.overlaps(window):
            continue
        if event.provider_id in events:  # RANGE=THISANDFUTURE shares one RECURRENCE-ID
            alternative = f"{instance['UID']}/{_utc_stamp(event.span.start)}"
            if alternative in events:
                continue
            event = _replace_id(event, alternative)
        events[event.provider_id] = event
    return list(events.values())


def _to_event(instance: Any, zone: ZoneInfo, recurring: set[str]) -> Event | None:
    start, end = instance["DTSTART"].dt, instance["DTEND"].dt
    all_day = _is_date(start) and _is_date(end)
    if all_day and end <= start:
        end = start + timedelta(days=1)
    first, last = _instant(start, zone), _instant(end, zone)
    if last <= first:
        return None  # zero length: blocks nothing
    uid = str(instance["UID"])
    provider_id = uid
    if uid in recurring:
        provider_id = f"{uid}/{_recurrence_key(instance['RECURRENCE-ID'].dt, zone)}"
    return Event(
        provider_id=provider_id,
        span=TimeSpan(first, last),
        all_day=all_day,
        status=_status(instance),
        transparency=_transparency(instance),
        declined=False,  # ICS has no reliable notion of the calendar's owner
        etag=None,
        updated=_updated(instance),
    )


def _replace_id(event: Event, provider_id: str) -> Event:
    return Event(
        provider_id,
        event.span,
        event.all_day,
        event.status,
        event.transparency,
        event.declined,
        event.etag,
        event.updated,
    )


def _status(instance: Any) -> EventStatus:
    status = (_text(instance.get("STATUS")) or "").upper()
    if status == "CANCELLED":
        return EventStatus.CANCELLED
    busy = _outlook_busy_status(instance)
    if status == "TENTATIVE" or busy == "TENTATIVE":
        return EventStatus.TENTATIVE
    return EventStatus.CONFIRMED


def _transparency(instance: Any) -> Transparency:
    transp = (_text(instance.get("TRANSP")) or "").upper()
    if transp == "TRANSPARENT" or _outlook_busy_status(instance) in {"FREE", "WORKINGELSEWHERE"}:
        return Transparency.TRANSPARENT
    return Transparency.OPAQUE


def _outlook_busy_status(instance: Any) -> str:
    """Outlook's own free/busy flag (FREE, TENTATIVE, BUSY, OOF, WORKINGELSEWHERE)."""
    return (_text(instance.get("X-MICROSOFT-CDO-BUSYSTATUS")) or "").upper()


def _updated(instance: Any) -> datetime | None:
    for name in ("LAST-MODIFIED", "DTSTAMP"):
        try:
            value = instance[name].dt if name in instance else None
        except ValueError:  # a broken stamp is not worth refusing the feed
            continue
        if isinstance(value, datetime):
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return None


def _recurrence_key(value: date | datetime, zone: ZoneInfo) -> str:
    if not isinstance(value, datetime):
        return value.strftime("%Y%m%d")
    return _utc_stamp(_instant(value, zone))


def _utc_stamp(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _instant(value: date | datetime, zone: tzinfo) -> datetime:
    """A date (its local midnight), a floating time or an aware time, as an aware instant."""
    if not isinstance(value, datetime):
        return day_start(value, zone) if isinstance(zone, ZoneInfo) else _midnight(value, zone)
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=zone)
    return value


def _midnight(day: date, zone: tzinfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def _is_date(value: object) -> bool:
    return isinstance(value, date) and not isinstance(value, datetime)


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):  # a property given twice: the first counts
        return _text(value[0]) if value else None
    text = str(value).strip()
    return text or None


def _detail(err: Exception) -> str:
    return _clip(str(err) or type(err).__name__)


def _clip(text: str, limit: int = _MAX_DETAIL) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
