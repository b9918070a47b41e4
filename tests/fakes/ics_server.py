"""A real HTTP/1.1 server on 127.0.0.1 that publishes one ICS feed, for tests.

Built from HTTP's rules (RFC 9110), not from what the adapter happens to do:

- 200 carries a strong, quoted ``ETag`` and a ``Last-Modified`` HTTP-date
  (unless ``validators=False``), ``Content-Type: text/calendar`` and a
  ``Content-Length``.
- Conditional GET/HEAD (RFC 9110 13.2.2): ``If-None-Match`` is evaluated
  first (weak comparison, ``*`` matches any current representation) and, when
  present, ``If-Modified-Since`` is ignored; otherwise ``If-Modified-Since``
  (a valid HTTP-date, GET/HEAD only) gives 304 when the feed has not been
  modified since. A 304 has no body and repeats the ``ETag``.
- Other methods get 405 with ``Allow``; other paths 404.

Knobs: ``set_body`` (new ETag and a Last-Modified one minute later, from a
fake clock so tests stay deterministic), ``fail_next(status, n)``,
``validators=False``, ``require_token`` (403 without ``?token=<it>``, like
private calendar URLs), and ``requests``: every request received, with
lower-cased header names.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

FIRST_MODIFIED = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # as sent, with the query string
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased


class FakeIcsServer:
    """Serves one mutable ICS body at ``path``; use as a context manager."""

    def __init__(
        self,
        body: bytes = b"",
        *,
        path: str = "/calendar.ics",
        validators: bool = True,
        require_token: str | None = None,
    ) -> None:
        self.path = path
        self.validators = validators
        self.require_token = require_token
        self._lock = threading.Lock()
        self._body = body
        self._version = 1
        self._modified = FIRST_MODIFIED
        self._failures: list[int] = []
        self._requests: list[RecordedRequest] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------

    def start(self) -> FakeIcsServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeIcsServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the server is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        """The feed's URL, with the token when one is required."""
        query = f"?token={self.require_token}" if self.require_token else ""
        return f"{self.base_url}{self.path}{query}"

    # --- knobs -----------------------------------------------------------------

    def set_body(self, body: bytes) -> None:
        """Publish a new version: new ETag, Last-Modified one minute later."""
        with self._lock:
            self._body = body
            self._version += 1
            self._modified += timedelta(minutes=1)

    def fail_next(self, status: int, n: int = 1) -> None:
        """Answer the next ``n`` requests with ``status`` (and a short text body)."""
        with self._lock:
            self._failures.extend([status] * n)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def etag(self) -> str:
        return self._snapshot()[1]

    @property
    def last_modified(self) -> str:
        with self._lock:
            return format_datetime(self._modified, usegmt=True)

    # --- used by the handler -----------------------------------------------------

    def _record(self, request: RecordedRequest) -> int | None:
        """Log ``request``; the status of a queued failure to answer with, if any."""
        with self._lock:
            self._requests.append(request)
            return self._failures.pop(0) if self._failures else None

    def _snapshot(self) -> tuple[bytes, str, datetime]:
        """Body, ETag and modification time of the current version, read together."""
        with self._lock:
            body, version, modified = self._body, self._version, self._modified
        return body, f'"{version}-{hashlib.sha256(body).hexdigest()[:16]}"', modified


def _handler_for(fake: FakeIcsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_FeedHandler):
        server_fake = fake

    return Handler


class _FeedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_fake: FakeIcsServer

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def do_POST(self) -> None:
        self._not_allowed()

    do_PUT = do_DELETE = do_PATCH = do_POST

    def log_message(self, format: str, *args: object) -> None:  # quiet tests
        pass

    def _serve(self, *, send_body: bool) -> None:
        fake = self.server_fake
        failure = fake._record(self._recorded())
        split = urlsplit(self.path)
        if failure is not None:
            return self._text(failure, f"injected failure {failure}\n", send_body)
        if split.path != fake.path:
            return self._text(404, "not found\n", send_body)
        if fake.require_token and parse_qs(split.query).get("token") != [fake.require_token]:
            return self._text(403, "forbidden\n", send_body)
        body, current_etag, current_modified = fake._snapshot()
        etag = current_etag if fake.validators else None
        modified = current_modified if fake.validators else None
        if _not_modified(self.headers, etag, modified):
            return self._not_modified(etag)
        self.send_response(200)
        self.send_header("Content-Type", "text/calendar; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if etag is not None and modified is not None:
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", format_datetime(modified, usegmt=True))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _recorded(self) -> RecordedRequest:
        headers = {name.lower(): value for name, value in self.headers.items()}
        return RecordedRequest(self.command, self.path, headers)

    def _not_modified(self, etag: str | None) -> None:
        self.send_response(304)
        if etag is not None:
            self.send_header("ETag", etag)
        self.end_headers()

    def _text(self, status: int, text: str, send_body: bool) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if send_body:
            self.wfile.write(data)

    def _not_allowed(self) -> None:
        self.server_fake._record(self._recorded())
        self.send_response(405)
        self.send_header("Allow", "GET, HEAD")
        self.send_header("Content-Length", "0")
        self.end_headers()


def _not_modified(headers: Message, etag: str | None, modified: datetime | None) -> bool:
    """RFC 9110 13.2.2 for GET/HEAD: If-None-Match first, else If-Modified-Since."""
    if_none_match = headers.get("If-None-Match")
    if if_none_match is not None:
        return _matches_any(if_none_match, etag)
    if_modified_since = headers.get("If-Modified-Since")
    if if_modified_since is None or modified is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False  # an invalid date is ignored
    if since.tzinfo is None:
        return False
    return modified <= since


def _matches_any(field_value: str, etag: str | None) -> bool:
    """Weak comparison of ``etag`` against an If-None-Match list (``*``: any representation)."""
    if field_value.strip() == "*":
        return True
    if etag is None:
        return False
    wanted = _opaque(etag)
    return any(_opaque(tag) == wanted for tag in field_value.split(","))


def _opaque(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag
