"""The Cal.com adapter driven through requests against FakeCalcom (API v2 on loopback).

Expected spans are written by hand. The fake's clock and the provider's stand
at Monday 2 March 2026, 07:00 UTC and move together; Vienna is UTC+1 then,
and the seeded event types (101 ``intro-call``, 30 min; 102 ``sms-consult``,
60 min, phone required) are open Mon-Fri 09:00-17:00 Vienna = 08:00-16:00 UTC.
"""

from __future__ import annotations

import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from calsync.clock import FrozenClock
from calsync.errors import (
    CursorExpiredError,
    InputError,
    NotFoundError,
    ProviderAuthError,
    SlotUnavailableError,
)
from calsync.model import Attendee, Event, EventStatus, TimeSpan
from calsync.providers.base import BookingDraft, CalendarInfo, ChangeBatch
from calsync.providers.calcom import auth
from calsync.providers.calcom._errors import (
    CONTACT_NEEDED,
    EMAIL_NEEDED,
    PHONE_FORMAT,
    PHONE_NEEDED,
)
from calsync.providers.calcom.provider import CalcomProvider
from calsync.providers.calcom.ratelimit import RateLimiter
from calsync.providers.retry import Retrier
from tests.fakes.calcom_server import EventType, FakeCalcom, Schedule

VIENNA = ZoneInfo("Europe/Vienna")
NOW = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
WINDOW = TimeSpan(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
TUE_0800 = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)  # 09:00 in Vienna
VERSIONS = {"bookings": "2024-08-13", "slots": "2024-09-04", "event-types": "2024-06-14"}


def tue(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, 3, hour, minute, tzinfo=UTC)


def span(start: datetime, minutes: int) -> TimeSpan:
    return TimeSpan(start, start + timedelta(minutes=minutes))


def draft(
    start: datetime = TUE_0800,
    minutes: int = 30,
    *,
    booking_id: str = "bk-1",
    phone: str | None = None,
    email: str | None = "ada@example.com",
    notes: str | None = None,
) -> BookingDraft:
    attendee = Attendee("Ada Caller", phone, email)
    return BookingDraft(
        booking_id, "Dr. Smith", "Europe/Vienna", span(start, minutes), attendee, notes
    )


class World:
    """The fake, the provider's clock (moved together) and what the retrier slept."""

    def __init__(self, cal: FakeCalcom, session: requests.Session) -> None:
        self.cal = cal
        self.session = session
        self.clock = FrozenClock(NOW)
        self.slept: list[float] = []

    def provider(self, **options: Any) -> CalcomProvider:
        options.setdefault("retrier", Retrier(sleep=self.slept.append))
        return CalcomProvider(
            lambda: self.cal.api_key,
            account="cal",
            session=self.session,
            default_timezone=VIENNA,
            endpoint=self.cal.endpoint,
            clock=self.clock,
            **options,
        )

    def advance(self, minutes: int) -> None:
        self.cal.advance(timedelta(minutes=minutes))
        self.clock.advance(timedelta(minutes=minutes))


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


@pytest.fixture
def cal() -> Iterator[FakeCalcom]:
    with FakeCalcom(now=NOW) as fake:
        yield fake
    assert fake.errors == []


@pytest.fixture
def world(cal: FakeCalcom, session: requests.Session) -> World:
    return World(cal, session)


@pytest.fixture
def provider(world: World) -> CalcomProvider:
    return world.provider()


def by_id(batch: ChangeBatch) -> dict[str, Event]:
    return {e.provider_id: e for e in batch.events}


def walk_in(cal: FakeCalcom, start: datetime, event_type: int = 101) -> str:
    phone = "+436641234567" if event_type == 102 else None
    return str(cal.book_directly(event_type, start, phone=phone)["uid"])


# --- the API key -----------------------------------------------------------------------------


def test_verify_returns_the_keys_user(cal: FakeCalcom, session: requests.Session) -> None:
    user = auth.verify(session, cal.endpoint, f"  {cal.api_key}\n")
    assert (user.username, user.email, user.time_zone) == (
        "alex",
        "alex@example.com",
        "Europe/Vienna",
    )


@pytest.mark.parametrize("key", ["cal_test_unknown", "not-a-cal-key"])
def test_verify_refuses_a_bad_key_clearly(
    cal: FakeCalcom, session: requests.Session, key: str
) -> None:
    with pytest.raises(InputError, match=r"Cal\.com refused this API key") as caught:
        auth.verify(session, cal.endpoint, key)
    assert key not in caught.value.message
    with pytest.raises(InputError, match=r"not a Cal\.com API key"):
        auth.verify(session, cal.endpoint, "two words")


def test_connect_stores_the_key_0600_and_the_daemon_loads_it(
    cal: FakeCalcom, session: requests.Session, tmp_path: Path
) -> None:
    with pytest.raises(ProviderAuthError) as missing:
        auth.load_api_key(auth.key_path(tmp_path, "cal"), "cal")
    assert missing.value.message == (
        "Cal.com account 'cal' is not connected yet; run `calsync auth calcom --account cal`"
    )
    user = auth.connect(
        tmp_path / "state", "cal", cal.api_key, session=session, endpoint=cal.endpoint
    )
    assert user.username == "alex"
    path = tmp_path / "state" / "calcom-cal.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert auth.load_api_key(path, "cal") == cal.api_key
    with pytest.raises(InputError):
        auth.connect(tmp_path / "other", "x", "cal_bad", session=session, endpoint=cal.endpoint)
    assert not (tmp_path / "other").exists()


def test_key_and_secret_files_are_read_with_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("cal_live_abc\n")
    assert auth.read_key_file(tmp_path / "key") == "cal_live_abc"
    with pytest.raises(InputError, match="--api-key-file: cannot read"):
        auth.read_key_file(tmp_path / "missing")
    (tmp_path / "empty.key").write_text("\n")
    with pytest.raises(ProviderAuthError, match="is empty; run `calsync auth calcom"):
        auth.load_api_key(tmp_path / "empty.key", "cal")
    (tmp_path / "hook.secret").write_text("s3cret\n")
    assert auth.load_webhook_secret(tmp_path / "hook.secret", "cal") == "s3cret"
    with pytest.raises(NotFoundError, match=r"accounts\.cal\.webhook_secret_file"):
        auth.load_webhook_secret(tmp_path / "nope", "cal")


# --- calendars -------------------------------------------------------------------------------


def test_calendars_are_all_bookings_then_the_event_types(
    cal: FakeCalcom, provider: CalcomProvider
) -> None:
    expected = [
        CalendarInfo(
            "bookings",
            "All bookings of alex (every event type)",
            timezone="Europe/Vienna",
            access="reader",
            primary=True,
        ),
        CalendarInfo("101", "Intro call (intro-call, 30 min)", access="writer"),
        CalendarInfo("102", "Consultation (SMS reminder) (sms-consult, 60 min)", access="writer"),
    ]
    assert provider.list_calendars() == expected
    assert provider.list_calendars() == expected
    assert cal.count("GET /v2/me") == 1  # the username is cached
    listed = [r for r in cal.requests if r.route == "GET /v2/event-types"]
    assert [r.path for r in listed] == ["/v2/event-types?username=alex"] * 2


# --- sync ------------------------------------------------------------------------------------


def test_full_sync_maps_blocking_bookings_to_events(world: World, cal: FakeCalcom) -> None:
    cal.add_event_type(EventType(7, "vet", "Vet visit", 20, requires_confirmation=True))
    intro = walk_in(cal, tue(8))
    sms = walk_in(cal, tue(10), 102)
    pending = walk_in(cal, tue(13), 7)
    cancelled = walk_in(cal, tue(14))
    cal.cancel_directly(cancelled)
    walk_in(cal, datetime(2026, 4, 10, 8, tzinfo=UTC))  # after the window
    batch = world.provider().fetch_changes("bookings", None, WINDOW)
    assert batch.full
    assert not batch.deleted
    assert by_id(batch) == {
        intro: Event(intro, span(tue(8), 30), etag="2026-03-02T07:00:00.000Z", updated=NOW),
        sms: Event(sms, span(tue(10), 60), etag="2026-03-02T07:00:00.000Z", updated=NOW),
        pending: Event(
            pending,
            span(tue(13), 20),
            status=EventStatus.TENTATIVE,
            etag="2026-03-02T07:00:00.000Z",
            updated=NOW,
        ),
    }
    strict = world.provider(include_pending=False).fetch_changes("bookings", None, WINDOW)
    assert set(by_id(strict)) == {intro, sms}
    assert set(by_id(world.provider().fetch_changes("intro-call", None, WINDOW))) == {intro}
    assert set(by_id(world.provider().fetch_changes("102", None, WINDOW))) == {sms}


def test_full_sync_pages_with_take_and_skip(world: World, cal: FakeCalcom) -> None:
    uids = {walk_in(cal, tue(8 + i)) for i in range(5)}
    batch = world.provider(page_size=2).fetch_changes("bookings", None, WINDOW)
    assert set(by_id(batch)) == uids
    pages = [r.path for r in cal.requests if r.route == "GET /v2/bookings"]
    assert [p.split("skip=")[1] for p in pages] == ["0", "2", "4"]
    assert all("take=2" in p for p in pages)


def test_incremental_sync_applies_new_cancelled_rescheduled_and_changed_bookings(
    world: World, cal: FakeCalcom, provider: CalcomProvider
) -> None:
    kept, cancelled, moved, edited = (walk_in(cal, tue(h)) for h in (8, 9, 10, 11))
    first = provider.fetch_changes("bookings", None, WINDOW)
    assert set(by_id(first)) == {kept, cancelled, moved, edited}

    world.advance(10)
    new = walk_in(cal, tue(13))
    cal.cancel_directly(cancelled)
    successor = cal.reschedule_directly(moved, tue(14))["uid"]
    cal.change_booking(edited, start=tue(11, 30), end=tue(12))
    before = len(cal.requests)
    second = provider.fetch_changes("bookings", first.cursor, WINDOW)
    assert not second.full
    assert not second.unchanged
    assert {k: e.span for k, e in by_id(second).items()} == {
        new: span(tue(13), 30),
        successor: span(tue(14), 30),
        edited: span(tue(11, 30), 30),
    }
    assert sorted(second.deleted) == sorted([cancelled, moved])
    queries = [r.path for r in cal.requests[before:]]
    assert any("afterUpdatedAt=2026-03-02T06%3A58%3A00Z" in q for q in queries)
    assert any("afterCreatedAt=2026-03-02T06%3A58%3A00Z" in q for q in queries)

    world.advance(5)
    third = provider.fetch_changes("bookings", second.cursor, WINDOW)
    assert third.unchanged
    assert not third.events
    assert not third.deleted
    assert not third.full


def test_bookings_created_with_a_null_updated_at_are_found(
    session: requests.Session,
) -> None:
    with FakeCalcom(now=NOW, null_updated_at_on_create=True) as cal:
        world = World(cal, session)
        provider = world.provider()
        first = provider.fetch_changes("bookings", None, WINDOW)
        world.advance(10)
        uid = walk_in(cal, tue(8))
        second = provider.fetch_changes("bookings", first.cursor, WINDOW)
        assert list(by_id(second)) == [uid]


def test_a_full_pass_repairs_drift_every_six_hours(world: World, provider: CalcomProvider) -> None:
    first = provider.fetch_changes("bookings", None, WINDOW)
    world.advance(5 * 60)
    assert not provider.fetch_changes("bookings", first.cursor, WINDOW).full
    world.advance(60)
    assert provider.fetch_changes("bookings", first.cursor, WINDOW).full


def test_an_unreadable_cursor_asks_for_a_full_resync(provider: CalcomProvider) -> None:
    with pytest.raises(CursorExpiredError):
        provider.fetch_changes("bookings", '{"since": "yesterday"}', WINDOW)


def test_an_unknown_slug_names_the_command_that_lists_them(provider: CalcomProvider) -> None:
    with pytest.raises(NotFoundError, match="calsync calendars --account cal"):
        provider.fetch_changes("nope", None, WINDOW)


def test_honour_slots_adds_the_gaps_between_offered_slots(world: World, cal: FakeCalcom) -> None:
    booked = walk_in(cal, tue(10))
    tuesday = TimeSpan(tue(0), tue(0) + timedelta(days=1))
    batch = world.provider(honour_slots=True).fetch_changes("intro-call", None, tuesday)
    assert {k: e.span for k, e in by_id(batch).items()} == {
        booked: span(tue(10), 30),
        "slots:2026-03-03T00:00:00Z": TimeSpan(tue(0), tue(8)),  # before 09:00 Vienna
        "slots:2026-03-03T10:00:00Z": span(tue(10), 30),  # the booking
        "slots:2026-03-03T16:00:00Z": TimeSpan(tue(16), tue(0) + timedelta(days=1)),
    }
    assert batch.full
    (slots,) = [r for r in cal.requests if r.route == "GET /v2/slots"]
    assert "eventTypeId=101" in slots.path
    assert "slotFormat=range" in slots.path


# --- live free/busy -----------------------------------------------------------------------------


def test_free_busy_is_what_no_offered_slot_covers(
    cal: FakeCalcom, provider: CalcomProvider
) -> None:
    walk_in(cal, tue(10))
    morning = TimeSpan(tue(7), tue(11))
    assert provider.free_busy(["intro-call"], morning) == [
        TimeSpan(tue(7), tue(8)),  # 08:00 Vienna: not open yet
        span(tue(10), 30),
    ]
    assert provider.free_busy(["bookings"], morning) == [span(tue(10), 30)]


# --- writes ----------------------------------------------------------------------------------


def test_book_writes_through_cal_com_with_calsyncs_ids_in_the_metadata(
    cal: FakeCalcom, provider: CalcomProvider
) -> None:
    refs = provider.book("intro-call", draft(notes="Knee pain"), "bk-1")
    (booking,) = cal.bookings()
    assert refs == {"uid": booking["uid"], "event_type_id": 101, "id": booking["id"]}
    assert booking["metadata"] == {"calsync_booking_id": "bk-1", "calsync_idempotency_key": "bk-1"}
    assert booking["start"] == "2026-03-03T08:00:00.000Z"
    assert booking["attendees"][0]["timeZone"] == "Europe/Vienna"
    (create,) = [r for r in cal.requests if r.route == "POST /v2/bookings"]
    assert create.json == {
        "start": "2026-03-03T08:00:00Z",
        "eventTypeId": 101,
        "attendee": {"name": "Ada Caller", "timeZone": "Europe/Vienna", "email": "ada@example.com"},
        "metadata": {"calsync_booking_id": "bk-1", "calsync_idempotency_key": "bk-1"},
        "bookingFieldsResponses": {"notes": "Knee pain"},
    }


def test_a_timed_out_create_is_looked_up_not_booked_twice(world: World, cal: FakeCalcom) -> None:
    provider = world.provider(timeout=0.5)
    cal.delay_next_create(1.5)
    refs = provider.book("101", draft(), "bk-1")
    (booking,) = cal.bookings()
    assert refs["uid"] == booking["uid"]
    assert cal.count("POST /v2/bookings") == 1
    assert len(world.slept) == 1  # one retry, which found the booking


def test_booking_again_with_the_same_ids_returns_the_same_booking(
    cal: FakeCalcom, provider: CalcomProvider
) -> None:
    first = provider.book("intro-call", draft(), "bk-1")
    again = provider.book("intro-call", draft(), "bk-1")
    assert again == first
    assert len(cal.bookings()) == 1


def test_a_missing_phone_is_a_message_the_caller_can_act_on(
    cal: FakeCalcom, provider: CalcomProvider
) -> None:
    with pytest.raises(InputError) as caught:
        provider.book("sms-consult", draft(minutes=60), "bk-1")
    assert caught.value.message == PHONE_NEEDED
    assert "phone number" in PHONE_NEEDED
    assert cal.bookings() == []
    refs = provider.book("sms-consult", draft(minutes=60, phone="+436641234567"), "bk-1")
    assert cal.booking(refs["uid"])["attendees"][0]["phoneNumber"] == "+436641234567"


@pytest.mark.parametrize(
    ("phone", "email", "message"),
    [
        ("+436641234567", None, EMAIL_NEEDED),  # intro-call requires an email
        ("0664 1234567", "ada@example.com", PHONE_FORMAT),
        (None, None, CONTACT_NEEDED),
    ],
)
def test_other_attendee_problems_are_spoken_plainly(
    cal: FakeCalcom, provider: CalcomProvider, phone: str | None, email: str | None, message: str
) -> None:
    with pytest.raises(InputError) as caught:
        provider.book("intro-call", draft(phone=phone, email=email), "bk-1")
    assert caught.value.message == message
    assert cal.bookings() == []


def test_a_taken_slot_is_slot_unavailable(cal: FakeCalcom, provider: CalcomProvider) -> None:
    walk_in(cal, tue(8))
    with pytest.raises(SlotUnavailableError, match=r"Cal\.com cannot book this time"):
        provider.book("intro-call", draft(), "bk-1")
    assert len(cal.bookings()) == 1


def test_a_length_the_event_type_does_not_take_is_refused_before_asking(
    cal: FakeCalcom, provider: CalcomProvider
) -> None:
    with pytest.raises(InputError, match="takes bookings of 30 minutes, not 45"):
        provider.book("intro-call", draft(minutes=45), "bk-1")
    with pytest.raises(InputError, match="only be written into an event type"):
        provider.book("bookings", draft(), "bk-1")
    assert cal.count("POST /v2/bookings") == 0


def test_cancel_is_idempotent_and_follows_a_reschedule(
    cal: FakeCalcom, provider: CalcomProvider
) -> None:
    refs = provider.book("intro-call", draft(), "bk-1")
    provider.cancel("intro-call", refs)
    assert cal.booking(refs["uid"])["status"] == "cancelled"
    provider.cancel("intro-call", refs)  # cancelled already: done
    provider.cancel("intro-call", {"uid": "no-such-uid"})  # gone: done
    other = provider.book("intro-call", draft(tue(9), booking_id="bk-2"), "bk-2")
    moved = cal.reschedule_directly(other["uid"], tue(12))
    provider.cancel("intro-call", other)
    assert cal.booking(moved["uid"])["status"] == "cancelled"


def test_reschedule_returns_the_new_uid_and_a_retry_finds_it(
    cal: FakeCalcom, provider: CalcomProvider
) -> None:
    refs = provider.book("intro-call", draft(), "bk-1")
    moved = provider.reschedule("intro-call", refs, draft(tue(12)))
    assert moved["uid"] != refs["uid"]
    assert moved["event_type_id"] == 101
    new = cal.booking(moved["uid"])
    assert (new["start"], new["rescheduledFromUid"]) == ("2026-03-03T12:00:00.000Z", refs["uid"])
    assert cal.booking(refs["uid"])["rescheduledToUid"] == moved["uid"]
    assert provider.reschedule("intro-call", refs, draft(tue(12))) == moved  # a retry
    assert len([b for b in cal.bookings() if b["status"] == "accepted"]) == 1


# --- errors, rate limits, versions -----------------------------------------------------------


def test_a_revoked_key_is_reauth_without_the_key_in_the_message(
    cal: FakeCalcom, provider: CalcomProvider
) -> None:
    cal.revoke_api_key(cal.api_key)
    with pytest.raises(ProviderAuthError) as caught:
        provider.list_calendars()
    assert "run `calsync auth calcom --account cal`" in caught.value.message
    assert cal.api_key not in caught.value.message


def test_server_errors_are_retried(world: World, cal: FakeCalcom) -> None:
    cal.fail_next(503)
    assert len(world.provider().list_calendars()) == 3
    assert len(world.slept) == 1


def test_a_429_waits_for_the_reset_header(session: requests.Session) -> None:
    with FakeCalcom(now=NOW, window_seconds=1) as cal:
        world = World(cal, session)
        cal.throttle_next(1)
        assert len(world.provider().list_calendars()) == 3
        assert world.slept == [1.0]  # X-RateLimit-Reset-Default, no Retry-After
        assert [r.status for r in cal.requests] == [429, 200, 200]


def test_every_request_is_counted_by_outcome(session: requests.Session) -> None:
    seen: list[tuple[str, str]] = []
    with FakeCalcom(now=NOW, window_seconds=1) as cal:
        world = World(cal, session)
        provider = world.provider(observe=lambda name, outcome: seen.append((name, outcome)))
        cal.throttle_next(1)
        cal.fail_next(503)
        assert len(provider.list_calendars()) == 3
    outcomes = ["throttled", "error", "ok", "ok"]  # GET /me twice, then GET /event-types
    assert seen == [("calcom", outcome) for outcome in outcomes]


def test_the_limiter_keeps_many_threads_within_the_budget(session: requests.Session) -> None:
    with FakeCalcom(now=NOW, rate_limit=10, window_seconds=1) as cal:
        provider = World(cal, session).provider(limiter=RateLimiter(10, 1.0))
        errors: list[Exception] = []

        def hammer() -> None:
            try:
                for _ in range(3):
                    provider.list_calendars()
            except Exception as err:  # collected for the assertion below
                errors.append(err)

        threads = [threading.Thread(target=hammer) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert cal.count("GET /v2/event-types") == 24
        assert cal.max_rate(cal.api_key) <= 10
        assert all(r.status == 200 for r in cal.requests)


def test_each_endpoint_family_gets_its_cal_api_version(
    cal: FakeCalcom, provider: CalcomProvider
) -> None:
    walk_in(cal, tue(10))
    provider.list_calendars()
    batch = provider.fetch_changes("bookings", None, WINDOW)
    provider.fetch_changes("bookings", batch.cursor, WINDOW)
    provider.free_busy(["intro-call"], TimeSpan(tue(7), tue(11)))
    refs = provider.book("intro-call", draft(), "bk-1")
    refs = provider.reschedule("intro-call", refs, draft(tue(12)))
    provider.cancel("intro-call", refs)
    seen = set()
    for request in cal.requests:
        assert request.headers["authorization"] == f"Bearer {cal.api_key}"
        family = request.route.split()[1].split("/")[2]
        assert request.headers.get("cal-api-version") == VERSIONS.get(family), request.route
        assert request.status < 400, request.route
        seen.add(request.route)
    assert seen == {
        "GET /v2/me",
        "GET /v2/event-types",
        "GET /v2/bookings",
        "GET /v2/slots",
        "POST /v2/bookings",
        "POST /v2/bookings/{uid}/reschedule",
        "POST /v2/bookings/{uid}/cancel",
    }


def test_the_slots_schedule_does_not_leak_into_other_zones(world: World, cal: FakeCalcom) -> None:
    weekends = Schedule("America/New_York", [((5, 6), "10:00", "12:00")])
    cal.add_event_type(EventType(8, "sat", "Saturday", 60, schedule=weekends))
    saturday = TimeSpan(datetime(2026, 3, 7, tzinfo=UTC), datetime(2026, 3, 8, tzinfo=UTC))
    busy = world.provider().free_busy(["sat"], saturday)
    # 10:00-12:00 New York (UTC-5) = 15:00-17:00 UTC is offered, in two hour slots
    assert busy == [
        TimeSpan(saturday.start, datetime(2026, 3, 7, 15, tzinfo=UTC)),
        TimeSpan(datetime(2026, 3, 7, 17, tzinfo=UTC), saturday.end),
    ]
