"""Who calls a voice tool and what it gets back: ``Call``, ``Answer``, and the memory of
recent answers that makes a platform's retry of a write return the first result.

No platform format, no booking logic: the desk uses these, the platforms build
``Call``s and turn ``Answer``s into their replies.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from calsync.clock import Clock
from calsync.scheduler.booking import MAX_KEY_LENGTH

REMEMBERED = 1024  # answers of recent write calls kept for retries ...
REMEMBER_FOR = timedelta(minutes=2)  # ... for as long as a platform may retry


@dataclass(frozen=True, slots=True)
class Call:
    """Who is asking: the platform, its call and tool-call ids, the caller's number."""

    platform: str
    call_id: str | None = None
    caller: str | None = None
    tool_call_id: str | None = None

    def key(self, tool_name: str, arguments: Mapping[str, Any]) -> str:
        """The idempotency key of this tool call: a retry of it gets the same key."""
        part = self.tool_call_id or digest([tool_name, dict(arguments)])
        key = f"voice:{self.platform}:{self.call_id or '-'}:{tool_name}:{part}"
        return key if len(key) <= MAX_KEY_LENGTH else f"voice:{digest(key)}"


@dataclass(frozen=True, slots=True)
class Answer:
    say: str
    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # a code when the tool did not do what was asked

    @property
    def ok(self) -> bool:
        return self.error is None

    def document(self) -> dict[str, Any]:
        """The JSON a platform hands to its model."""
        head: dict[str, Any] = {"ok": self.ok, "say": self.say}
        if self.error is not None:
            head["error"] = self.error
        return {**head, **self.data}


class Memory:
    """The answers of recent writes, so that a retry gets the first answer; thread-safe."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._recent: OrderedDict[str, tuple[str, Answer, datetime]] = OrderedDict()

    def recall(self, call: Call, key: str | None) -> Answer | None:
        """The answer of this very write if it is a retry of the call's last one."""
        if key is None:
            return None
        with self._lock:
            found = self._recent.get(_scope(call, key))
        if found is None or found[0] != key or self._clock.now() - found[2] > REMEMBER_FOR:
            return None
        return found[1]

    def remember(self, call: Call, key: str | None, answer: Answer) -> None:
        if key is None or not answer.ok:
            return
        with self._lock:
            self._recent[_scope(call, key)] = (key, answer, self._clock.now())
            while len(self._recent) > REMEMBERED:
                self._recent.popitem(last=False)


def _scope(call: Call, key: str) -> str:
    """What a remembered answer is filed under: the tool call when the platform names
    it; else the call, whose last write is the only one a retry can repeat (the same
    arguments later, after other writes, are a new request)."""
    if call.tool_call_id or not call.call_id:
        return key
    return f"{call.platform}:{call.call_id}"


def digest(value: object) -> str:
    """A short stable hash of a JSON-able value."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]
