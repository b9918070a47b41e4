"""ICS provider: the ICS -> Event mapping (``_wire``), the adapter against a real HTTP
server and local files, and the demo calendars in ``examples/``.

Every expected instant is written out by hand with its zone; nothing expected
is computed by the code under test.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from calsync.errors import (
    InputError,
    ProviderAuthError,
    ProviderDataError,
    ProviderUnavailableError,
    RateLimitedError,
)
from calsync.model import Event, EventStatus, TimeSpan, Transparency
from calsync.providers.base import CalendarInfo, ChangeBatch
from calsync.providers.ics import IcsProvider, describe_source
from calsync.providers.ics import provider as provider_module
from calsync.providers.ics._wire import parse_feed
from tests.fakes.ics_server import FakeIcsServer

VIENNA = ZoneInfo("Europe/Vienna")
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DECEMBER = TimeSpan(datetime(2026, 12, 1, tzinfo=VIENNA), datetime(2027, 1, 1, tzinfo=VIENNA))


def ics(*events: str, header: str = "", extra: str = "") -> bytes:
    """A VCALENDAR (CRLF lines) holding ``events`` (VEVENT bodies) and ``extra`` components."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//calsync tests//EN"]
    lines += [line.strip() for line in header.strip().splitlines()]
    lines += [line.strip() for line in extra.strip().splitlines()]
    for body in events:
        lines += ["BEGIN:VEVENT", "DTSTAMP:20261101T120000Z"]
        lines += [line.strip() for line in body.strip().splitlines()]
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return ("\r\n".join(line for line in lines if line) + "\r\n").encode()


def expand(data: bytes, window: TimeSpan = DECEMBER, zone: ZoneInfo = VIENNA) -> dict[str, Event]:
    return {e.provider_id: e for e in parse_feed(data).events(window, zone)}


def span(start: datetime, end: datetime) -> TimeSpan:
    return TimeSpan(start, end)


VIENNA_VTIMEZONE = """
BEGIN:VTIMEZONE
TZID:Europe/Vienna
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE
"""

WEEKLY_VIENNA = """
UID:weekly
DTSTART;TZID=Europe/Vienna:20261207T090000
DTEND;TZID=Europe/Vienna:20261207T100000
RRULE:FREQ=WEEKLY
"""


# --- single events, status, transparency ------------------------------------------------


def test_single_event_with_tzid_maps_to_one_event() -> None:
    events = expand(
        ics(
            """
            UID:one
            LAST-MODIFIED:20261120T101500Z
            DTSTART;TZID=Europe/Vienna:20261207T090000
            DTEND;TZID=Europe/Vienna:20261207T103000
            """,
            extra=VIENNA_VTIMEZONE,
        )
    )
    assert events == {
        "one": Event(
            "one",
            span(datetime(2026, 12, 7, 8, 0, tzinfo=UTC), datetime(2026, 12, 7, 9, 30, tzinfo=UTC)),
            updated=datetime(2026, 11, 20, 10, 15, tzinfo=UTC),
        )
    }


def test_updated_falls_back_to_dtstamp() -> None:
    events = expand(ics("UID:a\nDTSTART:20261207T080000Z\nDTEND:20261207T090000Z"))
    assert events["a"].updated == datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    assert events["a"].etag is None
    assert events["a"].declined is False


@pytest.mark.parametrize(
    ("lines", "status", "transparency"),
    [
        ("STATUS:CONFIRMED", EventStatus.CONFIRMED, Transparency.OPAQUE),
        ("STATUS:TENTATIVE", EventStatus.TENTATIVE, Transparency.OPAQUE),
        ("STATUS:CANCELLED", EventStatus.CANCELLED, Transparency.OPAQUE),
        ("TRANSP:TRANSPARENT", EventStatus.CONFIRMED, Transparency.TRANSPARENT),
        ("TRANSP:OPAQUE", EventStatus.CONFIRMED, Transparency.OPAQUE),
        ("X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE", EventStatus.TENTATIVE, Transparency.OPAQUE),
        ("X-MICROSOFT-CDO-BUSYSTATUS:FREE", EventStatus.CONFIRMED, Transparency.TRANSPARENT),
        ("X-MICROSOFT-CDO-BUSYSTATUS:OOF", EventStatus.CONFIRMED, Transparency.OPAQUE),
    ],
)
def test_status_and_transparency(
    lines: str, status: EventStatus, transparency: Transparency
) -> None:
    event = expand(ics(f"UID:s\nDTSTART:20261207T080000Z\nDTEND:20261207T090000Z\n{lines}"))["s"]
    assert (event.status, event.transparency) == (status, transparency)


def test_duration_instead_of_dtend() -> None:
    event = expand(ics("UID:d\nDTSTART;TZID=Europe/Vienna:20261204T073000\nDURATION:PT2H"))["d"]
    assert event.span == span(
        datetime(2026, 12, 4, 7, 30, tzinfo=VIENNA), datetime(2026, 12, 4, 9, 30, tzinfo=VIENNA)
    )


def test_zero_and_negative_length_events_are_skipped() -> None:
    events = expand(
        ics(
            "UID:no-end\nDTSTART:20261207T080000Z",
            "UID:same\nDTSTART:20261207T080000Z\nDTEND:20261207T080000Z",
            "UID:inverted\nDTSTART:20261207T090000Z\nDTEND:20261207T080000Z",
            "UID:negative\nDTSTART:20261207T090000Z\nDURATION:-PT1H",
            "UID:zero-series\nDTSTART:20261207T080000Z\nRRULE:FREQ=DAILY;COUNT=3",
            "UID:ok\nDTSTART:20261207T080000Z\nDTEND:20261207T080100Z",
        )
    )
    assert set(events) == {"ok"}


def test_event_without_uid_gets_a_stable_id() -> None:
    data = ics("DTSTART:20261207T080000Z\nDTEND:20261207T090000Z\nSUMMARY:anonymous")
    first, second = set(expand(data)), set(expand(data))
    assert first == second
    assert len(first) == 1
    assert next(iter(first)).startswith("calsync-nouid-")


# --- all-day ----------------------------------------------------------------------------


def test_all_day_event_spans_local_days_with_exclusive_end() -> None:
    events = expand(
        ics(
            "UID:one-day\nDTSTART;VALUE=DATE:20261208\nDTEND;VALUE=DATE:20261209",
            "UID:no-end\nDTSTART;VALUE=DATE:20261210",
            "UID:same-day\nDTSTART;VALUE=DATE:20261211\nDTEND;VALUE=DATE:20261211",
            "UID:holiday\nDTSTART;VALUE=DATE:20261224\nDTEND;VALUE=DATE:20261227",
            "UID:two-days\nDTSTART;VALUE=DATE:20261214\nDURATION:P2D",
        )
    )
    assert {k: (e.span, e.all_day) for k, e in events.items()} == {
        "one-day": (
            span(datetime(2026, 12, 7, 23, tzinfo=UTC), datetime(2026, 12, 8, 23, tzinfo=UTC)),
            True,
        ),
        "no-end": (
            span(datetime(2026, 12, 9, 23, tzinfo=UTC), datetime(2026, 12, 10, 23, tzinfo=UTC)),
            True,
        ),
        "same-day": (
            span(datetime(2026, 12, 10, 23, tzinfo=UTC), datetime(2026, 12, 11, 23, tzinfo=UTC)),
            True,
        ),
        "holiday": (
            span(datetime(2026, 12, 23, 23, tzinfo=UTC), datetime(2026, 12, 26, 23, tzinfo=UTC)),
            True,
        ),
        "two-days": (
            span(datetime(2026, 12, 13, 23, tzinfo=UTC), datetime(2026, 12, 15, 23, tzinfo=UTC)),
            True,
        ),
    }


def test_all_day_uses_x_wr_timezone_over_the_default() -> None:
    data = ics("UID:ny\nDTSTART;VALUE=DATE:20261225", header="X-WR-TIMEZONE:America/New_York")
    event = expand(data, zone=VIENNA)["ny"]
    assert event.span == span(
        datetime(2026, 12, 25, 5, tzinfo=UTC), datetime(2026, 12, 26, 5, tzinfo=UTC)
    )


def test_all_day_across_dst_change_is_23_hours_long() -> None:
    window = span(datetime(2027, 3, 1, tzinfo=VIENNA), datetime(2027, 4, 1, tzinfo=VIENNA))
    event = expand(ics("UID:dst\nDTSTART;VALUE=DATE:20270328"), window)["dst"]
    assert event.span == span(
        datetime(2027, 3, 27, 23, tzinfo=UTC), datetime(2027, 3, 28, 22, tzinfo=UTC)
    )


def test_all_day_yearly_series_ids_use_the_date() -> None:
    window = span(datetime(2026, 12, 1, tzinfo=VIENNA), datetime(2028, 1, 1, tzinfo=VIENNA))
    data = ics("UID:holiday\nDTSTART;VALUE=DATE:20261208\nRRULE:FREQ=YEARLY")
    assert set(expand(data, window)) == {"holiday/20261208", "holiday/20271208"}


# --- recurrence -------------------------------------------------------------------------


def test_weekly_vienna_meeting_keeps_local_time_across_dst() -> None:
    window = span(datetime(2027, 3, 15, tzinfo=VIENNA), datetime(2027, 4, 5, tzinfo=VIENNA))
    data = ics(
        """
        UID:team
        DTSTART;TZID=Europe/Vienna:20261207T090000
        DTEND;TZID=Europe/Vienna:20261207T100000
        RRULE:FREQ=WEEKLY;BYDAY=MO
        """,
        extra=VIENNA_VTIMEZONE,
    )
    assert {k: e.span for k, e in expand(data, window).items()} == {
        "team/20270315T080000Z": span(
            datetime(2027, 3, 15, 8, tzinfo=UTC), datetime(2027, 3, 15, 9, tzinfo=UTC)
        ),
        "team/20270322T080000Z": span(
            datetime(2027, 3, 22, 8, tzinfo=UTC), datetime(2027, 3, 22, 9, tzinfo=UTC)
        ),
        "team/20270329T070000Z": span(
            datetime(2027, 3, 29, 7, tzinfo=UTC), datetime(2027, 3, 29, 8, tzinfo=UTC)
        ),
    }


def test_weekly_new_york_meeting_keeps_local_time_across_us_dst() -> None:
    window = span(datetime(2027, 3, 8, tzinfo=NEW_YORK), datetime(2027, 3, 20, tzinfo=NEW_YORK))
    data = ics(
        """
        UID:staff
        DTSTART;TZID=America/New_York:20261103T090000
        DTEND;TZID=America/New_York:20261103T100000
        RRULE:FREQ=WEEKLY;BYDAY=TU
        """
    )
    assert {k: e.span.start for k, e in expand(data, window, NEW_YORK).items()} == {
        "staff/20270309T140000Z": datetime(2027, 3, 9, 14, tzinfo=UTC),
        "staff/20270316T130000Z": datetime(2027, 3, 16, 13, tzinfo=UTC),
    }


def test_exdate_removes_an_instance() -> None:
    data = ics(WEEKLY_VIENNA + "EXDATE;TZID=Europe/Vienna:20261214T090000")
    assert sorted(expand(data)) == [
        "weekly/20261207T080000Z",
        "weekly/20261221T080000Z",
        "weekly/20261228T080000Z",
    ]


def test_exdate_given_in_utc_removes_the_same_instant() -> None:
    data = ics(WEEKLY_VIENNA + "EXDATE:20261214T080000Z,20261221T080000Z")
    assert sorted(expand(data)) == ["weekly/20261207T080000Z", "weekly/20261228T080000Z"]


def test_rdate_adds_instances_with_the_series_duration_or_its_own_period() -> None:
    data = ics(
        """
        UID:weekly
        DTSTART;TZID=Europe/Vienna:20261207T090000
        DTEND;TZID=Europe/Vienna:20261207T100000
        RRULE:FREQ=WEEKLY;COUNT=1
        RDATE;TZID=Europe/Vienna:20261211T150000
        RDATE;VALUE=PERIOD:20261218T130000Z/20261218T160000Z
        """
    )
    assert {k: e.span for k, e in expand(data).items()} == {
        "weekly/20261207T080000Z": span(
            datetime(2026, 12, 7, 9, tzinfo=VIENNA), datetime(2026, 12, 7, 10, tzinfo=VIENNA)
        ),
        "weekly/20261211T140000Z": span(
            datetime(2026, 12, 11, 15, tzinfo=VIENNA), datetime(2026, 12, 11, 16, tzinfo=VIENNA)
        ),
        "weekly/20261218T130000Z": span(
            datetime(2026, 12, 18, 14, tzinfo=VIENNA), datetime(2026, 12, 18, 17, tzinfo=VIENNA)
        ),
    }


def test_moved_instance_replaces_the_original_and_keeps_its_id() -> None:
    moved = """
        UID:weekly
        RECURRENCE-ID;TZID=Europe/Vienna:20261214T090000
        DTSTART;TZID=Europe/Vienna:20261215T143000
        DTEND;TZID=Europe/Vienna:20261215T153000
        """
    events = expand(ics(WEEKLY_VIENNA, moved))
    assert events["weekly/20261214T080000Z"].span == span(
        datetime(2026, 12, 15, 14, 30, tzinfo=VIENNA), datetime(2026, 12, 15, 15, 30, tzinfo=VIENNA)
    )
    starts = sorted(e.span.start for e in events.values())
    assert datetime(2026, 12, 14, 9, tzinfo=VIENNA) not in starts
    assert len(events) == 4


def test_override_with_status_cancelled_is_emitted_as_cancelled() -> None:
    cancelled = """
        UID:weekly
        RECURRENCE-ID:20261221T080000Z
        DTSTART;TZID=Europe/Vienna:20261221T090000
        DTEND;TZID=Europe/Vienna:20261221T100000
        STATUS:CANCELLED
        """
    events = expand(ics(WEEKLY_VIENNA, cancelled))
    assert events["weekly/20261221T080000Z"].status is EventStatus.CANCELLED
    others = [e for k, e in events.items() if k != "weekly/20261221T080000Z"]
    assert {e.status for e in others} == {EventStatus.CONFIRMED}
    assert len(events) == 4


def test_override_only_in_window_when_moved_into_it() -> None:
    moved_out = """
        UID:weekly
        RECURRENCE-ID;TZID=Europe/Vienna:20261228T090000
        DTSTART;TZID=Europe/Vienna:20270104T090000
        DTEND;TZID=Europe/Vienna:20270104T100000
        """
    assert "weekly/20261228T080000Z" not in expand(ics(WEEKLY_VIENNA, moved_out))


# --- time zones -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "default", "expected"),
    [
        ("", VIENNA, datetime(2026, 12, 8, 13, tzinfo=UTC)),
        ("", NEW_YORK, datetime(2026, 12, 8, 19, tzinfo=UTC)),
        ("X-WR-TIMEZONE:America/New_York", VIENNA, datetime(2026, 12, 8, 19, tzinfo=UTC)),
        ("X-WR-TIMEZONE:Not/AZone", VIENNA, datetime(2026, 12, 8, 13, tzinfo=UTC)),
        ("X-WR-TIMEZONE:W. Europe Standard Time", NEW_YORK, datetime(2026, 12, 8, 13, tzinfo=UTC)),
    ],
)
def test_floating_time_is_read_in_the_calendar_zone(
    header: str, default: ZoneInfo, expected: datetime
) -> None:
    data = ics("UID:f\nDTSTART:20261208T140000\nDTEND:20261208T150000", header=header)
    event = expand(data, zone=default)["f"]
    assert event.span == span(expected, expected + timedelta(hours=1))


def test_floating_weekly_series_follows_the_calendar_zone_across_dst() -> None:
    window = span(datetime(2027, 3, 20, tzinfo=VIENNA), datetime(2027, 4, 1, tzinfo=VIENNA))
    data = ics("UID:f\nDTSTART:20261207T090000\nDTEND:20261207T100000\nRRULE:FREQ=WEEKLY")
    assert sorted(e.span.start for e in expand(data, window).values()) == [
        datetime(2027, 3, 22, 8, tzinfo=UTC),
        datetime(2027, 3, 29, 7, tzinfo=UTC),
    ]


def test_utc_times_keep_their_instant_with_x_wr_timezone() -> None:
    data = ics(
        "UID:u\nDTSTART:20261203T200000Z\nDTEND:20261203T203000Z",
        header="X-WR-TIMEZONE:America/New_York",
    )
    assert expand(data)["u"].span == span(
        datetime(2026, 12, 3, 15, tzinfo=NEW_YORK), datetime(2026, 12, 3, 15, 30, tzinfo=NEW_YORK)
    )


OUTLOOK_VTIMEZONE = """
BEGIN:VTIMEZONE
TZID:W. Europe Standard Time
BEGIN:STANDARD
DTSTART:16010101T030000
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010101T020000
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3
END:DAYLIGHT
END:VTIMEZONE
"""


@pytest.mark.parametrize("vtimezone", ["", OUTLOOK_VTIMEZONE])
def test_windows_zone_name_maps_to_europe_berlin_across_dst(vtimezone: str) -> None:
    window = span(datetime(2027, 3, 20, tzinfo=UTC), datetime(2027, 4, 2, tzinfo=UTC))
    data = ics(
        """
        UID:outlook
        DTSTART;TZID=W. Europe Standard Time:20261210T090000
        DTEND;TZID=W. Europe Standard Time:20261210T100000
        RRULE:FREQ=WEEKLY;BYDAY=TH
        """,
        extra=vtimezone,
    )
    assert sorted(e.span.start for e in expand(data, window, NEW_YORK).values()) == [
        datetime(2027, 3, 25, 8, tzinfo=UTC),  # 09:00 CET
        datetime(2027, 4, 1, 7, tzinfo=UTC),  # 09:00 CEST
    ]


def custom_zone(offset: str) -> str:
    return f"""
        BEGIN:VTIMEZONE
        TZID:Customized Time Zone
        BEGIN:STANDARD
        DTSTART:16010101T000000
        TZOFFSETFROM:{offset}
        TZOFFSETTO:{offset}
        TZNAME:Custom
        END:STANDARD
        END:VTIMEZONE
        """


CUSTOM_EVENT = """
UID:custom
DTSTART;TZID=Customized Time Zone:20261207T090000
DTEND;TZID=Customized Time Zone:20261207T100000
"""


def test_made_up_tzid_uses_the_feeds_own_vtimezone() -> None:
    event = expand(ics(CUSTOM_EVENT, extra=custom_zone("+0545")))["custom"]
    assert event.span.start == datetime(2026, 12, 7, 3, 15, tzinfo=UTC)


def test_two_feeds_with_the_same_made_up_tzid_each_keep_their_definition() -> None:
    first = expand(ics(CUSTOM_EVENT, extra=custom_zone("+0300")))["custom"]
    second = expand(ics(CUSTOM_EVENT, extra=custom_zone("-0700")))["custom"]
    assert first.span.start == datetime(2026, 12, 7, 6, tzinfo=UTC)
    assert second.span.start == datetime(2026, 12, 7, 16, tzinfo=UTC)


def test_made_up_vtimezone_with_dst_rules_is_honoured() -> None:
    zone = """
        BEGIN:VTIMEZONE
        TZID:Praxis Zeit
        BEGIN:STANDARD
        DTSTART:19701025T030000
        TZOFFSETFROM:+0200
        TZOFFSETTO:+0100
        RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
        END:STANDARD
        BEGIN:DAYLIGHT
        DTSTART:19700329T020000
        TZOFFSETFROM:+0100
        TZOFFSETTO:+0200
        RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
        END:DAYLIGHT
        END:VTIMEZONE
        """
    window = span(datetime(2027, 3, 20, tzinfo=UTC), datetime(2027, 4, 1, tzinfo=UTC))
    data = ics(
        """
        UID:p
        DTSTART;TZID=Praxis Zeit:20261207T090000
        DTEND;TZID=Praxis Zeit:20261207T100000
        RRULE:FREQ=WEEKLY
        """,
        extra=zone,
    )
    assert sorted(e.span.start for e in expand(data, window, NEW_YORK).values()) == [
        datetime(2027, 3, 22, 8, tzinfo=UTC),
        datetime(2027, 3, 29, 7, tzinfo=UTC),
    ]


@pytest.mark.parametrize(
    ("tzid", "expected"),
    [
        ("Mars/Olympus_Mons", datetime(2026, 12, 7, 14, tzinfo=UTC)),  # floating in New York
        ("/freeassociation.sourceforge.net/Europe/Vienna", datetime(2026, 12, 7, 8, tzinfo=UTC)),
        ("Customized Time Zone", datetime(2026, 12, 7, 14, tzinfo=UTC)),  # defined elsewhere
    ],
)
def test_tzid_without_vtimezone(tzid: str, expected: datetime) -> None:
    expand(ics(CUSTOM_EVENT, extra=custom_zone("+0100")))  # another feed defines it
    data = ics(f"UID:x\nDTSTART;TZID={tzid}:20261207T090000\nDTEND;TZID={tzid}:20261207T100000")
    assert expand(data, zone=NEW_YORK)["x"].span.start == expected


@settings(max_examples=40, deadline=None)
@given(
    first=st.dates(min_value=date(2026, 1, 1), max_value=date(2028, 12, 31)),
    hour=st.integers(min_value=6, max_value=20),
    minute=st.sampled_from([0, 15, 30, 45]),
)
def test_weekly_series_stays_at_its_wall_time(first: date, hour: int, minute: int) -> None:
    start = f"{first:%Y%m%d}T{hour:02d}{minute:02d}00"
    data = ics(
        f"UID:w\nDTSTART;TZID=Europe/Vienna:{start}\nDURATION:PT45M\nRRULE:FREQ=WEEKLY;COUNT=60"
    )
    window = span(datetime(2025, 12, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC))
    events = expand(data, window).values()
    assert len(events) == 60
    for event in events:
        local = event.span.start.astimezone(VIENNA)
        assert (local.hour, local.minute, local.weekday()) == (hour, minute, first.weekday())
        assert event.span.duration == timedelta(minutes=45)


# --- window bounds ----------------------------------------------------------------------


def test_only_events_overlapping_the_window_are_returned() -> None:
    window = span(datetime(2026, 12, 7, 9, tzinfo=VIENNA), datetime(2026, 12, 7, 17, tzinfo=VIENNA))
    data = ics(
        "UID:ends-at-start\nDTSTART:20261207T070000Z\nDTEND:20261207T080000Z",
        "UID:starts-at-end\nDTSTART:20261207T160000Z\nDTEND:20261207T170000Z",
        "UID:straddles-start\nDTSTART:20261207T073000Z\nDTEND:20261207T083000Z",
        "UID:straddles-end\nDTSTART:20261207T155900Z\nDTEND:20261207T180000Z",
        "UID:day\nDTSTART;VALUE=DATE:20261207",
        "UID:next-day\nDTSTART;VALUE=DATE:20261208",
        "UID:daily\nDTSTART:20261201T120000Z\nDTEND:20261201T121500Z\nRRULE:FREQ=DAILY",
    )
    events = expand(data, window)
    assert set(events) == {"straddles-start", "straddles-end", "day", "daily/20261207T120000Z"}
    assert events["straddles-start"].span.start == datetime(2026, 12, 7, 7, 30, tzinfo=UTC)


# --- malformed feeds --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"<html><body>Sign in</body></html>", ["not an iCalendar feed"]),
        (b"", ["not an iCalendar feed: the body is empty"]),
        (b"BEGIN:VEVENT\r\nUID:a\r\nDTSTART:20261207T080000Z\r\nEND:VEVENT\r\n", ["no VCALENDAR"]),
        (
            b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:a\r\n",
            ["END:VCALENDAR is missing"],
        ),
        (
            ics("UID:bad-date\nDTSTART:2026-12-07 nine\nDTEND:20261207T100000Z"),
            ["VEVENT bad-date", "DTSTART", "2026-12-07 nine"],
        ),
        (
            ics("UID:broken\nthis line has no colon\nDTSTART:20261207T080000Z"),
            ["VEVENT broken", "unreadable line", "this line has no colon"],
        ),
        (ics("UID:no-start\nSUMMARY:x"), ["VEVENT no-start", "no DTSTART"]),
        (
            ics(CUSTOM_EVENT, extra="BEGIN:VTIMEZONE\nTZID:Customized Time Zone\nEND:VTIMEZONE"),
            ["malformed ICS feed"],
        ),
        (ics(WEEKLY_VIENNA + "EXDATE:garbage"), ["VEVENT weekly", "EXDATE"]),
        (ics("UID:r\nDTSTART:20261207T080000Z\nRRULE:FREQ=SOMETIMES"), ["VEVENT r", "RRULE"]),
    ],
)
def test_malformed_feed_is_a_data_error_saying_what_and_where(
    data: bytes, words: list[str]
) -> None:
    with pytest.raises(ProviderDataError) as caught:
        parse_feed(data).events(DECEMBER, VIENNA)
    for word in words:
        assert word in caught.value.message


def test_broken_unimportant_property_is_tolerated() -> None:
    data = ics("UID:g\nDTSTART:20261207T080000Z\nDTEND:20261207T090000Z\nGEO:not;a-number")
    assert set(expand(data)) == {"g"}


def test_feed_header_name_and_timezone() -> None:
    feed = parse_feed(ics(header="X-WR-CALNAME:Praxis\nX-WR-TIMEZONE:Europe/Vienna"))
    assert (feed.name, feed.timezone) == ("Praxis", VIENNA)
    bare = parse_feed(ics())
    assert (bare.name, bare.timezone) == (None, None)


# --- the adapter over HTTP --------------------------------------------------------------

TOKEN = "s3cr3t-t0ken-4711"
FEED = ics(
    "UID:a\nDTSTART;TZID=Europe/Vienna:20261207T090000\nDTEND;TZID=Europe/Vienna:20261207T100000",
    header="X-WR-CALNAME:Praxis Dr. Huber\nX-WR-TIMEZONE:Europe/Vienna",
)
FEED_CHANGED = ics(
    "UID:b\nDTSTART;TZID=Europe/Vienna:20261208T090000\nDTEND;TZID=Europe/Vienna:20261208T100000",
    header="X-WR-CALNAME:Praxis Dr. Huber\nX-WR-TIMEZONE:Europe/Vienna",
)
CONDITIONAL = ("if-none-match", "if-modified-since")


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


@pytest.fixture
def server() -> Iterator[FakeIcsServer]:
    with FakeIcsServer(FEED) as fake:
        yield fake


def make(source: str, session: requests.Session, **kwargs: object) -> IcsProvider:
    options: dict[str, object] = {"default_timezone": VIENNA, "timeout": 5.0} | kwargs
    return IcsProvider(source, session=session, **options)  # type: ignore[arg-type]


def test_first_fetch_is_a_full_snapshot(server: FakeIcsServer, session: requests.Session) -> None:
    batch = make(server.url, session).fetch_changes("primary", None, DECEMBER)
    assert batch.full
    assert not batch.unchanged
    assert batch.deleted == ()
    assert [e.provider_id for e in batch.events] == ["a"]
    assert batch.events[0].span.start == datetime(2026, 12, 7, 8, tzinfo=UTC)
    assert batch.cursor is not None
    assert json.loads(batch.cursor)["etag"] == server.etag
    [request] = server.requests
    assert request.method == "GET"
    assert not set(CONDITIONAL) & set(request.headers)


def test_unchanged_feed_costs_one_conditional_request(
    server: FakeIcsServer, session: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = make(server.url, session)
    first = provider.fetch_changes("primary", None, DECEMBER)
    monkeypatch.setattr(provider_module._wire, "parse_feed", _must_not_parse)
    second = provider.fetch_changes("primary", first.cursor, DECEMBER)
    assert second == ChangeBatch((), (), first.cursor, full=False, unchanged=True)
    assert len(server.requests) == 2
    sent = server.requests[1].headers
    assert sent["if-none-match"] == server.etag
    assert sent["if-modified-since"] == server.last_modified == "Sun, 01 Nov 2026 08:00:00 GMT"


def _must_not_parse(data: bytes) -> None:
    raise AssertionError("an unchanged feed must not be parsed")


def test_changed_feed_gives_a_new_snapshot(
    server: FakeIcsServer, session: requests.Session
) -> None:
    provider = make(server.url, session)
    first = provider.fetch_changes("primary", None, DECEMBER)
    server.set_body(FEED_CHANGED)
    second = provider.fetch_changes("primary", first.cursor, DECEMBER)
    assert second.full
    assert not second.unchanged
    assert [e.provider_id for e in second.events] == ["b"]
    assert second.cursor != first.cursor
    third = provider.fetch_changes("primary", second.cursor, DECEMBER)
    assert third.unchanged
    assert server.requests[2].headers["if-none-match"] == server.etag


def test_if_none_match_wins_over_if_modified_since(
    server: FakeIcsServer, session: requests.Session
) -> None:
    stale_etag = server.etag
    server.set_body(FEED_CHANGED)
    headers = {"If-None-Match": stale_etag, "If-Modified-Since": "Tue, 01 Dec 2099 00:00:00 GMT"}
    response = session.get(server.url, headers=headers, timeout=5)
    assert response.status_code == 200
    response = session.get(server.url, headers={"If-None-Match": f"W/{server.etag}"}, timeout=5)
    assert (response.status_code, response.content) == (304, b"")
    ims = {"If-Modified-Since": server.last_modified}
    assert session.get(server.url, headers=ims, timeout=5).status_code == 304


def test_server_without_validators_is_unchanged_by_content_hash(
    session: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeIcsServer(FEED, validators=False) as server:
        provider = make(server.url, session)
        first = provider.fetch_changes("primary", None, DECEMBER)
        monkeypatch.setattr(provider_module._wire, "parse_feed", _must_not_parse)
        second = provider.fetch_changes("primary", first.cursor, DECEMBER)
        monkeypatch.undo()
        server.set_body(FEED_CHANGED)
        third = provider.fetch_changes("primary", second.cursor, DECEMBER)
        requests_made = server.requests
    assert "etag" not in json.loads(first.cursor or "")
    assert second.unchanged
    assert not second.events
    assert third.full
    assert [e.provider_id for e in third.events] == ["b"]
    assert len(requests_made) == 3
    assert all(not set(CONDITIONAL) & set(r.headers) for r in requests_made)


def test_window_past_the_snapshot_triggers_a_plain_get(
    server: FakeIcsServer, session: requests.Session
) -> None:
    provider = make(server.url, session)
    window = span(datetime(2026, 11, 21, tzinfo=UTC), datetime(2026, 12, 7, 9, tzinfo=UTC))
    first = provider.fetch_changes("primary", None, window)
    assert [e.provider_id for e in first.events] == ["a"]  # within LOOKAHEAD of the end
    later = span(window.start + timedelta(hours=20), window.end + timedelta(hours=20))
    assert provider.fetch_changes("primary", first.cursor, later).unchanged
    much_later = span(window.start + timedelta(days=2), window.end + timedelta(days=2))
    third = provider.fetch_changes("primary", first.cursor, much_later)
    assert third.full
    assert [e.provider_id for e in third.events] == ["a"]
    assert "if-none-match" in server.requests[1].headers
    assert not set(CONDITIONAL) & set(server.requests[2].headers)


def test_lookahead_is_bounded(server: FakeIcsServer, session: requests.Session) -> None:
    window = span(datetime(2026, 11, 21, tzinfo=UTC), datetime(2026, 12, 6, 7, tzinfo=UTC))
    assert make(server.url, session).fetch_changes("primary", None, window).events == ()


def test_unreadable_cursor_means_a_full_fetch(
    server: FakeIcsServer, session: requests.Session
) -> None:
    provider = make(server.url, session)
    for cursor in ["", "not json", "[]", '{"v": 99}', '{"v": 1, "sha256": 3}']:
        assert provider.fetch_changes("primary", cursor, DECEMBER).full


def test_changed_default_timezone_is_not_unchanged(
    server: FakeIcsServer, session: requests.Session
) -> None:
    first = make(server.url, session).fetch_changes("primary", None, DECEMBER)
    batch = make(server.url, session, default_timezone=NEW_YORK).fetch_changes(
        "primary", first.cursor, DECEMBER
    )
    assert batch.full


@pytest.mark.parametrize(
    ("status", "error", "words"),
    [
        (500, ProviderUnavailableError, ["HTTP 500"]),
        (503, ProviderUnavailableError, ["HTTP 503"]),
        (404, ProviderUnavailableError, ["HTTP 404"]),
        (410, ProviderUnavailableError, ["HTTP 410"]),
        (401, ProviderAuthError, ["refused access", "secret token"]),
        (403, ProviderAuthError, ["refused access", "secret token"]),
        (429, RateLimitedError, ["HTTP 429"]),
    ],
)
def test_http_errors_are_translated_without_leaking_the_token(
    session: requests.Session, status: int, error: type[Exception], words: list[str]
) -> None:
    with FakeIcsServer(FEED, require_token=TOKEN) as server:
        server.fail_next(status)
        with pytest.raises(error) as caught:
            make(server.url, session).fetch_changes("primary", None, DECEMBER)
        assert make(server.url, session).fetch_changes("primary", None, DECEMBER).full
        shown = f"ICS feed {server.base_url}/calendar.ics"
    message = str(caught.value)
    for word in [*words, shown]:
        assert word in message
    assert TOKEN not in message
    assert "token=" not in message


def test_every_get_is_counted_by_outcome(
    server: FakeIcsServer, session: requests.Session, tmp_path: Path
) -> None:
    seen: list[tuple[str, str]] = []
    provider = make(server.url, session, observe=lambda name, outcome: seen.append((name, outcome)))
    first = provider.fetch_changes("primary", None, DECEMBER)
    assert provider.fetch_changes("primary", first.cursor, DECEMBER).unchanged  # a 304
    for status in (429, 503):
        server.fail_next(status)
        with pytest.raises((RateLimitedError, ProviderUnavailableError)):
            provider.fetch_changes("primary", None, DECEMBER)
    assert seen == [("ics", "ok"), ("ics", "ok"), ("ics", "throttled"), ("ics", "error")]
    local = tmp_path / "feed.ics"
    local.write_bytes(FEED)
    from_file = make(str(local), session, observe=lambda *_: pytest.fail("not a request"))
    assert from_file.fetch_changes("primary", None, DECEMBER).full  # a file read: not counted


def test_wrong_token_is_an_auth_error(session: requests.Session) -> None:
    with FakeIcsServer(FEED, require_token=TOKEN) as server:
        wrong = server.url.replace(TOKEN, "expired-token-0815")
        with pytest.raises(ProviderAuthError) as caught:
            make(wrong, session).fetch_changes("primary", None, DECEMBER)
    assert "expired-token-0815" not in str(caught.value)
    assert "HTTP 403" in str(caught.value)


def test_userinfo_is_never_shown(session: requests.Session) -> None:
    with FakeIcsServer(FEED) as server:
        server.fail_next(500)
        url = server.url.replace("http://", "http://admin:hunter2@")
        with pytest.raises(ProviderUnavailableError) as caught:
            make(url, session).fetch_changes("primary", None, DECEMBER)
    assert "hunter2" not in str(caught.value)
    assert "admin" not in str(caught.value)


def test_garbage_body_is_a_data_error(server: FakeIcsServer, session: requests.Session) -> None:
    server.set_body(b"<!DOCTYPE html><html><body>Please sign in</body></html>")
    with pytest.raises(ProviderDataError) as caught:
        make(server.url, session).fetch_changes("primary", None, DECEMBER)
    assert "not an iCalendar feed" in str(caught.value)


def test_refused_connection_is_unavailable(session: requests.Session) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/cal.ics?token={TOKEN}"
    with pytest.raises(ProviderUnavailableError) as caught:
        make(url, session).fetch_changes("primary", None, DECEMBER)
    assert str(caught.value) == (
        f"cannot reach ICS feed http://127.0.0.1:{port}/cal.ics: Connection refused"
    )


def test_silent_server_times_out(session: requests.Session) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/cal.ics?token={TOKEN}"
        with pytest.raises(ProviderUnavailableError) as caught:
            make(url, session, timeout=0.3).fetch_changes("primary", None, DECEMBER)
    assert "timed out after 0.3 s" in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_unknown_calendar_id_is_a_data_error(
    server: FakeIcsServer, session: requests.Session
) -> None:
    with pytest.raises(ProviderDataError, match="one calendar, 'primary'"):
        make(server.url, session).fetch_changes("work", None, DECEMBER)
    assert server.requests == []


def test_list_calendars_reads_the_feed_header(
    server: FakeIcsServer, session: requests.Session
) -> None:
    calendars = make(server.url, session, default_timezone=NEW_YORK).list_calendars()
    assert calendars == [
        CalendarInfo("primary", "Praxis Dr. Huber", "Europe/Vienna", "reader", primary=True)
    ]


def test_list_calendars_falls_back_to_name_and_default_zone(
    session: requests.Session, tmp_path: Path
) -> None:
    with FakeIcsServer(ics(), path="/feeds/holidays.ics") as server:
        assert make(server.url, session, name="Feiertage").list_calendars()[0].name == "Feiertage"
        assert make(server.url, session).list_calendars()[0].name == "holidays"
    path = tmp_path / "praxis.ics"
    path.write_bytes(ics())
    [info] = make(str(path), session, default_timezone=NEW_YORK).list_calendars()
    assert (info.name, info.timezone) == ("praxis", "America/New_York")


def test_describe_source_hides_secrets() -> None:
    google = (
        "https://calendar.google.com/calendar/ical/huber%40gmail.com/"
        "private-0123456789abcdef0123456789abcdef/basic.ics"
    )
    assert describe_source(google) == (
        "https://calendar.google.com/calendar/ical/huber%40gmail.com/…/basic.ics"
    )
    assert describe_source("https://u:p@example.com:8443/a.ics?token=x#f") == (
        "https://example.com:8443/a.ics"
    )
    assert describe_source("/srv/feeds/a.ics") == "/srv/feeds/a.ics"


def test_relative_path_is_refused(session: requests.Session) -> None:
    with pytest.raises(InputError, match="absolute path"):
        make("examples/praxis-huber.ics", session)
    make("webcal://calendar.example.com/feed.ics", session)  # accepted: fetched over https


# --- the adapter over a local file ------------------------------------------------------


def test_local_file_unchanged_is_not_parsed_again(
    tmp_path: Path, session: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "feed.ics"
    path.write_bytes(FEED)
    provider = make(str(path), session)
    first = provider.fetch_changes("primary", None, DECEMBER)
    assert [e.provider_id for e in first.events] == ["a"]
    monkeypatch.setattr(provider_module._wire, "parse_feed", _must_not_parse)
    second = provider.fetch_changes("primary", first.cursor, DECEMBER)
    assert second == ChangeBatch((), (), first.cursor, full=False, unchanged=True)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))  # touched only
    third = provider.fetch_changes("primary", second.cursor, DECEMBER)
    assert third.unchanged
    monkeypatch.undo()
    path.write_bytes(FEED_CHANGED)
    fourth = provider.fetch_changes("primary", third.cursor, DECEMBER)
    assert fourth.full
    assert [e.provider_id for e in fourth.events] == ["b"]


def test_missing_file_is_unavailable(tmp_path: Path, session: requests.Session) -> None:
    path = tmp_path / "gone.ics"
    with pytest.raises(ProviderUnavailableError) as caught:
        make(str(path), session).fetch_changes("primary", None, DECEMBER)
    assert str(caught.value) == f"cannot read {path}: No such file or directory"


def test_directory_is_unavailable(tmp_path: Path, session: requests.Session) -> None:
    with pytest.raises(ProviderUnavailableError, match="cannot read"):
        make(str(tmp_path), session).fetch_changes("primary", None, DECEMBER)


def test_malformed_local_file_is_a_data_error(tmp_path: Path, session: requests.Session) -> None:
    path = tmp_path / "broken.ics"
    path.write_bytes(ics("UID:x\nDTSTART:tomorrow"))
    with pytest.raises(ProviderDataError, match="VEVENT x: DTSTART"):
        make(str(path), session).fetch_changes("primary", None, DECEMBER)


# --- the demo calendars -----------------------------------------------------------------

YEAR = span(datetime(2026, 11, 21, tzinfo=UTC), datetime(2027, 11, 21, tzinfo=UTC))


def example(name: str, zone: ZoneInfo) -> dict[str, Event]:
    data = (EXAMPLES / name).read_bytes()
    return {e.provider_id: e for e in parse_feed(data).events(YEAR, zone)}


def local(event: Event, zone: ZoneInfo) -> tuple[datetime, datetime]:
    return event.span.start.astimezone(zone), event.span.end.astimezone(zone)


def test_example_praxis_huber() -> None:
    events = example("praxis-huber.ics", NEW_YORK)  # X-WR-TIMEZONE wins over the default
    team = "teambesprechung-7f3a@praxis-huber.example/"
    assert team + "20261207T070000Z" not in events  # EXDATE
    assert local(events[team + "20261214T070000Z"], VIENNA) == (
        datetime(2026, 12, 15, 12, tzinfo=VIENNA),
        datetime(2026, 12, 15, 13, tzinfo=VIENNA),
    )
    assert events[team + "20270322T070000Z"].span.start == datetime(2027, 3, 22, 7, tzinfo=UTC)
    assert events[team + "20270329T060000Z"].span.start == datetime(2027, 3, 29, 6, tzinfo=UTC)
    visits = "hausbesuche-2c91@praxis-huber.example/"
    assert events[visits + "20261209T130000Z"].status is EventStatus.CANCELLED
    assert local(events[visits + "20261211T130000Z"], VIENNA)[0] == datetime(
        2026, 12, 11, 14, tzinfo=VIENNA
    )
    holiday = events["mariae-empfaengnis@praxis-huber.example/20261208"]
    assert holiday.all_day
    assert holiday.span == span(
        datetime(2026, 12, 7, 23, tzinfo=UTC), datetime(2026, 12, 8, 23, tzinfo=UTC)
    )
    assert events["betriebsurlaub-2026@praxis-huber.example"].span == span(
        datetime(2026, 12, 24, tzinfo=VIENNA), datetime(2027, 1, 2, tzinfo=VIENNA)
    )
    assert events["pharma-0412@praxis-huber.example"].status is EventStatus.TENTATIVE
    reminder = events["abrechnung-q4@praxis-huber.example"]
    assert reminder.transparency is Transparency.TRANSPARENT
    assert events["softwarewartung-1126@praxis-huber.example"].span == span(
        datetime(2026, 12, 4, 7, 30, tzinfo=VIENNA), datetime(2026, 12, 4, 9, 30, tzinfo=VIENNA)
    )


def test_example_ny_studio() -> None:
    events = example("ny-studio.ics", VIENNA)
    staff = "staff-meeting-91d2@hudsonstudio.example/"
    assert events[staff + "20261208T140000Z"].status is EventStatus.CANCELLED
    assert local(events[staff + "20261215T140000Z"], NEW_YORK) == (
        datetime(2026, 12, 16, 15, tzinfo=NEW_YORK),
        datetime(2026, 12, 16, 16, tzinfo=NEW_YORK),
    )
    assert events[staff + "20270309T140000Z"].span.start == datetime(2027, 3, 9, 14, tzinfo=UTC)
    assert events[staff + "20270316T130000Z"].span.start == datetime(2027, 3, 16, 13, tzinfo=UTC)
    yoga = "yoga-saturday@hudsonstudio.example/"
    assert yoga + "20261205T150000Z" not in events  # EXDATE
    assert local(events[yoga + "20261202T230000Z"], NEW_YORK) == (
        datetime(2026, 12, 2, 18, tzinfo=NEW_YORK),
        datetime(2026, 12, 2, 19, 30, tzinfo=NEW_YORK),
    )
    christmas = events["closed-christmas-2026@hudsonstudio.example"]
    assert christmas.all_day
    assert christmas.span == span(
        datetime(2026, 12, 25, 5, tzinfo=UTC), datetime(2026, 12, 26, 5, tzinfo=UTC)
    )
    assert events["photo-shoot-hold@hudsonstudio.example"].status is EventStatus.TENTATIVE
    gallery = events["gallery-opening@hudsonstudio.example"]
    assert gallery.transparency is Transparency.TRANSPARENT
    assert events["vendor-call-3310@hudsonstudio.example"].span.start == datetime(
        2026, 12, 3, 15, tzinfo=NEW_YORK
    )


def test_example_huber_outlook() -> None:
    events = example("huber-outlook.ics", VIENNA)
    by_start = {local(e, VIENNA)[0]: e for e in events.values()}
    assert datetime(2026, 12, 17, 8, tzinfo=VIENNA) not in by_start  # EXDATE
    assert by_start[datetime(2026, 12, 10, 8, tzinfo=VIENNA)].span.end == datetime(
        2026, 12, 10, 9, tzinfo=UTC
    )
    assert datetime(2027, 3, 25, 7, tzinfo=UTC) in {e.span.start for e in events.values()}
    assert datetime(2027, 4, 1, 6, tzinfo=UTC) in {e.span.start for e in events.values()}
    assert by_start[datetime(2026, 12, 2, 12, tzinfo=VIENNA)].status is EventStatus.TENTATIVE
    home = by_start[datetime(2026, 12, 21, tzinfo=VIENNA)]
    assert home.all_day
    assert home.transparency is Transparency.TRANSPARENT


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.ics")))
def test_every_example_parses_over_a_year(name: str) -> None:
    assert example(name, VIENNA)
