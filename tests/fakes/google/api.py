"""The fake's request dispatcher: logging, injected faults, OAuth endpoints, Calendar v3 methods.

For ``/calendar/v3/...`` it finds the method in the discovery document, then
checks the bearer token (401), its scopes against the method's (403), the
query parameters (400), and calls the handler; discovery methods without a
handler answer 501 so a missing feature can never pass for success. It owns
the lock that every handler and test helper runs under. No socket code here.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import random
import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, unquote_plus, urlsplit

from . import discovery, freebusy
from .discovery import SERVICE_PATH, Method
from .errors import ApiError, injected
from .listing import (
    EventsQuery,
    calendar_entries,
    changed_items,
    events_envelope,
    full_items,
    instance_items,
    render,
)
from .messages import (
    Call,
    Failure,
    Handler,
    RecordedRequest,
    Response,
    Route,
    WriteNotice,
)
from .oauth import ConsentError, OAuthClient, OAuthError, OAuthServer, require_scope
from .paging import Pager, fingerprint, mint_sync_token, read_sync_token
from .push import PushHub
from .store import EventStore
from .wire import etag

NO_CONTENT = object()


class Backend:
    """All state of one FakeGoogle and the code that answers its requests."""

    def __init__(
        self,
        *,
        owner: str,
        client: OAuthClient,
        clock: Callable[[], datetime],
        horizon: timedelta,
        retry_delays: tuple[float, ...],
        seed: int,
    ) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.base_url = ""
        self.oauth = OAuthServer(clock, client)
        self.push = PushHub(clock, retry_delays, random.Random(seed))
        self.store = EventStore(owner, clock, horizon, self.push.changed)
        self.pager = Pager()
        self.failures: list[Failure] = []
        self.requests: list[RecordedRequest] = []
        self.counts: Counter[str] = Counter()
        self.send_updates: list[WriteNotice] = []
        self.internal_errors: list[str] = []
        self._handlers: dict[str, Handler] = {
            "calendar.calendarList.list": self._calendar_list,
            "calendar.calendarList.get": self._calendar_list_get,
            "calendar.events.list": self._events_list,
            "calendar.events.instances": self._events_instances,
            "calendar.events.get": self._events_get,
            "calendar.events.insert": self._events_insert,
            "calendar.events.patch": self._events_patch,
            "calendar.events.update": self._events_update,
            "calendar.events.delete": self._events_delete,
            "calendar.events.watch": self._events_watch,
            "calendar.channels.stop": self._channels_stop,
            "calendar.freebusy.query": self._freebusy,
        }

    # --- dispatch ------------------------------------------------------------------------

    def dispatch(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        split = urlsplit(target)
        raw_query, wire_method, wire_body = split.query, method, body
        override = headers.get("x-http-method-override")
        if method == "POST" and override:  # googleapiclient turns GETs over 2 KB into this
            method = override.upper()
            if "x-www-form-urlencoded" in headers.get("content-type", ""):
                raw_query = "&".join(filter(None, [raw_query, body.decode("utf-8", "replace")]))
                body = b""
        query = parse_qs(raw_query, keep_blank_values=True)
        endpoint, route = self._route(method, split.path)
        with self.lock:
            self.requests.append(
                RecordedRequest(wire_method, split.path, query, headers, wire_body, endpoint)
            )
            self.counts[endpoint] += 1
            failure = self._take_failure(f"{split.path}?{raw_query}", split.path)
            if failure is not None:
                return failure
            try:
                return route(raw_query, query, headers, body)
            except ApiError as err:
                pretty = query.get("prettyPrint", ["true"])[-1] != "false"
                return Response.json(err.status, err.body(), err.headers, pretty)
            except OAuthError as err:
                return Response.json(err.status, err.body, _NO_STORE)
            except Exception as err:  # a bug in the fake: answer, and make the test fail later
                self.internal_errors.append(f"{method} {target}: {err!r}")
                error = ApiError(500, "fakeGoogleBug", f"FakeGoogle crashed: {err!r}")
                return Response.json(500, error.body())

    def _route(self, method: str, path: str) -> tuple[str, Route]:
        if path == "/token" and method == "POST":
            return "oauth.token", self._token
        if path == "/auth" and method == "GET":
            return "oauth.auth", self._auth
        if path == "/revoke" and method == "POST":
            return "oauth.revoke", self._revoke
        if path.startswith(SERVICE_PATH):
            found = discovery.match(method, path[len(SERVICE_PATH) :])
            if found is not None:
                api_method, bound = found

                def route(
                    raw: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes
                ) -> Response:
                    return self._api(api_method, Call(bound, {}, None, headers, raw), query, body)

                return api_method.id, route
        return "unknown", _unknown

    def _take_failure(self, target: str, path: str) -> Response | None:
        for failure in self.failures:
            if failure.path_contains is None:
                matches = path.startswith(SERVICE_PATH)
            else:
                matches = failure.path_contains in target
            if not matches:
                continue
            failure.remaining -= 1
            if failure.remaining <= 0:
                self.failures.remove(failure)
            headers = {}
            if failure.retry_after is not None:
                headers["Retry-After"] = str(failure.retry_after)
            if not path.startswith(SERVICE_PATH):
                reason = failure.reason or "internal_failure"
                body = {"error": reason, "error_description": failure.message or "Backend Error"}
                return Response.json(failure.status, body, headers)
            error = injected(failure.status, failure.reason, failure.message)
            return Response.json(failure.status, error.body(), {**error.headers, **headers})
        return None

    # --- OAuth endpoints -----------------------------------------------------------------

    def _token(
        self, raw: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes
    ) -> Response:
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        payload = self.oauth.token(form, _basic_auth(headers.get("authorization")))
        return Response.json(200, payload, _NO_STORE)

    def _auth(
        self, raw: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes
    ) -> Response:
        url = f"{self.base_url}/auth?{raw}"
        try:
            location = self.oauth.authorize(url)
        except ConsentError as err:
            page = f"<html><body><h1>{err}</h1></body></html>".encode()
            return Response(err.status, page, {"Content-Type": "text/html; charset=utf-8"})
        return Response(302, b"", {"Location": location})

    def _revoke(
        self, raw: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes
    ) -> Response:
        form = parse_qs(body.decode("utf-8", "replace"))
        token = (form.get("token") or query.get("token") or [""])[-1]
        self.oauth.revoke(token)
        return Response.json(200, {})

    # --- Calendar API --------------------------------------------------------------------

    def _api(
        self, method: Method, call: Call, query: dict[str, list[str]], body: bytes
    ) -> Response:
        bearer = _bearer(call.headers.get("authorization")) or query.get("oauth_token", [""])[-1]
        token = self.oauth.check(bearer)
        require_scope(token, method.scopes)
        params = discovery.validate_query(method, query)
        handler = self._handlers.get(method.id)
        if handler is None:
            raise ApiError(501, "notImplemented", f"FakeGoogle does not implement {method.id}.")
        call = dataclasses.replace(call, params=params, body=_json_body(body))
        payload = handler(call)
        if payload is NO_CONTENT:
            return Response(204)
        return Response.json(200, payload, pretty=params.get("prettyPrint", True))

    def _calendar_list(self, call: Call) -> Any:
        key = fingerprint("calendarList", "", call.params)
        size = min(int(call.params.get("maxResults", 100)), 250)

        def compute() -> tuple[list[dict[str, Any]], str | None]:
            entries = [_entry(e, self.store) for e in calendar_entries(self.store, call.params)]
            return entries, mint_sync_token("calendarList", "", 0, self.store.seq, [])

        items, next_page, sync = self.pager.page(key, call.params.get("pageToken"), size, compute)
        out: dict[str, Any] = {"kind": "calendar#calendarList", "etag": etag(self.store.seq)}
        out.update(_continuation(next_page, sync))
        out["items"] = items
        return out

    def _calendar_list_get(self, call: Call) -> Any:
        return _entry(self.store.calendar(call.bound["calendarId"]).entry, self.store)

    def _events_list(self, call: Call) -> Any:
        cal = self.store.calendar(call.bound["calendarId"])
        q = EventsQuery.parse(call.params)
        since = None
        if q.sync_token is not None:  # checked on every page: invalidation bites mid-paging too
            since = read_sync_token(
                q.sync_token, "events", cal.id, cal.epoch, self.store.seq, q.shape
            )

        def compute() -> tuple[list[dict[str, Any]], str | None]:
            if since is None:
                found = full_items(self.store, cal, q)
            else:
                found = changed_items(self.store, cal, since, q)
            token = mint_sync_token("events", cal.id, cal.epoch, self.store.seq, q.shape)
            return [render(item, cal, q) for item in found], token

        key = fingerprint("events.list", cal.id, call.params)
        items, next_page, sync = self.pager.page(
            key, call.params.get("pageToken"), q.max_results, compute
        )
        out = events_envelope(cal, q, self.store.seq)
        out.update(_continuation(next_page, sync))
        out["items"] = items
        return out

    def _events_instances(self, call: Call) -> Any:
        cal = self.store.calendar(call.bound["calendarId"])
        q = EventsQuery.parse(call.params)

        def compute() -> tuple[list[dict[str, Any]], str | None]:
            found = instance_items(self.store, cal, call.bound["eventId"], q)
            return [render(item, cal, q) for item in found], None

        key = fingerprint("events.instances", f"{cal.id}/{call.bound['eventId']}", call.params)
        items, next_page, _ = self.pager.page(
            key, call.params.get("pageToken"), q.max_results, compute
        )
        out = events_envelope(cal, q, self.store.seq)
        if next_page is not None:
            out["nextPageToken"] = next_page
        out["items"] = items
        return out

    def _events_get(self, call: Call) -> Any:
        cal = self.store.calendar(call.bound["calendarId"])
        q = EventsQuery.parse(
            {k: v for k, v in call.params.items() if k in ("timeZone", "maxAttendees")}
        )
        return render((self.store.get(cal, call.bound["eventId"]), False), cal, q)

    def _events_insert(self, call: Call) -> Any:
        cal = self.store.calendar(call.bound["calendarId"])
        resource = self.store.insert(cal, _object(call.body))
        self._record_updates("insert", cal.id, resource["id"], call.params)
        return resource

    def _events_patch(self, call: Call) -> Any:
        return self._modify(call, replace=False)

    def _events_update(self, call: Call) -> Any:
        return self._modify(call, replace=True)

    def _modify(self, call: Call, *, replace: bool) -> Any:
        cal = self.store.calendar(call.bound["calendarId"])
        resource = self.store.modify(
            cal,
            call.bound["eventId"],
            _object(call.body),
            replace=replace,
            if_match=call.headers.get("if-match"),
        )
        self._record_updates(
            "update" if replace else "patch", cal.id, call.bound["eventId"], call.params
        )
        return resource

    def _events_delete(self, call: Call) -> Any:
        cal = self.store.calendar(call.bound["calendarId"])
        self.store.delete(cal, call.bound["eventId"], if_match=call.headers.get("if-match"))
        self._record_updates("delete", cal.id, call.bound["eventId"], call.params)
        return NO_CONTENT

    def _events_watch(self, call: Call) -> Any:
        calendar_id = call.bound["calendarId"]
        cal = self.store.calendar(calendar_id)
        EventsQuery.parse(call.params)
        uri = f"{self.base_url}{SERVICE_PATH}calendars/{quote(calendar_id, safe='')}/events"
        uri += "?" + (call.query_string or "alt=json")
        return self.push.create(call.body, cal.id, cal.resource_id, uri)

    def _channels_stop(self, call: Call) -> Any:
        self.push.stop(call.body)
        return NO_CONTENT

    def _freebusy(self, call: Call) -> Any:
        return freebusy.query(self.store, call.body)

    def _record_updates(
        self, action: str, calendar_id: str, event_id: str, params: dict[str, Any]
    ) -> None:
        value = params.get("sendUpdates")
        if value is None and "sendNotifications" in params:
            value = "all" if params["sendNotifications"] else "none"
        self.send_updates.append(WriteNotice(action, calendar_id, event_id, value))


_NO_STORE = {
    "Cache-Control": "no-cache, no-store, max-age=0, must-revalidate",
    "Pragma": "no-cache",
}


def _unknown(
    raw: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes
) -> Response:
    return Response.json(404, ApiError(404, "notFound", "Not Found").body())


def _continuation(next_page: str | None, sync: str | None) -> dict[str, str]:
    """Exactly one of nextPageToken (more pages) or nextSyncToken (last page)."""
    if next_page is not None:
        return {"nextPageToken": next_page}
    return {"nextSyncToken": sync} if sync is not None else {}


def _entry(entry: dict[str, Any], store: EventStore) -> dict[str, Any]:
    cal = store.calendars[entry["id"]]
    return {"kind": "calendar#calendarListEntry", "etag": etag(cal.entry_seq), **entry}


def _json_body(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise ApiError(400, "parseError", "Parse Error") from err


def _object(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ApiError(400, "badRequest", "Bad Request")
    return body


def _bearer(value: str | None) -> str | None:
    if value is None:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _basic_auth(value: str | None) -> tuple[str, str] | None:
    if value is None or not value.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(value[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, _, password = decoded.partition(":")
    return unquote_plus(user), unquote_plus(password)
