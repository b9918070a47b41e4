"""events.list, events.instances and calendarList.list: which items a query returns.

Owns Google's list semantics: ``timeMin`` filters on end and ``timeMax`` on
start (both exclusive), ``singleEvents`` expansion, ``showDeleted``, the
forbidden parameter combinations with ``syncToken``, and incremental results
with ``status: "cancelled"`` stubs. Parameter names and types are already
checked (discovery.py); paging and tokens live in paging.py; the caller holds
the lock.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from .errors import bad_parameter, not_found, time_range_empty
from .paging import read_sync_token
from .store import ROLES, CalendarState, EventStore, Record
from .wire import etag, parse_moment, parse_rfc3339, zone

SYNC_FORBIDDEN = (
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
)
Item = tuple[dict[str, Any], bool]  # (full resource, render as a cancelled stub)


@dataclass(frozen=True)
class EventsQuery:
    single_events: bool = False
    show_deleted: bool = False
    time_min: datetime | None = None
    time_max: datetime | None = None
    event_types: frozenset[str] | None = None
    order_by: str | None = None
    q: str | None = None
    ical_uid: str | None = None
    private_props: tuple[str, ...] = ()
    shared_props: tuple[str, ...] = ()
    updated_min: datetime | None = None
    max_results: int = 250
    max_attendees: int | None = None
    time_zone: ZoneInfo | None = None
    sync_token: str | None = None
    original_start: datetime | None = None

    @classmethod
    def parse(cls, params: dict[str, Any]) -> EventsQuery:
        """Check Google's cross-parameter rules and build the query."""
        if params.get("syncToken") is not None:
            for name in SYNC_FORBIDDEN:
                if name in params:
                    raise bad_parameter(
                        name, f"The parameter {name} cannot be used together with syncToken."
                    )
            if params.get("showDeleted") is False:
                raise bad_parameter(
                    "showDeleted", "showDeleted=false cannot be used with syncToken."
                )
        if params.get("orderBy") == "startTime" and not params.get("singleEvents"):
            raise bad_parameter(
                "orderBy", "The requested ordering is not available for the particular query."
            )
        time_min, time_max = _seconds(params.get("timeMin")), _seconds(params.get("timeMax"))
        if time_min is not None and time_max is not None and time_max <= time_min:
            raise time_range_empty()
        try:
            tz = zone(params["timeZone"]) if "timeZone" in params else None
        except ValueError as err:
            raise bad_parameter("timeZone") from err
        try:
            original = params.get("originalStart")
            original_start = parse_rfc3339(original) if original else None
        except ValueError as err:
            raise bad_parameter("originalStart") from err
        types = params.get("eventTypes")
        return cls(
            single_events=bool(params.get("singleEvents", False)),
            show_deleted=bool(params.get("showDeleted", False)),
            time_min=time_min,
            time_max=time_max,
            event_types=frozenset(types) if types else None,
            order_by=params.get("orderBy"),
            q=params.get("q"),
            ical_uid=params.get("iCalUID"),
            private_props=tuple(params.get("privateExtendedProperty", ())),
            shared_props=tuple(params.get("sharedExtendedProperty", ())),
            updated_min=params.get("updatedMin"),
            max_results=min(int(params.get("maxResults", 250)), 2500),
            max_attendees=params.get("maxAttendees"),
            time_zone=tz,
            sync_token=params.get("syncToken"),
            original_start=original_start,
        )

    @property
    def shape(self) -> list[Any]:
        """What an incremental sync must repeat from the full sync that minted its token."""
        return [self.single_events, sorted(self.event_types) if self.event_types else None]


def _seconds(value: datetime | None) -> datetime | None:
    """timeMin/timeMax: "Milliseconds may be provided but are ignored"."""
    return None if value is None else value.replace(microsecond=0)


# --- which items ---------------------------------------------------------------------


def full_items(store: EventStore, cal: CalendarState, q: EventsQuery) -> list[Item]:
    show_deleted = q.show_deleted or q.updated_min is not None
    found: list[Item] = []
    for record in list(cal.records.values()):
        if record.is_master:
            found.extend(_master_items(store, cal, record, q, show_deleted))
        elif record.master_id is not None:
            master = cal.records.get(record.master_id)
            if master is None or master.cancelled:
                continue
            if record.cancelled:
                wanted = show_deleted if q.single_events else True
                if wanted and _in_window(record.resource, cal, q):
                    found.append((record.resource, True))
            elif _in_window(record.resource, cal, q):
                found.append((record.resource, False))
        elif record.cancelled:
            if show_deleted and _in_window(record.resource, cal, q):
                found.append((record.resource, True))
        elif _in_window(record.resource, cal, q):
            found.append((record.resource, False))
    return _order([item for item in found if _matches(item[0], q)], cal, q)


def _master_items(
    store: EventStore, cal: CalendarState, master: Record, q: EventsQuery, show_deleted: bool
) -> list[Item]:
    if master.cancelled:
        if show_deleted and not q.single_events:
            return [(master.resource, True)]
        return []
    if not q.single_events:
        windowed = q.time_min is not None or q.time_max is not None
        if windowed and not store.occurrences(cal, master, q.time_min, q.time_max):
            return []
        return [(master.resource, False)]
    overridden = cal.exceptions_of(master.id)
    return [
        (store.instance(cal, master, occ), False)
        for occ in store.occurrences(cal, master, q.time_min, q.time_max)
        if f"{master.id}_{occ.suffix}" not in overridden
    ]


def changed_items(store: EventStore, cal: CalendarState, since: int, q: EventsQuery) -> list[Item]:
    """Everything written after change number ``since``; deletions as stubs."""
    found: list[Item] = []
    for record in list(cal.records.values()):
        if record.seq <= since:
            continue
        if q.single_events and record.is_master:
            found.extend(_changed_instances(store, cal, record))
        else:
            found.append((record.resource, record.cancelled))
    return _order([item for item in found if _matches(item[0], q)], cal, q)


def _changed_instances(store: EventStore, cal: CalendarState, master: Record) -> list[Item]:
    """A changed series, expanded: live instances in full, vanished ones as cancelled stubs."""
    overridden = cal.exceptions_of(master.id)
    live = {}
    if not master.cancelled:
        live = {f"{master.id}_{o.suffix}": o for o in store.occurrences(cal, master, None, None)}
    found: list[Item] = [
        (store.instance(cal, master, occ), False)
        for instance_id, occ in live.items()
        if instance_id not in overridden
    ]
    for instance_id, original in cal.known_instances.get(master.id, {}).items():
        if instance_id not in live and instance_id not in overridden:
            stub = {
                **master.resource,
                "id": instance_id,
                "recurringEventId": master.id,
                "originalStartTime": original,
            }
            found.append((stub, True))
    return found


def instance_items(
    store: EventStore, cal: CalendarState, event_id: str, q: EventsQuery
) -> list[Item]:
    """events.instances: the instances of one series, exceptions included."""
    master = cal.records.get(event_id)
    if master is None or (master.cancelled and not q.show_deleted):
        raise not_found()
    if not master.is_master:
        return [(master.resource, master.cancelled)]
    expanded = dataclasses.replace(q, single_events=True)
    found = _master_items(store, cal, master, expanded, False)
    for record in cal.exceptions_of(master.id).values():
        if (not record.cancelled or q.show_deleted) and _in_window(record.resource, cal, q):
            found.append((record.resource, record.cancelled))
    if q.original_start is not None:
        wanted = q.original_start
        found = [
            item
            for item in found
            if parse_moment(item[0]["originalStartTime"], "originalStartTime").utc(cal.tz) == wanted
        ]
    return sorted(found, key=lambda item: _start(item[0], cal))


def _in_window(resource: dict[str, Any], cal: CalendarState, q: EventsQuery) -> bool:
    """Google's rule: keep if end > timeMin and start < timeMax."""
    if q.time_min is None and q.time_max is None:
        return True
    start = parse_moment(resource["start"], "start").utc(cal.tz)
    end = parse_moment(resource["end"], "end").utc(cal.tz)
    if q.time_min is not None and not end > q.time_min:
        return False
    return q.time_max is None or start < q.time_max


def _matches(resource: dict[str, Any], q: EventsQuery) -> bool:
    if q.event_types is not None and resource.get("eventType", "default") not in q.event_types:
        return False
    if q.ical_uid is not None and resource.get("iCalUID") != q.ical_uid:
        return False
    if q.updated_min is not None and parse_rfc3339(resource["updated"]) < q.updated_min:
        return False
    props = resource.get("extendedProperties") or {}
    for kind, wanted in (("private", q.private_props), ("shared", q.shared_props)):
        for constraint in wanted:
            name, _, value = constraint.partition("=")
            if (props.get(kind) or {}).get(name) != value:
                return False
    return q.q is None or _text_matches(resource, q.q)


def _text_matches(resource: dict[str, Any], text: str) -> bool:
    fields = [resource.get(k) or "" for k in ("summary", "description", "location")]
    for person in [*(resource.get("attendees") or []), resource.get("organizer") or {}]:
        fields += [person.get("email") or "", person.get("displayName") or ""]
    haystack = " ".join(fields).lower()
    return all(term in haystack for term in text.lower().split())


def _start(resource: dict[str, Any], cal: CalendarState) -> datetime:
    key = "start" if "start" in resource else "originalStartTime"
    return parse_moment(resource[key], key).utc(cal.tz)


def _order(items: list[Item], cal: CalendarState, q: EventsQuery) -> list[Item]:
    """Google's default order is "unspecified, stable": here by id, never by time."""
    if q.order_by == "startTime":
        return sorted(items, key=lambda item: (_start(item[0], cal), item[0]["id"]))
    if q.order_by == "updated":
        return sorted(items, key=lambda item: (item[0]["updated"], item[0]["id"]))
    return sorted(items, key=lambda item: item[0]["id"])


# --- rendering -----------------------------------------------------------------------


def render(item: Item, cal: CalendarState, q: EventsQuery) -> dict[str, Any]:
    resource, as_stub = item
    if as_stub:
        stub = {
            "kind": "calendar#event",
            "etag": resource["etag"],
            "id": resource["id"],
            "status": "cancelled",
        }
        if resource.get("recurringEventId"):
            stub["recurringEventId"] = resource["recurringEventId"]
            stub["originalStartTime"] = copy.deepcopy(resource["originalStartTime"])
        return stub
    out = copy.deepcopy(resource)
    if q.time_zone is not None:
        for key in ("start", "end", "originalStartTime"):
            if key in out:
                out[key] = parse_moment(out[key], key).render(cal.tz, q.time_zone)
    attendees = out.get("attendees")
    if q.max_attendees is not None and attendees and len(attendees) > q.max_attendees:
        out["attendees"] = [a for a in attendees if a.get("self")][:1]
        out["attendeesOmitted"] = True
    return out


def events_envelope(cal: CalendarState, q: EventsQuery, seq: int) -> dict[str, Any]:
    updated = [r.resource["updated"] for r in cal.records.values()]
    return {
        "kind": "calendar#events",
        "etag": etag(seq),
        "summary": cal.entry.get("summary", cal.id),
        "description": cal.entry.get("description", ""),
        "updated": max(updated, default="1970-01-01T00:00:00.000Z"),
        "timeZone": q.time_zone.key if q.time_zone else cal.entry["timeZone"],
        "accessRole": cal.entry.get("accessRole", "owner"),
        "defaultReminders": cal.entry.get("defaultReminders", []),
    }


# --- calendarList --------------------------------------------------------------------


def calendar_entries(store: EventStore, params: dict[str, Any]) -> list[dict[str, Any]]:
    """calendarList.list items (before paging), incl. its syncToken rules."""
    token = params.get("syncToken")
    since = 0
    if token is not None:
        for name in ("minAccessRole", "showOwnOrganizationOnly"):
            if name in params:
                raise bad_parameter(name, f"The parameter {name} cannot be used with syncToken.")
        for name in ("showDeleted", "showHidden"):
            if params.get(name) is False:
                raise bad_parameter(name, f"{name}=false cannot be used with syncToken.")
        since = read_sync_token(token, "calendarList", "", 0, store.seq, [])
    floor = ROLES.index(params.get("minAccessRole", ROLES[0]))
    entries = []
    for cal in store.calendars.values():
        entry = cal.entry
        if token is not None:
            if cal.entry_seq > since:
                entries.append(entry)
            continue
        if ROLES.index(entry.get("accessRole", "owner")) < floor:
            continue
        if entry.get("hidden") and not params.get("showHidden"):
            continue
        if entry.get("deleted") and not params.get("showDeleted"):
            continue
        entries.append(entry)
    return [copy.deepcopy(e) for e in sorted(entries, key=lambda e: e["id"])]
