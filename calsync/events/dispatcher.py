"""The webhook dispatcher: outbox deliveries out to the configured endpoints, at least once.

It owns the delivery loop: claim due deliveries with a lease
(``OutboxRepo.claim``; on PostgreSQL ``FOR UPDATE SKIP LOCKED``, so several
daemons share one outbox), POST each to its endpoint with Standard Webhooks
headers, and record the outcome: 2xx delivered; 410 gives up and disables
the endpoint; anything else is retried on the endpoint's ``retry``
schedule (with jitter, honouring a longer ``Retry-After``) until the
schedule runs out. Each recorded attempt is reported to ``on_delivery``
(``Metrics.observe_delivery`` in the daemon) as ``delivered``, ``retry``,
``failed`` (the schedule is used up) or ``disabled`` (the attempt disabled the
endpoint). An endpoint has at most one group of sends in flight,
sent in claim order, so a slow endpoint holds back only itself. A clean
``stop()`` hands unfinished claims back; after ``kill -9`` they expire.

It must not decide which endpoints an event goes to (``write_event`` did
that in the change's transaction), touch rows outside ``OutboxRepo``, or log
secrets, signatures, query strings or userinfo of endpoint URLs.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import NamedTuple

import requests

from calsync.clock import Clock
from calsync.config import WebhookSettings
from calsync.errors import CalsyncError, ConfigError, NotFoundError
from calsync.events.signing import (
    Answer,
    SecretFiles,
    TestResult,
    display_url,
    encode_body,
    load_secrets,
    post,
    retry_after_wait,
    signed_headers,
    webhook_id,
)
from calsync.model import Delivery
from calsync.store import Store

log = logging.getLogger("calsync.events")

JITTER = 0.2  # each wait is its schedule entry +-20 %
# deliveries claimed per free worker and round: one, so a daemon killed mid-send leaves at
# most one claimed delivery per endpoint waiting for its lease (webhook volumes are small)
CLAIM_PER_WORKER = 1
ERROR_POLL = 5.0  # seconds between rounds while the database fails
DELIVERED, RETRY, FAILED, DISABLED = "delivered", "retry", "failed", "disabled"


class _Outcome(NamedTuple):
    name: str  # delivered | retry | failed | disabled, as reported to on_delivery
    level: int  # of the attempt's log line
    text: str  # its key=value tail

    @property
    def disabled(self) -> bool:
        """The endpoint was disabled: send it nothing more now."""
        return self.name == DISABLED


class Dispatcher:
    def __init__(
        self,
        store: Store,
        webhooks: Sequence[WebhookSettings],
        clock: Clock,
        *,
        session_factory: Callable[[], requests.Session] = requests.Session,
        poll: float = 0.25,
        lease: timedelta = timedelta(seconds=60),
        timeout: float = 15.0,
        workers: int = 8,
        disable_after: timedelta = timedelta(days=3),
        rng: random.Random | None = None,
        on_delivery: Callable[[str, str], None] | None = None,
    ) -> None:
        """``on_delivery(endpoint URL, outcome)`` is told of every recorded attempt."""
        if poll <= 0 or timeout <= 0 or workers < 1:
            raise ValueError("poll and timeout must be positive and workers at least 1")
        if lease.total_seconds() < 2 * timeout:
            raise ValueError("the lease must be at least twice the timeout")
        self._store, self._clock = store, clock
        self._hooks: dict[str, WebhookSettings] = {}
        for hook in webhooks:
            self._hooks.setdefault(hook.url, hook)
        self._session_factory = session_factory
        self._poll, self._lease, self._timeout = poll, lease, timeout
        self._workers, self._disable_after = workers, disable_after
        self._rng = rng or random.Random()
        self._on_delivery = on_delivery
        self._secrets = SecretFiles()
        self._lock = threading.Lock()  # guards the state below
        self._round_lock = threading.Lock()
        self._busy: set[str] = set()  # endpoints with a group in flight
        self._claimed: set[int] = set()  # delivery ids leased and not yet recorded
        self._futures: set[Future[int]] = set()
        self._sessions: dict[str, requests.Session] = {}
        self._unknown: set[str] = set()  # endpoints with deliveries but no config
        self._unready: dict[str, str] = {}  # endpoint -> secret problem (logged once)
        self._stopping, self._wake = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None

    # --- lifecycle ---------------------------------------------------------------------

    def use(self, webhooks: Sequence[WebhookSettings]) -> None:
        """Deliver to another set of endpoints from now on (a config reload)."""
        hooks: dict[str, WebhookSettings] = {}
        for hook in webhooks:
            hooks.setdefault(hook.url, hook)
        with self._lock:
            self._hooks = hooks
            self._unknown.clear()

    def start(self) -> None:
        """Deliver in the background until ``stop()``."""
        if self._thread is not None:
            raise RuntimeError("the webhook dispatcher is already running")
        self._stopping.clear()
        if self._store.dialect == "sqlite":  # one daemon per SQLite file: its claims are ours
            released = self._store.outbox.release_stale(self._clock.now())
            if released:
                log.info("webhooks reclaimed deliveries=%d left by an earlier run", released)
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="calsync-webhook")
        self._thread = threading.Thread(target=self._loop, name="calsync-webhooks", daemon=True)
        self._thread.start()
        log.info("webhooks started endpoints=%d workers=%d", len(self._hooks), self._workers)

    def stop(self, timeout: float = 10.0) -> None:
        """Finish in-flight sends (up to ``timeout`` s), then hand every unfinished claim back."""
        deadline = time.monotonic() + timeout
        self._stopping.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
        pool, self._pool = self._pool, None
        with self._lock:
            running = list(self._futures)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        futures.wait(running, timeout=max(0.0, deadline - time.monotonic()))
        with self._lock:
            leftover = sorted(self._claimed)
            self._claimed.clear()
            sessions = list(self._sessions.values())
            self._sessions.clear()
        self._release(leftover)
        for session in sessions:
            session.close()
        if thread is not None:
            log.info("webhooks stopped released=%d", len(leftover))

    def run_once(self) -> int:
        """One claim-and-deliver round, waited for; returns the deliveries attempted."""
        with ThreadPoolExecutor(self._workers, thread_name_prefix="calsync-webhook") as pool:
            started = self._round(pool)
            return sum(future.result() for future in started)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            pause = self._poll
            try:
                if self._pool is not None:
                    self._round(self._pool)
            except Exception as err:  # the loop must outlive a database outage
                log.error("webhooks round failed: %s (retrying in %g s)", _text(err), ERROR_POLL)
                pause = ERROR_POLL
            self._wake.wait(pause)
            self._wake.clear()

    # --- one round ---------------------------------------------------------------------

    def _round(self, pool: ThreadPoolExecutor) -> list[Future[int]]:
        with self._round_lock:
            with self._lock:
                busy = set(self._busy)
            free = self._workers - len(busy)
            secrets = self._ready_secrets(busy) if free > 0 else {}
            if not secrets:
                return []
            now = self._clock.now()
            skip = busy | self._unknown | (self._hooks.keys() - secrets.keys())
            claimed = self._store.outbox.claim(now, self._lease, free * CLAIM_PER_WORKER, skip)
            send_by = now + self._lease - timedelta(seconds=self._timeout)
            return self._dispatch(pool, _by_endpoint(claimed), secrets, free, send_by)

    def _dispatch(
        self, pool: ThreadPoolExecutor, groups: dict[str, list[Delivery]],
        secrets: dict[str, list[str]], free: int, send_by: datetime,
    ) -> list[Future[int]]:  # fmt: skip
        started: list[Future[int]] = []
        put_back: list[int] = []
        for url, group in groups.items():
            if url not in secrets:
                self._note_unknown(url)
            if url not in secrets or len(started) >= free:
                put_back += [d.id for d in group]
                continue
            with self._lock:
                self._busy.add(url)
                self._claimed.update(d.id for d in group)
            future = pool.submit(self._send_group, url, group, secrets[url], send_by)
            with self._lock:
                self._futures.add(future)
            future.add_done_callback(partial(self._finished, url))
            started.append(future)
        self._release(put_back)
        return started

    def _finished(self, url: str, future: Future[int]) -> None:
        with self._lock:
            self._futures.discard(future)
            self._busy.discard(url)
        self._wake.set()  # the endpoint may have more due: claim again now

    def _ready_secrets(self, busy: set[str]) -> dict[str, list[str]]:
        """The secrets of every configured, idle endpoint whose secret file is usable."""
        ready: dict[str, list[str]] = {}
        for url, hook in self._hooks.items():
            if url in busy:
                continue
            try:
                ready[url] = self._secrets.get(hook.secret_file)
            except ConfigError as err:
                self._note_unready(url, "; ".join(err.problems))
                continue
            if self._unready.pop(url, None) is not None:
                log.info("webhook endpoint=%s secret_file readable again", display_url(url))
        return ready

    def _note_unready(self, url: str, problem: str) -> None:
        if self._unready.get(url) != problem:
            self._unready[url] = problem
            log.error(
                "webhook endpoint=%s deliveries held (none sent, no attempt used): %s",
                display_url(url), problem,
            )  # fmt: skip

    def _note_unknown(self, url: str) -> None:
        if url not in self._unknown:
            self._unknown.add(url)
            log.info(
                "webhook endpoint=%s is not in [[webhooks]]; its deliveries stay pending",
                display_url(url),
            )

    # --- sending -----------------------------------------------------------------------

    def _send_group(
        self, url: str, group: list[Delivery], secrets: list[str], send_by: datetime
    ) -> int:
        """Send one endpoint's claimed deliveries in order; hand back what is left."""
        sent = 0
        try:
            session = self._session(url)
            for delivery in group:
                if self._stopping.is_set() or self._clock.now() >= send_by:
                    break
                sent += 1
                if not self._deliver(session, delivery, secrets):
                    break  # the endpoint was disabled: the rest wait for it
        except Exception as err:
            log.error("webhook endpoint=%s sending stopped: %s", display_url(url), _text(err))
        finally:
            with self._lock:
                left = [d.id for d in group if d.id in self._claimed]
                self._claimed.difference_update(left)
            self._release(left)
        return sent

    def _deliver(self, session: requests.Session, delivery: Delivery, secrets: list[str]) -> bool:
        """One attempt, recorded and logged; False when it disabled the endpoint."""
        body = encode_body(delivery.payload)
        headers = signed_headers(secrets, webhook_id(delivery.event_id), self._clock.now(), body)
        answer = post(session, delivery.endpoint, body, headers, self._timeout)
        try:
            outcome = self._record(delivery, answer)
        except CalsyncError as err:
            _log_attempt(logging.ERROR, delivery, answer, f"outcome=unrecorded {_kv(err)}")
            raise
        finally:
            with self._lock:
                self._claimed.discard(delivery.id)
        _log_attempt(outcome.level, delivery, answer, outcome.text)
        if self._on_delivery is not None:
            self._on_delivery(delivery.endpoint, outcome.name)
        return not outcome.disabled

    def _record(self, delivery: Delivery, answer: Answer) -> _Outcome:
        repo, now, url = self._store.outbox, self._clock.now(), delivery.endpoint
        if answer.error is None:
            repo.delivered(delivery.id, answer.status or 200, now)
            repo.endpoint_succeeded(url, now)
            return _Outcome(DELIVERED, logging.INFO, "outcome=delivered")
        if answer.status == 410:
            repo.give_up(delivery.id, 410, answer.error)
            repo.disable(url, "the endpoint answered 410 Gone", now)
            return _Outcome(DISABLED, logging.ERROR, "outcome=failed endpoint=disabled reason=410")
        since = repo.endpoint_failed(url, answer.error, now)
        outcome = self._reschedule(delivery, answer, now)
        if now - since > self._disable_after:
            repo.disable(url, self._failing_reason(since, answer.error), now)
            text = f"{outcome.text} endpoint=disabled reason=failing"
            outcome = _Outcome(DISABLED, logging.ERROR, text)
        return outcome._replace(text=f"{outcome.text} {_kv(answer.error)}")

    def _reschedule(self, delivery: Delivery, answer: Answer, now: datetime) -> _Outcome:
        """The next attempt on the endpoint's schedule, or give up when it is used up."""
        schedule, status, error = self._hooks[delivery.endpoint].retry, answer.status, answer.error
        if delivery.attempts < len(schedule):
            wait = self._wait(schedule[delivery.attempts], answer.retry_after, now)
            self._store.outbox.retry(delivery.id, now + wait, status, error or "")
            return _Outcome(RETRY, logging.WARNING, f"outcome=retry in={wait.total_seconds():.1f}s")
        last = f"gave up after {delivery.attempts + 1} attempts; last: {error}"
        self._store.outbox.give_up(delivery.id, status, last)
        return _Outcome(FAILED, logging.ERROR, "outcome=failed")

    def _wait(self, base: timedelta, retry_after: str | None, now: datetime) -> timedelta:
        jittered = base * self._rng.uniform(1 - JITTER, 1 + JITTER)
        asked = retry_after_wait(retry_after, now)
        return max(jittered, asked) if asked is not None else jittered

    def _failing_reason(self, since: datetime, error: str) -> str:
        return (
            f"failing since {since.astimezone(UTC).isoformat(timespec='seconds')} "
            f"(more than {_span(self._disable_after)}); last error: {error}"
        )

    def _session(self, url: str) -> requests.Session:
        """One session per endpoint: only that endpoint's single group ever uses it."""
        with self._lock:
            session = self._sessions.get(url)
            if session is None:
                session = self._sessions[url] = self._session_factory()
            return session

    def _release(self, ids: list[int]) -> None:
        try:
            self._store.outbox.release(ids)
        except CalsyncError as err:
            log.error("webhooks could not hand back %d claims (their lease expires): %s",
                      len(ids), err.message)  # fmt: skip

    # --- operator tools ----------------------------------------------------------------

    def send_test(self, url: str) -> TestResult:
        """POST a signed ``webhook.test`` event to the configured endpoint ``url``."""
        hook = self._hooks.get(url)
        if hook is None:
            known = ", ".join(display_url(u) for u in self._hooks) or "none"
            raise NotFoundError(
                f"no [[webhooks]] entry has url {display_url(url)} (configured: {known})"
            )
        msg_id = f"msg_test_{uuid.uuid4().hex}"
        now = self._clock.now()
        try:
            secrets = load_secrets(hook.secret_file)
        except ConfigError as err:
            return TestResult(url, msg_id, None, error="; ".join(err.problems))
        payload = {
            "type": "webhook.test",
            "timestamp": now.astimezone(UTC).isoformat(),
            "data": {"message": "a test event from calsync", "endpoint": display_url(url)},
        }
        body = encode_body(payload)
        session = self._session_factory()
        try:
            headers = signed_headers(secrets, msg_id, now, body)
            answer = post(session, url, body, headers, self._timeout)
        finally:
            session.close()
        outcome = "outcome=ok" if answer.error is None else f"outcome=failed {_kv(answer.error)}"
        log.info("webhook test endpoint=%s status=%s %s", display_url(url), answer.status or "-",
                 outcome)  # fmt: skip
        return TestResult(
            url, msg_id, answer.status, answer.headers, answer.body, answer.error, answer.elapsed
        )


# --- small helpers -----------------------------------------------------------------------


def _by_endpoint(claimed: Iterable[Delivery]) -> dict[str, list[Delivery]]:
    groups: dict[str, list[Delivery]] = {}
    for delivery in claimed:
        groups.setdefault(delivery.endpoint, []).append(delivery)
    return groups


def _log_attempt(level: int, delivery: Delivery, answer: Answer, outcome: str) -> None:
    log.log(
        level, "webhook delivery=%d event=%s endpoint=%s status=%s attempt=%d %s",
        delivery.id, delivery.event_id, display_url(delivery.endpoint),
        answer.status if answer.status is not None else "-", delivery.attempts + 1, outcome,
    )  # fmt: skip


def _kv(error: str | CalsyncError) -> str:
    text = error.message if isinstance(error, CalsyncError) else error
    return "error=" + '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(err: BaseException) -> str:
    return err.message if isinstance(err, CalsyncError) else f"{type(err).__name__}: {err}"


def _span(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= size and seconds % size == 0 and seconds == value.total_seconds():
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{value.total_seconds():g} seconds"


__all__ = ["Dispatcher", "TestResult", "load_secrets"]
