"""Google end to end: `calsync auth google` against FakeGoogle, then `calsync run` syncing,
receiving push notifications and writing bookings into the fake calendar."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import requests

from tests.api.daemon import VIENNA, Daemon, wait_for
from tests.fakes.google_server import FakeGoogle

CONFIG = """
[daemon]
listen = "127.0.0.1:{port}"
state_dir = "state"
database = "{database}"
sync_interval = "5m"
public_url = "{url}"

[accounts.office]
provider = "google"
client_secrets = "client.json"
endpoint = "ENDPOINT"
token_uri = "TOKEN_URI"

[resources.doc]
timezone = "Europe/Vienna"
language = "de"
check = ["office:primary"]
book_into = "office:primary"
duration = "30m"
step = "30m"
max_days_ahead = 30
hours.mon = ["08:00-18:00"]
hours.tue = ["08:00-18:00"]
hours.wed = ["08:00-18:00"]
hours.thu = ["08:00-18:00"]
hours.fri = ["08:00-18:00"]
hours.sat = ["08:00-18:00"]
hours.sun = ["08:00-18:00"]
"""


def day(offset: int) -> str:
    return (datetime.now(VIENNA).date() + timedelta(days=offset)).isoformat()


def at(offset: int, hhmm: str) -> dict[str, str]:
    local = datetime.fromisoformat(f"{day(offset)}T{hhmm}").replace(tzinfo=VIENNA)
    return {"dateTime": local.isoformat(), "timeZone": "Europe/Vienna"}


@pytest.fixture(scope="module")
def google() -> Iterator[FakeGoogle]:
    with FakeGoogle(time_zone="Europe/Vienna") as fake:
        fake.add_calendar(fake.primary_calendar_id, primary=True, time_zone="Europe/Vienna")
        fake.put_event(
            fake.primary_calendar_id,
            {"id": "before01", "start": at(2, "10:00"), "end": at(2, "11:00")},
        )
        yield fake


@pytest.fixture(scope="module")
def daemon(google: FakeGoogle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    directory = tmp_path_factory.mktemp("google")
    (directory / "client.json").write_text(json.dumps(google.client_config()))
    config = CONFIG.replace("ENDPOINT", google.api_endpoint).replace("TOKEN_URI", google.token_uri)
    running = Daemon(directory, f"sqlite:///{directory}/calsync.db", config=config)
    connect(running, google)
    token = json.loads((directory / "state" / "google-office.json").read_text())
    running.start()
    try:
        yield running
    finally:
        assert running.stop() == 0, running.log
    for secret in (token["refresh_token"], token["token"], token["client_secret"]):
        assert secret not in running.log  # no secret or token is ever logged


def connect(daemon: Daemon, google: FakeGoogle) -> None:
    """`calsync auth google`, with the test playing the person in the browser."""
    auth = daemon.spawn("auth", "google", "--account", "office", "--no-browser")
    assert auth.stdout is not None
    url = ""
    for line in auth.stdout:
        if line.startswith("http"):
            url = line.strip()
            break
    assert url.startswith(google.auth_uri), url
    assert "ssh -L" in "".join(auth.stdout.readline() for _ in range(4))
    redirect = google.consent(url)
    assert requests.get(redirect, timeout=10).ok
    output, _ = auth.communicate(timeout=30)
    assert auth.returncode == 0, output
    assert "connected Google account 'office'" in output
    assert "office:primary" in output
    token = daemon.dir / "state" / "google-office.json"
    assert token.stat().st_mode & 0o777 == 0o600


@pytest.fixture(scope="module")
def headers(daemon: Daemon) -> dict[str, str]:
    return {"Authorization": f"Bearer {daemon.key('admin')}"}


def busy(daemon: Daemon, headers: dict[str, str], offset: int) -> list[tuple[str, str]]:
    answer = requests.get(
        f"{daemon.url}/v1/resources/doc/freebusy",
        params={"start": day(offset), "end": day(offset)},
        headers=headers,
        timeout=10,
    )
    return [(b["start"][11:16], b["end"][11:16]) for b in answer.json()["busy"]]


def test_the_initial_sync_fills_the_cache(daemon: Daemon, headers: dict[str, str]) -> None:
    assert wait_for(lambda: busy(daemon, headers, 2) == [("10:00", "11:00")], 20)


def test_calendars_lists_what_the_account_sees(daemon: Daemon) -> None:
    listed = json.loads(daemon.cli("calendars", "--json").stdout)
    assert [c["id"] for c in listed["accounts"]["office"]] == ["primary"]


def test_a_push_notification_shows_a_change_within_two_seconds(
    daemon: Daemon, google: FakeGoogle, headers: dict[str, str]
) -> None:
    assert wait_for(lambda: any(not c.stopped for c in google.channels), 20)
    assert wait_for(lambda: busy(daemon, headers, 2) == [("10:00", "11:00")], 20)
    google.put_event(
        google.primary_calendar_id,
        {"id": "pushed01", "start": at(2, "14:00"), "end": at(2, "15:00")},
    )
    started = time.monotonic()
    assert wait_for(lambda: ("14:00", "15:00") in busy(daemon, headers, 2), 2.0)
    assert time.monotonic() - started < 2.0


def test_a_wrong_channel_token_is_refused(daemon: Daemon, google: FakeGoogle) -> None:
    channel = next(c for c in google.channels if not c.stopped)
    answer = requests.post(
        f"{daemon.url}/push/google",
        headers={
            "X-Goog-Channel-ID": channel.id,
            "X-Goog-Channel-Token": "forged",
            "X-Goog-Resource-State": "exists",
        },
        timeout=5,
    )
    assert answer.status_code == 401


def test_bookings_land_in_google_and_follow_cancel_and_reschedule(
    daemon: Daemon, google: FakeGoogle, headers: dict[str, str]
) -> None:
    body = {"resource": "doc", "start": f"{day(3)}T09:00", "attendee": {"name": "Ann Example"}}
    key = {"Idempotency-Key": str(uuid.uuid4())}
    made = requests.post(f"{daemon.url}/v1/bookings", json=body, headers=headers | key, timeout=30)
    assert made.status_code == 201, made.text
    again = requests.post(f"{daemon.url}/v1/bookings", json=body, headers=headers | key, timeout=30)
    assert again.json()["id"] == made.json()["id"]
    event_id = made.json()["provider"]["event_id"]
    live = [e for e in google.events(google.primary_calendar_id) if e["id"] == event_id]
    assert len(live) == 1
    assert live[0]["summary"] == "Ann Example"
    booking = made.json()["id"]
    moved = requests.post(
        f"{daemon.url}/v1/bookings/{booking}/reschedule", json={"start": f"{day(3)}T11:00"},
        headers=headers, timeout=30,
    )  # fmt: skip
    assert moved.status_code == 200, moved.text
    start = google.event(google.primary_calendar_id, event_id)["start"]["dateTime"]
    assert datetime.fromisoformat(start).astimezone(VIENNA).hour == 11
    requests.post(f"{daemon.url}/v1/bookings/{booking}/cancel", headers=headers, timeout=30)
    assert google.event(google.primary_calendar_id, event_id)["status"] == "cancelled"


def test_an_expired_sync_token_and_a_rate_limit_storm_are_survived(
    daemon: Daemon, google: FakeGoogle, headers: dict[str, str]
) -> None:
    google.invalidate_sync_tokens()
    google.fail_next(403, "rateLimitExceeded", n=3)
    google.put_event(
        google.primary_calendar_id,
        {"id": "storm001", "start": at(4, "09:00"), "end": at(4, "10:00")},
    )
    requests.post(f"{daemon.url}/v1/sync", headers=headers, timeout=10)
    assert wait_for(lambda: ("09:00", "10:00") in busy(daemon, headers, 4), 30)
    counted = "calsync_provider_requests_total"  # every attempt, the refused ones too
    assert daemon.metric(counted, provider="google", outcome="throttled") >= 3
    assert daemon.metric(counted, provider="google", outcome="ok") > 0
    assert daemon.metric("calsync_provider_throttled_total", provider="google") >= 3


def test_a_revoked_grant_shows_in_status_with_the_fix(
    daemon: Daemon, google: FakeGoogle, headers: dict[str, str]
) -> None:
    google.revoke_refresh_tokens()
    google.expire_access_tokens()
    requests.post(f"{daemon.url}/v1/sync", headers=headers, timeout=10)

    def reauth_shown() -> bool:
        status = json.loads(daemon.cli("status", "--json").stdout)
        return any(a["status"] == "reauth_required" for a in status["accounts"])

    assert wait_for(reauth_shown, 20)
    text = daemon.cli("status").stdout
    assert "calsync auth google --account office" in text
    assert "Testing" in text
    assert busy(daemon, headers, 2)  # the last good data keeps serving


def test_auth_names_a_scope_the_user_unticked(daemon: Daemon, google: FakeGoogle) -> None:
    auth = daemon.spawn("auth", "google", "--account", "office", "--no-browser")
    assert auth.stdout is not None
    url = next(line.strip() for line in auth.stdout if line.startswith("http"))
    events_only = ["https://www.googleapis.com/auth/calendar.events"]
    requests.get(google.consent(url, granted_scopes=events_only), timeout=10)
    output, _ = auth.communicate(timeout=30)
    assert auth.returncode == 1
    assert "Google did not grant: see free/busy" in output
    assert "Traceback" not in output


def test_auth_on_a_busy_port_says_so(daemon: Daemon) -> None:
    done = daemon.cli(
        "auth", "google", "--account", "office", "--no-browser", "--port", str(daemon.port)
    )
    assert done.returncode == 1
    assert f"--port: cannot listen on localhost:{daemon.port}" in done.stderr


def test_auth_for_an_unknown_or_other_account(daemon: Daemon) -> None:
    assert "no account 'nope'" in daemon.cli("auth", "google", "--account", "nope").stderr
