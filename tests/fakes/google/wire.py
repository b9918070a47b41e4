"""Wire-level values of Calendar v3: RFC 3339 times, EventDateTime, resource ids, etags.

Parses what clients send (rejecting what Google rejects, with Google's
messages) and formats what the fake sends back. Pure functions; no state.
"""

from __future__ import annotations

import base64
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ApiError

_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d+))?(?P<offset>[Zz]|[+-]\d{2}:\d{2})?"
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
EVENT_ID = re.compile(r"[a-v0-9]{5,1024}")  # base32hex, providers.md 1.3
UTC_NAMES = frozenset({"UTC", "Etc/UTC", "GMT", "Etc/GMT", "Z"})


def parse_rfc3339(value: str, *, offset_required: bool = True) -> datetime:
    """An RFC 3339 date-time; aware when it has an offset. Raises ValueError."""
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise ValueError(f"not an RFC 3339 date-time: {value!r}")
    offset = match.group("offset")
    if offset is None and offset_required:
        raise ValueError(f"RFC 3339 date-time without offset: {value!r}")
    fraction = (match.group(3) or "0")[:6].ljust(6, "0")
    text = f"{match.group(1)}T{match.group(2)}.{fraction}"
    if offset is not None:
        text += "+00:00" if offset in "Zz" else offset
    return datetime.fromisoformat(text)


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; raises ValueError for unknown names."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"unknown time zone {name!r}") from err


def format_time(instant: datetime, tz: ZoneInfo) -> str:
    """``instant`` as Google renders it: local time in ``tz`` with its offset (``Z`` for UTC)."""
    local = instant.astimezone(tz)
    stamp = local.strftime("%Y-%m-%dT%H:%M:%S")
    if tz.key in UTC_NAMES:
        return stamp + "Z"
    offset = local.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{stamp}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def format_stamp(instant: datetime) -> str:
    """``created``/``updated`` style: UTC with milliseconds, e.g. ``2026-01-05T08:00:00.000Z``."""
    utc = instant.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def new_event_id() -> str:
    """A server-chosen id: 26 base32hex characters, like Google's."""
    return base64.b32hexencode(uuid.uuid4().bytes).decode().rstrip("=").lower()


def etag(seq: int) -> str:
    return f'"{3_500_000_000_000_000 + seq * 1000}"'


@dataclass(frozen=True)
class Moment:
    """A parsed EventDateTime: an all-day ``day`` or an exact ``instant``, plus its ``timeZone``."""

    day: date | None
    instant: datetime | None
    tz: ZoneInfo | None

    @property
    def all_day(self) -> bool:
        return self.day is not None

    def utc(self, calendar_tz: ZoneInfo) -> datetime:
        """The moment as a UTC instant; a date means midnight in the calendar's zone."""
        if self.day is not None:
            return datetime.combine(self.day, time(), calendar_tz).astimezone(UTC)
        assert self.instant is not None
        return self.instant.astimezone(UTC)

    def render(self, calendar_tz: ZoneInfo, display_tz: ZoneInfo | None = None) -> dict[str, str]:
        if self.day is not None:
            return {"date": self.day.isoformat()}
        assert self.instant is not None
        shown = display_tz or self.tz or calendar_tz
        out = {"dateTime": format_time(self.instant, shown)}
        if self.tz is not None:
            out["timeZone"] = self.tz.key
        return out


def parse_moment(value: Any, field: str) -> Moment:
    """An EventDateTime (``start``/``end``/``originalStartTime``) or Google's 400."""
    if not isinstance(value, dict) or not ({"date", "dateTime"} & value.keys()):
        raise ApiError(400, "required", f"Missing {field} time.")
    tz = _optional_zone(value.get("timeZone"), field)
    if value.get("date") is not None and value.get("dateTime") is not None:
        raise ApiError(400, "invalid", f"Invalid {field} time.")
    if value.get("date") is not None:
        raw = value["date"]
        if not isinstance(raw, str) or not _DATE.fullmatch(raw):
            raise ApiError(400, "invalid", f"Invalid {field} time.")
        try:
            return Moment(date.fromisoformat(raw), None, tz)
        except ValueError as err:
            raise ApiError(400, "invalid", f"Invalid {field} time.") from err
    raw = value["dateTime"]
    try:
        parsed = parse_rfc3339(raw, offset_required=False) if isinstance(raw, str) else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise ApiError(400, "invalid", f"Invalid {field} time.")
    if parsed.tzinfo is None:
        if tz is None:
            raise ApiError(400, "required", f"Missing time zone definition for {field} time.")
        parsed = parsed.replace(tzinfo=tz)
    return Moment(None, parsed, tz)


def _optional_zone(name: Any, field: str) -> ZoneInfo | None:
    if name is None:
        return None
    try:
        return zone(name) if isinstance(name, str) else zone("")
    except ValueError as err:
        raise ApiError(400, "invalid", f"Invalid time zone definition for {field} time.") from err
