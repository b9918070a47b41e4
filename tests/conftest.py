"""Shared fixtures: a pinned non-UTC local zone, and databases on SQLite and PostgreSQL.

PostgreSQL tests use the server at $CALSYNC_TEST_PG (default
127.0.0.1:5432, database ``test``), each test in a schema of its own. When
the server is absent they are skipped with the reason shown; under CI
(``CI`` set) an absent server is a failure, so CI cannot skip them silently.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

PG_URL = os.environ.get("CALSYNC_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

os.environ["TZ"] = "Pacific/Auckland"  # code must never depend on the machine's zone
time.tzset()


def _pg_problem() -> str | None:
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except Exception as err:
        return str(err).splitlines()[0]
    return None


_PG_PROBLEM: list[str | None] = []


def postgres_url() -> Iterator[str]:
    """A URL of a fresh, empty PostgreSQL schema; dropped afterwards."""
    if not _PG_PROBLEM:
        _PG_PROBLEM.append(_pg_problem())
    problem = _PG_PROBLEM[0]
    if problem is not None:
        message = f"PostgreSQL not reachable at {PG_URL}: {problem}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must run the PostgreSQL tests)")
        pytest.skip(message)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS btree_gist"))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db')}/calsync.db"
    else:
        yield from postgres_url()
