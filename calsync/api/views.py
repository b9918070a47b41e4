"""Domain results -> the JSON documents calsync returns (HTTP bodies and ``--json`` output).

One function per document, so the CLI's ``--json`` prints exactly what the
HTTP endpoint returns. Every time carries an explicit offset, in the
resource's zone unless the caller asked for another.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from calsync.model import AccountStatus, CalendarStatus, TimeSpan
from calsync.scheduler.availability import FreeBusy, Freshness, Slots


def iso(value: datetime, tz: ZoneInfo) -> str:
    return value.astimezone(tz).isoformat()


def minutes(value: timedelta) -> int:
    return int(value.total_seconds() // 60)


def span_view(span: TimeSpan, tz: ZoneInfo) -> dict[str, str]:
    return {"start": iso(span.start, tz), "end": iso(span.end, tz)}


def _freshness(freshness: Freshness, tz: ZoneInfo) -> dict[str, Any]:
    as_of = iso(freshness.as_of, tz) if freshness.as_of else None
    return {"as_of": as_of, "stale": freshness.stale}


def freebusy_view(result: FreeBusy, tz: ZoneInfo | None = None) -> dict[str, Any]:
    zone = tz or result.resource.timezone
    return {
        "resource": result.resource.id,
        "timezone": zone.key,
        **span_view(result.span, zone),
        "busy": [span_view(span, zone) for span in result.busy],
        **_freshness(result.freshness, zone),
    }


def slots_view(result: Slots, tz: ZoneInfo | None = None) -> dict[str, Any]:
    zone = tz or result.resource.timezone
    return {
        "resource": result.resource.id,
        "timezone": zone.key,
        **span_view(result.span, zone),
        "duration": minutes(result.duration),
        "slots": [span_view(slot, zone) for slot in result.slots],
        **_freshness(result.freshness, zone),
    }


def status_view(
    accounts: list[AccountStatus],
    calendars: list[CalendarStatus],
    *,
    now: datetime,
    stale_after: timedelta,
) -> dict[str, Any]:
    return {
        "accounts": [_account(a) for a in accounts],
        "calendars": [_calendar(c, now, stale_after) for c in calendars],
    }


def _account(account: AccountStatus) -> dict[str, Any]:
    fix = None
    if account.status == "reauth_required":
        fix = f"calsync auth {account.provider} --account {account.name}"
    return {
        "name": account.name,
        "provider": account.provider,
        "status": account.status,
        "detail": account.detail,
        "fix": fix,
    }


def _calendar(status: CalendarStatus, now: datetime, stale_after: timedelta) -> dict[str, Any]:
    age = (now - status.last_success).total_seconds() if status.last_success else None
    return {
        "calendar": str(status.ref),
        "name": status.name,
        "events": status.events,
        "last_success": status.last_success.isoformat() if status.last_success else None,
        "age_seconds": round(age) if age is not None else None,
        "stale": age is None or age > stale_after.total_seconds(),
        "last_attempt": status.last_attempt.isoformat() if status.last_attempt else None,
        "last_error": status.last_error,
        "failures": status.failures,
    }
