"""Spoken slot labels: a slot's local date and time phrased to be read aloud.

Owns one function, ``spoken``, used for every slot of a lookup, so its
per-locale work is cached. Every month name, weekday name and time format
comes from CLDR through Babel; only the short connecting phrases of English
and German ("at", "um ... Uhr", "today", "heute") are written here, in
``_PHRASES``. Other languages get a generic form: CLDR's weekday-day-month
date, joined to CLDR's short time by the locale's own date-time pattern.

Babel 2.18 ships CLDR's relative-time patterns ("dans {0} jours") but not
its relative day names ("aujourd'hui", "demain"), so the generic form
always says the date. This module does not decide which slots exist, does
not read the clock (``now`` is passed in) and does not know about HTTP.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import (
    format_date,
    format_time,
    match_skeleton,
    tokenize_pattern,
    untokenize_pattern,
)

from calsync.errors import InputError

# CLDR puts no-break spaces in times ("3:00\u202fPM") and some dates; a speech
# engine and a JSON reader are better served by plain spaces.
_PLAIN_SPACES: Final = str.maketrans({"\u202f": " ", "\u00a0": " "})
_QUOTED: Final = re.compile(r"'([^']*)'")
_DATE_SKELETON: Final = "MMMMEEEEd"
_YEAR_DATE_SKELETON: Final = "yMMMMEEEEd"
# Beyond this many days ahead a date is said with its year even within the year.
_YEAR_AFTER_DAYS: Final = 300

# One token of a CLDR pattern as Babel splits it: ("chars", text) or ("field", (char, width)).
_Token = tuple[str, str | tuple[str, int]]


@dataclass(frozen=True, slots=True)
class _Phrases:
    """How one language joins a date or a relative day to a time."""

    absolute: str  # with {date} and {time}
    relative: str  # with {day} and {time}
    today: str | None
    tomorrow: str | None


_PHRASES: Final[dict[str, _Phrases]] = {
    "en": _Phrases("{date} at {time}", "{day} at {time}", "today", "tomorrow"),
    "de": _Phrases("{date}, um {time} Uhr", "{day} um {time} Uhr", "heute", "morgen"),
}


@dataclass(frozen=True, slots=True)
class _Style:
    """Everything ``spoken`` needs about one language tag, computed once."""

    locale: Locale
    date_pattern: str
    year_date_pattern: str
    phrases: _Phrases


def spoken(start: datetime, tz: ZoneInfo, language: str, *, now: datetime) -> str:
    """The label a phone agent reads for a slot starting at ``start``.

    ``language`` is a Babel locale tag ("de", "de-AT", "en-GB", "fr"). The
    date and time are local to ``tz``; "today" and "tomorrow" are judged
    against ``now`` in ``tz``. The year is said when the slot is in another
    year or more than ``_YEAR_AFTER_DAYS`` days away.
    """
    if start.tzinfo is None or now.tzinfo is None:
        raise InputError("spoken() needs timezone-aware datetimes for start and now")
    style = _style(language)
    local = start.astimezone(tz)
    day = local.date()
    today = now.astimezone(tz).date()
    clock = _time_text(language, local.hour, local.minute)
    ahead = (day - today).days
    word = style.phrases.today if ahead == 0 else style.phrases.tomorrow if ahead == 1 else None
    if word is not None:
        return style.phrases.relative.format(day=word, time=clock)
    with_year = day.year != today.year or ahead > _YEAR_AFTER_DAYS
    return style.phrases.absolute.format(date=_date_text(language, day, with_year), time=clock)


@lru_cache(maxsize=128)
def _style(language: str) -> _Style:
    locale = _locale(language)
    return _Style(
        locale=locale,
        date_pattern=_date_pattern(locale, _DATE_SKELETON),
        year_date_pattern=_date_pattern(locale, _YEAR_DATE_SKELETON),
        phrases=_PHRASES.get(locale.language) or _generic_phrases(locale),
    )


def _locale(language: str) -> Locale:
    try:
        return Locale.parse(language.replace("-", "_"))
    except (ValueError, TypeError, UnknownLocaleError) as err:
        raise InputError(
            f"unknown language {language!r}: "
            "use a Babel locale tag such as 'de', 'de-AT', 'en-GB' or 'fr'"
        ) from err


def _date_pattern(locale: Locale, skeleton: str) -> str:
    """CLDR's best pattern for ``skeleton``, widened to full weekday and month names.

    Babel matches a skeleton to the nearest one the locale has ("MMMMEd" for
    "MMMMEEEEd") but, unlike ICU, does not adjust the field widths; this does.
    """
    skeletons = locale.datetime_skeletons
    matched = skeleton if skeleton in skeletons else match_skeleton(skeleton, skeletons)
    if matched is None:
        return str(locale.date_formats["full"].pattern)
    tokens = tokenize_pattern(str(skeletons[matched].pattern))
    widened = [_widen(token) for token in tokens]
    return str(untokenize_pattern(widened))


def _widen(token: _Token) -> _Token:
    kind, value = token
    if kind != "field" or isinstance(value, str):
        return token
    char, width = value
    if char == "E" or (char in "ceML" and width >= 3):
        return kind, (char, 4)
    return token


def _generic_phrases(locale: Locale) -> _Phrases:
    """Date and time joined by the locale's full date-time pattern ("{1} 'à' {0}")."""
    pattern = str(locale.datetime_formats["full"])
    joined = _QUOTED.sub(lambda m: m.group(1) or "'", pattern).translate(_PLAIN_SPACES)
    escaped = joined.replace("{", "{{").replace("}", "}}")
    absolute = escaped.replace("{{1}}", "{date}").replace("{{0}}", "{time}")
    return _Phrases(absolute, relative="{day} {time}", today=None, tomorrow=None)


@lru_cache(maxsize=8192)
def _date_text(language: str, day: date, with_year: bool) -> str:
    style = _style(language)
    pattern = style.year_date_pattern if with_year else style.date_pattern
    return str(format_date(day, pattern, locale=style.locale)).translate(_PLAIN_SPACES)


@lru_cache(maxsize=2048)
def _time_text(language: str, hour: int, minute: int) -> str:
    locale = _style(language).locale
    text = format_time(time(hour, minute), "short", locale=locale)
    return str(text).translate(_PLAIN_SPACES)
