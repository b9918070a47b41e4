"""The Store: one engine, read and write transactions, and the repositories.

Callers get domain objects from the repositories; connections and rows
stay inside ``calsync.store``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from calsync.errors import StoreError
from calsync.store import migrate
from calsync.store.apikeys import ApiKeyRepo
from calsync.store.bookings import BookingRepo
from calsync.store.calendars import CalendarRepo
from calsync.store.channels import ChannelRepo
from calsync.store.engine import READ_ONE, WRITE, make_engine
from calsync.store.events import EventRepo
from calsync.store.outbox import OutboxRepo


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # SQLite has one writer at a time, and a writer waiting on its lock sleeps in
        # growing steps (up to 100 ms) instead of waking when it frees: this process's
        # writers queue here instead, and busy_timeout still covers other processes.
        self._writers: AbstractContextManager[Any] = (
            threading.RLock() if engine.dialect.name == "sqlite" else nullcontext()
        )
        self.calendars = CalendarRepo(self)
        self.events = EventRepo(self)
        self.bookings = BookingRepo(self)
        self.api_keys = ApiKeyRepo(self)
        self.channels = ChannelRepo(self)
        self.outbox = OutboxRepo(self)

    @classmethod
    def open(cls, url: str) -> Store:
        return cls(make_engine(url))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction: every statement in it sees the same snapshot."""
        with _translated(), self.engine.connect() as connection, connection.begin():
            yield connection

    @contextmanager
    def read_one(self) -> Iterator[Connection]:
        """For a single statement on the lookup path: no explicit transaction on SQLite."""
        with _translated(), self.engine.connect() as connection:
            connection.execution_options(**READ_ONE)
            with connection.begin():
                yield connection

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One transaction; on SQLite it holds the write lock from its first statement."""
        with self._writers, _translated(), self.engine.connect() as connection:
            connection.execution_options(**WRITE)
            with connection.begin():
                yield connection

    def upgrade(self) -> None:
        with _translated():
            migrate.upgrade(self.engine)

    def is_current(self) -> bool:
        with _translated():
            return migrate.current_revision(self.engine) == migrate.head_revision()

    def close(self) -> None:
        self.engine.dispose()


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except SQLAlchemyError as err:
        original = getattr(err, "orig", None)
        detail = str(original) if original is not None else str(err)
        raise StoreError(f"database error: {detail.strip().splitlines()[0]}") from err
