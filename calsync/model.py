"""Domain types: the language every part of calsync speaks.

Frozen values, no I/O. Every instant is timezone-aware and normalised to
UTC at construction, so naive or inverted time data cannot travel: a
``TimeSpan`` refuses both. Wall-clock helpers turn a local date and time in
a resource's zone into an instant (nonexistent times -> ``None``,
ambiguous ones -> the first).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from calsync.errors import InputError

MINUTES_PER_DAY = 24 * 60

MIN_YEAR = 1970  # dates outside these years are refused, not computed with
MAX_YEAR = 2200


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC; refuses naive datetimes."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InputError(f"{value.isoformat()} has no time zone offset")
    return value.astimezone(UTC)


@dataclass(frozen=True, order=True, slots=True)
class TimeSpan:
    """A half-open interval ``[start, end)`` of UTC instants, never empty."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", as_utc(self.start))
        object.__setattr__(self, "end", as_utc(self.end))
        if self.end <= self.start:
            raise InputError(
                f"end {self.end.isoformat()} is not after start {self.start.isoformat()}"
            )

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def overlaps(self, other: TimeSpan) -> bool:
        return self.start < other.end and other.start < self.end

    def contains(self, other: TimeSpan) -> bool:
        return self.start <= other.start and other.end <= self.end

    def widen(self, before: timedelta, after: timedelta) -> TimeSpan:
        return TimeSpan(self.start - before, self.end + after)

    def clip(self, bounds: TimeSpan) -> TimeSpan | None:
        """The part of this span inside ``bounds``, or None when they do not overlap."""
        if not self.overlaps(bounds):
            return None
        return TimeSpan(max(self.start, bounds.start), min(self.end, bounds.end))


def parse_instant(text: str, tz: ZoneInfo, *, name: str, end_of_day: bool = False) -> datetime:
    """An ISO 8601 date-time (or date) as a UTC instant; ``name`` is used in the error message.

    A time without an offset is read in ``tz``. A bare date means local
    midnight, or with ``end_of_day`` the midnight after it (so ``--to
    2026-12-07`` includes that day).
    """
    value = text.strip()
    try:
        if len(value) == 10:
            day = check_year(date.fromisoformat(value), name)
            return day_start(day + timedelta(days=1) if end_of_day else day, tz)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(
            f"{name}: {text!r} is not a date or time; use ISO 8601 like "
            "2026-12-07, 2026-12-07T09:00 or 2026-12-07T09:00+01:00"
        ) from None
    check_year(parsed.date(), name)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC)


def check_year(day: date, name: str) -> date:
    """``day``, if within the years calsync works in (no arithmetic near the ends of time)."""
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise InputError(
            f"{name}: {day.isoformat()} is out of range; use a year {MIN_YEAR}-{MAX_YEAR}"
        )
    return day


def parse_span(start: str, end: str, tz: ZoneInfo, *, names: tuple[str, str]) -> TimeSpan:
    """A span from two user-given times; an end not after the start is a clear error."""
    first = parse_instant(start, tz, name=names[0])
    last = parse_instant(end, tz, name=names[1], end_of_day=True)
    if last <= first:
        raise InputError(f"{names[1]} ({end}) must be after {names[0]} ({start})")
    return TimeSpan(first, last)


def local_instant(day: date, minute: int, tz: ZoneInfo) -> datetime | None:
    """The UTC instant of wall time ``minute`` (0..1440) on ``day`` in ``tz``.

    None when that wall time does not exist (skipped by a spring-forward
    change); an ambiguous wall time (fall back) gives the first instant.
    """
    naive = datetime.combine(day, time()) + timedelta(minutes=minute)
    aware = naive.replace(tzinfo=tz)
    instant = aware.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) != naive:
        return None
    return instant


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of local ``day`` in ``tz`` (midnight, or the end of a gap at midnight)."""
    return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)


def local_span_of_days(first: date, end_exclusive: date, tz: ZoneInfo) -> TimeSpan:
    """The instants of the local days ``[first, end_exclusive)`` in ``tz`` (all-day events)."""
    return TimeSpan(day_start(first, tz), day_start(end_exclusive, tz))


class EventStatus(StrEnum):
    CONFIRMED = "confirmed"
    TENTATIVE = "tentative"
    CANCELLED = "cancelled"


class Transparency(StrEnum):
    OPAQUE = "opaque"
    TRANSPARENT = "transparent"


@dataclass(frozen=True, slots=True)
class Event:
    """One calendar event (or one instance of a series), with only busy-relevant fields."""

    provider_id: str
    span: TimeSpan
    all_day: bool = False
    status: EventStatus = EventStatus.CONFIRMED
    transparency: Transparency = Transparency.OPAQUE
    declined: bool = False  # the calendar's owner declined it
    etag: str | None = None
    updated: datetime | None = None


@dataclass(frozen=True, slots=True)
class CalendarRef:
    """``account:calendar``; the calendar may be ``*`` (every calendar of the account)."""

    account: str
    calendar: str

    def __str__(self) -> str:
        return f"{self.account}:{self.calendar}"

    @property
    def is_wildcard(self) -> bool:
        return self.calendar == "*"

    def covered_by(self, refs: Collection[CalendarRef]) -> bool:
        """Whether ``refs`` name this calendar, or all of its account's (``account:*``)."""
        return self in refs or CalendarRef(self.account, "*") in refs


@dataclass(frozen=True, slots=True)
class WallRange:
    """Working hours on one day: minutes after local midnight, ``start < end <= 1440``."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end <= MINUTES_PER_DAY:
            raise InputError(f"{self} is not a range within one day")

    def __str__(self) -> str:
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Rules:
    """When a resource can be booked. Weekly hours are wall-clock times in ``timezone``."""

    timezone: ZoneInfo
    weekly: tuple[tuple[WallRange, ...], ...]  # 7 entries, Monday first
    duration: timedelta
    step: timedelta
    overrides: Mapping[date, tuple[WallRange, ...]] = field(default_factory=dict)
    buffer_before: timedelta = timedelta(0)
    buffer_after: timedelta = timedelta(0)
    min_notice: timedelta = timedelta(0)
    max_days_ahead: int = 60
    max_per_day: int | None = None

    def hours_on(self, day: date) -> tuple[WallRange, ...]:
        """The working-hours ranges of a local date (an override replaces the weekday)."""
        if day in self.overrides:
            return self.overrides[day]
        return self.weekly[day.weekday()]


@dataclass(frozen=True)
class Resource:
    """A bookable schedule: whose calendars block it, where bookings go, and its rules."""

    id: str
    name: str
    language: str
    check: tuple[CalendarRef, ...]
    book_into: CalendarRef | None
    rules: Rules
    tentative_busy: bool = True
    verify_live: bool = False  # re-check the book_into calendar with the provider before booking

    @property
    def timezone(self) -> ZoneInfo:
        return self.rules.timezone


class BookingStatus(StrEnum):
    PENDING = "pending"  # reserved in the store, provider write not yet confirmed
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Attendee:
    name: str
    phone: str | None = None  # E.164
    email: str | None = None


@dataclass(frozen=True)
class Booking:
    id: str
    resource: str
    span: TimeSpan
    status: BookingStatus
    attendee: Attendee
    created_at: datetime
    updated_at: datetime
    notes: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    provider: Mapping[str, Any] = field(default_factory=dict)  # references in the provider
    call_id: str | None = None
    cancel_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Hold:
    id: str
    resource: str
    span: TimeSpan
    expires_at: datetime
    call_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChangeSummary:
    """What one sync pass did to a calendar's stored events."""

    added: int = 0
    changed: int = 0
    removed: int = 0

    def __add__(self, other: ChangeSummary) -> ChangeSummary:
        return ChangeSummary(
            self.added + other.added, self.changed + other.changed, self.removed + other.removed
        )


@dataclass(frozen=True, slots=True)
class SyncCursor:
    """Where the last successful sync of a calendar left off."""

    cursor: str | None
    window: TimeSpan | None


@dataclass(frozen=True, slots=True)
class CalendarStatus:
    """Sync health of one calendar, as ``calsync status`` shows it."""

    ref: CalendarRef
    name: str
    last_attempt: datetime | None
    last_success: datetime | None
    last_error: str | None
    failures: int
    events: int


@dataclass(frozen=True, slots=True)
class AccountStatus:
    name: str
    provider: str
    status: str  # "ok" | "reauth_required"
    detail: str | None = None


class Scope(StrEnum):
    """What an API key may do; each scope includes the ones before it."""

    READ = "read"  # lookups
    WRITE = "write"  # holds and bookings
    ADMIN = "admin"  # everything, including POST /v1/sync

    def allows(self, needed: Scope) -> bool:
        order = list(Scope)
        return order.index(self) >= order.index(needed)


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    prefix: str  # shown in listings; identifies the key without revealing it
    scope: Scope
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class OutboxEvent:
    """An event to announce, written in the transaction of the change it describes.

    ``payload`` is the whole body: ``{"type", "timestamp", "data"}``;
    ``endpoints`` are the webhook URLs subscribed to its type.
    """

    id: str
    type: str
    payload: Mapping[str, Any]
    endpoints: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event on its way to one endpoint."""

    id: int
    event_id: str
    type: str
    endpoint: str
    payload: Mapping[str, Any]
    attempts: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class EndpointState:
    url: str
    backlog: int
    failing_since: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = None
    disabled_at: datetime | None = None
    disabled_reason: str | None = None
