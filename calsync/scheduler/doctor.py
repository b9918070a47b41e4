"""``calsync doctor``'s checks: each looks at one thing and says how to fix it.

Every public ``check_*`` function returns ``Check`` results and never
raises: an expected failure becomes a failed ``Check`` whose ``fix`` names
the command, config key or ``chmod`` that mends it; anything unexpected
becomes a failed ``Check`` too (with the traceback logged at debug level).
``run_checks`` runs them all in order; a config that does not load is the
one and only result.

This module reads; it must not repair. It never migrates the database and
never creates the state dir or a database file (``Runtime.store`` would do
both, so it is not used), and it never prints a token, key, secret or
database URL. Network checks go through the injected session, capped at
``NETWORK_TIMEOUT`` seconds by ``cap_timeouts``, and through the provider
adapters themselves, built here with that timeout and a single attempt
(the daemon's adapters retry for up to two minutes).
"""

from __future__ import annotations

import logging
import os
import pwd
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, timedelta
from email.utils import parsedate_to_datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import requests
from requests.adapters import HTTPAdapter

from calsync.clock import Clock
from calsync.config import AccountSettings, Settings, WebhookSettings
from calsync.errors import (
    CalsyncError,
    ConfigError,
    InputError,
    NotFoundError,
    ProviderAuthError,
    StoreError,
)
from calsync.providers.calcom import auth as calcom_auth
from calsync.providers.google import auth as google_auth
from calsync.providers.google.provider import GoogleProvider
from calsync.providers.ics import IcsProvider, describe_source
from calsync.providers.outlook import auth as outlook_auth
from calsync.providers.retry import Retrier
from calsync.store import Store

log = logging.getLogger(__name__)

NETWORK_TIMEOUT = 5.0  # seconds, for connecting and for each read
MAX_SKEW = timedelta(seconds=30)
TOKEN_PATTERNS = ("google-*.json", "outlook-*.json", "calcom-*.key")
DEFAULT_ORIGINS = {
    "google": "https://www.googleapis.com",
    "outlook": "https://graph.microsoft.com",
    "calcom": "https://api.cal.com",
}
_TIME_SOURCES_TRIED = 3
_KEY = re.compile(r"[A-Za-z_][\w.\-\[\]\"]*")
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")
_URL_SECRETS = re.compile(r"(\w+://)[^/\s@]*@|\?[^\s'\"]*")
_UTC_ZONE = ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class Check:
    """One result: what was checked, whether it is fine, and how to fix it when not."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_checks(
    load_settings: Callable[[], Settings],
    *,
    clock: Clock,
    session: requests.Session,
    load_secrets: Callable[[Path], list[str]],
) -> list[Check]:
    """Every check in order: config, state dir, database, accounts, clock, push, webhooks."""
    config, settings = check_config(load_settings)
    if settings is None:
        return [config]
    checks = [config, *check_state_dir(settings.daemon.state_dir)]
    checks += check_database(settings.daemon.database)
    for name in sorted(settings.accounts):
        checks += check_account(settings, name, session)
    checks += check_inbound_secrets(settings.accounts)
    checks += check_clock(settings.accounts, session, clock)
    checks += check_push(settings.daemon.public_url, session)
    checks += check_webhooks(settings.webhooks, load_secrets)
    return checks


def cap_timeouts(session: requests.Session, seconds: float = NETWORK_TIMEOUT) -> requests.Session:
    """``session`` with every request limited to ``seconds`` (MSAL and others ask for more)."""
    adapter = _CappedAdapter(seconds)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class _CappedAdapter(HTTPAdapter):
    def __init__(self, seconds: float) -> None:
        super().__init__()
        self._seconds = seconds

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        return super().send(request, stream, self._seconds, verify, cert, proxies)


def _safely(name: str, probe: Callable[[], Check | list[Check]]) -> list[Check]:
    try:
        found = probe()
    except Exception as err:
        return [_unexpected(name, err)]
    return [found] if isinstance(found, Check) else found


def _unexpected(name: str, err: Exception) -> Check:
    log.debug("doctor check %s failed unexpectedly", name, exc_info=True)
    detail = f"unexpected {type(err).__name__}: {_scrub(str(err))}"
    fix = "run `calsync --log-level debug doctor` for the traceback and please report it"
    return Check(name, False, detail, fix)


# --- config ---------------------------------------------------------------------------


def check_config(load_settings: Callable[[], Settings]) -> tuple[Check, Settings | None]:
    """Whether the config loads; when not, every problem and the keys to fix."""
    try:
        settings = load_settings()
    except ConfigError as err:
        keys = [_key_of(problem) for problem in err.problems]
        named = ", ".join(dict.fromkeys(k for k in keys if k))
        fix = f"fix {named} in the config file" if named else "as said, or pass --config PATH"
        return Check("config", False, "; ".join(err.problems), fix), None
    except Exception as err:
        return _unexpected("config", err), None
    return Check("config", True, f"{settings.path or 'the config'} loads"), settings


def _key_of(problem: str) -> str | None:
    head, sep, _ = problem.partition(": ")
    return head if sep and _KEY.fullmatch(head) else None


# --- state dir ------------------------------------------------------------------------


def check_state_dir(state_dir: Path) -> list[Check]:
    """The state dir is this user's, closed to group and others, writable; tokens are 0600."""
    return _safely("state_dir", lambda: _state_dir(state_dir))


def _state_dir(path: Path) -> list[Check]:
    if not path.exists():
        fix = f"mkdir -m 700 {path} (as the user calsync runs as), or `calsync db upgrade`"
        return [Check("state_dir", False, f"{path} does not exist (daemon.state_dir)", fix)]
    if not path.is_dir():
        fix = f"move {path} away, or point daemon.state_dir at a directory"
        return [Check("state_dir", False, f"{path} is not a directory", fix)]
    problems, fixes = _ownership(path, 0o700)
    if not os.access(path, os.W_OK | os.X_OK):
        problems.append("not writable by this user")
        fixes.append(f"chmod u+rwx {path}")
    if problems:
        dir_check = Check("state_dir", False, f"{path}: {'; '.join(problems)}", "; ".join(fixes))
    else:
        detail = f"{path}: mode {_mode(path):04o}, owned by {_me()}, writable"
        dir_check = Check("state_dir", True, detail)
    return [dir_check, _tokens(path)]


def _tokens(state_dir: Path) -> Check:
    files = sorted({p for pattern in TOKEN_PATTERNS for p in state_dir.glob(pattern)})
    problems: list[str] = []
    fixes: list[str] = []
    for file in files:
        found, fixed = _ownership(file, 0o600)
        problems += [f"{file.name}: {problem}" for problem in found]
        fixes += fixed
    if problems:
        return Check("tokens", False, "; ".join(problems), "; ".join(fixes))
    if not files:
        return Check("tokens", True, "no token files yet (`calsync auth ...` writes them)")
    return Check("tokens", True, f"{len(files)} token files, each 0600 and owned by {_me()}")


def _ownership(path: Path, wanted: int) -> tuple[list[str], list[str]]:
    """What is wrong with ``path``'s owner and mode, and the commands that fix it."""
    problems: list[str] = []
    fixes: list[str] = []
    owner = path.stat().st_uid
    if owner != os.getuid():
        problems.append(f"owned by uid {owner}, not by {_me()}")
        fixes.append(f"chown {_me()} {path} (or run `calsync doctor` as the daemon's user)")
    mode = _mode(path)
    if mode & 0o077:
        problems.append(f"mode {mode:04o} lets group or others in")
        fixes.append(f"chmod {wanted:o} {path}")
    return problems, fixes


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o7777


def _me() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


# --- database -------------------------------------------------------------------------


def check_database(url: str) -> list[Check]:
    """The database answers ``SELECT 1`` and its schema is at the newest migration."""
    return _safely("database", lambda: _database(url))


def _database(url: str) -> Check:
    file = _sqlite_file(url)
    where = f"sqlite {file}" if file else url.partition(":")[0].partition("+")[0]
    if file is not None and not file.exists():
        return Check("database", False, f"{where}: no database yet", "calsync db upgrade")
    reach = "check daemon.database: the server must be up and reachable, the file readable"
    try:
        store = Store.open(_with_connect_timeout(url))
    except StoreError as err:
        return Check("database", False, err.message, reach)
    try:
        with store.read() as connection:
            connection.exec_driver_sql("SELECT 1")
        current = store.is_current()
    except StoreError as err:
        return Check("database", False, f"{where}: {err.message}", reach)
    finally:
        store.close()
    if not current:
        detail = f"{where}: reachable, but its schema is not at the newest migration"
        return Check("database", False, detail, "calsync db upgrade")
    return Check("database", True, f"{where}: reachable, migrations current")


def _with_connect_timeout(url: str) -> str:
    """A PostgreSQL URL that gives up connecting after NETWORK_TIMEOUT (libpq waits long)."""
    if not url.startswith("postgresql") or "connect_timeout=" in url:
        return url
    return f"{url}{'&' if '?' in url else '?'}connect_timeout={NETWORK_TIMEOUT:.0f}"


def _sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URL (as the config writes them); None otherwise."""
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///").partition("?")[0]
    return Path(path) if path and path != ":memory:" else None


# --- accounts -------------------------------------------------------------------------


def check_account(settings: Settings, name: str, session: requests.Session) -> list[Check]:
    """The account's credentials work (or, for ICS, its feed is readable)."""
    return _safely(f"accounts.{name}", lambda: _account(settings, name, session))


def _account(settings: Settings, name: str, session: requests.Session) -> Check:
    account = settings.accounts[name]
    probe = _PROBES.get(account.provider)
    if probe is None:
        fix = f"set accounts.{name}.provider to one of {', '.join(_PROBES)}"
        return Check(f"accounts.{name}", False, f"unknown provider {account.provider!r}", fix)
    try:
        detail = probe(settings.daemon.state_dir, account, session)
    except CalsyncError as err:
        return Check(f"accounts.{name}", False, err.message, _account_fix(account, err))
    return Check(f"accounts.{name}", True, detail)


def _google(state_dir: Path, account: AccountSettings, session: requests.Session) -> str:
    path = google_auth.token_path(state_dir, account.name)
    credentials = google_auth.load_credentials(path, account.name, account.token_uri)
    credentials.token = None  # refresh now: proves the stored refresh token still works
    provider = GoogleProvider(
        lambda: credentials, account=account.name, default_timezone=_UTC_ZONE,
        endpoint=account.endpoint, timeout=NETWORK_TIMEOUT, retrier=Retrier(attempts=1),
    )  # fmt: skip
    try:
        calendars = provider.list_calendars()
    except CalsyncError:
        _require_scopes(account.name, credentials)  # a missing scope explains a refusal
        raise
    finally:
        provider.close()
    _require_scopes(account.name, credentials)
    plural = "" if len(calendars) == 1 else "s"
    return f"token refreshed, all scopes granted, {len(calendars)} calendar{plural}"


def _require_scopes(account: str, credentials: Any) -> None:
    """Every scope calsync needs was granted (as the refresh answered, else as stored)."""
    granted = set(credentials.granted_scopes or credentials.scopes or ())
    missing = [google_auth.SCOPE_NAMES[s] for s in google_auth.SCOPES if s not in granted]
    if missing:
        raise ProviderAuthError(f"Google account {account!r} was not granted: {', '.join(missing)}")


def _outlook(state_dir: Path, account: AccountSettings, session: requests.Session) -> str:
    assert account.client_id is not None  # the config requires it
    token = outlook_auth.TokenSource(
        outlook_auth.cache_path(state_dir, account.name), account=account.name,
        client_id=account.client_id, http_client=session, tenant=account.tenant,
        authority=account.authority,
    )  # fmt: skip
    token()  # never shown
    return "a token was acquired silently from the stored sign-in"


def _calcom(state_dir: Path, account: AccountSettings, session: requests.Session) -> str:
    key = calcom_auth.load_api_key(calcom_auth.key_path(state_dir, account.name), account.name)
    user = calcom_auth.verify(
        session, account.endpoint, key, account=account.name, timeout=NETWORK_TIMEOUT
    )
    return f"the API key verifies against /v2/me as {user.username}"


def _ics(state_dir: Path, account: AccountSettings, session: requests.Session) -> str:
    assert account.url is not None  # the config requires it
    provider = IcsProvider(
        account.url, session=session, default_timezone=_UTC_ZONE, name=account.name,
        timeout=NETWORK_TIMEOUT,
    )  # fmt: skip
    calendar = provider.list_calendars()[0]
    return f"feed {describe_source(account.url)} is readable ({calendar.name!r})"


_PROBES: dict[str, Callable[[Path, AccountSettings, requests.Session], str]] = {
    "google": _google,
    "outlook": _outlook,
    "calcom": _calcom,
    "ics": _ics,
}


def _account_fix(account: AccountSettings, err: CalsyncError) -> str:
    name, provider = account.name, account.provider
    if provider == "ics":
        return (
            f"check accounts.{name}.url: a file this user can read, or a feed URL that "
            "answers (with its secret token, if it has one)"
        )
    if isinstance(err, NotFoundError) or ".endpoint" in err.message:
        return f"check accounts.{name}.endpoint, or remove it to use {DEFAULT_ORIGINS[provider]}"
    if isinstance(err, (ProviderAuthError, InputError)):
        return f"calsync auth {provider} --account {name}"
    host = _origin(account.endpoint or DEFAULT_ORIGINS[provider])
    return (
        f"make {host} reachable from this machine (DNS, firewall, HTTPS_PROXY), "
        "then run `calsync doctor` again"
    )


def check_inbound_secrets(accounts: Mapping[str, AccountSettings]) -> list[Check]:
    """Each Cal.com ``webhook_secret_file`` (inbound webhooks) is readable and not empty."""
    checks: list[Check] = []
    for name in sorted(accounts):
        path = accounts[name].webhook_secret_file
        if accounts[name].provider == "calcom" and path is not None:
            key = f"accounts.{name}.webhook_secret_file"
            checks += _safely(key, partial(_inbound, name, path, key))
    return checks


def _inbound(name: str, path: Path, key: str) -> Check:
    try:
        calcom_auth.load_webhook_secret(path, name)
    except CalsyncError as err:
        fix = f"put the secret of the Cal.com webhook into {path}, or correct {key}"
        return Check(key, False, err.message.removeprefix(f"{key}: "), fix)
    return Check(key, True, f"{path} holds a secret")


# --- clock ----------------------------------------------------------------------------


def check_clock(
    accounts: Mapping[str, AccountSettings], session: requests.Session, clock: Clock
) -> list[Check]:
    """The local clock against the ``Date`` of a provider's answer; > 30 s off fails."""
    return _safely("clock", lambda: _clock(accounts, session, clock))


def _clock(
    accounts: Mapping[str, AccountSettings], session: requests.Session, clock: Clock
) -> Check:
    sources = _time_sources(accounts)
    if not sources:
        return Check("clock", True, "skipped: no account talks to a server (local ICS files only)")
    reasons: list[str] = []
    for url in sources[:_TIME_SOURCES_TRIED]:
        try:
            offset = _offset(session, url, clock)
        except (requests.RequestException, ValueError, TypeError) as err:
            reasons.append(f"{_origin(url)}: {_reason(err)}")
            continue
        return _skew(offset, _origin(url))
    detail = f"warning: cannot measure the clock skew: {'; '.join(reasons)}"
    fix = "make a provider reachable from this machine (DNS, firewall, HTTPS_PROXY)"
    return Check("clock", False, detail, fix)


def _time_sources(accounts: Mapping[str, AccountSettings]) -> list[str]:
    """One URL per server the accounts talk to, in account-name order."""
    by_origin: dict[str, str] = {}
    for name in sorted(accounts):
        url = _time_source(accounts[name])
        if url:
            by_origin.setdefault(_origin(url), url)
    return list(by_origin.values())


def _time_source(account: AccountSettings) -> str | None:
    if account.provider == "ics":
        url = account.url or ""
        return url if urlsplit(url).scheme in ("http", "https") else None
    return account.endpoint or DEFAULT_ORIGINS.get(account.provider)


def _offset(session: requests.Session, url: str, clock: Clock) -> timedelta:
    """How far the server's clock is ahead of ours (negative: behind)."""
    before = clock.now()
    with session.get(url, stream=True, timeout=NETWORK_TIMEOUT) as response:
        header = response.headers.get("Date")
    after = clock.now()
    if not header:
        raise ValueError("its answer has no Date header")
    server = parsedate_to_datetime(header)
    if server.tzinfo is None:
        server = server.replace(tzinfo=UTC)
    # a Date is truncated to the second: its middle is the best guess of the server's time
    return server + timedelta(seconds=0.5) - (before + (after - before) / 2)


def _skew(offset: timedelta, origin: str) -> Check:
    seconds = round(abs(offset.total_seconds()))
    side = "behind" if offset > timedelta(0) else "ahead of"
    detail = f"the local clock is {seconds} s {side} {origin}"
    if seconds == 0:
        detail = f"the local clock agrees with {origin} to the second"
    if abs(offset) > MAX_SKEW:
        fix = "enable NTP: `timedatectl set-ntp true` (then check `timedatectl status`)"
        return Check("clock", False, f"{detail} (more than {MAX_SKEW.seconds} s)", fix)
    return Check("clock", True, detail)


# --- push -----------------------------------------------------------------------------


def check_push(public_url: str, session: requests.Session) -> list[Check]:
    """When ``daemon.public_url`` is set, ``<public_url>/healthz`` answers 200."""
    return _safely("push", lambda: _push(public_url, session))


def _push(public_url: str, session: requests.Session) -> Check:
    if not public_url:
        return Check("push", True, "daemon.public_url is empty: polling only")
    shown = f"{_origin(public_url)}{urlsplit(public_url).path}/healthz"
    fix = (
        f"make {_origin(public_url)} reach this daemon: start it (`systemctl start calsync`), "
        "point the reverse proxy / TLS terminator at daemon.listen and open the firewall; "
        'or set daemon.public_url = "" to poll only'
    )
    try:
        with session.get(f"{public_url}/healthz", timeout=NETWORK_TIMEOUT) as response:
            status = response.status_code
    except requests.RequestException as err:
        return Check("push", False, f"GET {shown}: {_reason(err)}", fix)
    if status != 200:
        return Check("push", False, f"GET {shown} answered HTTP {status}, not 200", fix)
    return Check("push", True, f"GET {shown} answered 200")


# --- webhooks -------------------------------------------------------------------------


def check_webhooks(
    hooks: tuple[WebhookSettings, ...], load_secrets: Callable[[Path], list[str]]
) -> list[Check]:
    """Each ``[[webhooks]]`` secret_file holds usable signing secrets."""
    if not hooks:
        return [Check("webhooks", True, "none configured")]
    checks: list[Check] = []
    for index, hook in enumerate(hooks):
        name = f"webhooks[{index}]"
        checks += _safely(name, partial(_webhook, name, hook, load_secrets))
    return checks


def _webhook(name: str, hook: WebhookSettings, load_secrets: Callable[[Path], list[str]]) -> Check:
    path = hook.secret_file
    try:
        count = len(load_secrets(path))
    except ConfigError as err:
        fix = (
            f"point {name}.secret_file at a file calsync's user can read, holding a secret; "
            f"make one: (umask 077; printf 'whsec_%s\\n' \"$(openssl rand -base64 32)\" > {path}) "
            "and give the receiver the same secret"
        )
        return Check(name, False, "; ".join(err.problems), fix)
    plural = "" if count == 1 else "s"
    return Check(name, True, f"{path}: {count} secret{plural} for {_origin(hook.url)}")


# --- helpers --------------------------------------------------------------------------


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: never its userinfo, path tokens or query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{netloc}" + (f":{parts.port}" if parts.port else "")


def _reason(err: Exception) -> str:
    """A short, secret-free reason for a failed request."""
    if isinstance(err, requests.Timeout):
        return f"no answer within {NETWORK_TIMEOUT:g} s"
    if isinstance(err, requests.exceptions.SSLError):
        return "TLS handshake failed (certificate or protocol)"
    if isinstance(err, (ValueError, TypeError)) and not isinstance(err, requests.RequestException):
        return _scrub(str(err)) or type(err).__name__
    match = _ERRNO.search(str(err))
    return match.group(1).strip() if match else type(err).__name__


def _scrub(text: str) -> str:
    """``text`` without URL userinfo and query strings (where tokens hide)."""
    return _URL_SECRETS.sub(lambda m: m.group(1) or "", text)
