"""FakeProvider: an in-memory calendar backend with a change log and cursors.

Behaves like a sync-token provider: a full fetch returns the snapshot of the
window and a cursor; a fetch with a cursor returns only what changed since,
deletions included; ``expire_cursors()`` makes old cursors fail with
CursorExpiredError (like Google's 410); ``fail_with`` injects errors.
"""

from __future__ import annotations

from calsync.errors import CursorExpiredError, ProviderDataError, ProviderError
from calsync.model import Event, TimeSpan
from calsync.providers.base import CalendarInfo, Capability, ChangeBatch


class FakeProvider:
    capabilities = frozenset({Capability.BOOK})

    def __init__(self, calendars: tuple[str, ...] = ("primary",)) -> None:
        self.events: dict[str, dict[str, Event]] = {c: {} for c in calendars}
        self._log: dict[str, list[tuple[int, str]]] = {c: [] for c in calendars}
        self._version = 0
        self._oldest_valid = 0
        self.fail_with: ProviderError | None = None
        self.requests: list[tuple[str, str | None]] = []

    def put(self, calendar: str, *events: Event) -> None:
        for event in events:
            self.events[calendar][event.provider_id] = event
            self._record(calendar, event.provider_id)

    def remove(self, calendar: str, provider_id: str) -> None:
        del self.events[calendar][provider_id]
        self._record(calendar, provider_id)

    def expire_cursors(self) -> None:
        self._oldest_valid = self._version + 1

    def _record(self, calendar: str, provider_id: str) -> None:
        self._version += 1
        self._log[calendar].append((self._version, provider_id))

    def list_calendars(self) -> list[CalendarInfo]:
        return [CalendarInfo(id=c, name=c.title()) for c in self.events]

    def fetch_changes(self, calendar: str, cursor: str | None, window: TimeSpan) -> ChangeBatch:
        self.requests.append((calendar, cursor))
        if self.fail_with is not None:
            raise self.fail_with
        if calendar not in self.events:
            raise ProviderDataError(f"no calendar {calendar!r}")
        stored = self.events[calendar]
        new_cursor = str(self._version)
        if cursor is None:
            snapshot = tuple(e for e in stored.values() if e.span.overlaps(window))
            return ChangeBatch(snapshot, (), new_cursor, full=True)
        since = int(cursor)
        if since < self._oldest_valid:
            raise CursorExpiredError("sync cursor expired")
        touched = {pid for version, pid in self._log[calendar] if version > since}
        changed = tuple(
            stored[p] for p in sorted(touched) if p in stored and stored[p].span.overlaps(window)
        )
        deleted = tuple(sorted(p for p in touched if p not in stored))
        unchanged = not touched
        return ChangeBatch(changed, deleted, new_cursor, full=False, unchanged=unchanged)
