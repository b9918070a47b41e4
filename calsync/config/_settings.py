"""The daemon, accounts, voice and webhooks sections, and the frozen settings they become.

This module owns ``Settings`` and its parts (``DaemonSettings``,
``AccountSettings``, ``WebhookSettings``), the names they accept (providers,
webhook events) and the reading of ``[daemon]``, ``[accounts.NAME]`` and
``[[webhooks]]``: listen addresses, database URLs, the public URL, which keys
each provider takes, and webhook receivers and their events.

Like the rest of ``calsync.config`` it only reads the parsed TOML: it never
checks that ICS or secret files exist, never reads secrets, never opens the
database and never asks for the time. Resources live in ``_resources``.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from calsync.config._reader import (
    T,
    _http_url,
    _Limits,
    _non_empty,
    _resolve,
    _show,
    _Table,
    _zone,
    parse_duration,
)
from calsync.model import Resource

DEFAULT_STATE_DIR = Path("/var/lib/calsync")
PROVIDERS = ("google", "outlook", "calcom", "ics")
SEND_UPDATES = ("none", "externalOnly", "all")
# Standard Webhooks' advice: fast first, then backing off for a day (plus jitter)
DEFAULT_RETRY = tuple(
    timedelta(seconds=s)
    for s in (5, 30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600)
)
APPOINTMENT_EVENTS = ("appointment.created", "appointment.cancelled", "appointment.rescheduled")
WEBHOOK_EVENTS = (*APPOINTMENT_EVENTS, "account.reauth_required", "sync.failed")

_PROVIDER_KEYS: dict[str, tuple[str, ...]] = {
    "google": ("client_secrets", "endpoint", "token_uri", "send_updates"),
    "outlook": ("client_id", "tenant", "endpoint", "authority"),
    "calcom": ("webhook_secret_file", "endpoint", "include_pending", "honour_slots"),
    "ics": ("url", "timezone"),
}
_ALL_PROVIDER_KEYS = tuple(dict.fromkeys(k for keys in _PROVIDER_KEYS.values() for k in keys))
_REQUIRED_ACCOUNT_KEYS = {  # each belongs to one provider
    "client_secrets": "give the OAuth client JSON file downloaded from Google Cloud Console",
    "client_id": "give the application (client) id of your Microsoft Entra app registration",
    "url": 'give the calendar\'s http(s) URL or a file path, like "examples/vienna.ics"',
}
_DAEMON_KEYS: tuple[str, ...] = ("listen", "database", "state_dir", "sync_interval")
_DAEMON_KEYS += ("horizon_days", "public_url", "hold_ttl")

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_LISTEN = re.compile(r"\[([^\]]+)\]:([0-9]+)|([^:\s\[\]]+):([0-9]+)")
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
_DATABASE_FORMS = '"sqlite:///PATH" or "postgresql+psycopg://USER@HOST/DBNAME"'


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
    send_updates: str = "none"  # google: who gets Google's emails (all|externalOnly|none)
    authority: str | None = None  # outlook (msal) authority override
    include_pending: bool = True  # calcom: bookings awaiting confirmation block time
    honour_slots: bool = False  # calcom: times Cal.com itself would not offer block too


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    url: str
    secret_file: Path
    events: tuple[str, ...]
    retry: tuple[timedelta, ...] = DEFAULT_RETRY  # waits between attempts, with jitter


@dataclass(frozen=True, slots=True)
class VoiceSettings:
    retell_api_key_file: Path | None = None  # set: Retell's requests must carry its signature


@dataclass(frozen=True, slots=True)
class Settings:
    path: Path | None  # None when built by parse_config alone
    daemon: DaemonSettings
    accounts: Mapping[str, AccountSettings]
    resources: Mapping[str, Resource]
    webhooks: tuple[WebhookSettings, ...]
    voice: VoiceSettings = VoiceSettings()


# --- daemon ---------------------------------------------------------------------------

_SYNC_LIMITS = _Limits(
    low=timedelta(seconds=10),
    high=timedelta(minutes=5),
    why_low=" (shorter intervals run into the providers' rate limits)",
    why_high=" (calsync keeps every cache at most 5 minutes old)",
)
_HOLD_LIMITS = _Limits(low=timedelta(seconds=30), high=timedelta(hours=1))


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


# --- accounts -------------------------------------------------------------------------


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
        send_updates=_send_updates(mine),
        include_pending=mine.boolean("include_pending", True),
        honour_slots=mine.boolean("honour_slots", False),
    )


def _send_updates(t: _Table) -> str:
    value = t.text("send_updates", "none", '"none"')
    if value not in SEND_UPDATES:
        t.problem("send_updates", f"{_show(value)} is not one of {', '.join(SEND_UPDATES)}")
        return "none"
    return value


def _ics_source(text: str, base: Path) -> str:
    if text[:9].lower() == "webcal://":  # what calendar apps hand out for subscriptions
        text = "https://" + text[9:]
    return _http_url(text) if _SCHEME.match(text) else str(_resolve(text, base))


# --- voice ----------------------------------------------------------------------------


def _voice(t: _Table, base: Path) -> VoiceSettings:
    t.check_keys(("retell_api_key_file",))
    path: Callable[[str], Path] = lambda s: _resolve(s, base)  # noqa: E731
    return VoiceSettings(
        retell_api_key_file=t.parsed("retell_api_key_file", None, path, '"retell.key"'),
    )


# --- webhooks -------------------------------------------------------------------------


def _webhooks(root: _Table, base: Path) -> tuple[WebhookSettings, ...]:
    value = root.data.get("webhooks", [])
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        root.problem("webhooks", "expected a list of tables like [[webhooks]]")
        return ()
    listed = root.under("webhooks")
    hooks = tuple(_webhook(listed.table(i, item), base) for i, item in enumerate(value))
    seen: set[str] = set()
    for index, hook in enumerate(hooks):
        if hook.url and hook.url in seen:
            listed.under(index).problem("url", f"{hook.url} is listed twice; merge the two entries")
        seen.add(hook.url)
    return hooks


def _webhook(t: _Table, base: Path) -> WebhookSettings:
    t.check_keys(("url", "secret_file", "events", "retry"))
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
        retry=_retry(t),
    )


def _retry(t: _Table) -> tuple[timedelta, ...]:
    if "retry" not in t.data:
        return DEFAULT_RETRY
    listed = t.under("retry")
    waits = [
        listed.value(i, item, None, _positive_duration, '"30s"')
        for i, item in t.items("retry", '["5s", "30s", "2m"]')
    ]
    found = tuple(w for w in waits if w is not None)
    if t.data["retry"] == []:
        t.problem(
            "retry", 'is empty; leave it out for the default schedule, or list waits like "5s"'
        )
    return found or DEFAULT_RETRY


def _positive_duration(text: str) -> timedelta:
    value = parse_duration(text)
    if value <= timedelta(0):
        raise ValueError("must be longer than 0s")
    return value


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


def _event(text: str) -> str:
    if text in WEBHOOK_EVENTS:
        return text
    close = difflib.get_close_matches(text, WEBHOOK_EVENTS, n=1)
    hint = f"did you mean {close[0]}?" if close else f"use one of {', '.join(WEBHOOK_EVENTS)}"
    raise ValueError(f"unknown event {_show(text)} ({hint})")
