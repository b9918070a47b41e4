"""``/readyz`` and ``/metrics`` of a real ``calsync run`` fed by two ICS feeds over HTTP,
before and after a SIGHUP reload that drops the healthy feed from the config."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests

from tests.api.daemon import VIENNA, Daemon, feed, wait_for
from tests.fakes.ics_server import FakeIcsServer

CONFIG = """
[daemon]
listen = "127.0.0.1:{port}"
state_dir = "state"
database = "{database}"
sync_interval = "10s"

[accounts.good]
provider = "ics"
url = "GOOD"

[accounts.broken]
provider = "ics"
url = "BROKEN"

[resources.desk]
timezone = "Europe/Vienna"
check = [CHECK]
hours.mon = ["09:00-17:00"]
"""


@pytest.fixture
def feeds() -> Iterator[tuple[FakeIcsServer, FakeIcsServer]]:
    body = feed(datetime.now(VIENNA).date() + timedelta(days=2)).encode()
    with FakeIcsServer(body) as good, FakeIcsServer(body) as broken:
        broken.fail_next(500, n=100_000)
        yield good, broken


def config(good: FakeIcsServer, broken: FakeIcsServer, *check: str) -> str:
    refs = ", ".join(f'"{ref}"' for ref in check)
    return CONFIG.replace("GOOD", good.url).replace("BROKEN", broken.url).replace("CHECK", refs)


def ready(daemon: Daemon) -> int:
    return requests.get(f"{daemon.url}/readyz", timeout=5).status_code


def counted(daemon: Daemon, outcome: str) -> float:
    return daemon.metric("calsync_provider_requests_total", provider="ics", outcome=outcome)


def test_requests_are_counted_and_readyz_follows_the_config(
    tmp_path: Path, feeds: tuple[FakeIcsServer, FakeIcsServer]
) -> None:
    good, broken = feeds
    database = f"sqlite:///{tmp_path}/calsync.db"
    daemon = Daemon(
        tmp_path, database, config=config(good, broken, "good:primary", "broken:primary")
    )
    daemon.start()
    try:
        assert daemon.process is not None
        assert wait_for(lambda: counted(daemon, "ok") > 0 and counted(daemon, "error") > 0, 20)
        assert wait_for(lambda: ready(daemon) == 200, 5)  # one of two calendars fails

        only_broken = config(good, broken, "broken:primary")
        daemon.config.write_text(only_broken.format(port=daemon.port, database=database))
        errors = counted(daemon, "error")
        daemon.process.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "config reloaded" in daemon.current_log(), 10)
        # good:primary keeps its healthy row in the store; only broken:primary counts now
        assert wait_for(lambda: ready(daemon) == 503, 5)
        admin = {"Authorization": f"Bearer {daemon.key('admin')}"}
        requests.post(f"{daemon.url}/v1/sync", headers=admin, timeout=10)
        assert wait_for(lambda: counted(daemon, "error") > errors, 10)  # the reloaded providers
    finally:
        assert daemon.stop() == 0, daemon.log
