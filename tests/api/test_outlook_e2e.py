"""Outlook end to end: `calsync auth outlook` (device code, approved by a scripted user)
against FakeGraph served over TLS with a private CA (REQUESTS_CA_BUNDLE), then
`calsync run` syncing, receiving Graph notifications and writing bookings."""

from __future__ import annotations

import ipaddress
import json
import re
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.api.daemon import VIENNA, Daemon, wait_for
from tests.fakes.graph import FakeGraph

CONFIG = """
[daemon]
listen = "127.0.0.1:{port}"
state_dir = "state"
database = "{database}"
sync_interval = "5m"
public_url = "{url}"

[accounts.mail]
provider = "outlook"
client_id = "11111111-2222-3333-4444-555555555555"
authority = "GRAPH_BASE"
endpoint = "GRAPH_BASE/v1.0"

[resources.desk]
timezone = "Europe/Vienna"
language = "en"
check = ["mail:primary"]
book_into = "mail:primary"
duration = "30m"
step = "30m"
max_days_ahead = 30
hours.mon = ["08:00-18:00"]
hours.tue = ["08:00-18:00"]
hours.wed = ["08:00-18:00"]
hours.thu = ["08:00-18:00"]
hours.fri = ["08:00-18:00"]
hours.sat = ["08:00-18:00"]
hours.sun = ["08:00-18:00"]
"""


def private_ca(directory: Path) -> tuple[Path, ssl.SSLContext]:
    """A self-signed certificate for 127.0.0.1, and a server context using it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "calsync test CA")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert, secret = directory / "ca.pem", directory / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    secret.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, secret)
    return cert, context


def local(offset: int, hhmm: str) -> datetime:
    day = datetime.now(VIENNA).date() + timedelta(days=offset)
    return datetime.fromisoformat(f"{day.isoformat()}T{hhmm}").replace(tzinfo=VIENNA)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeGraph, Daemon]]:
    directory = tmp_path_factory.mktemp("outlook")
    ca, context = private_ca(directory)
    with FakeGraph(tls=context) as graph:
        graph.device_code_interval = 1
        graph.add_event("Before", local(2, "10:00"), local(2, "11:00"))
        config = CONFIG.replace("GRAPH_BASE", graph.base_url)
        daemon = Daemon(directory, f"sqlite:///{directory}/calsync.db", config=config)
        daemon.env["REQUESTS_CA_BUNDLE"] = str(ca)
        connect(daemon, graph)
        daemon.start()
        try:
            yield graph, daemon
        finally:
            assert daemon.stop() == 0, daemon.log


def connect(daemon: Daemon, graph: FakeGraph) -> None:
    """`calsync auth outlook`: the test reads the device code and approves it as the user."""
    auth = daemon.spawn("auth", "outlook", "--account", "mail")
    assert auth.stdout is not None
    code = ""
    for line in auth.stdout:
        found = re.search(r"enter the code (\S+)", line)
        if found:
            code = found.group(1)
            break
    assert code

    def approve() -> None:
        graph.wait_for_device_code_poll(code, polls=1)
        graph.approve_device_code(code)

    threading.Thread(target=approve, daemon=True).start()
    output, _ = auth.communicate(timeout=60)
    assert auth.returncode == 0, output
    assert "connected Outlook account 'mail'" in output
    assert (daemon.dir / "state" / "outlook-mail.json").stat().st_mode & 0o777 == 0o600


@pytest.fixture(scope="module")
def headers(setup: tuple[FakeGraph, Daemon]) -> dict[str, str]:
    return {"Authorization": f"Bearer {setup[1].key('admin')}"}


def busy(daemon: Daemon, headers: dict[str, str], offset: int) -> list[tuple[str, str]]:
    day = local(offset, "00:00").date().isoformat()
    answer = requests.get(
        f"{daemon.url}/v1/resources/desk/freebusy",
        params={"start": day, "end": day},
        headers=headers,
        timeout=10,
    )
    return [(b["start"][11:16], b["end"][11:16]) for b in answer.json()["busy"]]


def test_initial_sync(setup: tuple[FakeGraph, Daemon], headers: dict[str, str]) -> None:
    _, daemon = setup
    assert wait_for(lambda: busy(daemon, headers, 2) == [("10:00", "11:00")], 20)


def test_a_notification_shows_a_change_within_two_seconds(
    setup: tuple[FakeGraph, Daemon], headers: dict[str, str]
) -> None:
    graph, daemon = setup
    assert wait_for(lambda: bool(graph.subscriptions()), 20)
    assert wait_for(lambda: busy(daemon, headers, 2) == [("10:00", "11:00")], 20)
    graph.add_event("Pushed", local(2, "14:00"), local(2, "15:00"))
    started = time.monotonic()
    assert wait_for(lambda: ("14:00", "15:00") in busy(daemon, headers, 2), 2.0)
    assert time.monotonic() - started < 2.0


def test_a_notification_with_a_wrong_client_state_is_refused(
    setup: tuple[FakeGraph, Daemon],
) -> None:
    graph, daemon = setup
    subscription = graph.subscriptions()[0]
    note = {"value": [{"subscriptionId": subscription["id"], "clientState": "forged"}]}
    answer = requests.post(f"{daemon.url}/push/outlook", json=note, timeout=5)
    assert answer.status_code == 401


def test_bookings_land_in_outlook_and_follow_cancel_and_reschedule(
    setup: tuple[FakeGraph, Daemon], headers: dict[str, str]
) -> None:
    graph, daemon = setup
    start = local(3, "09:00")
    body = {"resource": "desk", "start": start.isoformat(), "attendee": {"name": "Ann Example"}}
    key = {"Idempotency-Key": str(uuid.uuid4())}
    made = requests.post(f"{daemon.url}/v1/bookings", json=body, headers=headers | key, timeout=30)
    assert made.status_code == 201, made.text
    again = requests.post(f"{daemon.url}/v1/bookings", json=body, headers=headers | key, timeout=30)
    assert again.json()["id"] == made.json()["id"]
    event_id = made.json()["provider"]["event_id"]
    stored = graph.event(event_id)
    assert stored is not None
    assert stored["subject"] == "Ann Example"
    assert sum(1 for e in graph.events() if e["subject"] == "Ann Example") == 1
    booking = made.json()["id"]
    moved = requests.post(
        f"{daemon.url}/v1/bookings/{booking}/reschedule",
        json={"start": local(3, "11:00").isoformat()}, headers=headers, timeout=30,
    )  # fmt: skip
    assert moved.status_code == 200, moved.text
    after = graph.event(event_id)
    assert after is not None
    moved_to = datetime.fromisoformat(after["start"]["dateTime"][:19]).replace(tzinfo=UTC)
    assert moved_to == local(3, "11:00").astimezone(UTC)
    requests.post(f"{daemon.url}/v1/bookings/{booking}/cancel", headers=headers, timeout=30)
    assert graph.event(event_id) is None


def test_throttling_is_survived(setup: tuple[FakeGraph, Daemon], headers: dict[str, str]) -> None:
    graph, daemon = setup
    graph.throttle_next(3, retry_after=1)
    graph.add_event("Throttled", local(4, "09:00"), local(4, "10:00"))
    requests.post(f"{daemon.url}/v1/sync", headers=headers, timeout=10)
    assert wait_for(lambda: ("09:00", "10:00") in busy(daemon, headers, 4), 30)
    counted = "calsync_provider_requests_total"  # every attempt, the refused ones too
    assert daemon.metric(counted, provider="outlook", outcome="throttled") >= 3
    assert daemon.metric(counted, provider="outlook", outcome="ok") > 0
    assert daemon.metric("calsync_provider_throttled_total", provider="outlook") >= 3


def test_a_revoked_grant_shows_in_status_with_the_fix(
    setup: tuple[FakeGraph, Daemon], headers: dict[str, str]
) -> None:
    graph, daemon = setup
    graph.revoke_refresh_tokens()
    graph.expire_access_tokens()
    requests.post(f"{daemon.url}/v1/sync", headers=headers, timeout=10)

    def reauth_shown() -> bool:
        status = json.loads(daemon.cli("status", "--json").stdout)
        return any(a["status"] == "reauth_required" for a in status["accounts"])

    assert wait_for(reauth_shown, 30)
    assert "calsync auth outlook --account mail" in daemon.cli("status").stdout
    assert busy(daemon, headers, 2)  # the last good data keeps serving
