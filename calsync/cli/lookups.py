"""Lookup commands: ``freebusy`` and ``slots``, answered from the local cache."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from calsync.api.views import freebusy_view, slots_view
from calsync.cli._app import Runtime, main, pass_runtime, print_json
from calsync.errors import InputError
from calsync.model import Resource, TimeSpan, parse_span


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
        print_json(view)
        return
    click.echo(_header(res, zone, view))
    for span in result.busy:
        click.echo(f"  {when(span, zone)}")
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
        print_json(view)
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


def when(span: TimeSpan, zone: ZoneInfo) -> str:
    start, end = span.start.astimezone(zone), span.end.astimezone(zone)
    end_fmt = "%H:%M" if end.date() == start.date() else "%a %Y-%m-%d %H:%M"
    return f"{start:%a %Y-%m-%d %H:%M} - {end.strftime(end_fmt)}"


def _by_day(spans: Iterable[TimeSpan], zone: ZoneInfo) -> list[tuple[str, list[str]]]:
    days: dict[str, list[str]] = {}
    for span in spans:
        local = span.start.astimezone(zone)
        days.setdefault(f"{local:%a %Y-%m-%d}", []).append(f"{local:%H:%M}")
    return list(days.items())
