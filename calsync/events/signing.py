"""One webhook attempt on the wire: secrets, the signed request, and what the answer means.

This module owns the signing secrets (read from each endpoint's
``secret_file``, one ``whsec_...`` per line; several lines mean a rotation
and every one signs), the request an endpoint receives (a compact JSON
body and the ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature``
headers, signed by the ``standardwebhooks`` package, never by a
hand-rolled HMAC), the POST itself (no redirects followed, a timeout) and
the reading of the answer (2xx or why not, ``Retry-After``), and the
``TestResult`` that ``calsync webhooks test`` shows.

It keeps no delivery state and never touches the store. Secrets and
signatures never appear in its messages; URLs are shown by ``display_url``.
"""

from __future__ import annotations

import binascii
import json
import os
import threading
import time
from base64 import b64decode
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from standardwebhooks import Webhook

from calsync.errors import ConfigError

PREFIX = "whsec_"
MIN_SECRET_BYTES = 24  # the spec's lower bound for a symmetric secret
MAX_RETRY_AFTER = timedelta(days=1)  # a receiver cannot park a delivery for longer
SNIPPET_BYTES = 1024  # of a response body, kept for errors and `webhooks test`
_MAKE_ONE = "make one with: printf 'whsec_%s\\n' \"$(openssl rand -base64 32)\""


def webhook_id(event_id: str) -> str:
    """The ``webhook-id`` of an event: the same on every retry and for every endpoint.

    Receivers dedupe on it, so it names the event, not the attempt. The spec
    forbids ``.`` in it (it separates the signed parts).
    """
    return "msg_" + event_id.replace(".", "_")


def encode_body(payload: Mapping[str, Any]) -> str:
    """The request body: compact JSON; non-ASCII stays as UTF-8 text."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def signed_headers(secrets: list[str], msg_id: str, at: datetime, body: str) -> dict[str, str]:
    """Content-Type and the Standard Webhooks headers, signed with every secret."""
    if not secrets:
        raise ValueError("signing needs at least one secret")
    second = at.astimezone(UTC).replace(microsecond=0)
    # sign() treats the datetime as UTC whatever its zone says: hand it UTC.
    signatures = [Webhook(secret).sign(msg_id, second, body) for secret in secrets]
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(second.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


def load_secrets(path: Path) -> list[str]:
    """The ``whsec_...`` secrets in ``path``: one per line, blank lines and ``#`` comments skipped.

    Raises ConfigError naming the file and line (never the secret) when the
    file cannot be read, holds no secret, or holds a malformed one.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise ConfigError(
            [f"webhooks.secret_file: cannot read {path} ({reason}); {_MAKE_ONE}"]
        ) from err
    secrets: list[str] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        problem = _secret_problem(line)
        if problem:
            problems.append(f"webhooks.secret_file: {path} line {number}: {problem}")
        else:
            secrets.append(line)
    if not secrets and not problems:
        problems.append(f"webhooks.secret_file: {path} holds no secret; {_MAKE_ONE}")
    if problems:
        raise ConfigError(problems)
    return secrets


def _secret_problem(line: str) -> str | None:
    if not line.startswith(PREFIX):
        return f"a secret must start with {PREFIX}; {_MAKE_ONE}"
    try:
        key = b64decode(line[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        return f"the part after {PREFIX} is not valid base64; {_MAKE_ONE}"
    if len(key) < MIN_SECRET_BYTES:
        return f"the secret has {len(key)} bytes, {MIN_SECRET_BYTES} at least; {_MAKE_ONE}"
    return None


class SecretFiles:
    """``load_secrets`` with a cache that notices edits (rotation without a restart)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[Path, tuple[tuple[int, int, int], list[str]]] = {}

    def get(self, path: Path) -> list[str]:
        try:
            stat = os.stat(path)
        except OSError:
            return load_secrets(path)  # raises the readable error
        key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._cache.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        secrets = load_secrets(path)
        with self._lock:
            self._cache[path] = (key, secrets)
        return secrets


def display_url(url: str) -> str:
    """``url`` safe for logs: no userinfo, query or fragment (they may carry tokens)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# --- the POST --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """What one POST came back with; ``error`` says why it is not a success."""

    status: int | None
    headers: Mapping[str, str]
    body: str
    error: str | None  # None for 2xx
    retry_after: str | None
    elapsed: float


@dataclass(frozen=True, slots=True)
class TestResult:
    """What `calsync webhooks test` shows: the answer of one signed test request."""

    __test__ = False  # not a pytest test class

    url: str
    webhook_id: str
    status: int | None  # None when no HTTP answer came (timeout, refused, bad secret)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str = ""  # the first bytes of the response body
    error: str | None = None  # None for a 2xx answer
    elapsed: float = 0.0  # seconds

    @property
    def ok(self) -> bool:
        return self.error is None


def post(
    session: requests.Session, url: str, body: str, headers: Mapping[str, str], timeout: float
) -> Answer:
    """POST ``body`` without following redirects; network trouble becomes an error, not raised."""
    started = time.monotonic()
    try:
        with session.post(
            url, data=body.encode("utf-8"), headers=dict(headers), timeout=timeout,
            allow_redirects=False, stream=True,
        ) as response:  # fmt: skip
            snippet = _snippet(response)
            retry_after = response.headers.get("Retry-After")
            location = response.headers.get("Location", "")
    except requests.Timeout:
        return Answer(None, {}, "", f"no answer within {timeout:g} s", None, _since(started))
    except requests.RequestException as err:
        return Answer(None, {}, "", f"request failed: {_root(err)}", None, _since(started))
    status = response.status_code
    return Answer(
        status, dict(response.headers), snippet, _status_error(status, location, snippet),
        retry_after, _since(started),
    )  # fmt: skip


def _snippet(response: requests.Response) -> str:
    try:
        data = response.raw.read(SNIPPET_BYTES, decode_content=True)
    except Exception:  # a body that breaks off does not change the status
        return ""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else ""


def _status_error(status: int, location: str, snippet: str) -> str | None:
    if 200 <= status < 300:
        return None
    if 300 <= status < 400:
        target = display_url(location) or "nowhere"
        return f"HTTP {status} redirect to {target} (not followed: configure the final URL)"
    text = " ".join(snippet.split())[:200]
    return f"HTTP {status}" + (f": {text}" if text else "")


def retry_after_wait(value: str | None, now: datetime) -> timedelta | None:
    """A ``Retry-After`` header (seconds or an HTTP date) as a wait, capped at a day."""
    if not value or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        wait = timedelta(seconds=int(text))
    else:
        try:
            at = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        wait = (at if at.tzinfo else at.replace(tzinfo=UTC)) - now
    return min(wait, MAX_RETRY_AFTER) if wait > timedelta(0) else None


def _root(err: BaseException) -> str:
    """The innermost cause (e.g. ``[Errno 111] Connection refused``): no URL in it."""
    seen: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and current not in seen:
        seen.append(current)
        reason = getattr(current, "reason", None)
        nested = current.args[0] if current.args else None
        current = (
            reason if isinstance(reason, BaseException)
            else current.__cause__ or current.__context__
            or (nested if isinstance(nested, BaseException) else None)
        )  # fmt: skip
    return str(seen[-1]) or type(seen[-1]).__name__


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)
