"""Graph v1.0 URL routing for the fake: which handler, which mailbox, which permission.

Owns: the path table under ``/v1.0`` (``/me`` and ``/users/{id|upn}``,
calendars, calendarView delta, events, getSchedule, subscriptions), the
delegated-permission check per route (403 ``ErrorAccessDenied``), and the
``/me``, ``/me/calendars`` and ``/me/mailboxSettings`` bodies. Unknown
segments get Graph's 400 "Resource not found for the segment". Runs under the
server lock, except subscription creation (its handshake goes outside it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from . import events, schedule
from .aad import AccessToken
from .store import Calendar, Mailbox
from .wire import Incoming, Reply, WireError, json_reply

if TYPE_CHECKING:
    from .server import FakeGraph

READ = frozenset({"Calendars.Read", "Calendars.ReadWrite", "Calendars.Read.Shared",
                  "Calendars.ReadWrite.Shared"})  # fmt: skip
WRITE = frozenset({"Calendars.ReadWrite", "Calendars.ReadWrite.Shared"})
FREE_BUSY = READ | {"Calendars.ReadBasic"}
PROFILE = frozenset({"User.Read", "User.ReadBasic.All"})
SETTINGS = frozenset({"MailboxSettings.Read", "MailboxSettings.ReadWrite"})
_DENIED = "Access is denied. Check credentials and try again."

Handler = Callable[["Call"], Reply]


class Call:
    """One routed Graph request: who, which mailbox, captured path values."""

    def __init__(self, graph: FakeGraph, req: Incoming, token: AccessToken, mailbox: Mailbox):
        self.graph, self.req, self.token, self.mailbox = graph, req, token, mailbox
        self.args: list[str] = []

    def need(self, scopes: frozenset[str]) -> None:
        if not self.token.scopes & scopes:
            raise WireError("ErrorAccessDenied", _DENIED, 403)

    def calendar(self, calendar_id: str | None) -> Calendar:
        if calendar_id is None:
            return self.mailbox.default_calendar
        found = self.mailbox.calendars.get(calendar_id)
        if found is None:
            raise WireError(
                "ErrorItemNotFound", "The specified object was not found in the store.", 404
            )
        return found


def route(graph: FakeGraph, req: Incoming, token: AccessToken) -> Reply:
    segments = [unquote(s) for s in req.path.split("/")[2:] if s]
    if not segments:
        raise WireError("BadRequest", "Invalid request.")
    head = segments[0].lower()
    if head == "subscriptions":
        return _subscriptions(graph, req, token, segments[1:])
    if head == "me":
        mailbox, rest = graph.mailbox_for_oid(token.user.oid), segments[1:]
    elif head == "users" and len(segments) > 1:
        found = graph.mailbox_for_address(segments[1]) or graph.mailbox_for_oid(segments[1])
        if found is None:
            raise WireError(
                "ErrorInvalidUser", f"The requested user '{segments[1]}' is invalid.", 404
            )
        mailbox, rest = found, segments[2:]
        if mailbox.oid != token.user.oid and [s.lower() for s in rest] != [
            "calendar",
            "getschedule",
        ]:
            raise WireError("ErrorAccessDenied", _DENIED, 403)
    else:
        raise WireError("BadRequest", f"Resource not found for the segment '{segments[0]}'.")
    call = Call(graph, req, token, mailbox)
    handler = _match(call, rest)
    return handler(call)


def _match(call: Call, rest: list[str]) -> Handler:
    lowered = [s.lower() for s in rest]
    for pattern, methods in _TABLE:
        if len(pattern) == len(lowered) and all(
            p in ("*", s) for p, s in zip(pattern, lowered, strict=True)
        ):
            call.args = [orig for p, orig in zip(pattern, rest, strict=True) if p == "*"]
            handler = methods.get(call.req.method)
            if handler is None:
                served = f"{call.req.method} {call.req.path}"
                raise WireError("BadRequest", f"FakeGraph does not serve {served}.", 405)
            return handler
    bad = next((s for s in rest if s.lower() not in _WORDS), rest[-1] if rest else "me")
    raise WireError("BadRequest", f"Resource not found for the segment '{bad}'.")


# --- handlers ---------------------------------------------------------------------------------


def _me(call: Call) -> Reply:
    if not call.token.scopes & PROFILE:
        raise WireError(
            "Authorization_RequestDenied", "Insufficient privileges to complete the operation.", 403
        )
    user = call.graph.user_for_oid(call.mailbox.oid)
    given, _, surname = user.display_name.partition(" ")
    return json_reply(200, {
        "@odata.context": f"{call.req.base_url}/v1.0/$metadata#users/$entity",
        "businessPhones": [], "displayName": user.display_name, "givenName": given,
        "jobTitle": None, "mail": user.upn, "mobilePhone": None, "officeLocation": None,
        "preferredLanguage": "en-US", "surname": surname, "userPrincipalName": user.upn,
        "id": user.oid,
    })  # fmt: skip


def _settings(call: Call) -> Reply:
    call.need(SETTINGS)
    user = call.graph.user_for_oid(call.mailbox.oid)
    return json_reply(200, {
        "@odata.context": f"{call.req.base_url}/v1.0/$metadata#users('{user.oid}')/mailboxSettings",
        "timeZone": user.time_zone,
        "workingHours": {
            "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
            "startTime": "08:00:00.0000000", "endTime": "17:00:00.0000000",
            "timeZone": {"name": user.time_zone},
        },
    })  # fmt: skip


def _calendar_json(calendar: Calendar) -> dict[str, Any]:
    return {
        "id": calendar.id, "name": calendar.name, "color": calendar.color, "hexColor": "",
        "isDefaultCalendar": calendar.is_default, "changeKey": calendar.id[-16:],
        "canShare": calendar.can_edit, "canViewPrivateItems": calendar.can_edit,
        "canEdit": calendar.can_edit, "allowedOnlineMeetingProviders": ["teamsForBusiness"],
        "defaultOnlineMeetingProvider": "teamsForBusiness", "isTallyingResponses": True,
        "isRemovable": not calendar.is_default, "owner": calendar.owner,
    }  # fmt: skip


def _calendars(call: Call) -> Reply:
    call.need(READ)
    value = [_calendar_json(c) for c in call.mailbox.calendars.values()]
    context = f"{call.req.base_url}/v1.0/$metadata#users('{call.mailbox.oid}')/calendars"
    return json_reply(200, {"@odata.context": context, "value": value})


def _one_calendar(call: Call) -> Reply:
    call.need(READ)
    return json_reply(200, _calendar_json(call.calendar(call.args[0] if call.args else None)))


def _delta(call: Call) -> Reply:
    call.need(READ)
    calendar = call.calendar(call.args[0] if call.args else None)
    zone, immutable = call.graph.zone(call.req), call.graph.immutable(call.req)
    return call.graph.delta.handle(call.req, call.mailbox, calendar, zone, immutable)


def _create(call: Call) -> Reply:
    call.need(WRITE)
    calendar = call.calendar(call.args[0] if call.args else None)
    zone, imm = call.graph.zone(call.req), call.graph.immutable(call.req)
    return events.create(call.mailbox, calendar, call.req.json(), zone, imm)


def _event_ids(call: Call) -> tuple[str, str | None]:
    if len(call.args) == 2:
        return call.args[1], call.calendar(call.args[0]).id
    return call.args[0], None


def _read_event(call: Call) -> Reply:
    call.need(READ)
    event_id, calendar_id = _event_ids(call)
    zone, imm = call.graph.zone(call.req), call.graph.immutable(call.req)
    return events.read(call.mailbox, event_id, calendar_id, zone, imm)


def _patch_event(call: Call) -> Reply:
    call.need(WRITE)
    event_id, calendar_id = _event_ids(call)
    zone, imm = call.graph.zone(call.req), call.graph.immutable(call.req)
    return events.patch(call.mailbox, event_id, calendar_id, call.req.json(), zone, imm)


def _delete_event(call: Call) -> Reply:
    call.need(WRITE)
    event_id, calendar_id = _event_ids(call)
    return events.delete(call.mailbox, event_id, calendar_id)


def _default_calendar_event_ids(call: Call) -> None:
    call.args = [call.mailbox.default_calendar.id, *call.args]


def _with_default(handler: Handler) -> Handler:
    def wrapped(call: Call) -> Reply:
        _default_calendar_event_ids(call)
        return handler(call)

    return wrapped


def _get_schedule(call: Call) -> Reply:
    call.need(FREE_BUSY)
    return schedule.get_schedule(
        call.graph, call.token.user.oid, call.req, call.graph.zone(call.req)
    )


def _subscriptions(graph: FakeGraph, req: Incoming, token: AccessToken, rest: list[str]) -> Reply:
    if not token.scopes & READ:
        raise WireError(
            "ExtensionError", "Operation: Create; Exception: [Status Code: Forbidden]", 403
        )
    subs, oid = graph.subscription_service, token.user.oid
    if not rest and req.method == "GET":
        return subs.read(req, oid, None)
    if len(rest) == 1:
        method = {"GET": lambda: subs.read(req, oid, rest[0]),
                  "PATCH": lambda: subs.patch(req, oid, rest[0]),
                  "DELETE": lambda: subs.delete(oid, rest[0])}.get(req.method)  # fmt: skip
        if method is not None:
            return method()
    if len(rest) == 2 and rest[1].lower() == "reauthorize" and req.method == "POST":
        return subs.reauthorize(oid, rest[0])
    raise WireError("BadRequest", f"Unsupported request {req.method} {req.path}.", 400)


_EVENT: dict[str, Handler] = {"GET": _read_event, "PATCH": _patch_event, "DELETE": _delete_event}
_TABLE: list[tuple[tuple[str, ...], dict[str, Handler]]] = [
    ((), {"GET": _me}),
    (("mailboxsettings",), {"GET": _settings}),
    (("calendars",), {"GET": _calendars}),
    (("calendars", "*"), {"GET": _one_calendar}),
    (("calendar",), {"GET": _one_calendar}),
    (("calendarview", "delta"), {"GET": _delta}),
    (("calendar", "calendarview", "delta"), {"GET": _delta}),
    (("calendars", "*", "calendarview", "delta"), {"GET": _delta}),
    (("events",), {"POST": _create}),
    (("calendar", "events"), {"POST": _create}),
    (("calendars", "*", "events"), {"POST": _create}),
    (("events", "*"), _EVENT),
    (("calendar", "events", "*"), {k: _with_default(v) for k, v in _EVENT.items()}),
    (("calendars", "*", "events", "*"), _EVENT),
    (("calendar", "getschedule"), {"POST": _get_schedule}),
]
_WORDS = {
    "mailboxsettings",
    "calendars",
    "calendar",
    "calendarview",
    "delta",
    "events",
    "getschedule",
}
