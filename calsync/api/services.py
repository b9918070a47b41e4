"""What the HTTP routes work with, built once by the CLI and hung on ``app.state``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

from calsync.clock import Clock
from calsync.scheduler.availability import Availability
from calsync.scheduler.booking import BookingService
from calsync.scheduler.push import CalcomIntake, PushManager


@dataclass(frozen=True)
class Services:
    availability: Availability
    bookings: BookingService
    clock: Clock
    sync_now: Callable[[], int]  # moves every calendar's next sync to now; returns how many
    push: PushManager | None = None  # None: daemon.public_url is empty, polling only
    calcom: CalcomIntake | None = None  # None: no Cal.com account has a webhook secret
    retell_key: str | None = None  # set: Retell's requests are checked by their signature


async def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found
