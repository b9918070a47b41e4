"""Inbound Cal.com webhooks: signature checks and delivery parsing. Pure: no I/O, no HTTP.

Cal.com POSTs ``{"triggerEvent", "createdAt", "payload"}`` and signs the raw
body: ``X-Cal-Signature-256`` is the hex HMAC-SHA256 of the body under the
webhook's secret (some relays prefix ``sha256=``). A webhook created without
a secret sends the literal ``no-secret-provided``, which is refused: anyone
could send that. There is no timestamp, so deliveries are at-least-once and
replayable; ``dedupe_key`` identifies one (trigger, booking uid, createdAt)
so a receiver can drop repeats (``RecentDeliveries``). A delivery only tells
calsync to sync the account now; it is never trusted as booking data.

For ``POST /push/calcom``: ``account_for(body, header, secrets)`` says which
account's secret signed the body (``AuthError`` -> 401 otherwise), then
``parse_delivery(body)``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from calsync.errors import AuthError

SIGNATURE_HEADER = "X-Cal-Signature-256"
NO_SECRET = "no-secret-provided"
PREFIX = "sha256="


@dataclass(frozen=True, slots=True)
class Delivery:
    """What one webhook delivery is about."""

    trigger: str  # e.g. BOOKING_CREATED; "" when the body is not Cal.com's default JSON
    uid: str | None  # the booking's uid (for a reschedule: the new booking)
    dedupe_key: str
    previous_uid: str | None = None  # BOOKING_RESCHEDULED: the booking it replaced
    event_type_id: int | None = None


def signature_of(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, header: str | None, secret: str) -> None:
    """Raise ``AuthError`` unless ``header`` is the HMAC of ``body`` under ``secret``."""
    if not secret:
        raise AuthError("no webhook secret is configured for this Cal.com account")
    if not _matches(body, _signature(header), secret):
        raise AuthError(f"wrong {SIGNATURE_HEADER}: the body or the secret does not match")


def is_signed(body: bytes, header: str | None, secret: str) -> bool:
    try:
        verify_signature(body, header, secret)
    except AuthError:
        return False
    return True


def account_for(body: bytes, header: str | None, secrets: Mapping[str, str]) -> str:
    """The account whose webhook secret signed ``body`` (each account's secret is tried)."""
    signature = _signature(header)
    for name, secret in secrets.items():
        if secret and _matches(body, signature, secret):
            return name
    if not any(secrets.values()):
        raise AuthError("no Cal.com account has a webhook_secret_file configured")
    raise AuthError(f"no Cal.com account's webhook secret matches the {SIGNATURE_HEADER}")


def _signature(header: str | None) -> str:
    """The hex digest a header carries; missing and ``no-secret-provided`` are refused."""
    value = (header or "").strip()
    if not value:
        raise AuthError(f"unsigned Cal.com webhook: no {SIGNATURE_HEADER} header")
    if value == NO_SECRET:
        raise AuthError(
            "the Cal.com webhook has no secret; set one in Cal.com's webhook settings, "
            "equal to the content of the account's webhook_secret_file"
        )
    if value[: len(PREFIX)].lower() == PREFIX:
        value = value[len(PREFIX) :]
    return value.lower()


def _matches(body: bytes, signature: str, secret: str) -> bool:
    """Constant-time comparison of the bytes (a non-hex header simply does not match)."""
    return hmac.compare_digest(signature_of(body, secret).encode(), signature.encode())


def parse_delivery(body: bytes) -> Delivery:
    """Read a (verified) delivery; a body that is not Cal.com's default JSON (a custom
    payload template) still gives a delivery, keyed by its bytes."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("triggerEvent"), str):
        return Delivery("", None, hashlib.sha256(body).hexdigest())
    found = data.get("payload")
    payload: dict[str, Any] = found if isinstance(found, dict) else {}
    trigger = data["triggerEvent"]
    uid = _text(payload.get("uid")) or _text(payload.get("bookingUid"))
    created = _text(data.get("createdAt")) or ""
    key = hashlib.sha256(f"{trigger}\n{uid or ''}\n{created}".encode()).hexdigest()
    event_type = payload.get("eventTypeId")
    return Delivery(
        trigger=trigger,
        uid=uid,
        dedupe_key=key,
        previous_uid=_text(payload.get("rescheduleUid")),
        event_type_id=event_type if isinstance(event_type, int) else None,
    )


class RecentDeliveries:
    """The dedupe keys of the last ``size`` deliveries, thread-safe (memory only)."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, key: str) -> bool:
        """True the first time ``key`` is seen (then remembered), False for a repeat."""
        with self._lock:
            if key in self._keys:
                self._keys.move_to_end(key)
                return False
            self._keys[key] = None
            while len(self._keys) > self._size:
                self._keys.popitem(last=False)
            return True


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int) and str(value) else None
