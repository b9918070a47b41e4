"""``/readyz`` and ``/metrics`` on a real migrated SQLite store, through a tiny FastAPI app."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from calsync.api import health
from calsync.api.services import Services
from calsync.clock import FrozenClock
from calsync.metrics import Metrics, endpoint_label
from calsync.model import CalendarRef, Event, OutboxEvent, Resource, Rules, TimeSpan, WallRange
from calsync.providers.base import ChangeBatch
from calsync.scheduler.availability import Availability
from calsync.scheduler.booking import BookingService
from calsync.store import Store

VIENNA = ZoneInfo("Europe/Vienna")
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=VIENNA)
OFFICE = CalendarRef("office", "primary")
HOME = CalendarRef("home", "family")
WINDOW = TimeSpan(datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 3, 1, tzinfo=UTC))
HOOK = "https://user:pw@crm.example.com/hooks/calsync?token=s3cret#frag"
OTHER_HOOK = "https://other.example.com:8443/in"


@pytest.fixture
def store(tmp_path: object) -> Iterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path}/calsync.db")
    store.upgrade()
    yield store
    store.close()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


def client_for(
    store: Store, metrics: Metrics | None = None, services: Services | None = None
) -> TestClient:
    app = FastAPI()
    app.state.store = store
    if metrics is not None:
        app.state.metrics = metrics
    if services is not None:
        app.state.services = services
    app.include_router(health.router)
    return TestClient(app)


def checking(store: Store, *refs: CalendarRef) -> Services:
    """The services of a config whose one resource checks ``refs``."""
    clock = FrozenClock(NOW)
    hours = ((WallRange(9 * 60, 17 * 60),),) * 7
    rules = Rules(VIENNA, hours, timedelta(minutes=30), timedelta(minutes=30))
    desk = Resource("desk", "Desk", "en", refs, None, rules)
    availability = Availability(store, {"desk": desk}, clock, sync_interval=timedelta(minutes=5))
    bookings = BookingService(store, availability, clock, hold_ttl=timedelta(minutes=5))
    return Services(availability, bookings, clock, sync_now=lambda: 0)


def fail(store: Store, ref: CalendarRef) -> None:
    store.calendars.record_failure(ref, "the provider answered 503", NOW)


def succeed(store: Store, ref: CalendarRef, at: datetime, *events: Event) -> None:
    store.events.apply(ref, ChangeBatch(events, (), "cursor-1", full=True), WINDOW, at)


def announcing(event: OutboxEvent) -> Callable[[int], OutboxEvent]:
    return lambda _failures: event


def scrape(metrics: Metrics) -> dict[str, list[Sample]]:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=0.0.4")
    return {f.name: f.samples for f in text_string_to_metric_families(body.decode())}


def value(samples: list[Sample], name: str, **labels: str) -> float:
    found = [s.value for s in samples if s.name == name and s.labels == labels]
    assert len(found) == 1, f"{name}{labels} in {samples}"
    return found[0]


# --- /readyz -----------------------------------------------------------------------------


def test_ready_with_no_calendars(store: Store) -> None:
    answer = client_for(store).get("/readyz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ready", "calendars": 0, "failing": 0}


def test_not_ready_when_every_calendar_fails(store: Store) -> None:
    for ref in (OFFICE, HOME):
        store.calendars.ensure(ref)
        fail(store, ref)
    answer = client_for(store).get("/readyz")
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "not_ready"
    assert body["problems"] == [
        "all 2 calendars failed the last sync; `calsync status` shows why and what to do"
    ]
    assert "503" not in str(body)  # provider error texts stay out of an unauthenticated answer


def test_ready_when_one_of_two_calendars_fails(store: Store) -> None:
    for ref in (OFFICE, HOME):
        store.calendars.ensure(ref)
    fail(store, OFFICE)
    succeed(store, HOME, NOW)
    answer = client_for(store).get("/readyz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ready", "calendars": 2, "failing": 1}


def test_a_calendar_that_recovered_is_not_failing(store: Store) -> None:
    store.calendars.ensure(OFFICE)
    fail(store, OFFICE)
    succeed(store, OFFICE, NOW)
    assert client_for(store).get("/readyz").json()["failing"] == 0


def test_calendars_no_longer_in_the_config_do_not_count(store: Store) -> None:
    for ref in (OFFICE, HOME):
        store.calendars.ensure(ref)
    succeed(store, OFFICE, NOW)
    fail(store, HOME)  # OFFICE's row stays in the store after it left the config

    answer = client_for(store, services=checking(store, HOME)).get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["calendars"] == 1
    assert answer.json()["problems"] == [
        "the only calendar failed the last sync; `calsync status` shows why and what to do"
    ]
    assert client_for(store).get("/readyz").status_code == 200  # without the config: both count

    answer = client_for(store, services=checking(store, OFFICE)).get("/readyz")
    assert answer.json() == {"status": "ready", "calendars": 1, "failing": 0}


def test_a_failing_calendar_that_left_the_config_does_not_make_it_unready(store: Store) -> None:
    store.calendars.ensure(HOME)
    fail(store, HOME)
    assert client_for(store).get("/readyz").status_code == 503
    answer = client_for(store, services=checking(store)).get("/readyz")
    assert answer.json() == {"status": "ready", "calendars": 0, "failing": 0}


def test_an_account_wildcard_in_the_config_covers_its_calendars(store: Store) -> None:
    for ref in (OFFICE, HOME):
        store.calendars.ensure(ref)
    fail(store, HOME)
    answer = client_for(store, services=checking(store, CalendarRef("home", "*"))).get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["calendars"] == 1


def test_a_config_reload_counts_at_the_next_check(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks = [100.0]
    monkeypatch.setattr(health, "_monotonic", lambda: ticks[0])
    for ref in (OFFICE, HOME):
        store.calendars.ensure(ref)
    succeed(store, OFFICE, NOW)
    fail(store, HOME)
    services = checking(store, OFFICE, HOME)
    client = client_for(store, services=services)
    assert client.get("/readyz").status_code == 200
    reloaded = checking(store, HOME).availability.resources()
    services.availability.use({resource.id: resource for resource in reloaded})
    ticks[0] += 1.1
    assert client.get("/readyz").status_code == 503


def test_not_ready_when_the_database_is_not_migrated(tmp_path: object) -> None:
    fresh = Store.open(f"sqlite:///{tmp_path}/fresh.db")
    try:
        answer = client_for(fresh).get("/readyz")
    finally:
        fresh.close()
    assert answer.status_code == 503
    (problem,) = answer.json()["problems"]
    assert "calsync db upgrade" in problem


def test_not_ready_when_the_database_does_not_answer(tmp_path: object) -> None:
    broken = Store.open(f"sqlite:///{tmp_path}/no/such/dir/calsync.db")
    try:
        answer = client_for(broken).get("/readyz")
    finally:
        broken.close()
    assert answer.status_code == 503
    (problem,) = answer.json()["problems"]
    assert problem.startswith("the database does not answer")
    assert "daemon.database" in problem


def test_readiness_is_reused_for_a_second(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = [100.0]
    monkeypatch.setattr(health, "_monotonic", lambda: ticks[0])
    store.calendars.ensure(OFFICE)
    client = client_for(store)
    assert client.get("/readyz").status_code == 200
    fail(store, OFFICE)
    ticks[0] += 0.5
    assert client.get("/readyz").status_code == 200  # the cached answer
    ticks[0] += 0.6
    assert client.get("/readyz").status_code == 503


# --- /metrics ----------------------------------------------------------------------------


def test_metrics_without_a_collector_is_not_found(store: Store) -> None:
    answer = client_for(store).get("/metrics")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


def test_every_observation_shows_in_its_family(store: Store, clock: FrozenClock) -> None:
    metrics = Metrics(store, clock)
    metrics.observe_sync("office:primary", 1.5, None)
    metrics.observe_sync("office:primary", 0.2, "provider_unavailable")
    metrics.observe_lookup("slots", 0.0007)
    metrics.observe_booking("created", 0.3)
    metrics.observe_hold("created")
    metrics.observe_provider("google", "ok")
    metrics.observe_provider("google", "throttled")
    metrics.observe_delivery(OTHER_HOOK, "retry")

    answer = client_for(store, metrics).get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(answer.text)}
    cal = {"calendar": "office:primary"}
    assert value(families["calsync_sync_seconds"].samples, "calsync_sync_seconds_count", **cal) == 2
    errors = families["calsync_sync_errors"].samples
    assert value(errors, "calsync_sync_errors_total", code="provider_unavailable", **cal) == 1
    lookups = families["calsync_lookup_seconds"].samples
    assert value(lookups, "calsync_lookup_seconds_bucket", kind="slots", le="0.001") == 1
    assert value(lookups, "calsync_lookup_seconds_bucket", kind="slots", le="0.0005") == 0
    assert value(lookups, "calsync_lookup_seconds_count", kind="freebusy") == 0
    bookings = families["calsync_bookings"].samples
    assert value(bookings, "calsync_bookings_total", outcome="created") == 1
    assert value(bookings, "calsync_bookings_total", outcome="refused") == 0
    seconds = families["calsync_booking_seconds"].samples
    assert value(seconds, "calsync_booking_seconds_sum", outcome="created") == pytest.approx(0.3)
    assert value(families["calsync_holds"].samples, "calsync_holds_total", outcome="created") == 1
    requests = families["calsync_provider_requests"].samples
    assert value(requests, "calsync_provider_requests_total", provider="google", outcome="ok") == 1
    throttled = families["calsync_provider_throttled"].samples
    assert value(throttled, "calsync_provider_throttled_total", provider="google") == 1
    deliveries = families["calsync_webhook_deliveries"].samples
    assert value(
        deliveries, "calsync_webhook_deliveries_total", endpoint=OTHER_HOOK, outcome="retry"
    ) == 1  # fmt: skip
    build = families["calsync_build_info"].samples
    assert build[0].labels["version"]
    assert value(families["calsync_store_up"].samples, "calsync_store_up") == 1
    for name in ("calsync_sync_age_seconds", "calsync_calendar_events", "calsync_outbox_backlog"):
        assert families[name].type == "gauge"


def test_sync_age_and_events_are_read_from_the_store(store: Store, clock: FrozenClock) -> None:
    for ref in (OFFICE, HOME):
        store.calendars.ensure(ref)
    start = NOW + timedelta(hours=1)
    meeting = Event("e1", TimeSpan(start, start + timedelta(minutes=30)))
    succeed(store, OFFICE, NOW - timedelta(seconds=90), meeting)
    metrics = Metrics(store, clock)

    families = scrape(metrics)
    age = families["calsync_sync_age_seconds"]
    assert value(age, "calsync_sync_age_seconds", calendar="office:primary") == 90
    assert math.isinf(value(age, "calsync_sync_age_seconds", calendar="home:family"))
    events = families["calsync_calendar_events"]
    assert value(events, "calsync_calendar_events", calendar="office:primary") == 1
    assert value(events, "calsync_calendar_events", calendar="home:family") == 0

    clock.advance(timedelta(minutes=10))  # computed at each scrape, not when synced
    later = scrape(metrics)["calsync_sync_age_seconds"]
    assert value(later, "calsync_sync_age_seconds", calendar="office:primary") == 690


def test_calendars_that_left_the_config_leave_the_metrics(store: Store, clock: FrozenClock) -> None:
    for ref in (OFFICE, HOME, CalendarRef("home", "work")):
        store.calendars.ensure(ref)
    metrics = Metrics(store, clock)

    metrics.set_calendars([OFFICE])
    shown = {s.labels["calendar"] for s in scrape(metrics)["calsync_sync_age_seconds"]}
    assert shown == {"office:primary"}

    metrics.set_calendars([CalendarRef("home", "*")])  # a reload: the whole account
    shown = {s.labels["calendar"] for s in scrape(metrics)["calsync_sync_age_seconds"]}
    assert shown == {"home:family", "home:work"}


def test_backlog_per_endpoint_without_secrets(store: Store, clock: FrozenClock) -> None:
    store.calendars.ensure(OFFICE)
    quiet = "https://quiet.example.com/in"
    for n in range(3):
        event = OutboxEvent(
            f"evt_{n}", "sync.failed", {"type": "sync.failed"},
            (HOOK, OTHER_HOOK) if n < 2 else (HOOK,), NOW,
        )  # fmt: skip
        store.calendars.record_failure(OFFICE, "down", NOW, announcing(event))
    metrics = Metrics(store, clock, endpoints=[HOOK, OTHER_HOOK, quiet])

    backlog = scrape(metrics)["calsync_outbox_backlog"]
    clean = "https://crm.example.com/hooks/calsync"
    assert value(backlog, "calsync_outbox_backlog", endpoint=clean) == 3
    assert value(backlog, "calsync_outbox_backlog", endpoint=OTHER_HOOK) == 2
    assert value(backlog, "calsync_outbox_backlog", endpoint=quiet) == 0
    body = metrics.render()[0].decode()
    assert "s3cret" not in body
    assert "pw@" not in body

    metrics.set_endpoints([OTHER_HOOK])
    after = scrape(metrics)["calsync_outbox_backlog"]
    assert {s.labels["endpoint"] for s in after} == {OTHER_HOOK}


def test_delivery_labels_carry_no_secrets(store: Store, clock: FrozenClock) -> None:
    metrics = Metrics(store, clock)
    metrics.observe_delivery(HOOK, "delivered")
    metrics.observe_delivery("https://crm.example.com/hooks/calsync?token=other", "delivered")
    deliveries = scrape(metrics)["calsync_webhook_deliveries"]
    clean = "https://crm.example.com/hooks/calsync"
    total = value(
        deliveries, "calsync_webhook_deliveries_total", endpoint=clean, outcome="delivered"
    )
    assert total == 2


@pytest.mark.parametrize(
    ("url", "label"),
    [
        (HOOK, "https://crm.example.com/hooks/calsync"),
        ("http://[::1]:9000/x?a=1", "http://[::1]:9000/x"),
        ("https://Example.COM/Path", "https://example.com/Path"),
        ("http://host:notaport/x", "invalid-url"),
    ],
)
def test_endpoint_label(url: str, label: str) -> None:
    assert endpoint_label(url) == label


def test_a_store_outage_does_not_break_the_scrape(tmp_path: object, clock: FrozenClock) -> None:
    broken = Store.open(f"sqlite:///{tmp_path}/no/such/dir/calsync.db")
    try:
        metrics = Metrics(broken, clock)
        metrics.observe_lookup("freebusy", 0.002)
        families = scrape(metrics)
    finally:
        broken.close()
    assert value(families["calsync_store_up"], "calsync_store_up") == 0
    assert "calsync_sync_age_seconds" not in families
    lookups = families["calsync_lookup_seconds"]
    assert value(lookups, "calsync_lookup_seconds_count", kind="freebusy") == 1


def test_each_metrics_has_its_own_registry(store: Store, clock: FrozenClock) -> None:
    first, second = Metrics(store, clock), Metrics(store, clock)
    first.observe_hold("refused")
    assert 'calsync_holds_total{outcome="refused"} 1.0' in first.render()[0].decode()
    assert "calsync_holds_total{" not in second.render()[0].decode()


def test_no_created_timestamps_in_the_exposition(store: Store, clock: FrozenClock) -> None:
    metrics = Metrics(store, clock)
    metrics.observe_booking("created", 0.1)
    body = metrics.render()[0].decode()
    assert "_created" not in body
    assert 'calsync_bookings_total{outcome="created"} 1.0' in body
