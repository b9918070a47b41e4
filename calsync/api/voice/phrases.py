"""The sentences a phone agent reads back, in the resource's language.

Owns the wording of every tool answer: English and German are written
here; any other language gets the English sentences around CLDR-formatted
dates (``spoken``) and lists ("A, B oder C" through Babel). It decides
nothing about slots or bookings and never reads the clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Final
from zoneinfo import ZoneInfo

from babel.dates import format_date, get_timezone_location
from babel.lists import format_list

_EN: Final[dict[str, str]] = {
    "slots": "{name} is free {list}.",
    "slots_later": "{name} has nothing free then. The next free times are {list}.",
    "no_slots": "{name} has nothing free in the next {days} days.",
    "zone": "All times are {zone}.",
    "held": "I have reserved {when} for you for {minutes} minutes.",
    "booked": "Your appointment with {name} is booked for {when}.",
    "taken": "Sorry, that time is already taken.",
    "unavailable": "Sorry, {name} has no appointment at that time.",
    "instead": "Free would be {list}.",
    "found": "You have {count} upcoming appointments: {list}.",
    "found_one": "You have one upcoming appointment: {list}.",
    "found_none": "I can't find any upcoming appointments for {phone}.",
    "with": "{when} with {name}",
    "which": "You have several appointments: {list}. Which one do you mean?",
    "cancelled": "Your appointment {when} is cancelled.",
    "moved": "Your appointment is moved to {when}.",
    "need_phone": "I need the phone number the appointment was booked under.",
    "not_yours": "I can't find that appointment for {phone}.",
    "need_resource": "Which calendar do you mean: {list}?",
    "unknown_resource": "I don't know the calendar {id}. There are {list}.",
    "past": "{day} is already over; I can look from today on.",
    "bad_input": "I could not use that: {detail}",
    "failed": "Sorry, that did not work: {detail}",
}

_DE: Final[dict[str, str]] = {
    "slots": "{name} hat frei: {list}.",
    "slots_later": "{name} hat da leider nichts frei. Die nächsten freien Termine: {list}.",
    "no_slots": "{name} hat in den nächsten {days} Tagen leider nichts frei.",
    "zone": "Alle Zeiten: {zone}.",
    "held": "Ich habe {when} für {minutes} Minuten für Sie reserviert.",
    "booked": "Ihr Termin bei {name} ist gebucht: {when}.",
    "taken": "Dieser Termin ist leider schon vergeben.",
    "unavailable": "Zu dieser Zeit ist bei {name} leider kein Termin möglich.",
    "instead": "Frei wären {list}.",
    "found": "Sie haben {count} kommende Termine: {list}.",
    "found_one": "Sie haben einen kommenden Termin: {list}.",
    "found_none": "Ich finde keine kommenden Termine für {phone}.",
    "with": "{when} bei {name}",
    "which": "Sie haben mehrere Termine: {list}. Welchen meinen Sie?",
    "cancelled": "Ihr Termin {when} ist storniert.",
    "moved": "Ihr Termin ist verschoben auf {when}.",
    "need_phone": "Ich brauche die Telefonnummer, unter der der Termin gebucht wurde.",
    "not_yours": "Ich finde diesen Termin für {phone} nicht.",
    "need_resource": "Welchen Kalender meinen Sie: {list}?",
    "unknown_resource": "Den Kalender {id} kenne ich nicht. Es gibt {list}.",
    "past": "Der {day} ist schon vorbei; ich kann ab heute nachsehen.",
    "bad_input": "Das konnte ich so nicht verwenden: {detail}",
    "failed": "Das hat leider nicht geklappt: {detail}",
}

_BY_LANGUAGE: Final = {"en": _EN, "de": _DE}


def say(language: str, key: str, **values: object) -> str:
    """The sentence ``key`` in ``language`` (a Babel tag), filled with ``values``."""
    sentences = _BY_LANGUAGE.get(_base(language), _EN)
    return sentences[key].format(**values)


def either(language: str, items: Sequence[str]) -> str:
    """ "A, B or C" in ``language``."""
    return str(format_list(list(items), style="or", locale=_babel(language)))


def both(language: str, items: Sequence[str]) -> str:
    """ "A, B and C" in ``language``."""
    return str(format_list(list(items), style="standard", locale=_babel(language)))


def long_date(day: date, language: str) -> str:
    """ "4. Dezember 2026", "December 4, 2026"."""
    return str(format_date(day, format="long", locale=_babel(language)))


def zone_name(zone: ZoneInfo, language: str) -> str:
    """A zone as people say it: "United States (New York) Time", "Österreich (Ortszeit)"."""
    return str(get_timezone_location(zone, locale=_babel(language)))


def _base(language: str) -> str:
    return language.replace("_", "-").split("-")[0].lower()


def _babel(language: str) -> str:
    return language.replace("-", "_")
