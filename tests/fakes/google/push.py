"""Push channels (events.watch / channels.stop) and the delivery of their notifications.

Owns channels (client ``id``, a ``resourceId`` stable per watched calendar,
``expiration``, ``token``) and one delivery thread that POSTs header-only
notifications to the channel address: ``sync`` with message number 1 right
after creation, then ``exists`` after every change, with increasing but
non-contiguous message numbers. 500/502/503/504 and connection failures are
retried with short backoff; every attempt's outcome is recorded. Channel
bookkeeping runs under the fake's lock; delivery never holds it.
"""

from __future__ import annotations

import copy
import http.client
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

from .errors import ApiError, bad_parameter

DEFAULT_TTL = timedelta(days=7)  # params.ttl default, providers.md 1.7
RETRIED = frozenset({500, 502, 503, 504})
USER_AGENT = "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)"
_CHANNEL_ID = re.compile(r"[A-Za-z0-9\-_+/=]{1,64}")


@dataclass
class Channel:
    id: str
    resource_id: str
    resource_uri: str
    calendar_id: str
    address: str
    token: str | None
    expiration_ms: int
    last_number: int = 0
    stopped: bool = False

    def resource(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "api#channel",
            "id": self.id,
            "resourceId": self.resource_id,
            "resourceUri": self.resource_uri,
        }
        if self.token is not None:
            out["token"] = self.token
        out["expiration"] = str(self.expiration_ms)
        return out


@dataclass
class Delivery:
    """One notification and the outcome of each attempt (status code or ``"error: ..."``)."""

    channel_id: str
    message_number: int
    state: str
    headers: dict[str, str]
    address: str
    attempts: list[int | str] = field(default_factory=list)

    @property
    def status(self) -> int | str | None:
        return self.attempts[-1] if self.attempts else None


class PushHub:
    def __init__(
        self,
        clock: Callable[[], datetime],
        retry_delays: tuple[float, ...],
        rng: random.Random,
    ) -> None:
        self.clock = clock
        self.retry_delays = retry_delays
        self.rng = rng
        self.require_https = False
        self.channels: dict[str, Channel] = {}
        self.deliveries: list[Delivery] = []
        self._queue: deque[Delivery] = deque()
        self._cond = threading.Condition()
        self._pending = 0
        self._closing = False
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="fake-google-push", daemon=True)
        self._thread.start()

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def snapshot(self) -> list[Delivery]:
        with self._cond:
            return [copy.deepcopy(d) for d in self.deliveries]

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every queued notification has been delivered (or given up on)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    # --- channels --------------------------------------------------------------------

    def create(
        self, body: Any, calendar_id: str, resource_id: str, resource_uri: str
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "badRequest", "Bad Request")
        channel_id = body.get("id")
        if not channel_id:
            raise ApiError(400, "required", "Required channel id.", location="id")
        if not isinstance(channel_id, str) or not _CHANNEL_ID.fullmatch(channel_id):
            raise ApiError(400, "invalid", f"Invalid channel id: {channel_id!r}", location="id")
        if channel_id in self.channels:
            raise ApiError(400, "channelIdNotUnique", f"Channel id {channel_id} not unique")
        if body.get("type") not in ("web_hook", "webhook"):
            raise ApiError(400, "invalid", "Invalid value for: type", location="type")
        address = self._check_address(body.get("address"))
        token = body.get("token")
        if token is not None and (not isinstance(token, str) or len(token) > 256):
            raise ApiError(400, "invalid", "Invalid channel token.", location="token")
        channel = Channel(
            channel_id,
            resource_id,
            resource_uri,
            calendar_id,
            address,
            token,
            self._expiration(body),
        )
        self.channels[channel_id] = channel
        self._enqueue(channel, "sync")
        return channel.resource()

    def _check_address(self, address: Any) -> str:
        if not isinstance(address, str) or not address:
            raise ApiError(400, "required", "Required channel address.", location="address")
        scheme = urlsplit(address).scheme
        if scheme != "https" and (self.require_https or scheme != "http"):
            raise ApiError(
                400, "push.webhookUrlNotHttps", f"WebHook callback must be HTTPS: {address}"
            )
        return address

    def _expiration(self, body: dict[str, Any]) -> int:
        now_ms = int(self.clock().timestamp() * 1000)
        ttl = (body.get("params") or {}).get("ttl")
        if ttl is not None and not (isinstance(ttl, str) and ttl.isdigit()):
            raise bad_parameter("params.ttl")
        latest = now_ms + (int(ttl) * 1000 if ttl else int(DEFAULT_TTL.total_seconds() * 1000))
        requested = body.get("expiration")
        if requested is None:
            return latest
        if not str(requested).isdigit() or int(requested) <= now_ms:
            raise bad_parameter("expiration")
        return min(int(requested), latest)

    def stop(self, body: Any) -> None:
        if not isinstance(body, dict) or not body.get("id") or not body.get("resourceId"):
            raise ApiError(400, "required", "Required parameters: id and resourceId.")
        channel = self.channels.get(body["id"])
        if channel is None or channel.stopped or channel.resource_id != body["resourceId"]:
            raise ApiError(404, "notFound", f"Channel '{body['id']}' not found for project.")
        channel.stopped = True

    def changed(self, calendar_id: str) -> None:
        """Queue an ``exists`` notification on every live channel watching ``calendar_id``."""
        now_ms = int(self.clock().timestamp() * 1000)
        for channel in self.channels.values():
            live = not channel.stopped and channel.expiration_ms > now_ms
            if live and channel.calendar_id == calendar_id:
                self._enqueue(channel, "exists")

    # --- delivery --------------------------------------------------------------------

    def _enqueue(self, channel: Channel, state: str) -> None:
        number = 1 if state == "sync" else channel.last_number + self.rng.randint(2, 97)
        channel.last_number = number
        expiration = datetime.fromtimestamp(channel.expiration_ms / 1000, UTC)
        headers = {
            "X-Goog-Channel-ID": channel.id,
            "X-Goog-Channel-Expiration": format_datetime(expiration, usegmt=True),
            "X-Goog-Message-Number": str(number),
            "X-Goog-Resource-ID": channel.resource_id,
            "X-Goog-Resource-State": state,
            "X-Goog-Resource-URI": channel.resource_uri,
            "User-Agent": USER_AGENT,
        }
        if channel.token is not None:
            headers["X-Goog-Channel-Token"] = channel.token
        delivery = Delivery(channel.id, number, state, headers, channel.address)
        with self._cond:
            self.deliveries.append(delivery)
            self._queue.append(delivery)
            self._pending += 1
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if self._closing:
                    return
                delivery = self._queue.popleft()
            try:
                self._deliver(delivery)
            finally:
                with self._cond:
                    self._pending -= 1
                    self._cond.notify_all()

    def _deliver(self, delivery: Delivery) -> None:
        for attempt in range(len(self.retry_delays) + 1):
            outcome = _post(delivery.address, delivery.headers)
            with self._cond:
                delivery.attempts.append(outcome)
            retry = outcome in RETRIED or isinstance(outcome, str)
            if not retry or attempt == len(self.retry_delays) or self._closing:
                return
            time.sleep(self.retry_delays[attempt])


def _post(address: str, headers: dict[str, str]) -> int | str:
    parts = urlsplit(address)
    factory = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = factory(parts.hostname or "", parts.port, timeout=5)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("POST", target, body=b"", headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    except OSError as err:
        return f"error: {err}"
    finally:
        conn.close()
