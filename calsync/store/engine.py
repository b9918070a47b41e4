"""Database engines: SQLite (WAL, busy timeout, serialized writes) or PostgreSQL (psycopg 3).

SQLite transactions are begun by hand, as the SQLAlchemy docs recommend
for pysqlite: reads use a deferred BEGIN, writes ``BEGIN IMMEDIATE`` so two
writers serialize instead of failing half-way.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from calsync.errors import StoreError

SQLITE_BUSY_TIMEOUT_MS = 10_000
WRITE = {"sqlite_begin": "IMMEDIATE"}
AUTOCOMMIT = "none"  # single-statement reads: SQLite's implicit transaction is enough
READ_ONE = {"sqlite_begin": AUTOCOMMIT}
POOL_SIZE = 40  # the HTTP server runs up to 40 request threads: one connection each, kept
POOL_OVERFLOW = 10  # the scheduler's and dispatcher's threads, opened when needed


def make_engine(url: str) -> Engine:
    """An engine for a ``sqlite:///`` or ``postgresql+psycopg://`` URL."""
    try:
        parsed = make_url(url)
    except Exception as err:
        raise StoreError(f"daemon.database: cannot parse URL: {err}") from err
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, in_memory=parsed.database in (None, "", ":memory:"))
    if parsed.get_backend_name() == "postgresql":
        return create_engine(
            url, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW
        )
    raise StoreError(
        f"daemon.database: unsupported database {parsed.get_backend_name()!r}; "
        "use sqlite:////path/calsync.db or postgresql+psycopg://..."
    )


def _sqlite_engine(url: str, *, in_memory: bool) -> Engine:
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
    if in_memory:
        kwargs["poolclass"] = StaticPool
    else:
        kwargs.update(pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode != AUTOCOMMIT:
            connection.exec_driver_sql(f"BEGIN {mode}")

    return engine
