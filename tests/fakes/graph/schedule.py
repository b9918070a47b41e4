"""``POST /me/calendar/getSchedule`` (reference 2.4): free/busy for up to 20 mailboxes.

Owns: request validation (schedule count, window < 62 days, interval 5..1440),
the ``availabilityView`` digit string, ``scheduleItems`` and ``workingHours``,
and per-address errors for unknown mailboxes. With the server's
``personal_account`` knob it fails as the fake's chosen stand-in for "not
supported for personal Microsoft accounts": 500 ``ErrorInternalServerError``.
It must not know about HTTP plumbing, tokens or delta state.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .store import Instance, to_utc_bounds
from .wire import Incoming, Reply, WireError, Zone, format_wall, json_reply, parse_wall

if TYPE_CHECKING:
    from .server import FakeGraph

MAX_WINDOW = timedelta(days=62)
# digit and precedence when items overlap one slot (higher wins)
_STATUS = {"workingElsewhere": ("4", 1), "tentative": ("1", 2), "busy": ("2", 3), "oof": ("3", 4)}


def get_schedule(graph: FakeGraph, caller_oid: str, req: Incoming, zone: Zone) -> Reply:
    if graph.personal_account:
        raise WireError(
            "ErrorInternalServerError",
            "An internal server error occurred. The operation failed.",
            500,
        )
    body = req.json()
    if not isinstance(body, dict):
        raise WireError("RequestBodyRead", "getSchedule needs a JSON object.")
    schedules = body.get("schedules")
    if (
        not isinstance(schedules, list)
        or not schedules
        or not all(isinstance(s, str) for s in schedules)
    ):
        raise WireError("ErrorInvalidParameter", "schedules must be a non-empty list of addresses.")
    if len(schedules) > graph.schedule_limit:
        raise WireError(
            "ErrorMailboxDataArrayTooBig",
            f"The number of mailboxes requested ({len(schedules)}) is too big. "
            f"allowed size = {graph.schedule_limit}",
        )
    lo, hi, interval = _window(body)
    value = [_information(graph, caller_oid, s, lo, hi, interval, zone) for s in schedules]
    context = f"{req.base_url}/v1.0/$metadata#Collection(microsoft.graph.scheduleInformation)"
    return json_reply(200, {"@odata.context": context, "value": value})


def _window(body: dict[str, Any]) -> tuple[datetime, datetime, timedelta]:
    start, end = body.get("startTime"), body.get("endTime")
    if not isinstance(start, dict) or not isinstance(end, dict):
        raise WireError("ErrorInvalidParameter", "startTime and endTime are required.")
    lo = parse_wall(start.get("dateTime"), start.get("timeZone"), "startTime")
    hi = parse_wall(end.get("dateTime"), end.get("timeZone"), "endTime")
    if hi <= lo:
        raise WireError(
            "ErrorInvalidTimeInterval",
            "The time duration specified for FreeBusyViewOptions.TimeWindow is invalid.",
        )
    if hi - lo >= MAX_WINDOW:
        raise WireError(
            "ErrorTimeIntervalTooBig",
            "The requested time interval is too big. allowed limit = 62 days",
        )
    minutes = body.get("availabilityViewInterval", 30)
    if not isinstance(minutes, int) or isinstance(minutes, bool) or not 5 <= minutes <= 1440:
        raise WireError(
            "ErrorInvalidParameter", "availabilityViewInterval must be between 5 and 1440 minutes."
        )
    return lo, hi, timedelta(minutes=minutes)


def _information(
    graph: FakeGraph, caller: str, address: str, lo: datetime, hi: datetime,
    interval: timedelta, zone: Zone,
) -> dict[str, Any]:  # fmt: skip
    mailbox = graph.mailbox_for_address(address)
    if mailbox is None:
        return {
            "scheduleId": address,
            "error": {
                "message": f"Unable to resolve e-mail address {address} to an Active Directory "
                "object.",
                "responseCode": "5009",
            },
        }
    found = mailbox.instances(mailbox.default_calendar.id, lo, hi).values()
    busy = sorted(
        (i for i in found if not i.props["isCancelled"] and i.props["showAs"] in _STATUS),
        key=lambda i: to_utc_bounds(i.start, i.end)[0],
    )
    user = graph.user_for_oid(mailbox.oid)
    return {
        "scheduleId": address,
        "availabilityView": _view(busy, lo, hi, interval),
        "scheduleItems": [_item(i, zone, detailed=mailbox.oid == caller) for i in busy],
        "workingHours": {
            "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
            "startTime": "08:00:00.0000000",
            "endTime": "17:00:00.0000000",
            "timeZone": {"name": user.time_zone},
        },
    }


def _view(busy: list[Instance], lo: datetime, hi: datetime, interval: timedelta) -> str:
    digits = []
    for n in range(math.ceil((hi - lo) / interval)):
        slot_lo, slot_hi = lo + n * interval, min(lo + (n + 1) * interval, hi)
        ranks = [_STATUS[i.props["showAs"]] for i in busy if i.overlaps(slot_lo, slot_hi)]
        digits.append(max(ranks, key=lambda r: r[1])[0] if ranks else "0")
    return "".join(digits)


def _item(instance: Instance, zone: Zone, *, detailed: bool) -> dict[str, Any]:
    props = instance.props
    item: dict[str, Any] = {
        "isPrivate": props["sensitivity"] in ("private", "confidential"),
        "status": props["showAs"],
        "start": format_wall(instance.start, zone),
        "end": format_wall(instance.end, zone),
    }
    if detailed and not item["isPrivate"]:
        item |= {
            "subject": props["subject"],
            "location": props["location"].get("displayName", ""),
            "isMeeting": bool(props["attendees"]),
            "isRecurring": instance.kind != "singleInstance",
            "isException": instance.kind == "exception",
            "isReminderSet": props["isReminderOn"],
        }
    return item
