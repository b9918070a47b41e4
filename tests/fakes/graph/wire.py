"""Wire details shared by both halves of the fake: HTTP envelopes, Graph time values, zones.

Owns: the request/reply value types the handler passes around, the Graph and
AAD error envelopes, the ``dateTimeTimeZone`` text format (no offset, seven
fractional digits), Windows/IANA zone resolution (CLDR table shipped with
``icalendar``), ``Prefer`` header parsing and opaque id minting. It must not
know about mailboxes, tokens or subscriptions.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

JSON_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;charset=utf-8"
_WINDOWS = {name.lower(): (name, iana) for name, iana in WINDOWS_TO_OLSON.items()}
_WALL_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?(Z|[+-]\d{2}:\d{2})?$"
)


class WireError(ValueError):
    """A request value Graph would reject; carries the Graph error code."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Incoming:
    """One HTTP request as the fake's routes see it."""

    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes
    base_url: str  # scheme://host the client addressed (honours the loopback adapter)

    def json(self) -> Any:
        if not self.body:
            raise WireError("BadRequest", "Empty Payload, JSON content expected")
        try:
            return json.loads(self.body)
        except ValueError as err:
            raise WireError("BadRequest", f"Unable to read JSON request payload: {err}") from err

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
    return Reply(
        status, json.dumps(payload).encode(), {"Content-Type": JSON_TYPE, **(headers or {})}
    )


def graph_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Reply:
    """Graph's envelope: ``{"error":{"code","message","innerError":{...}}}``."""
    request_id = str(uuid.uuid4())
    inner = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id,
        "client-request-id": request_id,
    }
    payload = {"error": {"code": code, "message": message, "innerError": inner}}
    return json_reply(status, payload, {"request-id": request_id, **(headers or {})})


def wire_error_reply(err: WireError) -> Reply:
    return graph_error(err.status, err.code, err.message)


# --- time values ------------------------------------------------------------------


@dataclass(frozen=True)
class Zone:
    """A zone name as a client spelled it, and the tz it means."""

    name: str
    tz: ZoneInfo


UTC_ZONE = Zone("UTC", ZoneInfo("UTC"))


def resolve_zone(name: str) -> Zone:
    """``UTC``, a Windows zone id (CLDR ``001`` row) or an IANA name; else WireError."""
    if name.upper() == "UTC":
        return Zone(name, ZoneInfo("UTC"))
    windows = _WINDOWS.get(name.lower())
    if windows is not None:
        return Zone(name, ZoneInfo(windows[1]))
    if "/" in name:
        try:
            return Zone(name, ZoneInfo(name))
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise WireError(
        "TimeZoneNotSupportedException",
        "A valid TimeZone value must be specified. "
        f"The following TimeZone value is not supported: '{name}'.",
    )


def format_wall(value: datetime | date, zone: Zone) -> dict[str, str]:
    """A ``dateTimeTimeZone``: wall time in ``zone`` without offset, seven fraction digits.

    Dates (all-day events) stay midnight whatever the zone: they float.
    """
    if isinstance(value, datetime):
        local = value.astimezone(zone.tz)
        text = f"{local:%Y-%m-%dT%H:%M:%S}.{local.microsecond:06d}0"
    else:
        text = f"{value:%Y-%m-%d}T00:00:00.0000000"
    return {"dateTime": text, "timeZone": zone.name}


def format_timestamp(value: datetime) -> str:
    """UTC instant as Graph writes ``lastModifiedDateTime``: seven digits and ``Z``."""
    utc = value.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond:06d}0Z"


def parse_wall(value: Any, zone_name: Any, what: str) -> datetime:
    """Parse a request ``dateTimeTimeZone`` into an aware datetime.

    The doc format carries no offset; a trailing ``Z`` is tolerated with zone
    ``UTC`` (unambiguous), any other offset is refused (deliberately strict).
    """
    if not isinstance(value, str) or not isinstance(zone_name, str):
        raise WireError("ErrorInvalidRequest", f"{what} needs string dateTime and timeZone.")
    zone = resolve_zone(zone_name)
    match = _WALL_TIME.match(value)
    if match is None:
        raise WireError("ErrorInvalidRequest", f"{what}.dateTime is not a valid date: {value!r}")
    offset = match.group(8)
    if offset is not None and not (offset == "Z" and zone.tz.key == "UTC"):
        raise WireError(
            "ErrorInvalidRequest",
            f"{what}.dateTime must be a wall time without offset "
            f"(the zone goes in timeZone): {value!r}",
        )
    year, month, day, hour, minute = (int(match.group(i)) for i in range(1, 6))
    second = int(match.group(6) or 0)
    micro = int((match.group(7) or "0").ljust(7, "0")[:6])
    try:
        naive = datetime(year, month, day, hour, minute, second, micro)
    except ValueError as err:
        raise WireError("ErrorInvalidRequest", f"{what}.dateTime: {err}") from err
    return naive.replace(tzinfo=zone.tz)


def parse_instant(value: str, what: str) -> datetime:
    """An ISO 8601 query value; without an offset it is UTC (calendarView rule)."""
    match = _WALL_TIME.match(value)
    if match is None:
        raise WireError(
            "ErrorInvalidParameter", f"The value '{value}' of parameter '{what}' is invalid."
        )
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as err:
        raise WireError("ErrorInvalidParameter", f"{what}: {err}") from err
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# --- Prefer --------------------------------------------------------------------------


def parse_prefer(header: str | None) -> dict[str, str]:
    """``Prefer: a=1, outlook.timezone="W. Europe Standard Time"`` -> lower-cased keys."""
    prefs: dict[str, str] = {}
    for part in re.findall(r'(?:[^,"]|"[^"]*")+', header or ""):
        name, _, value = part.strip().partition("=")
        if name:
            prefs[name.strip().lower()] = value.strip().strip('"')
    return prefs


# --- ids ------------------------------------------------------------------------------


def new_item_id() -> str:
    """Opaque, URL-safe, padded like Exchange ids (``AAMkA...=``)."""
    return "AAMkA" + base64.urlsafe_b64encode(secrets.token_bytes(45)).decode() + "="


def derive_id(base: str, salt: str) -> str:
    """A stable id for an occurrence of ``base`` (same inputs, same id)."""
    digest = hashlib.sha256(f"{base}|{salt}".encode()).digest()
    return base[:24] + "ABIA" + base64.urlsafe_b64encode(digest).decode().rstrip("=") + "="


def change_key(*parts: object) -> str:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return base64.b64encode(digest[:18]).decode()
