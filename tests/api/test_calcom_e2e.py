"""Cal.com end to end: `calsync auth calcom` with a key file, `calsync run` syncing bookings,
Cal.com's signed webhooks moving syncs forward, and bookings written through Cal.com."""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import requests

from calsync.providers.calcom.webhooks import signature_of
from tests.api.daemon import VIENNA, Daemon, wait_for
from tests.fakes.calcom_server import FakeCalcom

SECRET = "whook-secret-for-tests"
CONFIG = """
[daemon]
listen = "127.0.0.1:{port}"
state_dir = "state"
database = "{database}"
sync_interval = "5m"

[accounts.cal]
provider = "calcom"
endpoint = "ENDPOINT"
webhook_secret_file = "calcom.secret"

[resources.intro]
timezone = "Europe/Vienna"
language = "en"
check = ["cal:bookings"]
book_into = "cal:intro-call"
duration = "30m"
step = "30m"
max_days_ahead = 30
hours.mon = ["09:00-17:00"]
hours.tue = ["09:00-17:00"]
hours.wed = ["09:00-17:00"]
hours.thu = ["09:00-17:00"]
hours.fri = ["09:00-17:00"]
"""


def weekday(after: int) -> date:
    day = datetime.now(VIENNA).date() + timedelta(days=after)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


DAY = weekday(3)


def at(hhmm: str, day: date = DAY) -> datetime:
    return datetime.fromisoformat(f"{day.isoformat()}T{hhmm}").replace(tzinfo=VIENNA)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeCalcom, Daemon]]:
    directory = tmp_path_factory.mktemp("calcom")
    with FakeCalcom() as cal:
        cal.book_directly(101, at("10:00"), name="Early Bird")
        (directory / "calcom.secret").write_text(SECRET + "\n")
        (directory / "key.txt").write_text(cal.api_key + "\n")
        config = CONFIG.replace("ENDPOINT", cal.endpoint)
        daemon = Daemon(directory, f"sqlite:///{directory}/calsync.db", config=config)
        connected = daemon.cli(
            "auth", "calcom", "--account", "cal", "--api-key-file", str(directory / "key.txt")
        )
        assert connected.returncode == 0, connected.stderr
        assert "connected Cal.com account 'cal'" in connected.stdout
        assert (directory / "state" / "calcom-cal.key").stat().st_mode & 0o777 == 0o600
        daemon.start()
        cal.add_webhook(
            f"{daemon.url}/push/calcom", SECRET,
            ("BOOKING_CREATED", "BOOKING_CANCELLED", "BOOKING_RESCHEDULED"),
        )  # fmt: skip
        try:
            yield cal, daemon
        finally:
            assert daemon.stop() == 0, daemon.log
            assert cal.api_key not in daemon.log


@pytest.fixture(scope="module")
def headers(setup: tuple[FakeCalcom, Daemon]) -> dict[str, str]:
    return {"Authorization": f"Bearer {setup[1].key('admin')}"}


def busy(daemon: Daemon, headers: dict[str, str]) -> list[tuple[str, str]]:
    answer = requests.get(
        f"{daemon.url}/v1/resources/intro/freebusy",
        params={"start": DAY.isoformat(), "end": DAY.isoformat()},
        headers=headers,
        timeout=10,
    )
    return [(b["start"][11:16], b["end"][11:16]) for b in answer.json()["busy"]]


def test_a_bad_key_is_refused_clearly(setup: tuple[FakeCalcom, Daemon]) -> None:
    _, daemon = setup
    (daemon.dir / "bad.txt").write_text("cal_not_a_real_key\n")
    refused = daemon.cli(
        "auth", "calcom", "--account", "cal", "--api-key-file", str(daemon.dir / "bad.txt")
    )
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    assert "cal_not_a_real_key" not in refused.stderr


def test_bookings_on_calcom_are_busy_time(
    setup: tuple[FakeCalcom, Daemon], headers: dict[str, str]
) -> None:
    _, daemon = setup
    assert wait_for(lambda: busy(daemon, headers) == [("10:00", "10:30")], 20)
    counted = daemon.metric("calsync_provider_requests_total", provider="calcom", outcome="ok")
    assert counted > 0


def test_a_booking_made_on_calcom_blocks_slots_after_its_webhook(
    setup: tuple[FakeCalcom, Daemon], headers: dict[str, str]
) -> None:
    cal, daemon = setup
    assert wait_for(lambda: busy(daemon, headers) == [("10:00", "10:30")], 20)
    cal.book_directly(101, at("13:00"), name="Walk In")
    assert wait_for(lambda: ("13:00", "13:30") in busy(daemon, headers), 5)
    assert any(d.status == 200 for d in cal.deliveries)


def test_an_unsigned_or_forged_webhook_is_refused(setup: tuple[FakeCalcom, Daemon]) -> None:
    _, daemon = setup
    body = json.dumps({"triggerEvent": "BOOKING_CREATED", "payload": {"uid": "x"}}).encode()
    for signature in (None, "0" * 64, signature_of(body, "wrong-secret"), "no-secret-provided"):
        headers = {"X-Cal-Signature-256": signature} if signature else {}
        answer = requests.post(f"{daemon.url}/push/calcom", data=body, headers=headers, timeout=5)
        assert answer.status_code == 401, signature


def test_bookings_through_calsync_land_on_calcom(
    setup: tuple[FakeCalcom, Daemon], headers: dict[str, str]
) -> None:
    cal, daemon = setup
    body = {
        "resource": "intro",
        "start": at("11:00").isoformat(),
        "attendee": {"name": "Ann Example", "email": "ann@example.com"},
    }
    key = {"Idempotency-Key": str(uuid.uuid4())}
    made = requests.post(f"{daemon.url}/v1/bookings", json=body, headers=headers | key, timeout=30)
    assert made.status_code == 201, made.text
    booking = made.json()
    uid = booking["provider"]["uid"]
    on_calcom = cal.booking(uid)
    assert on_calcom["status"] == "accepted"
    assert on_calcom["metadata"]["calsync_booking_id"] == booking["id"]
    moved = requests.post(
        f"{daemon.url}/v1/bookings/{booking['id']}/reschedule",
        json={"start": at("15:00").isoformat()}, headers=headers, timeout=30,
    )  # fmt: skip
    assert moved.status_code == 200, moved.text
    assert moved.json()["id"] == booking["id"]
    new_uid = moved.json()["provider"]["uid"]
    assert new_uid != uid
    assert cal.booking(uid)["status"] == "cancelled"
    requests.post(f"{daemon.url}/v1/bookings/{booking['id']}/cancel", headers=headers, timeout=30)
    assert cal.booking(new_uid)["status"] == "cancelled"


def test_a_missing_phone_is_a_sentence_the_agent_can_act_on(
    setup: tuple[FakeCalcom, Daemon],
    headers: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    _, daemon = setup
    body = {
        "resource": "intro",
        "start": at("09:00").isoformat(),
        "attendee": {"name": "No Contact"},
    }
    key = {"Idempotency-Key": str(uuid.uuid4())}
    answer = requests.post(
        f"{daemon.url}/v1/bookings", json=body, headers=headers | key, timeout=30
    )
    assert 400 <= answer.status_code < 500, answer.text
    assert "Cal.com" in answer.json()["error"]["message"]


def test_a_reload_that_adds_a_webhook_secret_accepts_its_webhooks(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path, f"sqlite:///{tmp_path}/calsync.db")  # ICS only at first
    body = json.dumps({"triggerEvent": "BOOKING_CREATED", "payload": {"uid": "r1"}}).encode()
    signed = {"X-Cal-Signature-256": signature_of(body, SECRET)}
    daemon.start()
    try:
        refused = requests.post(f"{daemon.url}/push/calcom", data=body, headers=signed, timeout=5)
        assert refused.status_code == 401
        (tmp_path / "calcom.secret").write_text(SECRET)
        with daemon.config.open("a") as config:
            config.write('\n[accounts.cal]\nprovider = "calcom"\n')
            config.write('webhook_secret_file = "calcom.secret"\n')
        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "config reloaded" in daemon.current_log(), 10)

        answer = requests.post(f"{daemon.url}/push/calcom", data=body, headers=signed, timeout=5)

        assert answer.status_code == 200
        assert answer.json() == {"account": "cal"}
    finally:
        assert daemon.stop() == 0, daemon.log
