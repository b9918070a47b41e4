"""Configured accounts -> providers: each one reports its requests to the given observer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from calsync.config import load_config
from calsync.model import TimeSpan
from calsync.providers.calcom import auth as calcom_auth
from calsync.scheduler.accounts import new_session, open_providers
from tests.fakes.calcom_server import FakeCalcom
from tests.fakes.ics_server import FakeIcsServer

WINDOW = TimeSpan(datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
FEED = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calsync tests//EN\r\n"
    b"BEGIN:VEVENT\r\nUID:a@test\r\nDTSTAMP:20261101T000000Z\r\n"
    b"DTSTART:20261207T080000Z\r\nDTEND:20261207T090000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)
CONFIG = """
[daemon]
state_dir = "state"

[accounts.feed]
provider = "ics"
url = "{feed}"

[accounts.cal]
provider = "calcom"
endpoint = "{calcom}"

[resources.desk]
timezone = "Europe/Vienna"
check = ["feed:primary", "cal:bookings"]
hours.mon = ["09:00-17:00"]
"""


@pytest.fixture
def feed() -> Iterator[FakeIcsServer]:
    with FakeIcsServer(FEED) as server:
        yield server


@pytest.fixture
def cal() -> Iterator[FakeCalcom]:
    with FakeCalcom() as fake:
        yield fake


def test_every_provider_reports_its_requests(
    tmp_path: Path, feed: FakeIcsServer, cal: FakeCalcom
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(feed=feed.url, calcom=cal.endpoint))
    settings = load_config(path)
    calcom_auth.save_api_key(calcom_auth.key_path(settings.daemon.state_dir, "cal"), cal.api_key)
    seen: list[tuple[str, str]] = []
    with new_session() as session:
        providers = open_providers(settings, session, lambda *report: seen.append(report))
        providers["feed"].fetch_changes("primary", None, WINDOW)
        providers["cal"].list_calendars()
    assert ("ics", "ok") in seen
    assert ("calcom", "ok") in seen
    assert {outcome for _, outcome in seen} == {"ok"}
