"""The Google Calendar adapter: google-api-python-client against Calendar v3.

Owns the API calls: calendar list, incremental sync (``singleEvents=true``;
a full pass pages to ``nextSyncToken``, later passes send it; 410 means
start over), booking writes with deterministic ids (a retried insert that
meets 409 ``duplicate`` is success), live free/busy chunked to Google's
limits, and push channels. Credentials and the HTTP transport are injected;
every call has a timeout, goes through the retrier, is counted (each attempt,
by outcome) and fails only with calsync errors.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import google_auth_httplib2
import httplib2
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from calsync.errors import CalsyncError, NotFoundError, ProviderAuthError
from calsync.model import Event, TimeSpan
from calsync.providers.base import (
    BookingDraft,
    CalendarInfo,
    Capability,
    ChangeBatch,
    PushChannel,
)
from calsync.providers.counting import Observe, RequestCounter
from calsync.providers.google import _wire
from calsync.providers.google._errors import reason, translate
from calsync.providers.retry import Retrier

DEFAULT_ENDPOINT = "https://www.googleapis.com/calendar/v3/"
PAGE_SIZE = 2500
FREEBUSY_CHUNK = timedelta(days=60)
FREEBUSY_CALENDARS = 50


class GoogleProvider:
    capabilities = frozenset({Capability.BOOK, Capability.FREE_BUSY, Capability.PUSH})

    def __init__(
        self,
        credentials: Callable[[], Credentials],
        *,
        account: str,
        default_timezone: ZoneInfo,
        endpoint: str | None = None,
        send_updates: str = "none",
        timeout: float = 30.0,
        retrier: Retrier | None = None,
        observe: Observe | None = None,
    ) -> None:
        self._load_credentials = credentials  # read again after an auth failure
        self._credentials: Credentials | None = None
        self._account = account
        self._zone = default_timezone
        self._endpoint = endpoint or DEFAULT_ENDPOINT
        self._send_updates = send_updates
        self._timeout = timeout
        self._retry = retrier or Retrier(concurrency=4)
        self._requests = RequestCounter("google", observe)
        self._local = threading.local()  # httplib2 is not thread-safe: one service per thread
        self._transports: list[httplib2.Http] = []

    # --- reading ---------------------------------------------------------------------

    def list_calendars(self) -> list[CalendarInfo]:
        calendars = []
        for page in self._pages(lambda s, token: s.calendarList().list(pageToken=token)):
            calendars += [
                CalendarInfo(
                    id="primary" if item.get("primary") else item["id"],
                    name=item.get("summaryOverride") or item.get("summary", item["id"]),
                    timezone=item.get("timeZone"),
                    access=item.get("accessRole", "reader"),
                    primary=bool(item.get("primary")),
                )
                for item in page.get("items", [])
            ]
        return calendars

    def fetch_changes(self, calendar: str, cursor: str | None, window: TimeSpan) -> ChangeBatch:
        params: dict[str, Any] = {
            "calendarId": calendar,
            "singleEvents": True,
            "maxResults": PAGE_SIZE,
        }
        if cursor:
            params["syncToken"] = cursor
        else:
            params.update(timeMin=window.start.isoformat(), timeMax=window.end.isoformat())
        events: list[Event] = []
        deleted: list[str] = []
        sync_token = None
        for page in self._pages(lambda s, token: s.events().list(**params, pageToken=token)):
            zone = _wire.zone(page.get("timeZone"), self._zone)
            for item in page.get("items", []):
                event = None if _wire.is_deleted(item) else _wire.to_event(item, zone)
                if event is not None and event.span.overlaps(window):
                    events.append(event)
                else:  # gone, or moved out of the window
                    deleted.append(item["id"])
            sync_token = page.get("nextSyncToken", sync_token)
        if cursor is None:
            return ChangeBatch(tuple(events), (), sync_token, full=True)
        unchanged = not events and not deleted
        return ChangeBatch(tuple(events), tuple(deleted), sync_token, False, unchanged)

    def free_busy(self, calendars: list[str], span: TimeSpan) -> list[TimeSpan]:
        """Live busy time of ``calendars``, asked in chunks Google accepts."""
        busy: list[TimeSpan] = []
        for chunk in _chunks(span, FREEBUSY_CHUNK):
            for group in _groups(calendars, FREEBUSY_CALENDARS):
                body = {
                    "timeMin": chunk.start.isoformat(),
                    "timeMax": chunk.end.isoformat(),
                    "items": [{"id": c} for c in group],
                }
                answer = self._call(_freebusy_query(body))
                busy += _busy_of(answer)
        return sorted(busy)

    # --- writing ---------------------------------------------------------------------

    def book(self, calendar: str, draft: BookingDraft, idempotency_key: str) -> Mapping[str, Any]:
        body = _wire.booking_body(draft)
        try:
            created = self._call(
                lambda s: s.events().insert(
                    calendarId=calendar, body=body, sendUpdates=self._send_updates
                )
            )
        except _Duplicate:  # an earlier attempt got through: that event is ours
            created = self._call(lambda s: s.events().get(calendarId=calendar, eventId=body["id"]))
        return {
            "event_id": created["id"],
            "calendar": calendar,
            "html_link": created.get("htmlLink"),
        }

    def cancel(self, calendar: str, refs: Mapping[str, Any]) -> None:
        try:
            self._call(
                lambda s: s.events().delete(
                    calendarId=calendar, eventId=refs["event_id"], sendUpdates=self._send_updates
                )
            )
        except (_Deleted, NotFoundError):
            return  # already gone: the cancellation is done

    def reschedule(
        self, calendar: str, refs: Mapping[str, Any], draft: BookingDraft
    ) -> Mapping[str, Any]:
        self._call(
            lambda s: s.events().patch(
                calendarId=calendar,
                eventId=refs["event_id"],
                body=_wire.time_body(draft),
                sendUpdates=self._send_updates,
            )
        )
        return refs

    # --- push channels ---------------------------------------------------------------

    def open_channel(self, calendar: str, address: str, token: str) -> PushChannel:
        """An events.watch channel; Google then POSTs to ``address`` on every change."""
        body = {"id": str(uuid.uuid4()), "type": "web_hook", "address": address, "token": token}
        answer = self._call(
            lambda s: s.events().watch(calendarId=calendar, body=body, singleEvents=True)
        )
        expires = datetime.fromtimestamp(int(answer["expiration"]) / 1000, UTC)
        return PushChannel(answer["id"], calendar, answer["resourceId"], token, expires)

    def close_channel(self, channel: PushChannel) -> None:
        body = {"id": channel.id, "resourceId": channel.resource_id}
        try:
            self._call(lambda s: s.channels().stop(body=body))
        except NotFoundError:
            return  # expired or stopped already

    def close(self) -> None:
        """Close the HTTP connections (one per thread that used this provider)."""
        for transport in self._transports:
            transport.close()
        self._transports.clear()

    # --- plumbing --------------------------------------------------------------------

    def _service(self) -> Any:
        if self._credentials is None:
            self._credentials = self._load_credentials()
            self._local = threading.local()
        service = getattr(self._local, "service", None)
        if service is None:
            transport = httplib2.Http(timeout=self._timeout)
            self._transports.append(transport)
            http = google_auth_httplib2.AuthorizedHttp(self._credentials, http=transport)
            service = build(
                "calendar",
                "v3",
                http=http,
                static_discovery=True,
                cache_discovery=False,
                client_options={"api_endpoint": self._endpoint},
            )
            self._local.service = service
        return service

    def _call(self, request: Callable[[Any], Any]) -> Any:
        def attempt() -> Any:
            call = self._prepare(request)
            with self._requests.request():
                return _execute(call, self._account)

        try:
            return self._retry(attempt)
        except ProviderAuthError:
            self._credentials = None  # `calsync auth google` may have written new ones
            raise

    def _prepare(self, request: Callable[[Any], Any]) -> Any:
        """The API request to send (credentials loaded, nothing sent yet)."""
        try:
            return request(self._service())
        except CalsyncError:
            raise
        except Exception as err:
            raise translate(err, self._account) from err

    def _pages(self, request: Callable[[Any, str | None], Any]) -> Iterator[dict[str, Any]]:
        """Every page, each asked with a fresh request (list_next breaks on repeated params)."""
        token: str | None = None
        while True:
            page: dict[str, Any] = self._call(_with_token(request, token))
            yield page
            token = page.get("nextPageToken")
            if not token:
                return


def _execute(call: Any, account: str) -> Any:
    """Send one prepared request; its failures as calsync errors (or the two markers)."""
    try:
        return call.execute()
    except HttpError as err:
        if err.resp.status == 409 and reason(err) == "duplicate":
            raise _Duplicate from err
        if err.resp.status == 410 and reason(err) == "deleted":
            raise _Deleted from err
        raise translate(err, account) from err
    except CalsyncError:
        raise
    except Exception as err:  # RefreshError, transport errors, timeouts
        raise translate(err, account) from err


class _Duplicate(Exception):
    """409 duplicate: an event with that id exists already."""


class _Deleted(Exception):
    """410 deleted: the event was deleted already."""


def _chunks(span: TimeSpan, size: timedelta) -> Iterator[TimeSpan]:
    start = span.start
    while start < span.end:
        end = min(span.end, start + size)
        yield TimeSpan(start, end)
        start = end


def _groups(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _busy_of(answer: dict[str, Any]) -> list[TimeSpan]:
    busy = []
    for calendar_id, info in answer.get("calendars", {}).items():
        if info.get("errors"):
            raise NotFoundError(f"Google freeBusy: calendar {calendar_id!r}: {info['errors']}")
        busy += [
            TimeSpan(_wire.instant(b["start"]), _wire.instant(b["end"]))
            for b in info.get("busy", [])
        ]
    return busy


def _freebusy_query(body: dict[str, Any]) -> Callable[[Any], Any]:
    return lambda service: service.freebusy().query(body=body)


def _with_token(
    request: Callable[[Any, str | None], Any], token: str | None
) -> Callable[[Any], Any]:
    return lambda service: request(service, token)
