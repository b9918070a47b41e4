"""The webhook dispatcher against real HTTP receivers, on SQLite and PostgreSQL.

Every request a receiver gets is checked with ``standardwebhooks`` (the
reference verifier receivers use). Retry tests drive ``run_once`` with a
FrozenClock that starts at the real time (the verifier rejects timestamps
more than 5 minutes off); the background tests use the system clock.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select
from standardwebhooks import Webhook, WebhookVerificationError

from calsync.clock import Clock, FrozenClock, SystemClock
from calsync.config import WebhookSettings
from calsync.errors import ConfigError, NotFoundError
from calsync.events import Dispatcher, load_secrets
from calsync.events.signing import retry_after_wait, signed_headers
from calsync.model import OutboxEvent
from calsync.store import Store
from calsync.store.outbox import write_event
from calsync.store.schema import deliveries
from tests.conftest import postgres_url

SHORT = (timedelta(seconds=0.1),) * 3

# --- a receiver: real HTTP on 127.0.0.1 ----------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    body: bytes = b""


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival


class Receiver:
    """Records every POST and answers with the queued replies (then 200)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.replies: deque[Reply] = deque()
        self.release = threading.Event()  # ends every delayed reply at once
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = dict(self.headers.items())
                receiver.requests.append(Received(self.path, headers, body, time.monotonic()))
                reply = receiver.replies.popleft() if receiver.replies else Reply()
                if reply.delay:
                    receiver.release.wait(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    pass  # the dispatcher gave up waiting

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/calsync"

    def wait_for(self, count: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.requests)} requests arrived, not {count}")
            time.sleep(0.01)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    store = Store.open(db_url)
    store.upgrade()
    yield store
    store.close()


@pytest.fixture
def receivers() -> Iterator[Callable[[], Receiver]]:
    made: list[Receiver] = []

    def make() -> Receiver:
        made.append(Receiver())
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


@pytest.fixture
def dispatchers() -> Iterator[Callable[..., Dispatcher]]:
    made: list[Dispatcher] = []

    def make(*args: Any, **kwargs: Any) -> Dispatcher:
        made.append(Dispatcher(*args, **kwargs))
        return made[-1]

    yield make
    for dispatcher in made:
        dispatcher.stop(timeout=2.0)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(SystemClock().now())


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def secret_file(tmp_path: Path, *secrets: str) -> Path:
    path = tmp_path / f"{uuid.uuid4().hex}.secret"
    path.write_text("".join(f"{s}\n" for s in secrets), encoding="utf-8")
    return path


def hook(url: str, secrets: Path, retry: tuple[timedelta, ...] = SHORT) -> WebhookSettings:
    return WebhookSettings(url, secrets, ("appointment.created",), retry)


def emit(store: Store, urls: list[str], clock: Clock) -> OutboxEvent:
    now = clock.now()
    payload = {
        "type": "appointment.created",
        "timestamp": now.isoformat(),
        "data": {"id": f"bk_{uuid.uuid4().hex[:8]}", "attendee": {"name": "Jörg Müller"}},
    }
    event = OutboxEvent(str(uuid.uuid4()), "appointment.created", payload, tuple(urls), now)
    with store.write() as conn:
        write_event(conn, event)
    return event


def rows(store: Store) -> list[Any]:
    with store.read() as conn:
        return list(conn.execute(select(deliveries).order_by(deliveries.c.id)))


def verified(secret: str, request: Received) -> Any:
    return Webhook(secret).verify(request.body, request.headers)


# --- delivery and signing ---------------------------------------------------------------


def test_a_delivered_event_is_signed_and_carries_the_payload(
    store: Store, receivers: Any, dispatchers: Any, clock: FrozenClock, tmp_path: Path
) -> None:
    receiver, secret = receivers(), new_secret()
    dispatcher = dispatchers(store, [hook(receiver.url, secret_file(tmp_path, secret))], clock)
    event = emit(store, [receiver.url], clock)

    assert dispatcher.run_once() == 1

    [request] = receiver.requests
    assert request.path == "/hooks/calsync"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["webhook-id"] == f"msg_{event.id}"
    assert int(request.headers["webhook-timestamp"]) == int(clock.now().timestamp())
    assert request.headers["webhook-signature"].startswith("v1,")
    assert verified(secret, request) == event.payload
    assert (
        request.body
        == json.dumps(event.payload, separators=(",", ":"), ensure_ascii=False).encode()
    )
    [row] = rows(store)
    assert (row.status, row.attempts, row.last_status, row.locked_until) == (
        "delivered",
        1,
        200,
        None,
    )
    [state] = store.outbox.endpoints([receiver.url])
    assert state.last_success == clock.now()
    assert state.failing_since is None


def test_every_secret_in_the_file_signs_and_each_verifies_alone(
    store: Store, receivers: Any, dispatchers: Any, clock: FrozenClock, tmp_path: Path
) -> None:
    receiver, old, new = receivers(), new_secret(), new_secret()
    path = tmp_path / "rotating.secret"
    path.write_text(f"# rotation: new first, old until the receiver switched\n{new}\n\n{old}\n")
    dispatcher = dispatchers(store, [hook(receiver.url, path)], clock)
    event = emit(store, [receiver.url], clock)

    dispatcher.run_once()

    [request] = receiver.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert verified(old, request) == verified(new, request) == event.payload
    with pytest.raises(WebhookVerificationError):
        verified(new_secret(), request)


def test_the_signature_matches_the_standard_webhooks_test_vector() -> None:
    at = datetime.fromtimestamp(1614265330, UTC).astimezone()  # a non-UTC zone on purpose
    headers = signed_headers(
        ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], "msg_p5jXN8AQM9LWM0D4loKWxJek", at,
        '{"test": 2432232314}',
    )  # fmt: skip
    assert headers["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert headers["webhook-timestamp"] == "1614265330"


# --- retries ----------------------------------------------------------------------------


def test_a_failing_receiver_gets_the_event_on_the_third_attempt_with_one_webhook_id(
    store: Store, receivers: Any, dispatchers: Any, clock: FrozenClock, tmp_path: Path
) -> None:
    receiver, secret = receivers(), new_secret()
    receiver.replies.extend([Reply(500, body=b"database down"), Reply(500)])
    dispatcher = dispatchers(store, [hook(receiver.url, secret_file(tmp_path, secret))], clock)
    event = emit(store, [receiver.url], clock)

    assert dispatcher.run_once() == 1
    [row] = rows(store)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "HTTP 500: database down")
    wait = row.next_attempt_at - clock.now()
    assert timedelta(seconds=0.08) <= wait <= timedelta(seconds=0.12)  # 0.1 s +-20 %
    assert store.outbox.endpoints([receiver.url])[0].failing_since == clock.now()
    assert dispatcher.run_once() == 0  # not due yet
    clock.advance(timedelta(seconds=0.2))
    assert dispatcher.run_once() == 1
    clock.advance(timedelta(seconds=0.2))
    assert dispatcher.run_once() == 1

    assert [r.headers["webhook-id"] for r in receiver.requests] == [f"msg_{event.id}"] * 3
    assert all(verified(secret, r) == event.payload for r in receiver.requests)
    [row] = rows(store)
    assert (row.status, row.attempts, row.last_status) == ("delivered", 3, 200)
    assert store.outbox.endpoints([receiver.url])[0].failing_since is None


def test_a_receiver_that_does_not_answer_in_time_is_retried(
    store: Store, receivers: Any, dispatchers: Any, clock: FrozenClock, tmp_path: Path
) -> None:
    receiver, secret = receivers(), new_secret()
    receiver.replies.append(Reply(200, delay=3.0))
    hooks = [hook(receiver.url, secret_file(tmp_path, secret))]
    dispatcher = dispatchers(store, hooks, clock, timeout=0.3)
    emit(store, [receiver.url], clock)

    started = time.monotonic()
    assert dispatcher.run_once() == 1
    assert time.monotonic() - started < 2.0
    [row] = rows(store)
    assert (row.status, row.last_status, row.last_error) == (
        "pending",
        None,
        "no answer within 0.3 s",
    )
    clock.advance(timedelta(seconds=0.2))
    assert dispatcher.run_once() == 1
    assert rows(store)[0].status == "delivered"
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1


@pytest.mark.parametrize("retry_after", ["2", "http-date"])
def test_retry_after_is_honoured_when_longer_than_the_schedule(
    store: Store, receivers: Any, dispatchers: Any, clock: FrozenClock, tmp_path: Path,
    retry_after: str,
) -> None:  # fmt: skip
    receiver, secret = receivers(), new_secret()
    if retry_after == "http-date":  # 3 s ahead, at whole-second resolution: 2-3 s
        retry_after = format_datetime(clock.now() + timedelta(seconds=3), usegmt=True)
    receiver.replies.append(Reply(429, {"Retry-After": retry_after}))
    dispatcher = dispatchers(store, [hook(receiver.url, secret_file(tmp_path, secret))], clock)
    emit(store, [receiver.url], clock)

    assert dispatcher.run_once() == 1
    [row] = rows(store)
    assert row.last_status == 429
    assert timedelta(seconds=2) <= row.next_attempt_at - clock.now() <= timedelta(seconds=3)
    clock.advance(timedelta(seconds=1.5))
    assert dispatcher.run_once() == 0
    clock.advance(timedelta(seconds=1.6))
    assert dispatcher.run_once() == 1
    assert rows(store)[0].status == "delivered"


def test_retry_after_shorter_than_the_schedule_or_malformed_is_not_a_wait() -> None:
    now = SystemClock().now()
    assert retry_after_wait("0", now) is None
    assert retry_after_wait("soon", now) is None
    assert retry_after_wait(format_datetime(now - timedelta(hours=1), usegmt=True), now) is None
    assert retry_after_wait("999999", now) == timedelta(days=1)


def test_410_gone_disables_the_endpoint_with_a_visible_reason(
    store: Store, receivers: Any, dispatchers: Any, clock: FrozenClock, tmp_path: Path
) -> None:
    receiver = receivers()
    receiver.replies.append(Reply(410))
    dispatcher = dispatchers(
        store, [hook(receiver.url, secret_file(tmp_path, new_secret()))], clock
    )
    emit(store, [receiver.url], clock)
    emit(store, [receiver.url], clock)  # claimed with the first: not sent after the 410

    assert dispatcher.run_once() == 1
    emit(store, [receiver.url], clock)
    clock.advance(timedelta(minutes=1))
    assert dispatcher.run_once() == 0

    assert len(receiver.requests) == 1
    first, *rest = rows(store)
    assert (first.status, first.last_status) == ("failed", 410)
    assert [(r.status, r.attempts, r.locked_until) for r in rest] == [("pending", 0, None)] * 2
    [state] = store.outbox.endpoints([receiver.url])
    assert state.disabled_at is not None
    assert state.disabled_reason == "the endpoint answered 410 Gone"
    assert state.backlog == 2


def test_an_exhausted_schedule_fails_the_delivery_with_the_last_error(
    store: Store, receivers: Any, dispatchers: Any, clock: FrozenClock, tmp_path: Path
) -> None:
    receiver = receivers()
    receiver.replies.extend([Reply(503), Reply(500, body=b"still broken")])
    hooks = [hook(receiver.url, secret_file(tmp_path, new_secret()), retry=SHORT[:1])]
    dispatcher = dispatchers(store, hooks, clock)
    emit(store, [receiver.url], clock)

    dispatcher.run_once()
    clock.advance(timedelta(seconds=1))
    dispatcher.run_once()
    clock.advance(timedelta(seconds=1))
    assert dispatcher.run_once() == 0

    [row] = rows(store)
    assert (row.status, row.attempts, row.last_status) == ("failed", 2, 500)
    assert row.last_error == "gave up after 2 attempts; last: HTTP 500: still broken"
    assert len(receiver.requests) == 2


def test_an_endpoint_failing_for_too_long_is_disabled_naming_since_when(
    store: Store, receivers: Any, dispatchers: Any, clock: FrozenClock, tmp_path: Path
) -> None:
    receiver = receivers()
    receiver.replies.extend([Reply(500), Reply(500)])
    hooks = [hook(receiver.url, secret_file(tmp_path, new_secret()))]
    seen: list[str] = []
    dispatcher = dispatchers(
        store, hooks, clock, disable_after=timedelta(seconds=1),
        on_delivery=lambda _url, outcome: seen.append(outcome),
    )  # fmt: skip
    emit(store, [receiver.url], clock)
    since = clock.now()

    dispatcher.run_once()
    assert store.outbox.endpoints([receiver.url])[0].disabled_at is None
    clock.advance(timedelta(seconds=2))
    dispatcher.run_once()

    [state] = store.outbox.endpoints([receiver.url])
    assert state.disabled_at == clock.now()
    assert state.disabled_reason is not None
    assert state.disabled_reason.startswith(
        f"failing since {since.isoformat(timespec='seconds')} (more than 1 second)"
    )
    assert "last error: HTTP 500" in state.disabled_reason
    assert state.backlog == 1  # kept for when it is enabled again
    assert seen == ["retry", "disabled"]


def test_every_recorded_attempt_is_reported_with_its_outcome(
    store: Store, receivers: Any, dispatchers: Any, clock: FrozenClock, tmp_path: Path
) -> None:
    flaky, broken, gone = receivers(), receivers(), receivers()
    flaky.replies.append(Reply(500))
    broken.replies.extend([Reply(503), Reply(500)])
    gone.replies.append(Reply(410))
    secrets = secret_file(tmp_path, new_secret())
    hooks = [hook(flaky.url, secrets), hook(broken.url, secrets, retry=SHORT[:1])]
    hooks.append(hook(gone.url, secrets))
    seen: list[tuple[str, str]] = []
    dispatcher = dispatchers(
        store, hooks, clock, on_delivery=lambda url, outcome: seen.append((url, outcome))
    )
    emit(store, [flaky.url, broken.url, gone.url], clock)

    assert dispatcher.run_once() == 3
    clock.advance(timedelta(seconds=1))
    assert dispatcher.run_once() == 2

    def outcomes(url: str) -> list[str]:
        return [outcome for sent_to, outcome in seen if sent_to == url]

    assert outcomes(flaky.url) == ["retry", "delivered"]
    assert outcomes(broken.url) == ["retry", "failed"]
    assert outcomes(gone.url) == ["disabled"]


def test_a_redirect_is_a_failure_and_is_not_followed(
    store: Store, receivers: Any, dispatchers: Any, clock: FrozenClock, tmp_path: Path
) -> None:
    receiver = receivers()
    receiver.replies.append(Reply(307, {"Location": f"{receiver.url}/elsewhere?key=hush"}))
    dispatcher = dispatchers(
        store, [hook(receiver.url, secret_file(tmp_path, new_secret()))], clock
    )
    emit(store, [receiver.url], clock)

    dispatcher.run_once()

    assert [r.path for r in receiver.requests] == ["/hooks/calsync"]
    [row] = rows(store)
    assert (row.status, row.last_status) == ("pending", 307)
    assert row.last_error.startswith(f"HTTP 307 redirect to {receiver.url}/elsewhere (not")


def test_logs_name_the_attempt_without_secrets_tokens_or_signatures(
    store: Store, receivers: Any, dispatchers: Any, clock: FrozenClock, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    receiver, secret = receivers(), new_secret()
    receiver.replies.append(Reply(500))
    url = receiver.url.replace("http://", "http://user:pa55@") + "?token=hush"
    dispatcher = dispatchers(store, [hook(url, secret_file(tmp_path, secret))], clock)
    emit(store, [url], clock)
    caplog.set_level(logging.INFO, logger="calsync.events")

    dispatcher.run_once()
    clock.advance(timedelta(seconds=1))
    dispatcher.run_once()

    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("webhook ")]
    assert len(lines) == 2
    assert f"endpoint={receiver.url} status=500 attempt=1 outcome=retry" in lines[0]
    assert f"endpoint={receiver.url} status=200 attempt=2 outcome=delivered" in lines[1]
    signature = receiver.requests[0].headers["webhook-signature"]
    for text in (secret, secret[6:], "pa55", "hush", signature, signature[3:]):
        assert text not in caplog.text


def test_connection_errors_are_retried_with_a_readable_reason(
    store: Store, dispatchers: Any, clock: FrozenClock, tmp_path: Path
) -> None:
    url = "http://127.0.0.1:9/hooks"  # discard port: nothing listens
    dispatcher = dispatchers(store, [hook(url, secret_file(tmp_path, new_secret()))], clock)
    emit(store, [url], clock)

    assert dispatcher.run_once() == 1

    [row] = rows(store)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error == "request failed: [Errno 111] Connection refused"


# --- what is not sent --------------------------------------------------------------------


def test_an_unreadable_secret_file_holds_deliveries_without_using_attempts(
    store: Store, receivers: Any, dispatchers: Any, clock: FrozenClock, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    receiver, secret = receivers(), new_secret()
    path = tmp_path / "later.secret"
    dispatcher = dispatchers(store, [hook(receiver.url, path)], clock)
    emit(store, [receiver.url], clock)

    assert dispatcher.run_once() == 0
    assert dispatcher.run_once() == 0
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert str(path) in errors[0].getMessage()
    [row] = rows(store)
    assert (row.status, row.attempts, row.locked_until) == ("pending", 0, None)

    path.write_text(secret + "\n")
    assert dispatcher.run_once() == 1
    assert verified(secret, receiver.requests[0])


def test_deliveries_for_endpoints_no_longer_configured_are_left_alone(
    store: Store, receivers: Any, dispatchers: Any, clock: FrozenClock, tmp_path: Path
) -> None:
    receiver, gone = receivers(), "https://old-crm.example.com/hooks"
    dispatcher = dispatchers(
        store, [hook(receiver.url, secret_file(tmp_path, new_secret()))], clock
    )
    emit(store, [gone, receiver.url], clock)

    assert dispatcher.run_once() == 1
    assert dispatcher.run_once() == 0

    old = next(r for r in rows(store) if r.endpoint == gone)
    assert (old.status, old.attempts, old.locked_until) == ("pending", 0, None)


# --- the background loop -------------------------------------------------------------------


def test_the_first_attempt_comes_within_a_second_of_the_commit(
    store: Store, receivers: Any, dispatchers: Any, tmp_path: Path
) -> None:
    receiver, secret, clock = receivers(), new_secret(), SystemClock()
    dispatcher = dispatchers(store, [hook(receiver.url, secret_file(tmp_path, secret))], clock)
    dispatcher.start()
    time.sleep(0.3)

    committed = time.monotonic()
    event = emit(store, [receiver.url], clock)
    receiver.wait_for(1, timeout=1.0)

    assert receiver.requests[0].at - committed < 1.0
    assert verified(secret, receiver.requests[0]) == event.payload


def test_a_slow_endpoint_does_not_delay_a_fast_one(
    store: Store, receivers: Any, dispatchers: Any, tmp_path: Path
) -> None:
    slow, fast, secret, clock = receivers(), receivers(), new_secret(), SystemClock()
    slow.replies.extend([Reply(200, delay=5.0)] * 3)
    path = secret_file(tmp_path, secret)
    dispatcher = dispatchers(store, [hook(slow.url, path), hook(fast.url, path)], clock)
    dispatcher.start()

    emit(store, [slow.url], clock)
    slow.wait_for(1)
    started = time.monotonic()
    for _ in range(3):
        emit(store, [slow.url, fast.url], clock)
    fast.wait_for(3, timeout=1.5)

    assert fast.requests[-1].at - started < 1.0
    assert len(slow.requests) == 1  # one send in flight per endpoint, in order
    slow.release.set()
    slow.wait_for(4)


def test_stop_waits_for_sends_in_flight_and_hands_back_the_rest(
    store: Store, receivers: Any, dispatchers: Any, tmp_path: Path
) -> None:
    receiver, clock = receivers(), SystemClock()
    receiver.replies.append(Reply(200, delay=0.5))
    dispatcher = dispatchers(
        store, [hook(receiver.url, secret_file(tmp_path, new_secret()))], clock
    )
    for _ in range(3):
        emit(store, [receiver.url], clock)
    dispatcher.start()
    receiver.wait_for(1)

    dispatcher.stop(timeout=5.0)

    assert len(receiver.requests) == 1
    states = [(r.status, r.locked_until) for r in rows(store)]
    assert states == [("delivered", None), ("pending", None), ("pending", None)]
    assert len(store.outbox.claim(clock.now(), timedelta(minutes=1), 10)) == 2


def test_stop_is_bounded_and_releases_a_send_still_in_flight(
    store: Store, receivers: Any, dispatchers: Any, tmp_path: Path
) -> None:
    receiver, clock = receivers(), SystemClock()
    receiver.replies.append(Reply(200, delay=10.0))
    dispatcher = dispatchers(
        store, [hook(receiver.url, secret_file(tmp_path, new_secret()))], clock
    )
    emit(store, [receiver.url], clock)
    dispatcher.start()
    receiver.wait_for(1)

    started = time.monotonic()
    dispatcher.stop(timeout=0.3)

    assert time.monotonic() - started < 1.0
    [row] = rows(store)
    assert (row.status, row.locked_until) == ("pending", None)
    receiver.release.set()  # the late answer is still recorded
    deadline = time.monotonic() + 3
    while rows(store)[0].status != "delivered" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert rows(store)[0].status == "delivered"


def test_after_a_crash_the_lease_expires_and_another_dispatcher_delivers(
    store: Store, receivers: Any, dispatchers: Any, clock: FrozenClock, tmp_path: Path
) -> None:
    receiver, secret = receivers(), new_secret()
    hooks = [hook(receiver.url, secret_file(tmp_path, secret))]
    event = emit(store, [receiver.url], clock)
    store.outbox.claim(clock.now(), timedelta(seconds=60), 10)  # a daemon claimed, then died
    dispatcher = dispatchers(store, hooks, clock)

    assert dispatcher.run_once() == 0
    clock.advance(timedelta(seconds=61))
    assert dispatcher.run_once() == 1
    assert verified(secret, receiver.requests[0]) == event.payload


def tagged(name: str) -> Callable[[], requests.Session]:
    def session() -> requests.Session:
        made = requests.Session()
        made.headers["X-Daemon"] = name
        return made

    return session


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from postgres_url()


@pytest.mark.postgres
def test_two_daemons_on_one_postgresql_deliver_each_event_once(
    pg_url: str, receivers: Any, dispatchers: Any, tmp_path: Path
) -> None:
    one, two, clock = Store.open(pg_url), Store.open(pg_url), SystemClock()
    one.upgrade()
    first, second, secret = receivers(), receivers(), new_secret()
    path = secret_file(tmp_path, secret)
    hooks = [hook(first.url, path), hook(second.url, path)]
    events = [emit(one, [first.url, second.url], clock) for _ in range(40)]
    first.replies.extend([Reply(200, delay=0.02)] * 40)  # slow enough that both get a turn
    daemons = [
        dispatchers(store, hooks, clock, workers=2, session_factory=tagged(name))
        for store, name in ((one, "one"), (two, "two"))
    ]
    try:
        for daemon in daemons:
            daemon.start()
        first.wait_for(40, timeout=10)
        second.wait_for(40, timeout=10)
        time.sleep(0.5)  # a duplicate would arrive by now
        for daemon in daemons:
            daemon.stop()
        expected = sorted(f"msg_{e.id}" for e in events)
        for receiver in (first, second):
            assert sorted(r.headers["webhook-id"] for r in receiver.requests) == expected
            assert all(verified(secret, r) for r in receiver.requests)
        assert {r.status for r in rows(one)} == {"delivered"}
        senders = {r.headers["X-Daemon"] for r in first.requests + second.requests}
        assert senders == {"one", "two"}
    finally:
        one.close()
        two.close()


# --- operator tools ----------------------------------------------------------------------


def test_send_test_signs_a_test_event_and_reports_the_answer(
    store: Store, receivers: Any, dispatchers: Any, clock: FrozenClock, tmp_path: Path
) -> None:
    receiver, secret = receivers(), new_secret()
    receiver.replies.append(Reply(202, {"X-Receiver": "crm"}, body=b'{"ok": true}'))
    dispatcher = dispatchers(store, [hook(receiver.url, secret_file(tmp_path, secret))], clock)

    result = dispatcher.send_test(receiver.url)

    assert (result.status, result.error, result.ok) == (202, None, True)
    assert result.headers["X-Receiver"] == "crm"
    assert result.body == '{"ok": true}'
    [request] = receiver.requests
    assert request.headers["webhook-id"] == result.webhook_id
    payload = verified(secret, request)
    assert payload["type"] == "webhook.test"
    assert rows(store) == []  # a test is not an outbox event


def test_send_test_reports_failures_and_refuses_unknown_urls(
    store: Store, receivers: Any, dispatchers: Any, clock: FrozenClock, tmp_path: Path
) -> None:
    receiver = receivers()
    receiver.replies.append(Reply(500, body=b"nope"))
    missing = tmp_path / "missing.secret"
    hooks = [
        hook(receiver.url, secret_file(tmp_path, new_secret())),
        hook("http://127.0.0.1:9/x", missing),
    ]
    dispatcher = dispatchers(store, hooks, clock)

    assert dispatcher.send_test(receiver.url).error == "HTTP 500: nope"
    unreadable = dispatcher.send_test("http://127.0.0.1:9/x")
    assert unreadable.status is None
    assert str(missing) in (unreadable.error or "")
    with pytest.raises(NotFoundError, match="no \\[\\[webhooks\\]\\] entry"):
        dispatcher.send_test("https://elsewhere.example.com/")


# --- secret files -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "holds no secret"),
        ("# only a comment\n", "holds no secret"),
        ("c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0\n", "line 1: a secret must start with whsec_"),
        ("whsec_%%%not-base64%%%\n", "line 1: the part after whsec_ is not valid base64"),
        ("# ok\nwhsec_c2hvcnQ=\n", "line 2: the secret has 5 bytes, 24 at least"),
    ],
)
def test_load_secrets_names_the_problem_but_never_the_secret(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "webhook.secret"
    path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_secrets(path)
    assert problem in caught.value.message
    assert str(path) in caught.value.message
    for line in content.splitlines():
        if line and not line.startswith("#"):
            assert line not in caught.value.message


def test_load_secrets_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read .*No such file or directory"):
        load_secrets(tmp_path / "nope.secret")
