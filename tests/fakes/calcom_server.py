"""A fake of the Cal.com API v2: a real HTTP/1.1 server on 127.0.0.1, for tests.

Built from the protocol notes (shared/reference/providers.md sections 3 and 6),
never from a calsync adapter. It owns one Cal.com account (a user, schedules,
event types, bookings, slot reservations, API keys, webhooks) and serves only
``/v2`` (v1 is discontinued: any other path is a NestJS-style 404).

What it reproduces:

- Envelopes: ``{"status":"success","data":...}`` (lists add ``pagination``);
  errors ``{"status":"error","timestamp","path","error":{code,message,details}}``.
- Auth: ``Authorization: Bearer cal_...``. A present but unknown/revoked key is
  401 everywhere; a missing key is 401 only where the real API requires one.
- ``cal-api-version`` per endpoint family. As on the real server, a missing or
  unknown value *silently* selects the 2024-04-15 handlers: bookings and event
  types then answer in their legacy shapes (``startTime``, ``length``,
  ``{"bookings": [...]}``, cancel 201), and ``GET /v2/slots`` does not exist
  (404; the old handler is ``/v2/slots/available``). A known version that no
  handler of the family declares is a 404 too.
- Slots from a weekly schedule per event type minus accepted/pending bookings
  and live reservations; booking validation (UTC start, attendee, E.164 phone,
  required booking fields, metadata limits, unknown properties rejected).
- Rate limits per credential with ``X-RateLimit-*-Default`` headers; 429
  ``ThrottlerException`` without ``Retry-After``.
- Outbound webhooks signed with hex HMAC-SHA256 in ``X-Cal-Signature-256``.

Knobs and inspection live on ``FakeCalcom``; see its methods. It must not
import calsync: it is the yardstick adapters are measured against.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import http.client
import json
import math
import queue
import re
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

Json = dict[str, Any]

LEGACY_VERSION = "2024-04-15"
KNOWN_VERSIONS = frozenset(
    {
        "2024-04-15",
        "2024-05-21",
        "2024-06-11",
        "2024-06-14",
        "2024-08-13",
        "2024-09-04",
        "2026-02-25",
    }
)
# family -> (versions served by the current handlers, versions served by the legacy ones)
FAMILY_VERSIONS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "bookings": (
        frozenset({"2024-08-13", "2026-02-25"}),
        frozenset({"2024-04-15", "2024-06-11", "2024-06-14"}),
    ),
    "slots": (
        frozenset({"2024-09-04"}),
        frozenset({"2024-04-15", "2024-06-11", "2024-06-14", "2024-08-13"}),
    ),
    "event-types": (frozenset({"2024-06-14"}), frozenset({"2024-04-15", "2024-06-11"})),
}
WEBHOOK_VERSION = "2021-10-20"
NO_SECRET = "no-secret-provided"
TRIGGERS = frozenset(
    {
        "BOOKING_CREATED",
        "BOOKING_RESCHEDULED",
        "BOOKING_CANCELLED",
        "BOOKING_REQUESTED",
        "BOOKING_REJECTED",
        "BOOKING_PAYMENT_INITIATED",
        "BOOKING_PAID",
        "BOOKING_NO_SHOW_UPDATED",
        "MEETING_STARTED",
        "MEETING_ENDED",
        "RECORDING_READY",
        "RECORDING_TRANSCRIPTION_GENERATED",
        "INSTANT_MEETING",
        "FORM_SUBMITTED",
        "OOO_CREATED",
    }
)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


LANGUAGES = _words(
    "ar ca de es eu he id ja lv pl ro sr th vi az cs el es-419 fi hr it km nl pt ru sv tr "
    "zh-CN bg da en et fr hu iw ko no pt-BR sk ta uk zh-TW bn"
)
MSG_UNAVAILABLE = "User either already has booking at this time or is not available"
MSG_PAST = "Attempting to book a meeting in the past."
MSG_OUT_OF_BOUNDS = (
    "The event type can't be booked at the \"start\" time provided. This could be because it's "
    "too soon (violating the minimum booking notice) or too far in the future (outside the "
    "event's scheduling window). Try fetching available slots first using the GET /v2/slots "
    'endpoint and then make a booking with "start" time equal to one of the available slots: '
    "https://cal.com/docs/api-reference/v2/slots"
)
MSG_METADATA = (
    "Metadata must have at most 50 keys, each key up to 40 characters, and string values up to "
    "500 characters."
)
MSG_THROTTLED = "Too many requests. Please try again later."
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_STATUS_FILTERS = ("upcoming", "recurring", "past", "cancelled", "unconfirmed")
_SORTS = ("sortStart", "sortEnd", "sortCreated", "sortUpdatedAt")


# --- the account's data --------------------------------------------------------------


@dataclass
class User:
    id: int = 1
    username: str = "alex"
    email: str = "alex@example.com"
    name: str = "Alex Example"
    time_zone: str = "Europe/Vienna"


@dataclass
class Schedule:
    """Weekly hours in ``time_zone``; weekdays 0=Monday; overrides by ISO date ([] = day off)."""

    time_zone: str = "Europe/Vienna"
    availability: list[tuple[tuple[int, ...], str, str]] = field(
        default_factory=lambda: [((0, 1, 2, 3, 4), "09:00", "17:00")]
    )
    overrides: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    id: int = 1


@dataclass
class EventType:
    id: int
    slug: str
    title: str
    length: int = 30
    description: str = ""
    schedule: Schedule = field(default_factory=Schedule)
    length_options: tuple[int, ...] = ()
    requires_phone: bool = False  # e.g. SMS reminders: attendee phone required
    requires_email: bool = True
    extra_fields: list[Json] = field(default_factory=list)  # {"slug","type","label","required"}
    requires_confirmation: bool = False
    minimum_notice_minutes: int = 0
    slot_interval: int | None = None
    hidden: bool = False
    locations: list[Json] = field(
        default_factory=lambda: [{"type": "integration", "integration": "cal-video"}]
    )


@dataclass
class Booking:
    id: int
    uid: str
    event_type_id: int
    start: datetime
    end: datetime
    status: str  # accepted | pending | cancelled | rejected
    title: str
    attendees: list[Json]  # {name, email, timeZone, language, phoneNumber}
    created_at: datetime
    updated_at: datetime | None
    description: str = ""
    guests: list[str] = field(default_factory=list)
    metadata: Json = field(default_factory=dict)
    location: str | None = None
    responses: Json = field(default_factory=dict)  # custom bookingFieldsResponses
    source: str = "api"  # api | booking_page
    cancellation_reason: str | None = None
    cancelled_by_email: str | None = None
    rescheduling_reason: str | None = None
    rescheduled_by_email: str | None = None
    rescheduled_from_uid: str | None = None
    rescheduled_to_uid: str | None = None
    rescheduled: bool = False


@dataclass
class Reservation:
    uid: str
    event_type_id: int
    start: datetime
    end: datetime
    minutes: int
    until: datetime


@dataclass
class Webhook:
    id: int
    subscriber_url: str
    secret: str | None
    triggers: frozenset[str]
    active: bool = True
    event_type_id: int | None = None


@dataclass
class Delivery:
    """One POST to a subscriber; ``status`` is None while pending or on a network error."""

    webhook_id: int
    trigger: str
    url: str
    body: bytes
    headers: dict[str, str]
    status: int | None = None
    error: str | None = None
    attempts: int = 0
    done: bool = False

    @property
    def json(self) -> Json:
        parsed: Json = json.loads(self.body)
        return parsed


@dataclass
class RecordedRequest:
    method: str
    path: str  # as sent, with the query string
    route: str  # e.g. "POST /v2/bookings/{uid}/cancel", "" when no route matched
    headers: dict[str, str]  # names lower-cased
    body: bytes
    status: int = 0
    credential: str | None = None  # the API key or client IP the request counted against

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


# --- errors and small helpers --------------------------------------------------------


_EXCEPTION_NAMES = {
    400: ("BadRequestException", "Bad Request"),
    401: ("UnauthorizedException", "Unauthorized"),
    403: ("ForbiddenException", "Forbidden"),
    404: ("NotFoundException", "Not Found"),
    409: ("ConflictException", "Conflict"),
    422: ("UnprocessableEntityException", "Unprocessable Entity"),
    429: ("ThrottlerException", "Too Many Requests"),
    500: ("InternalServerErrorException", "Internal Server Error"),
    503: ("ServiceUnavailableException", "Service Unavailable"),
}


class ApiError(Exception):
    """An HTTP error answered in Cal.com's envelope."""

    def __init__(self, status: int, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details

    @classmethod
    def validation(cls, messages: list[str]) -> ApiError:
        details = {"message": messages, "error": "Bad Request", "statusCode": 400}
        return cls(400, ", ".join(messages), details)

    def envelope(self, path: str, now: datetime) -> Json:
        code, reason = _EXCEPTION_NAMES.get(self.status, ("HttpException", "Error"))
        details = self.details or {"message": self.message, "error": reason}
        if isinstance(details, dict):
            details = {**details, "statusCode": self.status}
        error = {"code": code, "message": self.message, "details": details}
        return {"status": "error", "timestamp": iso(now), "path": path, "error": error}


def iso(moment: datetime) -> str:
    """UTC with milliseconds and ``Z``, the way Cal.com prints instants."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def iso_in_zone(moment: datetime, zone: str) -> str:
    if zone in ("UTC", "Etc/UTC"):
        return iso(moment)
    local = moment.astimezone(ZoneInfo(zone))
    offset = local.strftime("%z")
    return local.strftime("%Y-%m-%dT%H:%M:%S.000") + f"{offset[:3]}:{offset[3:]}"


def valid_zone(name: Any) -> bool:
    if not isinstance(name, str) or not name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def valid_phone(value: Any) -> bool:
    if not isinstance(value, str) or not value.startswith("+"):
        return False
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(value, None)))
    except phonenumbers.NumberParseException:
        return False


def parse_utc_instant(value: Any, name: str) -> datetime:
    """A UTC ISO 8601 instant (``Z`` or ``+00:00``); naive or other offsets are rejected."""
    invalid = ApiError.validation([wrong(name, f"{name} must be a valid ISO 8601 date string")])
    if not isinstance(value, str):
        raise invalid
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise invalid from None
    if parsed.tzinfo is None or parsed.utcoffset() != timedelta(0):
        message = f"{name} must be in UTC, e.g. 2024-08-13T09:00:00Z (got {value!r})"
        raise ApiError.validation([wrong(name, message)])
    return parsed.astimezone(UTC)


def parse_iso_param(value: str, name: str) -> datetime:
    """Strict ISO 8601 query parameter; naive values count as UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ApiError.validation([f"{name} must be a valid ISO 8601 date string"]) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_slot_bound(value: str, name: str, *, end: bool) -> datetime:
    """Slots ``start``/``end``: a bare date, or a midnight end, widens to the day (in UTC)."""
    if _DATE_ONLY.match(value):
        day = date.fromisoformat(value)
        moment = datetime.combine(day, dtime(0), UTC)
    else:
        moment = parse_iso_param(value, name)
    if end and moment.time() == dtime(0):
        moment = moment.replace(hour=23, minute=59, second=59)
    return moment


def wrong(prop: str, constraint: str) -> str:
    """One body problem, formatted like Cal.com's booking input pipes."""
    return f"{prop} property is wrong,{constraint} "


def forbid_unknown(body: Json, allowed: frozenset[str]) -> list[str]:
    return [wrong(key, f"property {key} should not exist") for key in body if key not in allowed]


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    return a_start < b_end and b_start < a_end


# --- the server ------------------------------------------------------------------------


class FakeCalcom:
    """Cal.com API v2 on 127.0.0.1; use as ``with FakeCalcom() as cal: ...``.

    ``now`` pins the fake's clock (``set_now``/``advance`` move it); without it
    the wall clock is used. Rate limiting always runs on the monotonic clock.
    """

    def __init__(
        self,
        *,
        now: datetime | None = None,
        rate_limit: int = 120,
        window_seconds: float = 60.0,
        block_seconds: float | None = None,
        seed: bool = True,
        user: User | None = None,
        null_updated_at_on_create: bool = False,
        webhook_attempts: int = 1,
    ) -> None:
        if now is not None and now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.user = user or User()
        self.rate_limit = rate_limit
        self.window_seconds = window_seconds
        self.block_seconds = window_seconds if block_seconds is None else block_seconds
        self.null_updated_at_on_create = null_updated_at_on_create
        self.webhook_attempts = webhook_attempts
        self._now = now
        self._lock = threading.RLock()
        self._delivered = threading.Condition(self._lock)
        self._keys: dict[str, bool] = {}  # key -> active
        self._event_types: dict[int, EventType] = {}
        self._bookings: dict[str, Booking] = {}
        self._reservations: dict[str, Reservation] = {}
        self._webhooks: dict[int, Webhook] = {}
        self._deliveries: list[Delivery] = []
        self._requests: list[RecordedRequest] = []
        self._counters: dict[str, int] = defaultdict(int)
        # tracker (API key or client IP) -> [window start, count, blocked until]
        self._buckets: dict[str, list[float]] = {}
        self._seen: dict[str, deque[float]] = defaultdict(deque)
        self._peak: dict[str, int] = defaultdict(int)
        self._create_delays: list[float] = []
        self.errors: list[Exception] = []  # exceptions raised inside the fake's handlers
        self._throttle = 0
        self._failures: list[int] = []
        self._next_id = 1000
        self._outbox: queue.Queue[Delivery | None] = queue.Queue()
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self.api_key = self.add_api_key("cal_test_" + secrets.token_hex(12))
        if seed:
            self._seed()

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> FakeCalcom:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        serve = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        sender = threading.Thread(target=self._deliver_forever, daemon=True)
        self._threads = [serve, sender]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._outbox.put(None)
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def __enter__(self) -> FakeCalcom:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the server is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/v2"

    # --- clock -------------------------------------------------------------------------

    def now(self) -> datetime:
        with self._lock:
            return self._now if self._now is not None else datetime.now(UTC)

    def set_now(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("moment must be timezone-aware")
        with self._lock:
            self._now = moment

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._now = self.now() + delta

    # --- setup helpers -----------------------------------------------------------------

    def add_api_key(self, key: str | None = None) -> str:
        key = key or "cal_test_" + secrets.token_hex(12)
        if not key.startswith("cal_"):
            raise ValueError("Cal.com API keys start with 'cal_'")
        with self._lock:
            self._keys[key] = True
        return key

    def revoke_api_key(self, key: str) -> None:
        with self._lock:
            self._keys[key] = False

    def add_event_type(self, event_type: EventType) -> EventType:
        with self._lock:
            self._event_types[event_type.id] = event_type
        return event_type

    def event_type(self, event_type_id: int) -> EventType:
        with self._lock:
            return self._event_types[event_type_id]

    def set_schedule(self, event_type_id: int, schedule: Schedule) -> None:
        with self._lock:
            self._event_types[event_type_id].schedule = schedule

    def add_webhook(
        self,
        subscriber_url: str,
        secret: str | None = None,
        triggers: tuple[str, ...] | list[str] = ("BOOKING_CREATED",),
        *,
        event_type_id: int | None = None,
        active: bool = True,
    ) -> Webhook:
        unknown = set(triggers) - TRIGGERS
        if unknown:
            raise ValueError(f"unknown webhook triggers: {sorted(unknown)}")
        with self._lock:
            hook = Webhook(
                self._new_id(), subscriber_url, secret, frozenset(triggers), active, event_type_id
            )
            self._webhooks[hook.id] = hook
        return hook

    # --- knobs -------------------------------------------------------------------------

    def delay_next_create(self, seconds: float) -> None:
        """The next booking create is stored at once but answered only after ``seconds``."""
        with self._lock:
            self._create_delays.append(seconds)

    def throttle_next(self, n: int = 1) -> None:
        """Answer the next ``n`` routed requests with 429 whatever the counters say."""
        with self._lock:
            self._throttle += n

    def fail_next(self, status: int, n: int = 1) -> None:
        """Answer the next ``n`` routed requests with ``status`` in the error envelope."""
        with self._lock:
            self._failures.extend([status] * n)

    def reset_rate_limits(self) -> None:
        with self._lock:
            self._buckets.clear()

    # --- bookings behind the client's back ------------------------------------------------

    def book_directly(
        self,
        event_type_id: int,
        start: datetime,
        *,
        name: str = "Walk In",
        email: str | None = "walk.in@example.com",
        phone: str | None = None,
        time_zone: str = "Europe/Vienna",
        metadata: Json | None = None,
        check_availability: bool = True,
    ) -> Json:
        """A booking made on cal.com's own booking page: stored, webhooks fire."""
        _require_aware(start)
        attendee = {"name": name, "email": email, "timeZone": time_zone, "phoneNumber": phone}
        with self._lock:
            booking = self._book(
                self._event_types[event_type_id],
                start.astimezone(UTC),
                None,
                attendee,
                metadata=metadata or {},
                source="booking_page",
                check=check_availability,
            )
            return self.booking_json(booking)

    def cancel_directly(self, uid: str, reason: str = "", by: str | None = None) -> Json:
        with self._lock:
            booking = self._cancel(self._bookings[uid], reason, by)
            return self.booking_json(booking)

    def reschedule_directly(self, uid: str, start: datetime) -> Json:
        _require_aware(start)
        with self._lock:
            new = self._reschedule(self._bookings[uid], start.astimezone(UTC), None, None)
            return self.booking_json(new)

    def change_booking(self, uid: str, **changes: Any) -> Json:
        """Edit fields of a ``Booking`` (e.g. ``title=...``) and bump ``updatedAt``; no webhook."""
        with self._lock:
            booking = self._bookings[uid]
            for name, value in changes.items():
                if not hasattr(booking, name):
                    raise AttributeError(f"Booking has no field {name!r}")
                setattr(booking, name, value)
            booking.updated_at = self.now()
            return self.booking_json(booking)

    # --- inspection --------------------------------------------------------------------

    def bookings(self) -> list[Json]:
        with self._lock:
            return [self.booking_json(b) for b in sorted(self._bookings.values(), key=_by_id)]

    def booking(self, uid: str) -> Json:
        with self._lock:
            return self.booking_json(self._bookings[uid])

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def count(self, route: str) -> int:
        """Requests seen for a route, e.g. ``count("POST /v2/bookings")``."""
        with self._lock:
            return self._counters[route]

    @property
    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counters)

    def max_rate(self, credential: str) -> int:
        """Most requests seen from ``credential`` within any ``window_seconds`` span."""
        with self._lock:
            return self._peak[credential]

    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    def wait_for_deliveries(self, count: int, timeout: float = 5.0) -> list[Delivery]:
        """Block until ``count`` deliveries have finished (status or error recorded)."""
        deadline = time.monotonic() + timeout
        with self._delivered:
            while len([d for d in self._deliveries if d.done]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"only {len(self._deliveries)} webhook deliveries")
                self._delivered.wait(left)
            return list(self._deliveries)

    def redeliver(self, delivery: Delivery) -> Delivery:
        """Send the same bytes and headers again (a duplicate, as at-least-once allows)."""
        return self._enqueue(
            delivery.webhook_id, delivery.trigger, delivery.url, delivery.body, delivery.headers
        )

    def send_tampered(
        self, delivery: Delivery, *, body: bytes | None = None, signature: str | None = None
    ) -> Delivery:
        """Re-send with a changed body and/or a forged signature (default: body altered)."""
        headers = dict(delivery.headers)
        if signature is not None:
            headers["X-Cal-Signature-256"] = signature
        if body is None:
            body = delivery.body if signature is not None else delivery.body[:-1] + b',"x":1}'
        return self._enqueue(delivery.webhook_id, delivery.trigger, delivery.url, body, headers)

    # --- JSON shapes ---------------------------------------------------------------------

    def booking_json(self, b: Booking) -> Json:
        """The 2024-08-13 booking object; optional fields are omitted when unset."""
        et = self._event_types[b.event_type_id]
        data: Json = {
            "id": b.id,
            "uid": b.uid,
            "title": b.title,
            "description": b.description,
            "hosts": [self._host_json()],
            "status": b.status,
            "start": iso(b.start),
            "end": iso(b.end),
            "duration": int((b.end - b.start).total_seconds() // 60),
            "eventTypeId": et.id,
            "eventType": {"id": et.id, "slug": et.slug},
            "location": b.location,
            "absentHost": False,
            "createdAt": iso(b.created_at),
            "updatedAt": iso(b.updated_at) if b.updated_at else None,
            "metadata": dict(b.metadata),
            "rating": None,
            "icsUid": f"{b.uid}@Cal.com",
            "attendees": [_attendee_json(a) for a in b.attendees],
            "guests": list(b.guests),
            "bookingFieldsResponses": _field_responses(b),
        }
        optional = {
            "cancellationReason": b.cancellation_reason,
            "cancelledByEmail": b.cancelled_by_email,
            "reschedulingReason": b.rescheduling_reason,
            "rescheduledByEmail": b.rescheduled_by_email,
            "rescheduledFromUid": b.rescheduled_from_uid,
            "rescheduledToUid": b.rescheduled_to_uid,
        }
        data.update({k: v for k, v in optional.items() if v is not None})
        return data

    def legacy_booking_json(self, b: Booking) -> Json:
        """The 2024-04-15 shape (``startTime``/``endTime``, upper-case status)."""
        et = self._event_types[b.event_type_id]
        first = b.attendees[0]
        return {
            "id": b.id,
            "uid": b.uid,
            "title": b.title,
            "description": b.description,
            "startTime": iso(b.start),
            "endTime": iso(b.end),
            "status": b.status.upper(),
            "eventTypeId": et.id,
            "eventType": {"id": et.id, "slug": et.slug, "title": et.title, "length": et.length},
            "userId": self.user.id,
            "user": self._host_json(),
            "attendees": [
                {
                    "name": a["name"],
                    "email": a.get("email"),
                    "timeZone": a["timeZone"],
                    "locale": a.get("language") or "en",
                }
                for a in b.attendees
            ],
            "responses": {"name": first["name"], "email": first.get("email"), **b.responses},
            "metadata": dict(b.metadata),
            "location": b.location,
            "createdAt": iso(b.created_at),
            "updatedAt": iso(b.updated_at) if b.updated_at else None,
            "fromReschedule": b.rescheduled_from_uid,
            "rescheduled": b.rescheduled,
            "cancellationReason": b.cancellation_reason,
        }

    def event_type_json(self, et: EventType) -> Json:
        return {
            "id": et.id,
            "ownerId": self.user.id,
            "lengthInMinutes": et.length,
            "lengthInMinutesOptions": list(et.length_options),
            "title": et.title,
            "slug": et.slug,
            "description": et.description,
            "locations": copy.deepcopy(et.locations),
            "bookingFields": _booking_fields(et),
            "disableGuests": False,
            "slotInterval": et.slot_interval,
            "minimumBookingNotice": et.minimum_notice_minutes,
            "beforeEventBuffer": 0,
            "afterEventBuffer": 0,
            "recurrence": None,
            "metadata": {},
            "price": 0,
            "currency": "usd",
            "requiresConfirmation": et.requires_confirmation,
            "seatsPerTimeSlot": None,
            "scheduleId": et.schedule.id,
            "hidden": et.hidden,
            "bookingUrl": f"https://cal.com/{self.user.username}/{et.slug}",
            "users": [self._host_json()],
        }

    def legacy_event_type_json(self, et: EventType) -> Json:
        return {
            "id": et.id,
            "title": et.title,
            "slug": et.slug,
            "length": et.length,
            "description": et.description,
            "hidden": et.hidden,
            "userId": self.user.id,
            "bookingFields": _booking_fields(et),
            "requiresConfirmation": et.requires_confirmation,
            "minimumBookingNotice": et.minimum_notice_minutes,
        }

    def me_json(self) -> Json:
        u = self.user
        return {
            "id": u.id,
            "username": u.username,
            "email": u.email,
            "name": u.name,
            "timeZone": u.time_zone,
            "weekStart": "Monday",
            "timeFormat": 24,
            "defaultScheduleId": 1,
            "locale": "en",
            "avatarUrl": None,
            "bio": None,
            "organizationId": None,
            "organization": None,
        }

    def _host_json(self) -> Json:
        u = self.user
        return {
            "id": u.id,
            "name": u.name,
            "email": u.email,
            "displayEmail": u.email,
            "username": u.username,
            "timeZone": u.time_zone,
        }

    # --- domain: availability --------------------------------------------------------------

    def available_starts(
        self,
        et: EventType,
        start: datetime,
        end: datetime,
        *,
        length: int | None = None,
        ignore_uid: str | None = None,
    ) -> list[tuple[datetime, datetime]]:
        """Free slots whose start lies in [start, end]; caller holds the lock."""
        minutes = length or et.length
        step = timedelta(minutes=et.slot_interval or minutes)
        earliest = self.now() + timedelta(minutes=et.minimum_notice_minutes)
        end = min(end, self.now() + timedelta(days=365))
        slots = []
        for window_start, window_end in _windows(et.schedule, start, end):
            moment = window_start
            while moment + timedelta(minutes=minutes) <= window_end:
                slot = (moment, moment + timedelta(minutes=minutes))
                if start <= moment <= end and moment >= earliest and self._free(*slot, ignore_uid):
                    slots.append(slot)
                moment += step
        return slots

    def _free(self, start: datetime, end: datetime, ignore_uid: str | None = None) -> bool:
        now = self.now()
        for b in self._bookings.values():
            busy = b.status in ("accepted", "pending") and b.uid != ignore_uid
            if busy and overlaps(start, end, b.start, b.end):
                return False
        return not any(
            r.until > now and overlaps(start, end, r.start, r.end)
            for r in self._reservations.values()
        )

    def _check_bookable(
        self, et: EventType, start: datetime, end: datetime, ignore_uid: str | None
    ) -> None:
        now = self.now()
        if start < now:
            raise ApiError(400, MSG_PAST)
        if start < now + timedelta(minutes=et.minimum_notice_minutes):
            raise ApiError(400, MSG_OUT_OF_BOUNDS)
        if start > now + timedelta(days=365):
            raise ApiError(400, MSG_OUT_OF_BOUNDS)
        inside = any(ws <= start and end <= we for ws, we in _windows(et.schedule, start, end))
        if not inside or not self._booked_free(start, end, ignore_uid):
            raise ApiError(400, MSG_UNAVAILABLE)

    def _booked_free(self, start: datetime, end: datetime, ignore_uid: str | None) -> bool:
        return not any(
            b.status in ("accepted", "pending")
            and b.uid != ignore_uid
            and overlaps(start, end, b.start, b.end)
            for b in self._bookings.values()
        )

    # --- domain: bookings (caller holds the lock) ---------------------------------------------

    def _book(
        self,
        et: EventType,
        start: datetime,
        length: int | None,
        attendee: Json,
        *,
        guests: list[str] | None = None,
        metadata: Json | None = None,
        location: str | None = None,
        responses: Json | None = None,
        source: str = "api",
        check: bool = True,
    ) -> Booking:
        responses = responses or {}
        if check:
            _check_required_fields(et, attendee, responses)
        minutes = _booking_length(et, length)
        end = start + timedelta(minutes=minutes)
        if check:
            self._check_bookable(et, start, end, None)
        now = self.now()
        booking = Booking(
            id=self._new_id(),
            uid=secrets.token_urlsafe(16),
            event_type_id=et.id,
            start=start,
            end=end,
            status="pending" if et.requires_confirmation else "accepted",
            title=f"{et.title} between {self.user.name} and {attendee['name']}",
            attendees=[{"language": "en", **attendee}],
            created_at=now,
            updated_at=None if self.null_updated_at_on_create else now,
            description=et.description,
            guests=list(guests or []),
            metadata=dict(metadata or {}),
            location=location or "integrations:daily",
            responses=responses,
            source=source,
        )
        self._bookings[booking.uid] = booking
        trigger = "BOOKING_REQUESTED" if booking.status == "pending" else "BOOKING_CREATED"
        self._emit(trigger, booking)
        return booking

    def _cancel(self, booking: Booking, reason: str, by: str | None) -> Booking:
        if booking.status in ("cancelled", "rejected"):
            raise ApiError(
                400,
                f"Can't cancel booking with uid={booking.uid} because it has been cancelled "
                "already. Please provide uid of a booking that is not cancelled.",
            )
        booking.status = "cancelled"
        booking.cancellation_reason = reason
        booking.cancelled_by_email = by
        booking.updated_at = self.now()
        self._emit("BOOKING_CANCELLED", booking)
        return booking

    def _reschedule(
        self, old: Booking, start: datetime, by: str | None, reason: str | None
    ) -> Booking:
        if old.status in ("cancelled", "rejected"):
            raise ApiError(
                400,
                f"Can't reschedule booking with uid={old.uid} because it has been cancelled "
                "already. Please provide uid of a booking that is not cancelled.",
            )
        et = self._event_types[old.event_type_id]
        end = start + (old.end - old.start)
        self._check_bookable(et, start, end, old.uid)
        now = self.now()
        new = copy.deepcopy(old)
        new.id, new.uid, new.start, new.end = self._new_id(), secrets.token_urlsafe(16), start, end
        new.created_at, new.updated_at = now, now
        new.rescheduled_from_uid, new.rescheduled_to_uid = old.uid, None
        new.rescheduled_by_email, new.rescheduling_reason = by, reason
        auto_confirm = by is not None and by == self.user.email
        new.status = "pending" if et.requires_confirmation and not auto_confirm else "accepted"
        old.status, old.rescheduled, old.rescheduled_to_uid = "cancelled", True, new.uid
        old.rescheduled_by_email, old.rescheduling_reason = by, reason
        old.updated_at = now
        self._bookings[new.uid] = new
        self._emit("BOOKING_RESCHEDULED", new, previous=old)
        return new

    def _resolve_event_type(self, body: Json) -> EventType:
        if "eventTypeId" in body:
            et = self._event_types.get(body["eventTypeId"])
            if et is None:
                raise ApiError(404, f"Event type with id {body['eventTypeId']} not found.")
            return et
        slug, username = body.get("eventTypeSlug"), body.get("username")
        if body.get("teamSlug"):
            raise ApiError(
                404, f"Event type with slug {slug} belonging to team {body['teamSlug']} not found."
            )
        if slug and username:
            for et in self._event_types.values():
                if et.slug == slug and username == self.user.username:
                    return et
            raise ApiError(
                404, f"Event type with slug {slug} belonging to user {username} not found."
            )
        raise ApiError.validation(
            ["eventTypeId must be an integer number, or eventTypeSlug with username or teamSlug"]
        )

    def _new_id(self) -> int:
        with self._lock:
            self._next_id += 1
            return self._next_id

    # --- webhooks ------------------------------------------------------------------------

    def _emit(self, trigger: str, booking: Booking, previous: Booking | None = None) -> None:
        hooks = [
            h
            for h in self._webhooks.values()
            if h.active
            and trigger in h.triggers
            and h.event_type_id in (None, booking.event_type_id)
        ]
        if not hooks:
            return
        payload = self._webhook_payload(booking, previous)
        body = json.dumps(
            {"triggerEvent": trigger, "createdAt": iso(self.now()), "payload": payload},
            separators=(",", ":"),
        ).encode()
        for hook in hooks:
            self._enqueue(hook.id, trigger, hook.subscriber_url, body)

    def _enqueue(
        self,
        hook_id: int,
        trigger: str,
        url: str,
        body: bytes,
        headers: dict[str, str] | None = None,
    ) -> Delivery:
        with self._lock:
            hook = self._webhooks[hook_id]
            headers = headers or {
                "Content-Type": "application/json",
                "X-Cal-Signature-256": _sign(hook.secret, body),
                "X-Cal-Webhook-Version": WEBHOOK_VERSION,
            }
            delivery = Delivery(hook_id, trigger, url, body, headers)
            self._deliveries.append(delivery)
        self._outbox.put(delivery)
        return delivery

    def _webhook_payload(self, b: Booking, previous: Booking | None) -> Json:
        et = self._event_types[b.event_type_id]
        a = b.attendees[0]
        payload: Json = {
            "type": et.slug,
            "title": b.title,
            "description": b.description,
            "additionalNotes": b.responses.get("notes", ""),
            "customInputs": {},
            "responses": _webhook_responses(b),
            "userFieldsResponses": {k: {"label": k, "value": v} for k, v in b.responses.items()},
            "startTime": _iso_seconds(b.start),
            "endTime": _iso_seconds(b.end),
            "organizer": {
                "id": self.user.id,
                "name": self.user.name,
                "email": self.user.email,
                "username": self.user.username,
                "timeZone": self.user.time_zone,
                "language": {"locale": "en"},
                "timeFormat": "h:mma",
                "utcOffset": _utc_offset(self.user.time_zone, b.start),
            },
            "attendees": [
                {
                    "email": x.get("email"),
                    "name": x["name"],
                    "timeZone": x["timeZone"],
                    "phoneNumber": x.get("phoneNumber"),
                    "language": {"locale": x.get("language") or "en"},
                    "utcOffset": _utc_offset(x["timeZone"], b.start),
                }
                for x in b.attendees
            ],
            "location": b.location,
            "destinationCalendar": None,
            "uid": b.uid,
            "bookingId": b.id,
            "eventTypeId": et.id,
            "eventTitle": et.title,
            "eventDescription": et.description,
            "length": int((b.end - b.start).total_seconds() // 60),
            "price": 0,
            "currency": "usd",
            "requiresConfirmation": et.requires_confirmation,
            "metadata": {"videoCallUrl": f"https://app.cal.com/video/{b.uid}", **b.metadata},
            "status": b.status.upper(),
        }
        if b.status == "cancelled":
            payload["cancellationReason"] = b.cancellation_reason
            payload["cancelledBy"] = b.cancelled_by_email or a.get("email")
        if previous is not None:
            payload.update(
                rescheduleId=previous.id,
                rescheduleUid=previous.uid,
                rescheduleStartTime=_iso_seconds(previous.start),
                rescheduleEndTime=_iso_seconds(previous.end),
                rescheduledBy=b.rescheduled_by_email,
            )
        return payload

    def _deliver_forever(self) -> None:
        while (delivery := self._outbox.get()) is not None:
            self._attempt(delivery)

    def _attempt(self, delivery: Delivery) -> None:
        attempts = max(1, self.webhook_attempts)
        for attempt in range(1, attempts + 1):
            status, error = _post(delivery.url, delivery.body, delivery.headers)
            succeeded = status is not None and status < 300
            with self._delivered:
                delivery.attempts, delivery.status, delivery.error = attempt, status, error
                delivery.done = succeeded or attempt == attempts
                if delivery.done:
                    self._delivered.notify_all()
                    return

    # --- request plumbing (used by the handler) -----------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)
            if request.route:
                self._counters[request.route] += 1

    def _rate(self, tracker: str) -> tuple[bool, dict[str, str]]:
        """Count one request against ``tracker``; (allowed, X-RateLimit headers)."""
        now = time.monotonic()
        with self._lock:
            self._observe(tracker, now)
            bucket = self._bucket(tracker, now)
            if self._throttle > 0:
                self._throttle -= 1
                return False, self._rate_headers(0, bucket[0] + self.window_seconds - now)
            if bucket[2] > now:
                return False, self._rate_headers(0, bucket[2] - now)
            bucket[1] += 1
            if bucket[1] > self.rate_limit:
                bucket[2] = now + self.block_seconds
                return False, self._rate_headers(0, self.block_seconds)
            remaining = int(self.rate_limit - bucket[1])
            return True, self._rate_headers(remaining, bucket[0] + self.window_seconds - now)

    def _bucket(self, tracker: str, now: float) -> list[float]:
        """[window start, count, blocked until]; a new window once the old one or a block ends."""
        bucket = self._buckets.get(tracker)
        expired = bucket is not None and (
            (bucket[2] and bucket[2] <= now)
            or (not bucket[2] and now >= bucket[0] + self.window_seconds)
        )
        if bucket is None or expired:
            bucket = self._buckets[tracker] = [now, 0, 0.0]
        return bucket

    def _rate_headers(self, remaining: int, reset: float) -> dict[str, str]:
        return {
            "X-RateLimit-Limit-Default": str(self.rate_limit),
            "X-RateLimit-Remaining-Default": str(remaining),
            "X-RateLimit-Reset-Default": str(max(0, math.ceil(reset))),
        }

    def _observe(self, tracker: str, now: float) -> None:
        seen = self._seen[tracker]
        seen.append(now)
        while now - seen[0] >= self.window_seconds:
            seen.popleft()
        self._peak[tracker] = max(self._peak[tracker], len(seen))

    def _authenticate(self, header: str | None) -> tuple[User | None, str | None]:
        """(user, error message): no header -> (None, None)."""
        if header is None:
            return None, None
        scheme, _, token = header.partition(" ")
        if scheme != "Bearer" or not token:
            return None, "Invalid Authorization header: expected 'Bearer cal_...'"
        with self._lock:
            active = self._keys.get(token)
        if not token.startswith("cal_"):
            return None, "Invalid Access Token."
        if active is None:
            return None, "Invalid API Key."
        if not active:
            return None, "This API key has been revoked."
        return self.user, None

    def _pop_failure(self) -> int | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    def _pop_create_delay(self) -> float:
        with self._lock:
            return self._create_delays.pop(0) if self._create_delays else 0.0

    def _seed(self) -> None:
        vienna = Schedule("Europe/Vienna")
        self.add_event_type(EventType(101, "intro-call", "Intro call", 30, schedule=vienna))
        self.add_event_type(
            EventType(
                102,
                "sms-consult",
                "Consultation (SMS reminder)",
                60,
                schedule=vienna,
                requires_phone=True,
            )
        )


# --- pure helpers used above ---------------------------------------------------------------


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None:
        raise ValueError("pass a timezone-aware datetime")


def _by_id(b: Booking) -> int:
    return b.id


def _iso_seconds(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc_offset(zone: str, at: datetime) -> int:
    offset = at.astimezone(ZoneInfo(zone)).utcoffset() or timedelta(0)
    return int(offset.total_seconds() // 60)


def _sign(secret: str | None, body: bytes) -> str:
    if not secret:
        return NO_SECRET
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str | None]:
    """POST without following redirects; (status, error)."""
    split = urlsplit(url)
    conn = http.client.HTTPConnection(split.hostname or "127.0.0.1", split.port or 80, timeout=5)
    try:
        target = (split.path or "/") + (f"?{split.query}" if split.query else "")
        conn.request("POST", target, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status, None
    except OSError as err:
        return None, str(err)
    finally:
        conn.close()


def _windows(schedule: Schedule, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Working windows (UTC) of the days around [start, end] in the schedule's zone."""
    zone = ZoneInfo(schedule.time_zone)
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date() + timedelta(days=1)
    windows = []
    while day <= last:
        for first, until in _day_hours(schedule, day):
            w_start = datetime.combine(day, dtime.fromisoformat(first), zone)
            if until in ("24:00", "00:00"):
                w_end = datetime.combine(day + timedelta(days=1), dtime(0), zone)
            else:
                w_end = datetime.combine(day, dtime.fromisoformat(until), zone)
            windows.append((w_start.astimezone(UTC), w_end.astimezone(UTC)))
        day += timedelta(days=1)
    return windows


def _day_hours(schedule: Schedule, day: date) -> list[tuple[str, str]]:
    if day.isoformat() in schedule.overrides:
        return schedule.overrides[day.isoformat()]
    return [(first, until) for days, first, until in schedule.availability if day.weekday() in days]


def _booking_fields(et: EventType) -> list[Json]:
    fields = [
        {"type": "name", "slug": "name", "label": "Your name", "required": True, "isDefault": True},
        {
            "type": "email",
            "slug": "email",
            "label": "Email",
            "required": et.requires_email,
            "hidden": False,
            "isDefault": True,
        },
        {
            "type": "phone",
            "slug": "attendeePhoneNumber",
            "label": "Phone number",
            "required": et.requires_phone,
            "hidden": not et.requires_phone,
            "isDefault": True,
        },
        {"type": "radioInput", "slug": "location", "required": False, "isDefault": True},
        {
            "type": "textarea",
            "slug": "notes",
            "label": "Additional notes",
            "required": False,
            "isDefault": True,
        },
        {
            "type": "multiemail",
            "slug": "guests",
            "label": "Add guests",
            "required": False,
            "isDefault": True,
        },
        {"type": "textarea", "slug": "rescheduleReason", "required": False, "isDefault": True},
    ]
    fields += [{"isDefault": False, "required": False, **f} for f in et.extra_fields]
    return fields


def _check_required_fields(et: EventType, attendee: Json, responses: Json) -> None:
    where = f"event type {et.id} ('{et.slug}')"
    if et.requires_phone and not attendee.get("phoneNumber"):
        raise ApiError(
            400,
            f"attendee.phoneNumber is required: booking field "
            f"'attendeePhoneNumber' of {where} is required (E.164, e.g. +4366412345678)",
        )
    if et.requires_email and not attendee.get("email"):
        raise ApiError(
            400, f"attendee.email is required: booking field 'email' of {where} is required"
        )
    for custom in et.extra_fields:
        if custom.get("required") and responses.get(custom["slug"]) in (None, "", []):
            raise ApiError(400, f"bookingFieldsResponses.{custom['slug']} is required by {where}")


def _booking_length(et: EventType, length: int | None) -> int:
    if length is None or (length == et.length and not et.length_options):
        return et.length
    if not et.length_options:
        raise ApiError(
            400,
            "Can't specify 'lengthInMinutes' because event type does not have multiple possible "
            "lengths. Please, remove the 'lengthInMinutes' field from the request.",
        )
    if length not in et.length_options:
        raise ApiError(
            400,
            f"Provided 'lengthInMinutes' is not one of the possible lengths for "
            f"the event type: {list(et.length_options)}",
        )
    return length


def _attendee_json(a: Json) -> Json:
    data = {
        "name": a["name"],
        "email": a.get("email"),
        "displayEmail": a.get("email"),
        "timeZone": a["timeZone"],
        "language": a.get("language") or "en",
        "absent": False,
    }
    if a.get("phoneNumber"):
        data["phoneNumber"] = a["phoneNumber"]
    return data


def _field_responses(b: Booking) -> Json:
    a = b.attendees[0]
    data: Json = {"name": a["name"], "email": a.get("email"), "guests": list(b.guests)}
    if a.get("phoneNumber"):
        data["attendeePhoneNumber"] = a["phoneNumber"]
    return {**data, **b.responses}


def _webhook_responses(b: Booking) -> Json:
    a = b.attendees[0]
    data: Json = {
        "name": {"label": "your_name", "value": a["name"]},
        "email": {"label": "email_address", "value": a.get("email")},
        "location": {"label": "location", "value": {"optionValue": "", "value": b.location}},
        "guests": {"label": "additional_guests", "value": list(b.guests)},
    }
    if a.get("phoneNumber"):
        data["attendeePhoneNumber"] = {"label": "phone_number", "value": a["phoneNumber"]}
    data.update({k: {"label": k, "value": v} for k, v in b.responses.items()})
    return data


# --- HTTP layer ----------------------------------------------------------------------------


@dataclass
class Call:
    method: str
    path: str  # without the query
    url: str  # path and query, as sent
    query: dict[str, list[str]]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    user: User | None = None

    def q(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    def json_object(self) -> Json:
        if not self.body:
            return {}
        try:
            data = json.loads(self.body)
        except ValueError:
            raise ApiError(400, "Request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise ApiError(400, "Request body must be a JSON object")
        return data


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # "/v2/bookings/{uid}"
    family: str | None
    current: tuple[str, bool] | None  # (endpoint method, auth required)
    legacy: tuple[str, bool] | None = None

    @property
    def name(self) -> str:
        return f"{self.method} {self.template}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method:
            return None
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template)
        found = re.fullmatch(pattern, path)
        return found.groupdict() if found else None


ROUTES = (
    Route("GET", "/v2/me", None, ("me", True)),
    Route(
        "GET",
        "/v2/event-types",
        "event-types",
        ("event_types", False),
        ("legacy_event_types", True),
    ),
    Route(
        "GET",
        "/v2/event-types/{id}",
        "event-types",
        ("event_type", True),
        ("legacy_event_type", True),
    ),
    Route("GET", "/v2/slots", "slots", ("slots", False)),
    Route("GET", "/v2/slots/available", "slots", None, ("legacy_slots", False)),
    Route("POST", "/v2/slots/reservations", "slots", ("reserve", False)),
    Route("GET", "/v2/slots/reservations/{uid}", "slots", ("get_reservation", False)),
    Route("PATCH", "/v2/slots/reservations/{uid}", "slots", ("update_reservation", False)),
    Route("DELETE", "/v2/slots/reservations/{uid}", "slots", ("delete_reservation", False)),
    Route("POST", "/v2/bookings", "bookings", ("create_booking", False), ("legacy_create", False)),
    Route("GET", "/v2/bookings", "bookings", ("list_bookings", True), ("legacy_list", True)),
    Route("GET", "/v2/bookings/{uid}", "bookings", ("get_booking", False), ("legacy_get", False)),
    Route(
        "POST",
        "/v2/bookings/{uid}/cancel",
        "bookings",
        ("cancel_booking", False),
        ("legacy_cancel", False),
    ),
    Route("POST", "/v2/bookings/{uid}/reschedule", "bookings", ("reschedule_booking", False)),
)


def select_handler(route: Route, version_header: str | None) -> tuple[str, bool] | None:
    """The handler NestJS would pick: unknown/missing versions fall back to 2024-04-15."""
    if route.family is None:
        return route.current
    version = version_header if version_header in KNOWN_VERSIONS else LEGACY_VERSION
    current, legacy = FAMILY_VERSIONS[route.family]
    if version in current:
        return route.current
    if version in legacy:
        return route.legacy
    return None


def _handler_for(fake: FakeCalcom) -> type[BaseHTTPRequestHandler]:
    class Handler(_CalcomHandler):
        server_fake = fake
        endpoints = _Endpoints(fake)

    return Handler


class _CalcomHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_fake: FakeCalcom
    endpoints: _Endpoints

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PATCH = do_DELETE = do_PUT = do_GET

    def log_message(self, format: str, *args: object) -> None:  # quiet tests
        pass

    def _serve(self) -> None:
        fake = self.server_fake
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        call = Call(self.command, split.path, self.path, parse_qs(split.query), body)
        record = RecordedRequest(self.command, self.path, "", headers, body)
        status, payload, extra = self._respond(call, record, headers)
        record.status = status
        fake._record(record)
        if record.route == "POST /v2/bookings" and status == 201:
            delay = fake._pop_create_delay()
            if delay:
                time.sleep(delay)
        self._write(status, payload, extra)

    def _respond(
        self, call: Call, record: RecordedRequest, headers: dict[str, str]
    ) -> tuple[int, Json, dict[str, str]]:
        fake = self.server_fake
        route, handler = self._route(call, headers)
        if route is None or handler is None:
            error = ApiError(404, f"Cannot {call.method} {call.path}")
            return 404, error.envelope(call.url, fake.now()), {}
        record.route = route.name
        auth = headers.get("authorization")
        record.credential = auth.partition(" ")[2] if auth else self.client_address[0]
        allowed, rate_headers = fake._rate(record.credential)
        try:
            if not allowed:
                raise ApiError(429, MSG_THROTTLED)
            failure = fake._pop_failure()
            if failure is not None:
                raise ApiError(failure, f"Injected failure {failure}")
            call.user = self._user(auth, required=handler[1])
            status, data = getattr(self.endpoints, handler[0])(call)
        except ApiError as err:
            return err.status, err.envelope(call.url, fake.now()), rate_headers
        except Exception as err:  # a bug in the fake: answer 500 and keep it for the test
            fake.errors.append(err)
            error = ApiError(500, f"FakeCalcom crashed: {err!r}")
            return 500, error.envelope(call.url, fake.now()), rate_headers
        return status, data, rate_headers

    def _route(
        self, call: Call, headers: dict[str, str]
    ) -> tuple[Route | None, tuple[str, bool] | None]:
        for route in ROUTES:
            params = route.match(call.method, call.path)
            if params is not None:
                handler = select_handler(route, headers.get("cal-api-version"))
                if handler is not None:
                    call.params = params
                    return route, handler
        return None, None

    def _user(self, header: str | None, *, required: bool) -> User | None:
        user, problem = self.server_fake._authenticate(header)
        if problem:
            raise ApiError(401, problem)
        if user is None and required:
            raise ApiError(
                401, "No API key or access token provided: send 'Authorization: Bearer cal_...'"
            )
        return user

    def _write(self, status: int, payload: Json, extra: dict[str, str]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up (e.g. its timeout fired during a delayed create)


# --- endpoints -----------------------------------------------------------------------------

_CREATE_FIELDS = _words(
    "start lengthInMinutes eventTypeId eventTypeSlug username teamSlug organizationSlug "
    "attendee guests meetingUrl location metadata bookingFieldsResponses instant "
    "recurrenceCount emailVerificationCode routing"
)
_ATTENDEE_FIELDS = frozenset({"name", "email", "timeZone", "phoneNumber", "language"})
_LEGACY_CREATE_FIELDS = _words(
    "end start eventTypeId eventTypeSlug rescheduleUid rescheduledBy timeZone user "
    "language bookingUid metadata hasHashedBookingLink hashedLink seatReferenceUid "
    "responses orgSlug locationUrl"
)
Result = tuple[int, Json]


def _ok(data: Any, status: int = 200, **extra: Any) -> Result:
    return status, {"status": "success", "data": data, **extra}


class _Endpoints:
    """One method per route and version; each returns (status, body) or raises ApiError."""

    def __init__(self, fake: FakeCalcom) -> None:
        self.fake = fake

    # --- me and event types ------------------------------------------------------------

    def me(self, call: Call) -> Result:
        return _ok(self.fake.me_json())

    def event_types(self, call: Call) -> Result:
        username = call.q("username")
        if call.q("eventSlug") and not username:
            raise ApiError.validation(["eventSlug requires username"])
        if call.user is None and not username:
            raise ApiError(404, "No event types found: pass ?username=... or authenticate")
        if username and username != self.fake.user.username:
            raise ApiError(404, f"User with username {username} not found")
        with self.fake._lock:
            types = sorted(self.fake._event_types.values(), key=lambda e: e.id)
            types = [e for e in types if call.user is not None or not e.hidden]
            types = [e for e in types if call.q("eventSlug") in (None, e.slug)]
            return _ok([self.fake.event_type_json(e) for e in types])

    def event_type(self, call: Call) -> Result:
        with self.fake._lock:
            et = self._event_type(call.params["id"])
            return _ok(self.fake.event_type_json(et))

    def legacy_event_types(self, call: Call) -> Result:
        with self.fake._lock:
            types = sorted(self.fake._event_types.values(), key=lambda e: e.id)
            profile = {"slug": self.fake.user.username, "name": self.fake.user.name, "image": None}
            group = {
                "teamId": None,
                "profile": profile,
                "metadata": {"readOnly": False},
                "eventTypes": [self.fake.legacy_event_type_json(e) for e in types],
            }
            return _ok({"eventTypeGroups": [group], "profiles": [profile]})

    def legacy_event_type(self, call: Call) -> Result:
        with self.fake._lock:
            et = self._event_type(call.params["id"])
            return _ok({"eventType": self.fake.legacy_event_type_json(et)})

    def _event_type(self, raw_id: str) -> EventType:
        if not raw_id.isdigit():
            raise ApiError(400, "Validation failed (numeric string is expected)")
        et = self.fake._event_types.get(int(raw_id))
        if et is None:
            raise ApiError(404, f"Event type with id {raw_id} not found")
        return et

    # --- slots ----------------------------------------------------------------------------

    def slots(self, call: Call) -> Result:
        # Unknown query parameters are stripped (global ValidationPipe: whitelist only).
        problems = [
            f"{n} must be a valid ISO 8601 date string" for n in ("start", "end") if not call.q(n)
        ]
        zone = call.q("timeZone") or "UTC"
        if not valid_zone(zone):
            problems.append("timeZone must be a valid IANA time zone")
        slot_format = call.q("slotFormat") or call.q("format") or "time"
        if slot_format not in ("time", "range"):
            problems.append("slotFormat must be one of the following values: range, time")
        if problems:
            raise ApiError.validation(problems)
        start = parse_slot_bound(call.q("start") or "", "start", end=False)
        end = parse_slot_bound(call.q("end") or "", "end", end=True)
        duration = _int_param(call.q("duration"), "duration")
        with self.fake._lock:
            et = self._slot_event_type(call)
            found = self.fake.available_starts(
                et, start, end, length=duration, ignore_uid=call.q("bookingUidToReschedule")
            )
        return _ok(_slot_map(found, zone, slot_format == "range"))

    def _slot_event_type(self, call: Call) -> EventType:
        if call.q("usernames"):
            raise ApiError(400, "FakeCalcom does not emulate dynamic (usernames=) slots")
        if call.q("teamSlug"):
            raise ApiError(404, f"Team with slug {call.q('teamSlug')} not found")
        if call.q("eventTypeId") is not None:
            et_id = _int_param(call.q("eventTypeId"), "eventTypeId")
            et = self.fake._event_types.get(et_id or -1)
        elif call.q("eventTypeSlug") and call.q("username"):
            if call.q("username") != self.fake.user.username:
                raise ApiError(404, f"User with username {call.q('username')} not found")
            et = next(
                (e for e in self.fake._event_types.values() if e.slug == call.q("eventTypeSlug")),
                None,
            )
        else:
            raise ApiError.validation(
                ["Provide eventTypeId, eventTypeSlug with username, or usernames"]
            )
        if et is None:
            raise ApiError(404, "Event Type not found")
        return et

    def legacy_slots(self, call: Call) -> Result:
        missing = [n for n in ("startTime", "endTime", "eventTypeId") if not call.q(n)]
        if missing:
            raise ApiError.validation([f"{n} should not be empty" for n in missing])
        zone = call.q("timeZone") or "UTC"
        start = parse_iso_param(call.q("startTime") or "", "startTime")
        end = parse_iso_param(call.q("endTime") or "", "endTime")
        with self.fake._lock:
            et = self.fake._event_types.get(_int_param(call.q("eventTypeId"), "eventTypeId") or -1)
            if et is None:
                raise ApiError(404, "Event Type not found")
            found = self.fake.available_starts(et, start, end)
        days: dict[str, list[Json]] = defaultdict(list)
        for slot_start, slot_end in found:
            key = slot_start.astimezone(ZoneInfo(zone)).date().isoformat()
            if call.q("slotFormat") == "range":
                days[key].append(
                    {
                        "startTime": iso_in_zone(slot_start, zone),
                        "endTime": iso_in_zone(slot_end, zone),
                    }
                )
            else:
                days[key].append({"time": iso_in_zone(slot_start, zone)})
        return _ok({"slots": dict(days)})

    # --- slot reservations -----------------------------------------------------------------

    def reserve(self, call: Call) -> Result:
        body = call.json_object()
        with self.fake._lock:
            reservation = self._reservation_from(body, call, secrets.token_urlsafe(12))
            self.fake._reservations[reservation.uid] = reservation
            return _ok(_reservation_json(reservation), 201)

    def get_reservation(self, call: Call) -> Result:
        with self.fake._lock:
            return _ok(_reservation_json(self._reservation(call.params["uid"])))

    def update_reservation(self, call: Call) -> Result:
        body = call.json_object()
        with self.fake._lock:
            self._reservation(call.params["uid"])
            reservation = self._reservation_from(body, call, call.params["uid"])
            self.fake._reservations[reservation.uid] = reservation
            return _ok(_reservation_json(reservation))

    def delete_reservation(self, call: Call) -> Result:
        with self.fake._lock:
            self._reservation(call.params["uid"])
            del self.fake._reservations[call.params["uid"]]
        return 200, {"status": "success"}

    def _reservation(self, uid: str) -> Reservation:
        found = self.fake._reservations.get(uid)
        if found is None:
            raise ApiError(404, f"Reserved slot with uid={uid} not found")
        return found

    def _reservation_from(self, body: Json, call: Call, uid: str) -> Reservation:
        allowed = frozenset({"eventTypeId", "slotStart", "slotDuration", "reservationDuration"})
        problems = forbid_unknown(body, allowed)
        if not isinstance(body.get("eventTypeId"), int):
            problems.append(wrong("eventTypeId", "eventTypeId must be an integer number"))
        if problems:
            raise ApiError.validation(problems)
        start = parse_utc_instant(body.get("slotStart"), "slotStart")
        if "reservationDuration" in body and call.user is None:
            raise ApiError(401, "reservationDuration can only be set when authenticated")
        et = self.fake._event_types.get(body["eventTypeId"])
        if et is None:
            raise ApiError(404, f"Event type with id {body['eventTypeId']} not found")
        length = int(body.get("slotDuration") or et.length)
        minutes = int(body.get("reservationDuration") or 5)
        return Reservation(
            uid,
            et.id,
            start,
            start + timedelta(minutes=length),
            minutes,
            self.fake.now() + timedelta(minutes=minutes),
        )

    # --- bookings (2024-08-13 / 2026-02-25) ------------------------------------------------

    def create_booking(self, call: Call) -> Result:
        body = call.json_object()
        problems = forbid_unknown(body, _CREATE_FIELDS)
        attendee = _validate_attendee(body.get("attendee"), problems)
        problems += _validate_create_scalars(body)
        try:
            start = parse_utc_instant(body.get("start"), "start")
        except ApiError as err:
            problems += err.details["message"]
        if problems:
            raise ApiError.validation(problems)
        location = body.get("location")
        if isinstance(location, dict):
            location = location.get("type")
        with self.fake._lock:
            et = self.fake._resolve_event_type(body)
            booking = self.fake._book(
                et,
                start,
                body.get("lengthInMinutes"),
                attendee,
                guests=body.get("guests"),
                metadata=body.get("metadata"),
                location=location,
                responses=body.get("bookingFieldsResponses"),
            )
            return _ok(self.fake.booking_json(booking), 201)

    def get_booking(self, call: Call) -> Result:
        with self.fake._lock:
            return _ok(self.fake.booking_json(self._booking(call.params["uid"])))

    def list_bookings(self, call: Call) -> Result:
        problems: list[str] = []  # unknown parameters are stripped, not rejected
        take = _int_param(call.q("take"), "take", low=1, high=250, problems=problems) or 100
        skip = _int_param(call.q("skip"), "skip", low=0, problems=problems) or 0
        statuses = [s for s in (call.q("status") or "").split(",") if s]
        problems += [
            f"status must be one of: {', '.join(_STATUS_FILTERS)}"
            for s in statuses
            if s not in _STATUS_FILTERS
        ][:1]
        problems += [
            f"{name} must be one of the following values: asc, desc"
            for name in _SORTS
            if call.q(name) not in (None, "asc", "desc")
        ]
        if problems:
            raise ApiError.validation(problems)
        with self.fake._lock:
            found = [b for b in self.fake._bookings.values() if _matches(b, call, self.fake)]
            found.sort(key=_sort_key(call))
            page = [self.fake.booking_json(b) for b in found[skip : skip + take]]
        return _ok(page, pagination=_pagination(len(found), len(page), take, skip))

    def cancel_booking(self, call: Call) -> Result:
        body = call.json_object()
        allowed = frozenset({"cancellationReason", "cancelSubsequentBookings", "seatUid"})
        problems = forbid_unknown(body, allowed)
        if "cancelSubsequentBookings" in body and not isinstance(
            body["cancelSubsequentBookings"], bool
        ):
            problems.append(
                wrong(
                    "cancelSubsequentBookings", "cancelSubsequentBookings must be a boolean value"
                )
            )
        if problems:
            raise ApiError.validation(problems)
        with self.fake._lock:
            booking = self._booking(call.params["uid"])
            by = call.user.email if call.user else None
            self.fake._cancel(booking, body.get("cancellationReason") or "", by)
            return _ok(self.fake.booking_json(booking))

    def reschedule_booking(self, call: Call) -> Result:
        body = call.json_object()
        allowed = frozenset({"start", "rescheduledBy", "reschedulingReason", "seatUid"})
        problems = forbid_unknown(body, allowed)
        by = body.get("rescheduledBy")
        if by is not None and not (isinstance(by, str) and _EMAIL.match(by)):
            problems.append(wrong("rescheduledBy", "Invalid rescheduledBy email format"))
        if problems:
            raise ApiError.validation(problems)
        start = parse_utc_instant(body.get("start"), "start")
        with self.fake._lock:
            old = self._booking(call.params["uid"])
            new = self.fake._reschedule(old, start, by, body.get("reschedulingReason"))
            return _ok(self.fake.booking_json(new), 201)

    def _booking(self, uid: str) -> Booking:
        booking = self.fake._bookings.get(uid)
        if booking is None:
            raise ApiError(404, f"Booking with uid={uid} not found")
        return booking

    # --- bookings (2024-04-15: what a missing/unknown version gets) -------------------------

    def legacy_create(self, call: Call) -> Result:
        body = call.json_object()
        problems = forbid_unknown(body, _LEGACY_CREATE_FIELDS) + _legacy_problems(body)
        if problems:
            raise ApiError.validation(problems)
        responses = body["responses"]
        start = parse_iso_param(body["start"], "start")
        attendee = {
            "name": responses["name"],
            "email": responses.get("email"),
            "timeZone": body["timeZone"],
            "language": body["language"],
            "phoneNumber": responses.get("attendeePhoneNumber"),
        }
        with self.fake._lock:
            et = self.fake._resolve_event_type(body)
            booking = self.fake._book(
                et, start, None, attendee, metadata=body["metadata"], guests=responses.get("guests")
            )
            return _ok(self.fake.legacy_booking_json(booking), 201)

    def legacy_list(self, call: Call) -> Result:
        status = call.q("filters[status]") or "upcoming"
        limit = _int_param(call.q("limit"), "limit") or 10
        cursor = _int_param(call.q("cursor"), "cursor") or 0
        call.query = {"status": [status]}
        with self.fake._lock:
            found = [b for b in self.fake._bookings.values() if _matches(b, call, self.fake)]
            found.sort(key=_by_id)
            page = [self.fake.legacy_booking_json(b) for b in found[cursor : cursor + limit]]
        next_cursor = cursor + limit if len(found) > cursor + limit else None
        return _ok(
            {
                "bookings": page,
                "recurringInfo": [],
                "totalCount": len(found),
                "nextCursor": next_cursor,
            }
        )

    def legacy_get(self, call: Call) -> Result:
        with self.fake._lock:
            booking = self.fake._bookings.get(call.params["uid"])
            if booking is None:
                raise ApiError(404, f"Booking with UID={call.params['uid']} does not exist.")
            return _ok(self.fake.legacy_booking_json(booking))

    def legacy_cancel(self, call: Call) -> Result:
        uid = call.params["uid"]
        if uid.isdigit():
            raise ApiError(400, "Please provide booking uid instead of booking id.")
        body = call.json_object()
        with self.fake._lock:
            booking = self.fake._bookings.get(uid)
            if booking is None:
                raise ApiError(404, f"Booking with UID={uid} does not exist.")
            by = call.user.email if call.user else None
            self.fake._cancel(booking, body.get("cancellationReason") or "", by)
        data = {"bookingId": booking.id, "bookingUid": uid, "onlyRemovedAttendee": False}
        return _ok(data, 201)  # NestJS @Post without @HttpCode


# --- endpoint helpers ----------------------------------------------------------------------


def _int_param(
    raw: str | None,
    name: str,
    *,
    low: int | None = None,
    high: int | None = None,
    problems: list[str] | None = None,
) -> int | None:
    if raw is None:
        return None
    sink = problems if problems is not None else []
    if not re.fullmatch(r"-?\d+", raw):
        sink.append(f"{name} must be an integer number")
    elif low is not None and int(raw) < low:
        sink.append(f"{name} must not be less than {low}")
    elif high is not None and int(raw) > high:
        sink.append(f"{name} must not be greater than {high}")
    else:
        return int(raw)
    if problems is None:
        raise ApiError.validation(sink)
    return None


def _validate_attendee(value: Any, problems: list[str]) -> Json:
    if not isinstance(value, dict):
        problems.append(
            wrong("attendee", "nested property attendee must be either object or array")
        )
        return {}
    children = forbid_unknown(value, _ATTENDEE_FIELDS) + _attendee_problems(value)
    if children:
        problems.append("attendee property is wrong, " + ", ".join(children))
    return {
        k: value[k]
        for k in ("name", "email", "timeZone", "phoneNumber", "language")
        if value.get(k) is not None
    }


def _attendee_problems(value: Json) -> list[str]:
    problems = []
    if not isinstance(value.get("name"), str):
        problems.append(wrong("name", "name must be a string"))
    if not valid_zone(value.get("timeZone")):
        problems.append(wrong("timeZone", "timeZone must be a valid IANA time-zone"))
    email, phone = value.get("email"), value.get("phoneNumber")
    if email and not (isinstance(email, str) and _EMAIL.match(email)):
        problems.append(wrong("email", "Invalid email format"))
    if not email and not phone:
        problems.append(
            wrong("email", "At least one contact method (email or phone number) must be provided")
        )
    if phone and not valid_phone(phone):
        problems.append(
            wrong("phoneNumber", "Invalid phone number format. Please use international format.")
        )
    if "language" in value and value["language"] not in LANGUAGES:
        problems.append(wrong("language", "language must be one of the supported language codes"))
    return problems


def _validate_create_scalars(body: Json) -> list[str]:
    problems = []
    event_type_id = body.get("eventTypeId")
    if "eventTypeId" in body and (
        not isinstance(event_type_id, int) or isinstance(event_type_id, bool)
    ):
        problems.append(wrong("eventTypeId", "eventTypeId must be an integer number"))
    length = body.get("lengthInMinutes")
    if length is not None and (not isinstance(length, int) or length < 1):
        problems.append(wrong("lengthInMinutes", "lengthInMinutes must not be less than 1"))
    guests = body.get("guests")
    if guests is not None and not (
        isinstance(guests, list) and all(isinstance(g, str) for g in guests)
    ):
        problems.append(wrong("guests", "each value in guests must be a string"))
    if "metadata" in body and not _metadata_ok(body["metadata"]):
        problems.append(wrong("metadata", MSG_METADATA))
    responses = body.get("bookingFieldsResponses")
    if responses is not None and not isinstance(responses, dict):
        problems.append(wrong("bookingFieldsResponses", "bookingFieldsResponses must be an object"))
    return problems


def _metadata_ok(metadata: Any) -> bool:
    if not isinstance(metadata, dict) or len(metadata) > 50:
        return False
    for key, value in metadata.items():
        if len(key) > 40:
            return False
        if isinstance(value, str) and len(value) > 500:
            return False
        if not isinstance(value, str | int | float | bool):
            return False
    return True


def _legacy_problems(body: Json) -> list[str]:
    problems = []
    if not isinstance(body.get("start"), str):
        problems.append("start must be a string")
    if not isinstance(body.get("eventTypeId"), int):
        problems.append("eventTypeId must be a number conforming to the specified constraints")
    if not valid_zone(body.get("timeZone")):
        problems.append("timeZone must be a valid IANA time-zone")
    if not isinstance(body.get("language"), str):
        problems.append("language must be a string")
    if not isinstance(body.get("metadata"), dict):
        problems.append("metadata must be an object")
    responses = body.get("responses")
    name = responses.get("name") if isinstance(responses, dict) else None
    if not (isinstance(name, str) and name.strip()):
        problems.append(
            "responses.Name must be either a non-empty string or an object with "
            "non-empty firstName and lastName"
        )
    return problems


def _matches(b: Booking, call: Call, fake: FakeCalcom) -> bool:
    statuses = [s for s in (call.q("status") or "").split(",") if s]
    if statuses and not any(_in_status(b, s, fake.now()) for s in statuses):
        return False
    emails = {(a.get("email") or "").lower() for a in b.attendees}
    names = " ".join(a["name"] for a in b.attendees).lower()
    type_ids = {int(x) for x in (call.q("eventTypeIds") or "").split(",") if x.strip().isdigit()}
    checks = [
        call.q("attendeeEmail") is None or (call.q("attendeeEmail") or "").lower() in emails,
        call.q("attendeeName") is None or (call.q("attendeeName") or "").lower() in names,
        call.q("bookingUid") in (None, b.uid),
        not type_ids or b.event_type_id in type_ids,
        call.q("eventTypeId") in (None, str(b.event_type_id)),
    ]
    return all(checks) and _in_ranges(b, call)


def _in_ranges(b: Booking, call: Call) -> bool:
    bounds = [
        ("afterStart", b.start, True),
        ("beforeEnd", b.end, False),
        ("afterCreatedAt", b.created_at, True),
        ("beforeCreatedAt", b.created_at, False),
        ("afterUpdatedAt", b.updated_at, True),
        ("beforeUpdatedAt", b.updated_at, False),
    ]
    for name, value, after in bounds:
        raw = call.q(name)
        if raw is None:
            continue
        limit = parse_iso_param(raw, name)
        if value is None or (value < limit if after else value > limit):
            return False
    return True


def _in_status(b: Booking, status: str, now: datetime) -> bool:
    if status == "upcoming":
        return b.end >= now and b.status in ("accepted", "pending")
    if status == "unconfirmed":
        return b.end >= now and b.status == "pending"
    if status == "past":
        return b.end <= now and b.status not in ("cancelled", "rejected")
    if status == "cancelled":
        return b.status in ("cancelled", "rejected")
    return False  # "recurring": the fake has no recurring bookings


def _sort_key(call: Call) -> Any:
    fields = {
        "sortStart": "start",
        "sortEnd": "end",
        "sortCreated": "created_at",
        "sortUpdatedAt": "updated_at",
    }
    for param, attr in fields.items():
        direction = call.q(param)
        if direction:
            sign = -1 if direction == "desc" else 1

            def key(b: Booking, attr: str = attr, sign: int = sign) -> tuple[float, int]:
                moment = getattr(b, attr) or datetime.min.replace(tzinfo=UTC)
                return sign * moment.timestamp(), b.id

            return key
    return lambda b: (b.start.timestamp(), b.id)


def _pagination(total: int, returned: int, take: int, skip: int) -> Json:
    return {
        "totalItems": total,
        "remainingItems": max(0, total - skip - returned),
        "returnedItems": returned,
        "itemsPerPage": take,
        "currentPage": skip // take + 1,
        "totalPages": math.ceil(total / take) if total else 0,
        "hasNextPage": skip + returned < total,
        "hasPreviousPage": skip > 0,
    }


def _slot_map(found: list[tuple[datetime, datetime]], zone: str, ranged: bool) -> Json:
    days: dict[str, list[Json]] = defaultdict(list)
    for start, end in found:
        key = start.astimezone(ZoneInfo(zone)).date().isoformat()
        item = {"start": iso_in_zone(start, zone)}
        if ranged:
            item["end"] = iso_in_zone(end, zone)
        days[key].append(item)
    return dict(days)


def _reservation_json(r: Reservation) -> Json:
    return {
        "eventTypeId": r.event_type_id,
        "slotStart": iso(r.start),
        "slotEnd": iso(r.end),
        "slotDuration": int((r.end - r.start).total_seconds() // 60),
        "reservationUid": r.uid,
        "reservationDuration": r.minutes,
        "reservationUntil": iso(r.until),
    }
