"""The Provider protocol every calendar backend implements, and its value types.

Adapters take their HTTP session and clock as arguments and raise only
``calsync.errors.ProviderError`` subclasses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from calsync.model import Attendee, Event, TimeSpan


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


@dataclass(frozen=True, slots=True)
class BookingDraft:
    """What a provider needs to write one booking into a calendar."""

    booking_id: str  # calsync's stable id; providers derive their idempotent ids from it
    resource_name: str
    timezone: str
    span: TimeSpan
    attendee: Attendee
    notes: str | None = None

    def description(self) -> str:
        """The event's text: who booked, how to reach them, and calsync's booking id."""
        lines = [f"Booked by calsync for {self.attendee.name}."]
        if self.attendee.phone:
            lines.append(f"Phone: {self.attendee.phone}")
        if self.attendee.email:
            lines.append(f"Email: {self.attendee.email}")
        if self.notes:
            lines.append(f"Notes: {self.notes}")
        lines.append(f"calsync booking id: {self.booking_id}")
        return "\n".join(lines)


class BookingWriter(Protocol):
    """A provider that can write bookings (``Capability.BOOK``).

    Each call is idempotent for the same booking id: a retried ``book`` must
    not create a second event. Returns the provider's references, stored with
    the booking and handed back to ``cancel``/``reschedule``.
    """

    def book(
        self, calendar: str, draft: BookingDraft, idempotency_key: str
    ) -> Mapping[str, Any]: ...

    def cancel(self, calendar: str, refs: Mapping[str, Any]) -> None: ...

    def reschedule(
        self, calendar: str, refs: Mapping[str, Any], draft: BookingDraft
    ) -> Mapping[str, Any]: ...

    def free_busy(self, calendars: list[str], span: TimeSpan) -> list[TimeSpan]:
        """Live busy time, for ``verify_live`` re-checks just before writing."""
        ...


@dataclass(frozen=True, slots=True)
class PushChannel:
    """A provider's promise to tell ``address`` when a calendar changes (until ``expires_at``)."""

    id: str
    calendar: str
    resource_id: str  # the provider's handle for closing it
    token: str  # a secret echoed back with each notification
    expires_at: datetime


class Subscriber(Protocol):
    """A provider that can push change notifications (``Capability.PUSH``)."""

    def open_channel(self, calendar: str, address: str, token: str) -> PushChannel: ...

    def close_channel(self, channel: PushChannel) -> None: ...
