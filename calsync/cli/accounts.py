"""Account commands: ``auth PROVIDER`` connects an account once; ``calendars`` lists calendars."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click

from calsync.cli._app import Runtime, main, pass_runtime, print_json
from calsync.config import AccountSettings
from calsync.errors import InputError, NotFoundError
from calsync.providers.calcom import auth as calcom_auth
from calsync.providers.google import auth as google_auth
from calsync.providers.google.provider import GoogleProvider
from calsync.providers.outlook import auth as outlook_auth
from calsync.scheduler.accounts import new_session

UTC = ZoneInfo("UTC")


@main.group()
def auth() -> None:
    """Connect a calendar account (once); the credentials are kept in daemon.state_dir."""


@auth.command("google")
@click.option("--account", required=True, metavar="NAME", help="The [accounts.NAME] to connect.")
@click.option("--no-browser", is_flag=True, help="Print the URL instead of opening a browser.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, help="Loopback port (default: a free one)."
)
@click.option(
    "--timeout",
    type=click.IntRange(min=10),
    default=300,
    show_default=True,
    help="Seconds to wait for consent.",
)
@pass_runtime
def auth_google(rt: Runtime, account: str, no_browser: bool, port: int, timeout: int) -> None:
    """Connect a Google account: consent in a browser, store a refreshable token."""
    settings = _account(rt, account, "google")
    assert settings.client_secrets is not None  # the config requires it
    port = port or _free_port()
    credentials = google_auth.consent(
        settings.client_secrets, port=port, open_browser=not no_browser,
        timeout=timeout, token_uri=settings.token_uri,
    )  # fmt: skip
    path = google_auth.token_path(rt.settings.daemon.state_dir, account)
    google_auth.save_credentials(path, credentials)
    click.echo(f"connected Google account {account!r}; token stored in {path}")
    provider = GoogleProvider(
        lambda: credentials, account=account, default_timezone=UTC, endpoint=settings.endpoint
    )
    _print_calendars(account, [_calendar_view(c) for c in provider.list_calendars()])


@auth.command("outlook")
@click.option("--account", required=True, metavar="NAME", help="The [accounts.NAME] to connect.")
@click.option(
    "--browser/--no-browser",
    default=False,
    help="Sign in with a browser here, or (the default) with a device code on any device.",
)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, help="Loopback port for --browser."
)
@click.option(
    "--timeout",
    type=click.IntRange(min=10),
    default=300,
    show_default=True,
    help="Seconds to wait for the sign-in.",
)
@pass_runtime
def auth_outlook(rt: Runtime, account: str, browser: bool, port: int, timeout: int) -> None:
    """Connect a Microsoft 365 / Outlook account (device code by default: works headless)."""
    settings = _account(rt, account, "outlook")
    assert settings.client_id is not None  # the config requires it
    path = outlook_auth.cache_path(rt.settings.daemon.state_dir, account)
    user = outlook_auth.connect(
        path, account=account, client_id=settings.client_id, http_client=new_session(),
        tenant=settings.tenant, authority=settings.authority, browser=browser, port=port,
        timeout=timeout, announce=click.echo,
    )  # fmt: skip
    click.echo(f"connected Outlook account {account!r} as {user}; token cache in {path}")
    _print_calendars(account, [_calendar_view(c) for c in rt.providers[account].list_calendars()])


@auth.command("calcom")
@click.option("--account", required=True, metavar="NAME", help="The [accounts.NAME] to connect.")
@click.option(
    "--api-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read the API key from this file instead of asking for it.",
)
@pass_runtime
def auth_calcom(rt: Runtime, account: str, api_key_file: Path | None) -> None:
    """Connect a Cal.com account with an API key (Settings > Developer > API keys)."""
    settings = _account(rt, account, "calcom")
    if api_key_file is not None:
        key = calcom_auth.read_key_file(api_key_file)
    else:
        key = click.prompt("Cal.com API key", hide_input=True)
    user = calcom_auth.connect(
        rt.settings.daemon.state_dir, account, key, session=new_session(),
        endpoint=settings.endpoint,
    )  # fmt: skip
    click.echo(f"connected Cal.com account {account!r} as {user.username}")
    _print_calendars(account, [_calendar_view(c) for c in rt.providers[account].list_calendars()])


@main.command()
@click.option("--account", metavar="NAME", help="Only this account.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_runtime
def calendars(rt: Runtime, account: str | None, as_json: bool) -> None:
    """List the calendars each account can see (ids for `check` and `book_into`)."""
    names = [account] if account else sorted(rt.settings.accounts)
    found: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        _account(rt, name, None)
        found[name] = [_calendar_view(c) for c in rt.providers[name].list_calendars()]
    if as_json:
        print_json({"accounts": found})
        return
    for name, rows in found.items():
        _print_calendars(name, rows)


def _account(rt: Runtime, name: str, provider: str | None) -> AccountSettings:
    settings = rt.settings.accounts.get(name)
    if settings is None:
        known = ", ".join(sorted(rt.settings.accounts)) or "none"
        raise NotFoundError(f"--account: no account {name!r} in the config (configured: {known})")
    if provider is not None and settings.provider != provider:
        raise InputError(
            f"--account: {name!r} is a {settings.provider} account; "
            f"use `calsync auth {settings.provider} --account {name}`"
        )
    return settings


def _calendar_view(info: Any) -> dict[str, Any]:
    return {
        "id": info.id,
        "name": info.name,
        "timezone": info.timezone,
        "access": info.access,
        "primary": info.primary,
    }


def _print_calendars(account: str, rows: list[dict[str, Any]]) -> None:
    click.echo(f"{account}: {len(rows)} calendars")
    for row in rows:
        mark = " (primary)" if row["primary"] else ""
        click.echo(f"  {account}:{row['id']}  {row['name']}{mark}  [{row['access']}]")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return int(probe.getsockname()[1])
