"""What Google persists per calendar: events, recurring masters, exceptions and tombstones.

Every write is validated as Google validates it (ids, start/end, zones,
recurrence, enums, If-Match) and stamps the resource with the global change
number ``seq`` that sync tokens are compared with. Deleted events stay as
``status: "cancelled"`` tombstones; moved or cancelled instances of a series
are stored as exceptions keyed by their instance id. Callers hold the fake's
lock. This module does not filter, page or speak HTTP.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from . import recurrence
from .errors import ApiError, deleted, not_found
from .recurrence import Occurrence
from .wire import EVENT_ID, Moment, etag, format_stamp, format_time, new_event_id, parse_moment

ROLES = ("freeBusyReader", "reader", "writerWithoutPrivateAccess", "writer", "owner")
READ_ONLY = ("kind", "etag", "created", "updated", "htmlLink", "creator")
ENUMS = {
    "status": ("confirmed", "tentative", "cancelled"),
    "transparency": ("opaque", "transparent"),
    "visibility": ("default", "public", "private", "confidential"),
    "eventType": (
        "default",
        "birthday",
        "focusTime",
        "fromGmail",
        "outOfOffice",
        "workingLocation",
    ),
}
TIME_FIELDS = ("start", "end", "recurrence")


@dataclass
class Record:
    """One stored resource and the change number of its last write."""

    resource: dict[str, Any]
    seq: int

    @property
    def id(self) -> str:
        return str(self.resource["id"])

    @property
    def cancelled(self) -> bool:
        return self.resource.get("status") == "cancelled"

    @property
    def master_id(self) -> str | None:
        return self.resource.get("recurringEventId")

    @property
    def is_master(self) -> bool:
        return bool(self.resource.get("recurrence")) and self.master_id is None


@dataclass
class CalendarState:
    entry: dict[str, Any]
    entry_seq: int
    records: dict[str, Record] = field(default_factory=dict)
    # master id -> instance id -> originalStartTime, for every instance ever expanded
    known_instances: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    epoch: int = 0  # bumped by invalidate_sync_tokens()

    @property
    def id(self) -> str:
        return str(self.entry["id"])

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.entry["timeZone"])

    @property
    def resource_id(self) -> str:
        return hashlib.sha256(f"events:{self.id}".encode()).hexdigest()[:27]

    def exceptions_of(self, master_id: str) -> dict[str, Record]:
        return {r.id: r for r in self.records.values() if r.master_id == master_id}


class EventStore:
    """All calendars of the one fake user, and the global change counter."""

    def __init__(
        self,
        owner: str,
        clock: Callable[[], datetime],
        horizon: timedelta,
        on_change: Callable[[str], None],
    ) -> None:
        self.owner = owner
        self.clock = clock
        self.horizon = horizon
        self.on_change = on_change
        self.calendars: dict[str, CalendarState] = {}
        self.seq = 0

    # --- calendars -------------------------------------------------------------------

    def add_calendar(self, calendar_id: str, entry: dict[str, Any]) -> dict[str, Any]:
        self.seq += 1
        self.calendars[calendar_id] = CalendarState(entry, self.seq)
        return entry

    def calendar(self, calendar_id: str) -> CalendarState:
        key = self.owner if calendar_id == "primary" else calendar_id
        state = self.calendars.get(key)
        if state is None or state.entry.get("deleted"):
            raise not_found()
        return state

    def horizon_end(self) -> datetime:
        return self.clock().astimezone(UTC) + self.horizon

    # --- reads -----------------------------------------------------------------------

    def get(self, cal: CalendarState, event_id: str) -> dict[str, Any]:
        record = cal.records.get(event_id)
        if record is not None:
            return record.resource
        found = self.resolve_instance(cal, event_id)
        if found is None:
            raise not_found()
        master, occ = found
        return self.instance(cal, master, occ)

    def occurrences(
        self, cal: CalendarState, master: Record, lo: datetime | None, hi: datetime | None
    ) -> list[Occurrence]:
        """Generated occurrences of ``master`` in ``[lo, hi)``; remembered as known instances."""
        res = master.resource
        occs = recurrence.expand(
            res["recurrence"],
            parse_moment(res["start"], "start"),
            parse_moment(res["end"], "end"),
            cal.tz,
            lo,
            hi or self.horizon_end(),
        )
        known = cal.known_instances.setdefault(master.id, {})
        for occ in occs:
            known.setdefault(f"{master.id}_{occ.suffix}", self._original(res, occ, cal.tz))
        return occs

    def instance(self, cal: CalendarState, master: Record, occ: Occurrence) -> dict[str, Any]:
        """The resource Google shows for a generated (unmodified) instance."""
        res = master.resource
        start = parse_moment(res["start"], "start")
        end = parse_moment(res["end"], "end")
        out: dict[str, Any] = {
            "kind": "calendar#event",
            "etag": res["etag"],
            "id": f"{master.id}_{occ.suffix}",
        }
        out.update({k: copy.deepcopy(v) for k, v in res.items() if k not in ("recurrence", "id")})
        out["recurringEventId"] = master.id
        out["originalStartTime"] = self._original(res, occ, cal.tz)
        if start.all_day:
            out["start"] = {"date": occ.original.isoformat()}
            days = recurrence.duration_days(end.utc(cal.tz) - start.utc(cal.tz))
            out["end"] = {"date": (occ.original + days).isoformat()}
        else:
            out["start"] = Moment(None, occ.start, start.tz).render(cal.tz)
            out["end"] = Moment(None, occ.end, end.tz or start.tz).render(cal.tz)
        return out

    @staticmethod
    def _original(res: dict[str, Any], occ: Occurrence, tz: ZoneInfo) -> dict[str, str]:
        if not isinstance(occ.original, datetime):
            return {"date": occ.original.isoformat()}
        zone_name = res["start"].get("timeZone")
        shown = ZoneInfo(zone_name) if zone_name else tz
        original = {"dateTime": format_time(occ.start, shown)}
        if zone_name:
            original["timeZone"] = zone_name
        return original

    def resolve_instance(
        self, cal: CalendarState, event_id: str
    ) -> tuple[Record, Occurrence] | None:
        """The live master and occurrence an unmodified instance id names, if any."""
        master_id, sep, suffix = event_id.rpartition("_")
        master = cal.records.get(master_id) if sep else None
        if master is None or not master.is_master or master.cancelled:
            return None
        when = _suffix_time(suffix)
        if when is None:
            return None
        around = self.occurrences(cal, master, when - timedelta(days=1), when + timedelta(days=1))
        for occ in around:
            if occ.suffix == suffix:
                return master, occ
        return None

    # --- writes (API) ----------------------------------------------------------------

    def insert(self, cal: CalendarState, body: dict[str, Any]) -> dict[str, Any]:
        body = {k: v for k, v in body.items() if k not in READ_ONLY}
        for ignored in ("recurringEventId", "originalStartTime"):
            body.pop(ignored, None)
        event_id = body.pop("id", None) or new_event_id()
        if not isinstance(event_id, str) or not EVENT_ID.fullmatch(event_id):
            raise ApiError(400, "invalid", "Invalid resource id value.")
        if event_id in cal.records:
            raise ApiError(409, "duplicate", "The requested identifier already exists.")
        resource = {"id": event_id, "status": "confirmed", **body}
        return self._changed(cal, self._store(cal, resource, created=None))

    def modify(
        self,
        cal: CalendarState,
        event_id: str,
        body: dict[str, Any],
        *,
        replace: bool,
        if_match: str | None = None,
    ) -> dict[str, Any]:
        """events.patch (``replace=False``) and events.update (``replace=True``)."""
        current = self.get(cal, event_id)
        _check_if_match(current, if_match)
        changes = {k: v for k, v in body.items() if k not in (*READ_ONLY, "id", "iCalUID")}
        changes.pop("recurringEventId", None)
        changes.pop("originalStartTime", None)
        if "eventType" in changes and changes["eventType"] != current.get("eventType"):
            raise ApiError(400, "invalid", "The event type cannot be changed.")
        keep = ("id", "created", "iCalUID", "recurringEventId", "originalStartTime", "sequence")
        base = {k: v for k, v in current.items() if k in keep} if replace else dict(current)
        merged = {**base, **changes}
        merged.setdefault("status", "confirmed")
        merged.setdefault("eventType", current.get("eventType", "default"))
        if any(merged.get(k) != current.get(k) for k in TIME_FIELDS):
            merged["sequence"] = int(current.get("sequence", 0)) + 1
        return self._changed(cal, self._store(cal, merged, created=current.get("created")))

    def delete(self, cal: CalendarState, event_id: str, *, if_match: str | None = None) -> None:
        record = cal.records.get(event_id)
        if record is None:
            found = self.resolve_instance(cal, event_id)
            if found is None:
                master_id = event_id.rpartition("_")[0]
                if event_id in cal.known_instances.get(master_id, {}):
                    raise deleted()
                raise not_found()
            master, occ = found
            instance = self.instance(cal, master, occ)
            _check_if_match(instance, if_match)
            self._store(cal, {**instance, "status": "cancelled"}, created=instance.get("created"))
            self.on_change(cal.id)
            return
        if record.cancelled:
            raise deleted()
        _check_if_match(record.resource, if_match)
        self._cancel(cal, record)
        if record.is_master:
            for exception in cal.exceptions_of(record.id).values():
                if not exception.cancelled:
                    self._cancel(cal, exception)
        self.on_change(cal.id)

    def _cancel(self, cal: CalendarState, record: Record) -> None:
        resource = {**record.resource, "status": "cancelled"}
        self._store(cal, resource, created=resource.get("created"), validate=False)

    # --- writes (test helpers) -------------------------------------------------------

    def put(self, cal: CalendarState, body: dict[str, Any]) -> dict[str, Any]:
        """Create or replace an event as if some other client wrote it (exceptions allowed)."""
        body = copy.deepcopy(body)
        master_id = body.get("recurringEventId")
        if master_id is not None:
            return self._put_exception(cal, master_id, body)
        event_id = body.get("id") or new_event_id()
        if not EVENT_ID.fullmatch(event_id):
            raise ApiError(400, "invalid", "Invalid resource id value.")
        current = cal.records.get(event_id)
        resource = {k: v for k, v in body.items() if k not in READ_ONLY}
        resource = {"id": event_id, "status": "confirmed", **resource}
        if current is not None:
            resource.setdefault("sequence", int(current.resource.get("sequence", 0)) + 1)
        created = current.resource.get("created") if current else None
        return self._changed(cal, self._store(cal, resource, created=created))

    def _put_exception(
        self, cal: CalendarState, master_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        master = cal.records.get(master_id)
        if master is None or not master.is_master:
            raise ApiError(404, "notFound", f"No recurring master {master_id!r}")
        original = parse_moment(body.get("originalStartTime"), "originalStartTime")
        suffix = recurrence.suffix_for(original.day or original.utc(cal.tz))
        instance_id = f"{master_id}_{suffix}"
        current = cal.records.get(instance_id)
        if current is not None:
            base = current.resource
        else:
            found = self.resolve_instance(cal, instance_id)
            if found is None:
                raise ApiError(404, "notFound", f"{instance_id!r} is not an instance of the series")
            base = self.instance(cal, *found)
        resource = {**base, **{k: v for k, v in body.items() if k not in READ_ONLY}}
        resource["id"] = instance_id
        resource["originalStartTime"] = base["originalStartTime"]
        return self._changed(cal, self._store(cal, resource, created=base.get("created")))

    def _changed(self, cal: CalendarState, resource: dict[str, Any]) -> dict[str, Any]:
        self.on_change(cal.id)
        return resource

    # --- stamping --------------------------------------------------------------------

    def _store(
        self,
        cal: CalendarState,
        resource: dict[str, Any],
        *,
        created: str | None,
        validate: bool = True,
    ) -> dict[str, Any]:
        if validate:
            _validate(resource)
        self.seq += 1
        now = format_stamp(self.clock())
        event_id = resource["id"]
        stamped: dict[str, Any] = {
            "kind": "calendar#event",
            "etag": etag(self.seq),
            "id": event_id,
            "status": resource.get("status", "confirmed"),
            "htmlLink": f"https://www.google.com/calendar/event?eid={event_id}",
            "created": created or now,
            "updated": now,
        }
        stamped.update({k: v for k, v in resource.items() if k not in stamped or k == "status"})
        stamped["creator"] = resource.get("creator") or {"email": self.owner, "self": True}
        stamped.setdefault("organizer", {"email": cal.id, "self": True})
        master_id = resource.get("recurringEventId")
        stamped.setdefault("iCalUID", f"{master_id or event_id}@google.com")
        stamped.setdefault("sequence", 0)
        stamped.setdefault("reminders", {"useDefault": True})
        stamped.setdefault("eventType", "default")
        if validate:
            self._normalize_times(cal, stamped)
        _mark_self(stamped, cal.id)
        cal.records[event_id] = Record(stamped, self.seq)
        if stamped.get("recurrence") and master_id is None and stamped["status"] != "cancelled":
            self.occurrences(cal, cal.records[event_id], None, None)
        return stamped

    @staticmethod
    def _normalize_times(cal: CalendarState, resource: dict[str, Any]) -> None:
        for name in ("start", "end"):
            resource[name] = parse_moment(resource[name], name).render(cal.tz)


def _validate(resource: dict[str, Any]) -> None:
    """Google's checks on an event body (after merging, for patch/update)."""
    start = parse_moment(resource.get("start"), "start")
    end = parse_moment(resource.get("end"), "end")
    if start.all_day != end.all_day:
        raise ApiError(
            400, "invalid", "Start and end times must either both be date or both be dateTime."
        )
    utc = ZoneInfo("UTC")
    if end.utc(utc) < start.utc(utc) or (start.all_day and end.utc(utc) == start.utc(utc)):
        raise ApiError(
            400, "timeRangeEmpty", "The specified time range is empty.", domain="calendar"
        )
    for name, allowed in ENUMS.items():
        if name in resource and resource[name] not in allowed:
            raise ApiError(400, "invalid", f"Invalid value for: {name}", location=name)
    lines = resource.get("recurrence")
    if lines and resource.get("recurringEventId") is None:
        if not start.all_day and start.tz is None:
            raise ApiError(400, "required", "Missing time zone definition for start time.")
        try:
            recurrence.check(lines, start)
        except ValueError as err:
            raise ApiError(400, "invalid", "Invalid recurrence rule.") from err
    for attendee in resource.get("attendees") or []:
        if not isinstance(attendee, dict) or not attendee.get("email"):
            raise ApiError(400, "required", "Missing attendee email.")


def _mark_self(resource: dict[str, Any], calendar_id: str) -> None:
    """Google sets ``self: true`` on the attendee whose calendar this is."""
    for attendee in resource.get("attendees") or []:
        if isinstance(attendee, dict) and attendee.get("email") == calendar_id:
            attendee["self"] = True


def _check_if_match(resource: dict[str, Any], if_match: str | None) -> None:
    if if_match is not None and if_match.strip() not in ("*", resource.get("etag")):
        raise ApiError(
            412,
            "conditionNotMet",
            "Precondition Failed",
            location="If-Match",
            location_type="header",
        )


def _suffix_time(suffix: str) -> datetime | None:
    for pattern in ("%Y%m%dT%H%M%SZ", "%Y%m%d"):
        try:
            return datetime.strptime(suffix, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None
