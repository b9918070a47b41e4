"""The ICS feed adapter: fetching a feed, noticing it did not change, translating errors.

Owns the source (an absolute file path or an http(s)/webcal URL), the
conditional GET (If-None-Match / If-Modified-Since from the cursor), the
cursor format, and the translation of HTTP and file errors into
``calsync.errors`` (with secrets stripped from every URL it names). Every
GET is counted by outcome (``observe``); reading a local file is not a
request and is not counted.

Must not parse iCalendar (that is ``_wire``) or touch the store. It never
creates an HTTP session: the caller injects one.

The cursor is a compact JSON object, opaque to callers::

    {"v": 1, "sha256": <hex of the body>, "zone": <default zone>,
     "from": <ISO UTC>, "to": <ISO UTC>,            # the span the snapshot covers
     "etag": ..., "last_modified": ...}              # HTTP validators, when sent

A local file is read and hashed on every pass (cheap, and unlike mtime and
size it cannot miss a same-size rewrite within one timestamp tick); only an
unchanged hash skips the parse.

A feed counts as unchanged only while the requested window lies inside the
covered span: a snapshot is expanded ``LOOKAHEAD`` past the window's end, so a
rolling window reuses it for a day, then one plain GET expands it again (open
series have new instances at the far end even when the feed never changes).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import requests

from calsync.errors import (
    InputError,
    ProviderAuthError,
    ProviderDataError,
    ProviderUnavailableError,
    RateLimitedError,
)
from calsync.model import Event, TimeSpan
from calsync.providers.base import CalendarInfo, Capability, ChangeBatch
from calsync.providers.counting import Observe, RequestCounter
from calsync.providers.ics import _wire

CALENDAR_ID = "primary"
LOOKAHEAD = timedelta(days=1)
_CURSOR_VERSION = 1
_SECRET_SEGMENT_LENGTH = 24  # longer URL path segments are treated as tokens and hidden
_ACCEPT = "text/calendar, text/plain;q=0.5, */*;q=0.1"


@dataclass(frozen=True, slots=True)
class _Cursor:
    sha256: str
    zone: str
    start: str
    end: str
    etag: str | None = None
    last_modified: str | None = None

    @classmethod
    def load(cls, text: str | None) -> _Cursor | None:
        """The cursor in ``text``; None (start over) for an absent or unreadable one."""
        if not text:
            return None
        try:
            data = json.loads(text)
            if data.pop("v") != _CURSOR_VERSION:
                return None
            return cls(**data)
        except (ValueError, TypeError, KeyError, AttributeError):
            return None

    def dump(self) -> str:
        data = {"v": _CURSOR_VERSION, **{k: v for k, v in asdict(self).items() if v is not None}}
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    def covers(self, window: TimeSpan, zone: str) -> bool:
        try:
            start, end = datetime.fromisoformat(self.start), datetime.fromisoformat(self.end)
            return zone == self.zone and start <= window.start and window.end <= end
        except (ValueError, TypeError):
            return False


@dataclass(frozen=True, slots=True)
class _Read:
    """What one read of the source gave: a body, or None when it is known unchanged."""

    body: bytes | None
    etag: str | None = None
    last_modified: str | None = None


class IcsProvider:
    """A read-only calendar backed by one ICS feed; it has exactly one calendar, "primary"."""

    capabilities: frozenset[Capability] = frozenset()

    def __init__(
        self,
        source: str,
        *,
        session: requests.Session,
        default_timezone: ZoneInfo,
        name: str = "",
        timeout: float = 15.0,
        observe: Observe | None = None,
    ) -> None:
        self._url = _http_url(source)
        if self._url is None and not os.path.isabs(source):
            raise InputError(
                f"ICS source {describe_source(source)!r} is neither an absolute path "
                "nor an http(s) URL"
            )
        self._source = source
        self._session = session
        self._default_timezone = default_timezone
        self._name = name
        self._timeout = timeout
        self._requests = RequestCounter("ics", observe)

    def list_calendars(self) -> list[CalendarInfo]:
        body = self._read(None).body or b""
        feed = _wire.parse_feed(body)
        zone = feed.timezone or self._default_timezone
        name = feed.name or self._name or _source_stem(self._source)
        return [CalendarInfo(CALENDAR_ID, name, zone.key, access="reader", primary=True)]

    def fetch_changes(self, calendar: str, cursor: str | None, window: TimeSpan) -> ChangeBatch:
        if calendar != CALENDAR_ID:
            raise ProviderDataError(
                f"an ICS feed has one calendar, {CALENDAR_ID!r}; there is no {calendar!r}"
            )
        zone = self._default_timezone.key
        previous = _Cursor.load(cursor)
        reusable = previous if previous and previous.covers(window, zone) else None
        read = self._read(reusable)
        if reusable is not None and read.body is None:
            return _unchanged(_with_validators(reusable, read))
        body = read.body or b""
        digest = hashlib.sha256(body).hexdigest()
        if reusable is not None and digest == reusable.sha256:
            return _unchanged(_with_validators(reusable, read))
        covered = TimeSpan(window.start, window.end + LOOKAHEAD)
        events = self._events(body, covered)
        new = _Cursor(digest, zone, covered.start.isoformat(), covered.end.isoformat())
        new_cursor = _with_validators(new, read).dump()
        return ChangeBatch(events=events, deleted=(), cursor=new_cursor, full=True)

    def _events(self, body: bytes, covered: TimeSpan) -> tuple[Event, ...]:
        feed = _wire.parse_feed(body)
        events = feed.events(covered, self._default_timezone)
        return tuple(sorted(events, key=lambda e: (e.span.start, e.provider_id)))

    def _read(self, cursor: _Cursor | None) -> _Read:
        if self._url is not None:
            return self._get(self._url, cursor)
        return _read_file(self._source)

    def _get(self, url: str, cursor: _Cursor | None) -> _Read:
        headers = {"Accept": _ACCEPT}
        if cursor is not None and cursor.etag:
            headers["If-None-Match"] = cursor.etag
        if cursor is not None and cursor.last_modified:
            headers["If-Modified-Since"] = cursor.last_modified
        with self._requests.request():
            response = self._send(url, headers)
            with response:
                return _from_response(response, url, conditional=cursor is not None)

    def _send(self, url: str, headers: dict[str, str]) -> requests.Response:
        try:
            return self._session.get(url, headers=headers, timeout=self._timeout)
        except requests.Timeout as err:
            raise ProviderUnavailableError(
                f"ICS feed {describe_source(url)} timed out after {self._timeout:g} s"
            ) from err
        except requests.RequestException as err:
            raise ProviderUnavailableError(
                f"cannot reach ICS feed {describe_source(url)}: {_reason(err)}"
            ) from err


def _from_response(response: requests.Response, url: str, *, conditional: bool) -> _Read:
    etag = response.headers.get("ETag")
    last_modified = response.headers.get("Last-Modified")
    if response.status_code == 304 and conditional:
        return _Read(None, etag, last_modified)
    if 200 <= response.status_code < 300:
        return _Read(response.content, etag, last_modified)
    raise _http_error(response, describe_source(url))


def _http_error(response: requests.Response, where: str) -> Exception:
    status = f"HTTP {response.status_code} {response.reason or ''}".strip()
    if response.status_code in (401, 403):
        return ProviderAuthError(
            f"ICS feed {where} refused access ({status}): check that the feed URL "
            "and the secret token in it are still valid"
        )
    if response.status_code == 429:
        return RateLimitedError(
            f"ICS feed {where} asked to slow down ({status})",
            _retry_after(response.headers.get("Retry-After")),
        )
    return ProviderUnavailableError(f"ICS feed {where} answered {status}")


def _read_file(path: str) -> _Read:
    try:
        with open(path, "rb") as handle:
            return _Read(handle.read())
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ProviderUnavailableError(f"cannot read {path}: {reason}") from err


def _unchanged(updated: _Cursor) -> ChangeBatch:
    return ChangeBatch((), (), updated.dump(), full=False, unchanged=True)


def _with_validators(cursor: _Cursor, read: _Read) -> _Cursor:
    """``cursor`` with whatever validators this read brought (a 304 may carry a new ETag)."""
    return replace(
        cursor,
        etag=read.etag or (cursor.etag if read.body is None else None),
        last_modified=read.last_modified or (cursor.last_modified if read.body is None else None),
    )


def _http_url(source: str) -> str | None:
    """``source`` as an http(s) URL (webcal:// is https), or None when it is not one."""
    scheme = urlsplit(source).scheme.lower()
    if scheme in ("http", "https"):
        return source
    if scheme in ("webcal", "webcals"):
        return "https" + source[len(scheme) :]
    return None


def describe_source(source: str) -> str:
    """``source`` safe to print: no userinfo, query or fragment, long path tokens hidden.

    Private feed URLs carry their secret in the query (``?token=``) or in a
    long path segment (Google ``private-<hex>``, Outlook, iCloud).
    """
    parts = urlsplit(source)
    if not parts.scheme or not parts.netloc:
        return source
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    segments = [
        "…" if len(segment) > _SECRET_SEGMENT_LENGTH else segment
        for segment in parts.path.split("/")
    ]
    return urlunsplit((parts.scheme, netloc, "/".join(segments), "", ""))


def _source_stem(source: str) -> str:
    """A fallback calendar name: the file name without extension, or the host."""
    described = describe_source(source)
    parts = urlsplit(described)
    stem = PurePosixPath(parts.path if parts.netloc else described).stem
    return stem if stem and stem != "…" else (parts.hostname or described)


def _reason(err: requests.RequestException) -> str:
    """A short, secret-free reason for a connection failure (never the raw URL)."""
    if isinstance(err, requests.exceptions.SSLError):
        return "TLS handshake failed (certificate or protocol)"
    if isinstance(err, requests.exceptions.TooManyRedirects):
        return "too many redirects"
    match = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(err))
    if match:
        return match.group(1).strip()
    return type(err).__name__


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
