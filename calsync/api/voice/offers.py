"""Offering times: slot ids a model copies back, picking a few good slots, reading days and times.

Pure functions over time spans; no store, no clock, no language.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from calsync.errors import InputError
from calsync.model import TimeSpan, check_year

UTC = ZoneInfo("UTC")


def slot_id(resource: str, span: TimeSpan) -> str:
    """An id a model can copy back: resource, UTC start and minutes."""
    minutes = int(span.duration.total_seconds() // 60)
    return f"{resource}/{span.start.astimezone(UTC):%Y-%m-%dT%H:%MZ}/{minutes}"


def parse_slot_id(text: str) -> tuple[str, datetime, int]:
    """The resource, start and minutes of a slot id; a mangled one is a clear InputError."""
    resource, _, rest = text.strip().rpartition("/")
    resource, _, start = resource.rpartition("/")
    try:
        when = datetime.strptime(start, "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC)
        check_year(when.date(), "slot_id")
        minutes = int(rest)
    except ValueError:
        when, minutes = None, 0
    if not resource or when is None or minutes <= 0:
        raise InputError(f"slot_id {text!r} is not one check_availability gave; call it again")
    return resource, when, minutes


def spread(slots: list[TimeSpan], limit: int, zone: ZoneInfo) -> list[TimeSpan]:
    """``limit`` slots spread over the days and hours found, not the first few in a row."""
    days: dict[date, list[TimeSpan]] = {}
    for slot in slots:
        days.setdefault(slot.start.astimezone(zone).date(), []).append(slot)
    if not days:
        return []
    groups = list(days.values())
    shares = [
        limit // len(groups) + (1 if i < limit % len(groups) else 0) for i in range(len(groups))
    ]
    picked = [s for group, k in zip(groups, shares, strict=True) for s in _evenly(group, k)]
    rest = [s for s in slots if s not in set(picked)]
    return sorted(picked + rest[: max(0, limit - len(picked))])


def _evenly(items: list[TimeSpan], k: int) -> list[TimeSpan]:
    if k <= 0:
        return []
    if k >= len(items):
        return items
    if k == 1:
        return [items[0]]
    return [items[round(i * (len(items) - 1) / (k - 1))] for i in range(k)]


def time_filter(
    after: str | None, before: str | None, zone: ZoneInfo
) -> Callable[[TimeSpan], bool]:
    """Whether a slot starts between ``after`` and ``before`` (HH:MM, local to ``zone``)."""
    first = _clock(after, "after") if after else time.min
    last = _clock(before, "before") if before else time.max

    def fits(slot: TimeSpan) -> bool:
        local = slot.start.astimezone(zone).time()
        return first <= local <= last

    return fits


def _clock(text: str, name: str) -> time:
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise InputError(f"{name}: {text!r} is not a time of day like 14:00") from None


def day_of(text: str, name: str, today: date) -> date:
    """A day given as YYYY-MM-DD, or as today/tomorrow (heute/morgen)."""
    words = {"today": 0, "heute": 0, "tomorrow": 1, "morgen": 1}
    if text.lower() in words:
        return today + timedelta(days=words[text.lower()])
    try:
        return check_year(date.fromisoformat(text[:10]), name)
    except ValueError:
        raise InputError(f"{name}: {text!r} is not a date like {today.isoformat()}") from None
