"""calsync.config: config.toml -> Settings, and every problem it reports, by key path."""

from __future__ import annotations

import textwrap
import tomllib
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from calsync import config
from calsync.config import (
    AccountSettings,
    Settings,
    WebhookSettings,
    find_config,
    format_duration,
    load_config,
    parse_config,
    parse_duration,
)
from calsync.errors import ConfigError
from calsync.model import CalendarRef, WallRange

BASE = Path("/srv/calsync")  # base_dir for parse_config; never touched on disk

ACCOUNTS = {
    "office": {"provider": "google", "client_secrets": "google.json"},
    "feed": {"provider": "ics", "url": "feed.ics"},
}

FULL_CONFIG = """\
[daemon]
listen = "0.0.0.0:9000"
database = "sqlite:///data/calsync.db"
state_dir = ".calsync"
sync_interval = "2m"
horizon_days = 120
public_url = "https://calsync.example.com/"
hold_ttl = "10m"

[accounts.office]
provider = "google"
client_secrets = "secrets/google.json"
token_uri = "http://127.0.0.1:9999/token"

[accounts.work]
provider = "outlook"
client_id = "11111111-2222-3333-4444-555555555555"
tenant = "contoso.onmicrosoft.com"

[accounts.clinic]
provider = "calcom"
webhook_secret_file = "/etc/calsync/calcom.secret"

[accounts.holidays]
provider = "ics"
url = "examples/vienna.ics"
timezone = "Europe/Vienna"

[resources.dr-smith]
name = "Dr. Smith"
timezone = "Europe/Vienna"
language = "de"
check = ["office:primary", "holidays:*"]
book_into = "office:primary"
duration = "45m"
step = "15m"
buffer_before = "5m"
buffer_after = "10m"
min_notice = "2h"
max_days_ahead = 100
max_per_day = 8
tentative_busy = false
hours.mon = ["13:00-17:00", "09:00-12:00"]
hours.fri = ["08:30-24:00"]
overrides = [
  { date = 2026-12-24, hours = [] },
  { date = "2026-12-31", hours = ["09:00-12:00"] },
]

[[webhooks]]
url = "https://crm.example.com/hooks/calsync"
secret_file = "webhook.secret"

[[webhooks]]
url = "https://ops.example.com/hooks"
secret_file = "~/ops.secret"
events = ["sync.failed", "account.reauth_required"]
"""


def parse(data: dict[str, Any], base: Path = BASE) -> Settings:
    return parse_config(data, base)


def problems_of(data: dict[str, Any], base: Path = BASE) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, base)
    return caught.value.problems


def resource_table(**keys: Any) -> dict[str, Any]:
    table = {"timezone": "Europe/Vienna", "hours": {"mon": ["09:00-17:00"]}}
    table.update(keys)
    return {"accounts": ACCOUNTS, "resources": {"x": table}}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# --- a valid config -------------------------------------------------------------------


def test_full_config_loads_into_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/admin")
    settings = load_config(write(tmp_path / "config.toml", FULL_CONFIG))

    assert settings.path == tmp_path / "config.toml"
    daemon = settings.daemon
    assert (daemon.listen_host, daemon.listen_port) == ("0.0.0.0", 9000)
    assert daemon.database == f"sqlite:///{tmp_path}/data/calsync.db"
    assert daemon.state_dir == tmp_path / ".calsync"
    assert daemon.sync_interval == timedelta(minutes=2)
    assert daemon.horizon_days == 120
    assert daemon.public_url == "https://calsync.example.com"
    assert daemon.hold_ttl == timedelta(minutes=10)

    assert dict(settings.accounts) == {
        "office": AccountSettings(
            name="office",
            provider="google",
            client_secrets=tmp_path / "secrets/google.json",
            token_uri="http://127.0.0.1:9999/token",
        ),
        "work": AccountSettings(
            name="work",
            provider="outlook",
            client_id="11111111-2222-3333-4444-555555555555",
            tenant="contoso.onmicrosoft.com",
        ),
        "clinic": AccountSettings(
            name="clinic",
            provider="calcom",
            webhook_secret_file=Path("/etc/calsync/calcom.secret"),
        ),
        "holidays": AccountSettings(
            name="holidays",
            provider="ics",
            url=str(tmp_path / "examples/vienna.ics"),
            timezone="Europe/Vienna",
        ),
    }
    assert settings.webhooks == (
        WebhookSettings(
            url="https://crm.example.com/hooks/calsync",
            secret_file=tmp_path / "webhook.secret",
            events=("appointment.created", "appointment.cancelled", "appointment.rescheduled"),
        ),
        WebhookSettings(
            url="https://ops.example.com/hooks",
            secret_file=Path("/home/admin/ops.secret"),
            events=("sync.failed", "account.reauth_required"),
        ),
    )


def test_full_config_resource_and_rules(tmp_path: Path) -> None:
    resource = load_config(write(tmp_path / "config.toml", FULL_CONFIG)).resources["dr-smith"]

    assert (resource.id, resource.name, resource.language) == ("dr-smith", "Dr. Smith", "de")
    assert resource.check == (CalendarRef("office", "primary"), CalendarRef("holidays", "*"))
    assert resource.book_into == CalendarRef("office", "primary")
    assert resource.tentative_busy is False
    rules = resource.rules
    assert rules.timezone == ZoneInfo("Europe/Vienna")
    assert rules.weekly == (
        (WallRange(9 * 60, 12 * 60), WallRange(13 * 60, 17 * 60)),  # sorted by start
        (),
        (),
        (),
        (WallRange(8 * 60 + 30, 24 * 60),),
        (),
        (),
    )
    assert rules.overrides == {
        date(2026, 12, 24): (),
        date(2026, 12, 31): (WallRange(9 * 60, 12 * 60),),
    }
    assert rules.duration == timedelta(minutes=45)
    assert rules.step == timedelta(minutes=15)
    assert rules.buffer_before == timedelta(minutes=5)
    assert rules.buffer_after == timedelta(minutes=10)
    assert rules.min_notice == timedelta(hours=2)
    assert (rules.max_days_ahead, rules.max_per_day) == (100, 8)


def test_defaults() -> None:
    room_table = {"timezone": "UTC", "hours": {"sun": ["10:00-11:00"]}}
    settings = parse({"resources": {"room": room_table}})

    assert settings.path is None
    assert settings.daemon == config.DaemonSettings(
        listen_host="127.0.0.1",
        listen_port=8765,
        database="sqlite:////var/lib/calsync/calsync.db",
        state_dir=Path("/var/lib/calsync"),
        sync_interval=timedelta(minutes=5),
        horizon_days=90,
        public_url="",
        hold_ttl=timedelta(minutes=5),
    )
    assert dict(settings.accounts) == {}
    assert settings.webhooks == ()
    room = settings.resources["room"]
    assert (room.name, room.language, room.check, room.book_into) == ("room", "en", (), None)
    assert room.tentative_busy is True
    rules = room.rules
    assert (rules.duration, rules.step) == (timedelta(minutes=30), timedelta(minutes=30))
    assert (rules.buffer_before, rules.buffer_after, rules.min_notice) == (timedelta(0),) * 3
    assert (rules.max_days_ahead, rules.max_per_day) == (60, None)
    assert rules.overrides == {}


def test_step_defaults_to_duration_and_max_days_ahead_to_the_horizon() -> None:
    data = resource_table(duration="1h")
    data["daemon"] = {"horizon_days": 14}
    rules = parse(data).resources["x"].rules
    assert rules.step == timedelta(hours=1)
    assert rules.max_days_ahead == 14


def test_settings_are_frozen() -> None:
    settings = parse(resource_table())
    with pytest.raises(AttributeError):
        settings.daemon.listen_port = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.resources["y"] = settings.resources["x"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("language", "stored"), [("de", "de"), ("de-at", "de-AT"), ("de_AT", "de-AT"), ("EN", "en")]
)
def test_language_is_stored_as_a_bcp47_tag(language: str, stored: str) -> None:
    assert parse(resource_table(language=language)).resources["x"].language == stored


def test_ipv6_listen_address() -> None:
    daemon = parse({"daemon": {"listen": "[::1]:8765"}}).daemon
    assert (daemon.listen_host, daemon.listen_port) == ("::1", 8765)


@pytest.mark.parametrize(
    ("public_url", "stored"),
    [
        ("https://calsync.example.com/", "https://calsync.example.com"),
        ("https://example.com/calsync//", "https://example.com/calsync"),
        ("http://localhost:8765", "http://localhost:8765"),
        ("http://127.0.0.1:8765/", "http://127.0.0.1:8765"),
        ("", ""),
    ],
)
def test_public_url(public_url: str, stored: str) -> None:
    assert parse({"daemon": {"public_url": public_url}}).daemon.public_url == stored


# --- paths and URLs -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("database", "stored"),
    [
        (
            "postgresql://calsync:pw@db:5432/calsync",
            "postgresql+psycopg://calsync:pw@db:5432/calsync",
        ),
        ("postgres://db/calsync", "postgresql+psycopg://db/calsync"),
        ("postgresql+psycopg://db/calsync", "postgresql+psycopg://db/calsync"),
        ("sqlite:///calsync.db", "sqlite:////srv/calsync/calsync.db"),
        ("sqlite:///../data/c.db?timeout=5", "sqlite:////srv/data/c.db?timeout=5"),
        ("sqlite:////var/lib/calsync/calsync.db", "sqlite:////var/lib/calsync/calsync.db"),
        ("sqlite://", "sqlite://"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
    ],
)
def test_database_urls(database: str, stored: str) -> None:
    assert parse({"daemon": {"database": database}}).daemon.database == stored


def test_default_database_lives_in_state_dir() -> None:
    daemon = parse({"daemon": {"state_dir": "state"}}).daemon
    assert daemon.state_dir == Path("/srv/calsync/state")
    assert daemon.database == "sqlite:////srv/calsync/state/calsync.db"


def test_relative_paths_resolve_against_base_dir_and_tilde_expands(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOME", "/home/admin")
    accounts = {
        "g": {"provider": "google", "client_secrets": "../secrets/g.json"},
        "cal": {"provider": "calcom", "webhook_secret_file": "~/calcom.secret"},
        "local": {"provider": "ics", "url": "examples/vienna.ics"},
        "abs": {"provider": "ics", "url": "/data/feed.ics"},
        "web": {"provider": "ics", "url": "https://example.com/feed.ics"},
        "sub": {"provider": "ics", "url": "webcal://example.com/feed.ics"},
    }
    settings = parse({"daemon": {"state_dir": "~/state"}, "accounts": accounts})
    assert settings.daemon.state_dir == Path("/home/admin/state")
    got = settings.accounts
    assert got["g"].client_secrets == Path("/srv/secrets/g.json")
    assert got["cal"].webhook_secret_file == Path("/home/admin/calcom.secret")
    assert got["local"].url == "/srv/calsync/examples/vienna.ics"
    assert got["abs"].url == "/data/feed.ics"
    assert got["web"].url == "https://example.com/feed.ics"
    assert got["sub"].url == "https://example.com/feed.ics"


def test_relative_base_dir_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = parse({"daemon": {"state_dir": "state"}}, base=Path("conf"))
    assert settings.daemon.state_dir == tmp_path / "conf/state"


# --- durations ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5m", timedelta(minutes=5)),
        ("2h", timedelta(hours=2)),
        ("1h30m", timedelta(minutes=90)),
        ("90s", timedelta(seconds=90)),
        ("1d", timedelta(days=1)),
        ("0m", timedelta(0)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
    ],
)
def test_parse_duration(text: str, value: timedelta) -> None:
    assert parse_duration(text) == value


@pytest.mark.parametrize("text", ["", "30", "m", "1.5h", "-5m", "5 m", "5M", "30m1h", "1h 30m"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match='is not a duration; write it like "30m" or "1h30m"'):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(minutes=90), "1h30m"),
        (timedelta(0), "0m"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(days=1, minutes=5), "1d5m"),
        (timedelta(hours=2), "2h"),
    ],
)
def test_format_duration(value: timedelta, text: str) -> None:
    assert format_duration(value) == text
    assert parse_duration(text) == value


def test_format_duration_refuses_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        format_duration(timedelta(minutes=-1))


# --- problems, one key at a time ---------------------------------------------------------


@pytest.mark.parametrize(
    ("daemon", "problem"),
    [
        ({"listn": "x"}, "daemon.listn: unknown key (did you mean listen?)"),
        (
            {"listen": "localhost"},
            'daemon.listen: "localhost" is not host:port like "127.0.0.1:8765"',
        ),
        (
            {"listen": "::1:8765"},
            'daemon.listen: "::1:8765" is not host:port like "127.0.0.1:8765"; '
            "put an IPv6 address in brackets",
        ),
        ({"listen": "[zz]:80"}, 'daemon.listen: "zz" is not an IPv6 address'),
        ({"listen": "0.0.0.0:70000"}, "daemon.listen: port 70000 is out of range; use 1 to 65535"),
        ({"listen": 8765}, 'daemon.listen: expected a string like "127.0.0.1:8765", got 8765'),
        (
            {"database": "mysql://calsync:hunter2@db/calsync"},
            'daemon.database: "mysql://" databases are not supported; '
            'use "sqlite:///PATH" or "postgresql+psycopg://USER@HOST/DBNAME"',
        ),
        (
            {"database": "calsync.db"},
            "daemon.database: not a database URL; "
            'use "sqlite:///PATH" or "postgresql+psycopg://USER@HOST/DBNAME"',
        ),
        (
            {"database": "sqlite://host/calsync.db"},
            'daemon.database: "sqlite://host/calsync.db" names no database file; write it like '
            '"sqlite:///calsync.db" (relative to this file) or "sqlite:////var/lib/calsync/calsync.db"',
        ),
        (
            {"sync_interval": "10m"},
            'daemon.sync_interval: "10m" is above the maximum of 5m '
            "(calsync keeps every cache at most 5 minutes old)",
        ),
        (
            {"sync_interval": "5s"},
            'daemon.sync_interval: "5s" is below the minimum of 10s '
            "(shorter intervals run into the providers' rate limits)",
        ),
        (
            {"sync_interval": 5},
            'daemon.sync_interval: 5 is not a duration; write it like "30m" or "1h30m"',
        ),
        ({"horizon_days": 0}, "daemon.horizon_days: 0 is out of range; use 1 to 730"),
        ({"horizon_days": 1000}, "daemon.horizon_days: 1000 is out of range; use 1 to 730"),
        ({"horizon_days": "90"}, 'daemon.horizon_days: expected a whole number, got "90"'),
        ({"horizon_days": True}, "daemon.horizon_days: expected a whole number, got true"),
        (
            {"public_url": "http://calsync.example.com"},
            'daemon.public_url: "http://calsync.example.com" is not an https:// URL (providers '
            'push only to https; http:// is allowed for localhost only); leave it "" to poll only',
        ),
        ({"hold_ttl": "2h"}, 'daemon.hold_ttl: "2h" is above the maximum of 1h'),
        ({"hold_ttl": "10s"}, 'daemon.hold_ttl: "10s" is below the minimum of 30s'),
        ({"state_dir": ""}, "daemon.state_dir: is empty; give a file path"),
    ],
)
def test_daemon_problems(daemon: dict[str, Any], problem: str) -> None:
    assert problems_of({"daemon": daemon}) == [problem]


def test_database_problem_never_shows_the_password() -> None:
    (problem,) = problems_of({"daemon": {"database": "mysql://calsync:hunter2@db/calsync"}})
    assert "hunter2" not in problem


@pytest.mark.parametrize(
    ("accounts", "problems"),
    [
        (
            {"office": {"client_secrets": "g.json"}},
            ["accounts.office.provider: missing; use one of google, outlook, calcom, ics"],
        ),
        (
            {"office": {"provider": "gmail"}},
            [
                'accounts.office.provider: unknown provider "gmail"; '
                "use one of google, outlook, calcom, ics"
            ],
        ),
        (
            {"office": {"provider": "google", "client_secrets": "g.json", "url": "x.ics"}},
            [
                "accounts.office.url: not a google key; "
                "google accounts take client_secrets, endpoint, token_uri, send_updates"
            ],
        ),
        (
            {"office": {"provider": "google", "client_secret": "g.json"}},
            [
                "accounts.office.client_secret: unknown key (did you mean client_secrets?)",
                "accounts.office.client_secrets: missing; "
                "give the OAuth client JSON file downloaded from Google Cloud Console",
            ],
        ),
        (
            {"work": {"provider": "outlook", "tenant": "common"}},
            [
                "accounts.work.client_id: missing; give the application (client) id "
                "of your Microsoft Entra app registration"
            ],
        ),
        (
            {"work": {"provider": "outlook", "client_id": ""}},
            ["accounts.work.client_id: is empty"],
        ),
        (
            {"feed": {"provider": "ics"}},
            [
                "accounts.feed.url: missing; give the calendar's http(s) URL or a file path, "
                'like "examples/vienna.ics"'
            ],
        ),
        (
            {"feed": {"provider": "ics", "url": "ftp://example.com/x.ics"}},
            [
                'accounts.feed.url: "ftp://example.com/x.ics" is not an http(s) URL '
                'like "https://example.com/path"'
            ],
        ),
        (
            {"feed": {"provider": "ics", "url": "x.ics", "timezone": "Vienna"}},
            [
                'accounts.feed.timezone: unknown time zone "Vienna" '
                '(use an IANA name like "Europe/Vienna")'
            ],
        ),
        (
            {"cal": {"provider": "calcom", "endpoint": "localhost:8080"}},
            [
                'accounts.cal.endpoint: "localhost:8080" is not an http(s) URL '
                'like "https://example.com/path"'
            ],
        ),
        (
            {"cal": {"provider": "calcom", "client_id": "x"}},
            [
                "accounts.cal.client_id: not a calcom key; "
                "calcom accounts take webhook_secret_file, endpoint, include_pending, honour_slots"
            ],
        ),
        (
            {"Office": {"provider": "calcom"}},
            [
                'accounts.Office: account names use lowercase letters, digits, "-" and "_", '
                'starting with a letter or digit (like "office")'
            ],
        ),
        (
            {"office": "google"},
            ['accounts.office: expected a table like [accounts.office], got "google"'],
        ),
    ],
)
def test_account_problems(accounts: dict[str, Any], problems: list[str]) -> None:
    assert problems_of({"accounts": accounts}) == problems


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        (
            {"timezone": "Europe/Vienn"},
            'resources.x.timezone: unknown time zone "Europe/Vienn" '
            '(use an IANA name like "Europe/Vienna")',
        ),
        (
            {"timezone": "Europe"},
            'resources.x.timezone: unknown time zone "Europe" '
            '(use an IANA name like "Europe/Rome")',
        ),
        (
            {"language": "xx"},
            'resources.x.language: unknown language "xx" (use a code like "en", "de" or "de-AT")',
        ),
        ({"name": ""}, "resources.x.name: is empty"),
        (
            {"check": ["office"]},
            'resources.x.check[0]: "office" is not "account:calendar"; '
            'write it like "office:primary" or "office:*"',
        ),
        (
            {"check": ["office:primary", "home:primary"]},
            'resources.x.check[1]: "home:primary": account "home" is not configured; '
            "configured accounts: office, feed",
        ),
        (
            {"check": [5]},
            'resources.x.check[0]: expected a string like "office:primary", got 5',
        ),
        (
            {"check": "office:primary"},
            'resources.x.check: expected a list like ["office:primary"], got "office:primary"',
        ),
        (
            {"book_into": "feed:main"},
            "resources.x.book_into: ics calendars are read-only; "
            "remove book_into to keep bookings in calsync's own store",
        ),
        (
            {"book_into": "office:*"},
            'resources.x.book_into: "office:*" names no single calendar; '
            'write it like "office:primary"',
        ),
        (
            {"book_into": "home:primary"},
            'resources.x.book_into: "home:primary": account "home" is not configured; '
            "configured accounts: office, feed",
        ),
        (
            {"duration": 30},
            'resources.x.duration: 30 is not a duration; write it like "30m" or "1h30m"',
        ),
        (
            {"duration": "30"},
            'resources.x.duration: "30" is not a duration; write it like "30m" or "1h30m"',
        ),
        (
            {"duration": "0m"},
            'resources.x.duration: "0m" is too short; it must be longer than 0m',
        ),
        ({"step": "0s"}, 'resources.x.step: "0s" is too short; it must be longer than 0m'),
        (
            {"buffer_after": "-5m"},
            'resources.x.buffer_after: "-5m" is not a duration; write it like "30m" or "1h30m"',
        ),
        (
            {"min_notice": "2 hours"},
            'resources.x.min_notice: "2 hours" is not a duration; write it like "30m" or "1h30m"',
        ),
        (
            {"max_days_ahead": 120},
            "resources.x.max_days_ahead: 120 is beyond daemon.horizon_days (90), the days "
            "calsync caches; lower max_days_ahead or raise daemon.horizon_days",
        ),
        ({"max_days_ahead": -1}, "resources.x.max_days_ahead: -1 is too small; use at least 0"),
        ({"max_per_day": 0}, "resources.x.max_per_day: 0 is too small; use at least 1"),
        ({"max_per_day": "8"}, 'resources.x.max_per_day: expected a whole number, got "8"'),
        (
            {"tentative_busy": "yes"},
            'resources.x.tentative_busy: expected true or false, got "yes"',
        ),
        (
            {"buffer_afer": "5m"},
            "resources.x.buffer_afer: unknown key (did you mean buffer_after?)",
        ),
    ],
)
def test_resource_problems(keys: dict[str, Any], problem: str) -> None:
    assert problems_of(resource_table(**keys)) == [problem]


def test_a_wrong_horizon_is_reported_once() -> None:
    data = resource_table(max_days_ahead=120)
    data["daemon"] = {"horizon_days": 1000}
    assert problems_of(data) == ["daemon.horizon_days: 1000 is out of range; use 1 to 730"]


def test_resource_timezone_is_required() -> None:
    data = {"resources": {"x": {"hours": {"mon": ["09:00-17:00"]}}}}
    assert problems_of(data) == [
        'resources.x.timezone: missing; give an IANA time zone like "Europe/Vienna"'
    ]


def test_references_without_any_account() -> None:
    data = {"resources": {"x": {"timezone": "UTC", "hours": {"mon": ["09:00-17:00"]}}}}
    data["resources"]["x"]["check"] = ["office:primary"]
    assert problems_of(data) == [
        'resources.x.check[0]: "office:primary": account "office" is not configured; '
        "add an [accounts.office] table"
    ]


def test_resource_ids_must_be_lowercase() -> None:
    data = resource_table()
    data["resources"] = {"Dr Smith": data["resources"]["x"]}
    assert problems_of(data) == [
        'resources."Dr Smith": resource ids use lowercase letters, digits, "-" and "_", '
        'starting with a letter or digit (like "dr-smith")'
    ]


@pytest.mark.parametrize(
    ("hours", "problem"),
    [
        (["13:00-12:00"], 'resources.x.hours.mon[0]: "13:00-12:00" ends before it starts'),
        (
            ["12:00-12:00"],
            'resources.x.hours.mon[0]: "12:00-12:00" is empty: it ends when it starts',
        ),
        (
            ["09:00-12:00", "13:00-14:00", "11:00-13:30"],
            'resources.x.hours.mon[2]: "11:00-13:30" overlaps "09:00-12:00" at [0]',
        ),
        (
            ["9-5"],
            'resources.x.hours.mon[0]: "9-5" is not a time range; write it like "09:00-17:00"',
        ),
        (["25:00-26:00"], 'resources.x.hours.mon[0]: "25:00-26:00" has a time outside 00:00-24:00'),
        (["09:60-10:00"], 'resources.x.hours.mon[0]: "09:60-10:00" has a time outside 00:00-24:00'),
        ([900], 'resources.x.hours.mon[0]: expected a string like "09:00-17:00", got 900'),
        (
            "09:00-17:00",
            'resources.x.hours.mon: expected a list like ["09:00-12:00", "13:00-17:00"], '
            'got "09:00-17:00"',
        ),
    ],
)
def test_hours_problems(hours: Any, problem: str) -> None:
    data = resource_table(hours={"mon": hours, "tue": ["09:00-17:00"]})
    assert problems_of(data) == [problem]


def test_hours_accept_24_00_and_touching_ranges() -> None:
    data = resource_table(hours={"sat": ["00:00-12:00", "12:00-24:00"], "sun": ["9:00 - 10:00"]})
    weekly = parse(data).resources["x"].rules.weekly
    assert weekly[5] == (WallRange(0, 720), WallRange(720, 1440))
    assert weekly[6] == (WallRange(540, 600),)


def test_unknown_weekday_gets_a_hint() -> None:
    data = resource_table(hours={"monday": ["09:00-17:00"], "tue": ["09:00-17:00"]})
    assert problems_of(data) == ["resources.x.hours.monday: unknown key (did you mean mon?)"]


def test_a_resource_without_working_hours_is_a_problem() -> None:
    data = resource_table(hours={}, overrides=[{"date": "2026-12-24", "hours": []}])
    assert problems_of(data) == [
        "resources.x.hours: no working hours, so it could never be booked; "
        'add e.g. hours.mon = ["09:00-17:00"]'
    ]


def test_overrides_alone_can_give_working_hours() -> None:
    data = resource_table(hours={}, overrides=[{"date": "2026-12-27", "hours": ["10:00-14:00"]}])
    rules = parse(data).resources["x"].rules
    assert rules.weekly == ((),) * 7
    assert rules.overrides == {date(2026, 12, 27): (WallRange(600, 840),)}


def test_override_problems() -> None:
    overrides = [
        {"date": "2026-12-24", "hours": []},
        {"date": date(2026, 12, 24), "hours": ["09:00-10:00"]},
        {"date": "2026-13-01", "hours": []},
        {"date": "24.12.2026", "hours": []},
        {"hours": []},
        {"date": "2026-12-26"},
        {"date": "2026-12-27", "hours": [], "note": "x"},
        "2026-12-28",
    ]
    assert problems_of(resource_table(overrides=overrides)) == [
        "resources.x.overrides[1].date: 2026-12-24 is already given at overrides[0]",
        'resources.x.overrides[2].date: "2026-13-01" is not a date; write it like "2026-12-24"',
        'resources.x.overrides[3].date: "24.12.2026" is not a date; write it like "2026-12-24"',
        "resources.x.overrides[4].date: missing; give the day",
        "resources.x.overrides[5].hours: missing; give the day's hours, or [] to close it",
        "resources.x.overrides[6].note: unknown key; expected one of date, hours",
        'resources.x.overrides[7]: expected a table like { date = "2026-12-24", hours = [] }, '
        'got "2026-12-28"',
    ]


@pytest.mark.parametrize(
    ("webhooks", "problems"),
    [
        (
            [{}],
            [
                "webhooks[0].url: missing; give the receiver's URL like "
                '"https://crm.example.com/hooks/calsync"',
                "webhooks[0].secret_file: missing; "
                "give the path of a file holding the signing secret (whsec_...)",
            ],
        ),
        (
            [{"url": "crm.example.com", "secret_file": "s", "event": []}],
            [
                "webhooks[0].event: unknown key (did you mean events?)",
                'webhooks[0].url: "crm.example.com" is not an http(s) URL '
                'like "https://example.com/path"',
            ],
        ),
        (
            [{"url": "https://x.example", "secret_file": "s", "events": ["appointment.create"]}],
            [
                'webhooks[0].events[0]: unknown event "appointment.create" '
                "(did you mean appointment.created?)"
            ],
        ),
        (
            [{"url": "https://x.example", "secret_file": "s", "events": ["booking"]}],
            [
                'webhooks[0].events[0]: unknown event "booking" (use one of appointment.created, '
                "appointment.cancelled, appointment.rescheduled, account.reauth_required, "
                "sync.failed)"
            ],
        ),
        (
            [{"url": "https://x.example", "secret_file": "s", "events": []}],
            ["webhooks[0].events: is empty; leave it out for the appointment events, or list some"],
        ),
        (
            {"url": "https://x.example", "secret_file": "s"},
            ["webhooks: expected a list of tables like [[webhooks]]"],
        ),
    ],
)
def test_webhook_problems(webhooks: Any, problems: list[str]) -> None:
    assert problems_of({"webhooks": webhooks}) == problems


def test_unknown_top_level_keys() -> None:
    assert problems_of({"deamon": {}, "colour": "red"}) == [
        "deamon: unknown key (did you mean daemon?)",
        "colour: unknown key; expected one of daemon, accounts, resources, voice, webhooks",
    ]


# --- every problem at once --------------------------------------------------------------


def test_all_problems_are_reported_together(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config.toml",
        """\
        [daemon]
        sync_interval = "10m"
        horizon_days = 30

        [accounts.office]
        provider = "google"
        url = "https://example.com/x.ics"

        [accounts.feed]
        provider = "ics"
        url = "examples/vienna.ics"

        [resources.dr-smith]
        timezone = "Europe/Vienn"
        check = ["office:primary", "home:*"]
        book_into = "feed:main"
        duration = 30
        buffer_afer = "10m"
        max_days_ahead = 60
        hours.mon = ["09:00-12:00", "13:00-12:00"]

        [[webhooks]]
        url = "https://crm.example.com/hooks"
        events = ["appointment.created", "appointment.booked"]
        """,
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    expected = [
        'daemon.sync_interval: "10m" is above the maximum of 5m '
        "(calsync keeps every cache at most 5 minutes old)",
        "accounts.office.url: not a google key; "
        "google accounts take client_secrets, endpoint, token_uri, send_updates",
        "accounts.office.client_secrets: missing; "
        "give the OAuth client JSON file downloaded from Google Cloud Console",
        "resources.dr-smith.buffer_afer: unknown key (did you mean buffer_after?)",
        'resources.dr-smith.timezone: unknown time zone "Europe/Vienn" '
        '(use an IANA name like "Europe/Vienna")',
        'resources.dr-smith.check[1]: "home:*": account "home" is not configured; '
        "configured accounts: office, feed",
        "resources.dr-smith.book_into: ics calendars are read-only; "
        "remove book_into to keep bookings in calsync's own store",
        'resources.dr-smith.duration: 30 is not a duration; write it like "30m" or "1h30m"',
        "resources.dr-smith.max_days_ahead: 60 is beyond daemon.horizon_days (30), the days "
        "calsync caches; lower max_days_ahead or raise daemon.horizon_days",
        'resources.dr-smith.hours.mon[1]: "13:00-12:00" ends before it starts',
        "webhooks[0].secret_file: missing; "
        "give the path of a file holding the signing secret (whsec_...)",
        'webhooks[0].events[1]: unknown event "appointment.booked" '
        "(did you mean appointment.created?)",
    ]
    assert caught.value.problems == expected
    assert len(caught.value.problems) == 12
    assert str(caught.value).startswith("invalid configuration (12 problems):\n  daemon.")


# --- loading and finding the file ---------------------------------------------------------


def test_toml_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", '[daemon]\nlisten "127.0.0.1:8765"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [
        f"{path}: line 2, column 8: invalid TOML: expected '=' after a key in a key/value pair"
    ]


def test_toml_error_at_end_of_file_points_at_the_last_line(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", '[daemon]\nlisten = "127.0.0.1:8765\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (problem,) = caught.value.problems
    assert problem.startswith(f"{path}: line 2, column ")
    assert "invalid TOML" in problem


def test_load_config_resolves_against_the_file_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "etc/config.toml", '[daemon]\nstate_dir = "state"\n')
    monkeypatch.chdir(tmp_path)
    settings = load_config("etc/config.toml")
    assert settings.path == tmp_path / "etc/config.toml"
    assert settings.daemon.state_dir == tmp_path / "etc/state"


def test_load_config_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.toml")
    assert caught.value.problems == [f"{tmp_path}/nope.toml: no such file"]


def test_load_config_on_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert caught.value.problems == [f"{tmp_path}: is a directory, not a config file"]


def test_load_config_on_non_utf8_text(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'[daemon]\nlisten = "\xff"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [f"{path}: not UTF-8 text (bad byte at offset 19)"]


@pytest.mark.parametrize(
    ("error", "problem"),
    [
        (PermissionError(13, "Permission denied"), "permission denied; let calsync's user read it"),
        (OSError(5, "Input/output error"), "cannot read (Input/output error)"),
    ],
)
def test_load_config_unreadable_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: OSError, problem: str
) -> None:
    path = write(tmp_path / "config.toml", "")

    def refuse(self: Path) -> bytes:
        raise error  # chmod 0 would not stop root, so the refusal is simulated

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [f"{path}: {problem}"]


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cwd and an /etc stand-in under tmp_path; $CALSYNC_CONFIG unset."""
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.delenv("CALSYNC_CONFIG", raising=False)
    etc = tmp_path / "etc/calsync/config.toml"
    monkeypatch.setattr(config, "DEFAULT_LOCATIONS", (Path("config.toml"), etc))
    return tmp_path


def test_find_config_prefers_the_explicit_path(
    places: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    explicit = write(places / "explicit.toml", "")
    monkeypatch.setenv("CALSYNC_CONFIG", str(write(places / "env.toml", "")))
    write(places / "cwd/config.toml", "")
    assert find_config(explicit) == explicit
    assert find_config(str(explicit)) == explicit


def test_find_config_then_the_environment(places: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = write(places / "env.toml", "")
    monkeypatch.setenv("CALSYNC_CONFIG", str(env))
    write(places / "cwd/config.toml", "")
    assert find_config(None) == env


def test_find_config_then_the_working_directory_then_etc(places: Path) -> None:
    etc = write(places / "etc/calsync/config.toml", "")
    assert find_config(None) == etc
    local = write(places / "cwd/config.toml", "")
    assert find_config(None) == local


def test_find_config_explicit_or_env_path_must_exist(
    places: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(places / "cwd/config.toml", "")  # not a fallback for a path that was asked for
    with pytest.raises(ConfigError) as caught:
        find_config(places / "missing.toml")
    assert caught.value.problems == [f"{places}/missing.toml: no such file"]

    monkeypatch.setenv("CALSYNC_CONFIG", str(places / "gone.toml"))
    with pytest.raises(ConfigError) as caught:
        find_config(None)
    assert caught.value.problems == [f"{places}/gone.toml: no such file (named by $CALSYNC_CONFIG)"]


def test_find_config_lists_every_place_tried(places: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        find_config(None)
    assert caught.value.problems == [
        f"no config file found (tried $CALSYNC_CONFIG: not set, {places}/cwd/config.toml, "
        f"{places}/etc/calsync/config.toml); pass --config PATH"
    ]


def test_default_locations() -> None:
    places = [str(path) for path in config.DEFAULT_LOCATIONS]
    assert places == ["config.toml", "/etc/calsync/config.toml"]


def test_example_toml_in_the_design_parses(tmp_path: Path) -> None:
    """The [resources.dr-smith] example of DESIGN.md, with its account, is valid."""
    text = """\
    [accounts.office]
    provider = "google"
    client_secrets = "client_secret.json"

    [resources.dr-smith]
    timezone = "Europe/Vienna"
    language = "de"
    check = ["office:primary"]
    book_into = "office:primary"
    duration = "30m"
    step = "15m"
    buffer_before = "0m"
    buffer_after = "10m"
    min_notice = "2h"
    max_days_ahead = 60
    max_per_day = 8
    hours.mon = ["09:00-12:00", "13:00-17:00"]
    overrides = [{ date = "2026-12-24", hours = [] }]
    """
    data = tomllib.loads(textwrap.dedent(text))
    resource = parse_config(data, tmp_path).resources["dr-smith"]
    assert resource.rules.hours_on(date(2026, 12, 24)) == ()
    monday = date(2026, 12, 21)
    assert resource.rules.hours_on(monday) == (WallRange(540, 720), WallRange(780, 1020))


def test_webhook_retry_schedules() -> None:
    hook = {"url": "https://crm.example.com/h", "secret_file": "hook.secret"}
    default = parse_config({"webhooks": [hook]}, Path("/etc/calsync"))
    assert default.webhooks[0].retry[:3] == (
        timedelta(seconds=5),
        timedelta(seconds=30),
        timedelta(minutes=2),
    )
    assert sum(default.webhooks[0].retry, timedelta()) > timedelta(hours=24)
    short = parse_config({"webhooks": [{**hook, "retry": ["1s", "2s"]}]}, Path("/etc/calsync"))
    assert short.webhooks[0].retry == (timedelta(seconds=1), timedelta(seconds=2))
    with pytest.raises(ConfigError) as caught:
        parse_config({"webhooks": [{**hook, "retry": ["0s", "soon"]}]}, Path("/etc/calsync"))
    assert caught.value.problems == [
        "webhooks[0].retry[0]: must be longer than 0s",
        'webhooks[0].retry[1]: "soon" is not a duration; write it like "30m" or "1h30m"',
    ]


def test_a_webhook_url_listed_twice_is_a_problem() -> None:
    hook = {"url": "https://crm.example.com/h", "secret_file": "hook.secret"}
    with pytest.raises(ConfigError) as caught:
        parse_config({"webhooks": [hook, hook]}, Path("/etc/calsync"))
    assert caught.value.problems == [
        "webhooks[1].url: https://crm.example.com/h is listed twice; merge the two entries"
    ]


def test_voice_section(tmp_path: Path) -> None:
    config = parse_config({"voice": {"retell_api_key_file": "retell.key"}}, tmp_path)
    assert config.voice.retell_api_key_file == tmp_path / "retell.key"
    assert parse_config({}, tmp_path).voice.retell_api_key_file is None
    assert problems_of({"voice": {"retell_key": "x"}}) == [
        "voice.retell_key: unknown key (did you mean retell_api_key_file?)"
    ]
