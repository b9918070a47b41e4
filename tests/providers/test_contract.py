"""One contract every provider passes: the in-memory fake and the ICS adapter (file and HTTP).

Replaying the batches a provider returns, with the store's semantics
(``full`` replaces, otherwise upserts and deletions), must always give the
calendar's current events inside the window, whatever the backend.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

import pytest
import requests

from calsync.errors import ProviderError
from calsync.model import Event, TimeSpan
from calsync.providers.base import ChangeBatch, Provider
from calsync.providers.ics import IcsProvider
from tests.fakes.ics_server import FakeIcsServer
from tests.fakes.memory import FakeProvider

WINDOW = TimeSpan(datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
Item = tuple[str, datetime]  # (id, start); every event lasts an hour


def at(day: int, hour: int = 9) -> datetime:
    return (
        datetime(2026, 12, day, hour, tzinfo=UTC)
        if day <= 31
        else datetime(2027, 1, day - 31, hour, tzinfo=UTC)
    )


class Backend(Protocol):
    provider: Provider
    calendar: str

    def publish(self, items: list[Item]) -> None: ...


class MemoryBackend:
    calendar = "primary"

    def __init__(self) -> None:
        self.provider = self.fake = FakeProvider()

    def publish(self, items: list[Item]) -> None:
        wanted = {pid for pid, _ in items}
        for pid in list(self.fake.events["primary"]):
            if pid not in wanted:
                self.fake.remove("primary", pid)
        current = self.fake.events["primary"]
        for pid, start in items:
            event = Event(pid, TimeSpan(start, start + timedelta(hours=1)))
            if current.get(pid) != event:
                self.fake.put("primary", event)


def ics(items: list[Item]) -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//calsync contract//EN"]
    for pid, start in items:
        end = start + timedelta(hours=1)
        lines += [
            "BEGIN:VEVENT",
            f"UID:{pid}",
            "DTSTAMP:20261101T000000Z",
            f"DTSTART:{start:%Y%m%dT%H%M%SZ}",
            f"DTEND:{end:%Y%m%dT%H%M%SZ}",
            "END:VEVENT",
        ]
    return ("\r\n".join([*lines, "END:VCALENDAR"]) + "\r\n").encode()


class FileBackend:
    calendar = "primary"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.write_bytes(ics([]))
        self.provider = IcsProvider(
            str(path), session=requests.Session(), default_timezone=ZoneInfo("Europe/Vienna")
        )

    def publish(self, items: list[Item]) -> None:
        body = ics(items)
        if self.path.read_bytes() != body:
            self.path.write_bytes(body)


class HttpBackend:
    calendar = "primary"

    def __init__(self, server: FakeIcsServer) -> None:
        self.server = server
        self.provider = IcsProvider(
            server.url, session=requests.Session(), default_timezone=ZoneInfo("Europe/Vienna")
        )

    def publish(self, items: list[Item]) -> None:
        self.server.set_body(ics(items))


@pytest.fixture(params=["memory", "ics-file", "ics-http"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "memory":
        yield MemoryBackend()
    elif request.param == "ics-file":
        yield FileBackend(tmp_path / "feed.ics")
    else:
        with FakeIcsServer(ics([])) as server:
            yield HttpBackend(server)


class Replica:
    """What the store would hold after applying each batch."""

    def __init__(self) -> None:
        self.events: dict[str, Event] = {}
        self.cursor: str | None = None

    def apply(self, batch: ChangeBatch) -> None:
        if batch.unchanged:
            assert not batch.events
            assert not batch.deleted
        elif batch.full:
            self.events = {e.provider_id: e for e in batch.events}
        else:
            self.events.update({e.provider_id: e for e in batch.events})
            for pid in batch.deleted:
                self.events.pop(pid, None)
        self.cursor = batch.cursor

    def spans(self) -> dict[str, TimeSpan]:
        return {pid: e.span for pid, e in self.events.items() if e.span.overlaps(WINDOW)}


def expected(items: list[Item]) -> dict[str, TimeSpan]:
    spans = {pid: TimeSpan(s, s + timedelta(hours=1)) for pid, s in items}
    return {pid: span for pid, span in spans.items() if span.overlaps(WINDOW)}


def sync(backend: Backend, replica: Replica) -> ChangeBatch:
    batch = backend.provider.fetch_changes(backend.calendar, replica.cursor, WINDOW)
    replica.apply(batch)
    return batch


def test_first_fetch_is_a_full_snapshot_of_the_window(backend: Backend) -> None:
    items = [("a", at(2)), ("b", at(15)), ("late", at(40)), ("early", at(1, 0) - timedelta(days=3))]
    backend.publish(items)
    replica = Replica()
    batch = sync(backend, replica)
    assert batch.full
    assert batch.cursor is not None
    assert replica.spans() == expected(items)
    assert set(replica.spans()) == {"a", "b"}


def test_replaying_batches_tracks_every_change(backend: Backend) -> None:
    replica = Replica()
    steps = [
        [("a", at(2)), ("b", at(3))],
        [("a", at(2)), ("b", at(3)), ("c", at(4))],  # added
        [("a", at(2, 14)), ("b", at(3)), ("c", at(4))],  # moved
        [("a", at(2, 14)), ("c", at(4))],  # deleted
        [],  # emptied
    ]
    for items in steps:
        backend.publish(items)
        sync(backend, replica)
        assert replica.spans() == expected(items)


def test_an_unchanged_calendar_yields_no_change(backend: Backend) -> None:
    backend.publish([("a", at(2))])
    replica = Replica()
    sync(backend, replica)
    before = dict(replica.events)
    batch = sync(backend, replica)
    assert batch.unchanged or (batch.full and {e.provider_id for e in batch.events} == {"a"})
    assert replica.events == before


def test_a_fetch_without_cursor_is_always_full(backend: Backend) -> None:
    backend.publish([("a", at(2))])
    replica = Replica()
    sync(backend, replica)
    again = backend.provider.fetch_changes(backend.calendar, None, WINDOW)
    assert again.full
    assert {e.provider_id for e in again.events} == {"a"}


def test_the_calendar_is_listed_and_an_unknown_one_is_an_error(backend: Backend) -> None:
    backend.publish([])
    assert backend.calendar in {c.id for c in backend.provider.list_calendars()}
    with pytest.raises(ProviderError):
        backend.provider.fetch_changes("no-such-calendar", None, WINDOW)
