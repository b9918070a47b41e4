"""The HTTP API end to end: a real ``calsync run`` process, every endpoint and error path."""

from __future__ import annotations

import time
import uuid
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
import requests

from calsync.api.schemas import (
    BookingOut,
    BookingsOut,
    ErrorOut,
    FreeBusyOut,
    HoldOut,
    ResourcesOut,
    SlotsOut,
)
from tests.api.daemon import VIENNA, Daemon

NEW_YORK = ZoneInfo("America/New_York")


class Client:
    def __init__(self, daemon: Daemon, token: str) -> None:
        self.url = daemon.url
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str, **params: Any) -> requests.Response:
        return requests.get(self.url + path, params=params, headers=self.headers, timeout=10)

    def post(self, path: str, body: Any = None, key: str | None = None) -> requests.Response:
        headers = dict(self.headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        return requests.post(self.url + path, json=body, headers=headers, timeout=10)

    def delete(self, path: str) -> requests.Response:
        return requests.delete(self.url + path, headers=self.headers, timeout=10)

    def book(self, start: str, resource: str = "clinic", **extra: Any) -> requests.Response:
        body = {"resource": resource, "start": start, "attendee": {"name": "Ann Example"}}
        body.update(extra)
        return self.post("/v1/bookings", body, key=str(uuid.uuid4()))


@pytest.fixture(scope="module")
def keys(daemon: Daemon) -> dict[str, str]:
    return {scope: daemon.key(scope) for scope in ("read", "write", "admin")}


@pytest.fixture(scope="module")
def api(daemon: Daemon, keys: dict[str, str]) -> Client:
    client = Client(daemon, keys["admin"])
    daemon.wait_synced(client.headers)
    return client


def day(offset: int) -> date:
    return datetime.now(VIENNA).date() + timedelta(days=offset)


def local(offset: int, hhmm: str) -> str:
    return f"{day(offset).isoformat()}T{hhmm}"


def error(answer: requests.Response) -> dict[str, Any]:
    ErrorOut.model_validate(answer.json())  # as /openapi.json documents it
    body: dict[str, Any] = answer.json()["error"]
    return body


# --- health, auth --------------------------------------------------------------------


def test_healthz_needs_no_key(daemon: Daemon) -> None:
    assert requests.get(f"{daemon.url}/healthz", timeout=5).json() == {"status": "ok"}


def test_every_response_carries_a_request_id(daemon: Daemon) -> None:
    fresh = requests.get(f"{daemon.url}/healthz", timeout=5).headers["X-Request-ID"]
    assert len(fresh) == 32
    given = requests.get(f"{daemon.url}/healthz", headers={"X-Request-ID": "call-42"}, timeout=5)
    assert given.headers["X-Request-ID"] == "call-42"
    odd = requests.get(f"{daemon.url}/healthz", headers={"X-Request-ID": "a;b=c"}, timeout=5)
    assert odd.headers["X-Request-ID"] != "a;b=c"  # only plain ids are taken over


def test_missing_and_wrong_keys_are_401(daemon: Daemon) -> None:
    answer = requests.get(f"{daemon.url}/v1/resources", timeout=5)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert "calsync apikey create" in error(answer)["message"]
    wrong = {"Authorization": "Bearer csk_aaaaaaaa_nope"}
    answer = requests.get(f"{daemon.url}/v1/resources", headers=wrong, timeout=5)
    assert answer.status_code == 401
    assert error(answer)["code"] == "unauthorized"


def test_scopes_are_enforced(daemon: Daemon, keys: dict[str, str], api: Client) -> None:
    reader, writer = Client(daemon, keys["read"]), Client(daemon, keys["write"])
    assert reader.get("/v1/resources").status_code == 200
    denied = reader.post("/v1/holds", {"resource": "clinic", "start": local(5, "09:00")})
    assert denied.status_code == 403
    assert "scope read; write is needed" in error(denied)["message"]
    assert writer.post("/v1/sync").status_code == 403
    synced = api.post("/v1/sync")
    assert synced.status_code == 202
    assert synced.json() == {"calendars": 1}


def test_a_revoked_key_stops_working(daemon: Daemon) -> None:
    token = daemon.key("read")
    prefix = token.split("_")[1]
    assert daemon.cli("apikey", "revoke", prefix).returncode == 0
    client = Client(daemon, token)
    deadline = time.monotonic() + 10
    while client.get("/v1/resources").status_code == 200:  # the cache trusts a key for 5 s
        assert time.monotonic() < deadline
    assert client.get("/v1/resources").status_code == 401
    listed = daemon.cli("apikey", "list").stdout
    assert f"{prefix}  read   revoked" in listed


# --- lookups -------------------------------------------------------------------------


def test_resources(api: Client) -> None:
    resources = ResourcesOut.model_validate(api.get("/v1/resources").json()).resources
    resources = [r.model_dump() for r in resources]
    assert [r["id"] for r in resources] == ["clinic", "studio"]
    studio = api.get("/v1/resources/studio").json()
    assert (studio["timezone"], studio["language"], studio["duration"]) == (
        "America/New_York",
        "en",
        60,
    )
    assert studio["hours"]["mon"] == ["09:00-17:00"]
    missing = api.get("/v1/resources/nope")
    assert missing.status_code == 404
    assert "unknown resource 'nope'" in error(missing)["message"]


def test_slots_come_with_spoken_labels_and_freshness(api: Client, daemon: Daemon) -> None:
    busy_day = daemon.busy_day
    answer = api.get("/v1/resources/clinic/slots", start=busy_day.isoformat(), limit=100)
    body = answer.json()
    assert answer.status_code == 200
    SlotsOut.model_validate(body)
    starts = [s["start"][11:16] for s in body["slots"] if s["start"][:10] == str(busy_day)]
    assert "11:30" in starts
    assert "12:00" not in starts  # the feed's lunch 12:00-13:00
    assert "12:30" not in starts
    assert "13:00" in starts
    first = body["slots"][0]
    assert first["start"].endswith(("+01:00", "+02:00"))
    assert first["spoken"].endswith("um 08:00 Uhr")
    assert body["stale"] is False
    assert body["as_of"] is not None


def test_slots_parameters(api: Client) -> None:
    start = local(6, "09:00")
    answer = api.get(
        "/v1/resources/clinic/slots", start=start, end=local(6, "11:00"), duration=60, lang="en"
    )
    slots = answer.json()["slots"]
    assert [s["start"][11:16] for s in slots] == ["09:00", "09:30", "10:00"]
    assert all(
        s["end"][11:16] == f"{int(s['start'][11:13]) + 1:02d}:{s['start'][14:16]}" for s in slots
    )
    assert slots[0]["spoken"].endswith("at 9:00 AM")
    in_new_york = api.get("/v1/resources/clinic/slots", start=start, limit=1, tz="America/New_York")
    assert in_new_york.json()["slots"][0]["start"].endswith(("-05:00", "-04:00"))


def test_a_time_without_offset_is_read_in_the_resource_zone(api: Client) -> None:
    naive = api.get("/v1/resources/studio/slots", start=local(7, "00:00"), limit=1).json()
    assert (
        naive["slots"][0]["start"]
        == f"{day(7).isoformat()}T09:00:00" + naive["slots"][0]["start"][19:]
    )
    assert naive["slots"][0]["start"][19:] in ("-05:00", "-04:00")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start": "2026-01-01", "end": "2026-06-01"}, "at most 62 days"),
        ({"start": "2027-01-02", "end": "2027-01-01"}, "must be after start"),
        ({"start": "tomorrow"}, "start: 'tomorrow' is not a date or time"),
        ({"tz": "Mars/Base"}, "unknown time zone 'Mars/Base'"),
        ({"duration": "0"}, "duration"),
        ({"lang": "xx"}, "unknown language 'xx'"),
    ],
)
def test_bad_lookups_are_clear_4xx(api: Client, params: dict[str, str], message: str) -> None:
    answer = api.get("/v1/resources/clinic/slots", **params)
    assert answer.status_code in (400, 422)
    assert message in error(answer)["message"]


def test_freebusy(api: Client, daemon: Daemon) -> None:
    busy_day = daemon.busy_day.isoformat()
    body = api.get("/v1/resources/clinic/freebusy", start=busy_day, end=busy_day).json()
    FreeBusyOut.model_validate(body)
    assert [(b["start"][11:16], b["end"][11:16]) for b in body["busy"]] == [("12:00", "13:00")]
    assert body["timezone"] == "Europe/Vienna"


# --- holds ---------------------------------------------------------------------------


def test_a_hold_blocks_the_slot_until_released(api: Client) -> None:
    start = local(8, "10:00")
    hold = api.post("/v1/holds", {"resource": "clinic", "start": start, "call_id": "call-9"})
    assert hold.status_code == 201
    held = HoldOut.model_validate(hold.json()).model_dump()
    assert held["start"].startswith(start)
    assert held["call_id"] == "call-9"
    listed = api.get("/v1/resources/clinic/slots", start=start, end=local(8, "11:00")).json()
    assert [s["start"][11:16] for s in listed["slots"]] == ["10:30"]
    assert api.book(start).status_code == 409
    assert api.delete(f"/v1/holds/{held['id']}").status_code == 204
    assert api.delete(f"/v1/holds/{held['id']}").status_code == 404
    assert api.book(start).status_code == 201


def test_booking_through_a_hold(api: Client) -> None:
    start = local(8, "14:00")
    hold = api.post("/v1/holds", {"resource": "clinic", "start": start}).json()
    booked = api.book(start, hold_id=hold["id"])
    assert booked.status_code == 201
    assert api.delete(f"/v1/holds/{hold['id']}").status_code == 404


def test_bad_hold_requests(api: Client) -> None:
    assert api.post("/v1/holds", {"resource": "clinic"}).status_code == 422
    closed = api.post("/v1/holds", {"resource": "clinic", "start": local(8, "21:00")})
    assert closed.status_code == 409
    assert "outside working hours" in error(closed)["message"]


# --- bookings ------------------------------------------------------------------------


def test_booking_needs_an_idempotency_key(api: Client) -> None:
    body = {"resource": "clinic", "start": local(9, "09:00"), "attendee": {"name": "A"}}
    answer = api.post("/v1/bookings", body)
    assert answer.status_code == 422
    assert "Idempotency-Key" in error(answer)["message"]


def test_idempotent_booking(api: Client) -> None:
    body = {
        "resource": "clinic",
        "start": local(9, "09:00"),
        "attendee": {"name": "Eva Muster", "phone": "0664 1234567", "email": "eva@example.com"},
        "notes": "Kontrolle",
        "metadata": {"crm_id": 42},
    }
    first = api.post("/v1/bookings", body, key="idem-1")
    assert first.status_code == 201
    booking = first.json()
    BookingOut.model_validate(booking)
    assert booking["attendee"]["phone"] == "+436641234567"
    assert booking["status"] == "confirmed"
    assert (booking["duration"], booking["metadata"]) == (30, {"crm_id": 42})
    again = api.post("/v1/bookings", body, key="idem-1")
    assert (again.status_code, again.json()["id"]) == (200, booking["id"])
    other = api.post("/v1/bookings", {**body, "notes": "changed"}, key="idem-1")
    assert other.status_code == 422
    assert error(other)["code"] == "idempotency_key_reused"
    assert api.get(f"/v1/bookings/{booking['id']}").json() == booking


def test_a_taken_slot_is_409_with_alternatives(api: Client) -> None:
    assert api.book(local(10, "09:00")).status_code == 201
    taken = api.book(local(10, "09:00"))
    assert taken.status_code == 409
    body = error(taken)
    assert body["code"] == "slot_unavailable"
    starts = [a["start"][11:16] for a in body["alternatives"]]
    assert starts == ["08:00", "08:30", "09:30"]
    assert body["alternatives"][0]["spoken"]


def test_rules_are_rechecked_on_booking(api: Client) -> None:
    studio_day = (datetime.now(NEW_YORK) + timedelta(days=4)).date().isoformat()
    assert api.book(f"{studio_day}T09:00", resource="studio").status_code == 201
    buffer = api.book(f"{studio_day}T10:00", resource="studio")  # 30-minute buffer after 10:00
    assert buffer.status_code == 409
    assert "buffers" in error(buffer)["message"]
    assert api.book(f"{studio_day}T11:00", resource="studio").status_code == 201
    cap = api.book(f"{studio_day}T14:00", resource="studio")
    assert cap.status_code == 409
    assert "daily limit of 2" in error(cap)["message"]
    far = (datetime.now(NEW_YORK) + timedelta(days=45)).date().isoformat()
    horizon = api.book(f"{far}T09:00", resource="studio")
    assert "more than 30 days ahead" in error(horizon)["message"]


def test_find_cancel_reschedule(api: Client) -> None:
    made = api.book(local(11, "15:00"), attendee={"name": "Zoe", "phone": "+43 1 4000 0"}).json()
    listed = BookingsOut.model_validate(
        api.get("/v1/bookings", phone="01 40000", resource="clinic").json()
    )
    found = [b.model_dump() for b in listed.bookings]
    assert [b["id"] for b in found] == [made["id"]]
    in_range = api.get(
        "/v1/bookings", resource="clinic", start=day(11).isoformat(), end=day(11).isoformat()
    ).json()["bookings"]
    assert made["id"] in [b["id"] for b in in_range]
    moved = api.post(f"/v1/bookings/{made['id']}/reschedule", {"start": local(11, "16:00")})
    assert moved.status_code == 200
    assert (moved.json()["id"], moved.json()["start"][11:16]) == (made["id"], "16:00")
    cancelled = api.post(f"/v1/bookings/{made['id']}/cancel", {"reason": "sick"})
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["cancel_reason"] == "sick"
    assert api.post(f"/v1/bookings/{made['id']}/cancel").json()["status"] == "cancelled"
    late = api.post(f"/v1/bookings/{made['id']}/reschedule", {"start": local(11, "17:00")})
    assert late.status_code == 409
    assert api.get("/v1/bookings/nope").status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"resource": "clinic", "start": "x", "attendee": {"name": "A"}}, 422, "not a date"),
        ({"resource": "clinic", "start": "2027-01-01T09:00"}, 422, "attendee: is required"),
        (
            {
                "resource": "clinic",
                "start": "2027-01-01T09:00",
                "attendee": {"name": "A", "age": 3},
            },
            422,
            "attendee.age: is not a known field",
        ),
        (
            {
                "resource": "clinic",
                "start": "2027-01-01T09:00",
                "attendee": {"name": "A", "phone": "12"},
            },
            422,
            "not a valid phone number for AT",
        ),
        (
            {"resource": "nope", "start": "2027-01-01T09:00", "attendee": {"name": "A"}},
            404,
            "unknown resource",
        ),
        (
            {
                "resource": "clinic",
                "start": "2027-01-01T09:00",
                "attendee": {"name": "A"},
                "duration": 0,
            },
            422,
            "duration",
        ),
        (
            {"resource": "clinic", "start": "9999-12-31T23:30", "attendee": {"name": "A"}},
            422,
            "start: 9999-12-31 is out of range; use a year 1970-2200",
        ),
    ],
)
def test_bad_booking_requests(api: Client, body: dict[str, Any], status: int, message: str) -> None:
    answer = api.post("/v1/bookings", body, key=str(uuid.uuid4()))
    assert answer.status_code == status, answer.text
    assert message in error(answer)["message"]


def test_malformed_and_oversize_bodies(api: Client, daemon: Daemon) -> None:
    headers = {**api.headers, "Idempotency-Key": "x", "Content-Type": "application/json"}
    broken = requests.post(f"{daemon.url}/v1/bookings", data="{", headers=headers, timeout=5)
    assert (broken.status_code, error(broken)["code"]) == (400, "invalid_json")
    huge = {"resource": "clinic", "start": "x", "attendee": {"name": "A"}, "notes": "n" * 70_000}
    big = requests.post(f"{daemon.url}/v1/bookings", json=huge, headers=headers, timeout=5)
    assert (big.status_code, error(big)["code"]) == (413, "body_too_large")
    unknown = requests.get(f"{daemon.url}/v1/nothing", headers=api.headers, timeout=5)
    assert (unknown.status_code, error(unknown)["code"]) == (404, "not_found")


def test_calendar_feed(api: Client, daemon: Daemon, keys: dict[str, str]) -> None:
    made = api.book(local(12, "10:00"), attendee={"name": "Feed Person"}).json()
    url = f"{daemon.url}/v1/resources/clinic/calendar.ics"
    assert requests.get(url, timeout=5).status_code == 401
    answer = requests.get(url, params={"key": keys["read"]}, timeout=5)
    assert answer.headers["content-type"].startswith("text/calendar")
    calendar = icalendar.Calendar.from_ical(answer.content)
    events = {str(e["UID"]): e for e in calendar.walk("VEVENT")}
    assert str(events[f"{made['id']}@calsync"]["SUMMARY"]) == "Feed Person"


def test_openapi_describes_the_api(daemon: Daemon) -> None:
    spec = requests.get(f"{daemon.url}/openapi.json", timeout=5).json()
    for path in (
        "/v1/resources/{resource_id}/slots",
        "/v1/holds",
        "/v1/bookings",
        "/v1/bookings/{booking_id}/reschedule",
    ):
        assert path in spec["paths"]


def test_readyz_and_metrics(daemon: Daemon, api: Client) -> None:
    ready = requests.get(f"{daemon.url}/readyz", timeout=5)
    assert (ready.status_code, ready.json()["status"]) == (200, "ready")
    api.get("/v1/resources/clinic/slots", limit=1)
    hold = api.post("/v1/holds", {"resource": "clinic", "start": local(14, "17:00")})
    assert api.delete(f"/v1/holds/{hold.json()['id']}").status_code == 204
    text = requests.get(f"{daemon.url}/metrics", timeout=5).text
    assert 'calsync_lookup_seconds_count{kind="slots"}' in text
    assert 'calsync_sync_seconds_count{calendar="feed:primary"}' in text
    assert 'calsync_sync_age_seconds{calendar="feed:primary"}' in text
    assert "calsync_bookings_total" in text
    assert 'calsync_holds_total{outcome="created"}' in text


def test_sighup_reloads_the_config_or_keeps_it(tmp_path_factory: pytest.TempPathFactory) -> None:
    import signal

    from tests.api.daemon import wait_for

    directory = tmp_path_factory.mktemp("reload")
    running = Daemon(directory, f"sqlite:///{directory}/calsync.db")
    running.start()
    try:
        client = Client(running, running.key("read"))
        assert running.process is not None

        def resources() -> list[str]:
            return [r["id"] for r in client.get("/v1/resources").json()["resources"]]

        original = running.config.read_text()
        running.config.write_text(original.replace("[resources.studio]", "[resources.loft]"))
        running.process.send_signal(signal.SIGHUP)
        assert wait_for(lambda: resources() == ["clinic", "loft"], 10)
        running.config.write_text(original.replace('duration = "30m"', 'duration = "30"'))
        running.process.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "config reload refused" in running.current_log(), 10)
        assert "resources.clinic.duration" in running.current_log()
        assert resources() == ["clinic", "loft"]  # the running config stays
    finally:
        assert running.stop() == 0
