"""The resources section: ``[resources.ID]`` -> ``calsync.model.Resource``.

This module owns reading one resource: its name, time zone and language, the
calendars it checks and books into (each must name a configured account, and
bookings never go into a read-only ics account), its booking rules (durations,
buffers, notice, days ahead, a daily cap within ``daemon.horizon_days``) and
its working hours: weekly ``hours`` and dated ``overrides``, with every
refused or overlapping range reported by its index.

It only reads the parsed TOML and the accounts already read; it never looks
at calendars, slots or the clock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from calsync.config._reader import (
    _NAME,
    _POSITIVE,
    _ZERO,
    _language,
    _show,
    _Table,
    _zone,
)
from calsync.config._settings import AccountSettings
from calsync.model import WEEKDAYS, CalendarRef, Resource, Rules, WallRange

_RESOURCE_KEYS: tuple[str, ...] = ("name", "timezone", "language", "check", "book_into")
_RESOURCE_KEYS += ("duration", "step", "buffer_before", "buffer_after", "min_notice")
_RESOURCE_KEYS += ("max_days_ahead", "max_per_day", "tentative_busy", "hours", "overrides")
_RESOURCE_KEYS += ("verify_live",)

_WALL_RANGE = re.compile(r"([0-9]{1,2}):([0-9]{2})\s*-\s*([0-9]{1,2}):([0-9]{2})")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

# --- resources ------------------------------------------------------------------------


def _resource(
    rid: str, t: _Table, horizon_days: int | None, accounts: Mapping[str, AccountSettings]
) -> Resource:
    """One resource; ``horizon_days`` is None when daemon.horizon_days itself is wrong."""
    t.check_keys(_RESOURCE_KEYS)
    name = t.text("name", rid, '"Dr. Smith"')
    needed = 'give an IANA time zone like "Europe/Vienna"'
    zone = t.parsed("timezone", ZoneInfo("UTC"), _zone, '"Europe/Vienna"', needed)
    return Resource(
        id=rid,
        name=name,
        language=t.parsed("language", "en", _language, '"de"'),
        check=_check_refs(t, accounts),
        book_into=_book_into(t, accounts),
        rules=_rules(t, zone, horizon_days),
        tentative_busy=t.boolean("tentative_busy", True),
        verify_live=t.boolean("verify_live", False),
    )


def _rules(t: _Table, zone: ZoneInfo, horizon_days: int | None) -> Rules:
    duration = t.duration("duration", timedelta(minutes=30), _POSITIVE)
    step = t.duration("step", duration, _POSITIVE)
    before, after = t.duration("buffer_before", _ZERO), t.duration("buffer_after", _ZERO)
    min_notice = t.duration("min_notice", _ZERO)
    days_ahead = t.integer("max_days_ahead", min(60, horizon_days or 60), low=0)
    if horizon_days is not None and days_ahead > horizon_days:
        t.problem(
            "max_days_ahead",
            f"{days_ahead} is beyond daemon.horizon_days ({horizon_days}), the days calsync "
            "caches; lower max_days_ahead or raise daemon.horizon_days",
        )
    max_per_day = t.integer("max_per_day", None, low=1)
    weekly, overrides = _working_hours(t)
    return Rules(
        timezone=zone,
        weekly=weekly,
        duration=duration,
        step=step,
        overrides=overrides,
        buffer_before=before,
        buffer_after=after,
        min_notice=min_notice,
        max_days_ahead=days_ahead,
        max_per_day=max_per_day,
    )


def _known_account(
    t: _Table, key: str | int, ref: CalendarRef, accounts: Mapping[str, AccountSettings]
) -> bool:
    if ref.account in accounts:
        return True
    if accounts:
        fix = f"configured accounts: {', '.join(accounts)}"
    else:
        fix = f"add an [accounts.{ref.account}] table"
    t.problem(key, f'{_show(str(ref))}: account "{ref.account}" is not configured; {fix}')
    return False


def _check_refs(t: _Table, accounts: Mapping[str, AccountSettings]) -> tuple[CalendarRef, ...]:
    refs: list[CalendarRef] = []
    check = t.under("check")
    for index, item in t.items("check", '["office:primary"]'):
        ref = check.value(index, item, None, _calendar_ref, '"office:primary"')
        if ref is not None and _known_account(check, index, ref, accounts) and ref not in refs:
            refs.append(ref)
    return tuple(refs)


def _book_into(t: _Table, accounts: Mapping[str, AccountSettings]) -> CalendarRef | None:
    ref = t.parsed("book_into", None, _calendar_ref, '"office:primary"')
    if ref is None or not _known_account(t, "book_into", ref, accounts):
        return None
    if ref.is_wildcard:
        like = f'"{ref.account}:primary"'
        t.problem("book_into", f"{_show(str(ref))} names no single calendar; write it like {like}")
    elif accounts[ref.account].provider == "ics":
        t.problem(
            "book_into",
            "ics calendars are read-only; remove book_into to keep bookings in calsync's own store",
        )
    return ref


# --- working hours --------------------------------------------------------------------

_DayHours = tuple[WallRange, ...]


def _working_hours(t: _Table) -> tuple[tuple[_DayHours, ...], dict[date, _DayHours]]:
    before = len(t.problems)
    hours = t.table("hours")
    hours.check_keys(WEEKDAYS)
    weekly = tuple(_day_ranges(hours, day) for day in WEEKDAYS)
    overrides = _overrides(t)
    if len(t.problems) == before and not any(weekly) and not any(overrides.values()):
        t.problem(
            "hours",
            'no working hours, so it could never be booked; add e.g. hours.mon = ["09:00-17:00"]',
        )
    return weekly, overrides


def _day_ranges(t: _Table, key: str) -> _DayHours:
    """One day's list of "HH:MM-HH:MM", sorted; refused and overlapping ranges reported."""
    day = t.under(key)
    kept: list[tuple[int, WallRange]] = []
    items = t.items(key, '["09:00-12:00", "13:00-17:00"]')
    for index, item in items:
        wall = day.value(index, item, None, _wall_range, '"09:00-17:00"')
        if wall is None:
            continue
        clash = next(
            (i for i, other in kept if other.start < wall.end and wall.start < other.end), None
        )
        if clash is None:
            kept.append((index, wall))
        else:
            day.problem(index, f"{_show(item)} overlaps {_show(items[clash][1])} at [{clash}]")
    return tuple(sorted((wall for _, wall in kept), key=lambda wall: wall.start))


def _overrides(t: _Table) -> dict[date, _DayHours]:
    overrides: dict[date, _DayHours] = {}
    first_index: dict[date, int] = {}
    listed = t.under("overrides")
    for index, item in t.items("overrides", '[{ date = "2026-12-24", hours = [] }]'):
        entry = listed.table(index, item, '{ date = "2026-12-24", hours = [] }')
        if not isinstance(item, Mapping):
            continue
        entry.check_keys(("date", "hours"))
        day = entry.data.get("date")
        if not isinstance(day, date) or isinstance(day, datetime):  # else: a TOML date
            day = entry.parsed("date", None, _iso_date, '"2026-12-24"', needed="give the day")
        if day in first_index:
            entry.problem("date", f"{day} is already given at overrides[{first_index[day]}]")
        if "hours" not in item:
            entry.problem("hours", "missing; give the day's hours, or [] to close it")
        ranges = _day_ranges(entry, "hours")
        if day is not None and day not in first_index:
            first_index[day], overrides[day] = index, ranges
    return overrides


# --- converters -----------------------------------------------------------------------


def _calendar_ref(text: str) -> CalendarRef:
    account, sep, calendar = text.partition(":")
    if not sep or not _NAME.fullmatch(account) or not calendar or calendar != calendar.strip():
        like = 'write it like "office:primary" or "office:*"'
        raise ValueError(f'{_show(text)} is not "account:calendar"; {like}')
    return CalendarRef(account, calendar)


def _wall_range(text: str) -> WallRange:
    match = _WALL_RANGE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f'{_show(text)} is not a time range; write it like "09:00-17:00"')
    start_h, start_m, end_h, end_m = (int(group) for group in match.groups())
    start, end = start_h * 60 + start_m, end_h * 60 + end_m
    if start_m > 59 or end_m > 59 or start > 24 * 60 or end > 24 * 60:
        raise ValueError(f"{_show(text)} has a time outside 00:00-24:00")
    if end < start:
        raise ValueError(f"{_show(text)} ends before it starts")
    if end == start:
        raise ValueError(f"{_show(text)} is empty: it ends when it starts")
    return WallRange(start, end)


def _iso_date(text: str) -> date:
    try:
        if _ISO_DATE.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise ValueError(f'{_show(text)} is not a date; write it like "2026-12-24"')
