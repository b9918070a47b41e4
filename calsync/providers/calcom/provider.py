"""The Cal.com adapter: API v2 over an injected ``requests`` session (v1 is discontinued).

Calendars: ``bookings`` is every booking of the account's user, whatever the
event type: the user's busy time (``check = ["acct:bookings"]``; listed first,
as primary). An event type, by id (``"101"``) or slug (``"intro-call"``), is
that type's bookings when checked, and where bookings go as ``book_into``.

Sync: a full pass lists the bookings overlapping the window, paged with
``take``/``skip`` in creation order, statuses filtered here (both keep the
pages still while bookings change). The cursor is JSON ``{since, full_at,
seen}``; an incremental pass asks for bookings updated or created (Cal.com
may leave ``updatedAt`` null on create) since ``since - OVERLAP`` and skips
those already applied (``seen``), so a quiet account is ``unchanged``.
Cancelled, rejected, rescheduled-away and moved-out bookings are deletions;
every ``FULL_EVERY`` a full pass repairs drift. With ``honour_slots`` an
event-type calendar also reads ``GET /v2/slots`` over the window on every
(then always full) pass, and the gaps between offered slots become opaque
busy events ``slots:<start>``: Cal.com's hours, notice and limits, cached.

Writes carry calsync's booking id and idempotency key in ``metadata``; after a
timeout or 5xx, and on "slot taken", the booking is looked up by it, so a
retry cannot book twice. A reschedule makes a new Cal.com booking whose refs
(new uid) are returned; cancel and reschedule follow ``rescheduledToUid``.

Every request sends ``Authorization: Bearer <key>`` and its endpoint family's
``cal-api-version`` (``VERSIONS``; ``/me`` takes any), has a timeout, passes
the account's rate limiter and the retrier, is counted by outcome, and fails
only with calsync errors.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import requests

from calsync.clock import Clock, SystemClock
from calsync.errors import (
    ConflictError,
    InputError,
    NotFoundError,
    ProviderAuthError,
    ProviderDataError,
    ProviderUnavailableError,
    SlotUnavailableError,
)
from calsync.model import Event, TimeSpan
from calsync.providers.base import BookingDraft, CalendarInfo, Capability, ChangeBatch
from calsync.providers.calcom import _errors, _wire
from calsync.providers.calcom._wire import ALL_BOOKINGS
from calsync.providers.calcom.ratelimit import RateLimiter
from calsync.providers.counting import Observe, RequestCounter
from calsync.providers.retry import Retrier

DEFAULT_ENDPOINT = "https://api.cal.com/v2"
VERSIONS = {"bookings": "2024-08-13", "slots": "2024-09-04", "event-types": "2024-06-14"}
PAGE_SIZE = 100  # Cal.com allows 1..250
MAX_PAGES = 1000
FULL_EVERY = timedelta(hours=6)
OVERLAP = timedelta(minutes=2)
SLACK = timedelta(days=1)  # afterStart/beforeEnd select contained bookings: widen, then clip
MAX_HOPS = 10  # rescheduledToUid links followed at most


class CalcomProvider:
    capabilities = frozenset({Capability.BOOK, Capability.FREE_BUSY})

    def __init__(
        self,
        api_key: Callable[[], str],
        *,
        account: str,
        session: requests.Session,
        default_timezone: ZoneInfo,
        endpoint: str | None = None,
        include_pending: bool = True,
        honour_slots: bool = False,
        clock: Clock | None = None,
        timeout: float = 30.0,
        retrier: Retrier | None = None,
        limiter: RateLimiter | None = None,
        page_size: int = PAGE_SIZE,
        observe: Observe | None = None,
    ) -> None:
        self._load_key = api_key  # read again after Cal.com refused it
        self._key: str | None = None
        self._account = account
        self._session = session
        self._zone = default_timezone
        self._endpoint = (endpoint or DEFAULT_ENDPOINT).rstrip("/")
        self._include_pending = include_pending
        self._honour_slots = honour_slots
        self._clock = clock or SystemClock()
        self._timeout = timeout
        self._retry = retrier or Retrier(concurrency=4)
        self._limiter = limiter or RateLimiter()
        self._requests = RequestCounter("calcom", observe)
        self._page_size = page_size
        self._lock = threading.Lock()
        self._user: dict[str, Any] | None = None
        self._types: dict[int, dict[str, Any]] = {}

    # --- reading ---------------------------------------------------------------------

    def list_calendars(self) -> list[CalendarInfo]:
        """``bookings`` (all of them), then the user's event types."""
        types = self._load_event_types()
        infos = [_wire.all_bookings_info(self._me(), self._zone)]
        return infos + [_wire.calendar_info(t) for t in types]

    def fetch_changes(self, calendar: str, cursor: str | None, window: TimeSpan) -> ChangeBatch:
        scope = self._scope(calendar)
        now = self._clock.now()
        state = _wire.Cursor.parse(cursor) if cursor else None
        slots = self._honour_slots and calendar != ALL_BOOKINGS
        if state is None or slots or now - state.full_at >= FULL_EVERY:
            return self._full_pass(calendar if slots else None, scope, window, now)
        return self._incremental_pass(scope, window, state)

    def free_busy(self, calendars: list[str], span: TimeSpan) -> list[TimeSpan]:
        """Live busy time: for ``bookings`` the bookings themselves; for an event type the
        parts of ``span`` that no slot Cal.com offers right now covers (``GET /v2/slots``),
        i.e. booked time and time outside the type's availability alike."""
        busy: list[TimeSpan] = []
        for calendar in calendars:
            if calendar == ALL_BOOKINGS:
                items = self._bookings(_wire.overlapping(span, SLACK))
                busy += [
                    e.span for e in (_wire.to_event(i) for i in items if _wire.blocks(i, True))
                ]
                continue
            offered = self._slots(self._event_type_id(calendar), span.widen(SLACK, timedelta(0)))
            busy += _wire.uncovered(offered, span)
        return sorted(b for b in busy if b.overlaps(span))

    # --- writing ---------------------------------------------------------------------

    def book(self, calendar: str, draft: BookingDraft, idempotency_key: str) -> Mapping[str, Any]:
        """Book ``draft`` into the event type ``calendar``; refs ``{uid, event_type_id, id}``."""
        type_id = self._event_type_id(calendar)
        length = self._length(type_id, draft)
        body = _wire.booking_body(draft, type_id, length, idempotency_key)
        interrupted = False

        def attempt() -> Any:
            nonlocal interrupted
            if interrupted:  # the last try may have got through: look before booking again
                found = self._find_ours(type_id, draft, idempotency_key, direct=True)
                if found is not None:
                    return found
            try:
                return self._request("POST", "/bookings", body=body, writing=True)["data"]
            except ProviderUnavailableError:
                interrupted = True
                raise

        try:
            created = self._retry(attempt)
        except SlotUnavailableError:  # perhaps by our own booking, from an earlier call
            created = self._find_ours(type_id, draft, idempotency_key)
            if created is None:
                raise
        return _wire.refs(created)

    def cancel(self, calendar: str, refs: Mapping[str, Any]) -> None:
        """Cancel; a booking cancelled or deleted already is done, one moved on Cal.com is
        followed to where it went."""
        uid: str | None = str(refs["uid"])
        for _ in range(MAX_HOPS):
            if uid is None:
                return
            try:
                self._call("POST", f"/bookings/{_quoted(uid)}/cancel", body={}, writing=True)
                return
            except NotFoundError:
                return
            except _errors.AlreadyCancelledError:
                uid = self._booking(uid).get("rescheduledToUid")
        raise ProviderDataError(f"Cal.com booking {refs['uid']} was rescheduled too often")

    def reschedule(
        self, calendar: str, refs: Mapping[str, Any], draft: BookingDraft
    ) -> Mapping[str, Any]:
        """Move the booking; Cal.com makes a new one, whose refs (new uid) are returned."""
        uid = str(refs["uid"])
        body = {"start": _wire.utc_text(draft.span.start)}
        for _ in range(MAX_HOPS):
            try:
                moved = self._call(
                    "POST", f"/bookings/{_quoted(uid)}/reschedule", body=body, writing=True
                )
                return _wire.refs(moved["data"])
            except _errors.AlreadyCancelledError:
                successor = self._booking(uid).get("rescheduledToUid")
                if not successor:
                    raise ConflictError(
                        f"the Cal.com booking {uid} was cancelled on Cal.com; "
                        "make a new booking instead"
                    ) from None
                latest = self._booking(str(successor))
                if _wire.starts_at(latest, draft.span.start):  # our own earlier attempt moved it
                    return _wire.refs(latest)
                uid = str(successor)
        raise ProviderDataError(f"Cal.com booking {refs['uid']} was rescheduled too often")

    # --- sync passes -----------------------------------------------------------------

    def _full_pass(
        self, slots_of: str | None, scope: dict[str, str], window: TimeSpan, now: datetime
    ) -> ChangeBatch:
        items = list(self._bookings({**scope, **_wire.overlapping(window, SLACK)}))
        events = {e.provider_id: e for e in self._events(items, window)}
        if slots_of is not None:
            offered = self._slots(self._event_type_id(slots_of), window)
            gaps = map(_wire.gap_event, _wire.uncovered(offered, window))
            events.update((e.provider_id, e) for e in gaps)
        cursor = _wire.next_cursor(items, _wire.Cursor(now, now), OVERLAP)
        return ChangeBatch(tuple(events.values()), (), cursor.dump(), full=True)

    def _incremental_pass(
        self, scope: dict[str, str], window: TimeSpan, state: _wire.Cursor
    ) -> ChangeBatch:
        bound = _wire.utc_text(state.since - OVERLAP)
        found: dict[str, dict[str, Any]] = {}
        for after in ("afterUpdatedAt", "afterCreatedAt"):
            for item in self._bookings({**scope, after: bound}):
                found[str(item["uid"])] = item
        fresh = [i for i in found.values() if _wire.is_new(i, state)]
        events = list(self._events(fresh, window))
        kept = {e.provider_id for e in events}
        deleted = tuple(str(i["uid"]) for i in fresh if str(i["uid"]) not in kept)
        cursor = _wire.next_cursor(list(found.values()), state, OVERLAP).dump()
        unchanged = not events and not deleted
        return ChangeBatch(tuple(events), deleted, cursor, full=False, unchanged=unchanged)

    def _events(self, items: list[dict[str, Any]], window: TimeSpan) -> Iterator[Event]:
        for item in items:
            if _wire.blocks(item, self._include_pending):
                event = _wire.to_event(item)
                if event.span.overlaps(window):
                    yield event

    # --- lookups ---------------------------------------------------------------------

    def _bookings(
        self, params: dict[str, str], *, direct: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Every booking matching ``params``, page by page (``direct``: no retrier)."""
        fetch = self._request if direct else self._call
        skip = 0
        for _ in range(MAX_PAGES):
            query = {**params, "sortCreated": "asc", "take": str(self._page_size)}
            page = fetch("GET", "/bookings", params={**query, "skip": str(skip)})
            items = page.get("data")
            if not isinstance(items, list):
                raise ProviderDataError("Cal.com answered GET /v2/bookings without a list")
            yield from (i for i in items if isinstance(i, dict) and i.get("uid"))
            skip += len(items)
            more = (page.get("pagination") or {}).get("hasNextPage")
            if not items or more is False or (more is None and len(items) < self._page_size):
                return
        raise ProviderDataError(f"Cal.com sent more than {MAX_PAGES} pages of bookings")

    def _find_ours(
        self, type_id: int, draft: BookingDraft, key: str, *, direct: bool = False
    ) -> dict[str, Any] | None:
        """The booking an earlier attempt made for this draft, found by its metadata."""
        start = draft.span.start
        params = {
            "eventTypeId": str(type_id),
            "afterStart": _wire.utc_text(start),
            "beforeEnd": _wire.utc_text(start + SLACK),
        }
        for item in self._bookings(params, direct=direct):
            if _wire.is_ours(item, draft.booking_id, key):
                return item
        return None

    def _booking(self, uid: str) -> dict[str, Any]:
        data = self._call("GET", f"/bookings/{_quoted(uid)}")["data"]
        if isinstance(data, list):  # a recurring series
            data = next((d for d in data if d.get("uid") == uid), data[0] if data else None)
        if not isinstance(data, dict):
            raise ProviderDataError(f"Cal.com answered GET /v2/bookings/{uid} without a booking")
        return data

    def _slots(self, type_id: int, span: TimeSpan) -> list[TimeSpan]:
        params = {
            "eventTypeId": str(type_id),
            "start": _wire.utc_text(span.start),
            "end": _wire.utc_text(span.end),
            "timeZone": "UTC",
            "slotFormat": "range",
        }
        data = self._call("GET", "/slots", params=params)["data"]
        default, _ = _wire.lengths(self._types.get(type_id, {}))
        return _wire.slot_spans(data, timedelta(minutes=default) if default else None)

    def _me(self) -> dict[str, Any]:
        with self._lock:
            if self._user is not None:
                return self._user
        user = self._call("GET", "/me")["data"]
        if not isinstance(user, dict) or not user.get("username"):
            raise ProviderDataError("Cal.com answered GET /v2/me without a username")
        with self._lock:
            self._user = user
        return user

    def _load_event_types(self) -> list[dict[str, Any]]:
        username = str(self._me()["username"])
        try:
            data = self._call("GET", "/event-types", params={"username": username})["data"]
        except NotFoundError:  # Cal.com answers 404 when a user has none
            data = []
        if not isinstance(data, list):
            raise ProviderDataError("Cal.com answered GET /v2/event-types without a list")
        types = [t for t in data if isinstance(t, dict) and isinstance(t.get("id"), int)]
        with self._lock:
            self._types = {t["id"]: t for t in types}
        return types

    def _event_type_id(self, calendar: str) -> int:
        """The event type a calendar names, by id or slug (slugs are looked up once)."""
        if calendar.isdigit():
            return int(calendar)
        if calendar == ALL_BOOKINGS:
            raise InputError(
                f"Cal.com account {self._account!r}: bookings can only be written into an "
                f"event type; set book_into to {self._account}:<event type id or slug>"
            )
        for attempt in range(2):
            found = [i for i, t in self._types.items() if t.get("slug") == calendar]
            if found:
                return found[0]
            if attempt == 0:
                self._load_event_types()
        raise NotFoundError(
            f"Cal.com account {self._account!r} has no event type {calendar!r}; "
            f"`calsync calendars --account {self._account}` lists them"
        )

    def _scope(self, calendar: str) -> dict[str, str]:
        if calendar == ALL_BOOKINGS:
            return {}
        return {"eventTypeId": str(self._event_type_id(calendar))}

    def _length(self, type_id: int, draft: BookingDraft) -> int | None:
        """``lengthInMinutes`` to send: None for the event type's own length."""
        if type_id not in self._types:
            self._load_event_types()
        return _wire.length_to_send(self._types.get(type_id), draft)

    # --- plumbing --------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        writing: bool = False,
    ) -> dict[str, Any]:
        return self._retry(
            lambda: self._request(method, path, params=params, body=body, writing=writing)
        )

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        writing: bool = False,
    ) -> dict[str, Any]:
        """One attempt: the rate limiter, the request, and its answer as calsync sees it."""
        headers = {"Authorization": f"Bearer {self._api_key()}"}
        version = VERSIONS.get(path.split("/")[1])
        if version:
            headers["cal-api-version"] = version
        with self._requests.request():
            with self._limiter.slot():
                try:
                    response = self._session.request(
                        method, self._endpoint + path, params=params, json=body,
                        headers=headers, timeout=self._timeout,
                    )  # fmt: skip
                except requests.RequestException as err:
                    raise _errors.from_exception(err) from err
            self._limiter.observe(response.headers)
            return self._answer(response, writing)

    def _answer(self, response: requests.Response, writing: bool) -> dict[str, Any]:
        """A response as calsync sees it: the success body, or the calsync error."""
        if response.status_code >= 400:
            error = _errors.from_response(response, self._account, writing=writing)
            if isinstance(error, ProviderAuthError):
                with self._lock:
                    self._key = None  # `calsync auth calcom` may store a new one
            raise error
        return _errors.success(response)

    def _api_key(self) -> str:
        with self._lock:
            if self._key is None:
                self._key = self._load_key()
            return self._key


def _quoted(uid: str) -> str:
    return quote(uid, safe="")
