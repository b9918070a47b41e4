"""The FastAPI application: routes, error envelopes, body limit, and the daemon's lifespan.

The only module that assembles FastAPI; it gets its services built and
hands background work (the sync schedule) to the lifespan hooks it is given.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from calsync import __version__
from calsync.api import bookings, errors, health, lookups, push
from calsync.api.auth import Authenticator
from calsync.api.limits import BodyLimit, RequestLog
from calsync.api.services import Services
from calsync.api.views import slot_view
from calsync.api.voice import mcp as voice_mcp
from calsync.api.voice import platforms
from calsync.api.voice.desk import Desk
from calsync.errors import CalsyncError, SlotUnavailableError
from calsync.metrics import Metrics
from calsync.model import TimeSpan
from calsync.store import Store


def create_app(
    services: Services,
    authenticator: Authenticator,
    *,
    store: Store | None = None,
    metrics: Metrics | None = None,
    on_start: Callable[[], None] = lambda: None,
    on_stop: Callable[[], None] = lambda: None,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        on_start()
        try:
            async with voice_mcp.running(_app):
                yield
        finally:
            on_stop()

    app = FastAPI(
        title="calsync",
        version=__version__,
        description="Availability lookups, holds and bookings from a local calendar cache.",
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.authenticator = authenticator
    app.state.store = store
    app.state.metrics = metrics
    app.state.desk = Desk(services, metrics)
    app.add_middleware(BodyLimit)
    app.add_middleware(RequestLog)
    errors.install(app, _alternatives)
    app.include_router(lookups.router)
    app.include_router(lookups.feed_router)
    app.include_router(bookings.router)
    app.include_router(push.router)
    app.include_router(platforms.router)
    app.include_router(health.router)
    voice_mcp.mount(app)

    @app.get("/healthz", tags=["health"])
    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return app


def _alternatives(request: Request, err: CalsyncError) -> dict[str, Any]:
    """A taken slot's nearby free slots, shown as the slots endpoint shows them."""
    if not isinstance(err, SlotUnavailableError) or err.resource is None:
        return {}
    svc: Services = request.app.state.services
    resource = svc.availability.resource(err.resource)
    now = svc.clock.now()
    return {
        "alternatives": [
            slot_view(span, resource.timezone, resource.language, now)
            for span in err.alternatives
            if isinstance(span, TimeSpan)
        ]
    }
