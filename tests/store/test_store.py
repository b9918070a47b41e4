"""The store on SQLite and PostgreSQL: migrations, atomic sync batches, lookups, health."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from calsync.errors import NotFoundError
from calsync.model import CalendarRef, ChangeSummary, Event, EventStatus, TimeSpan, Transparency
from calsync.providers.base import ChangeBatch
from calsync.store import Store
from calsync.store.schema import metadata
from tests.conftest import postgres_url

VIENNA = ZoneInfo("Europe/Vienna")
T0 = datetime(2026, 12, 7, 9, 0, tzinfo=VIENNA)
REF = CalendarRef("office", "primary")
WINDOW = TimeSpan(datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 3, 1, tzinfo=UTC))
AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    store = Store.open(db_url)
    store.upgrade()
    store.calendars.ensure(REF, name="Office")
    yield store
    store.close()


def ev(pid: str, hour: int, minutes: int = 60, **kw: object) -> Event:
    start = T0.replace(hour=hour)
    return Event(pid, TimeSpan(start, start + timedelta(minutes=minutes)), **kw)  # type: ignore[arg-type]


def full(*events: Event, cursor: str = "c1") -> ChangeBatch:
    return ChangeBatch(tuple(events), (), cursor, full=True)


def test_migrated_database_matches_the_schema(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    assert store.is_current()


def test_upgrade_twice_is_harmless(store: Store) -> None:
    store.upgrade()
    assert store.is_current()


def test_sqlite_runs_in_wal_mode(tmp_path: object) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/x.db")
    with store.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000
    store.close()


def test_full_batch_adds_then_repeats_as_no_change(store: Store) -> None:
    batch = full(ev("a", 9), ev("b", 11))
    assert store.events.apply(REF, batch, WINDOW, AT) == ChangeSummary(added=2)
    assert store.events.apply(REF, batch, WINDOW, AT) == ChangeSummary()
    assert store.events.count(REF) == 2


def test_full_batch_replaces_the_snapshot(store: Store) -> None:
    store.events.apply(REF, full(ev("a", 9), ev("b", 11), ev("c", 13)), WINDOW, AT)
    moved = ev("b", 12)
    summary = store.events.apply(REF, full(ev("a", 9), moved, ev("d", 15)), WINDOW, AT)
    assert summary == ChangeSummary(added=1, changed=1, removed=1)
    got = sorted(store.events.between([REF], WINDOW), key=lambda e: e.provider_id)
    assert [e.provider_id for e in got] == ["a", "b", "d"]
    assert got[1].span == moved.span


def test_incremental_batch_upserts_and_deletes(store: Store) -> None:
    store.events.apply(REF, full(ev("a", 9), ev("b", 11)), WINDOW, AT)
    batch = ChangeBatch((ev("c", 14),), ("a", "unknown"), "c2", full=False)
    assert store.events.apply(REF, batch, WINDOW, AT) == ChangeSummary(added=1, removed=1)
    assert {e.provider_id for e in store.events.between([REF], WINDOW)} == {"b", "c"}
    assert store.calendars.cursor(REF).cursor == "c2"


def test_events_round_trip_all_fields_in_utc(store: Store) -> None:
    original = ev(
        "x",
        10,
        status=EventStatus.TENTATIVE,
        transparency=Transparency.TRANSPARENT,
        declined=True,
        all_day=True,
        etag='"e1"',
        updated=datetime(2026, 11, 30, 8, 0, tzinfo=VIENNA),
    )
    store.events.apply(REF, full(original), WINDOW, AT)
    (got,) = store.events.between([REF], WINDOW)
    assert got == original
    assert got.span.start.tzinfo is UTC
    assert got.span.start == datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # 10:00 Vienna
    assert got.updated is not None
    assert got.updated.tzinfo is UTC


def test_between_is_half_open(store: Store) -> None:
    store.events.apply(REF, full(ev("a", 9)), WINDOW, AT)  # 09:00-10:00 Vienna
    touching_after = TimeSpan(T0.replace(hour=10), T0.replace(hour=11))
    touching_before = TimeSpan(T0.replace(hour=8), T0.replace(hour=9))
    inside = TimeSpan(T0.replace(hour=9, minute=59), T0.replace(hour=11))
    assert store.events.between([REF], touching_after) == []
    assert store.events.between([REF], touching_before) == []
    assert len(store.events.between([REF], inside)) == 1


def test_between_filters_calendars_and_wildcards(store: Store) -> None:
    other = CalendarRef("office", "team")
    store.calendars.ensure(other)
    store.calendars.ensure(CalendarRef("home", "primary"))
    store.events.apply(REF, full(ev("a", 9)), WINDOW, AT)
    store.events.apply(other, full(ev("b", 11)), WINDOW, AT)
    store.events.apply(CalendarRef("home", "primary"), full(ev("c", 13)), WINDOW, AT)
    assert {e.provider_id for e in store.events.between([REF], WINDOW)} == {"a"}
    wildcard = [CalendarRef("office", "*")]
    assert {e.provider_id for e in store.events.between(wildcard, WINDOW)} == {"a", "b"}
    assert store.events.between([], WINDOW) == []


def test_unchanged_batch_only_moves_the_sync_status(store: Store) -> None:
    store.events.apply(REF, full(ev("a", 9)), WINDOW, AT)
    later = AT + timedelta(minutes=5)
    unchanged = ChangeBatch((), (), "c1", full=False, unchanged=True)
    assert store.events.apply(REF, unchanged, WINDOW, later) == ChangeSummary()
    (status,) = store.calendars.statuses()
    assert status.last_success == later
    assert status.events == 1


def test_failures_keep_data_and_cursor_and_reset_on_success(store: Store) -> None:
    store.events.apply(REF, full(ev("a", 9)), WINDOW, AT)
    assert store.calendars.record_failure(REF, "feed unreachable", AT) == 1
    assert store.calendars.record_failure(REF, "feed unreachable", AT) == 2
    (status,) = store.calendars.statuses()
    assert (status.failures, status.last_error, status.events) == (2, "feed unreachable", 1)
    assert store.calendars.cursor(REF).cursor == "c1"
    store.events.apply(REF, full(ev("a", 9), cursor="c2"), WINDOW, AT)
    (status,) = store.calendars.statuses()
    assert (status.failures, status.last_error) == (0, None)


def test_cursor_records_the_window(store: Store) -> None:
    assert store.calendars.cursor(REF).window is None
    store.events.apply(REF, full(ev("a", 9)), WINDOW, AT)
    assert store.calendars.cursor(REF).window == WINDOW


def test_unknown_calendar_is_a_clear_error(store: Store) -> None:
    with pytest.raises(NotFoundError, match="nowhere:primary"):
        store.calendars.cursor(CalendarRef("nowhere", "primary"))


def test_ensure_is_idempotent_and_updates_names(store: Store) -> None:
    store.calendars.ensure(REF, name="Renamed", timezone="Europe/Vienna")
    store.calendars.ensure(REF)
    assert store.calendars.known() == [REF]
    assert store.calendars.statuses()[0].name == "Renamed"


def test_account_status(store: Store) -> None:
    store.calendars.set_account_status("office", "google", "reauth_required", "revoked", AT)
    store.calendars.set_account_status("office", "google", "ok", None, AT)
    (account,) = store.calendars.account_statuses()
    assert (account.name, account.status, account.detail) == ("office", "ok", None)


@pytest.mark.postgres
def test_postgres_gets_timestamptz() -> None:
    for url in postgres_url():
        store = Store.open(url)
        store.upgrade()
        with store.read() as conn:
            kind = conn.execute(
                text(
                    "select data_type from information_schema.columns "
                    "where table_name='events' and column_name='start_at' "
                    "and table_schema=current_schema()"
                )
            ).scalar()
        store.close()
        assert kind == "timestamp with time zone"
