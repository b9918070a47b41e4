"""Cal.com webhook verification and parsing, on deliveries FakeCalcom really sent to a receiver."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from calsync.errors import AuthError
from calsync.providers.calcom import webhooks
from calsync.providers.calcom.webhooks import RecentDeliveries
from tests.fakes.calcom_server import FakeCalcom

NOW = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
SECRET = "whsec-from-cal"
Received = tuple[bytes, dict[str, str]]


class Receiver:
    """A subscriber that keeps the raw bytes and headers of every POST."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((body, dict(self.headers.items())))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/push/calcom"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def cal() -> Iterator[FakeCalcom]:
    with FakeCalcom(now=NOW) as fake:
        yield fake
    assert fake.errors == []


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def signature(received: Received) -> str:
    return received[1]["X-Cal-Signature-256"]


def deliver(cal: FakeCalcom, receiver: Receiver, secret: str | None, n: int = 1) -> list[Received]:
    triggers = ["BOOKING_CREATED", "BOOKING_CANCELLED", "BOOKING_RESCHEDULED"]
    cal.add_webhook(receiver.url, secret, triggers)
    uid = cal.book_directly(101, datetime(2026, 3, 3, 8, tzinfo=UTC))["uid"]
    if n > 1:
        cal.reschedule_directly(uid, datetime(2026, 3, 3, 9, tzinfo=UTC))
    cal.wait_for_deliveries(n)
    return receiver.received


def test_a_genuine_delivery_verifies_and_parses(cal: FakeCalcom, receiver: Receiver) -> None:
    created, rescheduled = deliver(cal, receiver, SECRET, n=2)
    for body, headers in (created, rescheduled):
        webhooks.verify_signature(body, headers["X-Cal-Signature-256"], SECRET)
        assert webhooks.is_signed(body, signature((body, headers)), SECRET)
    first, second = cal.bookings()
    made = webhooks.parse_delivery(created[0])
    assert (made.trigger, made.uid, made.event_type_id) == ("BOOKING_CREATED", first["uid"], 101)
    moved = webhooks.parse_delivery(rescheduled[0])
    assert (moved.trigger, moved.uid, moved.previous_uid) == (
        "BOOKING_RESCHEDULED",
        second["uid"],
        first["uid"],
    )
    expected = hashlib.sha256(
        f"BOOKING_CREATED\n{first['uid']}\n2026-03-02T07:00:00.000Z".encode()
    ).hexdigest()
    assert made.dedupe_key == expected
    assert made.dedupe_key != moved.dedupe_key


def test_a_tampered_body_is_refused(cal: FakeCalcom, receiver: Receiver) -> None:
    (original,) = deliver(cal, receiver, SECRET)
    cal.send_tampered(cal.deliveries[0])
    cal.wait_for_deliveries(2)
    body, headers = receiver.received[1]
    assert body != original[0]
    assert signature((body, headers)) == signature(original)
    with pytest.raises(AuthError, match="does not match"):
        webhooks.verify_signature(body, signature((body, headers)), SECRET)


def test_a_forged_signature_or_a_wrong_secret_is_refused(
    cal: FakeCalcom, receiver: Receiver
) -> None:
    (original,) = deliver(cal, receiver, SECRET)
    with pytest.raises(AuthError):
        webhooks.verify_signature(original[0], signature(original), "another-secret")
    cal.send_tampered(cal.deliveries[0], signature="0" * 64)
    cal.wait_for_deliveries(2)
    forged = receiver.received[1]
    assert forged[0] == original[0]
    assert not webhooks.is_signed(forged[0], signature(forged), SECRET)
    assert not webhooks.is_signed(original[0], "not hex at all: \u00e9", SECRET)
    assert not webhooks.is_signed(original[0], signature(original), "")


def test_the_sha256_prefix_is_accepted(cal: FakeCalcom, receiver: Receiver) -> None:
    (original,) = deliver(cal, receiver, SECRET)
    prefixed = "sha256=" + signature(original)
    webhooks.verify_signature(original[0], prefixed, SECRET)
    webhooks.verify_signature(original[0], f" SHA256={signature(original).upper()} ", SECRET)


def test_no_secret_provided_and_unsigned_deliveries_are_refused(
    cal: FakeCalcom, receiver: Receiver
) -> None:
    (unsigned,) = deliver(cal, receiver, None)
    assert signature(unsigned) == "no-secret-provided"
    with pytest.raises(AuthError, match="has no secret"):
        webhooks.verify_signature(unsigned[0], signature(unsigned), SECRET)
    with pytest.raises(AuthError, match="no X-Cal-Signature-256 header"):
        webhooks.verify_signature(unsigned[0], None, SECRET)


def test_the_account_is_found_by_its_secret(cal: FakeCalcom, receiver: Receiver) -> None:
    (delivery,) = deliver(cal, receiver, SECRET)
    secrets = {"other": "nope", "clinic": SECRET}
    assert webhooks.account_for(delivery[0], signature(delivery), secrets) == "clinic"
    with pytest.raises(AuthError, match=r"no Cal\.com account's webhook secret matches"):
        webhooks.account_for(delivery[0], signature(delivery), {"other": "nope"})
    with pytest.raises(AuthError, match=r"no Cal\.com account has a webhook_secret_file"):
        webhooks.account_for(delivery[0], signature(delivery), {})


def test_repeats_are_recognised(cal: FakeCalcom, receiver: Receiver) -> None:
    (first,) = deliver(cal, receiver, SECRET)
    cal.redeliver(cal.deliveries[0])
    cal.wait_for_deliveries(2)
    again = receiver.received[1]
    assert again == first
    seen = RecentDeliveries(size=2)
    assert seen.first_time(webhooks.parse_delivery(first[0]).dedupe_key)
    assert not seen.first_time(webhooks.parse_delivery(again[0]).dedupe_key)


def test_a_custom_payload_still_gives_a_delivery() -> None:
    delivery = webhooks.parse_delivery(b"name=Ada&start=tomorrow")
    assert delivery.trigger == ""
    assert delivery.uid is None
    assert delivery.dedupe_key == hashlib.sha256(b"name=Ada&start=tomorrow").hexdigest()


def test_recent_deliveries_forget_the_least_recently_seen() -> None:
    seen = RecentDeliveries(size=2)
    # a; a b; b a (a refreshed); a c (b evicted); c b (a evicted); b seen; a new again
    assert [seen.first_time(k) for k in ("a", "b", "a", "c", "b", "b", "a")] == [
        True,
        True,
        False,
        True,
        True,
        False,
        True,
    ]
