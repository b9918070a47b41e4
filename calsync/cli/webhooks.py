"""Webhook commands: ``webhooks list``, ``webhooks test``, ``webhooks replay``."""

from __future__ import annotations

from datetime import UTC
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import click

from calsync.cli._app import Runtime, main, pass_runtime, print_json
from calsync.config import WebhookSettings
from calsync.errors import CalsyncError, NotFoundError
from calsync.events import Dispatcher
from calsync.model import EndpointState, parse_instant
from calsync.scheduler.accounts import new_session


@main.group()
def webhooks() -> None:
    """Outgoing appointment webhooks: their state, a test send, replays."""


@webhooks.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_runtime
def webhooks_list(rt: Runtime, as_json: bool) -> None:
    """Every configured endpoint: events, backlog, last error, disabled or not."""
    hooks = rt.settings.webhooks
    states = rt.store.outbox.endpoints([hook.url for hook in hooks])
    rows = [_row(hook, state) for hook, state in zip(hooks, states, strict=True)]
    if as_json:
        print_json({"webhooks": rows})
        return
    if not rows:
        click.echo("no [[webhooks]] configured")
    for row in rows:
        state = f"DISABLED ({row['disabled_reason']})" if row["disabled_at"] else "active"
        click.echo(
            f"{row['url']}  {state}  backlog {row['backlog']}  events {','.join(row['events'])}"
        )
        if row["last_error"]:
            click.echo(f"  last error: {row['last_error']}")


@webhooks.command("test")
@click.argument("target", metavar="URL-OR-HOST")
@pass_runtime
def webhooks_test(rt: Runtime, target: str) -> None:
    """Send a signed test event to one configured endpoint and show its answer."""
    hook = find_webhook(rt, target)
    dispatcher = Dispatcher(rt.store, rt.settings.webhooks, rt.clock, session_factory=new_session)
    try:
        result = dispatcher.send_test(hook.url)
    finally:
        dispatcher.stop()
    if result.error:
        raise CalsyncError(f"{hook.url}: {result.error}")
    click.echo(f"{hook.url} answered {result.status} in {result.elapsed:.2f} s")
    if result.body:
        click.echo(f"  {result.body[:300]}")
    if not result.ok:
        raise CalsyncError(f"{hook.url} did not accept the test event (HTTP {result.status})")


@webhooks.command("enable")
@click.argument("target", metavar="URL-OR-HOST")
@pass_runtime
def webhooks_enable(rt: Runtime, target: str) -> None:
    """Deliver to an endpoint again after it was disabled (410, or failing for days)."""
    hook = find_webhook(rt, target)
    rt.store.outbox.enable(hook.url)
    click.echo(f"{hook.url} enabled; its pending events go out with the daemon's next round")


@webhooks.command("replay")
@click.option("--since", required=True, help="ISO 8601; events created since then go out again.")
@click.option("--event", "event_id", help="Only this event id.")
@pass_runtime
def webhooks_replay(rt: Runtime, since: str, event_id: str | None) -> None:
    """Send events again to every endpoint subscribed to them (the daemon delivers them)."""
    start = parse_instant(since, ZoneInfo("UTC"), name="--since")
    subscribed = {hook.url: hook.events for hook in rt.settings.webhooks}
    queued = rt.store.outbox.replay(start, rt.clock.now(), subscribed, event_id)
    click.echo(f"queued {queued} deliveries; the running daemon sends them")


def find_webhook(rt: Runtime, target: str) -> WebhookSettings:
    """A configured endpoint by URL, or by the host name in its URL."""
    for hook in rt.settings.webhooks:
        if target in (hook.url, urlsplit(hook.url).hostname):
            return hook
    known = ", ".join(hook.url for hook in rt.settings.webhooks) or "none configured"
    raise NotFoundError(f"no webhook {target!r} in the config (configured: {known})")


def _row(hook: WebhookSettings, state: EndpointState) -> dict[str, Any]:
    def stamp(value: Any) -> str | None:
        return value.astimezone(UTC).isoformat() if value else None

    return {
        "url": hook.url,
        "events": list(hook.events),
        "backlog": state.backlog,
        "last_success": stamp(state.last_success),
        "failing_since": stamp(state.failing_since),
        "last_error": state.last_error,
        "disabled_at": stamp(state.disabled_at),
        "disabled_reason": state.disabled_reason,
    }
