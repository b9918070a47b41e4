"""``GET /readyz`` and ``GET /metrics``: is this daemon fit to serve, and how is it doing.

Both are unauthenticated (probes and Prometheus carry no API key), so they
say nothing a caller could misuse: counts and fixes, never provider error
texts. They expect ``app.state.store`` (a migrated ``Store``) and
``app.state.metrics`` (a ``Metrics``); ``create_app`` sets both. ``/readyz``
judges only the calendars the running config's resources check (read from
``app.state.services`` on every check, so a reload counts at once): the
store keeps the sync state of calendars removed from the config, and those
must not make the daemon ready or unready. A 503 from ``/readyz`` is about
calsync's own health, never about the request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import State

from calsync.api.errors import error_response
from calsync.api.services import Services
from calsync.errors import CalsyncError
from calsync.metrics import Metrics
from calsync.model import CalendarRef, CalendarStatus
from calsync.store import Store

READY_CACHE = 1.0  # seconds a /readyz answer is reused: probes must not load the database
NO_STORE = {"Cache-Control": "no-store"}

router = APIRouter(tags=["health"])


@dataclass(frozen=True, slots=True)
class Readiness:
    problems: tuple[str, ...]
    details: dict[str, Any]

    @property
    def ready(self) -> bool:
        return not self.problems

    def body(self) -> dict[str, Any]:
        if self.ready:
            return {"status": "ready", **self.details}
        return {"status": "not_ready", "problems": list(self.problems), **self.details}


@router.get("/readyz", responses={503: {"description": "not ready; problems says why"}})
def readyz(request: Request) -> JSONResponse:
    state = request.app.state
    found = _cache(state).get(state.store, _configured(state))
    status = 200 if found.ready else 503
    return JSONResponse(found.body(), status_code=status, headers=NO_STORE)


@router.get("/metrics", response_class=Response, responses={404: {"description": "no metrics"}})
def metrics(request: Request) -> Response:
    found = getattr(request.app.state, "metrics", None)
    if not isinstance(found, Metrics):
        return error_response(404, "not_found", "this server does not collect metrics")
    body, content_type = found.render()
    return Response(body, media_type=content_type, headers=NO_STORE)


def check(store: Store, configured: Collection[CalendarRef] | None = None) -> Readiness:
    """Store reachable, migrations current, not every calendar failing (none is fine).

    ``configured``: the calendar references the config checks (``account:*`` for
    all of an account's); other calendars in the store are ignored. None: all count.
    """
    try:
        with store.read() as conn:
            conn.exec_driver_sql("SELECT 1")
        current = store.is_current()
    except CalsyncError as err:
        return Readiness(
            (f"the database does not answer ({err.message}); check daemon.database and that "
             "the database server is running",), {},
        )  # fmt: skip
    if not current:
        return Readiness(
            ("the database schema is not the one this calsync version needs; run "
             "`calsync db upgrade` (or run the newer calsync that upgraded it)",), {},
        )  # fmt: skip
    try:
        statuses = store.calendars.statuses()
    except CalsyncError as err:
        return Readiness((f"the calendars' sync state cannot be read: {err.message}",), {})
    if configured is not None:
        statuses = [s for s in statuses if s.ref.covered_by(configured)]
    return _calendars(statuses)


def _configured(state: State) -> frozenset[CalendarRef] | None:
    """The calendars the running config's resources check; None without services."""
    services = getattr(state, "services", None)
    if not isinstance(services, Services):
        return None
    return frozenset(ref for r in services.availability.resources() for ref in r.check)


def _calendars(statuses: list[CalendarStatus]) -> Readiness:
    failing = sum(1 for s in statuses if s.last_error is not None and s.failures > 0)
    details = {"calendars": len(statuses), "failing": failing}
    if statuses and failing == len(statuses):
        which = "the only calendar" if failing == 1 else f"all {failing} calendars"
        problem = f"{which} failed the last sync; `calsync status` shows why and what to do"
        return Readiness((problem,), details)
    return Readiness((), details)


class ReadinessCache:
    """The last ``check`` result, reused for ``ttl`` seconds."""

    def __init__(self, ttl: float = READY_CACHE) -> None:
        self._ttl = ttl
        self._lock = threading.Lock()
        self._last: tuple[float, Readiness] | None = None

    def get(self, store: Store, configured: Collection[CalendarRef] | None = None) -> Readiness:
        with self._lock:  # one check at a time; the others wait and reuse it
            now = _monotonic()
            if self._last is None or now - self._last[0] >= self._ttl:
                self._last = (now, check(store, configured))
            return self._last[1]


def _cache(state: State) -> ReadinessCache:
    found = getattr(state, "readiness", None)
    if not isinstance(found, ReadinessCache):
        found = state.readiness = ReadinessCache()
    return found


def _monotonic() -> float:
    return time.monotonic()
