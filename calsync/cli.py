"""The ``calsync`` command line.

Each command builds only what it needs from the config (lazily, so
``--help`` works without one). Every error reaches the user as one clear
message naming what to fix, with a non-zero exit; never a traceback
(set ``CALSYNC_DEBUG=1`` to see one for an unexpected failure).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import uvicorn

from calsync import __version__
from calsync.api.app import create_app
from calsync.api.auth import Authenticator
from calsync.api.services import Services
from calsync.api.views import booking_view, freebusy_view, slots_view, status_view
from calsync.clock import Clock, SystemClock
from calsync.config import Settings, find_config, load_config
from calsync.errors import (
    CalsyncError,
    InputError,
    NotFoundError,
    SlotUnavailableError,
    StoreError,
)
from calsync.model import (
    ApiKey,
    Attendee,
    Booking,
    CalendarRef,
    Resource,
    Scope,
    TimeSpan,
    parse_instant,
    parse_span,
)
from calsync.scheduler.accounts import checked_refs, new_session, open_providers
from calsync.scheduler.availability import Availability
from calsync.scheduler.booking import BookingRequest, BookingService
from calsync.scheduler.daemon import Daemon
from calsync.scheduler.sync import SyncEngine, SyncResult
from calsync.store import Store

log = logging.getLogger("calsync")


class Runtime:
    """The objects a command needs, built on first use from one config file."""

    def __init__(self, config_path: str | None, clock: Clock) -> None:
        self._config_path = config_path
        self.clock = clock

    @cached_property
    def settings(self) -> Settings:
        return load_config(find_config(self._config_path))

    @cached_property
    def store(self) -> Store:
        """The migrated store (the state dir is created with mode 0700 if missing)."""
        _ensure_dir(self.settings.daemon.state_dir, "daemon.state_dir")
        store = Store.open(self.settings.daemon.database)
        store.upgrade()
        return store

    @cached_property
    def engine(self) -> SyncEngine:
        return SyncEngine(
            self.store,
            open_providers(self.settings, new_session()),
            self.clock,
            horizon_days=self.settings.daemon.horizon_days,
            provider_names={n: a.provider for n, a in self.settings.accounts.items()},
        )

    @cached_property
    def availability(self) -> Availability:
        return Availability(
            self.store,
            self.settings.resources,
            self.clock,
            sync_interval=self.settings.daemon.sync_interval,
        )

    @cached_property
    def bookings(self) -> BookingService:
        return BookingService(
            self.store, self.availability, self.clock, hold_ttl=self.settings.daemon.hold_ttl
        )


def _ensure_dir(path: Path, key: str) -> None:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as err:
        raise StoreError(f"{key}: cannot create {path}: {err.strerror}") from err


class CalsyncGroup(click.Group):
    """Turns calsync errors into one clear line and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except CalsyncError as err:
            raise click.ClickException(err.message) from err
        except Exception as err:
            if os.environ.get("CALSYNC_DEBUG"):
                raise
            raise click.ClickException(
                f"unexpected failure: {type(err).__name__}: {err} "
                "(set CALSYNC_DEBUG=1 to see the traceback, and please report it)"
            ) from err


@click.group(cls=CalsyncGroup)
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help="Config file (default: $CALSYNC_CONFIG, ./config.toml, /etc/calsync/config.toml).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="Log level (default: info for `run`, warning for other commands).",
)
@click.version_option(__version__, prog_name="calsync")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, log_level: str | None) -> None:
    """calsync: a local availability cache and booking daemon for calendars."""
    if log_level is None:
        log_level = "info" if ctx.invoked_subcommand == "run" else "warning"
    for noisy in ("alembic", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.basicConfig(
        level=log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
    )
    ctx.obj = Runtime(config_path, SystemClock())


pass_runtime = click.make_pass_decorator(Runtime)


@main.command()
@pass_runtime
def run(rt: Runtime) -> None:
    """Run the daemon: the HTTP API, and every checked calendar kept in sync (stop: SIGTERM)."""
    settings = rt.settings
    host, port = settings.daemon.listen_host, settings.daemon.listen_port
    _check_port_free(host, port)
    daemon = Daemon(rt.engine, checked_refs(settings), settings.daemon.sync_interval, rt.clock)

    def start() -> None:
        daemon.start()
        log.info(
            "calsync running config=%s listen=http://%s:%d calendars=%d",
            settings.path, host, port, len(daemon.scheduled),
        )  # fmt: skip

    services = Services(rt.availability, rt.bookings, rt.clock, sync_now=daemon.sync_all_now)
    app = create_app(
        services, Authenticator(rt.store.api_keys, rt.clock), on_start=start, on_stop=daemon.stop
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
    )
    # uvicorn drains and shuts down on SIGTERM/SIGINT, then re-raises the signal to the
    # handler it found: make that a no-op so a clean stop exits 0.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: None)
    server.run()
    log.info("calsync stopped")


def _check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            raise InputError(
                f"daemon.listen: cannot listen on {host}:{port}: {err.strerror} "
                "(is another calsync running? pick another port)"
            ) from err


@main.command()
@click.option("--account", metavar="NAME", help="Only this account's calendars.")
@click.option(
    "--full", is_flag=True, help="Fetch everything anew; accepts a calendar that became empty."
)
@pass_runtime
def sync(rt: Runtime, account: str | None, full: bool) -> None:
    """Run one sync pass now, in the foreground, and print a summary."""
    if account is not None and account not in rt.settings.accounts:
        known = ", ".join(sorted(rt.settings.accounts)) or "none"
        raise NotFoundError(f"--account: unknown account {account!r} (configured: {known})")
    refs = checked_refs(rt.settings, account)
    if account is not None and not refs:
        refs = [CalendarRef(account, "*")]
    calendars = rt.engine.resolve(refs)
    with click.progressbar(calendars, label="syncing", item_show_func=_label) as bar:
        results = [rt.engine.sync(ref, full=full) for ref in bar]
    _print_sync_summary(results)
    for name, problem in rt.engine.unresolved.items():
        click.echo(f"  {name}:*: cannot list calendars: {problem}", err=True)
    if rt.engine.unresolved or any(not r.ok for r in results):
        sys.exit(1)


def _label(ref: CalendarRef | None) -> str:
    return str(ref) if ref is not None else ""


def _print_sync_summary(results: list[SyncResult]) -> None:
    failed = [r for r in results if not r.ok]
    added = sum(r.summary.added for r in results)
    changed = sum(r.summary.changed for r in results)
    removed = sum(r.summary.removed for r in results)
    click.echo(
        f"{len(results)} calendars synced, {len(failed)} failed; "
        f"events: {added} added, {changed} changed, {removed} removed"
    )
    for result in failed:
        click.echo(f"  {result.ref}: {result.error}", err=True)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_runtime
def status(rt: Runtime, as_json: bool) -> None:
    """Show each account and calendar: last sync, age, last error, events."""
    view = status_view(
        rt.store.calendars.account_statuses(),
        rt.store.calendars.statuses(),
        now=rt.clock.now(),
        stale_after=2 * rt.settings.daemon.sync_interval,
    )
    if as_json:
        _print_json(view)
        return
    for account in view["accounts"]:
        if account["status"] != "ok":
            click.echo(f"account {account['name']}: {account['status']}: {account['detail']}")
            click.echo(f"  fix: run `{account['fix']}`")
    if not view["calendars"]:
        click.echo("no calendar has been synced yet; run `calsync sync` or `calsync run`")
    for cal in view["calendars"]:
        click.echo(_status_line(cal))


def _status_line(cal: dict[str, Any]) -> str:
    age = "never synced" if cal["age_seconds"] is None else f"{_ago(cal['age_seconds'])} ago"
    line = f"{cal['calendar']:<32} {cal['events']:>6} events  last success {age}"
    if cal["stale"]:
        line += "  STALE"
    if cal["last_error"]:
        line += f"\n  last error ({cal['failures']} in a row): {cal['last_error']}"
    return line


def _ago(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _lookup_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.argument("resource"),
        click.option("--from", "start", required=True, help="ISO 8601 date or time."),
        click.option("--to", "end", required=True, help="ISO 8601; a bare date includes it."),
        click.option("--tz", metavar="ZONE", help="Show times in this IANA zone."),
        click.option("--json", "as_json", is_flag=True, help="Print the HTTP API's JSON."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@main.command()
@_lookup_options
@pass_runtime
def freebusy(
    rt: Runtime, resource: str, start: str, end: str, tz: str | None, as_json: bool
) -> None:
    """Busy times of RESOURCE, merged, from the local cache."""
    res = rt.availability.resource(resource)
    zone = _zone(tz, res)
    result = rt.availability.free_busy(resource, _span(start, end, zone))
    view = freebusy_view(result, zone)
    if as_json:
        _print_json(view)
        return
    click.echo(_header(res, zone, view))
    for span in result.busy:
        click.echo(f"  {_when(span, zone)}")
    if not result.busy:
        click.echo("  (no busy time)")


@main.command()
@_lookup_options
@click.option("--duration", type=click.IntRange(min=1), metavar="MIN", help="Minutes.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many slots.")
@pass_runtime
def slots(
    rt: Runtime,
    resource: str,
    start: str,
    end: str,
    tz: str | None,
    as_json: bool,
    duration: int | None,
    limit: int | None,
) -> None:
    """Free slots of RESOURCE, from the local cache."""
    res = rt.availability.resource(resource)
    zone = _zone(tz, res)
    length = timedelta(minutes=duration) if duration else None
    result = rt.availability.slots(resource, _span(start, end, zone), duration=length, limit=limit)
    view = slots_view(result, now=rt.clock.now(), tz=zone)
    if as_json:
        _print_json(view)
        return
    click.echo(_header(res, zone, view) + f", {view['duration']} min")
    for day, starts in _by_day(result.slots, zone):
        click.echo(f"  {day}  " + " ".join(starts))
    if not result.slots:
        click.echo("  (no free slot)")


def _zone(name: str | None, resource: Resource) -> ZoneInfo:
    if name is None:
        return resource.timezone
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            f"--tz: unknown time zone {name!r} (use an IANA name like Europe/Vienna)"
        ) from None


def _span(start: str, end: str, zone: ZoneInfo) -> TimeSpan:
    return parse_span(start, end, zone, names=("--from", "--to"))


def _header(resource: Resource, zone: ZoneInfo, view: dict[str, Any]) -> str:
    freshness = "never synced" if view["as_of"] is None else f"as of {view['as_of']}"
    if view["stale"]:
        freshness += ", STALE"
    return f"{resource.id} ({zone.key}), {freshness}"


def _when(span: TimeSpan, zone: ZoneInfo) -> str:
    start, end = span.start.astimezone(zone), span.end.astimezone(zone)
    end_fmt = "%H:%M" if end.date() == start.date() else "%a %Y-%m-%d %H:%M"
    return f"{start:%a %Y-%m-%d %H:%M} - {end.strftime(end_fmt)}"


def _by_day(spans: Iterable[TimeSpan], zone: ZoneInfo) -> list[tuple[str, list[str]]]:
    days: dict[str, list[str]] = {}
    for span in spans:
        local = span.start.astimezone(zone)
        days.setdefault(f"{local:%a %Y-%m-%d}", []).append(f"{local:%H:%M}")
    return list(days.items())


@main.command()
@click.argument("resource")
@click.option("--start", required=True, help="ISO 8601; without offset: the resource's zone.")
@click.option("--name", required=True, help="The attendee's name.")
@click.option("--phone", help="Phone number (E.164, or national in the resource's country).")
@click.option("--email", help="Email address.")
@click.option("--duration", type=click.IntRange(min=1), metavar="MIN", help="Minutes.")
@click.option("--notes", help="Free text stored with the booking.")
@click.option("--idempotency-key", help="Retry-safe key (default: a new one).")
@click.option("--json", "as_json", is_flag=True, help="Print the HTTP API's JSON.")
@pass_runtime
def book(
    rt: Runtime,
    resource: str,
    start: str,
    name: str,
    phone: str | None,
    email: str | None,
    duration: int | None,
    notes: str | None,
    idempotency_key: str | None,
    as_json: bool,
) -> None:
    """Book RESOURCE at --start, through the same rules as the HTTP API."""
    res = rt.availability.resource(resource)
    request = BookingRequest(
        resource=res.id,
        start=parse_instant(start, res.timezone, name="--start"),
        attendee=Attendee(name, phone, email),
        duration=timedelta(minutes=duration) if duration else None,
        notes=notes,
    )
    try:
        booking, _ = rt.bookings.book(request, idempotency_key or str(uuid.uuid4()))
    except SlotUnavailableError as err:
        hints = [_when(s, res.timezone) for s in err.alternatives if isinstance(s, TimeSpan)]
        raise SlotUnavailableError(
            err.message + (f"; free nearby: {', '.join(hints)}" if hints else "")
        ) from err
    _print_booking(booking, res.timezone, as_json)


@main.command()
@click.argument("booking_id")
@click.option("--reason", help="Why (stored with the booking).")
@click.option("--json", "as_json", is_flag=True, help="Print the HTTP API's JSON.")
@pass_runtime
def cancel(rt: Runtime, booking_id: str, reason: str | None, as_json: bool) -> None:
    """Cancel a booking (cancelling twice is harmless)."""
    booking = rt.bookings.cancel(booking_id, reason)
    _print_booking(booking, rt.availability.resource(booking.resource).timezone, as_json)


def _print_booking(booking: Booking, zone: ZoneInfo, as_json: bool) -> None:
    if as_json:
        _print_json(booking_view(booking, zone))
        return
    who = booking.attendee.name + (f" ({booking.attendee.phone})" if booking.attendee.phone else "")
    click.echo(
        f"{booking.status.value} {booking.id}: {booking.resource} "
        f"{_when(booking.span, zone)} for {who}"
    )


@main.group()
def apikey() -> None:
    """API keys for the HTTP API (scopes: read < write < admin)."""


@apikey.command("create")
@click.option("--name", required=True, help="Who or what uses the key.")
@click.option("--scope", type=click.Choice([s.value for s in Scope]), required=True)
@pass_runtime
def apikey_create(rt: Runtime, name: str, scope: str) -> None:
    """Create a key and print it once; only its hash is stored."""
    key, token = rt.store.api_keys.create(name, Scope(scope), rt.clock.now())
    click.echo(token)
    click.echo(
        f"created API key {key.prefix} ({key.scope}) for {key.name!r}; "
        "store it now: it cannot be shown again",
        err=True,
    )


@apikey.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_runtime
def apikey_list(rt: Runtime, as_json: bool) -> None:
    """Every key: name, prefix, scope, created, last used, revoked."""
    keys = rt.store.api_keys.list()
    rows = [_key_view(k) for k in keys]
    if as_json:
        _print_json({"api_keys": rows})
        return
    if not rows:
        click.echo("no API keys; create one with `calsync apikey create --name N --scope read`")
    for row in rows:
        state = f"revoked {row['revoked_at'][:16]}" if row["revoked_at"] else "active"
        used = row["last_used_at"][:16] if row["last_used_at"] else "never"
        click.echo(
            f"{row['prefix']}  {row['scope']:<5}  {state:<24}  created {row['created_at'][:16]}"
            f"  last used {used}  {row['name']}"
        )


@apikey.command("revoke")
@click.argument("key")
@pass_runtime
def apikey_revoke(rt: Runtime, key: str) -> None:
    """Revoke KEY (its id, prefix or the key itself); takes effect within 5 seconds."""
    revoked = rt.store.api_keys.revoke(key, rt.clock.now())
    click.echo(f"revoked API key {revoked.prefix} ({revoked.name!r})")


def _key_view(key: ApiKey) -> dict[str, Any]:
    def stamp(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "scope": key.scope.value,
        "created_at": stamp(key.created_at),
        "last_used_at": stamp(key.last_used_at),
        "revoked_at": stamp(key.revoked_at),
    }


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command()
@pass_runtime
def upgrade(rt: Runtime) -> None:
    """Apply pending migrations (the daemon also does this on start)."""
    store = rt.store  # opening migrates
    click.echo(f"database is at the newest schema ({store.dialect})")


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
