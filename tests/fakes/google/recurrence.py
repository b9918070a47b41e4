"""Expands a recurring master's ``recurrence[]`` into occurrences, bounded, with python-dateutil.

Timed series expand in the master's ``start.timeZone`` (wall-clock, so DST is
respected); all-day series expand by date. RRULE/EXRULE go to dateutil;
RDATE/EXDATE (``TZID=``, ``VALUE=DATE``, UTC ``Z`` or floating values) are
parsed here so every value ends up in the series' own zone. This module does
not know about exceptions (moved/cancelled instances) or instance resources.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rruleset, rrulestr

from .wire import Moment, zone

MAX_OCCURRENCES = 5000
_UNTIL = re.compile(r"UNTIL=(\d{8})(T\d{6})?(Z?)", re.IGNORECASE)


@dataclass(frozen=True)
class Occurrence:
    """One generated instance: its original start (local) and its UTC span."""

    original: datetime | date  # aware in the series' zone, or a date for all-day series
    start: datetime  # UTC
    end: datetime  # UTC
    suffix: str  # instance id = f"{master_id}_{suffix}"


def suffix_for(original: datetime | date) -> str:
    if isinstance(original, datetime):
        return original.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return original.strftime("%Y%m%d")


def check(lines: list[str], start: Moment) -> None:
    """Raise ValueError unless ``lines`` form a recurrence Google would accept."""
    if not lines or not all(isinstance(line, str) for line in lines):
        raise ValueError("recurrence must be a non-empty list of strings")
    for line in lines:
        name = line.split(":", 1)[0].split(";", 1)[0].upper()
        if name in ("RRULE", "EXRULE"):
            parts = {p.split("=", 1)[0].upper() for p in line.split(":", 1)[-1].split(";")}
            if {"COUNT", "UNTIL"} <= parts:
                raise ValueError("COUNT and UNTIL must not both be given (RFC 5545)")
    try:
        series = _Series(lines, start, ZoneInfo("UTC"))
        next(iter(series.ruleset), None)
    except (TypeError, KeyError) as err:
        raise ValueError(str(err)) from err


def expand(
    lines: list[str],
    start: Moment,
    end: Moment,
    calendar_tz: ZoneInfo,
    lo: datetime | None,
    hi: datetime,
) -> list[Occurrence]:
    """Occurrences overlapping ``[lo, hi)`` (UTC; ``lo=None``: from the first), at most 5000."""
    series = _Series(lines, start, calendar_tz)
    duration = end.utc(calendar_tz) - start.utc(calendar_tz)
    found: list[Occurrence] = []
    for local in series.iterate(None if lo is None else lo - duration):
        occ = series.occurrence(local, duration)
        if occ.start >= hi or len(found) >= MAX_OCCURRENCES:
            break
        if lo is None or occ.end > lo:
            found.append(occ)
    return found


class _Series:
    def __init__(self, lines: list[str], start: Moment, calendar_tz: ZoneInfo) -> None:
        self.all_day = start.all_day
        self.calendar_tz = calendar_tz
        if start.day is not None:
            self.tz: ZoneInfo = calendar_tz
            self.dtstart = datetime.combine(start.day, time())
        else:
            if start.tz is None:
                raise ValueError("a recurring event needs start.timeZone")
            assert start.instant is not None
            self.tz = start.tz
            self.dtstart = start.instant.astimezone(start.tz)
        self.ruleset = rruleset()
        has_rule = False
        for line in lines:
            has_rule |= self._add(line)
        if not has_rule:  # RDATE-only series: DTSTART is the first instance
            self.ruleset.rdate(self.dtstart)

    def _add(self, line: str) -> bool:
        head, sep, value = line.partition(":")
        if not sep or not value:
            raise ValueError(f"bad recurrence line {line!r}")
        name, *raw_params = head.split(";")
        params = dict(p.split("=", 1) for p in raw_params if "=" in p)
        name = name.upper()
        if name in ("RRULE", "EXRULE"):
            rule = rrulestr(self._fix_until(value), dtstart=self.dtstart)
            assert isinstance(rule, rrule)
            (self.ruleset.rrule if name == "RRULE" else self.ruleset.exrule)(rule)
            return name == "RRULE"
        if name in ("RDATE", "EXDATE"):
            add = self.ruleset.rdate if name == "RDATE" else self.ruleset.exdate
            for item in value.split(","):
                add(self._value(item.strip(), params))
            return False
        raise ValueError(f"unsupported recurrence line {line!r}")

    def _fix_until(self, rule: str) -> str:
        """Make UNTIL comparable with DTSTART as dateutil requires (UTC for timed series)."""

        def fix(match: re.Match[str]) -> str:
            day, clock, utc = match.group(1), match.group(2), match.group(3)
            if self.all_day:
                return f"UNTIL={day}"
            if utc:
                return match.group(0)
            when = datetime.strptime(day + (clock or "T235959"), "%Y%m%dT%H%M%S")  # noqa: DTZ007
            aware = when.replace(tzinfo=self.tz).astimezone(UTC)
            return "UNTIL=" + aware.strftime("%Y%m%dT%H%M%SZ")

        return _UNTIL.sub(fix, rule)

    def _value(self, raw: str, params: dict[str, str]) -> datetime:
        if len(raw) == 8 or params.get("VALUE", "").upper() == "DATE":
            day = datetime.strptime(raw[:8], "%Y%m%d").date()  # noqa: DTZ007
            if self.all_day:
                return datetime.combine(day, time())
            return datetime.combine(day, self.dtstart.timetz().replace(tzinfo=None), self.tz)
        when = datetime.strptime(raw.rstrip("Zz"), "%Y%m%dT%H%M%S")  # noqa: DTZ007
        if raw.upper().endswith("Z"):
            aware = when.replace(tzinfo=UTC)
        else:
            aware = when.replace(tzinfo=zone(params["TZID"]) if "TZID" in params else self.tz)
        if self.all_day:
            return datetime.combine(aware.astimezone(self.calendar_tz).date(), time())
        return aware.astimezone(self.tz)

    def iterate(self, after: datetime | None) -> Iterator[datetime]:
        if after is None:
            return iter(self.ruleset)
        if self.all_day:
            local = after.astimezone(self.calendar_tz).replace(tzinfo=None)
            floor = datetime.combine(local.date(), time())
            return self.ruleset.xafter(floor - timedelta(days=1), inc=True)
        return self.ruleset.xafter(after.astimezone(self.tz), inc=True)

    def occurrence(self, local: datetime, duration: timedelta) -> Occurrence:
        if self.all_day:
            day = local.date()
            begin = datetime.combine(day, time(), self.calendar_tz).astimezone(UTC)
            finish = datetime.combine(day + duration_days(duration), time(), self.calendar_tz)
            return Occurrence(day, begin, finish.astimezone(UTC), suffix_for(day))
        begin = local.astimezone(UTC)
        return Occurrence(local, begin, begin + duration, suffix_for(local))


def duration_days(duration: timedelta) -> timedelta:
    return timedelta(days=round(duration.total_seconds() / 86400))
