"""Calendars, their sync state, and account health.

Owns the ``accounts``, ``calendars`` and ``sync_state`` tables. Applying a
batch of event changes (which also moves the cursor) lives in ``events``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, Select, func, insert, or_, select, update

from calsync.errors import NotFoundError
from calsync.model import (
    AccountStatus,
    CalendarRef,
    CalendarStatus,
    OutboxEvent,
    SyncCursor,
    TimeSpan,
)
from calsync.store.outbox import write_event
from calsync.store.schema import accounts, calendars, events, sync_state

if TYPE_CHECKING:
    from calsync.store.core import Store


class CalendarRepo:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._ids: dict[CalendarRef, int] = {}

    def ensure(self, ref: CalendarRef, name: str = "", timezone: str | None = None) -> None:
        """Register a calendar (idempotent); refreshes its name and zone when given."""
        with self._store.write() as conn:
            row = conn.execute(_by_ref(ref)).first()
            if row is None:
                cal_id = conn.execute(
                    insert(calendars)
                    .values(
                        account=ref.account, calendar=ref.calendar, name=name, timezone=timezone
                    )
                    .returning(calendars.c.id)
                ).scalar_one()
                conn.execute(insert(sync_state).values(calendar_id=cal_id, failures=0))
            elif name and (row.name, row.timezone) != (name, timezone):
                conn.execute(
                    update(calendars)
                    .where(calendars.c.id == row.id)
                    .values(name=name, timezone=timezone)
                )

    def id_of(self, conn: Connection, ref: CalendarRef) -> int:
        if ref not in self._ids:
            row = conn.execute(_by_ref(ref)).first()
            if row is None:
                raise NotFoundError(f"calendar {ref} has never been synced")
            self._ids[ref] = row.id
        return self._ids[ref]

    def known(self, account: str | None = None) -> list[CalendarRef]:
        query = select(calendars.c.account, calendars.c.calendar).order_by(
            calendars.c.account, calendars.c.calendar
        )
        if account is not None:
            query = query.where(calendars.c.account == account)
        with self._store.read() as conn:
            return [CalendarRef(r.account, r.calendar) for r in conn.execute(query)]

    def cursor(self, ref: CalendarRef) -> SyncCursor:
        with self._store.read() as conn:
            row = conn.execute(
                select(sync_state).where(sync_state.c.calendar_id == self.id_of(conn, ref))
            ).one()
        window = None
        if row.window_start is not None and row.window_end is not None:
            window = TimeSpan(row.window_start, row.window_end)
        return SyncCursor(row.cursor, window)

    def last_successes(self, refs: Sequence[CalendarRef]) -> list[datetime | None]:
        """The last successful sync of every calendar matching ``refs`` (wildcards allowed)."""
        if not refs:
            return []
        with self._store.read_one() as conn:
            return [row.last_success for row in conn.execute(_last_successes(tuple(refs)))]

    def lease(self, ref: CalendarRef, owner: str, now: datetime, ttl: timedelta) -> bool:
        """Take or renew the right to sync ``ref`` until ``now + ttl``; False if another
        instance holds it. One conditional UPDATE: atomic on SQLite and PostgreSQL alike."""
        with self._store.write() as conn:
            cal_id = self.id_of(conn, ref)
            done = conn.execute(
                update(sync_state)
                .where(
                    sync_state.c.calendar_id == cal_id,
                    or_(
                        sync_state.c.lease_owner.is_(None),
                        sync_state.c.lease_owner == owner,
                        sync_state.c.lease_until < now,
                    ),
                )
                .values(lease_owner=owner, lease_until=now + ttl, requested_at=None)
            )
            return done.rowcount == 1

    def request_sync(self, ref: CalendarRef, now: datetime) -> None:
        """Ask the lease owner (maybe another daemon) to sync ``ref`` soon."""
        with self._store.write() as conn:
            conn.execute(
                update(sync_state)
                .where(sync_state.c.calendar_id == self.id_of(conn, ref))
                .values(requested_at=now)
            )

    def requested(self, owner: str) -> list[CalendarRef]:
        """Calendars this instance holds whose sync someone asked for."""
        query = (
            select(calendars.c.account, calendars.c.calendar)
            .join(sync_state, sync_state.c.calendar_id == calendars.c.id)
            .where(sync_state.c.lease_owner == owner, sync_state.c.requested_at.is_not(None))
        )
        with self._store.read() as conn:
            return [CalendarRef(r.account, r.calendar) for r in conn.execute(query)]

    def release_leases(self, owner: str) -> None:
        """Give up every lease (a clean shutdown): another instance takes over at once."""
        with self._store.write() as conn:
            conn.execute(
                update(sync_state)
                .where(sync_state.c.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            )

    def record_failure(
        self,
        ref: CalendarRef,
        error: str,
        at: datetime,
        announce: Callable[[int], OutboxEvent | None] | None = None,
    ) -> int:
        """Note a failed pass; the last good data and cursor stay. Returns consecutive failures.

        ``announce(failures)`` may give an outbox event, written in the same transaction.
        """
        with self._store.write() as conn:
            cal_id = self.id_of(conn, ref)
            conn.execute(
                update(sync_state)
                .where(sync_state.c.calendar_id == cal_id)
                .values(last_attempt=at, last_error=error, failures=sync_state.c.failures + 1)
            )
            failures = int(
                conn.execute(
                    select(sync_state.c.failures).where(sync_state.c.calendar_id == cal_id)
                ).scalar_one()
            )
            event = announce(failures) if announce is not None else None
            if event is not None:
                write_event(conn, event)
            return failures

    def statuses(self) -> list[CalendarStatus]:
        counts = (
            select(events.c.calendar_id, func.count().label("n"))
            .group_by(events.c.calendar_id)
            .subquery()
        )
        query = (
            select(calendars, sync_state, func.coalesce(counts.c.n, 0).label("n"))
            .join(sync_state, sync_state.c.calendar_id == calendars.c.id)
            .outerjoin(counts, counts.c.calendar_id == calendars.c.id)
            .order_by(calendars.c.account, calendars.c.calendar)
        )
        with self._store.read() as conn:
            return [
                CalendarStatus(
                    ref=CalendarRef(r.account, r.calendar),
                    name=r.name,
                    last_attempt=r.last_attempt,
                    last_success=r.last_success,
                    last_error=r.last_error,
                    failures=r.failures,
                    events=r.n,
                )
                for r in conn.execute(query)
            ]

    def set_account_status(
        self,
        name: str,
        provider: str,
        status: str,
        detail: str | None,
        at: datetime,
        event: OutboxEvent | None = None,
    ) -> None:
        with self._store.write() as conn:
            values = {"provider": provider, "status": status, "detail": detail, "updated_at": at}
            done = conn.execute(update(accounts).where(accounts.c.name == name).values(**values))
            if done.rowcount == 0:
                conn.execute(insert(accounts).values(name=name, **values))
            if event is not None:
                write_event(conn, event)

    def account_statuses(self) -> list[AccountStatus]:
        with self._store.read() as conn:
            rows = conn.execute(select(accounts).order_by(accounts.c.name))
            return [AccountStatus(r.name, r.provider, r.status, r.detail) for r in rows]


@lru_cache(maxsize=4096)
def _last_successes(refs: tuple[CalendarRef, ...]) -> Select[Any]:
    return (
        select(sync_state.c.last_success)
        .join(calendars, calendars.c.id == sync_state.c.calendar_id)
        .where(or_(*(matching(ref) for ref in refs)))
    )


def matching(ref: CalendarRef) -> ColumnElement[bool]:
    """A filter on ``calendars`` for one ref; ``*`` matches the whole account."""
    if ref.is_wildcard:
        return calendars.c.account == ref.account
    return (calendars.c.account == ref.account) & (calendars.c.calendar == ref.calendar)


def _by_ref(ref: CalendarRef) -> Select[Any]:
    return select(calendars).where(
        calendars.c.account == ref.account, calendars.c.calendar == ref.calendar
    )
