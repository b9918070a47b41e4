"""Graph's ``event`` resource: rendering stored instances and the create/read/update/delete routes.

Owns: the event JSON shape (reference 2.2: no offset in ``dateTime``, zone per
``Prefer: outlook.timezone``, ids per ``Prefer: IdType``), validation of request
bodies (unknown properties -> ``RequestBodyRead``, unknown zones ->
``TimeZoneNotSupportedException``, all-day values at midnight), ``transactionId``
de-duplication and PATCH/DELETE on occurrences (they become exceptions or are
cancelled). It must not know about HTTP plumbing, tokens or delta state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import quote

from .store import WEEKDAYS, Calendar, Instance, Item, Mailbox, Moment, Recurrence, default_props
from .wire import (
    UTC_ZONE,
    Reply,
    WireError,
    Zone,
    format_timestamp,
    format_wall,
    json_reply,
    parse_wall,
    resolve_zone,
)

SHOW_AS = ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown")
_ENUMS = {
    "showAs": SHOW_AS,
    "sensitivity": ("normal", "personal", "private", "confidential"),
    "importance": ("low", "normal", "high"),
}
_SIMPLE = {
    "subject": str,
    "isOnlineMeeting": bool,
    "isReminderOn": bool,
    "reminderMinutesBeforeStart": int,
    "responseRequested": bool,
    "allowNewTimeProposals": bool,
    "hideAttendees": bool,
    "onlineMeetingProvider": str,
}
_COMPLEX = ("body", "location", "locations", "attendees", "categories", "start", "end")
_OTHER_WRITABLE = ("isAllDay", "transactionId", "recurrence", "originalStartTimeZone")
_READ_ONLY = (
    "id", "@odata.type", "@odata.etag", "@odata.context", "createdDateTime",
    "lastModifiedDateTime", "changeKey", "iCalUId", "uid", "type", "seriesMasterId",
    "isOrganizer", "bodyPreview", "webLink", "isCancelled", "responseStatus", "hasAttachments",
    "onlineMeeting", "onlineMeetingUrl", "originalStart", "isDraft", "organizer",
    "originalEndTimeZone", "occurrenceId",
)  # fmt: skip
KNOWN = set(_ENUMS) | set(_SIMPLE) | set(_COMPLEX) | set(_OTHER_WRITABLE) | set(_READ_ONLY)
MAX_ATTENDEES = 500


# --- rendering --------------------------------------------------------------------------------


def render_event(
    instance: Instance, zone: Zone = UTC_ZONE, *, immutable: bool = True
) -> dict[str, Any]:
    """The event JSON Graph returns for ``instance`` with the given Prefer choices."""
    props = instance.props
    ident = instance.key if immutable else instance.rest_id
    series = instance.series_key if immutable else instance.series_rest_id
    location = props["location"]
    event: dict[str, Any] = {
        "@odata.etag": f'W/"{instance.change_key}"',
        "id": ident,
        "createdDateTime": format_timestamp(instance.created),
        "lastModifiedDateTime": format_timestamp(instance.modified),
        "changeKey": instance.change_key,
        "categories": props["categories"],
        "transactionId": instance.transaction_id,
        "originalStartTimeZone": instance.zone.name,
        "originalEndTimeZone": instance.zone.name,
        "iCalUId": instance.ical_uid,
        "reminderMinutesBeforeStart": props["reminderMinutesBeforeStart"],
        "isReminderOn": props["isReminderOn"],
        "hasAttachments": False,
        "subject": props["subject"],
        "bodyPreview": props["body"].get("content", "")[:255],
        "importance": props["importance"],
        "sensitivity": props["sensitivity"],
        "isAllDay": instance.all_day,
        "isCancelled": props["isCancelled"],
        "isOrganizer": props["responseStatus"]["response"] == "organizer",
        "responseRequested": props["responseRequested"],
        "seriesMasterId": series,
        "showAs": props["showAs"],
        "type": instance.kind,
        "webLink": f"https://outlook.office365.com/owa/?itemid={quote(ident)}&path=/calendar/item",
        "onlineMeetingUrl": None,
        "isOnlineMeeting": props["isOnlineMeeting"],
        "onlineMeetingProvider": props.get("onlineMeetingProvider", "unknown"),
        "allowNewTimeProposals": props["allowNewTimeProposals"],
        "isDraft": False,
        "hideAttendees": props["hideAttendees"],
        "responseStatus": props["responseStatus"],
        "body": props["body"],
        "start": format_wall(instance.start, zone),
        "end": format_wall(instance.end, zone),
        "location": location,
        "locations": [location] if location.get("displayName") else [],
        "recurrence": _render_recurrence(instance),
        "attendees": props["attendees"],
        "organizer": props["organizer"],
        "onlineMeeting": None,
    }
    if instance.original_start is not None:
        start = instance.original_start
        moment = start if isinstance(start, datetime) else datetime.combine(start, time(), UTC)
        event["originalStart"] = f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%S}Z"
    return event


def _render_recurrence(instance: Instance) -> dict[str, Any] | None:
    rule = instance.recurrence
    if rule is None:
        return None
    first = instance.start
    first_day = first.astimezone(instance.zone.tz).date() if isinstance(first, datetime) else first
    kind = "endDate" if rule.until else "numbered" if rule.count else "noEnd"
    return {
        "pattern": {
            "type": rule.freq,
            "interval": rule.interval,
            "month": 0,
            "dayOfMonth": 0,
            "daysOfWeek": list(rule.days_of_week),
            "firstDayOfWeek": "sunday",
            "index": "first",
        },
        "range": {
            "type": kind,
            "startDate": first_day.isoformat(),
            "endDate": (rule.until or date(1, 1, 1)).isoformat(),
            "recurrenceTimeZone": instance.zone.name,
            "numberOfOccurrences": rule.count or 0,
        },
    }


# --- parsing ----------------------------------------------------------------------------------


@dataclass
class Parsed:
    props: dict[str, Any]
    start: datetime | None = None
    end: datetime | None = None
    all_day: bool | None = None
    recurrence: Recurrence | None = None
    has_recurrence: bool = False
    transaction_id: str | None = None


def parse_event(body: Any) -> Parsed:
    """Validate a create/PATCH body into props and times; raises WireError like Graph."""
    if not isinstance(body, dict):
        raise WireError("RequestBodyRead", "An event body must be a JSON object.")
    unknown = sorted(set(body) - KNOWN)
    if unknown:
        raise WireError(
            "RequestBodyRead",
            f"The property '{unknown[0]}' does not exist on type 'microsoft.graph.event'. "
            "Make sure to only use property names that are defined by the type.",
        )
    parsed = Parsed(props={})
    for name, value in body.items():
        _parse_property(parsed, name, value)
    return parsed


def _parse_property(parsed: Parsed, name: str, value: Any) -> None:
    if name in _ENUMS:
        if value not in _ENUMS[name]:
            raise WireError("RequestBodyRead", f"Cannot convert '{value}' to {name}.")
        parsed.props[name] = value
    elif name in _SIMPLE:
        if not isinstance(value, _SIMPLE[name]) or isinstance(value, bool) != (
            _SIMPLE[name] is bool
        ):
            raise WireError("RequestBodyRead", f"Cannot convert the literal '{value}' ({name}).")
        parsed.props[name] = value
    elif name in ("start", "end"):
        if not isinstance(value, dict):
            raise WireError("ErrorInvalidRequest", f"{name} must be a dateTimeTimeZone.")
        setattr(parsed, name, parse_wall(value.get("dateTime"), value.get("timeZone"), name))
    elif name == "isAllDay":
        if not isinstance(value, bool):
            raise WireError("RequestBodyRead", "isAllDay must be a boolean.")
        parsed.all_day = value
    elif name == "transactionId":
        if value is not None and not isinstance(value, str):
            raise WireError("RequestBodyRead", "transactionId must be a string.")
        parsed.transaction_id = value
    elif name == "recurrence":
        parsed.has_recurrence = True
        parsed.recurrence = None if value is None else parse_recurrence(value)
    elif name in _COMPLEX:
        parsed.props[name] = _parse_complex(name, value)


def _parse_complex(name: str, value: Any) -> Any:
    if name == "body":
        if not isinstance(value, dict) or value.get("contentType", "text") not in ("text", "html"):
            raise WireError("RequestBodyRead", "body must be an itemBody (contentType text|html).")
        return {
            "contentType": value.get("contentType", "text"),
            "content": value.get("content", ""),
        }
    if name == "location":
        if not isinstance(value, dict):
            raise WireError("RequestBodyRead", "location must be an object.")
        return {"displayName": str(value.get("displayName", "")), "locationType": "default"}
    if name == "categories":
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            raise WireError("RequestBodyRead", "categories must be a list of strings.")
        return value
    if name == "locations":
        if not isinstance(value, list):
            raise WireError("RequestBodyRead", "locations must be a list.")
        return value
    return _parse_attendees(value)


def _parse_attendees(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise WireError("RequestBodyRead", "attendees must be a list.")
    if len(value) > MAX_ATTENDEES:
        raise WireError(
            "ErrorInvalidRequest", f"An event can have at most {MAX_ATTENDEES} attendees."
        )
    attendees = []
    for one in value:
        address = (one.get("emailAddress") or {}).get("address") if isinstance(one, dict) else None
        kind = one.get("type", "required") if isinstance(one, dict) else None
        if not isinstance(address, str) or "@" not in address:
            raise WireError("ErrorInvalidRecipients", "At least one recipient isn't valid.")
        if kind not in ("required", "optional", "resource"):
            raise WireError("RequestBodyRead", f"Cannot convert '{kind}' to attendeeType.")
        name = one["emailAddress"].get("name", address)
        attendees.append(
            {
                "type": kind,
                "status": {"response": "none", "time": "0001-01-01T00:00:00Z"},
                "emailAddress": {"name": name, "address": address},
            }
        )
    return attendees


def parse_recurrence(value: Any) -> Recurrence:
    pattern = value.get("pattern") if isinstance(value, dict) else None
    span = value.get("range") if isinstance(value, dict) else None
    if not isinstance(pattern, dict) or not isinstance(span, dict):
        raise WireError("ErrorInvalidRequest", "recurrence needs pattern and range.")
    if pattern.get("type") not in ("daily", "weekly"):
        raise WireError(
            "ErrorInvalidRequest",
            f"FakeGraph expands daily and weekly patterns only, not {pattern.get('type')!r}.",
        )
    days = tuple(d.lower() for d in pattern.get("daysOfWeek") or ())
    if any(day not in WEEKDAYS for day in days):
        raise WireError("RequestBodyRead", f"Cannot convert daysOfWeek {days!r}.")
    kind = span.get("type", "noEnd")
    try:
        until = date.fromisoformat(span["endDate"]) if kind == "endDate" else None
    except (KeyError, ValueError) as err:
        raise WireError("ErrorInvalidRequest", "range.endDate is not a valid date.") from err
    count = span.get("numberOfOccurrences") if kind == "numbered" else None
    return Recurrence(pattern["type"], int(pattern.get("interval", 1)), days, count, until)


def to_moments(start: datetime, end: datetime, all_day: bool) -> tuple[Moment, Moment]:
    """Validated stored values: aware UTC datetimes, or dates for all-day events."""
    if all_day:
        if (
            start.timetz().replace(tzinfo=None) != time()
            or end.timetz().replace(tzinfo=None) != time()
        ):
            raise WireError(
                "ErrorInvalidRequest",
                "If isAllDay is true, start and end must be at midnight in their time zone.",
            )
        if end.date() <= start.date():
            raise WireError("ErrorInvalidRequest", "An all-day event must end on a later day.")
        return start.date(), end.date()
    if end < start:
        raise WireError("ErrorInvalidRequest", "The end time must not be before the start time.")
    return start.astimezone(UTC), end.astimezone(UTC)


# --- routes -----------------------------------------------------------------------------------


def create(mailbox: Mailbox, calendar: Calendar, body: Any, zone: Zone, immutable: bool) -> Reply:
    """POST .../events -> 201; a repeated transactionId returns the first event (also 201).

    The reference gives 201 for create and says only that the server
    de-duplicates retried creates; a retry exists because the first answer was
    lost, so it gets the same answer. Once the event is deleted, the id is free.
    """
    parsed = parse_event(body)
    if not calendar.can_edit:
        raise WireError(
            "ErrorAccessDenied", "Access is denied. Check credentials and try again.", 403
        )
    existing = mailbox.transactions.get(parsed.transaction_id or "")
    if existing is not None and existing in mailbox.items:
        return json_reply(201, _entity(mailbox, mailbox.items[existing], zone, immutable))
    if parsed.start is None or parsed.end is None:
        raise WireError("ErrorInvalidRequest", "An event needs both start and end.")
    start, end = to_moments(parsed.start, parsed.end, bool(parsed.all_day))
    props = {**default_props(mailbox.owner), **parsed.props}
    item = mailbox.add_item(
        calendar.id,
        start,
        end,
        resolve_zone(body["start"]["timeZone"]),
        props,
        recurrence=parsed.recurrence,
        transaction_id=parsed.transaction_id,
    )
    return json_reply(201, _entity(mailbox, item, zone, immutable))


def read(mailbox: Mailbox, event_id: str, calendar_id: str | None, zone: Zone, imm: bool) -> Reply:
    item, original = find(mailbox, event_id, calendar_id)
    return json_reply(200, _entity(mailbox, item, zone, imm, original))


def patch(
    mailbox: Mailbox, event_id: str, calendar_id: str | None, body: Any, zone: Zone, imm: bool
) -> Reply:
    item, original = find(mailbox, event_id, calendar_id, for_write=True)
    parsed = parse_event(body)
    if parsed.transaction_id is not None and parsed.transaction_id != item.transaction_id:
        raise WireError("ErrorInvalidRequest", "transactionId cannot be changed after creation.")
    times = _patched_times(item, original, parsed)
    if original is not None:
        changes: dict[str, Any] = {"props": parsed.props}
        if times is not None:
            changes["start"], changes["end"] = times
        mailbox.update_occurrence(item, original, **changes)
    else:
        changes = {"props": parsed.props}
        if times is not None:
            changes["start"], changes["end"] = times
            if parsed.start is not None:
                changes["zone"] = resolve_zone(body["start"]["timeZone"])
        if parsed.has_recurrence:
            changes["recurrence"] = parsed.recurrence
        mailbox.update_item(item, **changes)
    return json_reply(200, _entity(mailbox, item, zone, imm, original))


def delete(mailbox: Mailbox, event_id: str, calendar_id: str | None) -> Reply:
    item, original = find(mailbox, event_id, calendar_id, for_write=True)
    if original is None:
        mailbox.delete_item(item)
    else:
        mailbox.cancel_occurrence(item, original)
    return Reply(204)


def find(
    mailbox: Mailbox, event_id: str, calendar_id: str | None, *, for_write: bool = False
) -> tuple[Item, Moment | None]:
    hit = mailbox.resolve(event_id)
    if hit is None or (calendar_id is not None and hit[0].calendar_id != calendar_id):
        raise WireError(
            "ErrorItemNotFound", "The specified object was not found in the store.", 404
        )
    if for_write and not mailbox.calendars[hit[0].calendar_id].can_edit:
        raise WireError(
            "ErrorAccessDenied", "Access is denied. Check credentials and try again.", 403
        )
    return hit


def _patched_times(
    item: Item, original: Moment | None, parsed: Parsed
) -> tuple[Moment, Moment] | None:
    if parsed.start is None and parsed.end is None and parsed.all_day is None:
        return None
    override = item.overrides.get(original) if original is not None else None
    current_start = override.start if override else original if original is not None else item.start
    current_end = override.end if override else None
    if current_end is None:
        current_end = current_start + (item.end - item.start)  # type: ignore[operator]
    was_all_day = not isinstance(current_start, datetime)
    all_day = was_all_day if parsed.all_day is None else parsed.all_day
    if all_day != was_all_day and (parsed.start is None or parsed.end is None):
        raise WireError("ErrorInvalidRequest", "Changing isAllDay needs both start and end.")
    start = parsed.start or _as_datetime(current_start, item.zone)
    end = parsed.end or _as_datetime(current_end, item.zone)
    return to_moments(start, end, all_day)


def _as_datetime(value: Moment, zone: Zone) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, time(), zone.tz)


def _entity(
    mailbox: Mailbox, item: Item, zone: Zone, immutable: bool, original: Moment | None = None
) -> dict[str, Any]:
    instance = mailbox.master(item) if original is None else mailbox.occurrence(item, original)
    event = render_event(instance, zone, immutable=immutable)
    context = f"https://graph.microsoft.com/v1.0/$metadata#users('{mailbox.oid}')/events/$entity"
    return {"@odata.context": context, **event}
