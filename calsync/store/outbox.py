"""The outbox: events written with the change that caused them, and their deliveries.

``write_event`` runs inside another repository's transaction (a booking, a
sync failure), so an event exists exactly when its change committed. The
dispatcher then claims due deliveries with a lease (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, so several daemons never claim the same row), and
records each outcome. A claim whose daemon died simply expires.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update

from calsync.model import Delivery, EndpointState, OutboxEvent
from calsync.store.schema import deliveries, outbox, webhook_endpoints

if TYPE_CHECKING:
    from calsync.store.core import Store

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


def write_event(conn: Connection, event: OutboxEvent) -> None:
    """Add ``event`` and a pending delivery per endpoint, in the caller's transaction."""
    conn.execute(
        insert(outbox).values(
            id=event.id, type=event.type, payload=dict(event.payload), created_at=event.created_at
        )
    )
    if event.endpoints:
        conn.execute(
            insert(deliveries),
            [_new_delivery(event.id, url, event.created_at) for url in event.endpoints],
        )


def _new_delivery(event_id: str, url: str, now: datetime) -> dict[str, Any]:
    return {
        "event_id": event_id, "endpoint": url, "status": PENDING, "attempts": 0,
        "next_attempt_at": now, "created_at": now,
    }  # fmt: skip


class OutboxRepo:
    def __init__(self, store: Store) -> None:
        self._store = store

    def claim(
        self, now: datetime, lease: timedelta, limit: int, skip: Collection[str] = ()
    ) -> list[Delivery]:
        """Due deliveries (oldest first, none of a disabled or ``skip``ped endpoint), leased."""
        query = (
            select(deliveries, outbox.c.type, outbox.c.payload)
            .join(outbox, outbox.c.id == deliveries.c.event_id)
            .outerjoin(webhook_endpoints, webhook_endpoints.c.url == deliveries.c.endpoint)
            .where(
                deliveries.c.status == PENDING,
                deliveries.c.next_attempt_at <= now,
                or_(deliveries.c.locked_until.is_(None), deliveries.c.locked_until < now),
                webhook_endpoints.c.disabled_at.is_(None),
            )
            .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
            .limit(limit)
        )
        if skip:
            query = query.where(deliveries.c.endpoint.not_in(list(skip)))
        with self._store.write() as conn:
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True, of=deliveries)
            rows = list(conn.execute(query))
            if rows:
                ids = [row.id for row in rows]
                conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id.in_(ids))
                    .values(locked_until=now + lease)
                )
        return [_to_delivery(row) for row in rows]

    def delivered(self, delivery_id: int, status: int, now: datetime) -> None:
        self._finish(delivery_id, status=DELIVERED, last_status=status, delivered_at=now)

    def retry(self, delivery_id: int, at: datetime, status: int | None, error: str) -> None:
        self._finish(delivery_id, next_attempt_at=at, last_status=status, last_error=error)

    def give_up(self, delivery_id: int, status: int | None, error: str) -> None:
        self._finish(delivery_id, status=FAILED, last_status=status, last_error=error)

    def release(self, ids: Sequence[int]) -> None:
        """Hand unfinished claims back (a clean shutdown)."""
        if ids:
            with self._store.write() as conn:
                conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id.in_(list(ids)))
                    .values(locked_until=None)
                )

    def release_stale(self, now: datetime) -> int:
        """Hand back every claim still running (only for a database one daemon owns)."""
        with self._store.write() as conn:
            done = conn.execute(
                update(deliveries)
                .where(deliveries.c.status == PENDING, deliveries.c.locked_until > now)
                .values(locked_until=None)
            )
            return int(done.rowcount)

    def _finish(self, delivery_id: int, **values: Any) -> None:
        with self._store.write() as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .values(attempts=deliveries.c.attempts + 1, locked_until=None, **values)
            )

    # --- endpoints ---------------------------------------------------------------------

    def endpoint_succeeded(self, url: str, now: datetime) -> None:
        self._endpoint(url, failing_since=None, last_success=now, last_error=None)

    def endpoint_failed(self, url: str, error: str, now: datetime) -> datetime:
        """Record a failure; returns since when the endpoint has been failing."""
        state = self._state(url)
        since = state.failing_since if state and state.failing_since else now
        self._endpoint(url, failing_since=since, last_error=error)
        return since

    def disable(self, url: str, reason: str, now: datetime) -> None:
        self._endpoint(url, disabled_at=now, disabled_reason=reason)

    def enable(self, url: str) -> None:
        self._endpoint(url, disabled_at=None, disabled_reason=None, failing_since=None)

    def endpoints(self, urls: Sequence[str]) -> list[EndpointState]:
        """The state and backlog (pending deliveries) of each configured endpoint."""
        backlog = (
            select(deliveries.c.endpoint, func.count().label("n"))
            .where(deliveries.c.status == PENDING)
            .group_by(deliveries.c.endpoint)
        )
        with self._store.read() as conn:
            counts = {row.endpoint: row.n for row in conn.execute(backlog)}
            rows = {r.url: r for r in conn.execute(select(webhook_endpoints))}
        return [_to_state(url, rows.get(url), counts.get(url, 0)) for url in urls]

    def replay(
        self, since: datetime, now: datetime, endpoints: dict[str, tuple[str, ...]],
        event_id: str | None = None,
    ) -> int:  # fmt: skip
        """Queue events again (from ``since``, or one) for the endpoints subscribed to them."""
        query = select(outbox.c.id, outbox.c.type).where(outbox.c.created_at >= since)
        if event_id is not None:
            query = select(outbox.c.id, outbox.c.type).where(outbox.c.id == event_id)
        queued = 0
        with self._store.write() as conn:
            for event in list(conn.execute(query)):
                for url, types in endpoints.items():
                    if event.type in types:
                        queued += _requeue(conn, event.id, url, now)
        return queued

    def _state(self, url: str) -> Any:
        with self._store.read() as conn:
            return conn.execute(
                select(webhook_endpoints).where(webhook_endpoints.c.url == url)
            ).first()

    def _endpoint(self, url: str, **values: Any) -> None:
        with self._store.write() as conn:
            done = conn.execute(
                update(webhook_endpoints).where(webhook_endpoints.c.url == url).values(**values)
            )
            if done.rowcount == 0:
                conn.execute(insert(webhook_endpoints).values(url=url, **values))


def _requeue(conn: Connection, event_id: str, url: str, now: datetime) -> int:
    reset = {"status": PENDING, "attempts": 0, "next_attempt_at": now, "locked_until": None}
    done = conn.execute(
        update(deliveries)
        .where(and_(deliveries.c.event_id == event_id, deliveries.c.endpoint == url))
        .values(**reset)
    )
    if done.rowcount == 0:
        conn.execute(insert(deliveries).values(**_new_delivery(event_id, url, now)))
    return 1


def _to_delivery(row: Any) -> Delivery:
    return Delivery(
        row.id, row.event_id, row.type, row.endpoint, row.payload, row.attempts, row.created_at
    )


def _to_state(url: str, row: Any, backlog: int) -> EndpointState:
    if row is None:
        return EndpointState(url, backlog)
    return EndpointState(
        url, backlog, row.failing_since, row.last_success, row.last_error,
        row.disabled_at, row.disabled_reason,
    )  # fmt: skip
