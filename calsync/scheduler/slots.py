"""The one slot rule: which slots of a resource are bookable, and why one is not.

Owns turning a resource's ``Rules``, its merged busy time and its existing
bookings and holds into bookable slots (``find_slots``), and re-checking a
proposed slot against the very same rules with reasons written for people
(``slot_problems``). Each rule is implemented once, in ``_Lookup``; both
entry points use it.

Working hours are wall-clock ranges in the resource's zone. Slots sit on a
grid of ``step`` anchored at the start of each range and stepping in wall
time, so 09:00 stays 09:00 local across DST changes: a nonexistent wall
start (spring forward) is skipped, an ambiguous one (fall back) takes the
first instant, and a slot never leaves its range's instants.

Pure: no I/O, no clock (``now`` is an argument), no store, no provider and
no spoken labels. Messages are English, with times local to the resource.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from calsync.errors import InputError
from calsync.model import WEEKDAYS, Rules, TimeSpan, WallRange, as_utc, local_instant
from calsync.scheduler.busy import merge_bounds

_MINUTE = timedelta(minutes=1)
_SECOND = timedelta(seconds=1)

_Pair = tuple[datetime, datetime]
_DayCheck = Callable[[date], "str | None"]
_SlotCheck = Callable[[datetime, datetime], "str | None"]


def find_slots(
    rules: Rules,
    window: TimeSpan,
    *,
    now: datetime,
    busy: Sequence[TimeSpan],
    taken: Sequence[TimeSpan],
    duration: timedelta | None = None,
    limit: int | None = None,
) -> list[TimeSpan]:
    """The bookable slots inside ``window``, in time order, at most ``limit`` of them.

    ``busy`` is the external busy time, ``taken`` the raw spans of the
    resource's active bookings and holds; ``duration`` defaults to the rules'.
    """
    if limit is not None and limit < 0:
        raise InputError(f"limit must not be negative, got {limit}")
    length = _positive(rules.duration if duration is None else duration, "duration")
    lookup = _Lookup(rules, now=now, busy=busy, taken=taken)
    found: list[TimeSpan] = []
    for day in _days_touched(window, lookup.tz):
        if limit is not None and len(found) >= limit:
            break
        if lookup.day_is_open(day):
            found += lookup.bookable_on(day, length, window)
    return found[:limit]


def slot_problems(
    rules: Rules,
    slot: TimeSpan,
    *,
    now: datetime,
    busy: Sequence[TimeSpan],
    taken: Sequence[TimeSpan],
) -> list[str]:
    """Why ``slot`` cannot be booked, one reason per broken rule; empty when it can.

    Any length is allowed, but the slot must start on the step grid of one
    working-hours range of its local date and lie within that range.
    """
    lookup = _Lookup(rules, now=now, busy=busy, taken=taken)
    day = slot.start.astimezone(lookup.tz).date()
    found = [lookup.hours_problem(slot, day)]
    found += (check(day) for check in lookup.day_checks)
    found += (check(slot.start, slot.end) for check in lookup.slot_checks)
    return [problem for problem in found if problem is not None]


@dataclass(frozen=True, slots=True)
class _Hours:
    """One working-hours range placed on a local date, with its absolute bounds.

    ``steady`` when the zone keeps one offset over the whole range (no clock
    change inside), so wall-clock steps equal absolute steps.
    """

    day: date
    wall: WallRange
    start: datetime
    end: datetime
    steady: bool


class _Spans:
    """Sorted, disjoint ``[start, end)`` spans with a bisect overlap test.

    Each span is widened by ``before``/``after`` first: a slot overlaps the
    widened span exactly when the slot widened the other way round overlaps
    the span, so buffers cost nothing per candidate.
    """

    def __init__(
        self,
        spans: Iterable[TimeSpan],
        before: timedelta = timedelta(0),
        after: timedelta = timedelta(0),
    ) -> None:
        bounds = merge_bounds((span.start - before, span.end + after) for span in spans)
        self._starts = [start for start, _ in bounds]
        self._ends = [end for _, end in bounds]

    def overlaps(self, start: datetime, end: datetime) -> bool:
        """Whether ``[start, end)`` overlaps any (widened) span."""
        last = bisect_left(self._starts, end) - 1  # the last span starting before `end`
        return last >= 0 and self._ends[last] > start


class _Lookup:
    """The rules of one resource, prepared once for many checks.

    Working hours and the grid are ``placed_hours``/``candidate``; every other
    rule is one method returning a reason or None: per local date
    (``day_checks``) or per slot (``slot_checks``).
    """

    def __init__(
        self,
        rules: Rules,
        *,
        now: datetime,
        busy: Iterable[TimeSpan],
        taken: Sequence[TimeSpan],
    ) -> None:
        self.rules = rules
        self.tz = rules.timezone
        self.step = _whole_minutes(rules.step, "step")
        now = as_utc(now)
        self.earliest = now + rules.min_notice
        self.last_day = now.astimezone(self.tz).date() + timedelta(days=rules.max_days_ahead)
        before = _not_negative(rules.buffer_before, "buffer_before")
        after = _not_negative(rules.buffer_after, "buffer_after")
        self.busy = _Spans(busy)
        # slot + buffers overlaps busy  <=>  slot overlaps busy widened (after, before)
        self.busy_buffered = _Spans(busy, after, before)
        self.taken = _Spans(taken)
        # slot + buffers overlaps taken + buffers  <=>  slot overlaps taken widened by both
        self.taken_buffered = _Spans(taken, before + after, before + after)
        self.per_day = Counter(span.start.astimezone(self.tz).date() for span in taken)
        self.day_checks: tuple[_DayCheck, ...] = (self._horizon, self._daily_cap)
        self.slot_checks: tuple[_SlotCheck, ...] = (self._notice, self._busy, self._taken)

    # -- working hours and the grid ------------------------------------------------

    def placed_hours(self, day: date) -> list[_Hours]:
        """The working-hours ranges of ``day`` with absolute bounds; empty ranges dropped."""
        placed = []
        for wall in sorted(self.rules.hours_on(day), key=lambda w: (w.start, w.end)):
            start, end = _bound(day, wall.start, self.tz), _bound(day, wall.end, self.tz)
            if start < end:
                # as long in absolute as in wall time: no clock change inside (zones
                # never change their offset twice within one day's range)
                steady = end - start == (wall.end - wall.start) * _MINUTE
                placed.append(_Hours(day, wall, start, end, steady))
        return placed

    def candidate(self, hours: _Hours, k: int, length: timedelta) -> _Pair | None:
        """The ``k``-th grid slot of ``hours``; None when its wall start does not exist
        or the slot does not lie within the range's instants."""
        if hours.steady:
            start: datetime | None = hours.start + k * self.step * _MINUTE
        else:
            start = local_instant(hours.day, hours.wall.start + k * self.step, self.tz)
        if start is None or start < hours.start or start + length > hours.end:
            return None
        return start, start + length

    def grid(self, day: date, length: timedelta) -> list[_Pair]:
        """The grid slots of all ranges of ``day``, sorted, without duplicates."""
        placed = self.placed_hours(day)
        slots = [
            slot
            for hours in placed
            for k in range(-(-(hours.wall.end - hours.wall.start) // self.step))
            if (slot := self.candidate(hours, k, length)) is not None
        ]
        disjoint = all(a.wall.end <= b.wall.start for a, b in pairwise(placed))
        return slots if disjoint else sorted(set(slots))

    def hours_problem(self, slot: TimeSpan, day: date) -> str | None:
        """Working hours: ``slot`` must be a grid slot of one range of its local date."""
        placed = self.placed_hours(day)
        if any(self._on_grid(hours, slot) for hours in placed):
            return None
        inside = next((h for h in placed if h.start <= slot.start and slot.end <= h.end), None)
        if inside is None:
            return f"outside working hours ({_describe_hours(day, self.rules.hours_on(day))})"
        return (
            f"{_clock(slot.start, self.tz)} is not on the {self.step}-minute grid "
            f"of the {inside.wall} hours"
        )

    def _on_grid(self, hours: _Hours, slot: TimeSpan) -> bool:
        """Whether ``slot`` is exactly the grid slot of ``hours`` at its wall start."""
        wall = slot.start.astimezone(self.tz).replace(tzinfo=None)
        offset = wall - datetime.combine(hours.day, time()) - hours.wall.start * _MINUTE
        k, rest = divmod(offset, self.step * _MINUTE)
        if rest:
            return False  # k < 0 needs no test: such a slot starts before the range
        return self.candidate(hours, k, slot.duration) == (slot.start, slot.end)

    # -- finding -------------------------------------------------------------------

    def day_is_open(self, day: date) -> bool:
        return all(check(day) is None for check in self.day_checks)

    def bookable_on(self, day: date, length: timedelta, window: TimeSpan) -> list[TimeSpan]:
        """The grid slots of ``day`` inside ``window`` that pass every slot check."""
        kept = [(s, e) for s, e in self.grid(day, length) if window.start <= s and e <= window.end]
        for check in self.slot_checks:
            kept = [(s, e) for s, e in kept if check(s, e) is None]
        return [TimeSpan(start, end) for start, end in kept]

    # -- the other rules: each returns a reason, or None when it holds --------------

    def _horizon(self, day: date) -> str | None:
        if day <= self.last_day:
            return None
        days = self.rules.max_days_ahead
        return f"more than {days} day{'' if days == 1 else 's'} ahead"

    def _daily_cap(self, day: date) -> str | None:
        cap = self.rules.max_per_day
        if cap is None or self.per_day[day] < cap:
            return None
        return f"the daily limit of {cap} appointment{'' if cap == 1 else 's'} is reached"

    def _notice(self, start: datetime, end: datetime) -> str | None:
        if start >= self.earliest:
            return None
        if not self.rules.min_notice:
            return "starts in the past"
        return f"less than {_format_duration(self.rules.min_notice)} from now (minimum notice)"

    def _busy(self, start: datetime, end: datetime) -> str | None:
        if not self.busy_buffered.overlaps(start, end):
            return None
        if self.busy.overlaps(start, end):
            return "overlaps busy time"
        return "too close to busy time (buffers)"

    def _taken(self, start: datetime, end: datetime) -> str | None:
        if not self.taken_buffered.overlaps(start, end):
            return None
        if self.taken.overlaps(start, end):
            return "overlaps another appointment"
        return "too close to another appointment (buffers)"


# -- helpers -------------------------------------------------------------------------


def _positive(value: timedelta, name: str) -> timedelta:
    if value <= timedelta(0):
        raise InputError(f"{name} must be positive, got {_format_duration(value)}")
    return value


def _not_negative(value: timedelta, name: str) -> timedelta:
    if value < timedelta(0):
        raise InputError(f"{name} must not be negative, got {_format_duration(value)}")
    return value


def _whole_minutes(value: timedelta, name: str) -> int:
    """``value`` in minutes; the wall-clock grid works in whole minutes."""
    minutes, rest = divmod(_positive(value, name), _MINUTE)
    if rest:
        raise InputError(f"{name} must be a whole number of minutes, got {value}")
    return minutes


def _days_touched(window: TimeSpan, tz: ZoneInfo) -> Iterator[date]:
    """The local dates of ``window``'s instants, first to last."""
    day, last = window.start.astimezone(tz).date(), window.end.astimezone(tz).date()
    while day <= last:
        yield day
        day += timedelta(days=1)


def _bound(day: date, minute: int, tz: ZoneInfo) -> datetime:
    """The instant of a working-hours bound.

    A bound inside a spring-forward gap resolves to the clock change itself:
    for a start the first instant after the gap, for an (exclusive) end the
    instant right after the last one before the gap, so no slot leaves the range.
    """
    instant = local_instant(day, minute, tz)
    return instant if instant is not None else _gap_change(day, minute, tz)


def _gap_change(day: date, minute: int, tz: ZoneInfo) -> datetime:
    """The instant of the clock change whose gap contains wall ``minute`` of ``day``."""
    wall = datetime.combine(day, time()) + timedelta(minutes=minute)
    before = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)  # later offset: before the change
    after = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)  # earlier offset: after the change
    new_offset = after.astimezone(tz).utcoffset()
    low, high = 0, int((after - before) / _SECOND)
    while high - low > 1:  # zone changes happen on whole seconds
        middle = (low + high) // 2
        if (before + middle * _SECOND).astimezone(tz).utcoffset() == new_offset:
            high = middle
        else:
            low = middle
    return before + high * _SECOND


def _describe_hours(day: date, ranges: Sequence[WallRange]) -> str:
    weekday = WEEKDAYS[day.weekday()].capitalize()
    if not ranges:
        return f"closed on {weekday} {day.isoformat()}"
    return f"{weekday} " + ", ".join(str(wall) for wall in sorted(ranges, key=lambda w: w.start))


def _clock(instant: datetime, tz: ZoneInfo) -> str:
    """``HH:MM`` local time; seconds when present; marks the repeated hour of a fall back."""
    local = instant.astimezone(tz)
    text = local.strftime("%H:%M:%S" if local.second or local.microsecond else "%H:%M")
    return f"{text} (the second {text}, after the clocks went back)" if local.fold else text


def _format_duration(value: timedelta) -> str:
    """``2h``, ``1h30m``, ``1d``: the notation of the config file."""
    if value < timedelta(0):
        return "-" + _format_duration(-value)
    seconds = int(value.total_seconds())
    parts = [(seconds // 86400, "d"), (seconds % 86400 // 3600, "h")]
    parts += [(seconds % 3600 // 60, "m"), (seconds % 60, "s")]
    return "".join(f"{amount}{unit}" for amount, unit in parts if amount) or "0m"
