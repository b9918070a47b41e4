"""The Provider protocol every calendar backend implements, and its value types.

Adapters take their HTTP session and clock as arguments and raise only
``calsync.errors.ProviderError`` subclasses.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from calsync.model import Event, TimeSpan


class Capability(StrEnum):
    BOOK = "book"  # can write bookings into a calendar
    FREE_BUSY = "free_busy"  # live free/busy re-check
    PUSH = "push"  # change notifications


@dataclass(frozen=True, slots=True)
class CalendarInfo:
    id: str
    name: str
    timezone: str | None = None
    access: str = "reader"
    primary: bool = False


@dataclass(frozen=True, slots=True)
class ChangeBatch:
    """What changed in one calendar since a cursor.

    ``full`` means ``events`` is the complete snapshot of the window: every
    stored event not in it is gone. ``unchanged`` means nothing at all
    changed (e.g. HTTP 304) and the batch carries no events.
    """

    events: tuple[Event, ...]
    deleted: tuple[str, ...]
    cursor: str | None
    full: bool
    unchanged: bool = False


class Provider(Protocol):
    """One connected account of a calendar service."""

    capabilities: frozenset[Capability]

    def list_calendars(self) -> list[CalendarInfo]:
        """The calendars this account can see."""
        ...

    def fetch_changes(self, calendar: str, cursor: str | None, window: TimeSpan) -> ChangeBatch:
        """Changes in ``calendar`` since ``cursor`` (None: a full snapshot of ``window``).

        Raises ``CursorExpiredError`` when the cursor is no longer valid.
        """
        ...
