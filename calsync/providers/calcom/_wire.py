"""Cal.com API v2 JSON <-> domain types, and the sync cursor. No HTTP here.

On Cal.com the busy time of an account is its user's bookings: ``accepted``
blocks (confirmed), ``pending`` (awaiting the owner's confirmation) blocks as
tentative when the account counts pending bookings, ``cancelled`` and
``rejected`` never block, nor does a booking rescheduled away
(``rescheduledToUid``: its successor, with a new uid, blocks instead). A
booking's ``uid`` is its event id. Cal.com writes every instant in UTC.

The bookable unit is an event type; calendars are named by its id or slug.
Offered slots (``GET /v2/slots``) turn into busy time by their gaps: what lies
between the offered slots is time Cal.com would not book.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from calsync.errors import CursorExpiredError, InputError, ProviderDataError
from calsync.model import Event, EventStatus, TimeSpan, as_utc
from calsync.providers.base import BookingDraft, CalendarInfo

ALL_BOOKINGS = "bookings"  # the calendar id of every booking of the account
BLOCKING = frozenset({"accepted", "pending"})
BOOKING_ID_KEY = "calsync_booking_id"
IDEMPOTENCY_KEY = "calsync_idempotency_key"


# --- instants -------------------------------------------------------------------------------


def instant(text: str) -> datetime:
    return as_utc(datetime.fromisoformat(text))


def utc_text(moment: datetime) -> str:
    """UTC ISO 8601 with ``Z`` (milliseconds only when there are any), as Cal.com wants it."""
    utc = as_utc(moment)
    if utc.microsecond:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def stamp(item: dict[str, Any]) -> datetime | None:
    """When a booking last changed: ``updatedAt``, or ``createdAt`` while that is null."""
    text = item.get("updatedAt") or item.get("createdAt")
    try:
        return instant(text) if isinstance(text, str) else None
    except ValueError:
        return None


# --- bookings -> events -----------------------------------------------------------------------


def blocks(item: dict[str, Any], include_pending: bool) -> bool:
    if item.get("rescheduledToUid"):
        return False
    status = str(item.get("status", "")).lower()
    return status == "accepted" or (status == "pending" and include_pending)


def to_event(item: dict[str, Any]) -> Event:
    """The busy event of a (blocking) booking."""
    try:
        span = TimeSpan(instant(item["start"]), instant(item["end"]))
    except (KeyError, ValueError, TypeError) as err:
        raise ProviderDataError(
            f"Cal.com booking {item.get('uid')!r} has unreadable times: {err}"
        ) from err
    pending = str(item.get("status", "")).lower() == "pending"
    return Event(
        provider_id=str(item["uid"]),
        span=span,
        status=EventStatus.TENTATIVE if pending else EventStatus.CONFIRMED,
        etag=item.get("updatedAt") or item.get("createdAt"),
        updated=stamp(item),
    )


def event_type_of(item: dict[str, Any]) -> int | None:
    nested = item.get("eventType")
    value = nested.get("id") if isinstance(nested, dict) else item.get("eventTypeId")
    return value if isinstance(value, int) else None


def is_ours(item: dict[str, Any], booking_id: str, key: str) -> bool:
    """Whether a booking is the one calsync wrote for ``booking_id`` with ``key``."""
    metadata = item.get("metadata") or {}
    return (
        isinstance(metadata, dict)
        and metadata.get(BOOKING_ID_KEY) == booking_id
        and metadata.get(IDEMPOTENCY_KEY) == key
        and str(item.get("status", "")).lower() in BLOCKING
    )


def refs(data: Any) -> dict[str, Any]:
    """What calsync stores of a booking: enough to cancel or move it later."""
    item = data[0] if isinstance(data, list) and data else data  # recurring: the first one
    if not isinstance(item, dict) or not item.get("uid"):
        raise ProviderDataError("Cal.com answered a booking write without a booking uid")
    return {"uid": item["uid"], "event_type_id": event_type_of(item), "id": item.get("id")}


# --- writes -----------------------------------------------------------------------------------


def booking_body(
    draft: BookingDraft, event_type_id: int, length: int | None, key: str
) -> dict[str, Any]:
    attendee: dict[str, Any] = {"name": draft.attendee.name, "timeZone": draft.timezone}
    if draft.attendee.email:
        attendee["email"] = draft.attendee.email
    if draft.attendee.phone:
        attendee["phoneNumber"] = draft.attendee.phone
    body: dict[str, Any] = {
        "start": utc_text(draft.span.start),
        "eventTypeId": event_type_id,
        "attendee": attendee,
        "metadata": {BOOKING_ID_KEY: draft.booking_id, IDEMPOTENCY_KEY: key},
    }
    if length is not None:
        body["lengthInMinutes"] = length
    if draft.notes:
        body["bookingFieldsResponses"] = {"notes": draft.notes}
    return body


def minutes(span: TimeSpan) -> int:
    return int(span.duration.total_seconds() // 60)


def length_to_send(event_type: dict[str, Any] | None, draft: BookingDraft) -> int | None:
    """``lengthInMinutes`` for a booking: None for the event type's own length (Cal.com
    refuses the field for types with one length); a length it does not take is refused."""
    wanted = minutes(draft.span)
    if event_type is None:
        return None  # not one of the user's own types (e.g. a team's): Cal.com decides
    default, options = lengths(event_type)
    if wanted == default:
        return None
    if wanted in options:
        return wanted
    allowed = ", ".join(str(m) for m in sorted({*options, *([default] if default else [])}))
    raise InputError(
        f"Cal.com event type {event_type.get('slug') or event_type.get('id')!r} takes bookings "
        f"of {allowed} minutes, not {wanted}; set the duration of {draft.resource_name} to match"
    )


def starts_at(item: dict[str, Any], start: datetime) -> bool:
    """Whether a booking is active and starts at ``start``."""
    try:
        return instant(str(item["start"])) == start and blocks(item, True)
    except (KeyError, ValueError):
        return False


def overlapping(span: TimeSpan, slack: timedelta) -> dict[str, str]:
    """Query bounds that find every booking overlapping ``span``: Cal.com selects bookings
    *inside* ``afterStart``/``beforeEnd``, so they are widened by ``slack`` (longer than any
    booking) and the results clipped afterwards."""
    return {
        "afterStart": utc_text(span.start - slack),
        "beforeEnd": utc_text(span.end + slack),
    }


# --- event types ------------------------------------------------------------------------------


def calendar_info(event_type: dict[str, Any]) -> CalendarInfo:
    title, slug = event_type.get("title") or "", event_type.get("slug") or ""
    length = event_type.get("lengthInMinutes")
    return CalendarInfo(
        id=str(event_type["id"]), name=f"{title} ({slug}, {length} min)", access="writer"
    )


def all_bookings_info(user: dict[str, Any], fallback: ZoneInfo) -> CalendarInfo:
    name = user.get("username") or user.get("email") or "this account"
    return CalendarInfo(
        id=ALL_BOOKINGS,
        name=f"All bookings of {name} (every event type)",
        timezone=user.get("timeZone") or fallback.key,
        access="reader",
        primary=True,
    )


def lengths(event_type: dict[str, Any]) -> tuple[int | None, list[int]]:
    """An event type's default length and its other allowed lengths, in minutes."""
    default = event_type.get("lengthInMinutes")
    options = event_type.get("lengthInMinutesOptions") or []
    return (
        default if isinstance(default, int) else None,
        [o for o in options if isinstance(o, int)],
    )


# --- slots ------------------------------------------------------------------------------------


def slot_spans(data: Any, length: timedelta | None) -> list[TimeSpan]:
    """The offered slots of a ``GET /v2/slots`` answer (a date-keyed map)."""
    if not isinstance(data, dict):
        raise ProviderDataError("Cal.com answered GET /v2/slots without a map of days")
    spans = []
    for day in data.values():
        for slot in day if isinstance(day, list) else ():
            try:
                start = instant(slot["start"])
                end = instant(slot["end"]) if slot.get("end") else None
            except (KeyError, ValueError, TypeError) as err:
                raise ProviderDataError(f"Cal.com sent an unreadable slot: {slot!r}") from err
            if end is None:
                if length is None:
                    raise ProviderDataError("Cal.com sent slots without an end")
                end = start + length
            if end > start:
                spans.append(TimeSpan(start, end))
    return sorted(spans)


def uncovered(spans: Iterable[TimeSpan], bounds: TimeSpan) -> list[TimeSpan]:
    """The parts of ``bounds`` that no span covers, in time order."""
    gaps = []
    position = bounds.start
    for span in sorted(spans):
        if span.start > position:
            gaps.append(TimeSpan(position, min(span.start, bounds.end)))
        position = max(position, span.end)
        if position >= bounds.end:
            break
    if position < bounds.end:
        gaps.append(TimeSpan(position, bounds.end))
    return [g for g in gaps if g.start < bounds.end]


def gap_event(span: TimeSpan) -> Event:
    """Time Cal.com offers no slot in, as an opaque busy event."""
    return Event(provider_id=f"slots:{utc_text(span.start)}", span=span)


# --- the sync cursor --------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """Where an account's booking sync stands.

    ``since``: the newest change applied (Cal.com's clock); ``full_at``: the
    last full pass (ours); ``seen``: uid -> change stamp of the bookings
    changed shortly before ``since``, which the next pass's overlap returns
    again and must skip.
    """

    since: datetime
    full_at: datetime
    seen: dict[str, str] = field(default_factory=dict)

    def dump(self) -> str:
        return json.dumps(
            {"since": utc_text(self.since), "full_at": utc_text(self.full_at), "seen": self.seen},
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def parse(cls, text: str) -> Cursor:
        try:
            raw = json.loads(text)
            seen = raw.get("seen") or {}
            if not isinstance(seen, dict):
                raise TypeError("seen is not a map")
            return cls(instant(raw["since"]), instant(raw["full_at"]), dict(seen))
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise CursorExpiredError(
                f"the stored Cal.com sync cursor is unreadable ({err})"
            ) from err


def is_new(item: dict[str, Any], state: Cursor) -> bool:
    """Whether a booking changed since the cursor's pass applied it."""
    at = stamp(item)
    return at is None or state.seen.get(str(item["uid"])) != utc_text(at)


def next_cursor(items: Iterable[dict[str, Any]], state: Cursor, overlap: timedelta) -> Cursor:
    """The cursor after applying ``items``: ``since`` moves to the newest change seen, and
    ``seen`` keeps the changes the next pass's ``overlap`` will return again."""
    found = {str(i["uid"]): at for i in items if (at := stamp(i)) is not None}
    since = max([state.since, *found.values()])
    seen = {**state.seen, **{uid: utc_text(at) for uid, at in found.items()}}
    kept = {uid: at for uid, at in seen.items() if instant(at) >= since - overlap}
    return Cursor(since, state.full_at, kept)
