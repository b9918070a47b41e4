"""The one slot rule: hand-computed examples, DST days, properties against a brute-force oracle.

Every expected slot below is written by hand as a local wall time (with its
UTC offset where DST matters), never computed with the code under test.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calsync.errors import InputError
from calsync.model import Rules, TimeSpan, WallRange, day_start, local_instant
from calsync.scheduler.slots import find_slots, slot_problems

VIENNA = ZoneInfo("Europe/Vienna")
NEW_YORK = ZoneInfo("America/New_York")
MON = date(2026, 6, 15)  # a Monday in summer (CEST, +02:00)
TUE, WED, THU, FRI, SAT = (MON + timedelta(days=n) for n in range(1, 6))
MINUTE = timedelta(minutes=1)
OFFICE = ("09:00-12:00", "13:00-17:00")


# -- helpers -----------------------------------------------------------------------


def _minute(hhmm: str) -> int:
    hour, minute = hhmm.split(":")
    return int(hour) * 60 + int(minute)


def hours(*ranges: str) -> tuple[WallRange, ...]:
    return tuple(WallRange(_minute(a), _minute(b)) for a, b in (r.split("-") for r in ranges))


def wall(day: date, hhmm: str, tz: ZoneInfo = VIENNA, fold: int = 0) -> datetime:
    """The instant (in UTC, so that adding minutes is real time) of a local wall time."""
    hour, minute = divmod(_minute(hhmm), 60)
    local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz, fold=fold)
    return local.astimezone(UTC)


def span(day: date, start: str, end: str, tz: ZoneInfo = VIENNA) -> TimeSpan:
    return TimeSpan(wall(day, start, tz), wall(day, end, tz))


def whole_days(first: date, days: int = 1, tz: ZoneInfo = VIENNA) -> TimeSpan:
    return TimeSpan(day_start(first, tz), day_start(first + timedelta(days=days), tz))


def make_rules(
    *,
    weekdays: Sequence[str] = OFFICE,
    weekend: Sequence[str] = (),
    tz: ZoneInfo = VIENNA,
    duration: int = 30,
    step: int = 15,
    **changes: Any,
) -> Rules:
    """Office hours Mon-Fri; durations in minutes; other fields as in ``Rules``."""
    weekly = (hours(*weekdays),) * 5 + (hours(*weekend),) * 2
    return Rules(
        timezone=tz,
        weekly=weekly,
        duration=timedelta(minutes=duration),
        step=timedelta(minutes=step),
        **changes,
    )


def lookup(
    rules: Rules,
    window: TimeSpan,
    *,
    now: datetime | None = None,
    busy: Iterable[TimeSpan] = (),
    taken: Iterable[TimeSpan] = (),
    **options: Any,
) -> list[TimeSpan]:
    """find_slots with a ``now`` of the Sunday before ``MON`` unless given."""
    now = wall(MON - timedelta(days=1), "12:00") if now is None else now
    return find_slots(rules, window, now=now, busy=list(busy), taken=list(taken), **options)


def problems(
    rules: Rules,
    slot: TimeSpan,
    *,
    now: datetime | None = None,
    busy: Iterable[TimeSpan] = (),
    taken: Iterable[TimeSpan] = (),
) -> list[str]:
    now = wall(MON - timedelta(days=1), "12:00") if now is None else now
    return slot_problems(rules, slot, now=now, busy=list(busy), taken=list(taken))


def starts(slots: Iterable[TimeSpan], tz: ZoneInfo = VIENNA) -> list[str]:
    return [s.start.astimezone(tz).strftime("%H:%M") for s in slots]


def stamped(slots: Iterable[TimeSpan], tz: ZoneInfo) -> list[str]:
    """``start/end`` of each slot as local ISO times with their UTC offsets."""
    return [
        f"{s.start.astimezone(tz).isoformat(timespec='minutes')}"
        f"/{s.end.astimezone(tz).isoformat(timespec='minutes')}"
        for s in slots
    ]


def day_and_start(slots: Iterable[TimeSpan], tz: ZoneInfo = VIENNA) -> list[str]:
    return [s.start.astimezone(tz).strftime("%a %H:%M") for s in slots]


MORNING = [
    "09:00", "09:15", "09:30", "09:45", "10:00", "10:15",
    "10:30", "10:45", "11:00", "11:15", "11:30",
]  # fmt: skip


# -- a normal day ------------------------------------------------------------------


def test_two_ranges_with_the_grid_anchored_at_each_range_start() -> None:
    rules = make_rules(weekdays=("09:00-12:00", "13:10-14:00"))
    slots = lookup(rules, whole_days(MON))
    assert starts(slots) == [*MORNING, "13:10", "13:25"]
    assert all(s.duration == 30 * MINUTE for s in slots)
    assert slots[-1] == span(MON, "13:25", "13:55")


def test_office_hours_day() -> None:
    slots = lookup(make_rules(duration=60, step=30), whole_days(MON))
    assert starts(slots) == [
        "09:00", "09:30", "10:00", "10:30", "11:00",
        "13:00", "13:30", "14:00", "14:30", "15:00", "15:30", "16:00",
    ]  # fmt: skip


def test_requested_duration_overrides_the_rules() -> None:
    slots = lookup(make_rules(weekdays=("09:00-12:00",)), whole_days(MON), duration=60 * MINUTE)
    assert starts(slots) == MORNING[:9]
    assert {s.duration for s in slots} == {60 * MINUTE}


def test_busy_in_the_middle() -> None:
    rules = make_rules(weekdays=("09:00-12:00",))
    slots = lookup(rules, whole_days(MON), busy=[span(MON, "10:00", "10:40")])
    assert starts(slots) == ["09:00", "09:15", "09:30", "10:45", "11:00", "11:15", "11:30"]


def test_buffers_around_busy_time() -> None:
    rules = make_rules(
        weekdays=("09:00-12:00",), buffer_before=10 * MINUTE, buffer_after=5 * MINUTE
    )
    slots = lookup(rules, whole_days(MON), busy=[span(MON, "10:00", "10:40")])
    # 09:30 would need 09:20-10:05 free; 10:45 would need 10:35-11:20 free
    assert starts(slots) == ["09:00", "09:15", "11:00", "11:15", "11:30"]


def test_buffers_may_reach_outside_working_hours() -> None:
    rules = make_rules(
        weekdays=("09:00-12:00",), buffer_before=10 * MINUTE, buffer_after=5 * MINUTE
    )
    assert starts(lookup(rules, whole_days(MON))) == MORNING
    # but busy time just outside the hours still counts against them
    busy = [span(MON, "08:30", "08:55"), span(MON, "12:04", "12:30")]
    assert starts(lookup(rules, whole_days(MON), busy=busy)) == MORNING[1:-1]


def test_buffers_around_taken_appointments() -> None:
    rules = make_rules(
        weekdays=("09:00-12:00",), buffer_before=10 * MINUTE, buffer_after=5 * MINUTE
    )
    slots = lookup(rules, whole_days(MON), taken=[span(MON, "10:00", "10:30")])
    # the booking occupies 09:50-10:35; 09:15 occupies 09:05-09:50, 10:45 occupies 10:35-11:20
    assert starts(slots) == ["09:00", "09:15", "10:45", "11:00", "11:15", "11:30"]


def test_two_appointments_are_separated_by_after_plus_before() -> None:
    rules = make_rules(
        weekdays=("10:00-12:00",), step=5, buffer_before=10 * MINUTE, buffer_after=5 * MINUTE
    )
    slots = lookup(rules, whole_days(MON), taken=[span(MON, "10:00", "10:30")])
    assert starts(slots)[:2] == ["10:45", "10:50"]


def test_taken_without_buffers_only_blocks_its_own_time() -> None:
    rules = make_rules(weekdays=("09:00-12:00",))
    slots = lookup(rules, whole_days(MON), taken=[span(MON, "10:00", "10:30")])
    assert starts(slots) == [t for t in MORNING if t not in ("09:45", "10:00", "10:15")]


def test_min_notice() -> None:
    rules = make_rules(weekdays=("09:00-12:00",), min_notice=timedelta(hours=2))
    slots = lookup(rules, whole_days(MON), now=wall(MON, "07:50"))
    assert starts(slots) == ["10:00", "10:15", "10:30", "10:45", "11:00", "11:15", "11:30"]


def test_slots_in_the_past_are_not_offered() -> None:
    rules = make_rules(weekdays=("09:00-12:00",))
    assert starts(lookup(rules, whole_days(MON), now=wall(MON, "11:01"))) == ["11:15", "11:30"]


def test_max_days_ahead_counts_local_dates() -> None:
    rules = make_rules(weekdays=("09:00-10:00",), step=30, max_days_ahead=1)
    # 00:30 on Tuesday in Vienna is still Monday in UTC: the horizon is Wednesday
    now = wall(TUE, "00:30")
    assert now.date() == MON
    slots = lookup(rules, whole_days(MON, 5), now=now)
    assert day_and_start(slots) == ["Tue 09:00", "Tue 09:30", "Wed 09:00", "Wed 09:30"]


def test_max_days_ahead_zero_means_today_only() -> None:
    rules = make_rules(weekdays=("09:00-10:00",), step=30, max_days_ahead=0)
    slots = lookup(rules, whole_days(MON, 5), now=wall(MON, "08:00"))
    assert day_and_start(slots) == ["Mon 09:00", "Mon 09:30"]


def test_max_per_day_counts_taken_spans_by_local_start_date() -> None:
    rules = make_rules(weekdays=("09:00-10:00",), step=30, max_per_day=2)
    taken = [
        span(MON, "16:00", "16:30"),
        span(MON, "16:30", "17:00"),  # Monday is full
        span(TUE, "16:00", "16:30"),  # Tuesday has room for one more
        TimeSpan(wall(THU, "01:00"), wall(THU, "01:30")),  # Wednesday in UTC, Thursday here
        TimeSpan(wall(THU, "23:30"), wall(FRI, "00:30")),  # starts on Thursday: Thursday is full
    ]
    slots = lookup(rules, whole_days(MON, 5), taken=taken)
    assert day_and_start(slots) == [
        "Tue 09:00", "Tue 09:30", "Wed 09:00", "Wed 09:30", "Fri 09:00", "Fri 09:30",
    ]  # fmt: skip


def test_override_closes_a_day() -> None:
    rules = make_rules(weekdays=("09:00-10:00",), step=30, overrides={TUE: ()})
    slots = lookup(rules, whole_days(MON, 3))
    assert day_and_start(slots) == ["Mon 09:00", "Mon 09:30", "Wed 09:00", "Wed 09:30"]


def test_override_with_other_hours() -> None:
    rules = make_rules(
        weekdays=("09:00-10:00",),
        step=30,
        overrides={TUE: hours("14:00-15:00"), SAT: hours("10:00-11:00")},
    )
    slots = lookup(rules, whole_days(MON, 7))
    assert day_and_start(slots) == [
        "Mon 09:00", "Mon 09:30", "Tue 14:00", "Tue 14:30", "Wed 09:00", "Wed 09:30",
        "Thu 09:00", "Thu 09:30", "Fri 09:00", "Fri 09:30", "Sat 10:00", "Sat 10:30",
    ]  # fmt: skip


def test_weekdays_missing_from_hours_are_closed() -> None:
    assert lookup(make_rules(), whole_days(SAT, 2)) == []


def test_window_clips_without_moving_the_grid() -> None:
    rules = make_rules(weekdays=("09:00-12:00",))
    slots = lookup(rules, TimeSpan(wall(MON, "09:20"), wall(MON, "10:35")))
    assert starts(slots) == ["09:30", "09:45", "10:00"]


def test_overlapping_and_unsorted_ranges_give_no_duplicates() -> None:
    rules = make_rules(weekdays=("09:30-10:30", "09:00-10:00"), step=30)
    assert starts(lookup(rules, whole_days(MON))) == ["09:00", "09:30", "10:00"]


def test_limit_truncates_in_time_order() -> None:
    rules = make_rules(weekdays=("09:00-10:00",), step=30)
    slots = lookup(rules, whole_days(MON, 5), limit=3)
    assert day_and_start(slots) == ["Mon 09:00", "Mon 09:30", "Tue 09:00"]
    assert lookup(rules, whole_days(MON, 5), limit=0) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"limit": -1}, "limit"),
        ({"duration": timedelta(0)}, "duration"),
    ],
)
def test_bad_lookup_arguments(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        lookup(make_rules(), whole_days(MON), **options)


def test_a_step_that_is_not_whole_minutes_is_refused() -> None:
    rules = Rules(
        timezone=VIENNA,
        weekly=(hours(*OFFICE),) * 7,
        duration=timedelta(minutes=30),
        step=timedelta(seconds=90),
    )
    with pytest.raises(InputError, match="step must be a whole number of minutes"):
        lookup(rules, whole_days(MON))


def test_a_negative_buffer_is_refused() -> None:
    rules = make_rules(buffer_after=-5 * MINUTE)
    with pytest.raises(InputError, match="buffer_after must not be negative, got -5m"):
        lookup(rules, whole_days(MON))


def test_naive_now_is_refused() -> None:
    with pytest.raises(InputError):
        lookup(make_rules(), whole_days(MON), now=datetime(2026, 6, 14, 12, 0))


def test_durations_need_not_be_whole_minutes() -> None:
    rules = make_rules(weekdays=("09:00-10:00",), step=20)
    slots = lookup(rules, whole_days(MON), duration=timedelta(minutes=19, seconds=30))
    assert starts(slots) == ["09:00", "09:20", "09:40"]
    assert slots[-1].end == wall(MON, "09:59") + timedelta(seconds=30)


# -- DST ---------------------------------------------------------------------------

ALL_WEEK_MORNINGS = {"weekdays": ("09:00-12:00",), "weekend": ("09:00-12:00",)}


@pytest.mark.parametrize(
    ("tz", "first", "expected"),
    [
        (
            VIENNA,
            date(2027, 3, 27),  # spring forward on Sunday 2027-03-28
            ["2027-03-27T09:00+01:00", "2027-03-28T09:00+02:00", "2027-03-29T09:00+02:00"],
        ),
        (
            VIENNA,
            date(2026, 10, 24),  # fall back on Sunday 2026-10-25
            ["2026-10-24T09:00+02:00", "2026-10-25T09:00+01:00", "2026-10-26T09:00+01:00"],
        ),
        (
            NEW_YORK,
            date(2027, 3, 13),  # spring forward on Sunday 2027-03-14
            ["2027-03-13T09:00-05:00", "2027-03-14T09:00-04:00", "2027-03-15T09:00-04:00"],
        ),
        (
            NEW_YORK,
            date(2026, 10, 31),  # fall back on Sunday 2026-11-01
            ["2026-10-31T09:00-04:00", "2026-11-01T09:00-05:00", "2026-11-02T09:00-05:00"],
        ),
    ],
)
def test_nine_stays_nine_across_dst(tz: ZoneInfo, first: date, expected: list[str]) -> None:
    rules = make_rules(tz=tz, duration=180, step=60, **ALL_WEEK_MORNINGS)
    now = wall(first - timedelta(days=1), "12:00", tz)
    slots = lookup(rules, whole_days(first, 3, tz), now=now)
    assert [s.start.astimezone(tz).isoformat(timespec="minutes") for s in slots] == expected
    assert {s.duration for s in slots} == {timedelta(hours=3)}


def _night(tz: ZoneInfo, day: date, ranges: tuple[str, ...], duration: int, step: int) -> list[str]:
    """The slots of one day with the given hours, as ``start/end`` local ISO times."""
    rules = make_rules(tz=tz, duration=duration, step=step, overrides={day: hours(*ranges)})
    now = wall(day - timedelta(days=1), "12:00", tz)
    return stamped(lookup(rules, whole_days(day, 1, tz), now=now), tz)


SPRING_VIENNA = date(2027, 3, 28)  # 02:00 -> 03:00
FALL_VIENNA = date(2026, 10, 25)  # 03:00 -> 02:00
SPRING_NEW_YORK = date(2027, 3, 14)  # 02:00 -> 03:00
FALL_NEW_YORK = date(2026, 11, 1)  # 02:00 -> 01:00


def test_spring_forward_skips_nonexistent_starts_vienna() -> None:
    assert _night(VIENNA, SPRING_VIENNA, ("01:00-04:00",), 30, 30) == [
        "2027-03-28T01:00+01:00/2027-03-28T01:30+01:00",
        "2027-03-28T01:30+01:00/2027-03-28T03:00+02:00",  # 30 real minutes
        "2027-03-28T03:00+02:00/2027-03-28T03:30+02:00",
        "2027-03-28T03:30+02:00/2027-03-28T04:00+02:00",
    ]


def test_spring_forward_never_ends_past_the_range_vienna() -> None:
    assert _night(VIENNA, SPRING_VIENNA, ("01:00-04:00",), 60, 30) == [
        "2027-03-28T01:00+01:00/2027-03-28T03:00+02:00",
        "2027-03-28T01:30+01:00/2027-03-28T03:30+02:00",
        "2027-03-28T03:00+02:00/2027-03-28T04:00+02:00",
    ]


def test_range_ending_inside_the_gap_ends_at_the_change() -> None:
    # 02:30 does not exist: the range ends at 02:00 +01:00 (= 03:00 +02:00)
    assert _night(VIENNA, SPRING_VIENNA, ("01:00-02:30",), 30, 30) == [
        "2027-03-28T01:00+01:00/2027-03-28T01:30+01:00",
        "2027-03-28T01:30+01:00/2027-03-28T03:00+02:00",
    ]
    assert _night(VIENNA, SPRING_VIENNA, ("01:00-02:30",), 45, 30) == [
        "2027-03-28T01:00+01:00/2027-03-28T01:45+01:00",
    ]


def test_range_starting_inside_the_gap_starts_at_the_change() -> None:
    assert _night(VIENNA, SPRING_VIENNA, ("02:30-04:00",), 30, 15) == [
        "2027-03-28T03:00+02:00/2027-03-28T03:30+02:00",
        "2027-03-28T03:15+02:00/2027-03-28T03:45+02:00",
        "2027-03-28T03:30+02:00/2027-03-28T04:00+02:00",
    ]


def test_range_inside_the_gap_is_closed() -> None:
    assert _night(VIENNA, SPRING_VIENNA, ("02:00-02:59",), 10, 10) == []


def test_fall_back_takes_the_first_instant_vienna() -> None:
    assert _night(VIENNA, FALL_VIENNA, ("01:00-04:00",), 30, 30) == [
        "2026-10-25T01:00+02:00/2026-10-25T01:30+02:00",
        "2026-10-25T01:30+02:00/2026-10-25T02:00+02:00",
        "2026-10-25T02:00+02:00/2026-10-25T02:30+02:00",
        "2026-10-25T02:30+02:00/2026-10-25T02:00+01:00",  # ends in the repeated hour
        "2026-10-25T03:00+01:00/2026-10-25T03:30+01:00",
        "2026-10-25T03:30+01:00/2026-10-25T04:00+01:00",
    ]


def test_fall_back_long_slot_may_use_the_repeated_hour() -> None:
    # the range 00:00-03:00 lasts four real hours; a 3h slot from 01:00 +02:00 ends at
    # 03:00 +01:00, inside it (a wall-clock end check would have refused it)
    assert _night(VIENNA, FALL_VIENNA, ("00:00-03:00",), 180, 60) == [
        "2026-10-25T00:00+02:00/2026-10-25T02:00+01:00",
        "2026-10-25T01:00+02:00/2026-10-25T03:00+01:00",
    ]


def test_spring_forward_new_york() -> None:
    assert _night(NEW_YORK, SPRING_NEW_YORK, ("01:00-04:00",), 30, 30) == [
        "2027-03-14T01:00-05:00/2027-03-14T01:30-05:00",
        "2027-03-14T01:30-05:00/2027-03-14T03:00-04:00",
        "2027-03-14T03:00-04:00/2027-03-14T03:30-04:00",
        "2027-03-14T03:30-04:00/2027-03-14T04:00-04:00",
    ]


def test_fall_back_new_york() -> None:
    assert _night(NEW_YORK, FALL_NEW_YORK, ("00:00-03:00",), 30, 30) == [
        "2026-11-01T00:00-04:00/2026-11-01T00:30-04:00",
        "2026-11-01T00:30-04:00/2026-11-01T01:00-04:00",
        "2026-11-01T01:00-04:00/2026-11-01T01:30-04:00",
        "2026-11-01T01:30-04:00/2026-11-01T01:00-05:00",
        "2026-11-01T02:00-05:00/2026-11-01T02:30-05:00",
        "2026-11-01T02:30-05:00/2026-11-01T03:00-05:00",
    ]


def test_fall_back_second_occurrence_is_not_a_slot_start() -> None:
    rules = make_rules(step=30, overrides={FALL_VIENNA: hours("01:00-04:00")})
    now = wall(FALL_VIENNA - timedelta(days=1), "12:00")
    first = wall(FALL_VIENNA, "02:30", fold=0)
    second = wall(FALL_VIENNA, "02:30", fold=1)
    assert second - first == timedelta(hours=1)
    assert problems(rules, TimeSpan(first, first + 30 * MINUTE), now=now) == []
    [reason] = problems(rules, TimeSpan(second, second + 30 * MINUTE), now=now)
    assert "02:30 (the second 02:30, after the clocks went back)" in reason
    assert "not on the 30-minute grid of the 01:00-04:00 hours" in reason


def test_spring_forward_slot_problems_agree() -> None:
    rules = make_rules(step=30, overrides={SPRING_VIENNA: hours("01:00-04:00")})
    now = wall(SPRING_VIENNA - timedelta(days=1), "12:00")
    start = wall(SPRING_VIENNA, "01:30")
    assert problems(rules, TimeSpan(start, start + 60 * MINUTE), now=now) == []
    assert problems(rules, TimeSpan(start, start + 150 * MINUTE), now=now) == [
        "outside working hours (Sun 01:00-04:00)"
    ]


# -- slot_problems -----------------------------------------------------------------

STRICT = {
    "buffer_before": 10 * MINUTE,
    "buffer_after": 5 * MINUTE,
    "min_notice": timedelta(hours=2),
    "max_days_ahead": 60,
    "max_per_day": 8,
}


def test_a_bookable_slot_has_no_problems() -> None:
    assert problems(make_rules(**STRICT), span(MON, "09:00", "09:30")) == []


def test_any_length_on_the_grid_inside_one_range_is_fine() -> None:
    rules = make_rules(**STRICT)
    assert problems(rules, span(MON, "09:15", "11:45")) == []
    assert problems(rules, span(MON, "13:00", "17:00")) == []
    assert problems(rules, span(MON, "09:00", "09:07")) == []


def test_off_the_grid() -> None:
    rules = make_rules(weekdays=("09:00-12:00", "13:10-14:00"))
    assert problems(rules, span(MON, "10:05", "10:35")) == [
        "10:05 is not on the 15-minute grid of the 09:00-12:00 hours"
    ]
    assert problems(rules, span(MON, "13:15", "13:45")) == [
        "13:15 is not on the 15-minute grid of the 13:10-14:00 hours"
    ]


def test_outside_working_hours() -> None:
    rules = make_rules()
    outside = "outside working hours (Mon 09:00-12:00, 13:00-17:00)"
    assert problems(rules, span(MON, "12:00", "12:30")) == [outside]
    assert problems(rules, span(MON, "11:45", "13:15")) == [outside]  # spans the lunch break
    assert problems(rules, span(MON, "16:45", "17:15")) == [outside]
    assert problems(rules, span(MON, "08:45", "09:15")) == [outside]
    assert problems(rules, span(SAT, "10:00", "10:30")) == [
        "outside working hours (closed on Sat 2026-06-20)"
    ]


def test_override_hours_are_the_ones_checked() -> None:
    rules = make_rules(overrides={MON: hours("14:00-15:00"), TUE: ()})
    assert problems(rules, span(MON, "14:30", "15:00")) == []
    assert problems(rules, span(MON, "09:00", "09:30")) == [
        "outside working hours (Mon 14:00-15:00)"
    ]
    assert problems(rules, span(TUE, "09:00", "09:30")) == [
        "outside working hours (closed on Tue 2026-06-16)"
    ]


def test_notice_and_horizon_problems() -> None:
    rules = make_rules(**STRICT)
    now = wall(MON, "08:00")
    assert problems(rules, span(MON, "09:45", "10:15"), now=now) == [
        "less than 2h from now (minimum notice)"
    ]
    assert problems(rules, span(MON, "10:00", "10:30"), now=now) == []
    assert problems(rules, span(MON, "09:45", "10:15"), now=wall(MON, "10:00")) == [
        "less than 2h from now (minimum notice)"
    ]
    assert problems(make_rules(), span(MON, "09:45", "10:15"), now=wall(MON, "10:00")) == [
        "starts in the past"
    ]
    day_60, day_61 = MON + timedelta(days=60), MON + timedelta(days=61)  # Fri, Sat
    assert problems(rules, span(day_60, "16:30", "17:00"), now=now) == []
    every_day = make_rules(weekend=OFFICE, **STRICT)
    assert problems(every_day, span(day_61, "09:00", "09:30"), now=now) == [
        "more than 60 days ahead"
    ]


def test_busy_and_buffer_problems() -> None:
    rules = make_rules(**STRICT)
    busy = [span(MON, "10:00", "10:40")]
    assert problems(rules, span(MON, "10:15", "10:45"), busy=busy) == ["overlaps busy time"]
    assert problems(rules, span(MON, "10:45", "11:15"), busy=busy) == [
        "too close to busy time (buffers)"
    ]
    assert problems(rules, span(MON, "09:30", "10:00"), busy=busy) == [
        "too close to busy time (buffers)"
    ]
    assert problems(rules, span(MON, "11:00", "11:30"), busy=busy) == []


def test_taken_and_buffer_problems() -> None:
    rules = make_rules(step=5, **STRICT)
    taken = [span(MON, "10:00", "10:30")]
    assert problems(rules, span(MON, "10:15", "10:45"), taken=taken) == [
        "overlaps another appointment"
    ]
    assert problems(rules, span(MON, "10:30", "11:00"), taken=taken) == [
        "too close to another appointment (buffers)"
    ]
    assert problems(rules, span(MON, "09:30", "09:55"), taken=taken) == [
        "too close to another appointment (buffers)"
    ]
    # both appointments' buffers count: 10:30 + 5m after + 10m before = 10:45
    assert problems(rules, span(MON, "10:40", "11:10"), taken=taken) == [
        "too close to another appointment (buffers)"
    ]
    assert problems(rules, span(MON, "10:45", "11:15"), taken=taken) == []
    assert problems(rules, span(MON, "09:15", "09:45"), taken=taken) == []


def test_daily_limit_problem() -> None:
    rules = make_rules(**STRICT)
    taken = [span(TUE, f"{h:02d}:00", f"{h:02d}:30") for h in range(8)]  # eight early on Tuesday
    assert problems(rules, span(MON, "09:00", "09:30"), taken=taken) == []
    assert problems(rules, span(TUE, "09:00", "09:30"), taken=taken) == [
        "the daily limit of 8 appointments is reached"
    ]


def test_every_problem_is_reported() -> None:
    rules = make_rules(weekdays=("09:00-12:00",), **{**STRICT, "max_per_day": 1})
    slot = span(MON, "10:05", "10:35")
    assert problems(
        rules,
        slot,
        now=wall(MON, "09:00"),
        busy=[span(MON, "10:30", "11:00")],
        taken=[span(MON, "10:00", "10:30")],
    ) == [
        "10:05 is not on the 15-minute grid of the 09:00-12:00 hours",
        "the daily limit of 1 appointment is reached",
        "less than 2h from now (minimum notice)",
        "overlaps busy time",
        "overlaps another appointment",
    ]


# -- properties against a brute-force oracle ----------------------------------------


def _bound(day: date, minute: int, tz: ZoneInfo, *, is_start: bool) -> datetime:
    """A range bound, a nonexistent one moved minute by minute out of the gap."""
    probe = minute
    while (instant := local_instant(day, probe, tz)) is None:
        probe += 1 if is_start else -1
    return instant if is_start or probe == minute else instant + MINUTE


def _oracle_candidates(rules: Rules, window: TimeSpan, length: timedelta) -> list[TimeSpan]:
    """Every grid slot inside working hours and ``window``, by the book."""
    tz, step = rules.timezone, rules.step // MINUTE
    day, last = window.start.astimezone(tz).date(), window.end.astimezone(tz).date()
    found: set[TimeSpan] = set()
    while day <= last:
        for wall_range in rules.hours_on(day):
            low = _bound(day, wall_range.start, tz, is_start=True)
            high = _bound(day, wall_range.end, tz, is_start=False)
            for minute in range(wall_range.start, wall_range.end, step):
                start = local_instant(day, minute, tz)
                if start is not None and low <= start and start + length <= high:
                    found.add(TimeSpan(start, start + length))
        day += timedelta(days=1)
    return sorted(s for s in found if window.contains(s))


def _oracle_ok(
    rules: Rules, slot: TimeSpan, now: datetime, busy: list[TimeSpan], taken: list[TimeSpan]
) -> bool:
    tz, before, after = rules.timezone, rules.buffer_before, rules.buffer_after
    day = slot.start.astimezone(tz).date()
    occupied = slot.widen(before, after)
    per_day = sum(1 for t in taken if t.start.astimezone(tz).date() == day)
    return (
        slot.start >= now + rules.min_notice
        and day <= now.astimezone(tz).date() + timedelta(days=rules.max_days_ahead)
        and not any(occupied.overlaps(b) for b in busy)
        and not any(occupied.overlaps(t.widen(before, after)) for t in taken)
        and (rules.max_per_day is None or per_day < rules.max_per_day)
    )


BASES = [
    datetime(2026, 6, 15, 0, 0),
    datetime(2026, 10, 23, 0, 0),  # Vienna falls back on the 25th
    datetime(2026, 10, 30, 0, 0),  # New York falls back on 1 November
    datetime(2027, 3, 12, 0, 0),  # New York springs forward on the 14th
    datetime(2027, 3, 26, 0, 0),  # Vienna springs forward on the 28th
]


@st.composite
def _wall_ranges(draw: st.DrawFn) -> tuple[WallRange, ...]:
    if draw(st.integers(0, 4)) == 0:
        return ()  # closed
    cuts = draw(st.lists(st.integers(0, 96), min_size=2, max_size=6, unique=True))
    cuts = sorted(c * 15 for c in cuts)
    return tuple(WallRange(a, b) for a, b in zip(cuts[::2], cuts[1::2], strict=False))


@st.composite
def _rules(draw: st.DrawFn, tz: ZoneInfo) -> Rules:
    buffers = st.sampled_from([0, 0, 5, 10, 15, 25]).map(lambda m: m * MINUTE)
    return Rules(
        timezone=tz,
        weekly=tuple(draw(_wall_ranges()) for _ in range(7)),
        duration=draw(st.sampled_from([10, 15, 25, 30, 45, 60, 90, 180])) * MINUTE,
        step=draw(st.sampled_from([5, 10, 15, 20, 30, 45, 60])) * MINUTE,
        buffer_before=draw(buffers),
        buffer_after=draw(buffers),
        min_notice=draw(st.sampled_from([0, 0, 30, 120, 24 * 60])) * MINUTE,
        max_days_ahead=draw(st.sampled_from([0, 1, 2, 3, 5, 8])),
        max_per_day=draw(st.none() | st.integers(1, 3)),
    )


@st.composite
def _spans_near(draw: st.DrawFn, start: datetime, count: int) -> list[TimeSpan]:
    """Up to ``count`` spans from half a day before ``start`` to three days after it."""
    spans = []
    for _ in range(draw(st.integers(0, count))):
        begin = start + draw(st.integers(-12 * 60, 3 * 24 * 60)) * MINUTE
        spans.append(TimeSpan(begin, begin + draw(st.integers(1, 240)) * MINUTE))
    return spans


@st.composite
def _scenarios(draw: st.DrawFn) -> dict[str, Any]:
    """Rules in a pinned non-UTC zone, a window of up to three days near a DST change
    (or in summer), busy time and appointments around it, and a ``now`` before it."""
    tz = draw(st.sampled_from([VIENNA, NEW_YORK]))
    base = draw(st.sampled_from(BASES)).replace(tzinfo=tz).astimezone(UTC)
    start = base + draw(st.integers(0, 3 * 24 * 60)) * MINUTE
    length = draw(st.integers(1, 3 * 24 * 60) | st.integers(12 * 60, 3 * 24 * 60))
    window = TimeSpan(start, start + length * MINUTE)
    return {
        "rules": draw(_rules(tz)),
        "window": window,
        "now": start + draw(st.integers(-2 * 24 * 60, 6 * 60)) * MINUTE,
        "busy": draw(_spans_near(start, 12)),
        "taken": draw(_spans_near(start, 10)),
    }


def _inside_hours(rules: Rules, slot: TimeSpan) -> bool:
    tz = rules.timezone
    local = slot.start.astimezone(tz)
    day, minute = local.date(), local.hour * 60 + local.minute
    return any(
        _bound(day, r.start, tz, is_start=True) <= slot.start
        and slot.end <= _bound(day, r.end, tz, is_start=False)
        and (minute - r.start) % (rules.step // MINUTE) == 0
        and local_instant(day, minute, tz) == slot.start  # the first instant of its wall start
        for r in rules.hours_on(day)
    )


@settings(max_examples=250, deadline=None)
@given(_scenarios())
def test_find_slots_properties(scenario: dict[str, Any]) -> None:
    rules, window, now = scenario["rules"], scenario["window"], scenario["now"]
    busy, taken = scenario["busy"], scenario["taken"]
    before, after = rules.buffer_before, rules.buffer_after
    slots = find_slots(rules, window, now=now, busy=busy, taken=taken)

    assert all(a.start < b.start for a, b in itertools.pairwise(slots))
    for slot in slots:
        assert slot.duration == rules.duration
        assert window.contains(slot)
        assert _inside_hours(rules, slot)
        assert not any(slot.widen(before, after).overlaps(b) for b in busy)
        assert not any(slot.overlaps(t.widen(before, after)) for t in taken)
        assert slot_problems(rules, slot, now=now, busy=busy, taken=taken) == []

    candidates = _oracle_candidates(rules, window, rules.duration)
    expected = [c for c in candidates if _oracle_ok(rules, c, now, busy, taken)]
    assert slots == expected
    for omitted in set(candidates) - set(slots):
        assert slot_problems(rules, omitted, now=now, busy=busy, taken=taken) != []


@settings(max_examples=100, deadline=None)
@given(_scenarios(), st.integers(0, 5 * 24 * 60), st.integers(1, 240))
def test_slot_problems_agrees_with_the_oracle_for_any_slot(
    scenario: dict[str, Any], offset: int, length: int
) -> None:
    rules, now = scenario["rules"], scenario["now"]
    slot_start = scenario["window"].start + offset * MINUTE
    slot = TimeSpan(slot_start, slot_start + length * MINUTE)
    found = slot_problems(rules, slot, now=now, busy=scenario["busy"], taken=scenario["taken"])
    bookable = _inside_hours(rules, slot) and _oracle_ok(
        rules, slot, now, scenario["busy"], scenario["taken"]
    )
    assert (found == []) is bookable


@settings(max_examples=50, deadline=None)
@given(_scenarios(), st.integers(1, 20))
def test_limit_is_a_prefix(scenario: dict[str, Any], limit: int) -> None:
    everything = find_slots(
        scenario["rules"],
        scenario["window"],
        now=scenario["now"],
        busy=scenario["busy"],
        taken=scenario["taken"],
    )
    limited = find_slots(
        scenario["rules"],
        scenario["window"],
        now=scenario["now"],
        busy=scenario["busy"],
        taken=scenario["taken"],
        limit=limit,
    )
    assert limited == everything[:limit]


# -- speed -------------------------------------------------------------------------


def test_a_62_day_lookup_with_500_busy_spans_is_fast() -> None:
    rules = make_rules(buffer_after=10 * MINUTE, min_notice=timedelta(hours=2), max_per_day=8)
    now = wall(MON, "07:00")
    window = TimeSpan(now, now + timedelta(days=62))
    busy = [
        TimeSpan(now + (n * 178 + 13) * MINUTE, now + (n * 178 + 13 + 15 * (n % 4 + 1)) * MINUTE)
        for n in range(500)
    ]
    taken = [span(MON + timedelta(days=d), "15:00", "15:30") for d in range(0, 62, 2)]
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        slots = find_slots(rules, window, now=now, busy=busy, taken=taken)
        timings.append(time.perf_counter() - started)
    assert len(slots) > 300
    # about 3 ms on a development machine; a generous bound so a busy CI host passes
    assert statistics.median(timings) < 0.05
