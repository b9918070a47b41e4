"""The MCP server at /mcp, driven by the official SDK's own client over real HTTP.

The app from ``conftest.build`` (frozen clock: Monday 7 December 2026, 08:00
in Vienna) is served by uvicorn on a free port in a thread of its own; the
tests talk to it with ``mcp.Client`` over streamable HTTP, both on the
2026-07-28 revision (``auto`` discovers it) and on the handshake era
(``legacy``: initialize first), which the SDK serves on different paths.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import uvicorn
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, TextContent

from calsync.api.voice.tools import TOOLS, parameters_schema
from calsync.model import Scope
from tests.voice.conftest import Voice, build

MODES = ["auto", "legacy"]  # the 2026-07-28 revision; the initialize handshake
PROTOCOL = {"auto": "2026-07-28", "legacy": "2025-11-25"}


@dataclass
class Served:
    voice: Voice
    url: str
    responses: list[httpx2.Response] = field(default_factory=list)

    def headers(self, token: str | None = None, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.voice.token}", **extra}

    @asynccontextmanager
    async def client(
        self, headers: dict[str, str] | None = None, mode: str = "auto"
    ) -> AsyncIterator[Client]:
        async def record(response: httpx2.Response) -> None:
            await response.aread()
            self.responses.append(response)

        given = self.headers() if headers is None else headers
        async with (
            httpx2.AsyncClient(headers=given, event_hooks={"response": [record]}) as http,
            Client(streamable_http_client(self.url, http_client=http), mode=mode) as client,
        ):
            yield client


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """The app under uvicorn on 127.0.0.1 and a free port, on SQLite."""
    voice, store = build(f"sqlite:///{tmp_path / 'calsync.db'}", tmp_path)
    config = uvicorn.Config(voice.client.app, host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-mcp")
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.started, "uvicorn did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        yield Served(voice, f"http://127.0.0.1:{port}/mcp")
    finally:
        server.should_exit = True
        thread.join(10)
        store.close()
    assert not thread.is_alive(), "uvicorn did not stop"


def run(flow: Callable[[], Awaitable[None]]) -> None:
    anyio.run(flow)


async def call(client: Client, name: str, arguments: dict[str, Any]) -> CallToolResult:
    """A tool call whose answer has the sentence first, then the JSON, as structuredContent."""
    result = await client.call_tool(name, arguments)
    said, document = result.content
    assert isinstance(said, TextContent)
    assert isinstance(document, TextContent)
    assert result.structured_content is not None
    assert said.text == result.structured_content["say"]
    assert json.loads(document.text) == result.structured_content
    assert result.is_error is not result.structured_content["ok"]
    return result


def data(result: CallToolResult) -> dict[str, Any]:
    assert result.structured_content is not None
    return result.structured_content


@pytest.mark.parametrize("mode", MODES)
def test_lists_the_six_tools_with_the_schemas_every_platform_gets(
    served: Served, mode: str
) -> None:
    async def flow() -> None:
        async with served.client(mode=mode) as client:
            assert client.protocol_version == PROTOCOL[mode]
            assert client.server_info is not None
            assert client.server_info.name == "calsync"
            listed = (await client.list_tools()).tools

        assert [t.name for t in listed] == [spec.name for spec in TOOLS]
        for tool, spec in zip(listed, TOOLS, strict=True):
            assert tool.description == spec.description
            assert tool.input_schema == parameters_schema(spec)
            assert tool.annotations is not None
            assert tool.annotations.read_only_hint is not spec.writes
        book = next(t for t in listed if t.name == "book_appointment")
        assert book.input_schema["required"] == ["name"]

    run(flow)


@pytest.mark.parametrize("mode", MODES)
def test_a_german_caller_finds_holds_books_finds_and_cancels(served: Served, mode: str) -> None:
    booked_ids: list[str] = []

    async def flow() -> None:
        async with served.client(mode=mode) as client:
            found = await call(
                client,
                "check_availability",
                {"resource": "praxis", "date": "2026-12-08", "after": "14:00"},
            )
            assert data(found)["say"] == (
                "Praxis Dr. Huber hat frei: morgen um 14:00 Uhr, morgen um 16:00 Uhr "
                "oder morgen um 17:30 Uhr."
            )
            slot = data(found)["slots"][0]
            assert slot["start"] == "2026-12-08T14:00:00+01:00"

            held = await call(client, "hold_slot", {"slot_id": slot["slot_id"]})
            assert data(held)["say"] == (
                "Ich habe morgen um 14:00 Uhr für 5 Minuten für Sie reserviert."
            )

            booked = await call(
                client,
                "book_appointment",
                {
                    "slot_id": slot["slot_id"],
                    "hold_id": data(held)["hold_id"],
                    "name": "Anna Berger",
                    "phone": "0664 1234567",
                    "notes": "Kontrolle",
                },
            )
            assert data(booked)["say"] == (
                "Ihr Termin bei Praxis Dr. Huber ist gebucht: morgen um 14:00 Uhr."
            )
            assert data(booked)["status"] == "confirmed"
            appointment = data(booked)["appointment_id"]
            booked_ids.append(appointment)

            mine = await call(client, "find_my_appointments", {"phone": "+43 664 1234567"})
            assert data(mine)["say"] == (
                "Sie haben einen kommenden Termin: morgen um 14:00 Uhr bei Praxis Dr. Huber."
            )
            assert [a["appointment_id"] for a in data(mine)["appointments"]] == [appointment]

            cancelled = await call(
                client,
                "cancel_appointment",
                {"appointment_id": appointment, "phone": "+436641234567"},
            )
            assert data(cancelled)["say"] == "Ihr Termin morgen um 14:00 Uhr ist storniert."
            assert data(cancelled)["status"] == "cancelled"

            after = await call(client, "find_my_appointments", {"phone": "0664 1234567"})
            assert data(after)["appointments"] == []

    run(flow)
    stored = served.voice.services.bookings.get(booked_ids[0])
    assert stored.attendee.phone == "+436641234567"
    assert stored.notes == "Kontrolle"
    assert stored.call_id is None  # MCP names no call unless the client sends X-Call-Id


def test_a_retried_booking_returns_the_same_appointment(served: Served) -> None:
    booking = {
        "resource": "studio",
        "start": "2026-12-08T10:00",
        "name": "Jane Doe",
        "phone": "(212) 555-0142",
    }
    answers: list[dict[str, Any]] = []

    async def flow() -> None:
        async with served.client() as client:
            answers.append(data(await call(client, "book_appointment", booking)))
            answers.append(data(await call(client, "book_appointment", booking)))
        async with served.client(mode="legacy") as reconnected:  # a retry on a new connection
            answers.append(data(await call(reconnected, "book_appointment", booking)))
            mine = await call(reconnected, "find_my_appointments", {"phone": "+12125550142"})
            answers.append(data(mine))

    run(flow)
    first, again, reconnected, mine = answers
    assert (
        first["say"] == "Your appointment with Brooklyn Studio is booked for tomorrow at 10:00 AM."
    )
    assert again["appointment_id"] == reconnected["appointment_id"] == first["appointment_id"]
    assert [a["appointment_id"] for a in mine["appointments"]] == [first["appointment_id"]]


def test_a_call_id_header_scopes_retries_and_a_caller_header_is_the_caller(
    served: Served,
) -> None:
    booking = {"resource": "praxis", "start": "2026-12-09T09:00", "name": "Anna Berger"}
    vapi = served.headers(**{"X-Call-Id": "call-1", "X-Caller-Number": "0664 7654321"})
    answers: list[dict[str, Any]] = []

    async def flow() -> None:
        async with served.client(vapi) as client:
            answers.append(data(await call(client, "book_appointment", booking)))
            answers.append(data(await call(client, "book_appointment", booking)))
            answers.append(data(await call(client, "find_my_appointments", {})))
        other_call = served.headers(**{"X-Call-Id": "call-2"})
        async with served.client(other_call) as client:
            answers.append(data(await call(client, "book_appointment", booking)))

    run(flow)
    first, retried, mine, other = answers
    assert retried["appointment_id"] == first["appointment_id"]
    assert served.voice.services.bookings.get(first["appointment_id"]).call_id == "call-1"
    assert [a["appointment_id"] for a in mine["appointments"]] == [first["appointment_id"]]
    assert other["error"] == "slot_unavailable"  # another call is another booking: refused


def test_a_taken_slot_is_an_error_with_alternatives(served: Served) -> None:
    async def flow() -> None:
        async with served.client() as client:
            first = await call(
                client,
                "book_appointment",
                {"resource": "praxis", "start": "2026-12-08T09:00", "name": "Anna Berger"},
            )
            assert not first.is_error
            taken = await call(
                client,
                "book_appointment",
                {"resource": "praxis", "start": "2026-12-08T09:00", "name": "Max Muster"},
            )
        assert taken.is_error
        answer = data(taken)
        assert answer["ok"] is False
        assert answer["error"] == "slot_unavailable"
        assert answer["say"].startswith("Dieser Termin ist leider schon vergeben. Frei wären ")
        alternatives = answer["alternatives"]
        assert alternatives
        assert all(a["slot_id"].startswith("praxis/") for a in alternatives)
        assert "2026-12-08T09:00:00+01:00" not in [a["start"] for a in alternatives]
        assert alternatives[0]["spoken"] in answer["say"]

    run(flow)


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "no API key"),
        ("Bearer csk_abcdefgh_notakey", "unknown or revoked"),
        ("Basic dXNlcjpwYXNz", "Bearer"),
    ],
)
def test_without_a_valid_key_the_client_fails_with_401(
    served: Served, authorization: str | None, message: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}

    async def flow() -> None:
        async with served.client(headers):
            pytest.fail("the client connected without a valid API key")

    with pytest.raises(ExceptionGroup) as failed:
        run(flow)
    assert failed.group_contains(MCPError)
    assert served.responses, "the client sent nothing"
    for response in served.responses:
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        error = response.json()["error"]
        assert error["code"] == "unauthorized"
        assert message in error["message"]


def test_a_read_key_lists_and_runs_only_the_read_tools(served: Served) -> None:
    voice = served.voice
    _, reader = voice.store.api_keys.create("reader", Scope.READ, voice.clock.now())

    async def flow() -> None:
        async with served.client(served.headers(reader)) as client:
            listed = [t.name for t in (await client.list_tools()).tools]
            assert listed == ["check_availability", "find_my_appointments"]
            lookup = await call(client, "check_availability", {"resource": "studio"})
            assert not lookup.is_error
            refused = await call(
                client,
                "book_appointment",
                {"resource": "studio", "start": "2026-12-08T10:00", "name": "Jane Doe"},
            )
        assert refused.is_error
        assert data(refused)["error"] == "forbidden"
        assert data(refused)["say"] == (
            "Sorry, that did not work: book_appointment needs an API key with write scope; "
            "this one only reads"
        )

    run(flow)
    assert voice.services.bookings.find(resource="studio", limit=10) == []


def test_any_host_is_served_as_behind_a_proxy(served: Served) -> None:
    """No Host allow-list: a proxy's Host header (and Origin) reach the tools."""
    proxied = served.headers(Host="calsync.example.com", Origin="https://agents.example.com")

    async def flow() -> None:
        async with served.client(proxied, mode="legacy") as client:
            assert len((await client.list_tools()).tools) == 6

    run(flow)
    assert {r.request.headers["host"] for r in served.responses} == {"calsync.example.com"}
    assert all(r.status_code < 300 for r in served.responses)
    assert all("mcp-session-id" not in r.headers for r in served.responses)  # stateless


def test_the_testclient_reaches_mcp_in_process(tmp_path: Path) -> None:
    """The app's own lifespan runs the session manager under Starlette's TestClient too."""
    voice, store = build(f"sqlite:///{tmp_path / 'calsync.db'}", tmp_path)
    headers = {
        **voice.auth,
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-11-25",
    }
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    try:
        with voice.client as client:
            listed = client.post("/mcp", json=listing, headers=headers)
            anonymous = client.post("/mcp", json=listing, headers={"Accept": headers["Accept"]})
    finally:
        store.close()
    assert listed.status_code == 200
    assert listed.headers["content-type"] == "application/json"
    assert len(listed.json()["result"]["tools"]) == 6
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthorized"
