"""The Outlook adapter driven through requests against FakeGraph (Graph v1.0 on loopback).

The provider talks to its default endpoint, https://graph.microsoft.com/v1.0,
through the fake's loopback session. Expected spans are written by hand:
Berlin is UTC+1 until 29 March 2026 and UTC+2 from then on.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import requests

from calsync.clock import FrozenClock
from calsync.errors import (
    CursorExpiredError,
    NotFoundError,
    ProviderAuthError,
    ProviderDataError,
    ProviderUnavailableError,
)
from calsync.model import Attendee, Event, EventStatus, TimeSpan, Transparency
from calsync.providers.base import BookingDraft, CalendarInfo, ChangeBatch
from calsync.providers.outlook import _wire
from calsync.providers.outlook.provider import OutlookProvider
from calsync.providers.retry import Retrier
from tests.fakes.graph import FakeGraph, RecordedRequest, Recurrence

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
WINDOW = TimeSpan(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
MON = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday; 10:00 in Berlin
PREFER = 'outlook.timezone="UTC", IdType="ImmutableId", odata.maxpagesize=200'


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def span(day: int, hour: int, hours: int = 1) -> TimeSpan:
    return TimeSpan(utc(day, hour), utc(day, hour) + timedelta(hours=hours))


class Tokens:
    """A token source minting fake access tokens; counts forced refreshes."""

    def __init__(self, graph: FakeGraph) -> None:
        self.graph = graph
        self.current = graph.mint_access_token()
        self.refreshes = 0

    def __call__(self, *, force_refresh: bool = False) -> str:
        if force_refresh:
            self.refreshes += 1
            self.current = self.graph.mint_access_token()
        return self.current


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with FakeGraph(clock=lambda: NOW) as fake:
        yield fake


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def tokens(graph: FakeGraph) -> Tokens:
    return Tokens(graph)


def make_provider(graph: FakeGraph, tokens: Tokens, **options: Any) -> OutlookProvider:
    return OutlookProvider(
        tokens,
        account="office",
        session=graph.http_client(),
        default_timezone=BERLIN,
        clock=FrozenClock(NOW),
        **options,
    )


@pytest.fixture
def provider(graph: FakeGraph, tokens: Tokens, slept: list[float]) -> OutlookProvider:
    return make_provider(graph, tokens, retrier=Retrier(sleep=slept.append))


def graph_calls(graph: FakeGraph, since: int = 0) -> list[RecordedRequest]:
    return [r for r in graph.requests[since:] if r.path.startswith("/v1.0/")]


def by_id(batch: ChangeBatch) -> dict[str, Event]:
    return {e.provider_id: e for e in batch.events}


# --- calendars ---------------------------------------------------------------------------


def test_calendars_list_the_default_one_as_primary(
    graph: FakeGraph, provider: OutlookProvider
) -> None:
    team = graph.add_calendar("Team (read only)", can_edit=False)
    assert provider.list_calendars() == [
        CalendarInfo("primary", "Calendar", access="writer", primary=True),
        CalendarInfo(team, "Team (read only)", access="reader", primary=False),
    ]
    (call,) = graph_calls(graph)
    assert (call.host, call.path) == ("graph.microsoft.com", "/v1.0/me/calendars")
    assert call.headers["prefer"] == PREFER


def test_every_request_has_a_timeout(graph: FakeGraph, tokens: Tokens) -> None:
    session = graph.http_client()
    timeouts: list[Any] = []
    send = session.request

    def request(method: str, url: str, **kwargs: Any) -> requests.Response:
        timeouts.append(kwargs.get("timeout"))
        return send(method, url, **kwargs)

    session.request = request  # type: ignore[method-assign]
    provider = OutlookProvider(
        tokens, account="office", session=session, default_timezone=BERLIN, timeout=12.5
    )
    provider.list_calendars()
    provider.fetch_changes("primary", None, WINDOW)
    assert timeouts == [12.5, 12.5]


# --- full sync ---------------------------------------------------------------------------


def test_a_full_round_maps_show_as_status_and_response(
    graph: FakeGraph, provider: OutlookProvider
) -> None:
    declined = {"response": "declined", "time": "2026-02-20T10:00:00Z"}
    ids = {
        "busy": graph.add_event("busy", MON, MON + timedelta(hours=1)),
        "tentative": graph.add_event("t", utc(2, 11), utc(2, 12), showAs="tentative"),
        "free": graph.add_event("f", utc(2, 13), utc(2, 14), showAs="free"),
        "oof": graph.add_event("o", utc(3, 7), utc(3, 16), showAs="oof"),
        "elsewhere": graph.add_event("w", utc(4, 8), utc(4, 9), showAs="workingElsewhere"),
        "unknown": graph.add_event("u", utc(4, 10), utc(4, 11), showAs="unknown"),
        "cancelled": graph.add_event("c", utc(5, 9), utc(5, 10), isCancelled=True),
        "declined": graph.add_event("d", utc(5, 11), utc(5, 12), responseStatus=declined),
        "berlin": graph.add_event(
            "b",
            datetime(2026, 3, 6, 10, 30, tzinfo=BERLIN),
            datetime(2026, 3, 6, 11, 15, tzinfo=BERLIN),
            time_zone="W. Europe Standard Time",
        ),
    }
    graph.add_event("outside", utc(1, 9) + timedelta(days=60), utc(1, 10) + timedelta(days=60))
    batch = provider.fetch_changes("primary", None, WINDOW)
    assert (batch.full, batch.deleted, batch.unchanged) == (True, (), False)
    assert batch.cursor is not None
    assert "$deltatoken=" in batch.cursor
    got = by_id(batch)
    assert set(got) == set(ids.values())
    expected = {  # name: (span, status, transparency, declined)
        "busy": (span(2, 9), EventStatus.CONFIRMED, Transparency.OPAQUE, False),
        "tentative": (span(2, 11), EventStatus.TENTATIVE, Transparency.OPAQUE, False),
        "free": (span(2, 13), EventStatus.CONFIRMED, Transparency.TRANSPARENT, False),
        "oof": (span(3, 7, 9), EventStatus.CONFIRMED, Transparency.OPAQUE, False),
        "elsewhere": (span(4, 8), EventStatus.CONFIRMED, Transparency.TRANSPARENT, False),
        "unknown": (span(4, 10), EventStatus.CONFIRMED, Transparency.TRANSPARENT, False),
        "cancelled": (span(5, 9), EventStatus.CANCELLED, Transparency.OPAQUE, False),
        "declined": (span(5, 11), EventStatus.CONFIRMED, Transparency.OPAQUE, True),
        "berlin": (
            TimeSpan(utc(6, 9, 30), utc(6, 10, 15)),
            EventStatus.CONFIRMED,
            Transparency.OPAQUE,
            False,
        ),
    }
    for name, (when, status, transparency, was_declined) in expected.items():
        event = got[ids[name]]
        assert (event.span, event.status, event.transparency, event.declined) == (
            when,
            status,
            transparency,
            was_declined,
        ), name
        assert not event.all_day
    busy = got[ids["busy"]]
    assert busy.etag is not None
    assert busy.etag.startswith('W/"')
    assert busy.updated == NOW


def test_all_day_events_cover_whole_days_in_the_calendar_zone(
    graph: FakeGraph, provider: OutlookProvider
) -> None:
    winter = graph.add_event("holiday", date(2026, 3, 6), date(2026, 3, 7))
    summer = graph.add_event("trip", date(2026, 3, 30), date(2026, 4, 1), showAs="oof")
    got = by_id(provider.fetch_changes("primary", None, WINDOW))
    # Graph sends all-day bounds as UTC midnights ("2026-03-06T00:00:00", "UTC"): they float
    assert got[winter].all_day
    assert got[winter].span == TimeSpan(utc(5, 23), utc(6, 23))  # CET midnight to midnight
    assert got[summer].span == TimeSpan(utc(29, 22), datetime(2026, 3, 31, 22, tzinfo=UTC))


def test_the_first_request_asks_the_window_in_utc_with_the_prefer_headers(
    graph: FakeGraph, provider: OutlookProvider
) -> None:
    team = graph.add_calendar("Team")
    for day in range(3):
        graph.add_event(f"t{day}", MON + timedelta(days=day), MON + timedelta(days=day, hours=1))
    graph.add_event("default", MON, MON + timedelta(hours=1))
    narrow = make_provider(graph, Tokens(graph), page_size=2)
    batch = narrow.fetch_changes(team, None, WINDOW)
    assert len(batch.events) == 0  # the events above are in the default calendar
    team_events = [
        graph.add_event(f"x{d}", utc(10 + d, 9), utc(10 + d, 10), calendar_id=team)
        for d in range(3)
    ]
    before = len(graph.requests)
    batch = narrow.fetch_changes(team, None, WINDOW)
    assert sorted(e.provider_id for e in batch.events) == sorted(team_events)
    first, second = graph_calls(graph, before)
    assert first.path == f"/v1.0/me/calendars/{team}/calendarView/delta"
    assert first.query == {
        "startDateTime": ["2026-03-01T00:00:00Z"],
        "endDateTime": ["2026-04-01T00:00:00Z"],
    }
    assert first.headers["prefer"] == PREFER.replace("200", "2")
    assert list(second.query) == ["$skiptoken"]  # the nextLink, followed verbatim
    assert second.headers["prefer"] == PREFER.replace("200", "2")
    primary = provider.fetch_changes("primary", None, WINDOW)
    assert len(primary.events) == 4
    assert graph_calls(graph)[-1].path == "/v1.0/me/calendarView/delta"


# --- incremental sync --------------------------------------------------------------------


def test_incremental_rounds_carry_exactly_the_changes(
    graph: FakeGraph, provider: OutlookProvider
) -> None:
    weekly = graph.add_event(
        "standup", MON, MON + timedelta(minutes=15), time_zone="W. Europe Standard Time",
        recurrence=Recurrence("weekly", days_of_week=("monday",)),
    )  # fmt: skip
    daily = graph.add_event(
        "focus", utc(3, 13), utc(3, 14), recurrence=Recurrence("daily", count=3)
    )
    lunch = graph.add_event("lunch", utc(2, 12), utc(2, 13))
    leaving = graph.add_event("leaving", utc(2, 15), utc(2, 16))
    full = provider.fetch_changes("primary", None, WINDOW)
    standups = sorted(e.span.start for e in full.events if e.span.duration.seconds == 900)
    assert standups == [utc(2, 9), utc(9, 9), utc(16, 9), utc(23, 9), utc(30, 8)]  # CEST
    focus_ids = {e.provider_id for e in full.events if e.span.start.hour == 13}
    assert len(focus_ids) == 3

    new = graph.add_event("new", utc(4, 9), utc(4, 10))
    graph.update_event(lunch, start=utc(2, 14), end=utc(2, 15))  # moved
    graph.cancel_occurrence(weekly, utc(9, 9))
    graph.delete_event(daily)  # a whole series
    graph.update_event(leaving, start=utc(2, 15) + timedelta(days=90),
                       end=utc(2, 16) + timedelta(days=90))  # fmt: skip
    before = len(graph.requests)
    batch = provider.fetch_changes("primary", full.cursor, WINDOW)
    assert len(graph_calls(graph, before)) == 1
    assert graph_calls(graph, before)[0].headers["prefer"] == PREFER
    assert (batch.full, batch.unchanged) == (False, False)
    assert by_id(batch) == {
        new: Event(new, span(4, 9), etag=by_id(batch)[new].etag, updated=NOW),
        lunch: Event(lunch, span(2, 14), etag=by_id(batch)[lunch].etag, updated=NOW),
    }
    assert set(batch.deleted) == {graph.occurrence_id(weekly, utc(9, 9)), leaving} | focus_ids
    assert len(batch.deleted) == len(set(batch.deleted))
    assert batch.cursor != full.cursor


def test_an_unchanged_calendar_costs_one_request(
    graph: FakeGraph, provider: OutlookProvider
) -> None:
    for day in range(30):
        graph.add_event(f"e{day}", utc(1 + day, 9), utc(1 + day, 10))
    full = provider.fetch_changes("primary", None, WINDOW)
    assert len(full.events) == 30
    before = len(graph.requests)
    batch = provider.fetch_changes("primary", full.cursor, WINDOW)
    assert batch == ChangeBatch((), (), batch.cursor, full=False, unchanged=True)
    assert batch.cursor
    (call,) = graph_calls(graph, before)
    assert f"{call.host}{call.path}" in (full.cursor or "")
    again = provider.fetch_changes("primary", batch.cursor, WINDOW)
    assert again.unchanged
    assert len(graph_calls(graph, before)) == 2


def test_duplicates_are_merged_and_partial_items_read_in_full(
    graph: FakeGraph, provider: OutlookProvider
) -> None:
    first = graph.add_event("one", MON, MON + timedelta(hours=1))
    second = graph.add_event("two", utc(3, 9), utc(3, 10))
    graph.duplicate_items = True
    full = provider.fetch_changes("primary", None, WINDOW)
    assert sorted(e.provider_id for e in full.events) == sorted([first, second])

    graph.duplicate_items, graph.partial_updates = False, True
    graph.update_event(first, showAs="tentative")
    graph.update_event(second, start=utc(3, 11), end=utc(3, 12))
    before = len(graph.requests)
    batch = provider.fetch_changes("primary", full.cursor, WINDOW)
    got = by_id(batch)
    assert got[first].span == span(2, 9)
    assert got[first].status is EventStatus.TENTATIVE
    assert got[second].span == span(3, 11)
    reads = [r for r in graph_calls(graph, before) if r.path.startswith("/v1.0/me/events/")]
    assert sorted(r.path for r in reads) == sorted(f"/v1.0/me/events/{i}" for i in (first, second))
    assert all(r.headers["prefer"] == PREFER for r in reads)


def test_partial_item_of_a_vanished_event_is_a_deletion(
    graph: FakeGraph, provider: OutlookProvider
) -> None:
    first = graph.add_event("one", MON, MON + timedelta(hours=1))
    full = provider.fetch_changes("primary", None, WINDOW)
    graph.partial_updates = True
    graph.update_event(first, subject="renamed")
    real_call = provider._call

    def gone_meanwhile(method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        if "/me/events/" in url:
            graph.delete_event(first)
        return real_call(method, url, **kwargs)

    provider._call = gone_meanwhile  # type: ignore[method-assign]
    batch = provider.fetch_changes("primary", full.cursor, WINDOW)
    assert (batch.events, batch.deleted) == ((), (first,))


@pytest.mark.parametrize("code", ["SyncStateNotFound", "resyncRequired"])
def test_any_410_is_cursor_expired(graph: FakeGraph, provider: OutlookProvider, code: str) -> None:
    graph.add_event("one", MON, MON + timedelta(hours=1))
    full = provider.fetch_changes("primary", None, WINDOW)
    graph.expire_delta_tokens(code)
    with pytest.raises(CursorExpiredError, match="410"):
        provider.fetch_changes("primary", full.cursor, WINDOW)
    assert len(provider.fetch_changes("primary", None, WINDOW).events) == 1


def test_a_cursor_for_another_endpoint_is_expired_not_followed(
    graph: FakeGraph, provider: OutlookProvider
) -> None:
    with pytest.raises(
        CursorExpiredError, match=re.escape("not for https://graph.microsoft.com/v1.0")
    ):
        provider.fetch_changes("primary", "https://evil.example/v1.0/x?$deltatoken=1", WINDOW)
    assert graph_calls(graph) == []


# --- wire robustness -----------------------------------------------------------------------


def item(start: str, end: str, zone: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": "AAMkA1",
        "start": {"dateTime": start, "timeZone": zone},
        "end": {"dateTime": end, "timeZone": zone},
        "isAllDay": False,
        "showAs": "busy",
        "isCancelled": False,
        "responseStatus": {"response": "organizer"},
        **extra,
    }


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("UTC", span(2, 10)),
        ("W. Europe Standard Time", span(2, 9)),  # CLDR: Europe/Berlin, UTC+1 in March
        ("Pacific Standard Time", span(2, 18)),  # America/Los_Angeles, UTC-8 before 8 March
        ("America/New_York", span(2, 15)),
        ("tzone://Microsoft/Custom", span(2, 10)),  # unmappable: read as UTC
    ],
)
def test_wall_times_in_any_zone_name_become_utc(zone: str, expected: TimeSpan) -> None:
    raw = item("2026-03-02T10:00:00.0000000", "2026-03-02T11:00:00.0000000", zone)
    event = _wire.to_event(raw, BERLIN)
    assert event is not None
    assert event.span == expected


def test_all_day_bounds_sent_as_instants_still_give_the_local_day() -> None:
    raw = item("2026-03-05T23:00:00.0000000", "2026-03-06T23:00:00.0000000", "UTC", isAllDay=True)
    event = _wire.to_event(raw, BERLIN)
    assert event is not None
    assert event.span == TimeSpan(utc(5, 23), utc(6, 23))
    zero = _wire.to_event(item("2026-03-02T10:00:00", "2026-03-02T10:00:00", "UTC"), BERLIN)
    assert zero is None


def test_unreadable_entries_are_data_errors() -> None:
    with pytest.raises(ProviderDataError, match="AAMkA1"):
        _wire.to_event(item("yesterday", "today", "UTC"), BERLIN)
    with pytest.raises(ProviderDataError, match="without an id"):
        _wire.item_id({"@removed": {"reason": "deleted"}})


# --- throttling, concurrency, failures -----------------------------------------------------


def test_throttling_honours_retry_after_exactly(
    graph: FakeGraph, provider: OutlookProvider, slept: list[float]
) -> None:
    graph.throttle_next(2, retry_after=7)
    graph.throttle_next(1, retry_after=3, status=503)
    assert len(provider.list_calendars()) == 1
    assert slept == [7.0, 7.0, 3.0]
    assert len(graph_calls(graph)) == 4


def test_never_more_than_four_requests_in_flight_per_mailbox(
    graph: FakeGraph, tokens: Tokens
) -> None:
    graph.latency = 0.05
    provider = make_provider(graph, tokens)  # the default retrier: 4 at a time
    results: list[int] = []
    errors: list[Exception] = []

    def work() -> None:
        try:
            for _ in range(3):
                results.append(len(provider.list_calendars()))
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert results == [1] * 24
    assert graph.max_concurrency == 4
    assert len(graph_calls(graph)) == 24  # no request was turned away and repeated


def test_a_refused_token_is_refreshed_once(
    graph: FakeGraph, provider: OutlookProvider, tokens: Tokens
) -> None:
    graph.expire_access_tokens()
    assert len(provider.list_calendars()) == 1
    assert tokens.refreshes == 1

    def stale(*, force_refresh: bool = False) -> str:
        return tokens.current

    refused = make_provider(graph, tokens)
    refused._token = stale  # type: ignore[assignment]
    graph.expire_access_tokens()
    with pytest.raises(
        ProviderAuthError, match=r"run `calsync auth outlook --account office`"
    ) as err:
        refused.list_calendars()
    assert tokens.current not in err.value.message
    assert "InvalidAuthenticationToken" in err.value.message


def test_every_request_is_counted_by_outcome(
    graph: FakeGraph, tokens: Tokens, slept: list[float]
) -> None:
    seen: list[tuple[str, str]] = []
    provider = make_provider(
        graph, tokens, retrier=Retrier(sleep=slept.append),
        observe=lambda name, outcome: seen.append((name, outcome)),
    )  # fmt: skip
    graph.throttle_next(1, retry_after=7)
    graph.throttle_next(1, retry_after=3, status=503)
    assert len(provider.list_calendars()) == 1
    graph.expire_access_tokens()  # a 401, then the resend with a fresh token
    assert len(provider.list_calendars()) == 1
    outcomes = ["throttled", "throttled", "ok", "error", "ok"]
    assert seen == [("outlook", outcome) for outcome in outcomes]


def test_graph_errors_become_calsync_errors(graph: FakeGraph, provider: OutlookProvider) -> None:
    with pytest.raises(NotFoundError, match="ErrorItemNotFound"):
        provider.fetch_changes("AAMkAnope=", None, WINDOW)
    shared = graph.add_calendar("Shared", can_edit=False)
    with pytest.raises(ProviderDataError, match="403 ErrorAccessDenied"):
        provider.book(shared, draft(), "key-1")


def test_an_unreachable_graph_is_unavailable(graph: FakeGraph, tokens: Tokens) -> None:
    provider = OutlookProvider(
        tokens, account="office", session=requests.Session(), default_timezone=BERLIN,
        endpoint="http://127.0.0.1:9/v1.0", timeout=2, retrier=Retrier(attempts=1),
    )  # fmt: skip
    with pytest.raises(ProviderUnavailableError, match="unreachable"):
        provider.list_calendars()


# --- writes --------------------------------------------------------------------------------


def draft(start: datetime | None = None, minutes: int = 30) -> BookingDraft:
    start = start or utc(3, 9)
    return BookingDraft(
        booking_id="bk_01HZX",
        resource_name="Dr. Smith",
        timezone="Europe/Berlin",
        span=TimeSpan(start, start + timedelta(minutes=minutes)),
        attendee=Attendee("Ada Lovelace", phone="+4915112345678", email="ada@example.org"),
        notes="First visit",
    )


def test_a_retried_booking_makes_one_event(
    graph: FakeGraph, provider: OutlookProvider, slept: list[float]
) -> None:
    refs = provider.book("primary", draft(), "key-1")
    graph.throttle_next(1, retry_after=2)
    again = provider.book("primary", draft(), "key-1")
    assert again == refs
    assert slept == [2.0]
    (stored,) = graph.events()
    assert stored["id"] == refs["event_id"]
    assert refs == {"event_id": stored["id"], "calendar": "primary"}
    assert stored["subject"] == "Ada Lovelace"
    assert stored["showAs"] == "busy"
    assert stored["start"] == {"dateTime": "2026-03-03T09:00:00.0000000", "timeZone": "UTC"}
    assert stored["end"] == {"dateTime": "2026-03-03T09:30:00.0000000", "timeZone": "UTC"}
    assert stored["transactionId"] == _wire.transaction_id("bk_01HZX")
    body = stored["body"]["content"]
    for text in ("+4915112345678", "ada@example.org", "First visit", "bk_01HZX"):
        assert text in body
    posts = [r for r in graph_calls(graph) if r.method == "POST"]
    assert [r.path for r in posts] == ["/v1.0/me/calendar/events"] * 3
    assert {r.json()["transactionId"] for r in posts} == {_wire.transaction_id("bk_01HZX")}
    assert "+" not in posts[0].json()["start"]["dateTime"]


def test_booking_into_a_secondary_calendar(graph: FakeGraph, provider: OutlookProvider) -> None:
    team = graph.add_calendar("Team")
    refs = provider.book(team, draft(), "key-1")
    assert graph.event(refs["event_id"])["calendarId"] == team  # type: ignore[index]
    assert graph.events() == []


def test_reschedule_then_cancel_twice(graph: FakeGraph, provider: OutlookProvider) -> None:
    refs = provider.book("primary", draft(), "key-1")
    assert provider.reschedule("primary", refs, draft(utc(4, 14), 45)) == refs
    stored = graph.event(refs["event_id"])
    assert stored is not None
    assert stored["start"]["dateTime"] == "2026-03-04T14:00:00.0000000"
    assert stored["end"]["dateTime"] == "2026-03-04T14:45:00.0000000"
    provider.cancel("primary", refs)
    assert graph.event(refs["event_id"]) is None
    provider.cancel("primary", refs)  # already gone: fine
    with pytest.raises(NotFoundError):
        provider.reschedule("primary", refs, draft())


def test_free_busy_reads_the_calendar_live(graph: FakeGraph, provider: OutlookProvider) -> None:
    team = graph.add_calendar("Team")
    declined = {"response": "declined", "time": "2026-02-20T10:00:00Z"}
    graph.add_event("busy", utc(3, 9), utc(3, 10))
    graph.add_event("maybe", utc(3, 10), utc(3, 11), showAs="tentative")
    graph.add_event("free", utc(3, 11), utc(3, 12), showAs="free")
    graph.add_event("declined", utc(3, 12), utc(3, 13), responseStatus=declined)
    graph.add_event("cancelled", utc(3, 13), utc(3, 14), isCancelled=True)
    graph.add_event("later", utc(3, 18), utc(3, 19))
    graph.add_event("team", utc(3, 8), utc(3, 9), calendar_id=team)
    day = TimeSpan(utc(3, 8), utc(3, 16))
    assert provider.free_busy(["primary"], day) == [span(3, 9), span(3, 10)]
    assert provider.free_busy([team, "primary"], day) == [span(3, 8), span(3, 9), span(3, 10)]


# --- push ----------------------------------------------------------------------------------


class Receiver:
    """calsync's push endpoint in miniature: echoes Graph's validation token, records POSTs."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, bytes]] = []
        posts = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                posts.append((self.path, body))
                token = parse_qs(urlsplit(self.path).query).get("validationToken")
                reply = token[0].encode() if token else b""
                self.send_response(200 if token else 202)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/push/outlook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.close()


def test_a_channel_is_a_subscription_until_closed(
    graph: FakeGraph, provider: OutlookProvider, receiver: Receiver
) -> None:
    channel = provider.open_channel("primary", receiver.url, "s3cret-token")
    (sub,) = graph.subscriptions()
    assert (channel.id, channel.resource_id, channel.calendar) == (sub["id"], sub["id"], "primary")
    assert channel.token == "s3cret-token"
    assert channel.expires_at == NOW + timedelta(minutes=4230)
    assert (sub["resource"], sub["client_state"]) == ("/me/events", "s3cret-token")
    assert sub["change_types"] == ("created", "updated", "deleted")
    assert sub["notification_url"] == sub["lifecycle_url"] == receiver.url
    assert [d.kind for d in graph.deliveries] == ["validation", "validation"]

    event = graph.add_event("new", MON, MON + timedelta(hours=1))
    note = graph.wait_for_deliveries(3)[-1]
    assert note.status == 202
    (value,) = note.payload["value"]
    assert (value["subscriptionId"], value["clientState"]) == (channel.id, "s3cret-token")
    assert value["resourceData"]["id"] == event  # immutable ids: asked for at creation

    provider.close_channel(channel)
    assert graph.subscriptions() == []
    provider.close_channel(channel)  # gone already: fine


def test_a_secondary_calendar_channel_watches_that_calendar(
    graph: FakeGraph, provider: OutlookProvider, receiver: Receiver
) -> None:
    team = graph.add_calendar("Team")
    channel = provider.open_channel(team, receiver.url, "tok")
    (sub,) = graph.subscriptions()
    assert sub["resource"] == f"/me/calendars/{team}/events"
    assert sub["calendar_id"] == team
    provider.close_channel(channel)


def test_a_receiver_that_does_not_answer_means_no_channel(
    graph: FakeGraph, provider: OutlookProvider
) -> None:
    graph.validation_timeout = 0.3
    with pytest.raises(ProviderDataError, match="ValidationError"):
        provider.open_channel("primary", "http://127.0.0.1:9/push/outlook", "tok")
    assert graph.subscriptions() == []
