"""FakeGoogle: Google Calendar API v3 and Google's OAuth endpoints on 127.0.0.1, for tests.

Built from the protocol facts in /work/shared/reference/providers.md section 1
and the discovery document bundled with google-api-python-client, never from
an adapter, so the real client libraries can be pointed at it:

- ``build("calendar", "v3", credentials=..., static_discovery=True,
  client_options={"api_endpoint": google.api_endpoint})``
- ``InstalledAppFlow.from_client_config(google.client_config(), scopes)``; the
  test opens the auth URL on the fake (which consents to everything) or calls
  ``google.consent(auth_url, granted_scopes=...)`` and GETs the redirect
- ``Credentials(**google.user_credentials()).refresh(Request())``

What it checks, in Google's words where the reference gives them: bearer
token (401 ``required``/``authError``), the token's scopes against the
method's discovery scopes (403 ``insufficientPermissions``), query parameter
names, repeats, types, enums and RFC 3339 offsets (400), the ``syncToken``
exclusions (400), client-chosen event ids (400 / 409), event times and
recurrence rules (400), If-Match (412), freeBusy windows (400 over 90 days).

Deliberate simplifications (each is also noted where it is implemented):

- one user; ``primary`` is ``user_email``; calendars come from ``add_calendar``
- default list order is by id (Google: "unspecified, stable"), never by time
- series without an end expand up to ``expansion_horizon`` past the clock when
  no ``timeMax`` bounds them, at most 5000 instances each
- ``fields`` is ignored; unknown body fields are stored, not rejected
- notifications may go to ``http://`` addresses (``require_https_webhooks``
  restores Google's rule); retries use ``push_retry_delays``, not minutes
- not simulated: ``updatedMinTooLongAgo``, ``id_token``, access-role limits
  (a ``reader`` calendar accepts writes), quotas other than injected ones
- where the reference gives no wording (e.g. the 400 for ``syncToken`` with
  ``timeMin``) status, reason and location follow Google's style, text is ours
- methods in the discovery document without a handler answer 501; a crash in
  the fake answers 500 ``fakeGoogleBug`` and fails the ``with`` block on exit
"""

from __future__ import annotations

import copy
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeVar

from tests.fakes.google.api import Backend
from tests.fakes.google.errors import ApiError
from tests.fakes.google.handler import handler_for
from tests.fakes.google.messages import Failure, RecordedRequest, WriteNotice
from tests.fakes.google.oauth import CALENDAR_SCOPE, ConsentError, OAuthClient
from tests.fakes.google.push import Channel, Delivery
from tests.fakes.google.store import CalendarState, EventStore

__all__ = ["CALENDAR_SCOPE", "Channel", "Delivery", "FakeGoogle", "RecordedRequest", "WriteNotice"]


T = TypeVar("T")


def _system_clock() -> datetime:
    return datetime.now(UTC)


class FakeGoogle:
    """A faithful Google Calendar v3 + OAuth server; use as a context manager."""

    def __init__(
        self,
        *,
        user_email: str = "user@example.com",
        time_zone: str = "Europe/Berlin",
        client_id: str = "fake-client.apps.googleusercontent.com",
        client_secret: str = "fake-secret",
        clock: Callable[[], datetime] = _system_clock,
        expansion_horizon: timedelta = timedelta(days=365),
        push_retry_delays: Sequence[float] = (0.05, 0.1, 0.2),
        seed: int = 0,
    ) -> None:
        self.user_email = user_email
        self.client_id = client_id
        self.client_secret = client_secret
        self._backend = Backend(
            owner=user_email,
            client=OAuthClient(client_id, client_secret),
            clock=clock,
            horizon=expansion_horizon,
            retry_delays=tuple(push_retry_delays),
            seed=seed,
        )
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.add_calendar(user_email, summary=user_email, time_zone=time_zone, primary=True)

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> FakeGoogle:
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(self._backend))
        server.daemon_threads = True
        self._server = server
        self._backend.base_url = f"http://127.0.0.1:{server.server_address[1]}"
        self._backend.push.start()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._backend.push.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeGoogle:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        errors = self._backend.internal_errors
        if errors and exc is None:
            raise AssertionError(f"FakeGoogle crashed while serving: {errors}")

    # --- addresses -------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeGoogle is not running; use `with FakeGoogle() as google:`")
        return self._backend.base_url

    @property
    def api_endpoint(self) -> str:
        """For ``client_options={"api_endpoint": ...}``: replaces root + service path."""
        return f"{self.base_url}/calendar/v3/"

    @property
    def token_uri(self) -> str:
        return f"{self.base_url}/token"

    @property
    def auth_uri(self) -> str:
        return f"{self.base_url}/auth"

    @property
    def revoke_uri(self) -> str:
        return f"{self.base_url}/revoke"

    @property
    def primary_calendar_id(self) -> str:
        return self.user_email

    def client_config(self) -> dict[str, Any]:
        """An "installed" client-secrets dict for ``InstalledAppFlow.from_client_config``."""
        return {
            "installed": {
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "auth_uri": self.auth_uri,
                "token_uri": self.token_uri,
                "redirect_uris": ["http://localhost"],
            }
        }

    # --- OAuth helpers ---------------------------------------------------------------

    def consent(
        self, auth_url: str, granted_scopes: Sequence[str] | None = None, *, deny: bool = False
    ) -> str:
        """Play the user on the consent screen for ``auth_url``; returns the redirect URL.

        ``granted_scopes`` (default: all requested) models unticked boxes; ``deny``
        answers ``error=access_denied``. Raises ValueError where Google would show
        an error page instead of redirecting (unknown client, bad redirect_uri, ...).
        """
        with self._backend.lock:
            try:
                granted = None if granted_scopes is None else list(granted_scopes)
                return self._backend.oauth.authorize(auth_url, granted, deny=deny)
            except ConsentError as err:
                raise ValueError(str(err)) from err

    def issue_access_token(self, scopes: Sequence[str] = (CALENDAR_SCOPE,)) -> str:
        """A valid access token (3599 s) with ``scopes``, as if from the token endpoint."""
        with self._backend.lock:
            oauth = self._backend.oauth
            return oauth.issue_access(oauth.new_grant(tuple(scopes), self.client_id))

    def user_credentials(self, scopes: Sequence[str] = (CALENDAR_SCOPE,)) -> dict[str, Any]:
        """Keyword arguments for ``google.oauth2.credentials.Credentials(**...)``: a fresh grant.

        Not for ``Credentials.from_authorized_user_info``: google-auth 2.62 always
        replaces ``token_uri`` there with Google's real endpoint.
        """
        with self._backend.lock:
            oauth = self._backend.oauth
            grant = oauth.new_grant(tuple(scopes), self.client_id)
            access, refresh = oauth.issue_access(grant), oauth.issue_refresh(grant)
        expiry = self._backend.clock().astimezone(UTC) + timedelta(seconds=3599)
        return {
            "token": access,
            "refresh_token": refresh,
            "token_uri": self.token_uri,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "scopes": list(scopes),
            "expiry": expiry.replace(tzinfo=None, microsecond=0),  # google-auth: naive UTC
        }

    def expire_access_tokens(self) -> None:
        """Every access token issued so far now gets 401 ``authError``."""
        with self._backend.lock:
            self._backend.oauth.expire_access_tokens()

    def revoke_refresh_tokens(self) -> None:
        """Every refresh token issued so far now gets 400 ``invalid_grant``."""
        with self._backend.lock:
            self._backend.oauth.revoke_refresh_tokens()

    # --- calendars and events --------------------------------------------------------

    def add_calendar(
        self,
        calendar_id: str,
        *,
        summary: str | None = None,
        time_zone: str = "Europe/Berlin",
        access_role: str = "owner",
        primary: bool = False,
        hidden: bool = False,
        **fields: Any,
    ) -> dict[str, Any]:
        """Add a calendar-list entry (and its calendar); extra ``fields`` go into the entry."""
        entry: dict[str, Any] = {
            "id": calendar_id,
            "summary": summary or calendar_id,
            "timeZone": time_zone,
            "colorId": "14",
            "backgroundColor": "#9fe1e7",
            "foregroundColor": "#000000",
            "selected": True,
            "accessRole": access_role,
            "defaultReminders": [{"method": "popup", "minutes": 10}] if primary else [],
            "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]},
        }
        if primary:
            entry["primary"] = True
        if hidden:
            entry["hidden"] = True
        entry.update(fields)
        with self._backend.lock:
            return copy.deepcopy(self._backend.store.add_calendar(calendar_id, entry))

    def put_event(self, calendar_id: str, event: dict[str, Any]) -> dict[str, Any]:
        """Create or replace an event as another client would (validated like an insert).

        With ``recurringEventId`` + ``originalStartTime`` it writes an exception of
        that series (a moved, modified or ``status: "cancelled"`` instance).
        """
        return self._write(lambda store, cal: store.put(cal, event), calendar_id)

    def move_instance(
        self,
        calendar_id: str,
        master_id: str,
        original_start: dict[str, str],
        *,
        start: dict[str, str],
        end: dict[str, str],
    ) -> dict[str, Any]:
        body = {
            "recurringEventId": master_id,
            "originalStartTime": original_start,
            "start": start,
            "end": end,
        }
        return self.put_event(calendar_id, body)

    def cancel_instance(
        self, calendar_id: str, master_id: str, original_start: dict[str, str]
    ) -> dict[str, Any]:
        body = {
            "recurringEventId": master_id,
            "originalStartTime": original_start,
            "status": "cancelled",
        }
        return self.put_event(calendar_id, body)

    def delete_event(self, calendar_id: str, event_id: str) -> None:
        """Delete like events.delete (a series takes its exceptions with it)."""
        self._write(lambda store, cal: store.delete(cal, event_id), calendar_id)

    def events(self, calendar_id: str, *, include_cancelled: bool = True) -> list[dict[str, Any]]:
        """Stored resources (masters, single events, exceptions, tombstones), by id."""
        with self._backend.lock:
            cal = self._backend.store.calendar(calendar_id)
            records = sorted(cal.records.values(), key=lambda r: r.id)
            return [
                copy.deepcopy(r.resource) for r in records if include_cancelled or not r.cancelled
            ]

    def event(self, calendar_id: str, event_id: str) -> dict[str, Any]:
        """One event as events.get would return it (instances of a series included)."""
        return self._write(lambda store, cal: copy.deepcopy(store.get(cal, event_id)), calendar_id)

    def invalidate_sync_tokens(self, calendar_id: str | None = None) -> None:
        """Make earlier sync tokens of one calendar (or all) answer 410 ``fullSyncRequired``."""
        with self._backend.lock:
            store = self._backend.store
            targets = [store.calendar(calendar_id)] if calendar_id else store.calendars.values()
            for cal in targets:
                cal.epoch += 1

    def _write(self, action: Callable[[EventStore, CalendarState], T], calendar_id: str) -> T:
        with self._backend.lock:
            store = self._backend.store
            try:
                return action(store, store.calendar(calendar_id))
            except ApiError as err:
                raise ValueError(str(err)) from err

    # --- faults and knobs ------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        reason: str | None = None,
        n: int = 1,
        retry_after: int | str | None = None,
        path_contains: str | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next ``n`` matching requests with ``status`` in Google's envelope.

        ``reason`` defaults by status (403/429 ``rateLimitExceeded`` in domain
        ``usageLimits``, 5xx ``backendError``); ``path_contains`` matches the raw
        request target (path and query); without it only API calls match, never
        the OAuth endpoints. Injected failures come before authentication.
        """
        with self._backend.lock:
            self._backend.failures.append(
                Failure(status, reason, message, retry_after, path_contains, n)
            )

    @property
    def page_cap(self) -> int | None:
        """At most this many items per page whatever ``maxResults`` says (short pages)."""
        return self._backend.pager.page_cap

    @page_cap.setter
    def page_cap(self, value: int | None) -> None:
        with self._backend.lock:
            self._backend.pager.page_cap = value

    @property
    def empty_pages(self) -> bool:
        """When true, lists start with an empty page and end with an empty one."""
        return self._backend.pager.empty_pages

    @empty_pages.setter
    def empty_pages(self, value: bool) -> None:
        with self._backend.lock:
            self._backend.pager.empty_pages = value

    @property
    def require_https_webhooks(self) -> bool:
        return self._backend.push.require_https

    @require_https_webhooks.setter
    def require_https_webhooks(self, value: bool) -> None:
        with self._backend.lock:
            self._backend.push.require_https = value

    # --- observation -----------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._backend.lock:
            return list(self._backend.requests)

    @property
    def counts(self) -> Counter[str]:
        """Requests per endpoint: discovery ids (``calendar.events.list``) or ``oauth.*``."""
        with self._backend.lock:
            return Counter(self._backend.counts)

    @property
    def send_updates(self) -> list[WriteNotice]:
        with self._backend.lock:
            return list(self._backend.send_updates)

    @property
    def channels(self) -> list[Channel]:
        with self._backend.lock:
            return [copy.copy(c) for c in self._backend.push.channels.values()]

    @property
    def deliveries(self) -> list[Delivery]:
        return self._backend.push.snapshot()

    def wait_for_push(self, timeout: float = 5.0) -> None:
        """Block until every queued notification was delivered; AssertionError on timeout."""
        if not self._backend.push.wait_idle(timeout):
            raise AssertionError(f"push notifications still pending after {timeout} s")
