"""Voice tool commands: ``tools export``, the definitions to paste into a voice platform."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import click

from calsync.api.voice.export import FORMATS, definitions
from calsync.cli._app import Runtime, main, pass_runtime, print_json
from calsync.config import Settings
from calsync.errors import InputError, NotFoundError
from calsync.model import Resource


@main.group()
def tools() -> None:
    """The voice-agent tools (check_availability, hold_slot, book_appointment, ...)."""


@tools.command("export")
@click.option(
    "--format",
    "format_",
    type=click.Choice(FORMATS),
    required=True,
    help="openai: Chat Completions tools; vapi, retell, elevenlabs: that platform's tools.",
)
@click.option(
    "--resource",
    metavar="ID",
    help="Serve this resource only: set in the tool URLs, no longer a tool argument.",
)
@click.option(
    "--base-url",
    metavar="URL",
    help="Where the platform reaches calsync (default: daemon.public_url, else http://LISTEN).",
)
@pass_runtime
def tools_export(rt: Runtime, format_: str, resource: str | None, base_url: str | None) -> None:
    """Print the tool definitions for a voice platform as JSON, ready to paste.

    \b
    The API key appears as "Bearer <CALSYNC_API_KEY>": replace the
    placeholder with a write key from
    `calsync apikey create --name vapi --scope write`. Retell tools carry
    no key when voice.retell_api_key_file is set (Retell signs instead).
    """
    settings = rt.settings
    chosen = _resource(settings.resources, resource)
    zone = chosen.timezone if chosen else ZoneInfo("UTC")
    print_json(
        definitions(
            format_,
            base_url=_base_url(base_url, settings),
            resource=resource,
            today=rt.clock.now().astimezone(zone).date(),
            example_resource=next(iter(settings.resources), None),
            language=_language(settings.resources, chosen),
            retell_signed=settings.voice.retell_api_key_file is not None,
        )
    )


def _resource(resources: Mapping[str, Resource], wanted: str | None) -> Resource | None:
    if wanted is None:
        return None
    found = resources.get(wanted)
    if found is None:
        known = ", ".join(resources) or "none; add a [resources.ID] table"
        raise NotFoundError(
            f"--resource: no resource {wanted!r} in the config (configured: {known})"
        )
    return found


def _base_url(given: str | None, settings: Settings) -> str:
    """``--base-url``, else ``daemon.public_url``, else the listen address; no trailing slash."""
    if given is None:
        if settings.daemon.public_url:
            return settings.daemon.public_url
        host = settings.daemon.listen_host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{settings.daemon.listen_port}"
    try:
        parts = urlsplit(given)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok or parts.query or parts.fragment:
        raise InputError(
            f"--base-url: {given!r} is not a base URL like https://calsync.example.com "
            "(http or https, a host, an optional path, no query)"
        )
    return given.rstrip("/")


def _language(resources: Mapping[str, Resource], chosen: Resource | None) -> str:
    """The language of the chosen resource, else the one all share, else English."""
    if chosen is not None:
        return chosen.language
    languages = {res.language for res in resources.values()}
    return languages.pop() if len(languages) == 1 else "en"
