"""The Microsoft Outlook adapter: Microsoft Graph v1.0 over an injected ``requests`` session.

Owns the API calls: the calendar list, delta sync over ``calendarView/delta``
(a full round pages through ``@odata.nextLink`` to the ``@odata.deltaLink``,
which is the cursor; a later round GETs it, so an unchanged calendar costs
one request; any 410 means start over), booking writes with a
``transactionId`` derived from the booking (a retried create cannot
duplicate), live free/busy, and change-notification subscriptions.

Every request sends ``Prefer: outlook.timezone="UTC", IdType="ImmutableId",
odata.maxpagesize=N`` (ids survive moves between calendars), has a timeout,
goes through the retrier (at most 4 in flight per mailbox, Graph's limit),
is counted by outcome (the resend after a 401 too) and fails only with
calsync errors. Links from Graph are followed only to the configured
endpoint's origin, so the bearer token goes nowhere else.

Calendar ids are Graph's, plus ``primary`` for the mailbox's default
calendar (``/me/calendarView/delta``, ``/me/calendar/events``, subscription
resource ``/me/events``); ``list_calendars`` lists the default calendar as
``primary``, as the Google adapter does.

Free/busy re-checks read the calendar itself (a one-off ``calendarView``
delta round over the span) instead of ``getSchedule``: getSchedule needs the
mailbox's SMTP address, reports only the default calendar, refuses personal
Microsoft accounts, and caps schedules and windows. Tentative time counts as
busy there (a re-check should rather refuse than double-book).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import requests

from calsync.clock import Clock, SystemClock
from calsync.errors import (
    CalsyncError,
    CursorExpiredError,
    NotFoundError,
    ProviderDataError,
)
from calsync.model import Event, TimeSpan
from calsync.providers.base import (
    BookingDraft,
    CalendarInfo,
    Capability,
    ChangeBatch,
    PushChannel,
)
from calsync.providers.counting import ERROR, OK, THROTTLED, Observe, RequestCounter
from calsync.providers.outlook import _errors, _wire
from calsync.providers.retry import Retrier

DEFAULT_ENDPOINT = "https://graph.microsoft.com/v1.0"
PAGE_SIZE = 200
MAX_PAGES = 10_000
CONCURRENCY = 4  # Graph's per-mailbox limit of concurrent requests
# 4230 minutes: within both the current (10080) and the older documented (4230) maximum
SUBSCRIPTION_LIFETIME = timedelta(minutes=4230)
CHANGE_TYPES = "created,updated,deleted"


class AccessTokens(Protocol):
    """A source of Graph access tokens (``auth.TokenSource``).

    Called once per request; with ``force_refresh=True`` once more after
    Graph refused a token (401), before that becomes a ``ProviderAuthError``.
    """

    def __call__(self, *, force_refresh: bool = False) -> str: ...


class OutlookProvider:
    capabilities = frozenset({Capability.BOOK, Capability.FREE_BUSY, Capability.PUSH})

    def __init__(
        self,
        token: AccessTokens,
        *,
        account: str,
        session: requests.Session,
        default_timezone: ZoneInfo,
        endpoint: str | None = None,
        clock: Clock | None = None,
        timeout: float = 30.0,
        retrier: Retrier | None = None,
        page_size: int = PAGE_SIZE,
        observe: Observe | None = None,
    ) -> None:
        self._token = token
        self._account = account
        self._session = session
        self._zone = default_timezone  # all-day events cover whole days here
        self._endpoint = (endpoint or DEFAULT_ENDPOINT).rstrip("/")
        self._origin = _origin(self._endpoint)
        self._clock = clock or SystemClock()
        self._timeout = timeout
        self._retry = retrier or Retrier(concurrency=CONCURRENCY)
        self._requests = RequestCounter("outlook", observe)
        self._prefer = (
            f'outlook.timezone="UTC", IdType="ImmutableId", odata.maxpagesize={page_size}'
        )

    # --- reading ---------------------------------------------------------------------

    def list_calendars(self) -> list[CalendarInfo]:
        return [_wire.calendar_info(item) for item in self._items(self._url("/me/calendars"))]

    def fetch_changes(self, calendar: str, cursor: str | None, window: TimeSpan) -> ChangeBatch:
        if cursor is None:
            found, link = self._round(self._delta_url(calendar), _window(window), window)
            events = tuple(e for e in found.values() if e is not None)
            return ChangeBatch(events, (), link, full=True)
        found, link = self._round(self._followed(cursor, stored=True), None, window)
        events = tuple(e for e in found.values() if e is not None)
        deleted = tuple(key for key, event in found.items() if event is None)
        return ChangeBatch(events, deleted, link, full=False, unchanged=not found)

    def free_busy(self, calendars: list[str], span: TimeSpan) -> list[TimeSpan]:
        """Live busy time of ``calendars`` over ``span``, read from the calendars themselves."""
        busy: list[TimeSpan] = []
        for calendar in calendars:
            found, _ = self._round(self._delta_url(calendar), _window(span), span)
            busy += [e.span for e in found.values() if e is not None and _wire.blocks(e)]
        return sorted(busy)

    # --- writing ---------------------------------------------------------------------

    def book(self, calendar: str, draft: BookingDraft, idempotency_key: str) -> Mapping[str, Any]:
        """Create the booking's event; a retry with the same booking id returns the same one."""
        url = self._url(f"{_calendar_path(calendar)}/events")
        created = self._call("POST", url, body=_wire.booking_body(draft))
        if "id" not in created:
            raise ProviderDataError("Microsoft Graph created an event without an id")
        return {"event_id": created["id"], "calendar": calendar}

    def cancel(self, calendar: str, refs: Mapping[str, Any]) -> None:
        try:
            self._call("DELETE", self._event_url(refs["event_id"]))
        except NotFoundError:
            return  # already gone: the cancellation is done

    def reschedule(
        self, calendar: str, refs: Mapping[str, Any], draft: BookingDraft
    ) -> Mapping[str, Any]:
        self._call("PATCH", self._event_url(refs["event_id"]), body=_wire.time_body(draft))
        return refs

    # --- push channels ---------------------------------------------------------------

    def open_channel(self, calendar: str, address: str, token: str) -> PushChannel:
        """A Graph subscription; Graph validates ``address`` first (the receiver echoes the
        ``validationToken``), then POSTs changes and lifecycle events there with ``token``
        as ``clientState``."""
        expires = self._clock.now() + SUBSCRIPTION_LIFETIME
        body = {
            "changeType": CHANGE_TYPES,
            "notificationUrl": address,
            "lifecycleNotificationUrl": address,
            "resource": _subscription_resource(calendar),
            "expirationDateTime": _wire.query_time(expires),
            "clientState": token,
        }
        answer = self._call("POST", self._url("/subscriptions"), body=body)
        if "id" not in answer:
            raise ProviderDataError("Microsoft Graph created a subscription without an id")
        return PushChannel(answer["id"], calendar, answer["id"], token, _expiry(answer, expires))

    def close_channel(self, channel: PushChannel) -> None:
        try:
            self._call(
                "DELETE", self._url(f"/subscriptions/{quote(channel.resource_id, safe='=')}")
            )
        except NotFoundError:
            return  # expired or deleted already

    # --- delta rounds ----------------------------------------------------------------

    def _round(
        self, url: str, params: dict[str, str] | None, window: TimeSpan
    ) -> tuple[dict[str, Event | None], str]:
        """One delta round: id -> event (None: gone or outside ``window``), and the deltaLink.

        Partial entries (only the changed properties) are read again in full
        once the round is complete.
        """
        found: dict[str, Event | None] = {}
        partial: set[str] = set()
        for _ in range(MAX_PAGES):
            page = self._call("GET", url, params=params)
            _merge(page.get("value", []), found, partial, self._zone, window)
            link = page.get("@odata.deltaLink")
            if isinstance(link, str):
                for key in partial:
                    found[key] = _within(self._event(key), window)
                return found, link
            url, params = self._next_page(page), None
        raise ProviderDataError(f"Microsoft Graph sent more than {MAX_PAGES} delta pages")

    def _next_page(self, page: dict[str, Any]) -> str:
        link = page.get("@odata.nextLink")
        if not isinstance(link, str):
            raise ProviderDataError("Microsoft Graph ended a delta round without a deltaLink")
        return self._followed(link)

    def _event(self, event_id: str) -> Event | None:
        try:
            item = self._call("GET", self._event_url(event_id))
        except NotFoundError:
            return None
        return _wire.to_event(item, self._zone)

    def _items(self, url: str) -> Iterator[dict[str, Any]]:
        """Every entry of a paged collection."""
        next_url: str | None = url
        while next_url is not None:
            page = self._call("GET", next_url)
            yield from page.get("value", [])
            link = page.get("@odata.nextLink")
            next_url = self._followed(link) if isinstance(link, str) else None

    # --- plumbing --------------------------------------------------------------------

    def _call(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return self._retry(lambda: self._attempt(method, url, params, body))

    def _attempt(
        self, method: str, url: str, params: dict[str, str] | None, body: dict[str, Any] | None
    ) -> dict[str, Any]:
        response = self._send(method, url, params, body, self._token())
        if response.status_code == 401:  # revoked early, or a clock skew: one fresh token
            response = self._send(method, url, params, body, self._token(force_refresh=True))
        if response.status_code >= 400:
            raise _errors.from_response(response, self._account)
        if response.status_code == 204 or not response.content:
            return {}
        try:
            data = response.json()
        except ValueError as err:
            raise ProviderDataError(f"Microsoft Graph answered {method} with no JSON") from err
        if not isinstance(data, dict):
            raise ProviderDataError(f"Microsoft Graph answered {method} with unexpected JSON")
        return data

    def _send(
        self,
        method: str,
        url: str,
        params: dict[str, str] | None,
        body: dict[str, Any] | None,
        token: str,
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}", "Prefer": self._prefer}
        try:
            response = self._session.request(
                method, url, params=params, json=body, headers=headers, timeout=self._timeout
            )
        except requests.RequestException as err:
            self._requests.add(ERROR)
            raise _errors.from_exception(err, self._account) from err
        self._requests.add(_outcome(response))
        return response

    def _url(self, path: str) -> str:
        return self._endpoint + path

    def _delta_url(self, calendar: str) -> str:
        if calendar == _wire.PRIMARY:
            return self._url("/me/calendarView/delta")
        return self._url(f"{_calendar_path(calendar)}/calendarView/delta")

    def _event_url(self, event_id: str) -> str:
        return self._url(f"/me/events/{quote(str(event_id), safe='=')}")

    def _followed(self, link: str, *, stored: bool = False) -> str:
        """A link Graph handed out, if it points at our endpoint (the token goes nowhere else)."""
        if _origin(link) == self._origin:
            return link
        if stored:  # e.g. the endpoint was reconfigured: this cursor is of no use any more
            raise CursorExpiredError(f"the stored deltaLink is not for {self._endpoint}")
        raise ProviderDataError(f"Microsoft Graph sent a link outside {self._endpoint}: refused")


def _outcome(response: requests.Response) -> str:
    if response.status_code < 400:
        return OK
    return THROTTLED if _errors.throttled(response) else ERROR


def _calendar_path(calendar: str) -> str:
    if calendar == _wire.PRIMARY:
        return "/me/calendar"
    return f"/me/calendars/{quote(calendar, safe='=')}"


def _subscription_resource(calendar: str) -> str:
    if calendar == _wire.PRIMARY:
        return "/me/events"
    return f"/me/calendars/{calendar}/events"


def _window(span: TimeSpan) -> dict[str, str]:
    return {
        "startDateTime": _wire.query_time(span.start),
        "endDateTime": _wire.query_time(span.end),
    }


def _merge(
    items: list[dict[str, Any]],
    found: dict[str, Event | None],
    partial: set[str],
    zone: ZoneInfo,
    window: TimeSpan,
) -> None:
    """Fold one page into ``found``; of an id seen twice in a round the last entry wins."""
    for item in items:
        key = _wire.item_id(item)
        found.pop(key, None)  # re-inserted below: keeps the order of last appearance
        partial.discard(key)
        if _wire.is_removed(item):
            found[key] = None
        elif item.get("type") == "seriesMaster":
            continue  # calendarView lists instances; a master has no time of its own
        elif _wire.is_partial(item):
            found[key] = None  # until read in full
            partial.add(key)
        else:
            found[key] = _within(_wire.to_event(item, zone), window)


def _expiry(subscription: dict[str, Any], asked: datetime) -> datetime:
    """When Graph says the subscription ends (it may shorten what was asked for)."""
    try:
        return _wire.instant(str(subscription["expirationDateTime"]))
    except (KeyError, ValueError, CalsyncError):
        return asked


def _within(event: Event | None, window: TimeSpan) -> Event | None:
    return event if event is not None and event.span.overlaps(window) else None


def _origin(url: str) -> tuple[str, str]:
    split = urlsplit(url)
    return split.scheme.lower(), split.netloc.lower()
