"""Domain results -> the JSON documents calsync returns (HTTP bodies and ``--json`` output).

One function per document, so the CLI's ``--json`` prints exactly what the
HTTP endpoint returns. Every time carries an explicit offset, in the
resource's zone unless the caller asked for another.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from calsync.api.spoken import spoken
from calsync.model import WEEKDAYS, AccountStatus, CalendarStatus, Resource, TimeSpan
from calsync.scheduler.availability import FreeBusy, Freshness, Slots
from calsync.views import booking_view, hold_view, iso, minutes, span_view

__all__ = ["booking_view", "hold_view"]  # re-exported: one import for every JSON view


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


def slot_view(slot: TimeSpan, tz: ZoneInfo, language: str, now: datetime) -> dict[str, str]:
    return {**span_view(slot, tz), "spoken": spoken(slot.start, tz, language, now=now)}


def slots_view(
    result: Slots, *, now: datetime, tz: ZoneInfo | None = None, language: str | None = None
) -> dict[str, Any]:
    zone = tz or result.resource.timezone
    lang = language or result.resource.language
    return {
        "resource": result.resource.id,
        "timezone": zone.key,
        **span_view(result.span, zone),
        "duration": minutes(result.duration),
        "slots": [slot_view(slot, zone, lang, now) for slot in result.slots],
        **_freshness(result.freshness, zone),
    }


def resource_view(resource: Resource) -> dict[str, Any]:
    rules = resource.rules
    return {
        "id": resource.id,
        "name": resource.name,
        "timezone": resource.timezone.key,
        "language": resource.language,
        "duration": minutes(rules.duration),
        "step": minutes(rules.step),
        "buffer_before": minutes(rules.buffer_before),
        "buffer_after": minutes(rules.buffer_after),
        "min_notice": minutes(rules.min_notice),
        "max_days_ahead": rules.max_days_ahead,
        "max_per_day": rules.max_per_day,
        "hours": {day: [str(r) for r in rules.weekly[i]] for i, day in enumerate(WEEKDAYS)},
        "overrides": [
            {"date": day.isoformat(), "hours": [str(r) for r in ranges]}
            for day, ranges in sorted(rules.overrides.items())
        ],
        "check": [str(ref) for ref in resource.check],
        "book_into": str(resource.book_into) if resource.book_into else None,
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
