"""The ``calsync`` command group, the lazily built runtime, and error handling.

Each command builds only what it needs from the config (lazily, so
``--help`` works without one). Every error reaches the user as one clear
message naming what to fix, with a non-zero exit; never a traceback
(set ``CALSYNC_DEBUG=1`` to see one for an unexpected failure).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

import click

from calsync import __version__, logs
from calsync.clock import Clock, SystemClock
from calsync.config import Settings, find_config, load_config
from calsync.errors import CalsyncError, StoreError
from calsync.providers.base import Provider
from calsync.scheduler.accounts import booking_writers, new_session, open_providers
from calsync.scheduler.announce import Announcer
from calsync.scheduler.availability import Availability
from calsync.scheduler.booking import BookingService
from calsync.scheduler.sync import SyncEngine
from calsync.store import Store

log = logging.getLogger("calsync")


class Runtime:
    """The objects a command needs, built on first use from one config file."""

    def __init__(self, config_path: str | None, clock: Clock) -> None:
        self.config_path = config_path
        self.clock = clock
        # told of every HTTP request a provider sends, (provider, outcome): the daemon's metrics
        self.on_provider_request: Callable[[str, str], None] | None = None

    @cached_property
    def settings(self) -> Settings:
        return load_config(find_config(self.config_path))

    @cached_property
    def store(self) -> Store:
        """The migrated store (the state dir is created with mode 0700 if missing)."""
        _ensure_dir(self.settings.daemon.state_dir, "daemon.state_dir")
        store = Store.open(self.settings.daemon.database)
        store.upgrade()
        return store

    @cached_property
    def providers(self) -> dict[str, Provider]:
        return open_providers(self.settings, new_session(), self.provider_request)

    def provider_request(self, provider: str, outcome: str) -> None:
        """Passes one provider request on to ``on_provider_request``, whenever that is set."""
        if self.on_provider_request is not None:
            self.on_provider_request(provider, outcome)

    @cached_property
    def announcer(self) -> Announcer:
        return Announcer(self.settings.webhooks, self.settings.resources, self.clock)

    @cached_property
    def engine(self) -> SyncEngine:
        return SyncEngine(
            self.store,
            self.providers,
            self.clock,
            horizon_days=self.settings.daemon.horizon_days,
            provider_names={n: a.provider for n, a in self.settings.accounts.items()},
            announcer=self.announcer,
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
            self.store,
            self.availability,
            self.clock,
            hold_ttl=self.settings.daemon.hold_ttl,
            writers=booking_writers(self.providers),
            announcer=self.announcer,
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
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="One line per event: key=value text, or JSON.",
)
@click.version_option(__version__, prog_name="calsync")
@click.pass_context
def main(
    ctx: click.Context, config_path: str | None, log_level: str | None, log_format: str
) -> None:
    """calsync: a local availability cache and booking daemon for calendars."""
    if log_level is None:
        log_level = "info" if ctx.invoked_subcommand == "run" else "warning"
    logs.setup(log_level, log_format)
    ctx.obj = Runtime(config_path, SystemClock())


pass_runtime = click.make_pass_decorator(Runtime)


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))
