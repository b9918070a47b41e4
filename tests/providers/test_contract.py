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
from google.oauth2.credentials import Credentials

from calsync.errors import CalsyncError
from calsync.model import Event, TimeSpan
from calsync.providers.base import ChangeBatch, Provider
from calsync.providers.google import auth as google_auth
from calsync.providers.google.provider import GoogleProvider
from calsync.providers.ics import IcsProvider
from calsync.providers.outlook.provider import OutlookProvider
from tests.fakes.google_server import FakeGoogle
from tests.fakes.graph import FakeGraph
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

    def name(self, provider_id: str) -> str:
        """The item id behind a provider's event id."""
        ...


class _SameIds:
    def name(self, provider_id: str) -> str:
        return provider_id


class MemoryBackend(_SameIds):
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


class FileBackend(_SameIds):
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


class HttpBackend(_SameIds):
    calendar = "primary"

    def __init__(self, server: FakeIcsServer) -> None:
        self.server = server
        self.provider = IcsProvider(
            server.url, session=requests.Session(), default_timezone=ZoneInfo("Europe/Vienna")
        )

    def publish(self, items: list[Item]) -> None:
        self.server.set_body(ics(items))


class GoogleBackend:
    """Items become events whose ids are base32hex, as Google requires."""

    calendar = "primary"

    def __init__(self, google: FakeGoogle) -> None:
        self.google = google
        google.add_calendar(google.primary_calendar_id, primary=True, time_zone="UTC")
        grant = google.user_credentials(google_auth.SCOPES)
        self.provider = GoogleProvider(
            lambda: Credentials(**grant), account="g", default_timezone=ZoneInfo("UTC"),
            endpoint=google.api_endpoint,
        )  # fmt: skip
        self.published: dict[str, datetime] = {}

    def publish(self, items: list[Item]) -> None:
        wanted = dict(items)
        for name in set(self.published) - set(wanted):
            self.google.delete_event(self.google.primary_calendar_id, _google_id(name))
        for name, start in wanted.items():
            if self.published.get(name) != start:
                end = start + timedelta(hours=1)
                self.google.put_event(self.google.primary_calendar_id, {
                    "id": _google_id(name), "start": {"dateTime": start.isoformat()},
                    "end": {"dateTime": end.isoformat()},
                })  # fmt: skip
        self.published = wanted

    def name(self, provider_id: str) -> str:
        return bytes.fromhex(provider_id[3:]).decode()


def _google_id(name: str) -> str:
    return "cal" + name.encode().hex()  # base32hex: a-v and digits, at least 5 long


class GraphBackend:
    """Items become Outlook events; Graph chooses their ids."""

    calendar = "primary"

    def __init__(self, graph: FakeGraph) -> None:
        self.graph = graph
        token = graph.mint_access_token()
        self.provider = OutlookProvider(
            lambda force_refresh=False: token, account="o", session=graph.http_client(),
            default_timezone=ZoneInfo("UTC"),
        )  # fmt: skip
        self.ids: dict[str, str] = {}  # item name -> Graph id
        self.names: dict[str, str] = {}  # every Graph id ever published -> item name
        self.starts: dict[str, datetime] = {}

    def publish(self, items: list[Item]) -> None:
        wanted = dict(items)
        for name in set(self.ids) - set(wanted):
            self.graph.delete_event(self.ids.pop(name))
            del self.starts[name]
        for name, start in wanted.items():
            end = start + timedelta(hours=1)
            if name not in self.ids:
                self.ids[name] = self.graph.add_event(name, start, end)
                self.names[self.ids[name]] = name
            elif self.starts[name] != start:
                self.graph.update_event(self.ids[name], start=start, end=end)
            self.starts[name] = start

    def name(self, provider_id: str) -> str:
        return self.names[provider_id]


@pytest.fixture(params=["memory", "ics-file", "ics-http", "google", "outlook"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "memory":
        yield MemoryBackend()
    elif request.param == "ics-file":
        yield FileBackend(tmp_path / "feed.ics")
    elif request.param == "ics-http":
        with FakeIcsServer(ics([])) as server:
            yield HttpBackend(server)
    elif request.param == "google":
        with FakeGoogle(clock=lambda: datetime(2026, 11, 30, tzinfo=UTC)) as google:
            backend = GoogleBackend(google)
            yield backend
            backend.provider.close()  # type: ignore[attr-defined]
    else:
        with FakeGraph() as graph:
            yield GraphBackend(graph)


class Replica:
    """What the store would hold after applying each batch (keyed by item name)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.events: dict[str, Event] = {}
        self.cursor: str | None = None

    def apply(self, batch: ChangeBatch) -> None:
        if batch.unchanged:
            assert not batch.events
            assert not batch.deleted
        elif batch.full:
            self.events = {self.backend.name(e.provider_id): e for e in batch.events}
        else:
            self.events.update({self.backend.name(e.provider_id): e for e in batch.events})
            for pid in batch.deleted:
                self.events.pop(self._name(pid), None)
        self.cursor = batch.cursor

    def _name(self, provider_id: str) -> str | None:
        try:
            return self.backend.name(provider_id)
        except (KeyError, ValueError):
            return None  # an id the backend never published (e.g. an instance stub)

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
    replica = Replica(backend)
    batch = sync(backend, replica)
    assert batch.full
    assert batch.cursor is not None
    assert replica.spans() == expected(items)
    assert set(replica.spans()) == {"a", "b"}


def test_replaying_batches_tracks_every_change(backend: Backend) -> None:
    replica = Replica(backend)
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
    replica = Replica(backend)
    sync(backend, replica)
    before = dict(replica.events)
    batch = sync(backend, replica)
    names = {backend.name(e.provider_id) for e in batch.events}
    assert batch.unchanged or (batch.full and names == {"a"})
    assert replica.events == before


def test_a_fetch_without_cursor_is_always_full(backend: Backend) -> None:
    backend.publish([("a", at(2))])
    replica = Replica(backend)
    sync(backend, replica)
    again = backend.provider.fetch_changes(backend.calendar, None, WINDOW)
    assert again.full
    assert {backend.name(e.provider_id) for e in again.events} == {"a"}


def test_the_calendar_is_listed_and_an_unknown_one_is_an_error(backend: Backend) -> None:
    backend.publish([])
    assert backend.calendar in {c.id for c in backend.provider.list_calendars()}
    with pytest.raises(CalsyncError):  # a calsync error, never a library's exception
        backend.provider.fetch_changes("no-such-calendar", None, WINDOW)
