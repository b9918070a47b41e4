"""Stored calendar events: applying a sync batch atomically, and reading busy candidates.

``apply`` writes upserts, deletions, the new cursor and the sync status in
ONE transaction, so a lookup never sees half a sync. ``between`` serves
the lookup path and must stay cheap.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Select, bindparam, delete, func, insert, or_, select, update

from calsync.model import (
    CalendarRef,
    ChangeSummary,
    Event,
    EventStatus,
    TimeSpan,
    Transparency,
)
from calsync.store.calendars import matching
from calsync.store.schema import UTCDateTime, calendars, events, sync_state

if TYPE_CHECKING:
    from calsync.providers.base import ChangeBatch
    from calsync.store.core import Store

CHUNK = 500
_FIELDS = ("start_at", "end_at", "all_day", "status", "transparency", "declined", "etag", "updated")


class EventRepo:
    def __init__(self, store: Store) -> None:
        self._store = store

    def apply(
        self, ref: CalendarRef, batch: ChangeBatch, window: TimeSpan, at: datetime
    ) -> ChangeSummary:
        """Apply one provider batch and record the successful pass, atomically."""
        with self._store.write() as conn:
            cal_id = self._store.calendars.id_of(conn, ref)
            summary = ChangeSummary()
            if not batch.unchanged:
                summary = _apply_events(conn, cal_id, batch)
            conn.execute(
                update(sync_state)
                .where(sync_state.c.calendar_id == cal_id)
                .values(
                    cursor=batch.cursor,
                    window_start=window.start,
                    window_end=window.end,
                    last_attempt=at,
                    last_success=at,
                    last_error=None,
                    failures=0,
                )
            )
            return summary

    def count(self, ref: CalendarRef) -> int:
        with self._store.read() as conn:
            cal_id = self._store.calendars.id_of(conn, ref)
            query = select(func.count()).where(events.c.calendar_id == cal_id)
            return int(conn.execute(query).scalar_one())

    def between(self, refs: Sequence[CalendarRef], span: TimeSpan) -> list[Event]:
        """Events of the given calendars (``*`` allowed) that overlap ``span``."""
        if not refs:
            return []
        query = _between(tuple(refs))
        with self._store.read_one() as conn:
            rows = conn.execute(query, {"span_start": span.start, "span_end": span.end})
            return [_to_event(row) for row in rows]


@lru_cache(maxsize=4096)
def _between(refs: tuple[CalendarRef, ...]) -> Select[Any]:
    """The lookup query of one set of calendars, built once (building costs more than running)."""
    return (
        select(events)
        .join(calendars, calendars.c.id == events.c.calendar_id)
        .where(or_(*(matching(ref) for ref in refs)))
        .where(
            events.c.start_at < bindparam("span_end", type_=UTCDateTime),
            events.c.end_at > bindparam("span_start", type_=UTCDateTime),
        )
    )


def _apply_events(conn: Connection, cal_id: int, batch: ChangeBatch) -> ChangeSummary:
    incoming = {event.provider_id: _to_row(event) for event in batch.events}
    touched = None if batch.full else [*incoming, *batch.deleted]  # a full batch touches all
    existing = _existing(conn, cal_id, touched)
    new = [dict(row, calendar_id=cal_id) for pid, row in incoming.items() if pid not in existing]
    changed = [
        dict(row, row_id=existing[pid].id)
        for pid, row in incoming.items()
        if pid in existing and tuple(row[f] for f in _FIELDS) != _stored(existing[pid])
    ]
    gone = set(existing) - set(incoming) if batch.full else set(batch.deleted) & set(existing)
    if new:
        conn.execute(insert(events), new)
    if changed:
        stmt = update(events).where(events.c.id == bindparam("row_id"))
        conn.execute(stmt.values({f: bindparam(f) for f in _FIELDS}), changed)
    _delete(conn, (existing[pid].id for pid in gone))
    return ChangeSummary(added=len(new), changed=len(changed), removed=len(gone))


def _existing(conn: Connection, cal_id: int, only: list[str] | None) -> dict[str, Any]:
    """Stored rows of a calendar: all of them, or just those with the given provider ids."""
    query = select(events.c.id, events.c.provider_id, *(events.c[f] for f in _FIELDS)).where(
        events.c.calendar_id == cal_id
    )
    if only is None:
        return {row.provider_id: row for row in conn.execute(query)}
    found: dict[str, Any] = {}
    for i in range(0, len(only), CHUNK):
        chunk = query.where(events.c.provider_id.in_(only[i : i + CHUNK]))
        found.update((row.provider_id, row) for row in conn.execute(chunk))
    return found


def _stored(row: Any) -> tuple[Any, ...]:
    return tuple(getattr(row, f) for f in _FIELDS)


def _delete(conn: Connection, ids: Iterable[int]) -> None:
    pending = list(ids)
    for i in range(0, len(pending), CHUNK):
        conn.execute(delete(events).where(events.c.id.in_(pending[i : i + CHUNK])))


def _to_row(event: Event) -> dict[str, Any]:
    return {
        "provider_id": event.provider_id,
        "start_at": event.span.start,
        "end_at": event.span.end,
        "all_day": event.all_day,
        "status": event.status.value,
        "transparency": event.transparency.value,
        "declined": event.declined,
        "etag": event.etag,
        "updated": event.updated,
    }


def _to_event(row: Any) -> Event:
    return Event(
        provider_id=row.provider_id,
        span=TimeSpan(row.start_at, row.end_at),
        all_day=row.all_day,
        status=EventStatus(row.status),
        transparency=Transparency(row.transparency),
        declined=row.declined,
        etag=row.etag,
        updated=row.updated,
    )
