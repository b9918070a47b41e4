"""The plain records the fake passes around: requests as received, responses, calls, faults."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple


@dataclass(frozen=True)
class RecordedRequest:
    """One request as received: header names lower-cased, query as a multi-dict.

    ``method`` and ``body`` are as sent; ``query`` also holds the form body of a
    ``POST`` with ``X-HTTP-Method-Override`` (how googleapiclient sends long GETs).
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    endpoint: str  # discovery id ("calendar.events.list") or "oauth.token" / "oauth.auth" / ...

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(
        cls, status: int, payload: Any, headers: dict[str, str] | None = None, pretty: bool = True
    ) -> Response:
        text = json.dumps(payload, indent=1 if pretty else None)
        return cls(
            status,
            text.encode(),
            {"Content-Type": "application/json; charset=UTF-8", **(headers or {})},
        )


class WriteNotice(NamedTuple):
    """An event write and the ``sendUpdates`` it asked for (``None``: not given)."""

    action: str  # "insert" | "patch" | "update" | "delete"
    calendar_id: str
    event_id: str
    send_updates: str | None


@dataclass(frozen=True)
class Call:
    """One Calendar API call, already authenticated and with typed query parameters."""

    bound: dict[str, str]  # path parameters, percent-decoded
    params: dict[str, Any]
    body: Any  # parsed JSON or None
    headers: dict[str, str]
    query_string: str


Handler = Callable[[Call], Any]
Route = Callable[[str, dict[str, list[str]], dict[str, str], bytes], "Response"]


@dataclass
class Failure:
    status: int
    reason: str | None
    message: str | None
    retry_after: int | str | None
    path_contains: str | None
    remaining: int
