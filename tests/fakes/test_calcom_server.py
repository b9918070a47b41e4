"""FakeCalcom checked over real HTTP with ``requests``, against the Cal.com v2 protocol notes."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from tests.fakes.calcom_server import EventType, FakeCalcom, Schedule

BOOKINGS = "2024-08-13"
SLOTS = "2024-09-04"
EVENT_TYPES = "2024-06-14"
NOW = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # a Monday; Vienna is UTC+1 until 29 March
TUESDAY = "2026-03-03"
TUE_0900_VIENNA = "2026-03-03T08:00:00Z"


@pytest.fixture
def cal() -> Iterator[FakeCalcom]:
    with FakeCalcom(now=NOW) as fake:
        yield fake
    assert fake.errors == []


def auth(cal: FakeCalcom, version: str | None = BOOKINGS) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {cal.api_key}"}
    if version:
        headers["cal-api-version"] = version
    return headers


def booking_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "start": TUE_0900_VIENNA,
        "eventTypeId": 101,
        "attendee": {"name": "Ada Caller", "email": "ada@example.com", "timeZone": "Europe/Vienna"},
        "metadata": {"idempotencyKey": "call-1/tool-1"},
    }
    body.update(overrides)
    return body


def book(cal: FakeCalcom, **overrides: Any) -> dict[str, Any]:
    response = requests.post(
        f"{cal.endpoint}/bookings", json=booking_body(**overrides), headers=auth(cal), timeout=5
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def assert_error(response: requests.Response, status: int, code: str, text: str = "") -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "error"
    assert body["path"] == response.request.path_url
    assert body["timestamp"].endswith("Z")
    assert body["error"]["code"] == code
    assert text in body["error"]["message"]
    assert "details" in body["error"]


# --- me, auth ------------------------------------------------------------------------------


def test_me_returns_the_account(cal: FakeCalcom) -> None:
    response = requests.get(f"{cal.endpoint}/me", headers=auth(cal, None), timeout=5)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "success"
    assert {"id", "username", "email", "timeZone"} <= body["data"].keys()
    assert body["data"]["timeZone"] == "Europe/Vienna"


@pytest.mark.parametrize(
    "header",
    [None, "Bearer cal_test_unknown", "Bearer not-a-cal-key", "Token cal_x", "REVOKED"],
)
def test_missing_invalid_and_revoked_keys_are_401(cal: FakeCalcom, header: str | None) -> None:
    if header == "REVOKED":
        key = cal.add_api_key()
        cal.revoke_api_key(key)
        header = f"Bearer {key}"
    headers = {"Authorization": header} if header else {}
    response = requests.get(f"{cal.endpoint}/me", headers=headers, timeout=5)
    assert_error(response, 401, "UnauthorizedException")


def test_v1_is_gone(cal: FakeCalcom) -> None:
    response = requests.get(f"{cal.base_url}/v1/bookings?apiKey={cal.api_key}", timeout=5)
    assert_error(response, 404, "NotFoundException", "Cannot GET /v1/bookings")


# --- event types and slots -------------------------------------------------------------------


def test_event_types_list_and_get(cal: FakeCalcom) -> None:
    url = f"{cal.endpoint}/event-types"
    listed = requests.get(url, headers=auth(cal, EVENT_TYPES), timeout=5).json()["data"]
    by_slug = {e["slug"]: e for e in listed}
    assert by_slug["intro-call"]["lengthInMinutes"] == 30
    sms = requests.get(f"{url}/102", headers=auth(cal, EVENT_TYPES), timeout=5).json()["data"]
    fields = {f["slug"]: f for f in sms["bookingFields"]}
    assert fields["attendeePhoneNumber"]["required"] is True
    assert {"id", "slug", "title", "lengthInMinutes"} <= sms.keys()
    missing = requests.get(f"{url}/999", headers=auth(cal, EVENT_TYPES), timeout=5)
    assert_error(missing, 404, "NotFoundException", "999")


def test_slots_are_a_date_keyed_map_in_the_requested_zone(cal: FakeCalcom) -> None:
    query: dict[str, str | int] = {"eventTypeId": 101, "start": TUESDAY, "end": TUESDAY}
    query["timeZone"] = "Europe/Vienna"
    response = requests.get(
        f"{cal.endpoint}/slots", params=query, headers={"cal-api-version": SLOTS}, timeout=5
    )
    assert response.status_code == 200
    data = response.json()["data"]
    assert list(data) == [TUESDAY]
    assert data[TUESDAY][0] == {"start": "2026-03-03T09:00:00.000+01:00"}
    assert len(data[TUESDAY]) == 16  # 09:00-17:00 in 30-minute slots

    query.update(timeZone="UTC", slotFormat="range")
    ranged = requests.get(
        f"{cal.endpoint}/slots", params=query, headers={"cal-api-version": SLOTS}, timeout=5
    ).json()["data"]
    assert ranged[TUESDAY][0] == {
        "start": "2026-03-03T08:00:00.000Z",
        "end": "2026-03-03T08:30:00.000Z",
    }


def test_slots_by_slug_and_minus_bookings_and_reservations(cal: FakeCalcom) -> None:
    query = {"eventTypeSlug": "intro-call", "username": cal.user.username, "start": TUESDAY}
    query["end"] = TUESDAY
    headers = {"cal-api-version": SLOTS}

    def starts() -> list[str]:
        data = requests.get(f"{cal.endpoint}/slots", params=query, headers=headers, timeout=5)
        return [s["start"] for s in data.json()["data"][TUESDAY]]

    assert "2026-03-03T08:00:00.000Z" in starts()
    book(cal)
    assert "2026-03-03T08:00:00.000Z" not in starts()
    reserved = requests.post(
        f"{cal.endpoint}/slots/reservations",
        json={"eventTypeId": 101, "slotStart": "2026-03-03T09:00:00Z"},
        headers=headers,
        timeout=5,
    )
    assert reserved.status_code == 201
    assert reserved.json()["data"]["reservationDuration"] == 5
    assert "2026-03-03T09:00:00.000Z" not in starts()
    uid = reserved.json()["data"]["reservationUid"]
    requests.delete(f"{cal.endpoint}/slots/reservations/{uid}", headers=headers, timeout=5)
    assert "2026-03-03T09:00:00.000Z" in starts()


# --- booking create and validation ---------------------------------------------------------


def test_create_booking_is_201_with_the_booking(cal: FakeCalcom) -> None:
    response = requests.post(
        f"{cal.endpoint}/bookings", json=booking_body(), headers=auth(cal), timeout=5
    )
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "success"
    booking = body["data"]
    assert booking["status"] == "accepted"
    assert booking["start"] == "2026-03-03T08:00:00.000Z"
    assert booking["end"] == "2026-03-03T08:30:00.000Z"
    assert booking["duration"] == 30
    assert booking["eventType"] == {"id": 101, "slug": "intro-call"}
    assert booking["attendees"][0]["email"] == "ada@example.com"
    assert booking["metadata"] == {"idempotencyKey": "call-1/tool-1"}
    assert booking["createdAt"] == booking["updatedAt"] == "2026-03-02T07:00:00.000Z"
    assert {"id", "uid", "title", "hosts", "bookingFieldsResponses"} <= booking.keys()
    assert cal.bookings() == [booking]


def test_sms_event_type_books_with_an_e164_phone(cal: FakeCalcom) -> None:
    attendee = {"name": "Bo", "phoneNumber": "+436641234567", "timeZone": "Europe/Vienna"}
    attendee["email"] = "bo@example.com"
    booking = book(cal, eventTypeId=102, attendee=attendee)
    assert booking["attendees"][0]["phoneNumber"] == "+436641234567"
    assert booking["duration"] == 60


ADA = {"name": "Ada", "email": "ada@example.com", "timeZone": "Europe/Vienna"}


@pytest.mark.parametrize(
    ("overrides", "text"),
    [
        ({"eventTypeId": 102}, "attendeePhoneNumber"),
        ({"start": "2026-03-03T09:00:00+01:00"}, "must be in UTC"),
        ({"start": "2026-03-03T08:00:00"}, "must be in UTC"),
        ({"start": "next tuesday"}, "valid ISO 8601"),
        ({"metadata": {f"k{i}": "v" for i in range(51)}}, "at most 50 keys"),
        ({"metadata": {"k" * 41: "v"}}, "at most 50 keys"),
        ({"metadata": {"k": "v" * 501}}, "at most 50 keys"),
        ({"metadata": {"k": {"nested": 1}}}, "at most 50 keys"),
        ({"attendee": {"name": "Ada", "timeZone": "Europe/Vienna"}}, "contact method"),
        ({"attendee": {**ADA, "timeZone": "Mars/Olympus"}}, "IANA"),
        ({"attendee": {**ADA, "phoneNumber": "0664 1234567"}}, "international format"),
        ({"attendee": {**ADA, "phone": "+436641234567"}}, "property phone should not exist"),
        ({"notes": "hi"}, "property notes should not exist"),
        ({"lengthInMinutes": 45}, "lengthInMinutes"),
    ],
)
def test_invalid_bookings_are_400(cal: FakeCalcom, overrides: dict[str, Any], text: str) -> None:
    response = requests.post(
        f"{cal.endpoint}/bookings", json=booking_body(**overrides), headers=auth(cal), timeout=5
    )
    assert_error(response, 400, "BadRequestException", text)
    assert cal.bookings() == []


@pytest.mark.parametrize(
    ("start", "text"),
    [
        (TUE_0900_VIENNA, "already has booking at this time"),  # taken below
        ("2026-03-03T17:00:00Z", "already has booking at this time"),  # 18:00 Vienna: closed
        ("2026-03-01T08:00:00Z", "in the past"),
        ("2027-06-01T08:00:00Z", "can't be booked"),  # beyond the booking window
    ],
)
def test_unbookable_times_are_400(cal: FakeCalcom, start: str, text: str) -> None:
    book(cal)
    response = requests.post(
        f"{cal.endpoint}/bookings", json=booking_body(start=start), headers=auth(cal), timeout=5
    )
    assert_error(response, 400, "BadRequestException", text)
    assert len(cal.bookings()) == 1


def test_confirmation_and_custom_required_fields(cal: FakeCalcom) -> None:
    weekends = Schedule("America/New_York", [((5, 6), "10:00", "12:00")])
    field = {"slug": "petName", "type": "text", "label": "Pet", "required": True}
    cal.add_event_type(
        EventType(
            7,
            "vet",
            "Vet visit",
            20,
            schedule=weekends,
            extra_fields=[field],
            requires_confirmation=True,
        )
    )
    saturday_10_ny = "2026-03-07T15:00:00Z"
    missing = requests.post(
        f"{cal.endpoint}/bookings",
        json=booking_body(eventTypeId=7, start=saturday_10_ny),
        headers=auth(cal),
        timeout=5,
    )
    assert_error(missing, 400, "BadRequestException", "bookingFieldsResponses.petName")
    booking = book(
        cal, eventTypeId=7, start=saturday_10_ny, bookingFieldsResponses={"petName": "Rex"}
    )
    assert booking["status"] == "pending"
    assert booking["bookingFieldsResponses"]["petName"] == "Rex"
    moved = requests.post(
        f"{cal.endpoint}/bookings/{booking['uid']}/reschedule",
        json={"start": "2026-03-08T15:20:00Z", "rescheduledBy": cal.user.email},
        headers=auth(cal),
        timeout=5,
    )
    assert moved.json()["data"]["status"] == "accepted"  # the owner's reschedule confirms


def test_concurrent_bookings_of_one_slot_let_exactly_one_win(cal: FakeCalcom) -> None:
    statuses: list[int] = []

    def attempt(n: int) -> None:
        body = booking_body(metadata={"idempotencyKey": f"call-{n}"})
        url = f"{cal.endpoint}/bookings"
        response = requests.post(url, json=body, headers=auth(cal), timeout=5)
        statuses.append(response.status_code)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201] + [400] * 5
    assert len(cal.bookings()) == 1


def test_unknown_event_type_is_404(cal: FakeCalcom) -> None:
    response = requests.post(
        f"{cal.endpoint}/bookings", json=booking_body(eventTypeId=7), headers=auth(cal), timeout=5
    )
    assert_error(response, 404, "NotFoundException", "Event type with id 7 not found")


# --- get, list, cancel, reschedule ---------------------------------------------------------


def test_get_and_list_page_with_take_and_skip(cal: FakeCalcom) -> None:
    uids = [book(cal, start=f"2026-03-03T{8 + i:02d}:00:00Z")["uid"] for i in range(5)]
    got = requests.get(f"{cal.endpoint}/bookings/{uids[0]}", headers=auth(cal), timeout=5)
    assert got.json()["data"]["uid"] == uids[0]
    url = f"{cal.endpoint}/bookings"
    first = requests.get(url, params={"take": 2}, headers=auth(cal), timeout=5).json()
    assert [b["uid"] for b in first["data"]] == uids[:2]
    assert first["pagination"]["totalItems"] == 5
    assert first["pagination"]["hasNextPage"] is True
    last = requests.get(url, params={"take": 2, "skip": 4}, headers=auth(cal), timeout=5).json()
    assert [b["uid"] for b in last["data"]] == uids[4:]
    assert last["pagination"]["hasNextPage"] is False
    too_many = requests.get(url, params={"take": 251}, headers=auth(cal), timeout=5)
    assert_error(too_many, 400, "BadRequestException", "take")
    newest = requests.get(url, params={"sortStart": "desc"}, headers=auth(cal), timeout=5)
    assert newest.json()["data"][0]["uid"] == uids[-1]
    missing = requests.get(f"{url}/nope", headers=auth(cal), timeout=5)
    assert_error(missing, 404, "NotFoundException", "nope")


def test_list_requires_a_key(cal: FakeCalcom) -> None:
    response = requests.get(
        f"{cal.endpoint}/bookings", headers={"cal-api-version": BOOKINGS}, timeout=5
    )
    assert_error(response, 401, "UnauthorizedException")


def test_after_updated_at_finds_changes_made_behind_the_clients_back(cal: FakeCalcom) -> None:
    untouched = book(cal)
    changed = book(cal, start="2026-03-03T10:00:00Z")
    cal.advance(timedelta(minutes=10))
    cutoff = "2026-03-02T07:05:00Z"
    cal.change_booking(changed["uid"], title="Moved by the owner")
    response = requests.get(
        f"{cal.endpoint}/bookings",
        params={"afterUpdatedAt": cutoff},
        headers=auth(cal),
        timeout=5,
    )
    data = response.json()["data"]
    assert [b["uid"] for b in data] == [changed["uid"]]
    assert data[0]["title"] == "Moved by the owner"
    assert data[0]["updatedAt"] == "2026-03-02T07:10:00.000Z"
    assert untouched["uid"] not in {b["uid"] for b in data}


def test_cancel_is_200_and_cancelling_again_is_400(cal: FakeCalcom) -> None:
    uid = book(cal)["uid"]
    url = f"{cal.endpoint}/bookings/{uid}/cancel"
    response = requests.post(
        url, json={"cancellationReason": "caller hung up"}, headers=auth(cal), timeout=5
    )
    assert response.status_code == 200
    cancelled = response.json()["data"]
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancellationReason"] == "caller hung up"
    again = requests.post(url, json={}, headers=auth(cal), timeout=5)
    assert_error(again, 400, "BadRequestException", "cancelled already")
    listed = requests.get(
        f"{cal.endpoint}/bookings", params={"status": "cancelled"}, headers=auth(cal), timeout=5
    )
    assert [b["uid"] for b in listed.json()["data"]] == [uid]
    book(cal)  # the slot is free again


def test_reschedule_makes_a_new_booking_linked_both_ways(cal: FakeCalcom) -> None:
    old = book(cal)
    response = requests.post(
        f"{cal.endpoint}/bookings/{old['uid']}/reschedule",
        json={"start": "2026-03-03T12:00:00Z", "reschedulingReason": "clash"},
        headers=auth(cal),
        timeout=5,
    )
    assert response.status_code == 201
    new = response.json()["data"]
    assert new["uid"] != old["uid"]
    assert new["rescheduledFromUid"] == old["uid"]
    assert new["start"] == "2026-03-03T12:00:00.000Z"
    assert new["metadata"] == old["metadata"]
    before = cal.booking(old["uid"])
    assert before["rescheduledToUid"] == new["uid"]
    assert before["status"] == "cancelled"
    local = requests.post(
        f"{cal.endpoint}/bookings/{new['uid']}/reschedule",
        json={"start": "2026-03-03T14:00:00+01:00"},
        headers=auth(cal),
        timeout=5,
    )
    assert_error(local, 400, "BadRequestException", "must be in UTC")


# --- cal-api-version -------------------------------------------------------------------------


def test_missing_version_silently_routes_to_the_2024_04_15_handlers(cal: FakeCalcom) -> None:
    uid = book(cal)["uid"]
    listed = requests.get(f"{cal.endpoint}/bookings", headers=auth(cal, None), timeout=5)
    assert listed.status_code == 200  # same envelope, different shape
    assert listed.json()["data"]["bookings"][0]["startTime"] == "2026-03-03T08:00:00.000Z"
    got = requests.get(f"{cal.endpoint}/bookings/{uid}", headers=auth(cal, "2099-01-01"), timeout=5)
    assert got.json()["data"]["status"] == "ACCEPTED"
    types = requests.get(f"{cal.endpoint}/event-types", headers=auth(cal, None), timeout=5)
    assert types.json()["data"]["eventTypeGroups"][0]["eventTypes"][0]["length"] == 30
    created = requests.post(
        f"{cal.endpoint}/bookings", json=booking_body(), headers=auth(cal, None), timeout=5
    )
    assert_error(created, 400, "BadRequestException", "property attendee should not exist")
    cancelled = requests.post(
        f"{cal.endpoint}/bookings/{uid}/cancel", json={}, headers=auth(cal, None), timeout=5
    )
    assert cancelled.status_code == 201
    assert cancelled.json()["data"] == {
        "bookingId": cal.booking(uid)["id"],
        "bookingUid": uid,
        "onlyRemovedAttendee": False,
    }


@pytest.mark.parametrize(
    ("method", "path", "version"),
    [
        ("GET", "/slots", None),
        ("GET", "/slots", BOOKINGS),
        ("POST", "/bookings", SLOTS),
        ("GET", "/event-types", BOOKINGS),
        ("POST", "/bookings/x/reschedule", None),
    ],
)
def test_versions_without_a_handler_are_404(
    cal: FakeCalcom, method: str, path: str, version: str | None
) -> None:
    query = "?eventTypeId=101&start=2026-03-03&end=2026-03-03" if path == "/slots" else ""
    response = requests.request(
        method, f"{cal.endpoint}{path}{query}", headers=auth(cal, version), json={}, timeout=5
    )
    assert_error(response, 404, "NotFoundException", f"Cannot {method} /v2{path}")


# --- rate limits ---------------------------------------------------------------------------


def test_rate_limit_headers_429_and_reset() -> None:
    with FakeCalcom(now=NOW, rate_limit=3, window_seconds=1) as cal:
        url, headers = f"{cal.endpoint}/me", auth(cal, None)
        remaining = []
        for _ in range(3):
            response = requests.get(url, headers=headers, timeout=5)
            assert response.headers["X-RateLimit-Limit-Default"] == "3"
            assert int(response.headers["X-RateLimit-Reset-Default"]) in (0, 1)
            remaining.append(response.headers["X-RateLimit-Remaining-Default"])
        assert remaining == ["2", "1", "0"]
        throttled = requests.get(url, headers=headers, timeout=5)
        assert_error(throttled, 429, "ThrottlerException", "Too many requests")
        assert "Retry-After" not in throttled.headers
        reset = int(throttled.headers["X-RateLimit-Reset-Default"])
        assert reset == 1
        other_key = {"Authorization": f"Bearer {cal.add_api_key()}"}
        assert requests.get(url, headers=other_key, timeout=5).status_code == 200  # per key
        time.sleep(reset + 0.05)
        assert requests.get(url, headers=headers, timeout=5).status_code == 200
        assert cal.max_rate(cal.api_key) == 4


def test_throttle_next_and_failures_are_injectable(cal: FakeCalcom) -> None:
    cal.throttle_next(1)
    cal.fail_next(503)
    url = f"{cal.endpoint}/me"
    assert requests.get(url, headers=auth(cal, None), timeout=5).status_code == 429
    assert requests.get(url, headers=auth(cal, None), timeout=5).status_code == 503
    assert requests.get(url, headers=auth(cal, None), timeout=5).status_code == 200


# --- delayed create: the client times out although the booking exists ----------------------


def test_delayed_create_times_out_but_the_booking_is_findable_by_metadata(cal: FakeCalcom) -> None:
    cal.delay_next_create(1.0)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(
            f"{cal.endpoint}/bookings", json=booking_body(), headers=auth(cal), timeout=0.3
        )
    listed = requests.get(
        f"{cal.endpoint}/bookings",
        params={"attendeeEmail": "ada@example.com", "status": "upcoming"},
        headers=auth(cal),
        timeout=5,
    ).json()["data"]
    found = [b for b in listed if b["metadata"].get("idempotencyKey") == "call-1/tool-1"]
    assert len(found) == 1
    assert cal.count("POST /v2/bookings") == 1


# --- webhooks ------------------------------------------------------------------------------


class Receiver:
    """A subscriber that keeps the raw bytes and headers of every POST."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, dict[str, str]]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((body, dict(self.headers.items())))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/cal"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def verified(body: bytes, headers: dict[str, str], secret: str) -> bool:
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-Cal-Signature-256"])


def test_webhooks_are_signed_and_carry_the_booking(cal: FakeCalcom) -> None:
    triggers = ["BOOKING_CREATED", "BOOKING_CANCELLED", "BOOKING_RESCHEDULED"]
    with Receiver() as receiver:
        cal.add_webhook(receiver.url, "s3cret", triggers)
        booking = book(cal)
        walk_in = cal.book_directly(101, datetime(2026, 3, 3, 10, 0, tzinfo=UTC))
        cal.cancel_directly(walk_in["uid"], "no-show")
        moved = cal.reschedule_directly(booking["uid"], datetime(2026, 3, 3, 13, 0, tzinfo=UTC))
        deliveries = cal.wait_for_deliveries(4)
        assert [d.status for d in deliveries] == [200] * 4
        assert len(receiver.received) == 4
        for body, headers in receiver.received:
            assert verified(body, headers, "s3cret")
            assert headers["Content-Type"] == "application/json"
            assert headers["X-Cal-Webhook-Version"] == "2021-10-20"
        events = [d.json for d in deliveries]
        assert [e["triggerEvent"] for e in events] == [
            "BOOKING_CREATED",
            "BOOKING_CREATED",
            "BOOKING_CANCELLED",
            "BOOKING_RESCHEDULED",
        ]
        created = events[0]["payload"]
        assert created["uid"] == booking["uid"]
        assert created["bookingId"] == booking["id"]
        assert created["startTime"] == "2026-03-03T08:00:00Z"
        assert created["type"] == "intro-call"
        assert created["status"] == "ACCEPTED"
        assert created["metadata"]["idempotencyKey"] == "call-1/tool-1"
        assert created["attendees"][0]["email"] == "ada@example.com"
        assert events[2]["payload"]["cancellationReason"] == "no-show"
        rescheduled = events[3]["payload"]
        assert rescheduled["uid"] == moved["uid"]
        assert rescheduled["rescheduleUid"] == booking["uid"]

        cal.send_tampered(deliveries[0])
        cal.redeliver(deliveries[0])
        cal.wait_for_deliveries(6)
        tampered, duplicate = receiver.received[4], receiver.received[5]
        assert not verified(*tampered, "s3cret")
        assert duplicate == receiver.received[0]


def test_webhook_without_secret_sends_the_literal_header(cal: FakeCalcom) -> None:
    with Receiver() as receiver:
        cal.add_webhook(receiver.url, None, ["BOOKING_CREATED"])
        book(cal)
        cal.wait_for_deliveries(1)
        assert receiver.received[0][1]["X-Cal-Signature-256"] == "no-secret-provided"


# --- inspection ----------------------------------------------------------------------------


def test_requests_are_logged_and_counted(cal: FakeCalcom) -> None:
    uid = book(cal)["uid"]
    requests.get(f"{cal.endpoint}/bookings/{uid}", headers=auth(cal), timeout=5)
    logged = cal.requests
    assert [r.route for r in logged] == ["POST /v2/bookings", "GET /v2/bookings/{uid}"]
    assert logged[0].json["attendee"]["name"] == "Ada Caller"
    assert logged[0].headers["cal-api-version"] == BOOKINGS
    assert logged[0].status == 201
    assert cal.counters == {"POST /v2/bookings": 1, "GET /v2/bookings/{uid}": 1}
