"""The Google adapter driven through google-api-python-client against FakeGoogle.

Expected spans are written by hand: Vienna is UTC+1 in December.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import pytest
from google.oauth2.credentials import Credentials

from calsync.errors import (
    CursorExpiredError,
    NotFoundError,
    ProviderAuthError,
    RateLimitedError,
)
from calsync.model import Attendee, EventStatus, TimeSpan, Transparency
from calsync.providers.base import BookingDraft
from calsync.providers.google import auth as google_auth
from calsync.providers.google._wire import event_id
from calsync.providers.google.provider import GoogleProvider
from calsync.providers.retry import Retrier
from tests.fakes.google_server import FakeGoogle

VIENNA = ZoneInfo("Europe/Vienna")
WINDOW = TimeSpan(datetime(2026, 11, 30, tzinfo=UTC), datetime(2027, 3, 1, tzinfo=UTC))
CLOCK = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


def local(day: int, hour: int, minute: int = 0) -> dict[str, str]:
    return {"dateTime": f"2026-12-{day:02d}T{hour:02d}:{minute:02d}:00+01:00"}


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    with FakeGoogle(time_zone="Europe/Vienna", clock=lambda: CLOCK) as fake:
        fake.add_calendar(fake.primary_calendar_id, primary=True, time_zone="Europe/Vienna")
        fake.add_calendar(
            "team0123", summary="Team", time_zone="Europe/Vienna", access_role="reader"
        )
        yield fake


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def provider(google: FakeGoogle, slept: list[float]) -> Iterator[GoogleProvider]:
    grant = google.user_credentials(google_auth.SCOPES)
    adapter = GoogleProvider(
        lambda: Credentials(**grant),
        account="office",
        default_timezone=VIENNA,
        endpoint=google.api_endpoint,
        retrier=Retrier(sleep=slept.append),
    )
    yield adapter
    adapter.close()


def list_requests(google: FakeGoogle) -> int:
    return sum(1 for r in google.requests if r.endpoint == "calendar.events.list")


def test_calendars_are_listed_with_primary_as_primary(provider: GoogleProvider) -> None:
    calendars = {c.id: c for c in provider.list_calendars()}
    assert set(calendars) == {"primary", "team0123"}
    assert calendars["primary"].primary
    assert (calendars["team0123"].name, calendars["team0123"].access) == ("Team", "reader")


def test_full_sync_applies_the_busy_rules(google: FakeGoogle, provider: GoogleProvider) -> None:
    cal = google.primary_calendar_id
    me = {"email": google.primary_calendar_id, "self": True}
    google.put_event(cal, {"id": "single01", "start": local(2, 9), "end": local(2, 10)})
    google.put_event(cal, {"id": "free0001", "start": local(2, 11), "end": local(2, 12),
                           "transparency": "transparent"})  # fmt: skip
    google.put_event(cal, {"id": "decline1", "start": local(2, 13), "end": local(2, 14),
                           "attendees": [{**me, "responseStatus": "declined"}]})  # fmt: skip
    google.put_event(cal, {"id": "tentat01", "start": local(2, 15), "end": local(2, 16),
                           "status": "tentative"})  # fmt: skip
    google.put_event(cal, {"id": "allda001", "start": {"date": "2026-12-08"},
                           "end": {"date": "2026-12-09"}})  # fmt: skip
    away = {"start": local(3, 9), "end": local(3, 17), "transparency": "opaque"}
    google.put_event(cal, {"id": "ooo00001", "eventType": "outOfOffice", **away})
    home = {"type": "homeOffice", "homeOffice": {}}
    google.put_event(cal, {"id": "place001", "eventType": "workingLocation",
                           "start": {"date": "2026-12-04"}, "end": {"date": "2026-12-05"},
                           "transparency": "transparent", "visibility": "public",
                           "workingLocationProperties": home})  # fmt: skip
    batch = provider.fetch_changes("primary", None, WINDOW)
    assert batch.full
    assert batch.cursor
    got = {e.provider_id: e for e in batch.events}
    assert got["single01"].span == TimeSpan(utc(2, 8), utc(2, 9))
    assert got["free0001"].transparency is Transparency.TRANSPARENT
    assert got["decline1"].declined
    assert got["tentat01"].status is EventStatus.TENTATIVE
    assert got["allda001"].all_day
    assert got["allda001"].span == TimeSpan(utc(7, 23), utc(8, 23))  # Vienna midnight to midnight
    assert got["ooo00001"].transparency is Transparency.OPAQUE
    assert got["place001"].transparency is Transparency.TRANSPARENT


def test_recurring_series_come_as_instances(google: FakeGoogle, provider: GoogleProvider) -> None:
    google.put_event(google.primary_calendar_id, {
        "id": "series01", "start": {**local(7, 8), "timeZone": "Europe/Vienna"},
        "end": {**local(7, 9), "timeZone": "Europe/Vienna"},
        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"],
    })  # fmt: skip
    batch = provider.fetch_changes("primary", None, WINDOW)
    starts = sorted(e.span.start for e in batch.events)
    assert starts == [utc(7, 7), utc(14, 7), utc(21, 7)]


def test_incremental_changes_and_one_request_when_unchanged(
    google: FakeGoogle, provider: GoogleProvider
) -> None:
    cal = google.primary_calendar_id
    google.put_event(cal, {
        "id": "series01", "start": {**local(7, 8), "timeZone": "Europe/Vienna"},
        "end": {**local(7, 9), "timeZone": "Europe/Vienna"},
        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"],
    })  # fmt: skip
    google.put_event(cal, {"id": "single01", "start": local(2, 9), "end": local(2, 10)})
    full = provider.fetch_changes("primary", None, WINDOW)
    before = list_requests(google)
    quiet = provider.fetch_changes("primary", full.cursor, WINDOW)
    assert quiet.unchanged
    assert list_requests(google) - before == 1
    first = {"dateTime": "2026-12-07T08:00:00+01:00", "timeZone": "Europe/Vienna"}
    second = {"dateTime": "2026-12-14T08:00:00+01:00", "timeZone": "Europe/Vienna"}
    google.cancel_instance(cal, "series01", first)
    google.move_instance(cal, "series01", second, start=local(14, 10), end=local(14, 11))
    google.delete_event(cal, "single01")
    google.put_event(cal, {"id": "added001", "start": local(9, 9), "end": local(9, 10)})
    changes = provider.fetch_changes("primary", quiet.cursor, WINDOW)
    assert not changes.full
    upserted = {e.provider_id: e.span.start for e in changes.events}
    assert upserted["added001"] == utc(9, 8)
    moved = [pid for pid, start in upserted.items() if start == utc(14, 9)]
    assert len(moved) == 1
    assert "single01" in changes.deleted
    assert any(pid.startswith("series01_20261207") for pid in changes.deleted)


def test_an_expired_sync_token_is_cursor_expired(
    google: FakeGoogle, provider: GoogleProvider
) -> None:
    full = provider.fetch_changes("primary", None, WINDOW)
    google.invalidate_sync_tokens()
    with pytest.raises(CursorExpiredError):
        provider.fetch_changes("primary", full.cursor, WINDOW)


def test_pages_are_followed_to_the_sync_token(google: FakeGoogle, provider: GoogleProvider) -> None:
    for i in range(7):
        google.put_event(
            google.primary_calendar_id,
            {"id": f"paged{i:03d}", "start": local(10 + i, 9), "end": local(10 + i, 10)},
        )
    google.page_cap = 2
    batch = provider.fetch_changes("primary", None, WINDOW)
    assert len(batch.events) == 7
    assert list_requests(google) >= 4
    assert batch.cursor


def test_a_booking_is_written_once_even_when_retried(
    google: FakeGoogle, provider: GoogleProvider
) -> None:
    draft = BookingDraft(
        "3f1c0a52-8d6e-4c61-9a77-1d2b3c4d5e6f", "Dr. Test", "Europe/Vienna",
        TimeSpan(utc(7, 9), utc(7, 9, 30)), Attendee("Ann", "+436641234567"), "first visit",
    )  # fmt: skip
    refs = provider.book("primary", draft, "key")
    again = provider.book("primary", draft, "key")  # a retry: Google answers 409 duplicate
    assert refs["event_id"] == again["event_id"] == event_id(draft.booking_id)
    stored = [e for e in google.events(google.primary_calendar_id) if e["status"] != "cancelled"]
    assert len(stored) == 1
    assert "+436641234567" in stored[0]["description"]
    moved = replace(draft, span=TimeSpan(utc(7, 10), utc(7, 10, 30)))
    provider.reschedule("primary", refs, moved)
    event = google.event(google.primary_calendar_id, refs["event_id"])
    assert datetime.fromisoformat(event["start"]["dateTime"]) == utc(7, 10)
    provider.cancel("primary", refs)
    provider.cancel("primary", refs)  # 410 deleted the second time: already done
    assert google.event(google.primary_calendar_id, refs["event_id"])["status"] == "cancelled"


def test_free_busy_is_asked_in_chunks(google: FakeGoogle, provider: GoogleProvider) -> None:
    google.put_event(google.primary_calendar_id, {"id": "bus00001", "start": local(7, 9),
                                                  "end": local(7, 10)})  # fmt: skip
    span = TimeSpan(utc(1, 0), utc(1, 0) + timedelta(days=100))
    busy = provider.free_busy([google.primary_calendar_id], span)
    assert busy == [TimeSpan(utc(7, 8), utc(7, 9))]
    assert google.counts["calendar.freebusy.query"] == 2


def test_rate_limits_are_retried_honouring_retry_after(
    google: FakeGoogle, provider: GoogleProvider, slept: list[float]
) -> None:
    google.fail_next(403, "rateLimitExceeded", n=2)
    google.fail_next(429, retry_after=7)
    google.fail_next(503)
    assert provider.fetch_changes("primary", None, WINDOW).full
    assert 7.0 in slept
    assert len(slept) == 4


def test_a_rate_limit_storm_that_never_ends_is_an_error(
    google: FakeGoogle, provider: GoogleProvider
) -> None:
    google.fail_next(403, "userRateLimitExceeded", n=100)
    with pytest.raises(RateLimitedError):
        provider.fetch_changes("primary", None, WINDOW)


def test_every_attempt_is_counted_by_outcome(google: FakeGoogle, slept: list[float]) -> None:
    seen: list[tuple[str, str]] = []
    grant = google.user_credentials(google_auth.SCOPES)
    adapter = GoogleProvider(
        lambda: Credentials(**grant), account="office", default_timezone=VIENNA,
        endpoint=google.api_endpoint, retrier=Retrier(sleep=slept.append),
        observe=lambda provider, outcome: seen.append((provider, outcome)),
    )  # fmt: skip
    google.fail_next(429, retry_after=7)
    google.fail_next(403, "rateLimitExceeded")
    google.fail_next(503)
    try:
        assert adapter.list_calendars()
        with pytest.raises(NotFoundError):
            adapter.fetch_changes("nosuchcalendar", None, WINDOW)
    finally:
        adapter.close()
    outcomes = ["throttled", "throttled", "error", "ok", "error"]
    assert seen == [("google", outcome) for outcome in outcomes]


def test_a_revoked_grant_needs_reauth_and_says_how(
    google: FakeGoogle, provider: GoogleProvider
) -> None:
    google.revoke_refresh_tokens()
    google.expire_access_tokens()
    with pytest.raises(ProviderAuthError) as caught:
        provider.list_calendars()
    assert "Testing" in caught.value.message
    assert "calsync auth google --account office" in caught.value.message


class _Receiver(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, str]]] = []

    def do_POST(self) -> None:
        _Receiver.seen.append({k.lower(): v for k, v in self.headers.items()})
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_push_channels_open_notify_and_close(google: FakeGoogle, provider: GoogleProvider) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        address = f"http://127.0.0.1:{server.server_address[1]}/push/google"
        channel = provider.open_channel("primary", address, "secret-token")
        assert channel.expires_at > CLOCK
        google.wait_for_push()
        assert _Receiver.seen[0]["x-goog-resource-state"] == "sync"
        assert _Receiver.seen[0]["x-goog-channel-token"] == "secret-token"
        provider.close_channel(channel)
        provider.close_channel(channel)  # closing twice is fine
        assert all(c.stopped for c in google.channels)
    finally:
        server.shutdown()
        server.server_close()
