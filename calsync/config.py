"""Configuration: ``config.toml`` -> validated, frozen ``Settings``.

This module owns finding the config file, reading its TOML, checking every
key (types, ranges, references from resources to accounts, limits between
keys) and resolving relative paths against the config file's directory. It
collects *every* problem in one pass and raises one ``ConfigError`` whose
lines each start with the key path they are about, e.g.
``resources.dr-smith.hours.mon[1]: "13:00-12:00" ends before it starts``.

It must not do I/O beyond reading the config file: it never checks that ICS
files or secret files exist (they may appear later; a sync reports that),
never reads secrets, never opens the database and never asks for the time.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel import Locale, UnknownLocaleError

from calsync.errors import ConfigError
from calsync.model import WEEKDAYS, CalendarRef, Resource, Rules, WallRange

DEFAULT_LOCATIONS: tuple[Path, ...] = (Path("config.toml"), Path("/etc/calsync/config.toml"))
CONFIG_ENV = "CALSYNC_CONFIG"
DEFAULT_STATE_DIR = Path("/var/lib/calsync")
PROVIDERS = ("google", "outlook", "calcom", "ics")
APPOINTMENT_EVENTS = ("appointment.created", "appointment.cancelled", "appointment.rescheduled")
WEBHOOK_EVENTS = (*APPOINTMENT_EVENTS, "account.reauth_required", "sync.failed")

_PROVIDER_KEYS: dict[str, tuple[str, ...]] = {
    "google": ("client_secrets", "endpoint", "token_uri"),
    "outlook": ("client_id", "tenant", "endpoint", "authority"),
    "calcom": ("webhook_secret_file", "endpoint"),
    "ics": ("url", "timezone"),
}
_ALL_PROVIDER_KEYS = tuple(dict.fromkeys(k for keys in _PROVIDER_KEYS.values() for k in keys))
_REQUIRED_ACCOUNT_KEYS = {  # each belongs to one provider
    "client_secrets": "give the OAuth client JSON file downloaded from Google Cloud Console",
    "client_id": "give the application (client) id of your Microsoft Entra app registration",
    "url": 'give the calendar\'s http(s) URL or a file path, like "examples/vienna.ics"',
}
_ROOT_KEYS = ("daemon", "accounts", "resources", "webhooks")
_DAEMON_KEYS: tuple[str, ...] = ("listen", "database", "state_dir", "sync_interval")
_DAEMON_KEYS += ("horizon_days", "public_url", "hold_ttl")
_RESOURCE_KEYS: tuple[str, ...] = ("name", "timezone", "language", "check", "book_into")
_RESOURCE_KEYS += ("duration", "step", "buffer_before", "buffer_after", "min_notice")
_RESOURCE_KEYS += ("max_days_ahead", "max_per_day", "tentative_busy", "hours", "overrides")

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_DURATION = re.compile(r"(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?")
_WALL_RANGE = re.compile(r"([0-9]{1,2}):([0-9]{2})\s*-\s*([0-9]{1,2}):([0-9]{2})")
_LISTEN = re.compile(r"\[([^\]]+)\]:([0-9]+)|([^:\s\[\]]+):([0-9]+)")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TOML_WHERE = re.compile(r"\s*\((?:at line (\d+), column (\d+)|at end of document)\)$")
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
_DATABASE_FORMS = '"sqlite:///PATH" or "postgresql+psycopg://USER@HOST/DBNAME"'
_ZERO = timedelta(0)

T = TypeVar("T")
D = TypeVar("D")


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    listen_host: str  # IPv6 without brackets
    listen_port: int
    database: str  # SQLAlchemy URL
    state_dir: Path  # absolute
    sync_interval: timedelta
    horizon_days: int
    public_url: str  # "" = polling only; no trailing slash
    hold_ttl: timedelta


@dataclass(frozen=True, slots=True)
class AccountSettings:
    name: str
    provider: str  # google | outlook | calcom | ics
    url: str | None = None  # ics: http(s) URL or an absolute file path
    timezone: str | None = None  # ics: IANA zone for floating times
    client_secrets: Path | None = None  # google
    client_id: str | None = None  # outlook
    tenant: str = "common"  # outlook
    webhook_secret_file: Path | None = None  # calcom
    endpoint: str | None = None  # API base URL override
    token_uri: str | None = None  # google OAuth token URL override
    authority: str | None = None  # outlook (msal) authority override


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    url: str
    secret_file: Path
    events: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Settings:
    path: Path | None  # None when built by parse_config alone
    daemon: DaemonSettings
    accounts: Mapping[str, AccountSettings]
    resources: Mapping[str, Resource]
    webhooks: tuple[WebhookSettings, ...]


# --- finding and loading -------------------------------------------------------------


def find_config(explicit: str | Path | None) -> Path:
    """The config file to use: ``explicit``, ``$CALSYNC_CONFIG``, then DEFAULT_LOCATIONS."""
    if explicit is not None:
        return _existing(Path(explicit).expanduser(), "")
    from_env = os.environ.get(CONFIG_ENV, "")
    if from_env:
        return _existing(Path(from_env).expanduser(), f" (named by ${CONFIG_ENV})")
    for candidate in DEFAULT_LOCATIONS:
        if candidate.is_file():
            return candidate.absolute()
    tried = ", ".join(str(p.absolute()) for p in DEFAULT_LOCATIONS)
    problem = f"no config file found (tried ${CONFIG_ENV}: not set, {tried}); pass --config PATH"
    raise ConfigError([problem])


def _existing(path: Path, origin: str) -> Path:
    if not path.exists():
        raise ConfigError([f"{path}: no such file{origin}"])
    return path.absolute()


def load_config(path: str | Path) -> Settings:
    """Read, parse and validate the config file at ``path``."""
    file = Path(path).expanduser().absolute()
    text = _read_text(file)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError([_syntax_problem(file, text, err)]) from err
    return replace(parse_config(data, file.parent), path=file)


def _read_text(file: Path) -> str:
    try:
        return file.read_bytes().decode("utf-8-sig")
    except FileNotFoundError as err:
        raise ConfigError([f"{file}: no such file"]) from err
    except IsADirectoryError as err:
        raise ConfigError([f"{file}: is a directory, not a config file"]) from err
    except PermissionError as err:
        raise ConfigError([f"{file}: permission denied; let calsync's user read it"]) from err
    except OSError as err:
        raise ConfigError([f"{file}: cannot read ({err.strerror or err})"]) from err
    except UnicodeDecodeError as err:
        raise ConfigError([f"{file}: not UTF-8 text (bad byte at offset {err.start})"]) from err


def _syntax_problem(file: Path, text: str, err: tomllib.TOMLDecodeError) -> str:
    message = str(err)
    where = _TOML_WHERE.search(message)
    if where is None:
        return f"{file}: invalid TOML: {message}"
    if where[1] is None:  # "at end of document": point just past the last character
        lines = text.split("\n")
        line, column = len(lines), len(lines[-1]) + 1
    else:
        line, column = int(where[1]), int(where[2])
    reason = message[: where.start()]
    return f"{file}: line {line}, column {column}: invalid TOML: {reason[:1].lower()}{reason[1:]}"


# --- durations -----------------------------------------------------------------------


def parse_duration(text: str) -> timedelta:
    """``"5m"``, ``"2h"``, ``"1h30m"``, ``"90s"``, ``"1d"``, ``"0m"`` -> timedelta."""
    match = _DURATION.fullmatch(text) if isinstance(text, str) and text else None
    if match is None:
        raise ValueError(_not_a_duration(text))
    days, hours, minutes, seconds = (int(group or 0) for group in match.groups())
    try:
        return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError as err:
        raise ValueError(f"{_show(text)} is too long a duration") from err


def format_duration(value: timedelta) -> str:
    """The inverse of parse_duration: ``timedelta(minutes=90)`` -> ``"1h30m"``, 0 -> ``"0m"``.

    Parts below one second are dropped; negative values are refused.
    """
    if value < _ZERO:
        raise ValueError(f"{value} is negative; durations are never negative")
    rest = value // timedelta(seconds=1)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0m"


def _not_a_duration(value: Any) -> str:
    return f'{_show(value)} is not a duration; write it like "30m" or "1h30m"'


@dataclass(frozen=True, slots=True)
class _Limits:
    """The bounds of one duration key, and why they are what they are."""

    positive: bool = False
    low: timedelta = _ZERO
    high: timedelta | None = None
    why_low: str = ""
    why_high: str = ""

    def parse(self, text: str) -> timedelta:
        value, shown = parse_duration(text), _show(text)
        if self.positive and value <= _ZERO:
            raise ValueError(f"{shown} is too short; it must be longer than 0m")
        if value < self.low:
            low = format_duration(self.low)
            raise ValueError(f"{shown} is below the minimum of {low}{self.why_low}")
        if self.high is not None and value > self.high:
            high = format_duration(self.high)
            raise ValueError(f"{shown} is above the maximum of {high}{self.why_high}")
        return value


_ANY_DURATION = _Limits()
_POSITIVE = _Limits(positive=True)
_SYNC_LIMITS = _Limits(
    low=timedelta(seconds=10),
    high=timedelta(minutes=5),
    why_low=" (shorter intervals run into the providers' rate limits)",
    why_high=" (calsync keeps every cache at most 5 minutes old)",
)
_HOLD_LIMITS = _Limits(low=timedelta(seconds=30), high=timedelta(hours=1))


# --- reading tables ------------------------------------------------------------------


class _Table:
    """One TOML table being read: its key path, and the list its problems go to.

    Readers return a fallback after reporting a problem, so reading goes on
    and every problem is found; the result is only used when none was.
    """

    def __init__(self, data: Mapping[str, Any], path: str, problems: list[str]) -> None:
        self.data = data
        self.path = path
        self.problems = problems
        self.refused: set[str | int] = set()  # keys with a problem

    def at(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        shown = key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)
        return f"{self.path}.{shown}" if self.path else shown

    def problem(self, key: str | int, message: str) -> None:
        self.refused.add(key)
        self.problems.append(f"{self.at(key)}: {message}")

    def under(self, key: str | int) -> _Table:
        """An empty table at ``key``'s path, to report problems about a list's items."""
        return _Table({}, self.at(key), self.problems)

    def check_keys(
        self, allowed: Collection[str], explain: Callable[[str], str | None] = lambda _: None
    ) -> None:
        for key in self.data:
            if key not in allowed:
                self.problem(key, explain(key) or _unknown_key(key, allowed))

    def table(self, key: str | int, value: Any = None, example: str = "") -> _Table:
        """The sub-table at ``key`` (for a list item: ``value``, at index ``key``)."""
        value = self.data.get(key, {}) if isinstance(key, str) else value
        if not isinstance(value, Mapping):
            like = example or f"[{self.at(key)}]"
            self.problem(key, f"expected a table like {like}, got {_show(value)}")
            value = {}
        return _Table(value, self.at(key), self.problems)

    def items(self, key: str, example: str) -> list[tuple[int, Any]]:
        value = self.data.get(key, [])
        if isinstance(value, list):
            return list(enumerate(value))
        self.problem(key, f"expected a list like {example}, got {_show(value)}")
        return []

    def parsed(
        self, key: str, default: D, convert: Callable[[str], T], example: str, needed: str = ""
    ) -> T | D:
        """``convert`` applied to the string at ``key``; ``default`` when absent or refused.

        ``needed`` makes a missing key a problem and says what to give.
        """
        value = self.data.get(key)
        if value is None:
            if needed:
                self.problem(key, f"missing; {needed}")
            return default
        return self.value(key, value, default, convert, example)

    def value(
        self, key: str | int, value: Any, default: D, convert: Callable[[str], T], example: str
    ) -> T | D:
        if not isinstance(value, str):
            self.problem(key, f"expected a string like {example}, got {_show(value)}")
            return default
        try:
            return convert(value)
        except ValueError as err:
            self.problem(key, str(err))
            return default

    def text(self, key: str, default: D, example: str, needed: str = "") -> str | D:
        return self.parsed(key, default, _non_empty, example, needed)

    def duration(self, key: str, default: timedelta, limits: _Limits = _ANY_DURATION) -> timedelta:
        value = self.data.get(key)
        if value is None or isinstance(value, str):
            return self.parsed(key, default, limits.parse, "")
        self.problem(key, _not_a_duration(value))
        return default

    def integer(self, key: str, default: D, low: int, high: int | None = None) -> int | D:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, int) or isinstance(value, bool):
            self.problem(key, f"expected a whole number, got {_show(value)}")
        elif high is not None and not low <= value <= high:
            self.problem(key, f"{value} is out of range; use {low} to {high}")
        elif value < low:
            self.problem(key, f"{value} is too small; use at least {low}")
        else:
            return value
        return default

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if isinstance(value, bool):
            return value
        self.problem(key, f"expected true or false, got {_show(value)}")
        return default


def _unknown_key(key: str, allowed: Collection[str]) -> str:
    close = difflib.get_close_matches(key, list(allowed), n=1)
    if close:
        return f"unknown key (did you mean {close[0]}?)"
    return f"unknown key; expected one of {', '.join(allowed)}"


def _show(value: Any) -> str:
    """A value as it looks in TOML, for messages."""
    if isinstance(value, str):
        return json.dumps(value if len(value) <= 80 else value[:77] + "...", ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Mapping | list):
        return "a table" if isinstance(value, Mapping) else "a list"
    return str(value)


# --- converters: str -> value, or ValueError with the text that follows "key: " -------


def _non_empty(text: str) -> str:
    if not text.strip():
        raise ValueError("is empty")
    return text


def _resolve(text: str, base: Path) -> Path:
    if not text.strip():
        raise ValueError("is empty; give a file path")
    return Path(os.path.normpath(base / Path(text).expanduser()))


def _http_url(text: str) -> str:
    try:
        parts = urlsplit(text)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f'{_show(text)} is not an http(s) URL like "https://example.com/path"')
    return text


def _ics_source(text: str, base: Path) -> str:
    if text[:9].lower() == "webcal://":  # what calendar apps hand out for subscriptions
        text = "https://" + text[9:]
    return _http_url(text) if _SCHEME.match(text) else str(_resolve(text, base))


def _zone(text: str) -> ZoneInfo:
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory like "Europe"
        like = (difflib.get_close_matches(text, _zone_names(), n=1) or ["Europe/Vienna"])[0]
        raise ValueError(
            f'unknown time zone {_show(text)} (use an IANA name like "{like}")'
        ) from None


@cache
def _zone_names() -> list[str]:
    return sorted(available_timezones())


def _language(text: str) -> str:
    """The language as a BCP 47 tag ("de-AT"), if Babel knows the locale."""
    try:
        locale = Locale.parse(text.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        like = '(use a code like "en", "de" or "de-AT")'
        raise ValueError(f"unknown language {_show(text)} {like}") from None
    return str(locale).replace("_", "-")


def _listen(text: str) -> tuple[str, int]:
    match = _LISTEN.fullmatch(text)
    if match is None:
        hint = "; put an IPv6 address in brackets" if text.count(":") > 1 else ""
        raise ValueError(f'{_show(text)} is not host:port like "127.0.0.1:8765"{hint}')
    host, port = match[1] or match[3], int(match[2] or match[4])
    if match[1]:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{_show(host)} is not an IPv6 address") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is out of range; use 1 to 65535")
    return host, port


def _public_url(text: str) -> str:
    if text == "":
        return ""
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:
        host = None
    if host and (parts.scheme == "https" or (parts.scheme == "http" and host in _LOCAL_HOSTS)):
        return text.rstrip("/")
    raise ValueError(
        f"{_show(text)} is not an https:// URL (providers push only to https; "
        'http:// is allowed for localhost only); leave it "" to poll only'
    )


def _database(text: str, base: Path) -> str:
    """A SQLAlchemy URL; never echoes the URL, which may hold a password."""
    scheme, sep, rest = text.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise ValueError(f"not a database URL; use {_DATABASE_FORMS}")
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return f"postgresql+psycopg://{rest}"
    if scheme != "sqlite":
        raise ValueError(f'"{scheme}://" databases are not supported; use {_DATABASE_FORMS}')
    if rest == "":
        return "sqlite://"  # in memory
    file, query_sep, query = rest.removeprefix("/").partition("?")
    if not rest.startswith("/") or not file:
        raise ValueError(
            f"{_show(text)} names no database file; write it like "
            '"sqlite:///calsync.db" (relative to this file) or "sqlite:////var/lib/calsync/calsync.db"'
        )
    if file == ":memory:":
        return text
    return f"sqlite:///{_resolve(file, base)}{query_sep}{query}"


def _calendar_ref(text: str) -> CalendarRef:
    account, sep, calendar = text.partition(":")
    if not sep or not _NAME.fullmatch(account) or not calendar or calendar != calendar.strip():
        like = 'write it like "office:primary" or "office:*"'
        raise ValueError(f'{_show(text)} is not "account:calendar"; {like}')
    return CalendarRef(account, calendar)


def _wall_range(text: str) -> WallRange:
    match = _WALL_RANGE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f'{_show(text)} is not a time range; write it like "09:00-17:00"')
    start_h, start_m, end_h, end_m = (int(group) for group in match.groups())
    start, end = start_h * 60 + start_m, end_h * 60 + end_m
    if start_m > 59 or end_m > 59 or start > 24 * 60 or end > 24 * 60:
        raise ValueError(f"{_show(text)} has a time outside 00:00-24:00")
    if end < start:
        raise ValueError(f"{_show(text)} ends before it starts")
    if end == start:
        raise ValueError(f"{_show(text)} is empty: it ends when it starts")
    return WallRange(start, end)


def _iso_date(text: str) -> date:
    try:
        if _ISO_DATE.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise ValueError(f'{_show(text)} is not a date; write it like "2026-12-24"')


def _event(text: str) -> str:
    if text in WEBHOOK_EVENTS:
        return text
    close = difflib.get_close_matches(text, WEBHOOK_EVENTS, n=1)
    hint = f"did you mean {close[0]}?" if close else f"use one of {', '.join(WEBHOOK_EVENTS)}"
    raise ValueError(f"unknown event {_show(text)} ({hint})")


# --- sections ------------------------------------------------------------------------


def parse_config(data: Mapping[str, Any], base_dir: Path) -> Settings:
    """Validate parsed TOML; relative paths are resolved against ``base_dir``."""
    problems: list[str] = []
    base = Path(os.path.abspath(base_dir.expanduser()))
    root = _Table(data, "", problems)
    root.check_keys(_ROOT_KEYS)
    daemon_table = root.table("daemon")
    daemon = _daemon(daemon_table, base)
    horizon = None if "horizon_days" in daemon_table.refused else daemon.horizon_days
    accounts = _named(root.table("accounts"), "account names", lambda n, t: _account(n, t, base))
    resources = _named(
        root.table("resources"), "resource ids", lambda n, t: _resource(n, t, horizon, accounts)
    )
    webhooks = _webhooks(root, base)
    if problems:
        raise ConfigError(problems)
    return Settings(
        path=None,
        daemon=daemon,
        accounts=MappingProxyType(accounts),
        resources=MappingProxyType(resources),
        webhooks=webhooks,
    )


def _daemon(t: _Table, base: Path) -> DaemonSettings:
    t.check_keys(_DAEMON_KEYS)
    host, port = t.parsed("listen", ("127.0.0.1", 8765), _listen, '"127.0.0.1:8765"')
    state_dir = t.parsed(
        "state_dir", DEFAULT_STATE_DIR, lambda s: _resolve(s, base), '"/var/lib/calsync"'
    )
    default_db = f"sqlite:///{state_dir / 'calsync.db'}"
    return DaemonSettings(
        listen_host=host,
        listen_port=port,
        database=t.parsed("database", default_db, lambda s: _database(s, base), _DATABASE_FORMS),
        state_dir=state_dir,
        sync_interval=t.duration("sync_interval", timedelta(minutes=5), _SYNC_LIMITS),
        horizon_days=t.integer("horizon_days", 90, low=1, high=730),
        public_url=t.parsed("public_url", "", _public_url, '"https://calsync.example.com"'),
        hold_ttl=t.duration("hold_ttl", timedelta(minutes=5), _HOLD_LIMITS),
    )


def _named(t: _Table, what: str, read: Callable[[str, _Table], T]) -> dict[str, T]:
    """Read each sub-table of ``t`` (accounts, resources), checking its name."""
    result = {}
    for name in t.data:
        if not _NAME.fullmatch(name):
            like = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_") or "office"
            rule = 'lowercase letters, digits, "-" and "_", starting with a letter or digit'
            t.problem(name, f'{what} use {rule} (like "{like}")')
        table = t.table(name)
        if isinstance(t.data[name], Mapping):  # else reported by t.table; nothing to read
            result[name] = read(name, table)
    return result


def _account(name: str, t: _Table, base: Path) -> AccountSettings:
    choices = f"use one of {', '.join(PROVIDERS)}"
    provider = t.text("provider", "", '"google"', needed=choices)
    if provider and provider not in PROVIDERS:
        t.problem("provider", f"unknown provider {_show(provider)}; {choices}")
        provider = ""
    own = _PROVIDER_KEYS.get(provider, _ALL_PROVIDER_KEYS)

    def foreign(key: str) -> str | None:
        if provider and key in _ALL_PROVIDER_KEYS:
            return f"not a {provider} key; {provider} accounts take {', '.join(own)}"
        return None

    t.check_keys(("provider", *own), foreign)
    mine = _Table({k: v for k, v in t.data.items() if k in own}, t.path, t.problems)

    def get(key: str, convert: Callable[[str], T], example: str) -> T | None:
        needed = _REQUIRED_ACCOUNT_KEYS.get(key, "") if provider else ""
        return mine.parsed(key, None, convert, example, needed if key in own else "")

    path: Callable[[str], Path] = lambda s: _resolve(s, base)  # noqa: E731
    return AccountSettings(
        name=name,
        provider=provider,
        url=get("url", lambda s: _ics_source(s, base), '"examples/vienna.ics"'),
        timezone=get("timezone", lambda s: _zone(s).key, '"Europe/Vienna"'),
        client_secrets=get("client_secrets", path, '"client_secret.json"'),
        client_id=get("client_id", _non_empty, '"00000000-0000-0000-0000-000000000000"'),
        tenant=mine.text("tenant", "common", '"common"'),
        webhook_secret_file=get("webhook_secret_file", path, '"calcom.secret"'),
        endpoint=get("endpoint", _http_url, '"https://example.com"'),
        token_uri=get("token_uri", _http_url, '"https://example.com/token"'),
        authority=get("authority", _http_url, '"https://example.com/common"'),
    )


def _resource(
    rid: str, t: _Table, horizon_days: int | None, accounts: Mapping[str, AccountSettings]
) -> Resource:
    """One resource; ``horizon_days`` is None when daemon.horizon_days itself is wrong."""
    t.check_keys(_RESOURCE_KEYS)
    name = t.text("name", rid, '"Dr. Smith"')
    needed = 'give an IANA time zone like "Europe/Vienna"'
    zone = t.parsed("timezone", ZoneInfo("UTC"), _zone, '"Europe/Vienna"', needed)
    return Resource(
        id=rid,
        name=name,
        language=t.parsed("language", "en", _language, '"de"'),
        check=_check_refs(t, accounts),
        book_into=_book_into(t, accounts),
        rules=_rules(t, zone, horizon_days),
        tentative_busy=t.boolean("tentative_busy", True),
    )


def _rules(t: _Table, zone: ZoneInfo, horizon_days: int | None) -> Rules:
    duration = t.duration("duration", timedelta(minutes=30), _POSITIVE)
    step = t.duration("step", duration, _POSITIVE)
    before, after = t.duration("buffer_before", _ZERO), t.duration("buffer_after", _ZERO)
    min_notice = t.duration("min_notice", _ZERO)
    days_ahead = t.integer("max_days_ahead", min(60, horizon_days or 60), low=0)
    if horizon_days is not None and days_ahead > horizon_days:
        t.problem(
            "max_days_ahead",
            f"{days_ahead} is beyond daemon.horizon_days ({horizon_days}), the days calsync "
            "caches; lower max_days_ahead or raise daemon.horizon_days",
        )
    max_per_day = t.integer("max_per_day", None, low=1)
    weekly, overrides = _working_hours(t)
    return Rules(
        timezone=zone,
        weekly=weekly,
        duration=duration,
        step=step,
        overrides=overrides,
        buffer_before=before,
        buffer_after=after,
        min_notice=min_notice,
        max_days_ahead=days_ahead,
        max_per_day=max_per_day,
    )


def _known_account(
    t: _Table, key: str | int, ref: CalendarRef, accounts: Mapping[str, AccountSettings]
) -> bool:
    if ref.account in accounts:
        return True
    if accounts:
        fix = f"configured accounts: {', '.join(accounts)}"
    else:
        fix = f"add an [accounts.{ref.account}] table"
    t.problem(key, f'{_show(str(ref))}: account "{ref.account}" is not configured; {fix}')
    return False


def _check_refs(t: _Table, accounts: Mapping[str, AccountSettings]) -> tuple[CalendarRef, ...]:
    refs: list[CalendarRef] = []
    check = t.under("check")
    for index, item in t.items("check", '["office:primary"]'):
        ref = check.value(index, item, None, _calendar_ref, '"office:primary"')
        if ref is not None and _known_account(check, index, ref, accounts) and ref not in refs:
            refs.append(ref)
    return tuple(refs)


def _book_into(t: _Table, accounts: Mapping[str, AccountSettings]) -> CalendarRef | None:
    ref = t.parsed("book_into", None, _calendar_ref, '"office:primary"')
    if ref is None or not _known_account(t, "book_into", ref, accounts):
        return None
    if ref.is_wildcard:
        like = f'"{ref.account}:primary"'
        t.problem("book_into", f"{_show(str(ref))} names no single calendar; write it like {like}")
    elif accounts[ref.account].provider == "ics":
        t.problem(
            "book_into",
            "ics calendars are read-only; remove book_into to keep bookings in calsync's own store",
        )
    return ref


_DayHours = tuple[WallRange, ...]


def _working_hours(t: _Table) -> tuple[tuple[_DayHours, ...], dict[date, _DayHours]]:
    before = len(t.problems)
    hours = t.table("hours")
    hours.check_keys(WEEKDAYS)
    weekly = tuple(_day_ranges(hours, day) for day in WEEKDAYS)
    overrides = _overrides(t)
    if len(t.problems) == before and not any(weekly) and not any(overrides.values()):
        t.problem(
            "hours",
            'no working hours, so it could never be booked; add e.g. hours.mon = ["09:00-17:00"]',
        )
    return weekly, overrides


def _day_ranges(t: _Table, key: str) -> _DayHours:
    """One day's list of "HH:MM-HH:MM", sorted; refused and overlapping ranges reported."""
    day = t.under(key)
    kept: list[tuple[int, WallRange]] = []
    items = t.items(key, '["09:00-12:00", "13:00-17:00"]')
    for index, item in items:
        wall = day.value(index, item, None, _wall_range, '"09:00-17:00"')
        if wall is None:
            continue
        clash = next(
            (i for i, other in kept if other.start < wall.end and wall.start < other.end), None
        )
        if clash is None:
            kept.append((index, wall))
        else:
            day.problem(index, f"{_show(item)} overlaps {_show(items[clash][1])} at [{clash}]")
    return tuple(sorted((wall for _, wall in kept), key=lambda wall: wall.start))


def _overrides(t: _Table) -> dict[date, _DayHours]:
    overrides: dict[date, _DayHours] = {}
    first_index: dict[date, int] = {}
    listed = t.under("overrides")
    for index, item in t.items("overrides", '[{ date = "2026-12-24", hours = [] }]'):
        entry = listed.table(index, item, '{ date = "2026-12-24", hours = [] }')
        if not isinstance(item, Mapping):
            continue
        entry.check_keys(("date", "hours"))
        day = entry.data.get("date")
        if not isinstance(day, date) or isinstance(day, datetime):  # else: a TOML date
            day = entry.parsed("date", None, _iso_date, '"2026-12-24"', needed="give the day")
        if day in first_index:
            entry.problem("date", f"{day} is already given at overrides[{first_index[day]}]")
        if "hours" not in item:
            entry.problem("hours", "missing; give the day's hours, or [] to close it")
        ranges = _day_ranges(entry, "hours")
        if day is not None and day not in first_index:
            first_index[day], overrides[day] = index, ranges
    return overrides


def _webhooks(root: _Table, base: Path) -> tuple[WebhookSettings, ...]:
    value = root.data.get("webhooks", [])
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        root.problem("webhooks", "expected a list of tables like [[webhooks]]")
        return ()
    listed = root.under("webhooks")
    return tuple(_webhook(listed.table(i, item), base) for i, item in enumerate(value))


def _webhook(t: _Table, base: Path) -> WebhookSettings:
    t.check_keys(("url", "secret_file", "events"))
    url_like = '"https://crm.example.com/hooks/calsync"'
    secret = "give the path of a file holding the signing secret (whsec_...)"
    return WebhookSettings(
        url=t.parsed(
            "url", "", _http_url, url_like, needed=f"give the receiver's URL like {url_like}"
        ),
        secret_file=t.parsed(
            "secret_file", Path(), lambda s: _resolve(s, base), '"x.secret"', secret
        ),
        events=_events(t),
    )


def _events(t: _Table) -> tuple[str, ...]:
    if "events" not in t.data:
        return APPOINTMENT_EVENTS
    events: list[str] = []
    listed = t.under("events")
    items = t.items("events", '["appointment.created"]')
    for index, item in items:
        event = listed.value(index, item, None, _event, '"appointment.created"')
        if event is not None and event not in events:
            events.append(event)
    if not items and isinstance(t.data["events"], list):
        t.problem("events", "is empty; leave it out for the appointment events, or list some")
    return tuple(events)
