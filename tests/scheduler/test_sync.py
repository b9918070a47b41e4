"""The sync engine against an in-memory provider: cursors, expiry, wipes, failures, windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from calsync.clock import FrozenClock
from calsync.errors import ProviderAuthError, ProviderUnavailableError
from calsync.model import CalendarRef, ChangeSummary, Event, TimeSpan
from calsync.scheduler.sync import SyncEngine, covers, rolling_window
from calsync.store import Store
from tests.fakes.memory import FakeProvider

NOW = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
REF = CalendarRef("office", "primary")


def ev(pid: str, day: int, hour: int = 9) -> Event:
    start = datetime(2026, 12, day, hour, tzinfo=UTC)
    return Event(pid, TimeSpan(start, start + timedelta(hours=1)))


@pytest.fixture
def provider() -> FakeProvider:
    fake = FakeProvider(("primary", "team"))
    fake.put("primary", ev("a", 2), ev("b", 3))
    return fake


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def engine(store: Store, provider: FakeProvider, clock: FrozenClock) -> SyncEngine:
    engine = SyncEngine(
        store, {"office": provider}, clock, horizon_days=30, provider_names={"office": "fake"}
    )
    engine.resolve([REF])
    return engine


def stored_ids(store: Store) -> set[str]:
    window = rolling_window(NOW, 30)
    return {e.provider_id for e in store.events.between([REF], window)}


def test_rolling_window_is_whole_utc_days_from_yesterday_with_a_week_of_slack() -> None:
    window = rolling_window(datetime(2026, 12, 1, 23, 59, tzinfo=UTC), 90)
    assert window.start == datetime(2026, 11, 30, tzinfo=UTC)
    assert window.end == datetime(2027, 3, 9, tzinfo=UTC)
    assert covers(window, datetime(2026, 12, 8, 23, 59, tzinfo=UTC), 90)  # a week on
    assert not covers(window, datetime(2026, 12, 9, 0, 0, tzinfo=UTC), 90)  # horizon too far
    assert not covers(window, datetime(2026, 11, 29, 23, 0, tzinfo=UTC), 90)  # starts too late


def test_first_pass_is_full_then_incremental(
    engine: SyncEngine, store: Store, provider: FakeProvider
) -> None:
    first = engine.sync(REF)
    assert first.ok
    assert first.full
    assert first.summary == ChangeSummary(added=2)
    provider.put("primary", ev("c", 4))
    provider.remove("primary", "a")
    second = engine.sync(REF)
    assert not second.full
    assert second.summary == ChangeSummary(added=1, removed=1)
    assert stored_ids(store) == {"b", "c"}
    assert provider.requests == [("primary", None), ("primary", "2")]
    assert store.calendars.cursor(REF).cursor == "4"


def test_unchanged_pass_changes_nothing_but_freshness(
    engine: SyncEngine, store: Store, clock: FrozenClock
) -> None:
    engine.sync(REF)
    clock.advance(timedelta(minutes=5))
    result = engine.sync(REF)
    assert result.summary == ChangeSummary()
    assert store.calendars.last_successes([REF]) == [NOW + timedelta(minutes=5)]


def test_expired_cursor_means_one_full_resync(
    engine: SyncEngine, store: Store, provider: FakeProvider
) -> None:
    engine.sync(REF)
    provider.put("primary", ev("c", 4))
    provider.expire_cursors()
    result = engine.sync(REF)
    assert result.ok
    assert result.full
    assert stored_ids(store) == {"a", "b", "c"}
    cursors = [cursor for _, cursor in provider.requests]
    assert cursors[-2:] == ["2", None]  # the expired one, then exactly one full fetch


def test_failure_keeps_the_last_good_data(
    engine: SyncEngine, store: Store, provider: FakeProvider
) -> None:
    engine.sync(REF)
    provider.fail_with = ProviderUnavailableError("calendar server down")
    result = engine.sync(REF)
    assert not result.ok
    assert result.failures == 1
    assert stored_ids(store) == {"a", "b"}
    (status,) = store.calendars.statuses()
    assert status.last_error == "calendar server down"
    provider.fail_with = None
    assert engine.sync(REF).ok
    assert store.calendars.statuses()[0].failures == 0


def test_sudden_empty_snapshot_is_refused_unless_full(
    engine: SyncEngine, store: Store, provider: FakeProvider, clock: FrozenClock
) -> None:
    engine.sync(REF)
    provider.remove("primary", "a")
    provider.remove("primary", "b")
    clock.advance(timedelta(days=8))  # the window moves: the next pass is a full snapshot
    refused = engine.sync(REF)
    assert not refused.ok
    assert refused.error is not None
    assert "calsync sync --account office --full" in refused.error
    assert stored_ids(store) == {"a", "b"}
    forced = engine.sync(REF, full=True)
    assert forced.ok
    assert forced.summary == ChangeSummary(removed=2)
    assert stored_ids(store) == set()


def test_incremental_deletions_of_everything_are_not_a_wipe(
    engine: SyncEngine, store: Store, provider: FakeProvider
) -> None:
    engine.sync(REF)
    provider.remove("primary", "a")
    provider.remove("primary", "b")
    assert engine.sync(REF).summary == ChangeSummary(removed=2)


def test_a_week_later_the_window_moves_with_a_full_fetch(
    engine: SyncEngine, provider: FakeProvider, clock: FrozenClock
) -> None:
    engine.sync(REF)
    clock.advance(timedelta(days=1))
    engine.sync(REF)  # yesterday's window still covers the horizon
    clock.advance(timedelta(days=7))
    engine.sync(REF)
    assert [cursor for _, cursor in provider.requests] == [None, "2", None]


def test_auth_failure_marks_the_account_until_a_success(
    engine: SyncEngine, store: Store, provider: FakeProvider
) -> None:
    provider.fail_with = ProviderAuthError("token revoked; run calsync auth")
    engine.sync(REF)
    (account,) = store.calendars.account_statuses()
    assert (account.status, account.provider) == ("reauth_required", "fake")
    provider.fail_with = None
    engine.sync(REF)
    assert store.calendars.account_statuses()[0].status == "ok"


def test_reauth_state_survives_a_restart(
    store: Store, provider: FakeProvider, clock: FrozenClock
) -> None:
    first = SyncEngine(store, {"office": provider}, clock, horizon_days=30)
    first.resolve([REF])
    provider.fail_with = ProviderAuthError("revoked")
    first.sync(REF)
    provider.fail_with = None
    restarted = SyncEngine(store, {"office": provider}, clock, horizon_days=30)
    restarted.sync(REF)
    assert store.calendars.account_statuses()[0].status == "ok"


def test_wildcards_resolve_through_the_provider(engine: SyncEngine, store: Store) -> None:
    refs = engine.resolve([CalendarRef("office", "*")])
    assert refs == [CalendarRef("office", "primary"), CalendarRef("office", "team")]
    assert {s.name for s in store.calendars.statuses()} == {"Primary", "Team"}


def test_wildcard_falls_back_to_known_calendars_when_provider_is_down(
    engine: SyncEngine, provider: FakeProvider
) -> None:
    provider_list = provider.list_calendars

    def down() -> list[object]:
        raise ProviderUnavailableError("down")

    provider.list_calendars = down  # type: ignore[method-assign,assignment]
    assert engine.resolve([CalendarRef("office", "*")]) == [REF]
    provider.list_calendars = provider_list  # type: ignore[method-assign]


def test_a_failing_calendar_does_not_stop_the_others(
    engine: SyncEngine, store: Store, provider: FakeProvider
) -> None:
    team = CalendarRef("office", "team")
    engine.resolve([team, CalendarRef("office", "gone")])
    provider.put("team", ev("t", 5))
    results = [engine.sync(r) for r in (CalendarRef("office", "gone"), REF, team)]
    assert [r.ok for r in results] == [False, True, True]
    assert store.events.count(team) == 1


def test_a_calendar_is_synced_by_the_instance_holding_its_lease(
    db_url: str, provider: FakeProvider, clock: FrozenClock
) -> None:
    shared = Store.open(db_url)
    shared.upgrade()
    try:
        one = SyncEngine(shared, {"office": provider}, clock, horizon_days=30, instance="one",
                         lease=timedelta(minutes=5, seconds=30))  # fmt: skip
        two = SyncEngine(shared, {"office": provider}, clock, horizon_days=30, instance="two",
                         lease=timedelta(minutes=5, seconds=30))  # fmt: skip
        one.resolve([REF])
        assert one.sync(REF).ok
        assert two.sync(REF).skipped
        assert two.sync(REF, requested=True).skipped
        assert one.requested() == [REF]  # the push reached the owner
        clock.advance(timedelta(minutes=5))
        assert one.sync(REF).ok  # the owner renews its lease
        assert one.requested() == []
        clock.advance(timedelta(minutes=5, seconds=31))  # the owner died: its lease ran out
        assert two.sync(REF).ok
        assert one.sync(REF).skipped
        two.release_leases()  # a clean stop hands over at once
        assert one.sync(REF).ok
    finally:
        shared.close()
