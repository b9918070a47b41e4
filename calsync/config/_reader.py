"""Reading TOML tables by key path: the ``_Table`` reader, durations and value converters.

This module owns the mechanics every config section shares: ``_Table``, which
tracks the key path of the table being read and collects problems instead of
raising, so that one pass finds every problem; ``parse_duration`` and
``format_duration`` with the bounds of a duration key (``_Limits``); the
converters used by more than one section (non-empty text, paths resolved
against the config file's directory, http(s) URLs, time zones, languages);
and reading a table of named sub-tables (accounts, resources).

A converter takes a string and returns a value or raises ``ValueError`` with
the text that follows ``"key: "`` in the problem. Nothing here knows the
config's sections or keys, raises ``ConfigError``, touches the file system
(paths are only resolved, never checked) or asks for the time.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import date, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel import Locale, UnknownLocaleError

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_DURATION = re.compile(r"(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?")
_ZERO = timedelta(0)

T = TypeVar("T")
D = TypeVar("D")

# --- durations ------------------------------------------------------------------------


def parse_duration(text: str) -> timedelta:
    """``"5m"``, ``"2h"``, ``"1h30m"``, ``"90s"``, ``"1d"``, ``"0m"`` -> timedelta."""
    match = _DURATION.fullmatch(text) if isinstance(text, str) and text else None
    if match is None:
        raise ValueError(_not_a_duration(text))
    days, hours, minutes, seconds = (int(group or 0) for group in match.groups())
    try:
        return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError as err:
        raise ValueError(f"{_show(text)} is too long a duration") from err


def format_duration(value: timedelta) -> str:
    """The inverse of parse_duration: ``timedelta(minutes=90)`` -> ``"1h30m"``, 0 -> ``"0m"``.

    Parts below one second are dropped; negative values are refused.
    """
    if value < _ZERO:
        raise ValueError(f"{value} is negative; durations are never negative")
    rest = value // timedelta(seconds=1)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0m"


def _not_a_duration(value: Any) -> str:
    return f'{_show(value)} is not a duration; write it like "30m" or "1h30m"'


@dataclass(frozen=True, slots=True)
class _Limits:
    """The bounds of one duration key, and why they are what they are."""

    positive: bool = False
    low: timedelta = _ZERO
    high: timedelta | None = None
    why_low: str = ""
    why_high: str = ""

    def parse(self, text: str) -> timedelta:
        value, shown = parse_duration(text), _show(text)
        if self.positive and value <= _ZERO:
            raise ValueError(f"{shown} is too short; it must be longer than 0m")
        if value < self.low:
            low = format_duration(self.low)
            raise ValueError(f"{shown} is below the minimum of {low}{self.why_low}")
        if self.high is not None and value > self.high:
            high = format_duration(self.high)
            raise ValueError(f"{shown} is above the maximum of {high}{self.why_high}")
        return value


_ANY_DURATION = _Limits()
_POSITIVE = _Limits(positive=True)

# --- reading tables -------------------------------------------------------------------


class _Table:
    """One TOML table being read: its key path, and the list its problems go to.

    Readers return a fallback after reporting a problem, so reading goes on
    and every problem is found; the result is only used when none was.
    """

    def __init__(self, data: Mapping[str, Any], path: str, problems: list[str]) -> None:
        self.data = data
        self.path = path
        self.problems = problems
        self.refused: set[str | int] = set()  # keys with a problem

    def at(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        shown = key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)
        return f"{self.path}.{shown}" if self.path else shown

    def problem(self, key: str | int, message: str) -> None:
        self.refused.add(key)
        self.problems.append(f"{self.at(key)}: {message}")

    def under(self, key: str | int) -> _Table:
        """An empty table at ``key``'s path, to report problems about a list's items."""
        return _Table({}, self.at(key), self.problems)

    def check_keys(
        self, allowed: Collection[str], explain: Callable[[str], str | None] = lambda _: None
    ) -> None:
        for key in self.data:
            if key not in allowed:
                self.problem(key, explain(key) or _unknown_key(key, allowed))

    def table(self, key: str | int, value: Any = None, example: str = "") -> _Table:
        """The sub-table at ``key`` (for a list item: ``value``, at index ``key``)."""
        value = self.data.get(key, {}) if isinstance(key, str) else value
        if not isinstance(value, Mapping):
            like = example or f"[{self.at(key)}]"
            self.problem(key, f"expected a table like {like}, got {_show(value)}")
            value = {}
        return _Table(value, self.at(key), self.problems)

    def items(self, key: str, example: str) -> list[tuple[int, Any]]:
        value = self.data.get(key, [])
        if isinstance(value, list):
            return list(enumerate(value))
        self.problem(key, f"expected a list like {example}, got {_show(value)}")
        return []

    def parsed(
        self, key: str, default: D, convert: Callable[[str], T], example: str, needed: str = ""
    ) -> T | D:
        """``convert`` applied to the string at ``key``; ``default`` when absent or refused.

        ``needed`` makes a missing key a problem and says what to give.
        """
        value = self.data.get(key)
        if value is None:
            if needed:
                self.problem(key, f"missing; {needed}")
            return default
        return self.value(key, value, default, convert, example)

    def value(
        self, key: str | int, value: Any, default: D, convert: Callable[[str], T], example: str
    ) -> T | D:
        if not isinstance(value, str):
            self.problem(key, f"expected a string like {example}, got {_show(value)}")
            return default
        try:
            return convert(value)
        except ValueError as err:
            self.problem(key, str(err))
            return default

    def text(self, key: str, default: D, example: str, needed: str = "") -> str | D:
        return self.parsed(key, default, _non_empty, example, needed)

    def duration(self, key: str, default: timedelta, limits: _Limits = _ANY_DURATION) -> timedelta:
        value = self.data.get(key)
        if value is None or isinstance(value, str):
            return self.parsed(key, default, limits.parse, "")
        self.problem(key, _not_a_duration(value))
        return default

    def integer(self, key: str, default: D, low: int, high: int | None = None) -> int | D:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, int) or isinstance(value, bool):
            self.problem(key, f"expected a whole number, got {_show(value)}")
        elif high is not None and not low <= value <= high:
            self.problem(key, f"{value} is out of range; use {low} to {high}")
        elif value < low:
            self.problem(key, f"{value} is too small; use at least {low}")
        else:
            return value
        return default

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if isinstance(value, bool):
            return value
        self.problem(key, f"expected true or false, got {_show(value)}")
        return default


def _unknown_key(key: str, allowed: Collection[str]) -> str:
    close = difflib.get_close_matches(key, list(allowed), n=1)
    if close:
        return f"unknown key (did you mean {close[0]}?)"
    return f"unknown key; expected one of {', '.join(allowed)}"


def _show(value: Any) -> str:
    """A value as it looks in TOML, for messages."""
    if isinstance(value, str):
        return json.dumps(value if len(value) <= 80 else value[:77] + "...", ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Mapping | list):
        return "a table" if isinstance(value, Mapping) else "a list"
    return str(value)


def _named(t: _Table, what: str, read: Callable[[str, _Table], T]) -> dict[str, T]:
    """Read each sub-table of ``t`` (accounts, resources), checking its name."""
    result = {}
    for name in t.data:
        if not _NAME.fullmatch(name):
            like = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_") or "office"
            rule = 'lowercase letters, digits, "-" and "_", starting with a letter or digit'
            t.problem(name, f'{what} use {rule} (like "{like}")')
        table = t.table(name)
        if isinstance(t.data[name], Mapping):  # else reported by t.table; nothing to read
            result[name] = read(name, table)
    return result


# --- converters: str -> value, or ValueError with the text that follows "key: " -------


def _non_empty(text: str) -> str:
    if not text.strip():
        raise ValueError("is empty")
    return text


def _resolve(text: str, base: Path) -> Path:
    if not text.strip():
        raise ValueError("is empty; give a file path")
    return Path(os.path.normpath(base / Path(text).expanduser()))


def _http_url(text: str) -> str:
    try:
        parts = urlsplit(text)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f'{_show(text)} is not an http(s) URL like "https://example.com/path"')
    return text


def _zone(text: str) -> ZoneInfo:
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory like "Europe"
        like = (difflib.get_close_matches(text, _zone_names(), n=1) or ["Europe/Vienna"])[0]
        raise ValueError(
            f'unknown time zone {_show(text)} (use an IANA name like "{like}")'
        ) from None


@cache
def _zone_names() -> list[str]:
    return sorted(available_timezones())


def _language(text: str) -> str:
    """The language as a BCP 47 tag ("de-AT"), if Babel knows the locale."""
    try:
        locale = Locale.parse(text.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        like = '(use a code like "en", "de" or "de-AT")'
        raise ValueError(f"unknown language {_show(text)} {like}") from None
    return str(locale).replace("_", "-")
