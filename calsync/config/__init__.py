"""Configuration: ``config.toml`` -> validated, frozen ``Settings``.

This package owns finding the config file, reading its TOML, checking every
key (types, ranges, references from resources to accounts, limits between
keys) and resolving relative paths against the config file's directory. It
collects *every* problem in one pass and raises one ``ConfigError`` whose
lines each start with the key path they are about, e.g.
``resources.dr-smith.hours.mon[1]: "13:00-12:00" ends before it starts``.

It must not do I/O beyond reading the config file: it never checks that ICS
files or secret files exist (they may appear later; a sync reports that),
never reads secrets, never opens the database and never asks for the time.

This module is the public surface: finding and loading the file, and
``parse_config``, which reads the root table. The sections live in
``_settings`` (daemon, accounts, webhooks and the settings types) and
``_resources``; both read through ``_reader``'s key-path-tracking table.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from calsync.config._reader import _named, _Table, format_duration, parse_duration
from calsync.config._resources import _resource
from calsync.config._settings import (
    APPOINTMENT_EVENTS,
    DEFAULT_STATE_DIR,
    PROVIDERS,
    WEBHOOK_EVENTS,
    AccountSettings,
    DaemonSettings,
    Settings,
    VoiceSettings,
    WebhookSettings,
    _account,
    _daemon,
    _voice,
    _webhooks,
)
from calsync.errors import ConfigError

__all__ = [
    "APPOINTMENT_EVENTS",
    "CONFIG_ENV",
    "DEFAULT_LOCATIONS",
    "DEFAULT_STATE_DIR",
    "PROVIDERS",
    "WEBHOOK_EVENTS",
    "AccountSettings",
    "DaemonSettings",
    "Settings",
    "VoiceSettings",
    "WebhookSettings",
    "find_config",
    "format_duration",
    "load_config",
    "parse_config",
    "parse_duration",
]

# Read by find_config from this module at call time, so tests may patch it here.
DEFAULT_LOCATIONS: tuple[Path, ...] = (Path("config.toml"), Path("/etc/calsync/config.toml"))
CONFIG_ENV = "CALSYNC_CONFIG"

_ROOT_KEYS = ("daemon", "accounts", "resources", "voice", "webhooks")
_TOML_WHERE = re.compile(r"\s*\((?:at line (\d+), column (\d+)|at end of document)\)$")

# --- finding and loading --------------------------------------------------------------


def find_config(explicit: str | Path | None) -> Path:
    """The config file to use: ``explicit``, ``$CALSYNC_CONFIG``, then DEFAULT_LOCATIONS."""
    if explicit is not None:
        return _existing(Path(explicit).expanduser(), "")
    from_env = os.environ.get(CONFIG_ENV, "")
    if from_env:
        return _existing(Path(from_env).expanduser(), f" (named by ${CONFIG_ENV})")
    for candidate in DEFAULT_LOCATIONS:
        if candidate.is_file():
            return candidate.absolute()
    tried = ", ".join(str(p.absolute()) for p in DEFAULT_LOCATIONS)
    problem = f"no config file found (tried ${CONFIG_ENV}: not set, {tried}); pass --config PATH"
    raise ConfigError([problem])


def _existing(path: Path, origin: str) -> Path:
    if not path.exists():
        raise ConfigError([f"{path}: no such file{origin}"])
    return path.absolute()


def load_config(path: str | Path) -> Settings:
    """Read, parse and validate the config file at ``path``."""
    file = Path(path).expanduser().absolute()
    text = _read_text(file)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError([_syntax_problem(file, text, err)]) from err
    return replace(parse_config(data, file.parent), path=file)


def _read_text(file: Path) -> str:
    try:
        return file.read_bytes().decode("utf-8-sig")
    except FileNotFoundError as err:
        raise ConfigError([f"{file}: no such file"]) from err
    except IsADirectoryError as err:
        raise ConfigError([f"{file}: is a directory, not a config file"]) from err
    except PermissionError as err:
        raise ConfigError([f"{file}: permission denied; let calsync's user read it"]) from err
    except OSError as err:
        raise ConfigError([f"{file}: cannot read ({err.strerror or err})"]) from err
    except UnicodeDecodeError as err:
        raise ConfigError([f"{file}: not UTF-8 text (bad byte at offset {err.start})"]) from err


def _syntax_problem(file: Path, text: str, err: tomllib.TOMLDecodeError) -> str:
    message = str(err)
    where = _TOML_WHERE.search(message)
    if where is None:
        return f"{file}: invalid TOML: {message}"
    if where[1] is None:  # "at end of document": point just past the last character
        lines = text.split("\n")
        line, column = len(lines), len(lines[-1]) + 1
    else:
        line, column = int(where[1]), int(where[2])
    reason = message[: where.start()]
    return f"{file}: line {line}, column {column}: invalid TOML: {reason[:1].lower()}{reason[1:]}"


# --- the root table -------------------------------------------------------------------


def parse_config(data: Mapping[str, Any], base_dir: Path) -> Settings:
    """Validate parsed TOML; relative paths are resolved against ``base_dir``."""
    problems: list[str] = []
    base = Path(os.path.abspath(base_dir.expanduser()))
    root = _Table(data, "", problems)
    root.check_keys(_ROOT_KEYS)
    daemon_table = root.table("daemon")
    daemon = _daemon(daemon_table, base)
    horizon = None if "horizon_days" in daemon_table.refused else daemon.horizon_days
    accounts = _named(root.table("accounts"), "account names", lambda n, t: _account(n, t, base))
    resources = _named(
        root.table("resources"), "resource ids", lambda n, t: _resource(n, t, horizon, accounts)
    )
    webhooks = _webhooks(root, base)
    voice = _voice(root.table("voice"), base)
    if problems:
        raise ConfigError(problems)
    return Settings(
        path=None,
        daemon=daemon,
        accounts=MappingProxyType(accounts),
        resources=MappingProxyType(resources),
        webhooks=webhooks,
        voice=voice,
    )
