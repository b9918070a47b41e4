"""The command line end to end: config -> sync -> lookups, and every user error as one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from calsync.cli import main
from calsync.store import Store

FEED = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//calsync tests//EN
X-WR-TIMEZONE:Europe/Vienna
BEGIN:VEVENT
UID:weekly@test
DTSTAMP:20261101T000000Z
DTSTART;TZID=Europe/Vienna:20261207T100000
DTEND;TZID=Europe/Vienna:20261207T110000
RRULE:FREQ=WEEKLY;BYDAY=MO
SUMMARY:Weekly meeting
END:VEVENT
END:VCALENDAR
"""

CONFIG = """
[daemon]
state_dir = "state"
sync_interval = "10s"
horizon_days = 60

[accounts.feed]
provider = "ics"
url = "feed.ics"

[resources.doc]
timezone = "Europe/Vienna"
language = "de"
check = ["feed:*"]
duration = "30m"
step = "30m"
max_days_ahead = 59
hours.mon = ["09:00-12:00"]
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "feed.ics").write_text(FEED)
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    return path


def cli(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(config), *args])


def test_sync_then_slots_from_the_cache(config: Path) -> None:
    synced = cli(config, "sync")
    assert synced.exit_code == 0, synced.output
    assert "1 calendars synced, 0 failed" in synced.output
    result = cli(config, "slots", "doc", "--from", "2026-12-07", "--to", "2026-12-07", "--json")
    assert result.exit_code == 0, result.output
    starts = [s["start"] for s in json.loads(result.output)["slots"]]
    # 09:00-12:00 on the 30-minute grid, minus the 10:00-11:00 meeting
    assert starts == [
        "2026-12-07T09:00:00+01:00",
        "2026-12-07T09:30:00+01:00",
        "2026-12-07T11:00:00+01:00",
        "2026-12-07T11:30:00+01:00",
    ]


def test_freebusy_text_and_json_agree(config: Path) -> None:
    cli(config, "sync")
    args = ("freebusy", "doc", "--from", "2026-12-14T00:00", "--to", "2026-12-15T00:00")
    text = cli(config, *args)
    assert "Mon 2026-12-14 10:00 - 11:00" in text.output
    data = json.loads(cli(config, *args, "--json").output)
    assert data["busy"] == [
        {"start": "2026-12-14T10:00:00+01:00", "end": "2026-12-14T11:00:00+01:00"}
    ]
    assert data["stale"] is False
    assert data["timezone"] == "Europe/Vienna"


def test_tz_option_shows_another_zone(config: Path) -> None:
    cli(config, "sync")
    args = ("freebusy", "doc", "--from", "2026-12-14", "--to", "2026-12-14", "--json")
    data = json.loads(cli(config, *args, "--tz", "America/New_York").output)
    assert data["busy"][0]["start"] == "2026-12-14T04:00:00-05:00"


def test_lookups_before_any_sync_say_they_are_stale(config: Path) -> None:
    result = cli(config, "slots", "doc", "--from", "2026-12-07", "--to", "2026-12-07", "--json")
    data = json.loads(result.output)
    assert data["as_of"] is None
    assert data["stale"] is True


def test_status_lists_calendars(config: Path) -> None:
    cli(config, "sync")
    data = json.loads(cli(config, "status", "--json").output)
    (calendar,) = data["calendars"]
    assert calendar["calendar"] == "feed:primary"
    assert calendar["events"] > 0
    assert calendar["last_error"] is None


def test_status_leaves_out_calendars_no_longer_checked(config: Path) -> None:
    cli(config, "sync")
    text = config.read_text().replace('check = ["feed:*"]', "check = []")
    config.write_text(text)

    data = json.loads(cli(config, "status", "--json").output)

    assert data["calendars"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("slots", "nope", "--from", "2026-12-07", "--to", "2026-12-08"),
            "unknown resource 'nope' (configured: doc)",
        ),
        (
            ("slots", "doc", "--from", "2026-12-08", "--to", "2026-12-07T12:00"),
            "--to (2026-12-07T12:00) must be after --from (2026-12-08)",
        ),
        (
            ("freebusy", "doc", "--from", "2026-12-32", "--to", "2026-12-08"),
            "--from: '2026-12-32' is not a date or time",
        ),
        (
            ("slots", "doc", "--from", "2026-12-07", "--to", "2026-12-08", "--tz", "Mars/Base"),
            "--tz: unknown time zone 'Mars/Base'",
        ),
        (
            ("slots", "doc", "--from", "2026-01-01", "--to", "2026-06-01"),
            "ask for at most 62 days at a time",
        ),
        (("sync", "--account", "nobody"), "--account: unknown account 'nobody'"),
    ],
)
def test_bad_arguments_are_one_clear_line(
    config: Path, args: tuple[str, ...], message: str
) -> None:
    result = cli(config, *args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_bad_config_names_every_key(config: Path) -> None:
    config.write_text(
        CONFIG.replace('sync_interval = "10s"', 'sync_interval = "10m"').replace(
            'hours.mon = ["09:00-12:00"]', 'hours.mon = ["09:00-12:00", "13:00-12:00"]'
        )
    )
    result = cli(config, "status")
    assert result.exit_code == 1
    assert 'daemon.sync_interval: "10m" is above the maximum of 5m' in result.output
    assert 'resources.doc.hours.mon[1]: "13:00-12:00" ends before it starts' in result.output


def test_missing_config_file(tmp_path: Path) -> None:
    result = cli(tmp_path / "nope.toml", "status")
    assert result.exit_code == 1
    assert "nope.toml: no such file" in result.output


def test_malformed_feed_is_a_sync_error_and_keeps_the_last_good_data(config: Path) -> None:
    cli(config, "sync")
    (config.parent / "feed.ics").write_text("this is not a calendar\n")
    result = cli(config, "sync")
    assert result.exit_code == 1
    assert "feed:primary:" in result.output
    calendar = json.loads(cli(config, "status", "--json").output)["calendars"][0]
    assert calendar["failures"] == 1
    assert calendar["last_error"]
    assert calendar["events"] > 0


def test_unreadable_feed_names_the_file(config: Path) -> None:
    (config.parent / "feed.ics").unlink()
    result = cli(config, "sync")
    assert result.exit_code == 1
    assert "feed.ics" in result.output


def test_db_upgrade_works_before_the_daemon_ever_ran(config: Path) -> None:
    result = cli(config, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "newest schema (sqlite)" in result.output
    assert (config.parent / "state" / "calsync.db").exists()
    assert (config.parent / "state").stat().st_mode & 0o777 == 0o700


def test_the_daemon_syncs_on_start_and_stops_cleanly_on_sigterm(config: Path) -> None:
    daemon = subprocess.Popen(
        [sys.executable, "-m", "calsync.cli", "--config", str(config), "run"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 30
        synced = False
        while time.monotonic() < deadline and not synced:
            time.sleep(0.3)
            status = cli(config, "status", "--json")
            if status.exit_code == 0:
                calendars = json.loads(status.output)["calendars"]
                synced = bool(calendars) and calendars[0]["last_success"] is not None
        assert synced, "the daemon did not sync within 30 s"
        daemon.send_signal(signal.SIGTERM)
        _, log = daemon.communicate(timeout=15)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.communicate()
    assert daemon.returncode == 0
    assert "calsync running" in log
    assert "sync calendar=feed:primary full=True" in log
    assert "scheduler stopped" in log


def test_book_and_cancel_through_the_booking_service(config: Path) -> None:
    cli(config, "sync")
    booked = cli(
        config, "book", "doc", "--start", "2026-12-14T09:00", "--name", "Ann",
        "--phone", "0664 1234567", "--json", "--idempotency-key", "cli-1",
    )  # fmt: skip
    assert booked.exit_code == 0, booked.output
    booking = json.loads(booked.output)
    assert (booking["status"], booking["attendee"]["phone"]) == ("confirmed", "+436641234567")
    again = cli(config, "book", "doc", "--start", "2026-12-14T09:00", "--name", "Bob")
    assert again.exit_code == 1
    assert "not available then: overlaps another appointment" in again.output
    assert "free nearby: Mon 2026-12-14 09:30" in again.output
    cancelled = cli(config, "cancel", booking["id"], "--reason", "test")
    assert cancelled.exit_code == 0
    assert cancelled.output.startswith(f"cancelled {booking['id']}")


def test_book_refuses_the_meeting_and_bad_phones(config: Path) -> None:
    cli(config, "sync")
    busy = cli(config, "book", "doc", "--start", "2026-12-14T10:00", "--name", "Ann")
    assert "overlaps busy time" in busy.output
    phone = cli(config, "book", "doc", "--start", "2026-12-14T09:00", "--name", "A", "--phone", "1")
    assert "attendee.phone: '1' is not a valid phone number for AT" in phone.output


def test_apikeys_are_shown_once_and_listed_by_prefix(config: Path) -> None:
    created = CliRunner().invoke(
        main, ["--config", str(config), "apikey", "create", "--name", "vapi", "--scope", "write"]
    )
    token = created.stdout.strip()
    assert token.startswith("csk_")
    listed = json.loads(cli(config, "apikey", "list", "--json").output)["api_keys"]
    assert [(k["name"], k["scope"], k["revoked_at"]) for k in listed] == [("vapi", "write", None)]
    assert token not in cli(config, "apikey", "list").output
    prefix = listed[0]["prefix"]
    assert cli(config, "apikey", "revoke", prefix).exit_code == 0
    assert json.loads(cli(config, "apikey", "list", "--json").output)["api_keys"][0]["revoked_at"]
    missing = cli(config, "apikey", "revoke", "zzzzzzzz")
    assert missing.exit_code == 1
    assert "no API key" in missing.output


def test_webhooks_test_list_and_replay(config: Path) -> None:
    import base64
    import secrets
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from standardwebhooks import Webhook

    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    received: list[dict[str, object]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(Webhook(secret).verify(body, dict(self.headers.items())))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    (config.parent / "hook.secret").write_text(secret + "\n")
    config.write_text(CONFIG + f'\n[[webhooks]]\nurl = "{url}"\nsecret_file = "hook.secret"\n')
    try:
        tested = cli(config, "webhooks", "test", "127.0.0.1")
        assert tested.exit_code == 0, tested.output
        assert f"{url} answered 204" in tested.output
        assert received[0]["type"] == "webhook.test"
        cli(config, "sync")
        cli(config, "book", "doc", "--start", "2026-12-14T09:00", "--name", "Ann")
        (hook,) = json.loads(cli(config, "webhooks", "list", "--json").output)["webhooks"]
        assert (hook["url"], hook["backlog"]) == (url, 1)  # no daemon runs here to send it
        assert f"webhook {url}  active  backlog 1" in cli(config, "status").output
        store = Store.open(f"sqlite:///{config.parent}/state/calsync.db")
        store.outbox.disable(url, "the endpoint answered 410 Gone", datetime.now(UTC))
        store.close()
        assert "DISABLED" in cli(config, "status").output
        enabled = cli(config, "webhooks", "enable", url)
        assert enabled.exit_code == 0, enabled.output
        assert f"webhook {url}  active" in cli(config, "status").output
        replayed = cli(config, "webhooks", "replay", "--since", "2020-01-01")
        assert "queued 1 deliveries" in replayed.output
        missing = cli(config, "webhooks", "test", "nowhere.example")
        assert missing.exit_code == 1
        assert "no webhook 'nowhere.example'" in missing.output
    finally:
        server.shutdown()
        server.server_close()


def test_json_logs_are_one_object_per_line(config: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "calsync.cli", "--config", str(config),
         "--log-format", "json", "--log-level", "info", "sync"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert any("sync calendar=feed:primary" in entry["message"] for entry in lines)
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in lines)
