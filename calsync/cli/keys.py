"""API key commands: ``apikey create|list|revoke``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from calsync.cli._app import Runtime, main, pass_runtime, print_json
from calsync.model import ApiKey, Scope


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
        print_json({"api_keys": rows})
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
