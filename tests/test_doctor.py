"""``calsync doctor``: every check passes on a sound setup and each failure names its fix."""

from __future__ import annotations

import json
import re
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from google.oauth2.credentials import Credentials

import calsync.cli.doctor  # noqa: F401  (registers the command on `main`)
from calsync.cli import main
from calsync.providers.google import auth as google_auth
from tests.fakes.google_server import FakeGoogle

FEED = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//calsync tests//EN
X-WR-CALNAME:Front desk
BEGIN:VEVENT
UID:one@test
DTSTAMP:20261101T000000Z
DTSTART:20261207T100000Z
DTEND:20261207T110000Z
SUMMARY:Meeting
END:VEVENT
END:VCALENDAR
"""

ICS_ONLY = """
[daemon]
state_dir = "state"
public_url = ""

[accounts.feed]
provider = "ics"
url = "feed.ics"
"""

SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="  # 32 bytes


def write_config(tmp_path: Path, text: str) -> Path:
    (tmp_path / "feed.ics").write_text(FEED)
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def doctor(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(config), "doctor", *args])


def failures(result: Result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("FAIL ")]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def ready(tmp_path: Path) -> Path:
    """An ICS-only config with a local feed, its state dir and a migrated database."""
    config = write_config(tmp_path, ICS_ONLY)
    upgraded = CliRunner().invoke(main, ["--config", str(config), "db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    return config


def test_a_sound_ics_only_setup_passes_every_check(ready: Path) -> None:
    result = doctor(ready)
    assert result.exit_code == 0, result.output
    names = [line.split(":")[0].split()[1] for line in result.output.splitlines()]
    assert names == [
        "config",
        "state_dir",
        "tokens",
        "database",
        "accounts.feed",
        "clock",
        "push",
        "webhooks",
    ]
    assert all(line.startswith("ok   ") for line in result.output.splitlines())
    assert "'Front desk'" in result.output
    assert "skipped: no account talks to a server" in result.output
    assert "polling only" in result.output


def test_a_bad_config_is_one_failed_check_naming_the_key(tmp_path: Path) -> None:
    config = write_config(tmp_path, ICS_ONLY + '\n[resources.x]\ntimezone = "Mars/Olympus"\n')
    result = doctor(config)
    assert result.exit_code == 1
    assert failures(result) == [result.output.splitlines()[0]]
    assert len(result.output.splitlines()) == 2
    assert result.output.startswith("FAIL config: resources.x.timezone:")
    assert "fix: fix resources.x.timezone" in result.output
    assert "Traceback" not in result.output


def test_a_missing_config_file_is_a_failed_check(tmp_path: Path) -> None:
    result = doctor(tmp_path / "nowhere.toml")
    assert result.exit_code == 1
    assert result.output.startswith("FAIL config: ")
    assert "no such file" in result.output


def test_a_state_dir_open_to_others_fails_with_chmod(ready: Path) -> None:
    state = ready.parent / "state"
    state.chmod(0o755)
    result = doctor(ready)
    assert result.exit_code == 1
    assert failures(result) == [f"FAIL state_dir: {state}: mode 0755 lets group or others in"]
    assert f"     fix: chmod 700 {state}" in result.output


def test_a_token_file_readable_by_others_fails_with_chmod(ready: Path) -> None:
    token = ready.parent / "state" / "google-office.json"
    token.write_text("{}")
    token.chmod(0o644)
    result = doctor(ready)
    assert result.exit_code == 1
    assert failures(result) == [
        "FAIL tokens: google-office.json: mode 0644 lets group or others in"
    ]
    assert f"     fix: chmod 600 {token}" in result.output


@pytest.mark.parametrize("content", [b"", b"unrelated"])
def test_an_unmigrated_database_fails_with_db_upgrade(tmp_path: Path, content: bytes) -> None:
    config = write_config(tmp_path, ICS_ONLY)
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    database = state / "calsync.db"
    if content:
        with sqlite3.connect(database) as connection:
            connection.execute("CREATE TABLE unrelated (id INTEGER)")
        connection.close()
    else:
        database.touch()
    result = doctor(config)
    assert result.exit_code == 1
    assert [line.split(":")[0] for line in failures(result)] == ["FAIL database"]
    assert "not at the newest migration" in result.output
    assert "     fix: calsync db upgrade" in result.output


def test_a_missing_state_dir_and_database_fail_without_being_created(tmp_path: Path) -> None:
    config = write_config(tmp_path, ICS_ONLY)
    result = doctor(config)
    assert result.exit_code == 1
    assert [line.split(":")[0] for line in failures(result)] == ["FAIL state_dir", "FAIL database"]
    assert not (tmp_path / "state").exists()


def test_a_google_account_without_a_token_fails_with_the_auth_command(
    tmp_path: Path, ready: Path
) -> None:
    ready.write_text(
        ICS_ONLY + '\n[accounts.office]\nprovider = "google"\nclient_secrets = "client.json"\n'
        f'endpoint = "http://127.0.0.1:{closed_port()}/calendar/v3/"\n'
    )
    result = doctor(ready)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    failed = lines.index(next(line for line in lines if line.startswith("FAIL accounts.office")))
    assert "not connected yet" in lines[failed]
    assert lines[failed + 1] == "     fix: calsync auth google --account office"


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    with FakeGoogle() as fake:
        yield fake


def connect_google(config: Path, google: FakeGoogle, scopes: tuple[str, ...]) -> None:
    """A stored token for [accounts.office] as `calsync auth google` would keep it."""
    config.write_text(
        ICS_ONLY + '\n[accounts.office]\nprovider = "google"\nclient_secrets = "client.json"\n'
        f'endpoint = "{google.api_endpoint}"\ntoken_uri = "{google.token_uri}"\n'
    )
    grant = google.user_credentials(scopes)
    path = google_auth.token_path(config.parent / "state", "office")
    google_auth.save_credentials(path, Credentials(**grant))  # type: ignore[no-untyped-call]


def test_a_connected_google_account_refreshes_and_has_every_scope(
    ready: Path, google: FakeGoogle
) -> None:
    connect_google(ready, google, google_auth.SCOPES)
    result = doctor(ready)
    assert result.exit_code == 0, result.output
    assert "ok   accounts.office: token refreshed, all scopes granted, 1 calendar" in (
        result.output
    )
    assert google.counts["oauth.token"] == 1, google.counts  # the refresh
    assert "ok   clock: the local clock " in result.output


def test_a_google_token_without_a_scope_fails_with_the_auth_command(
    ready: Path, google: FakeGoogle
) -> None:
    connect_google(ready, google, google_auth.SCOPES[:2])
    result = doctor(ready)
    assert result.exit_code == 1
    assert failures(result) == [
        "FAIL accounts.office: Google account 'office' was not granted: see the list of calendars"
    ]
    assert "     fix: calsync auth google --account office" in result.output


class SkewedFeed(BaseHTTPRequestHandler):
    """Serves the feed with a ``Date`` header ten minutes ahead of the real time."""

    def do_GET(self) -> None:
        body = FEED.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/calendar")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def date_time_string(self, timestamp: float | None = None) -> str:
        return formatdate(time.time() + 600, usegmt=True)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def skewed_feed() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), SkewedFeed)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/feed.ics?token=s3cret"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_clock_ten_minutes_off_a_feed_server_fails_with_ntp(
    ready: Path, skewed_feed: str
) -> None:
    ready.write_text(ICS_ONLY.replace('"feed.ics"', f'"{skewed_feed}"'))
    result = doctor(ready)
    assert result.exit_code == 1
    assert [line.split(":")[0] for line in failures(result)] == ["FAIL clock"]
    assert re.search(
        r"FAIL clock: the local clock is (599|600) s behind http://127\.0\.0\.1:", result.output
    )
    assert "timedatectl set-ntp true" in result.output
    assert "ok   accounts.feed" in result.output
    assert "s3cret" not in result.output


def test_an_unreachable_public_url_fails(ready: Path) -> None:
    port = closed_port()
    ready.write_text(ICS_ONLY.replace('""', f'"http://127.0.0.1:{port}"'))
    result = doctor(ready)
    assert result.exit_code == 1
    assert failures(result) == [
        f"FAIL push: GET http://127.0.0.1:{port}/healthz: Connection refused"
    ]
    assert "reverse proxy" in result.output


def test_a_missing_webhook_secret_file_fails(ready: Path) -> None:
    ready.write_text(
        ICS_ONLY + '\n[[webhooks]]\nurl = "https://crm.example.com/hook"\n'
        'secret_file = "webhook.secret"\n'
    )
    result = doctor(ready)
    assert result.exit_code == 1
    secret = ready.parent / "webhook.secret"
    assert [line.split(":")[0] for line in failures(result)] == ["FAIL webhooks[0]"]
    assert f"cannot read {secret}" in result.output
    assert "webhooks[0].secret_file" in result.output
    secret.write_text(SECRET + "\n")
    assert doctor(ready).exit_code == 0


def test_json_lists_every_check_with_its_fix(ready: Path) -> None:
    (ready.parent / "state").chmod(0o750)
    result = doctor(ready, "--json")
    assert result.exit_code == 1
    checks = json.loads(result.output)["checks"]
    assert all(set(check) == {"name", "ok", "detail", "fix"} for check in checks)
    by_name = {check["name"]: check for check in checks}
    assert by_name["state_dir"]["ok"] is False
    assert by_name["state_dir"]["fix"] == f"chmod 700 {ready.parent / 'state'}"
    assert by_name["database"] == {
        "name": "database",
        "ok": True,
        "detail": f"sqlite {ready.parent / 'state' / 'calsync.db'}: reachable, migrations current",
        "fix": None,
    }
