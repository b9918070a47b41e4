"""A calsync app with two resources (German and English) on a real store and a frozen clock.

``Voice`` is what the voice tests drive: the real FastAPI app from
``create_app`` (so routes, auth and error envelopes are the daemon's own),
served in-process by Starlette's TestClient, over SQLite or PostgreSQL.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from calsync.api.app import create_app
from calsync.api.auth import Authenticator
from calsync.api.services import Services
from calsync.clock import FrozenClock
from calsync.config import Settings, parse_config
from calsync.metrics import Metrics
from calsync.model import Scope
from calsync.scheduler.availability import Availability
from calsync.scheduler.booking import BookingService
from calsync.store import Store

VIENNA = ZoneInfo("Europe/Vienna")
NEW_YORK = ZoneInfo("America/New_York")
# Monday 7 December 2026, 08:00 in Vienna: the praxis opens now, the studio (New York) at 15:00.
NOW = datetime(2026, 12, 7, 8, 0, tzinfo=VIENNA)

CONFIG = """
[daemon]
hold_ttl = "5m"

[resources.praxis]
name = "Praxis Dr. Huber"
timezone = "Europe/Vienna"
language = "de"
duration = "30m"
step = "30m"
max_days_ahead = 60
hours.mon = ["08:00-12:00", "14:00-18:00"]
hours.tue = ["08:00-12:00", "14:00-18:00"]
hours.wed = ["08:00-12:00"]
hours.thu = ["08:00-12:00", "14:00-18:00"]
hours.fri = ["08:00-12:00"]

[resources.studio]
name = "Brooklyn Studio"
timezone = "America/New_York"
language = "en"
duration = "60m"
step = "60m"
buffer_after = "30m"
max_days_ahead = 30
hours.mon = ["09:00-17:00"]
hours.tue = ["09:00-17:00"]
hours.wed = ["09:00-17:00"]
hours.thu = ["09:00-17:00"]
hours.fri = ["09:00-17:00"]
"""


def settings(tmp: Path, extra: str = "") -> Settings:
    return parse_config(tomllib.loads(CONFIG + extra), tmp)


@dataclass
class Voice:
    client: TestClient
    clock: FrozenClock
    store: Store
    services: Services
    token: str  # a write-scope API key

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def post(self, path: str, body: Any, **headers: str) -> Any:
        return self.client.post(path, json=body, headers={**self.auth, **headers})


def build(url: str, tmp: Path, *, retell_key: str | None = None) -> tuple[Voice, Store]:
    config = settings(tmp)
    store = Store.open(url)
    store.upgrade()
    clock = FrozenClock(NOW)
    availability = Availability(
        store, config.resources, clock, sync_interval=config.daemon.sync_interval
    )
    bookings = BookingService(store, availability, clock, hold_ttl=config.daemon.hold_ttl)
    services = Services(availability, bookings, clock, sync_now=lambda: 0, retell_key=retell_key)
    metrics = Metrics(store, clock)
    app = create_app(services, Authenticator(store.api_keys, clock), store=store, metrics=metrics)
    _, token = store.api_keys.create("agent", Scope.WRITE, clock.now())
    return Voice(TestClient(app), clock, store, services, token), store


@pytest.fixture
def voice(db_url: str, tmp_path: Path) -> Iterator[Voice]:
    """The app on SQLite and on PostgreSQL."""
    built, store = build(db_url, tmp_path)
    with built.client:
        yield built
    store.close()


def later(voice: Voice, minutes: int) -> None:
    voice.clock.advance(timedelta(minutes=minutes))
