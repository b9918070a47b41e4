"""Commands that run or inspect the daemon: ``run``, ``sync``, ``status``, ``db upgrade``."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import sys
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

import click
import uvicorn

from calsync import systemd
from calsync.api.app import create_app
from calsync.api.auth import Authenticator
from calsync.api.services import Services
from calsync.api.views import status_view
from calsync.cli._app import Runtime, log, main, pass_runtime, print_json
from calsync.config import Settings, find_config, load_config
from calsync.errors import ConfigError, InputError, NotFoundError
from calsync.events import Dispatcher
from calsync.metrics import Metrics
from calsync.model import CalendarRef
from calsync.scheduler.accounts import (
    booking_writers,
    checked_refs,
    new_session,
    open_providers,
    webhook_secrets,
)
from calsync.scheduler.daemon import Daemon
from calsync.scheduler.push import CalcomIntake, PushManager
from calsync.scheduler.sync import SyncResult

LEASE_SLACK = timedelta(seconds=30)  # a dead daemon's calendars move on within this


@main.command()
@pass_runtime
def run(rt: Runtime) -> None:
    """Run the daemon: the HTTP API, and every checked calendar kept in sync (stop: SIGTERM)."""
    settings = rt.settings
    host, port = settings.daemon.listen_host, settings.daemon.listen_port
    _check_port_free(host, port)
    # several daemons may share one PostgreSQL: each calendar is synced by one at a time
    rt.engine.instance = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    rt.engine.lease_ttl = settings.daemon.sync_interval + LEASE_SLACK
    metrics = Metrics(rt.store, rt.clock, endpoints=[hook.url for hook in settings.webhooks])
    metrics.set_calendars(checked_refs(settings))
    rt.engine.on_pass = metrics.observe_sync
    rt.on_provider_request = metrics.observe_provider
    push = None
    if settings.daemon.public_url:
        push = PushManager(
            rt.store, rt.providers, {n: a.provider for n, a in settings.accounts.items()},
            rt.clock, public_url=settings.daemon.public_url,
            on_change=lambda ref: daemon.sync_now(ref),
        )  # fmt: skip
    daemon = Daemon(
        rt.engine, checked_refs(settings), settings.daemon.sync_interval, rt.clock, push
    )

    dispatcher = Dispatcher(
        rt.store, settings.webhooks, rt.clock, session_factory=new_session,
        on_delivery=metrics.observe_delivery,
    )  # fmt: skip

    loops: list[asyncio.AbstractEventLoop] = []
    watchdog = systemd.Watchdog(lambda: bool(loops) and systemd.loop_responds(loops[0]))

    def reload() -> None:
        systemd.reloading()
        _reload(rt, daemon, dispatcher, metrics, push, calcom)
        systemd.ready(f"listening on http://{host}:{port}, {len(daemon.scheduled)} calendars")

    def start() -> None:
        loop = asyncio.get_running_loop()
        loops.append(loop)
        daemon.start()
        dispatcher.start()
        loop.add_signal_handler(  # the reload waits on providers: not on the event loop
            signal.SIGHUP, lambda: threading.Thread(target=reload, daemon=True).start()
        )
        log.info(
            "calsync running config=%s listen=http://%s:%d calendars=%d",
            settings.path, host, port, len(daemon.scheduled),
        )  # fmt: skip

    def stop() -> None:
        systemd.stopping("draining requests, stopping syncs and deliveries")
        watchdog.stop()
        dispatcher.stop()
        daemon.stop()

    # Always there, so a reload that adds a Cal.com webhook secret takes effect.
    calcom = CalcomIntake(webhook_secrets(settings), daemon.sync_account_now)
    services = Services(
        rt.availability, rt.bookings, rt.clock, sync_now=daemon.sync_all_now, push=push,
        calcom=calcom, retell_key=_retell_key(settings),
    )  # fmt: skip
    app = create_app(
        services, Authenticator(rt.store.api_keys, rt.clock), store=rt.store, metrics=metrics,
        on_start=start, on_stop=stop,
    )  # fmt: skip
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
    )
    # uvicorn drains and shuts down on SIGTERM/SIGINT, then re-raises the signal to the
    # handler it found: make that a no-op so a clean stop exits 0.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: None)
    threading.Thread(
        target=_announce_ready, args=(server, watchdog, f"{host}:{port}", daemon), daemon=True
    ).start()
    # What start-up built lives as long as the process: keep it out of the collector's
    # full passes, which otherwise stop every request for 50-150 ms under load.
    gc.collect()
    gc.freeze()
    server.run()
    log.info("calsync stopped")


RESTART_KEYS = (
    "listen_host",
    "listen_port",
    "database",
    "state_dir",
    "sync_interval",
    "public_url",
    "horizon_days",
    "hold_ttl",
)


def _retell_key(settings: Settings) -> str | None:
    """The key Retell signs its requests with, when ``voice.retell_api_key_file`` is set."""
    path = settings.voice.retell_api_key_file
    if path is None:
        return None
    try:
        key = path.read_text().strip()
    except OSError as err:
        raise ConfigError(
            [f"voice.retell_api_key_file: cannot read {path} ({err.strerror})"]
        ) from err
    if not key:
        raise ConfigError(
            [f"voice.retell_api_key_file: {path} is empty; put your Retell API key in it"]
        )
    return key


def _reload(
    rt: Runtime,
    daemon: Daemon,
    dispatcher: Dispatcher,
    metrics: Metrics,
    push: PushManager | None,
    calcom: CalcomIntake | None,
) -> None:
    """SIGHUP: read config.toml again and switch resources, accounts and webhooks over
    without dropping a request; a bad file is refused and the running config kept."""
    try:
        new = load_config(find_config(rt.config_path))
        providers = open_providers(new, new_session(), rt.provider_request)
    except ConfigError as err:
        log.error("config reload refused, the running config stays: %s", "; ".join(err.problems))
        return
    names = {name: account.provider for name, account in new.accounts.items()}
    rt.availability.use(new.resources)
    rt.announcer.use(new.webhooks, new.resources)
    rt.engine.use_providers(providers, names)
    rt.bookings.use_writers(booking_writers(providers))
    dispatcher.use(new.webhooks)
    metrics.set_endpoints([hook.url for hook in new.webhooks])
    metrics.set_calendars(checked_refs(new))
    if push is not None:
        push.use(providers, names)
    if calcom is not None:
        calcom.use(webhook_secrets(new))
    old, rt.settings, rt.providers = rt.settings, new, providers
    daemon.use_wanted(checked_refs(new))
    log.info(
        "config reloaded resources=%d accounts=%d webhooks=%d",
        len(new.resources), len(new.accounts), len(new.webhooks),
    )  # fmt: skip
    changed = [k for k in RESTART_KEYS if getattr(new.daemon, k) != getattr(old.daemon, k)]
    if changed:
        log.warning(
            "config reload: daemon.%s changed; restart calsync to apply", ", daemon.".join(changed)
        )


def _announce_ready(
    server: uvicorn.Server, watchdog: systemd.Watchdog, listen: str, daemon: Daemon
) -> None:
    """READY=1 for systemd once uvicorn listens (the store is migrated and the first sync
    passes are under way by then), then the watchdog pings while the event loop answers."""
    while not server.started:
        if server.should_exit:
            return
        time.sleep(0.05)
    systemd.ready(f"listening on http://{listen}, {len(daemon.scheduled)} calendars")
    watchdog.start()


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
    """Show each account and calendar (last sync, age, last error, events) and webhook backlog."""
    wanted = checked_refs(rt.settings)
    view = status_view(
        rt.store.calendars.account_statuses(),
        [s for s in rt.store.calendars.statuses() if s.ref.covered_by(wanted)],
        now=rt.clock.now(),
        stale_after=2 * rt.settings.daemon.sync_interval,
    )
    hooks = rt.store.outbox.endpoints([hook.url for hook in rt.settings.webhooks])
    view["webhooks"] = [
        {"url": h.url, "backlog": h.backlog, "last_error": h.last_error,
         "disabled_reason": h.disabled_reason}
        for h in hooks
    ]  # fmt: skip
    if as_json:
        print_json(view)
        return
    for account in view["accounts"]:
        if account["status"] != "ok":
            click.echo(f"account {account['name']}: {account['status']}: {account['detail']}")
            click.echo(f"  fix: run `{account['fix']}`")
    if not view["calendars"]:
        click.echo("no calendar has been synced yet; run `calsync sync` or `calsync run`")
    for cal in view["calendars"]:
        click.echo(_status_line(cal))
    for hook in view["webhooks"]:
        state = f"DISABLED: {hook['disabled_reason']}" if hook["disabled_reason"] else "active"
        click.echo(f"webhook {hook['url']}  {state}  backlog {hook['backlog']}")


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


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command()
@pass_runtime
def upgrade(rt: Runtime) -> None:
    """Apply pending migrations (the daemon also does this on start)."""
    store = rt.store  # opening migrates
    click.echo(f"database is at the newest schema ({store.dialect})")
