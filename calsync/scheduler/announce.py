"""Announcements: the outbox events calsync emits, and who is subscribed to each.

A change's event is built here and written by the store in the same
transaction as the change, so an event exists exactly when its change
committed. The payload is ``{"type", "timestamp", "data"}``; for bookings
``data`` is the booking as the HTTP API returns it (plus ``previous`` for a
reschedule).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from calsync.clock import Clock
from calsync.config import WebhookSettings
from calsync.model import Booking, OutboxEvent, Resource, TimeSpan
from calsync.views import booking_view, iso, span_view

CREATED = "appointment.created"
CANCELLED = "appointment.cancelled"
RESCHEDULED = "appointment.rescheduled"
REAUTH_REQUIRED = "account.reauth_required"
SYNC_FAILED = "sync.failed"
SYNC_FAILED_AFTER = 3  # consecutive failures of a calendar: not every blip
UTC = ZoneInfo("UTC")


class Announcer:
    def __init__(
        self, webhooks: Sequence[WebhookSettings], resources: Mapping[str, Resource], clock: Clock
    ) -> None:
        self._webhooks = tuple(webhooks)
        self._resources = resources
        self._clock = clock

    def use(self, webhooks: Sequence[WebhookSettings], resources: Mapping[str, Resource]) -> None:
        """Announce to other endpoints, about other resources, from now on (a reload)."""
        self._webhooks, self._resources = tuple(webhooks), resources

    def event(self, kind: str, data: Mapping[str, Any]) -> OutboxEvent:
        now = self._clock.now()
        payload = {"type": kind, "timestamp": iso(now, UTC), "data": dict(data)}
        endpoints = tuple(hook.url for hook in self._webhooks if kind in hook.events)
        return OutboxEvent(str(uuid.uuid4()), kind, payload, endpoints, now)

    def booking(self, kind: str, booking: Booking, previous: TimeSpan | None = None) -> OutboxEvent:
        resource = self._resources.get(booking.resource)
        zone = resource.timezone if resource is not None else UTC
        data = booking_view(booking, zone)
        if previous is not None:
            data["previous"] = {
                **span_view(previous, zone),
                "start_utc": iso(previous.start, UTC),
                "end_utc": iso(previous.end, UTC),
            }
        return self.event(kind, data)

    def reauth_required(self, account: str, provider: str, detail: str) -> OutboxEvent:
        fix = f"calsync auth {provider} --account {account}"
        return self.event(
            REAUTH_REQUIRED,
            {"account": account, "provider": provider, "detail": detail, "fix": fix},
        )

    def sync_failed(self, calendar: str, error: str, failures: int) -> OutboxEvent:
        return self.event(
            SYNC_FAILED, {"calendar": calendar, "error": error, "consecutive_failures": failures}
        )
