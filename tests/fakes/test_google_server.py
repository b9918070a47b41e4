"""FakeGoogle driven only by the real client libraries (googleapiclient, google-auth, oauthlib).

Each expectation comes from providers.md section 1 / Google's documentation,
so these tests pin the fake to Google's behaviour, not to any adapter.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import google_auth_httplib2
import httplib2
import pytest
import requests
from google.auth.exceptions import RefreshError
from google.auth.transport.requests import Request
from google.oauth2.credentials import Credentials
from google_auth_oauthlib.flow import Flow, InstalledAppFlow
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from oauthlib.oauth2.rfc6749.errors import InvalidGrantError

from tests.fakes.google_server import FakeGoogle

SCOPE = "https://www.googleapis.com/auth/"
CALENDAR, EVENTS, FREEBUSY = (
    SCOPE + "calendar",
    SCOPE + "calendar.events",
    SCOPE + "calendar.freebusy",
)
FULL_SYNC_REQUIRED = {
    "error": {
        "errors": [
            {
                "domain": "calendar",
                "reason": "fullSyncRequired",
                "message": "Sync token is no longer valid, a full sync is required.",
                "locationType": "parameter",
                "location": "syncToken",
            }
        ],
        "code": 410,
        "message": "Sync token is no longer valid, a full sync is required.",
    }
}


# --- fixtures and helpers ----------------------------------------------------------------


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    with FakeGoogle() as fake:
        yield fake


def calendar_service(google: FakeGoogle, creds: Credentials | None = None, **kwargs: Any) -> Any:
    if creds is None and "http" not in kwargs:
        creds = Credentials(token=google.issue_access_token())
    if creds is not None:
        kwargs["credentials"] = creds
    return build(
        "calendar",
        "v3",
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": google.api_endpoint},
        **kwargs,
    )


@pytest.fixture
def service(google: FakeGoogle) -> Iterator[Any]:
    with calendar_service(google) as svc:
        yield svc


def timed(start: str, end: str, **fields: Any) -> dict[str, Any]:
    tz = {"timeZone": "Europe/Berlin"}
    return {"start": {"dateTime": start, **tz}, "end": {"dateTime": end, **tz}, **fields}


def standup(event_id: str = "standup01", count: int = 5) -> dict[str, Any]:
    """Daily 09:30-09:45 Berlin from Mon 2026-01-05, ``count`` times."""
    return timed(
        "2026-01-05T09:30:00",
        "2026-01-05T09:45:00",
        id=event_id,
        summary="Standup",
        recurrence=[f"RRULE:FREQ=DAILY;COUNT={count}"],
    )


def full_sync(service: Any, **params: Any) -> tuple[list[dict[str, Any]], str]:
    """Page through events.list like the sync guide says; (items, nextSyncToken)."""
    items: list[dict[str, Any]] = []
    page_token = None
    while True:
        page = service.events().list(calendarId="primary", pageToken=page_token, **params)
        response = page.execute()
        items += response["items"]
        page_token = response.get("nextPageToken")
        if page_token is None:
            return items, response["nextSyncToken"]
        assert "nextSyncToken" not in response


def http_error(call: Any) -> HttpError:
    with pytest.raises(HttpError) as caught:
        call.execute()
    return caught.value


class Receiver:
    """A tiny webhook endpoint: records notifications, answers with queued statuses."""

    def __init__(self, statuses: tuple[int, ...] = ()) -> None:
        self.received: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()
        self.statuses = list(statuses)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.received.put(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def next(self) -> tuple[dict[str, str], bytes]:
        return self.received.get(timeout=5)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.close()


# --- calendarList ------------------------------------------------------------------------


def test_calendar_list_pages_and_filters_by_access_role(google: FakeGoogle, service: Any) -> None:
    google.add_calendar("team@group.calendar.google.com", summary="Team", access_role="writer")
    google.add_calendar("holidays@group.v.calendar.google.com", access_role="reader")

    first = service.calendarList().list(maxResults=2).execute()
    second = service.calendarList().list(maxResults=2, pageToken=first["nextPageToken"]).execute()
    writable = service.calendarList().list(minAccessRole="writer").execute()

    assert "nextSyncToken" not in first
    assert len(first["items"]) == 2
    assert "nextPageToken" not in second
    assert second["nextSyncToken"]
    entries = {e["id"]: e for e in first["items"] + second["items"]}
    assert entries["user@example.com"]["primary"] is True
    assert entries["team@group.calendar.google.com"]["accessRole"] == "writer"
    assert entries["team@group.calendar.google.com"]["kind"] == "calendar#calendarListEntry"
    assert {e["id"] for e in writable["items"]} == {
        "user@example.com",
        "team@group.calendar.google.com",
    }
    google.add_calendar("new@group.calendar.google.com")
    changed = service.calendarList().list(syncToken=second["nextSyncToken"]).execute()
    assert [e["id"] for e in changed["items"]] == ["new@group.calendar.google.com"]


# --- events.list: filtering, expansion, paging ---------------------------------------------


def test_time_min_filters_on_end_and_time_max_on_start_both_exclusive(
    google: FakeGoogle, service: Any
) -> None:
    google.put_event("primary", timed("2026-01-05T09:00:00", "2026-01-05T10:00:00", id="meeting1"))

    def ids(**window: str) -> list[str]:
        found = service.events().list(calendarId="primary", **window).execute()
        return [item["id"] for item in found["items"]]

    assert ids(timeMin="2026-01-05T08:59:59Z") == ["meeting1"]  # ends 09:00Z > timeMin
    assert ids(timeMin="2026-01-05T10:00:00+01:00") == []  # end == timeMin: excluded
    assert ids(timeMax="2026-01-05T09:00:00+01:00") == []  # start == timeMax: excluded
    assert ids(timeMax="2026-01-05T08:00:01Z") == ["meeting1"]


def test_single_events_expands_series_with_exdate_and_exceptions(
    google: FakeGoogle, service: Any
) -> None:
    series = standup()
    series["recurrence"].append("EXDATE;TZID=Europe/Berlin:20260107T093000")
    google.put_event("primary", series)
    google.move_instance(
        "primary",
        "standup01",
        {"dateTime": "2026-01-08T09:30:00+01:00"},
        start={"dateTime": "2026-01-08T11:00:00+01:00"},
        end={"dateTime": "2026-01-08T11:15:00+01:00"},
    )
    google.cancel_instance("primary", "standup01", {"dateTime": "2026-01-09T08:30:00Z"})

    expanded = (
        service.events()
        .list(calendarId="primary", singleEvents=True, orderBy="startTime")
        .execute()["items"]
    )
    masters = service.events().list(calendarId="primary").execute()["items"]

    assert [(i["id"], i["start"]["dateTime"]) for i in expanded] == [
        ("standup01_20260105T083000Z", "2026-01-05T09:30:00+01:00"),
        ("standup01_20260106T083000Z", "2026-01-06T09:30:00+01:00"),
        ("standup01_20260108T083000Z", "2026-01-08T11:00:00+01:00"),
    ]
    moved = expanded[2]
    assert moved["recurringEventId"] == "standup01"
    assert moved["originalStartTime"]["dateTime"] == "2026-01-08T09:30:00+01:00"
    # Without singleEvents: the master, the moved exception and the cancelled one (as a stub).
    by_id = {i["id"]: i for i in masters}
    assert by_id["standup01"]["recurrence"][0] == "RRULE:FREQ=DAILY;COUNT=5"
    assert by_id["standup01_20260109T083000Z"] == {
        "kind": "calendar#event",
        "etag": by_id["standup01_20260109T083000Z"]["etag"],
        "id": "standup01_20260109T083000Z",
        "status": "cancelled",
        "recurringEventId": "standup01",
        "originalStartTime": {"dateTime": "2026-01-09T09:30:00+01:00", "timeZone": "Europe/Berlin"},
    }


def test_weekly_series_keeps_local_time_across_dst(google: FakeGoogle, service: Any) -> None:
    google.put_event(
        "primary",
        timed(
            "2026-03-23T09:00:00",
            "2026-03-23T10:00:00",
            id="series02",
            recurrence=["RRULE:FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20260401T000000Z"],
        ),
    )

    items = service.events().list(calendarId="primary", singleEvents=True).execute()["items"]

    assert [i["id"] for i in items] == [
        "series02_20260323T080000Z",  # CET
        "series02_20260325T080000Z",
        "series02_20260330T070000Z",  # CEST: same 09:00 local, an hour earlier in UTC
    ]


def test_event_types_is_repeatable(google: FakeGoogle, service: Any) -> None:
    google.put_event("primary", timed("2026-01-05T09:00:00", "2026-01-05T10:00:00", id="plain1"))
    google.put_event(
        "primary",
        timed("2026-01-06T09:00:00", "2026-01-06T17:00:00", id="ooo001", eventType="outOfOffice"),
    )
    google.put_event(
        "primary",
        timed("2026-01-07T09:00:00", "2026-01-07T11:00:00", id="focus1", eventType="focusTime"),
    )

    found = (
        service.events().list(calendarId="primary", eventTypes=["default", "outOfOffice"]).execute()
    )

    assert sorted(i["id"] for i in found["items"]) == ["ooo001", "plain1"]
    assert google.requests[-1].query["eventTypes"] == ["default", "outOfOffice"]


def test_pages_are_snapshots_and_only_the_last_has_a_sync_token(
    google: FakeGoogle, service: Any
) -> None:
    for day in range(5, 10):
        event = timed(f"2026-01-0{day}T09:00:00", f"2026-01-0{day}T10:00:00", id=f"evt0{day}a")
        google.put_event("primary", event)
    google.page_cap = 2
    google.empty_pages = True

    items, sync_token = full_sync(service, maxResults=100)

    assert sorted(i["id"] for i in items) == [f"evt0{d}a" for d in range(5, 10)]
    assert sync_token
    list_calls = [r for r in google.requests if r.endpoint == "calendar.events.list"]
    assert len(list_calls) == 5  # empty lead page, 3 pages of <= 2, empty last page


def test_bad_page_token_is_a_400(service: Any) -> None:
    error = http_error(service.events().list(calendarId="primary", pageToken="garbage"))
    assert error.resp.status == 400
    assert error.error_details[0]["location"] == "pageToken"


# --- incremental sync ----------------------------------------------------------------------


def test_incremental_sync_reports_add_move_cancel_and_delete(
    google: FakeGoogle, service: Any
) -> None:
    google.put_event("primary", standup())
    google.put_event("primary", timed("2026-01-05T14:00:00", "2026-01-05T15:00:00", id="retro001"))
    items, token = full_sync(service, singleEvents=True, timeMin="2026-01-01T00:00:00Z")
    assert len(items) == 6

    service.events().insert(
        calendarId="primary",
        body=timed("2026-01-06T14:00:00", "2026-01-06T15:00:00", id="added01"),
    ).execute()
    service.events().patch(
        calendarId="primary",
        eventId="standup01_20260106T083000Z",
        body={
            "start": {"dateTime": "2026-01-06T10:00:00+01:00"},
            "end": {"dateTime": "2026-01-06T10:15:00+01:00"},
        },
    ).execute()
    service.events().delete(calendarId="primary", eventId="standup01_20260107T083000Z").execute()
    service.events().delete(calendarId="primary", eventId="retro001").execute()
    changes, token2 = full_sync(service, singleEvents=True, syncToken=token)

    by_id = {i["id"]: i for i in changes}
    assert set(by_id) == {
        "added01",
        "standup01_20260106T083000Z",
        "standup01_20260107T083000Z",
        "retro001",
    }
    assert by_id["added01"]["status"] == "confirmed"
    assert by_id["standup01_20260106T083000Z"]["start"]["dateTime"] == "2026-01-06T10:00:00+01:00"
    cancelled = by_id["standup01_20260107T083000Z"]
    assert cancelled["status"] == "cancelled"
    assert cancelled["recurringEventId"] == "standup01"
    assert cancelled["originalStartTime"]["dateTime"] == "2026-01-07T09:30:00+01:00"
    assert set(by_id["retro001"]) == {"kind", "etag", "id", "status"}  # only id is guaranteed
    again, _ = full_sync(service, singleEvents=True, syncToken=token2)
    assert again == []


def test_deleting_a_series_cancels_every_instance_a_client_may_hold(
    google: FakeGoogle, service: Any
) -> None:
    google.put_event("primary", standup(count=3))
    _, token = full_sync(service, singleEvents=True)

    google.delete_event("primary", "standup01")
    expanded, _ = full_sync(service, singleEvents=True, syncToken=token)
    plain, _ = full_sync(service, syncToken=full_sync(service)[1])

    assert sorted((i["id"], i["status"]) for i in expanded) == [
        ("standup01_20260105T083000Z", "cancelled"),
        ("standup01_20260106T083000Z", "cancelled"),
        ("standup01_20260107T083000Z", "cancelled"),
    ]
    assert plain == []


def test_incremental_pages_repeat_the_sync_token(google: FakeGoogle, service: Any) -> None:
    _, token = full_sync(service)
    for n in range(3):
        google.put_event("primary", timed("2026-01-05T09:00:00", "2026-01-05T10:00:00"))
        assert n < 3

    first = service.events().list(calendarId="primary", syncToken=token, maxResults=2).execute()
    second = (
        service.events()
        .list(calendarId="primary", syncToken=token, maxResults=2, pageToken=first["nextPageToken"])
        .execute()
    )
    mismatched = service.events().list(calendarId="primary", pageToken=first["nextPageToken"])

    assert len(first["items"]) + len(second["items"]) == 3
    assert second["nextSyncToken"]
    assert http_error(mismatched).resp.status == 400


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("timeMin", "2026-01-01T00:00:00Z"),
        ("timeMax", "2026-01-01T00:00:00Z"),
        ("updatedMin", "2026-01-01T00:00:00Z"),
        ("orderBy", "updated"),
        ("q", "standup"),
        ("iCalUID", "x@google.com"),
        ("privateExtendedProperty", "a=b"),
        ("sharedExtendedProperty", "a=b"),
        ("showDeleted", False),
    ],
)
def test_sync_token_with_a_forbidden_parameter_is_a_400(
    service: Any, name: str, value: Any
) -> None:
    _, token = full_sync(service)

    error = http_error(
        service.events().list(calendarId="primary", syncToken=token, **{name: value})
    )

    assert error.resp.status == 400
    assert error.error_details[0]["location"] == name


def test_order_by_start_time_needs_single_events(service: Any) -> None:
    error = http_error(service.events().list(calendarId="primary", orderBy="startTime"))
    assert error.resp.status == 400
    assert error.reason == "The requested ordering is not available for the particular query."


def test_unknown_or_repeated_query_parameters_are_400(service: Any) -> None:
    unknown = service.events().list(calendarId="primary")
    unknown.uri += "&colour=red"
    repeated = service.events().list(calendarId="primary", maxResults=5)
    repeated.uri += "&maxResults=6"
    no_offset = service.events().list(calendarId="primary", timeMin="2026-01-01T00:00:00")

    assert http_error(unknown).error_details[0]["location"] == "colour"
    assert http_error(repeated).resp.status == 400
    assert http_error(no_offset).resp.status == 400


def test_invalidated_sync_token_is_410_with_googles_exact_body(
    google: FakeGoogle, service: Any
) -> None:
    _, token = full_sync(service)
    google.invalidate_sync_tokens("primary")

    error = http_error(service.events().list(calendarId="primary", syncToken=token))

    assert error.resp.status == 410
    assert json.loads(error.content) == FULL_SYNC_REQUIRED
    assert error.error_details[0]["reason"] == "fullSyncRequired"
    _, fresh = full_sync(service)
    assert full_sync(service, syncToken=fresh)[0] == []


# --- writes -------------------------------------------------------------------------------


def test_insert_validates_client_ids_and_rejects_duplicates(
    google: FakeGoogle, service: Any
) -> None:
    body = timed("2026-01-05T09:00:00", "2026-01-05T10:00:00")

    bad = http_error(service.events().insert(calendarId="primary", body={**body, "id": "calsync1"}))
    short = http_error(service.events().insert(calendarId="primary", body={**body, "id": "ab12"}))
    created = (
        service.events()
        .insert(calendarId="primary", body={**body, "id": "0123456789abcdefuv"}, sendUpdates="none")
        .execute()
    )
    duplicate = http_error(
        service.events().insert(calendarId="primary", body={**body, "id": "0123456789abcdefuv"})
    )

    assert (bad.resp.status, bad.reason) == (400, "Invalid resource id value.")
    assert short.resp.status == 400
    assert created["id"] == "0123456789abcdefuv"
    assert created["kind"] == "calendar#event"
    assert (duplicate.resp.status, duplicate.error_details[0]["reason"]) == (409, "duplicate")
    assert google.events("primary")[0]["start"]["dateTime"] == "2026-01-05T09:00:00+01:00"
    assert google.send_updates[0].send_updates == "none"


def test_insert_rejects_bad_times_like_google(service: Any) -> None:
    backwards = timed("2026-01-05T10:00:00", "2026-01-05T09:00:00")
    no_zone = {"start": {"dateTime": "2026-01-05T09:00:00"}, "end": backwards["start"]}
    no_end = {"start": backwards["start"]}

    empty = http_error(service.events().insert(calendarId="primary", body=backwards))
    assert (empty.resp.status, empty.error_details[0]["reason"]) == (400, "timeRangeEmpty")
    assert http_error(service.events().insert(calendarId="primary", body=no_zone)).reason == (
        "Missing time zone definition for start time."
    )
    assert http_error(service.events().insert(calendarId="primary", body=no_end)).reason == (
        "Missing end time."
    )


def test_delete_is_204_then_410_and_unknown_is_404(google: FakeGoogle, service: Any) -> None:
    google.put_event("primary", timed("2026-01-05T09:00:00", "2026-01-05T10:00:00", id="gone01"))

    assert service.events().delete(calendarId="primary", eventId="gone01").execute() == ""
    again = http_error(service.events().delete(calendarId="primary", eventId="gone01"))
    unknown = http_error(service.events().delete(calendarId="primary", eventId="never01"))

    assert (again.resp.status, again.error_details[0]["reason"]) == (410, "deleted")
    assert (unknown.resp.status, unknown.error_details[0]["reason"]) == (404, "notFound")
    assert google.event("primary", "gone01")["status"] == "cancelled"


def test_get_and_patch_an_instance(google: FakeGoogle, service: Any) -> None:
    google.put_event("primary", standup())

    instance = (
        service.events().get(calendarId="primary", eventId="standup01_20260106T083000Z").execute()
    )
    patched = (
        service.events()
        .patch(
            calendarId="primary",
            eventId=instance["id"],
            body={"summary": "Standup (moved)"},
            sendUpdates="all",
        )
        .execute()
    )

    assert instance["recurringEventId"] == "standup01"
    assert patched["summary"] == "Standup (moved)"
    assert patched["originalStartTime"] == instance["originalStartTime"]
    stored = {e["id"] for e in google.events("primary")}
    assert stored == {"standup01", "standup01_20260106T083000Z"}
    assert google.send_updates[-1].send_updates == "all"


# --- freeBusy -----------------------------------------------------------------------------


def test_free_busy_merges_opaque_events_and_reports_unknown_calendars(
    google: FakeGoogle, service: Any
) -> None:
    google.put_event("primary", timed("2026-01-05T09:00:00", "2026-01-05T10:00:00"))
    google.put_event("primary", timed("2026-01-05T09:30:00", "2026-01-05T11:00:00"))
    google.put_event(
        "primary", timed("2026-01-05T12:00:00", "2026-01-05T13:00:00", transparency="transparent")
    )
    google.put_event("primary", timed("2026-01-05T14:00:00", "2026-01-05T15:00:00", id="off001"))
    declined = [{"email": "user@example.com", "responseStatus": "declined"}]
    google.put_event(
        "primary", timed("2026-01-05T16:00:00", "2026-01-05T17:00:00", attendees=declined)
    )
    google.delete_event("primary", "off001")

    body = {
        "timeMin": "2026-01-05T00:00:00Z",
        "timeMax": "2026-01-06T00:00:00Z",
        "items": [{"id": "primary"}, {"id": "nobody@example.com"}],
    }
    result = service.freebusy().query(body=body).execute()

    assert result["kind"] == "calendar#freeBusy"
    assert result["calendars"]["primary"] == {
        "busy": [{"start": "2026-01-05T08:00:00Z", "end": "2026-01-05T10:00:00Z"}]
    }
    assert result["calendars"]["nobody@example.com"]["errors"] == [
        {"domain": "global", "reason": "notFound"}
    ]


def test_free_busy_rejects_long_windows_and_too_many_calendars(service: Any) -> None:
    long_window = {"timeMin": "2026-01-01T00:00:00Z", "timeMax": "2026-04-02T00:00:00Z"}
    too_many = {**long_window, "timeMax": "2026-01-02T00:00:00Z", "calendarExpansionMax": 51}

    error = http_error(service.freebusy().query(body={**long_window, "items": []}))

    assert (error.resp.status, error.reason) == (400, "The requested time range is too long.")
    assert http_error(service.freebusy().query(body=too_many)).resp.status == 400


# --- push ---------------------------------------------------------------------------------


def test_watch_sends_sync_then_exists_and_stop_ends_the_channel(
    google: FakeGoogle, service: Any, receiver: Receiver
) -> None:
    body = {
        "id": "chan-1",
        "type": "web_hook",
        "address": receiver.url,
        "token": "target=calsync",
        "params": {"ttl": "3600"},
    }
    before_ms = int(time.time() * 1000)
    channel = service.events().watch(calendarId="primary", body=body).execute()
    after_ms = int(time.time() * 1000)
    sync_headers, sync_body = receiver.next()
    service.events().insert(
        calendarId="primary", body=timed("2026-01-05T09:00:00", "2026-01-05T10:00:00")
    ).execute()
    exists_headers, _ = receiver.next()

    assert channel["kind"] == "api#channel"
    assert channel["id"] == "chan-1"
    assert channel["expiration"].isdigit()
    hour_ms = 3_600_000  # params.ttl honoured
    assert before_ms + hour_ms <= int(channel["expiration"]) <= after_ms + hour_ms
    assert channel["resourceId"]
    assert sync_body == b""
    assert sync_headers["x-goog-resource-state"] == "sync"
    assert sync_headers["x-goog-message-number"] == "1"
    assert sync_headers["x-goog-channel-id"] == "chan-1"
    assert sync_headers["x-goog-channel-token"] == "target=calsync"
    assert sync_headers["x-goog-resource-id"] == channel["resourceId"]
    assert sync_headers["x-goog-resource-uri"] == channel["resourceUri"]
    assert sync_headers["x-goog-channel-expiration"].endswith("GMT")
    assert exists_headers["x-goog-resource-state"] == "exists"
    assert int(exists_headers["x-goog-message-number"]) > 2  # increasing, not contiguous

    stop = {"id": "chan-1", "resourceId": channel["resourceId"]}
    assert service.channels().stop(body=stop).execute() == ""
    google.put_event("primary", timed("2026-01-06T09:00:00", "2026-01-06T10:00:00"))
    google.wait_for_push()
    assert receiver.received.empty()
    assert http_error(service.channels().stop(body=stop)).resp.status == 404


def test_push_retries_5xx_and_records_each_attempt(google: FakeGoogle, service: Any) -> None:
    hook = Receiver(statuses=(503, 500))
    try:
        body = {"id": "chan-2", "type": "web_hook", "address": hook.url}
        before_ms = int(time.time() * 1000)
        service.events().watch(calendarId="primary", body=body).execute()
        after_ms = int(time.time() * 1000)
        google.wait_for_push()
    finally:
        hook.close()

    assert [d.attempts for d in google.deliveries] == [[503, 500, 200]]
    week_ms = 7 * 24 * 3_600_000  # the default ttl
    assert before_ms + week_ms <= google.channels[0].expiration_ms <= after_ms + week_ms


# --- injected faults and auth -------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reason", "domain"),
    [
        (403, "rateLimitExceeded", "usageLimits"),
        (403, "userRateLimitExceeded", "usageLimits"),
        (429, "rateLimitExceeded", "usageLimits"),
        (500, "backendError", "global"),
        (503, "backendError", "global"),
    ],
)
def test_injected_failures_use_googles_envelope(
    google: FakeGoogle, service: Any, status: int, reason: str, domain: str
) -> None:
    google.fail_next(status, reason, retry_after=7, path_contains="/events")

    error = http_error(service.events().list(calendarId="primary"))

    assert error.resp.status == status
    assert error.error_details[0]["reason"] == reason
    assert error.error_details[0]["domain"] == domain
    assert error.resp["retry-after"] == "7"
    assert service.events().list(calendarId="primary").execute()["items"] == []


def test_client_retries_past_an_injected_503(google: FakeGoogle, service: Any) -> None:
    google.fail_next(503, n=2)
    request = service.events().list(calendarId="primary")
    request._sleep = lambda seconds: None  # the library's own backoff sleep, skipped

    assert request.execute(num_retries=2)["kind"] == "calendar#events"
    assert google.counts["calendar.events.list"] == 3


def test_requests_without_or_with_expired_tokens_are_401(google: FakeGoogle) -> None:
    token = google.issue_access_token()
    google.expire_access_tokens()
    no_refresh = google_auth_httplib2.AuthorizedHttp(
        Credentials(token=token), http=httplib2.Http(), refresh_status_codes=()
    )

    with calendar_service(google, http=httplib2.Http()) as anonymous:
        missing = http_error(anonymous.events().list(calendarId="primary"))
    with calendar_service(google, http=no_refresh) as expired_service:
        expired = http_error(expired_service.events().list(calendarId="primary"))

    assert (missing.resp.status, missing.error_details[0]["reason"]) == (401, "required")
    assert (expired.resp.status, expired.error_details[0]["reason"]) == (401, "authError")
    assert expired.error_details[0]["location"] == "Authorization"


def test_client_refreshes_an_expired_token_on_401(google: FakeGoogle) -> None:
    creds = Credentials(**google.user_credentials())
    google.expire_access_tokens()

    with calendar_service(google, creds) as svc:
        assert svc.events().list(calendarId="primary").execute()["items"] == []

    assert google.counts["oauth.token"] == 1
    assert google.counts["calendar.events.list"] == 2


def test_scopes_are_enforced_per_method(google: FakeGoogle) -> None:
    creds = Credentials(token=google.issue_access_token(scopes=[EVENTS]))
    window = {"timeMin": "2026-01-05T00:00:00Z", "timeMax": "2026-01-06T00:00:00Z", "items": []}

    with calendar_service(google, creds) as svc:
        assert svc.events().list(calendarId="primary").execute()["items"] == []
        error = http_error(svc.freebusy().query(body=window))

    assert (error.resp.status, error.error_details[0]["reason"]) == (403, "insufficientPermissions")


# --- OAuth --------------------------------------------------------------------------------


def run_consent(
    google: FakeGoogle,
    monkeypatch: pytest.MonkeyPatch,
    scopes: list[str],
    flow_kwargs: dict[str, str] | None = None,
    **consent: Any,
) -> Credentials:
    """InstalledAppFlow.run_local_server in a thread; the test plays the browser and user.

    With ``consent`` arguments the user acts through ``google.consent``; without,
    the "browser" opens the auth URL on the fake, which consents to everything.
    """
    flow = InstalledAppFlow.from_client_config(google.client_config(), scopes=scopes)
    auth_urls: queue.Queue[str] = queue.Queue()
    original = flow.authorization_url

    def capture(**kwargs: Any) -> tuple[str, str]:
        url, state = original(**kwargs)
        auth_urls.put(url)
        return url, state

    monkeypatch.setattr(flow, "authorization_url", capture)
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["creds"] = flow.run_local_server(
                port=0,
                open_browser=False,
                authorization_prompt_message=None,
                timeout_seconds=5,
                **(flow_kwargs or {}),
            )
        except Exception as err:  # handed to the test thread
            outcome["error"] = err

    thread = threading.Thread(target=run)
    thread.start()
    auth_url = auth_urls.get(timeout=5)
    with requests.Session() as browser:
        target = google.consent(auth_url, **consent) if consent else auth_url
        assert browser.get(target, timeout=5).status_code == 200  # follows the 302
    thread.join(timeout=5)
    flow.oauth2session.close()
    if "error" in outcome:
        raise outcome["error"]
    creds: Credentials = outcome["creds"]
    return creds


def test_installed_app_flow_round_trip(google: FakeGoogle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")

    creds = run_consent(google, monkeypatch, [CALENDAR], granted_scopes=[CALENDAR])
    again = run_consent(google, monkeypatch, [CALENDAR])
    forced = run_consent(google, monkeypatch, [CALENDAR], flow_kwargs={"prompt": "consent"})

    assert creds.refresh_token
    assert creds.token_uri == google.token_uri
    assert again.refresh_token is None  # Google sends one on first consent only ...
    assert forced.refresh_token  # ... or when prompt=consent forces the screen again
    assert google.counts["oauth.auth"] == 2
    token_call = next(r for r in google.requests if r.endpoint == "oauth.token")
    assert token_call.headers["authorization"].startswith("Basic ")
    form = parse_qs(token_call.body.decode())
    assert form["grant_type"] == ["authorization_code"]
    assert form["code_verifier"]
    with calendar_service(google, creds) as svc:
        assert svc.calendarList().list().execute()["items"][0]["primary"] is True


def test_user_can_untick_a_scope(google: FakeGoogle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    monkeypatch.setenv("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")

    creds = run_consent(google, monkeypatch, [EVENTS, FREEBUSY], granted_scopes=[EVENTS])

    assert creds.granted_scopes == [EVENTS]
    window = {"timeMin": "2026-01-05T00:00:00Z", "timeMax": "2026-01-06T00:00:00Z", "items": []}
    with calendar_service(google, creds) as svc:
        assert http_error(svc.freebusy().query(body=window)).resp.status == 403


def test_code_exchange_checks_the_pkce_verifier(
    google: FakeGoogle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    flow = Flow.from_client_config(
        google.client_config(), scopes=[CALENDAR], redirect_uri="http://127.0.0.1:1/"
    )
    auth_url, _ = flow.authorization_url()
    code = parse_qs(urlsplit(google.consent(auth_url)).query)["code"][0]
    flow.code_verifier = "x" * 64

    with pytest.raises(InvalidGrantError, match="Invalid code verifier"):
        flow.fetch_token(code=code)
    flow.oauth2session.close()


def test_consent_refuses_unknown_clients_and_foreign_redirects(
    google: FakeGoogle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    config = google.client_config()
    stranger = {"installed": {**config["installed"], "client_id": "someone-else"}}
    foreign = Flow.from_client_config(config, [CALENDAR], redirect_uri="https://evil.example/")
    unknown = Flow.from_client_config(stranger, [CALENDAR], redirect_uri="http://localhost:1/")

    with pytest.raises(ValueError, match="redirect_uri_mismatch"):
        google.consent(foreign.authorization_url()[0])
    with pytest.raises(ValueError, match="invalid_client"):
        google.consent(unknown.authorization_url()[0])
    denied = google.consent(
        Flow.from_client_config(
            config, [CALENDAR], redirect_uri="http://localhost:1/"
        ).authorization_url()[0],
        deny=True,
    )
    assert parse_qs(urlsplit(denied).query)["error"] == ["access_denied"]


def test_refresh_and_invalid_grant(google: FakeGoogle) -> None:
    creds = Credentials(**google.user_credentials())
    old_token = creds.token

    with requests.Session() as session:
        creds.refresh(Request(session))
        assert creds.token != old_token
        google.revoke_refresh_tokens()
        with pytest.raises(RefreshError, match="invalid_grant"):
            creds.refresh(Request(session))

    with calendar_service(google, creds) as svc:  # the last access token still works
        assert svc.events().list(calendarId="primary").execute()["items"] == []

    refresh_call = next(r for r in google.requests if r.endpoint == "oauth.token")
    assert "grant_type=refresh_token" in refresh_call.body.decode()
    assert "client_secret=" in refresh_call.body.decode()


def test_long_get_sent_as_post_with_method_override(google: FakeGoogle, service: Any) -> None:
    google.put_event(
        "primary", timed("2026-01-05T09:00:00", "2026-01-05T10:00:00", summary="Standup")
    )
    google.put_event(
        "primary", timed("2026-01-05T11:00:00", "2026-01-05T12:00:00", summary="Lunch")
    )

    found = service.events().list(calendarId="primary", q="standup " * 300).execute()

    assert [item["summary"] for item in found["items"]] == ["Standup"]
    sent = google.requests[-1]
    assert (sent.method, sent.headers["x-http-method-override"]) == ("POST", "GET")
    assert sent.endpoint == "calendar.events.list"
    assert sent.query["q"] == ["standup " * 300]


def test_show_deleted_lists_tombstones_as_stubs(google: FakeGoogle, service: Any) -> None:
    google.put_event("primary", timed("2026-01-05T09:00:00", "2026-01-05T10:00:00", id="kept01"))
    google.put_event("primary", timed("2026-01-05T11:00:00", "2026-01-05T12:00:00", id="gone01"))
    google.delete_event("primary", "gone01")

    default = service.events().list(calendarId="primary").execute()["items"]
    with_deleted = service.events().list(calendarId="primary", showDeleted=True).execute()["items"]

    assert [i["id"] for i in default] == ["kept01"]
    assert [(i["id"], i["status"]) for i in with_deleted] == [
        ("gone01", "cancelled"),
        ("kept01", "confirmed"),
    ]


def test_instances_of_a_series(google: FakeGoogle, service: Any) -> None:
    google.put_event("primary", standup(count=3))
    google.cancel_instance("primary", "standup01", {"dateTime": "2026-01-06T09:30:00+01:00"})

    live = service.events().instances(calendarId="primary", eventId="standup01").execute()
    everything = (
        service.events()
        .instances(calendarId="primary", eventId="standup01", showDeleted=True)
        .execute()
    )

    assert [i["id"] for i in live["items"]] == [
        "standup01_20260105T083000Z",
        "standup01_20260107T083000Z",
    ]
    assert len(everything["items"]) == 3
    assert "nextSyncToken" not in live


def test_methods_the_fake_lacks_answer_501_never_success(service: Any) -> None:
    error = http_error(service.calendars().get(calendarId="primary"))
    assert error.resp.status == 501
