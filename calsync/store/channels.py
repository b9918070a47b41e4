"""Push channels: which provider channel feeds which calendar, with its secret and expiry."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select

from calsync.model import CalendarRef
from calsync.providers.base import PushChannel
from calsync.store.schema import push_channels

if TYPE_CHECKING:
    from calsync.store.core import Store


class ChannelRepo:
    def __init__(self, store: Store) -> None:
        self._store = store

    def add(self, account: str, channel: PushChannel, now: datetime) -> None:
        with self._store.write() as conn:
            conn.execute(
                insert(push_channels).values(
                    id=channel.id, account=account, calendar=channel.calendar,
                    resource_id=channel.resource_id, token=channel.token,
                    expires_at=channel.expires_at, created_at=now,
                )
            )  # fmt: skip

    def get(self, channel_id: str) -> tuple[CalendarRef, PushChannel] | None:
        with self._store.read() as conn:
            row = conn.execute(
                select(push_channels).where(push_channels.c.id == channel_id)
            ).first()
        return _to_pair(row) if row is not None else None

    def all(self) -> list[tuple[CalendarRef, PushChannel]]:
        with self._store.read() as conn:
            rows = conn.execute(select(push_channels).order_by(push_channels.c.expires_at))
            return [_to_pair(row) for row in rows]

    def remove(self, channel_id: str) -> None:
        with self._store.write() as conn:
            conn.execute(delete(push_channels).where(push_channels.c.id == channel_id))


def _to_pair(row: Any) -> tuple[CalendarRef, PushChannel]:
    channel = PushChannel(row.id, row.calendar, row.resource_id, row.token, row.expires_at)
    return CalendarRef(row.account, row.calendar), channel
