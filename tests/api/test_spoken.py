"""Spoken slot labels: expected strings are written by hand from CLDR's data."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from calsync.api.spoken import spoken
from calsync.errors import InputError

VIENNA = ZoneInfo("Europe/Vienna")
NEW_YORK = ZoneInfo("America/New_York")
# Friday 2026-11-20, 10:00 in Vienna, 04:00 in New York.
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "tz", "language", "expected"),
    [
        (utc(2026, 11, 24, 14), VIENNA, "de", "Dienstag, 24. November, um 15:00 Uhr"),
        (utc(2026, 11, 20, 14), VIENNA, "de", "heute um 15:00 Uhr"),
        (utc(2026, 11, 21, 8, 30), VIENNA, "de", "morgen um 09:30 Uhr"),
        (utc(2026, 11, 24, 20), NEW_YORK, "en", "Tuesday, November 24 at 3:00 PM"),
        (utc(2026, 11, 20, 20), NEW_YORK, "en", "today at 3:00 PM"),
        (utc(2026, 11, 21, 14, 30), NEW_YORK, "en", "tomorrow at 9:30 AM"),
        (utc(2026, 11, 24, 15), ZoneInfo("Europe/London"), "en-GB", "Tuesday 24 November at 15:00"),
        (utc(2026, 11, 21, 9), ZoneInfo("Europe/London"), "en-GB", "tomorrow at 09:00"),
        (utc(2026, 11, 24, 14), VIENNA, "de-AT", "Dienstag, 24. November, um 15:00 Uhr"),
    ],
)
def test_en_and_de_phrases(start: datetime, tz: ZoneInfo, language: str, expected: str) -> None:
    assert spoken(start, tz, language, now=NOW) == expected


def test_times_use_plain_spaces() -> None:
    label = spoken(utc(2026, 11, 24, 20), NEW_YORK, "en", now=NOW)
    assert "\u202f" not in label
    assert "\u00a0" not in label


@pytest.mark.parametrize(
    ("start", "language", "expected"),
    [
        (utc(2026, 11, 24, 14), "fr", "mardi 24 novembre, 15:00"),
        # Babel has no CLDR words for "today"/"tomorrow": the date is said instead.
        (utc(2026, 11, 20, 14), "fr", "vendredi 20 novembre, 15:00"),
        (utc(2026, 11, 21, 8, 30), "fr", "samedi 21 novembre, 09:30"),
        (utc(2026, 11, 24, 14), "es", "martes, 24 de noviembre, 15:00"),
        (utc(2026, 11, 24, 14), "it", "martedì 24 novembre 15:00"),
        (utc(2027, 1, 4, 14), "fr", "lundi 4 janvier 2027, 15:00"),
    ],
)
def test_generic_languages_use_cldr_only(start: datetime, language: str, expected: str) -> None:
    assert spoken(start, VIENNA, language, now=NOW) == expected


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("de-AT", "Montag, 4. Jänner 2027, um 15:00 Uhr"),
        ("de", "Montag, 4. Januar 2027, um 15:00 Uhr"),
        ("en", "Monday, January 4, 2027 at 3:00 PM"),
    ],
)
def test_next_year_says_the_year(language: str, expected: str) -> None:
    assert spoken(utc(2027, 1, 4, 14), VIENNA, language, now=NOW) == expected


def test_far_dates_in_the_same_year_say_the_year() -> None:
    january = utc(2026, 1, 5, 9)
    assert spoken(utc(2026, 7, 14, 8), VIENNA, "de", now=january) == (
        "Dienstag, 14. Juli, um 10:00 Uhr"
    )
    assert spoken(utc(2026, 12, 15, 14), VIENNA, "de", now=january) == (
        "Dienstag, 15. Dezember 2026, um 15:00 Uhr"
    )


def test_local_date_after_the_utc_date() -> None:
    # 23:30 UTC on Friday is 00:30 on Saturday in Vienna: tomorrow, not today.
    assert spoken(utc(2026, 11, 20, 23, 30), VIENNA, "de", now=NOW) == "morgen um 00:30 Uhr"
    # 23:30 UTC on Saturday is Sunday in Vienna.
    assert spoken(utc(2026, 11, 21, 23, 30), VIENNA, "de", now=NOW) == (
        "Sonntag, 22. November, um 00:30 Uhr"
    )


def test_local_date_before_the_utc_date() -> None:
    # 03:00 UTC on Saturday is 22:00 on Friday in New York: today, not tomorrow.
    assert spoken(utc(2026, 11, 21, 3), NEW_YORK, "en", now=NOW) == "today at 10:00 PM"
    # 03:00 UTC on Tuesday is Monday evening in New York.
    assert spoken(utc(2026, 11, 24, 3), NEW_YORK, "en", now=NOW) == (
        "Monday, November 23 at 10:00 PM"
    )


def test_today_is_judged_in_the_zone_not_in_utc() -> None:
    # 01:00 UTC on Saturday is still Friday evening in New York.
    late_friday = utc(2026, 11, 21, 1)
    assert spoken(utc(2026, 11, 21, 14), NEW_YORK, "en", now=late_friday) == ("tomorrow at 9:00 AM")


def test_spring_forward_day() -> None:
    # Vienna moves from +01:00 to +02:00 at 02:00 on Sunday 2026-03-29.
    saturday = utc(2026, 3, 28, 10)
    assert spoken(utc(2026, 3, 29, 0, 30), VIENNA, "de", now=saturday) == "morgen um 01:30 Uhr"
    assert spoken(utc(2026, 3, 29, 1, 30), VIENNA, "de", now=saturday) == "morgen um 03:30 Uhr"
    assert spoken(utc(2026, 3, 29, 8), VIENNA, "de", now=saturday) == "morgen um 10:00 Uhr"


def test_fall_back_day() -> None:
    # New York goes from -04:00 to -05:00 at 02:00 on Sunday 2026-11-01.
    friday = utc(2026, 10, 30, 16)
    assert spoken(utc(2026, 11, 1, 14), NEW_YORK, "en", now=friday) == (
        "Sunday, November 1 at 9:00 AM"
    )
    # The repeated hour reads the same both times: local clock time is what is said.
    first, second = utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 30)
    assert spoken(first, NEW_YORK, "en", now=friday) == "Sunday, November 1 at 1:30 AM"
    assert spoken(second, NEW_YORK, "en", now=friday) == "Sunday, November 1 at 1:30 AM"


@pytest.mark.parametrize("language", ["xx", "", "de--AT", "klingon", "de AT"])
def test_unknown_language_is_an_input_error(language: str) -> None:
    with pytest.raises(InputError, match="unknown language"):
        spoken(utc(2026, 11, 24, 14), VIENNA, language, now=NOW)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(InputError, match="timezone-aware"):
        spoken(datetime(2026, 11, 24, 14), VIENNA, "de", now=NOW)
