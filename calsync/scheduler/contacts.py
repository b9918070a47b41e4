"""Attendee details as calsync stores them: names trimmed, phones in E.164, emails checked.

A phone number without a country code is read in the resource's country,
taken from its time zone through CLDR (Europe/Vienna -> AT).
"""

from __future__ import annotations

import re
from functools import cache

import phonenumbers
from babel.core import get_global

from calsync.errors import InputError
from calsync.model import Attendee, Resource

MAX_NAME = 256
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def normalize_attendee(attendee: Attendee, resource: Resource) -> Attendee:
    name = " ".join(attendee.name.split())
    if not name or len(name) > MAX_NAME:
        raise InputError(f"attendee.name must be 1 to {MAX_NAME} characters")
    phone = _phone(attendee.phone, region_of(resource.timezone.key)) if attendee.phone else None
    email = attendee.email.strip() if attendee.email else None
    if email is not None and (len(email) > 320 or not _EMAIL.fullmatch(email)):
        raise InputError(f"attendee.email: {email!r} is not an email address")
    return Attendee(name, phone, email)


@cache
def region_of(zone: str) -> str | None:
    """The ISO country of an IANA zone per CLDR, or None (UTC, Etc/...)."""
    territory = get_global("zone_territories").get(zone)
    return territory if territory and territory != "ZZ" else None


def _phone(raw: str, region: str | None) -> str:
    hint = f" for {region}" if region else ""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise InputError(
            f"attendee.phone: {raw!r} is not a valid phone number{hint}; "
            "give it with its country code, like +43 664 1234567"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
