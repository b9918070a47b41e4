"""ASGI middlewares: a body size limit (a clear 413) and the request log with request ids."""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from calsync.logs import request_id

log = logging.getLogger("calsync.http")

MAX_BODY = 64 * 1024


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise BodyTooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except BodyTooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body: dict[str, Any] = {
            "error": {
                "code": "body_too_large",
                "message": f"the request body is larger than {self.limit // 1024} KiB",
            }
        }
        payload = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


class RequestLog:
    """One log line per request, and an id for it: the client's ``X-Request-ID`` (if sane)
    or a new one, echoed in the response and carried by every log line of the request.
    Only method, path, status and time are logged: never headers, queries or bodies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _request_id(dict(scope.get("headers", [])).get(b"x-request-id", b""))
        token = request_id.set(rid)
        started, status = time.perf_counter(), [500]

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, tagged)
        finally:
            ms = (time.perf_counter() - started) * 1000
            log.info(
                "http method=%s path=%s status=%d ms=%.1f",
                scope["method"], scope["path"], status[0], ms,
            )  # fmt: skip
            request_id.reset(token)


def _request_id(given: bytes) -> str:
    text = given.decode("ascii", "replace")
    if 0 < len(text) <= 64 and all(c.isalnum() or c in "-_." for c in text):
        return text
    return uuid.uuid4().hex
