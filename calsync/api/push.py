"""Push receivers: providers tell calsync that a calendar changed.

Each receiver answers fast and only moves that calendar's next sync to now;
the notification's secret (channel token / client state) is checked first.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from calsync.api.services import Services, services
from calsync.errors import AuthError, NotFoundError

router = APIRouter(prefix="/push", tags=["push"])
Svc = Annotated[Services, Depends(services)]


@router.post("/google", status_code=200)
def google(request: Request, svc: Svc) -> Response:
    """Google Calendar channel notifications (events.watch): headers only, no body."""
    if svc.push is None:
        raise NotFoundError("push is off: daemon.public_url is empty")
    channel = request.headers.get("x-goog-channel-id", "")
    token = request.headers.get("x-goog-channel-token", "")
    state = request.headers.get("x-goog-resource-state", "")
    if svc.push.notify(channel, token, changed=state != "sync") is None:
        raise AuthError("unknown push channel or wrong channel token")
    return Response(status_code=200)
