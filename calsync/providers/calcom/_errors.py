"""Cal.com's failures -> calsync errors, at one boundary.

Cal.com API v2 answers errors in a NestJS envelope,
``{"status": "error", "error": {"code", "message", "details"}}``. The HTTP
status decides the calsync error, except for booking writes: their 400s are
read for what a caller can act on (a taken slot, a missing phone number),
because a voice agent speaks that message. The exact ``code`` strings are not
relied on (providers.md 3). No message here carries the API key: only
statuses and Cal.com's own texts.
"""

from __future__ import annotations

import re
from typing import Any

import requests

from calsync.errors import (
    CalsyncError,
    InputError,
    NotFoundError,
    ProviderAuthError,
    ProviderDataError,
    ProviderUnavailableError,
    RateLimitedError,
    SlotUnavailableError,
)
from calsync.providers.calcom.ratelimit import reset_seconds

PHONE_NEEDED = (
    "Cal.com needs the attendee's phone number for this appointment type; ask the caller "
    "for it (international format, e.g. +4366412345678)"
)
PHONE_FORMAT = (
    "Cal.com refused the attendee's phone number; it must be a valid number in "
    "international format, e.g. +4366412345678"
)
EMAIL_NEEDED = (
    "Cal.com needs the attendee's email address for this appointment type; ask the caller for it"
)
EMAIL_FORMAT = "Cal.com refused the attendee's email address; ask the caller to spell it again"
CONTACT_NEEDED = (
    "Cal.com needs the attendee's phone number or email address; ask the caller for one of them"
)
_UNAVAILABLE = (
    "already has booking",
    "not available",
    "in the past",
    "can't be booked",
    "no available users",
)
_REQUIRED_FIELD = re.compile(r"bookingFieldsResponses\.([\w-]+) is required")


class AlreadyCancelledError(ProviderDataError):
    """400: the booking is cancelled already (or was rescheduled, which cancels it)."""


def reauth(account: str, detail: str) -> ProviderAuthError:
    return ProviderAuthError(
        f"Cal.com account {account!r}: {detail}; run `calsync auth calcom --account {account}`"
    )


def from_response(
    response: requests.Response, account: str, *, writing: bool = False
) -> CalsyncError:
    """The calsync error for a Cal.com answer that is not a success.

    ``writing``: the request created, moved or cancelled a booking, so a 400
    is the caller's problem (``InputError`` or ``SlotUnavailableError``)
    rather than calsync's (``ProviderDataError``).
    """
    status = response.status_code
    code, text = api_error(response)
    message = f"Cal.com answered {status}" + (f" {code}" if code else "")
    message += f": {text}" if text else ""
    if status == 401:
        return reauth(account, f"Cal.com refused the API key ({text or status})")
    if status == 403:
        return reauth(account, f"the API key is not allowed to do this ({text or status})")
    if status == 404:
        return NotFoundError(message)
    if status == 429:
        return RateLimitedError(message, reset_seconds(response.headers))
    if status >= 500:
        return ProviderUnavailableError(message)
    if writing and status in (400, 409, 422):
        return write_problem(text, message)
    return ProviderDataError(message)


def write_problem(text: str, message: str) -> CalsyncError:
    """A refused booking write, in words a caller (or a voice agent) can act on."""
    lower = text.lower()
    if "cancelled already" in lower or "has been cancelled" in lower:
        return AlreadyCancelledError(message)
    if any(reason in lower for reason in _UNAVAILABLE):
        return SlotUnavailableError(f"Cal.com cannot book this time: {text}")
    if "contact method" in lower:
        return InputError(CONTACT_NEEDED)
    if "phone" in lower:
        return InputError(PHONE_NEEDED if "required" in lower else PHONE_FORMAT)
    if "email" in lower and "attendee" in lower:
        return InputError(EMAIL_NEEDED if "required" in lower else EMAIL_FORMAT)
    field = _REQUIRED_FIELD.search(text)
    if field:
        return InputError(
            f"Cal.com needs an answer to the booking question {field.group(1)!r} for this "
            "appointment type, which calsync cannot give; make that question optional in "
            "the event type's settings on Cal.com"
        )
    return InputError(f"Cal.com refused the booking: {text or message}")


def from_exception(err: Exception) -> CalsyncError:
    """The calsync error for a transport failure (timeouts, refused connections)."""
    if isinstance(err, requests.Timeout):
        return ProviderUnavailableError(f"Cal.com did not answer in time ({type(err).__name__})")
    if isinstance(err, requests.RequestException | OSError):
        return ProviderUnavailableError(f"Cal.com unreachable: {type(err).__name__}")
    return ProviderDataError(f"Cal.com: unexpected {type(err).__name__}")


def success(response: requests.Response) -> dict[str, Any]:
    """The body of a success envelope (``status``, ``data``, maybe ``pagination``)."""
    try:
        body = response.json()
    except ValueError as err:
        raise ProviderDataError(f"Cal.com answered {response.status_code} without JSON") from err
    if not isinstance(body, dict) or body.get("status") != "success":
        raise ProviderDataError(
            f"Cal.com answered {response.status_code} without a success envelope"
        )
    return body


def api_error(response: requests.Response) -> tuple[str, str]:
    """Cal.com's ``error.code`` and ``error.message`` (empty when the body is not theirs)."""
    try:
        error = response.json().get("error", {})
    except (ValueError, AttributeError):
        return "", first_line(response.text)
    if not isinstance(error, dict):
        return "", first_line(str(error))
    return str(error.get("code", "")), first_line(str(error.get("message", "")))


def first_line(text: str) -> str:
    return text.strip().splitlines()[0][:500] if text.strip() else ""
