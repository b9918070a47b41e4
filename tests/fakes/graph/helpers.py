"""Test-facing helpers of ``FakeGraph``: the directory, the mailboxes, the user at the browser.

``MailboxHelpers`` changes calendars the way another client (or the user in
Outlook) would -- every change goes through the change log, so delta rounds
and subscriptions see it. ``SignInHelpers`` plays the person approving a
device code or consenting in a browser, and the directory revoking grants.
Both are mixins of ``FakeGraph``; they take the server lock themselves.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import Any

from .aad import AuthorizationResponse
from .events import render_event
from .identity import Identity
from .store import Change, GraphUser, Item, Mailbox, Moment, Recurrence, default_props, is_all_day
from .wire import resolve_zone


class MailboxHelpers:
    lock: threading.RLock
    clock: Callable[[], datetime]
    users: list[GraphUser]
    user: GraphUser
    _tenant_id: str
    _mailboxes: dict[str, Mailbox]

    def _changed(self, mailbox: Mailbox, change: Change) -> None:
        raise NotImplementedError

    # --- users and calendars ------------------------------------------------------------------

    def add_user(
        self, upn: str, display_name: str, *, time_zone: str = "UTC", tenant_id: str | None = None
    ) -> GraphUser:
        resolve_zone(time_zone)
        user = GraphUser(
            str(uuid.uuid4()), upn, display_name, tenant_id or self._tenant_id, time_zone
        )
        with self.lock:
            self.users.append(user)
            self._mailboxes[user.oid] = Mailbox(user.oid, user.email, self.clock, self._changed)
        return user

    def user_for_oid(self, oid: str) -> GraphUser:
        return next(u for u in self.users if u.oid == oid)

    def mailbox_for_oid(self, oid: str) -> Mailbox:
        return self._mailboxes[oid]

    def mailbox_for_address(self, address: str) -> Mailbox | None:
        user = next((u for u in self.users if u.upn.lower() == address.lower()), None)
        return None if user is None else self._mailboxes[user.oid]

    def default_calendar_id(self, user: GraphUser | None = None) -> str:
        with self.lock:
            return self._box(user).default_calendar.id

    def add_calendar(
        self, name: str, *, user: GraphUser | None = None, can_edit: bool = True,
        owner: dict[str, str] | None = None,
    ) -> str:  # fmt: skip
        with self.lock:
            return self._box(user).add_calendar(name, can_edit=can_edit, owner=owner).id

    # --- events (helpers act as another client / the user in Outlook) -------------------------

    def add_event(
        self, subject: str, start: Moment, end: Moment, *, calendar_id: str | None = None,
        user: GraphUser | None = None, time_zone: str = "UTC", recurrence: Recurrence | None = None,
        transaction_id: str | None = None, **props: Any,
    ) -> str:  # fmt: skip
        """Store an event (timed: aware datetimes; all-day: dates); returns its immutable id.

        ``props`` use Graph names: ``showAs``, ``sensitivity``, ``isCancelled``,
        ``attendees``, ``responseStatus``, ``location`` ...
        """
        _check_moments(start, end)
        with self.lock:
            box = self._box(user)
            fields = {**default_props(box.owner), "subject": subject, **_props(props)}
            item = box.add_item(
                calendar_id or box.default_calendar.id, _stored(start), _stored(end),
                resolve_zone(time_zone), fields, recurrence=recurrence,
                transaction_id=transaction_id,
            )  # fmt: skip
            return item.key

    def update_event(
        self, event_id: str, *, start: Moment | None = None, end: Moment | None = None,
        user: GraphUser | None = None, **props: Any,
    ) -> None:  # fmt: skip
        """Change a single event or a whole series (times and/or Graph-named properties)."""
        with self.lock:
            box, item = self._item(event_id, user)
            changes: dict[str, Any] = {"props": _props(props)}
            if start is not None:
                changes["start"] = _stored(start)
            if end is not None:
                changes["end"] = _stored(end)
            _check_moments(changes.get("start", item.start), changes.get("end", item.end))
            box.update_item(item, **changes)

    def cancel_event(self, event_id: str, *, user: GraphUser | None = None) -> None:
        """The organizer cancelled the meeting: the attendee's copy stays, ``isCancelled`` true."""
        self.update_event(event_id, user=user, isCancelled=True)

    def delete_event(self, event_id: str, *, user: GraphUser | None = None) -> None:
        with self.lock:
            box, item = self._item(event_id, user)
            box.delete_item(item)

    def move_event(self, event_id: str, calendar_id: str, *, user: GraphUser | None = None) -> None:
        """Move to another calendar; the REST id changes (the immutable id does not)."""
        with self.lock:
            box, item = self._item(event_id, user)
            box.move_item(item, calendar_id)

    def occurrence_id(
        self, series_id: str, original_start: Moment, *, immutable: bool = True
    ) -> str:
        with self.lock:
            box, item = self._item(series_id, None)
            instance = box.occurrence(item, _stored(original_start))
            return instance.key if immutable else instance.rest_id

    def cancel_occurrence(
        self, series_id: str, original_start: Moment, *, user: GraphUser | None = None
    ) -> None:
        with self.lock:
            box, item = self._item(series_id, user)
            original = self._original(box, item, original_start)
            box.cancel_occurrence(item, original)

    def update_occurrence(
        self, series_id: str, original_start: Moment, *, start: Moment | None = None,
        end: Moment | None = None, user: GraphUser | None = None, **props: Any,
    ) -> str:  # fmt: skip
        """Make (or change) an exception: e.g. move one occurrence. Returns its id."""
        with self.lock:
            box, item = self._item(series_id, user)
            original = self._original(box, item, original_start)
            changes: dict[str, Any] = {"props": _props(props)}
            if start is not None:
                changes["start"] = _stored(start)
            if end is not None:
                changes["end"] = _stored(end)
            return box.update_occurrence(item, original, **changes)

    def event(self, event_id: str, *, user: GraphUser | None = None) -> dict[str, Any] | None:
        """A stored event (single, series master or occurrence): Graph JSON in UTC + calendarId."""
        with self.lock:
            box = self._box(user)
            hit = box.resolve(event_id)
            if hit is None:
                return None
            item, original = hit
            instance = box.master(item) if original is None else box.occurrence(item, original)
            return render_event(instance) | {"calendarId": item.calendar_id}

    def events(
        self, calendar_id: str | None = None, *, user: GraphUser | None = None
    ) -> list[dict[str, Any]]:
        """Stored items (singles and series masters) of one calendar, as Graph JSON in UTC."""
        with self.lock:
            box = self._box(user)
            wanted = calendar_id or box.default_calendar.id
            return [
                render_event(box.master(i)) for i in box.items.values() if i.calendar_id == wanted
            ]

    def calendar_view(
        self, start: datetime, end: datetime, calendar_id: str | None = None,
        *, user: GraphUser | None = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """What calendarView would list for [start, end), as Graph JSON in UTC."""
        _check_moments(start, end)
        with self.lock:
            box = self._box(user)
            found = box.instances(calendar_id or box.default_calendar.id, start, end).values()
            return [render_event(i) for i in sorted(found, key=lambda i: (str(i.start), i.key))]

    def _box(self, user: GraphUser | None) -> Mailbox:
        return self._mailboxes[(user or self.user).oid]

    def _item(self, event_id: str, user: GraphUser | None) -> tuple[Mailbox, Item]:
        box = self._box(user)
        hit = box.resolve(event_id)
        if hit is None or hit[1] is not None:
            raise KeyError(f"no stored event or series {event_id!r}")
        return box, hit[0]

    @staticmethod
    def _original(box: Mailbox, item: Item, original_start: Moment) -> Moment:
        original = _stored(original_start)
        if not box.is_occurrence(item, original):
            raise KeyError(f"{original_start!r} is not an occurrence of the series")
        return original


class SignInHelpers:
    lock: threading.RLock
    user: GraphUser
    identity: Identity

    # --- identity: the user at the browser ----------------------------------------------------

    def approve_device_code(
        self,
        user_code: str,
        *,
        granted_scopes: list[str] | None = None,
        user: GraphUser | None = None,
    ) -> None:
        """The user typed ``user_code`` and consented (to ``granted_scopes``, default: as asked)."""
        with self.lock:
            code = self.identity.device_code(user_code)
            code.status, code.user = "approved", user or self.user
            self.identity.grant(code.user, code.client_id, code.scope, granted_scopes)

    def decline_device_code(self, user_code: str) -> None:
        with self.lock:
            self.identity.device_code(user_code).status = "declined"

    def expire_device_code(self, user_code: str) -> None:
        with self.lock:
            self.identity.device_code(user_code).status = "expired"

    def slow_down_device_code(self, user_code: str, times: int = 1) -> None:
        """Answer the next ``times`` polls with ``slow_down`` (MSAL adds 5 s to its interval)."""
        with self.lock:
            self.identity.device_code(user_code).slow_downs += times

    def wait_for_device_code_poll(
        self, user_code: str, polls: int = 1, timeout: float = 5.0
    ) -> int:
        with self.lock:
            code = self.identity.device_code(user_code)
            if not self.identity.polled.wait_for(lambda: code.polls >= polls, timeout):
                raise TimeoutError(f"device code polled {code.polls} times, wanted {polls}")
            return code.polls

    def consent(
        self, auth_url: str, *, user: GraphUser | None = None,
        granted_scopes: list[str] | None = None, deny: bool = False,
    ) -> AuthorizationResponse:  # fmt: skip
        """Sign in at ``auth_url`` (MSAL's authorize URL) and get the redirect back.

        MSAL >= 1.3x asks for ``response_mode=form_post`` and its loopback
        listener rejects a GET with a code, so ``deliver()`` POSTs the form in
        that mode; ``url`` is the query-style redirect for ``response_mode=query``.
        """
        with self.lock:
            return self.identity.consent(auth_url, user or self.user, granted_scopes, deny)

    def revoke_refresh_tokens(self, code: int = 70008, *, user: GraphUser | None = None) -> None:
        """Refreshes now fail with ``invalid_grant`` and ``AADSTS<code>`` (70008, 50173...)."""
        with self.lock:
            for token in self.identity.refresh_tokens.values():
                if user is None or token.user.oid == user.oid:
                    token.revoked = code

    def expire_access_tokens(self, *, user: GraphUser | None = None) -> None:
        """Graph now answers 401 ``InvalidAuthenticationToken`` to every issued access token."""
        with self.lock:
            for token in self.identity.access_tokens.values():
                if user is None or token.user.oid == user.oid:
                    token.revoked = True

    def mint_access_token(
        self, scopes: Iterable[str] = ("Calendars.ReadWrite", "User.Read"), *,
        user: GraphUser | None = None, client_id: str = "fake-client",
    ) -> str:  # fmt: skip
        """An access token without a sign-in flow, for tests about Graph alone."""
        with self.lock:
            return self.identity.mint(list(scopes), user or self.user, client_id)


def _stored(value: Moment) -> Moment:
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def _check_moments(start: Moment, end: Moment) -> None:
    for value in (start, end):
        if isinstance(value, datetime) and value.tzinfo is None:
            raise ValueError("event times must be aware datetimes (or dates for all-day events)")
        if not isinstance(value, datetime | date):
            raise TypeError(f"not a datetime or date: {value!r}")
    if is_all_day(start) != is_all_day(end) or end < start:
        raise ValueError("start and end must both be dates or both datetimes, end >= start")


def _props(props: dict[str, Any]) -> dict[str, Any]:
    known = set(default_props({"name": "", "address": ""}))
    unknown = set(props) - known
    if unknown:
        raise TypeError(f"unknown event properties {sorted(unknown)} (use Graph names)")
    if isinstance(props.get("location"), str):
        props = {**props, "location": {"displayName": props["location"], "locationType": "default"}}
    return props
