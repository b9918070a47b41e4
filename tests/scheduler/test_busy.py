"""The one busy rule: which events block, and merged free/busy spans."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calsync.model import Event, EventStatus, TimeSpan, Transparency, local_span_of_days
from calsync.scheduler.busy import busy_spans, is_busy, merge_spans

VIENNA = ZoneInfo("Europe/Vienna")


def at(hour: int, minute: int = 0, day: int = 15) -> datetime:
    """A wall time in Vienna on 2026-06-<day>."""
    return datetime(2026, 6, day, hour, minute, tzinfo=VIENNA)


def span(start: tuple[int, int], end: tuple[int, int]) -> TimeSpan:
    return TimeSpan(at(*start), at(*end))


def event(
    start: tuple[int, int] = (9, 0),
    end: tuple[int, int] = (10, 0),
    *,
    status: EventStatus = EventStatus.CONFIRMED,
    transparency: Transparency = Transparency.OPAQUE,
    declined: bool = False,
) -> Event:
    return Event(
        provider_id=f"e-{start}-{end}",
        span=span(start, end),
        status=status,
        transparency=transparency,
        declined=declined,
    )


# -- is_busy -----------------------------------------------------------------------


def _expected_busy(
    status: EventStatus, transparency: Transparency, declined: bool, tentative_busy: bool
) -> bool:
    """The rule written as a table, independent of the implementation."""
    if status is EventStatus.CANCELLED:
        return False
    if transparency is Transparency.TRANSPARENT or declined:
        return False
    if status is EventStatus.TENTATIVE:
        return tentative_busy
    return True


@pytest.mark.parametrize(
    ("status", "transparency", "declined", "tentative_busy"),
    list(itertools.product(EventStatus, Transparency, [False, True], [False, True])),
)
def test_is_busy_every_combination(
    status: EventStatus, transparency: Transparency, declined: bool, tentative_busy: bool
) -> None:
    e = event(status=status, transparency=transparency, declined=declined)
    assert is_busy(e, tentative_busy=tentative_busy) is _expected_busy(
        status, transparency, declined, tentative_busy
    )


def test_is_busy_spot_checks() -> None:
    assert is_busy(event())
    assert is_busy(event(status=EventStatus.TENTATIVE))  # tentative counts by default
    assert not is_busy(event(status=EventStatus.TENTATIVE), tentative_busy=False)
    assert not is_busy(event(status=EventStatus.CANCELLED))
    assert not is_busy(event(transparency=Transparency.TRANSPARENT))
    assert not is_busy(event(declined=True))


# -- merge_spans -------------------------------------------------------------------


def test_merge_overlapping() -> None:
    merged = merge_spans([span((9, 0), (10, 0)), span((9, 30), (11, 0))])
    assert merged == [span((9, 0), (11, 0))]


def test_merge_touching() -> None:
    merged = merge_spans([span((9, 0), (10, 0)), span((10, 0), (10, 30))])
    assert merged == [span((9, 0), (10, 30))]


def test_merge_nested() -> None:
    merged = merge_spans([span((9, 0), (12, 0)), span((10, 0), (10, 30))])
    assert merged == [span((9, 0), (12, 0))]


def test_merge_unsorted_and_disjoint() -> None:
    merged = merge_spans(
        [
            span((14, 0), (15, 0)),
            span((9, 0), (9, 30)),
            span((11, 0), (12, 0)),
            span((9, 15), (10, 0)),
            span((14, 30), (14, 45)),
        ]
    )
    assert merged == [span((9, 0), (10, 0)), span((11, 0), (12, 0)), span((14, 0), (15, 0))]


def test_merge_keeps_a_gap_of_one_microsecond() -> None:
    first = span((9, 0), (10, 0))
    second = TimeSpan(at(10) + timedelta(microseconds=1), at(11))
    assert merge_spans([second, first]) == [first, second]


def test_merge_empty() -> None:
    assert merge_spans([]) == []


# -- busy_spans --------------------------------------------------------------------


def test_busy_spans_filters_and_merges() -> None:
    events = [
        event((9, 0), (10, 0)),
        event((9, 30), (10, 30), status=EventStatus.TENTATIVE),
        event((10, 30), (11, 0)),  # touches the tentative one
        event((12, 0), (13, 0), status=EventStatus.CANCELLED),
        event((13, 0), (14, 0), transparency=Transparency.TRANSPARENT),
        event((14, 0), (15, 0), declined=True),
        event((16, 0), (17, 0)),
    ]
    assert busy_spans(events) == [span((9, 0), (11, 0)), span((16, 0), (17, 0))]
    assert busy_spans(events, tentative_busy=False) == [
        span((9, 0), (10, 0)),
        span((10, 30), (11, 0)),
        span((16, 0), (17, 0)),
    ]


def test_busy_spans_clipped_to_within() -> None:
    events = [event((8, 0), (9, 30)), event((10, 0), (11, 0)), event((11, 30), (13, 0))]
    within = span((9, 0), (12, 0))
    assert busy_spans(events, within=within) == [
        span((9, 0), (9, 30)),
        span((10, 0), (11, 0)),
        span((11, 30), (12, 0)),
    ]


def test_busy_spans_clipping_drops_outside_and_touching() -> None:
    events = [event((7, 0), (8, 0)), event((8, 0), (9, 0)), event((12, 0), (13, 0))]
    assert busy_spans(events, within=span((9, 0), (12, 0))) == []


def test_all_day_event_blocks_its_local_day() -> None:
    day = at(0).date()
    all_day = Event(
        provider_id="holiday",
        span=local_span_of_days(day, day + timedelta(days=1), VIENNA),
        all_day=True,
    )
    assert busy_spans([all_day]) == [TimeSpan(at(0), at(0, day=16))]


# -- properties --------------------------------------------------------------------

_minutes = st.integers(min_value=0, max_value=24 * 60)


@st.composite
def _spans(draw: st.DrawFn) -> TimeSpan:
    start = draw(_minutes)
    length = draw(st.integers(min_value=1, max_value=180))
    base = at(0)
    return TimeSpan(base + timedelta(minutes=start), base + timedelta(minutes=start + length))


@settings(max_examples=200, deadline=None)
@given(st.lists(_spans(), max_size=30))
def test_merge_properties(spans: list[TimeSpan]) -> None:
    merged = merge_spans(spans)
    # sorted, disjoint and not touching
    assert all(a.end < b.start for a, b in itertools.pairwise(merged))
    # covers exactly the same minutes
    minute = timedelta(minutes=1)

    def covered(parts: list[TimeSpan]) -> set[datetime]:
        return {p.start + i * minute for p in parts for i in range(p.duration // minute)}

    assert covered(merged) == covered(spans)
