"""Change-notification subscriptions (reference 2.5): handshake, storage, deliveries.

Owns: ``POST /subscriptions`` with the validation handshake (POST
``notificationUrl?validationToken=<token>`` as text/plain; a 200 text/plain
echo within ``validation_timeout`` seconds, else 400 and no subscription; the
same for ``lifecycleNotificationUrl``), the 10,080-minute lifetime cap,
renew/delete/reauthorize, change notifications POSTed from a background thread
(status and latency recorded as ``Delivery``), and lifecycle events.
It must not know about tokens beyond the caller's ids, or delta state.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import requests

from .store import Change, Mailbox
from .wire import Incoming, Reply, WireError, format_timestamp, json_reply, parse_instant

if TYPE_CHECKING:
    from .server import FakeGraph

MAX_MINUTES = 10080
CHANGE_TYPES = ("created", "updated", "deleted")
LIFECYCLE_EVENTS = ("reauthorizationRequired", "subscriptionRemoved", "missed")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class Subscription:
    id: str
    oid: str
    tenant_id: str
    application_id: str
    calendar_id: str
    resource: str
    change_types: tuple[str, ...]
    notification_url: str
    lifecycle_url: str | None
    client_state: str | None
    expiration: datetime
    immutable_ids: bool


@dataclass(frozen=True)
class Delivery:
    """One outbound POST the fake made: a handshake, a notification or a lifecycle event."""

    kind: str  # validation | notification | lifecycle
    url: str
    subscription_id: str | None
    payload: Any  # the JSON body sent (the token for a validation)
    status: int | None  # None when the request failed
    latency: float  # seconds until the response (or the failure)
    error: str | None = None


class SubscriptionService:
    def __init__(self, graph: FakeGraph) -> None:
        self.graph = graph
        self.subs: dict[str, Subscription] = {}
        self.deliveries: list[Delivery] = []
        self._queue: queue.Queue[tuple[str, str, str | None, Any] | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._delivered = threading.Condition()

    def start(self) -> None:
        self._worker = threading.Thread(target=self._run, daemon=True, name="graph-notify")
        self._worker.start()

    def stop(self) -> None:
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout=15)
            self._worker = None

    # --- routes (create runs the handshake outside the server lock) ---------------------------

    def create(self, req: Incoming, oid: str, app_id: str) -> Reply:
        with self.graph.lock:
            sub = self._parse_new(req, oid, app_id)
        for url in (sub.notification_url, sub.lifecycle_url):
            if url is not None:
                self._handshake(url, sub.id)
        with self.graph.lock:
            self.subs[sub.id] = sub
        return json_reply(201, self._render(req, sub))

    def read(self, req: Incoming, oid: str, sub_id: str | None) -> Reply:
        if sub_id is None:
            mine = [self._render(req, s) for s in self.subs.values() if s.oid == oid]
            return json_reply(200, {"value": mine})
        return json_reply(200, self._render(req, self._mine(oid, sub_id)))

    def patch(self, req: Incoming, oid: str, sub_id: str) -> Reply:
        sub = self._mine(oid, sub_id)
        body = req.json()
        if not isinstance(body, dict):
            raise WireError("InvalidRequest", "A subscription update must be a JSON object.")
        if "lifecycleNotificationUrl" in body:
            raise WireError(
                "InvalidRequest", "lifecycleNotificationUrl can only be set when creating."
            )
        unknown = sorted(set(body) - {"expirationDateTime"})
        if unknown:
            raise WireError("InvalidRequest", f"Property '{unknown[0]}' cannot be updated.")
        sub.expiration = self._expiration(body.get("expirationDateTime"))
        return json_reply(200, self._render(req, sub))

    def delete(self, oid: str, sub_id: str) -> Reply:
        del self.subs[self._mine(oid, sub_id).id]
        return Reply(204)

    def reauthorize(self, oid: str, sub_id: str) -> Reply:
        self._mine(oid, sub_id)
        return Reply(200)

    # --- change feed --------------------------------------------------------------------------

    def on_change(self, mailbox: Mailbox, change: Change) -> None:
        """Called under the server lock for every mailbox change."""
        now = self.graph.clock()
        for sub in list(self.subs.values()):
            if (
                sub.oid == mailbox.oid
                and sub.calendar_id == change.calendar_id
                and change.change_type in sub.change_types
                and sub.expiration > now
            ):
                note = self._notification(sub, mailbox, change)
                self._queue.put(("notification", sub.notification_url, sub.id, {"value": [note]}))

    def send_lifecycle(self, sub_id: str, event: str) -> None:
        if event not in LIFECYCLE_EVENTS:
            raise ValueError(f"lifecycle event must be one of {LIFECYCLE_EVENTS}")
        sub = self.subs[sub_id]
        if sub.lifecycle_url is None:
            raise ValueError("Graph sends lifecycle events only to a lifecycleNotificationUrl")
        body = {
            "value": [
                {
                    "subscriptionId": sub.id,
                    "subscriptionExpirationDateTime": format_timestamp(sub.expiration),
                    "tenantId": sub.tenant_id,
                    "clientState": sub.client_state,
                    "lifecycleEvent": event,
                }
            ]
        }
        if event == "subscriptionRemoved":
            del self.subs[sub_id]
        self._queue.put(("lifecycle", sub.lifecycle_url, sub.id, body))

    def wait_for(self, count: int, timeout: float) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        with self._delivered:
            while len(self.deliveries) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self.deliveries)} of {count} deliveries made")
                self._delivered.wait(left)
            return list(self.deliveries)

    # --- internals ----------------------------------------------------------------------------

    def _parse_new(self, req: Incoming, oid: str, app_id: str) -> Subscription:
        body = req.json()
        if not isinstance(body, dict):
            raise WireError("InvalidRequest", "A subscription must be a JSON object.")
        if body.get("includeResourceData"):
            raise WireError(
                "InvalidRequest", "FakeGraph supports basic notifications only (no resource data)."
            )
        kinds = tuple(k.strip() for k in str(body.get("changeType", "")).split(",") if k.strip())
        if not kinds or any(k not in CHANGE_TYPES for k in kinds):
            raise WireError("InvalidRequest", f"Invalid changeType {body.get('changeType')!r}.")
        state = body.get("clientState")
        if state is not None and (not isinstance(state, str) or len(state) > 128):
            raise WireError("InvalidRequest", "clientState must be a string of at most 128 chars.")
        resource = body.get("resource")
        calendar_id = self._calendar_for(resource, oid)
        urls = [self._url(body.get(k), k) for k in ("notificationUrl", "lifecycleNotificationUrl")]
        if urls[0] is None:
            raise WireError("InvalidRequest", "notificationUrl is required.")
        user = self.graph.user_for_oid(oid)
        return Subscription(
            id=str(uuid.uuid4()), oid=oid, tenant_id=user.tenant_id, application_id=app_id,
            calendar_id=calendar_id, resource=str(resource), change_types=kinds,
            notification_url=urls[0], lifecycle_url=urls[1], client_state=state,
            expiration=self._expiration(body.get("expirationDateTime")),
            immutable_ids=self.graph.prefer(req).get("idtype", "").lower() == "immutableid",
        )  # fmt: skip

    def _calendar_for(self, resource: Any, oid: str) -> str:
        parts = str(resource or "").strip("/").split("/")
        mailbox = self.graph.mailbox_for_oid(oid)
        lowered = [p.lower() for p in parts]
        if lowered[:1] == ["users"] and len(parts) > 2:
            if self.graph.mailbox_for_address(parts[1]) is not mailbox and parts[1] != oid:
                raise WireError("ErrorAccessDenied", "Access is denied.", 403)
            lowered, parts = ["me", *lowered[2:]], ["me", *parts[2:]]
        if lowered in (["me", "events"], ["me", "calendar", "events"]):
            return mailbox.default_calendar.id
        calendar_path = len(parts) == 4 and lowered[:2] == ["me", "calendars"]
        if calendar_path and lowered[3] == "events" and parts[2] in mailbox.calendars:
            return parts[2]
        raise WireError("InvalidRequest", f"Resource '{resource}' is not supported.")

    def _url(self, value: Any, name: str) -> str | None:
        if value is None:
            return None
        split = urlsplit(str(value))
        loopback_http = split.scheme == "http" and split.hostname in _LOOPBACK
        if split.scheme != "https" and not loopback_http:
            raise WireError(
                "ValidationError",
                f"Subscription validation request failed. {name} must be an https URL "
                "(FakeGraph also allows http on loopback).",
            )
        return str(value)

    def _expiration(self, value: Any) -> datetime:
        if not isinstance(value, str):
            raise WireError("InvalidRequest", "expirationDateTime is required.")
        try:
            when = parse_instant(value, "expirationDateTime")
        except WireError as err:
            raise WireError("InvalidRequest", err.message) from err
        now = self.graph.clock()
        if when <= now:
            raise WireError("InvalidRequest", "Subscription expiration must be in the future.")
        if when > now + timedelta(minutes=MAX_MINUTES):
            raise WireError(
                "InvalidRequest",
                f"Subscription expiration can only be {MAX_MINUTES} minutes in the future.",
            )
        return when

    def _mine(self, oid: str, sub_id: str) -> Subscription:
        sub = self.subs.get(sub_id)
        if sub is None or sub.oid != oid:
            raise WireError("ResourceNotFound", "The object was not found.", 404)
        return sub

    def _render(self, req: Incoming, sub: Subscription) -> dict[str, Any]:
        return {
            "@odata.context": f"{req.base_url}/v1.0/$metadata#subscriptions/$entity",
            "id": sub.id,
            "resource": sub.resource,
            "applicationId": sub.application_id,
            "changeType": ",".join(sub.change_types),
            "clientState": sub.client_state,
            "notificationUrl": sub.notification_url,
            "notificationQueryOptions": None,
            "lifecycleNotificationUrl": sub.lifecycle_url,
            "expirationDateTime": format_timestamp(sub.expiration),
            "creatorId": sub.oid,
            "includeResourceData": False,
            "latestSupportedTlsVersion": "v1_2",
            "encryptionCertificate": None,
            "encryptionCertificateId": None,
            "notificationUrlAppId": None,
        }

    def _notification(self, sub: Subscription, mailbox: Mailbox, change: Change) -> dict[str, Any]:
        key, rest = change.ids[0] if change.ids else change.master
        ident = key if sub.immutable_ids else rest
        resource = f"Users/{sub.oid}/Events/{ident}"
        data: dict[str, Any] = {"@odata.type": "#Microsoft.Graph.Event", "@odata.id": resource}
        item = mailbox.items.get(change.item_key)
        if item is not None and change.change_type != "deleted":
            data["@odata.etag"] = f'W/"{mailbox.master(item).change_key}"'
        return {
            "subscriptionId": sub.id,
            "subscriptionExpirationDateTime": format_timestamp(sub.expiration),
            "changeType": change.change_type,
            "resource": resource,
            "resourceData": data | {"id": ident},
            "clientState": sub.client_state,
            "tenantId": sub.tenant_id,
        }

    def _handshake(self, url: str, sub_id: str) -> None:
        token = (
            "Validation: Testing client application reachability for subscription "
            f"Request-Id: {uuid.uuid4()}"
        )
        target = f"{url}{'&' if '?' in url else '?'}validationToken={quote(token, safe='')}"
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        response, latency, error = self._post(target, b"", headers, self.graph.validation_timeout)
        self._record(
            Delivery("validation", target, sub_id, token, _status(response), latency, error)
        )
        if response is None:
            raise WireError(
                "ValidationError",
                f"Subscription validation request failed. Notification endpoint must respond "
                f"with 200 OK to validation request ({error}).",
            )
        if (
            response.status_code != 200
            or not response.headers.get("Content-Type", "").startswith("text/plain")
            or response.text != token
        ):
            raise WireError(
                "ValidationError",
                "Subscription validation request failed. Response must exactly match "
                "validationToken query parameter (200, text/plain).",
            )

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            kind, url, sub_id, body = job
            headers = {"Content-Type": "application/json; charset=utf-8"}
            data = json.dumps(body).encode()
            response, latency, error = self._post(url, data, headers, self.graph.delivery_timeout)
            self._record(Delivery(kind, url, sub_id, body, _status(response), latency, error))

    @staticmethod
    def _post(
        url: str, data: bytes, headers: dict[str, str], timeout: float
    ) -> tuple[requests.Response | None, float, str | None]:
        started = time.monotonic()
        try:
            with requests.Session() as session:
                session.trust_env = False
                response = session.post(url, data=data, headers=headers, timeout=timeout)
            return response, time.monotonic() - started, None
        except requests.RequestException as err:
            return None, time.monotonic() - started, f"{type(err).__name__}: {err}"

    def _record(self, delivery: Delivery) -> None:
        with self._delivered:
            self.deliveries.append(delivery)
            self._delivered.notify_all()


def _status(response: requests.Response | None) -> int | None:
    return None if response is None else response.status_code
