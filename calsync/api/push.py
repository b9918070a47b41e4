"""Push receivers: providers tell calsync that a calendar changed.

Each receiver answers fast and only moves that calendar's next sync to now;
the notification's secret (channel token / client state) is checked first.
"""

from __future__ import annotations

import json
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

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


@router.post("/outlook", status_code=202)
async def outlook(
    request: Request,
    svc: Svc,
    validation_token: Annotated[str | None, Query(alias="validationToken")] = None,
) -> Response:
    """Microsoft Graph change and lifecycle notifications, and the validation handshake."""
    if validation_token is not None:  # Graph checks the URL before it creates a subscription
        return Response(validation_token, media_type="text/plain", status_code=200)
    if svc.push is None:
        raise NotFoundError("push is off: daemon.public_url is empty")
    push = svc.push
    accepted = 0
    for note in _notifications(await request.body()):
        channel, token = str(note.get("subscriptionId", "")), str(note.get("clientState", ""))
        if note.get("lifecycleEvent") in ("reauthorizationRequired", "subscriptionRemoved"):
            # re-subscribing waits on Graph, which calls back here: not on this request
            threading.Thread(target=push.reopen, args=(channel, token), daemon=True).start()
            accepted += 1
        elif push.notify(channel, token) is not None:  # a change, or "missed": sync now
            accepted += 1
    if not accepted:
        raise AuthError("no notification with a known subscription and clientState")
    return Response(status_code=202)


def _notifications(body: bytes) -> list[dict[str, Any]]:
    try:
        value = json.loads(body or b"{}").get("value", [])
    except (ValueError, AttributeError):
        return []
    return [note for note in value if isinstance(note, dict)] if isinstance(value, list) else []


@router.post("/calcom", status_code=200)
async def calcom(request: Request, svc: Svc) -> Response:
    """Cal.com webhooks, signed with the account's secret (X-Cal-Signature-256)."""
    if svc.calcom is None:
        raise NotFoundError("no Cal.com account has a webhook_secret_file configured")
    account = svc.calcom.receive(await request.body(), request.headers.get("x-cal-signature-256"))
    return JSONResponse({"account": account})
