"""The mailboxes behind the fake: calendars, events, series and their change log.

Owns: stored items (single events and series masters with cancelled and
modified occurrences), expanding them into the instances calendarView returns
(never masters), immutable vs. REST ids, and an ordered change log that delta
rounds and change notifications read. Recurrence expands lazily and bounded
with dateutil's rrule in the series' own zone, so wall times survive DST.
It must not know about HTTP, tokens or wire envelopes beyond ids.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from dateutil.rrule import DAILY, FR, MO, SA, SU, TH, TU, WE, WEEKLY, rrule, weekday

from .wire import Zone, change_key, derive_id, new_item_id, resolve_zone

Moment = datetime | date  # aware datetime, or a date for all-day values
WEEKDAYS: dict[str, weekday] = {
    "monday": MO, "tuesday": TU, "wednesday": WE, "thursday": TH,
    "friday": FR, "saturday": SA, "sunday": SU,
}  # fmt: skip


def is_all_day(value: Moment) -> bool:
    return not isinstance(value, datetime)


def to_utc_bounds(start: Moment, end: Moment) -> tuple[datetime, datetime]:
    """All-day dates count from UTC midnight (a documented simplification)."""
    if isinstance(start, datetime) and isinstance(end, datetime):
        return start.astimezone(UTC), end.astimezone(UTC)
    return (
        datetime.combine(start, time(), UTC),
        datetime.combine(end, time(), UTC),
    )


@dataclass(frozen=True)
class Recurrence:
    """Daily or weekly patterned recurrence (what the fake expands)."""

    freq: str  # "daily" | "weekly"
    interval: int = 1
    days_of_week: tuple[str, ...] = ()
    count: int | None = None
    until: date | None = None  # inclusive, like Graph's range.endDate

    def __post_init__(self) -> None:
        if self.freq not in ("daily", "weekly") or self.interval < 1:
            raise ValueError(f"unsupported recurrence {self.freq!r}/{self.interval}")
        if any(day not in WEEKDAYS for day in self.days_of_week):
            raise ValueError(f"bad days_of_week {self.days_of_week!r}")

    def rule(self, first: datetime) -> rrule:
        days = [WEEKDAYS[d] for d in self.days_of_week] or None
        until = datetime.combine(self.until, time.max) if self.until else None
        return rrule(
            DAILY if self.freq == "daily" else WEEKLY,
            dtstart=first,
            interval=self.interval,
            byweekday=days if self.freq == "weekly" else None,
            count=self.count,
            until=until,
        )


@dataclass
class Override:
    """A modified occurrence (an exception): new times and/or properties."""

    start: Moment
    end: Moment
    props: dict[str, Any]
    version: int
    modified: datetime


@dataclass
class Item:
    """A single event or a series master, as stored."""

    key: str  # immutable id
    rest_id: str  # changes when the item moves to another calendar
    calendar_id: str
    start: Moment
    end: Moment
    zone: Zone  # the creator's zone: originalStartTimeZone, recurrence wall times
    props: dict[str, Any]
    recurrence: Recurrence | None
    ical_uid: str
    created: datetime
    modified: datetime
    version: int = 1
    transaction_id: str | None = None
    overrides: dict[Moment, Override] = field(default_factory=dict)
    cancelled: set[Moment] = field(default_factory=set)


@dataclass(frozen=True, eq=False)
class Instance:
    """One entry of calendarView: a single event, an occurrence or an exception."""

    key: str
    rest_id: str
    calendar_id: str
    kind: str  # singleInstance | occurrence | exception | seriesMaster
    start: Moment
    end: Moment
    zone: Zone
    props: dict[str, Any]
    change_key: str
    ical_uid: str
    created: datetime
    modified: datetime
    transaction_id: str | None
    series_key: str | None = None
    series_rest_id: str | None = None
    original_start: Moment | None = None
    recurrence: Recurrence | None = None

    @property
    def all_day(self) -> bool:
        return is_all_day(self.start)

    def overlaps(self, lo: datetime, hi: datetime) -> bool:
        start, end = to_utc_bounds(self.start, self.end)
        return start < hi and end > lo if end > start else lo <= start < hi


@dataclass(frozen=True)
class Change:
    """One entry of a mailbox's change log."""

    seq: int
    calendar_id: str
    item_key: str
    change_type: str  # created | updated | deleted
    ids: tuple[tuple[str, str], ...]  # (immutable, rest) ids of instances known to change
    master: tuple[str, str]  # (immutable, rest) ids of the stored item (single or series)


@dataclass
class GraphUser:
    """A directory user with a mailbox."""

    oid: str
    upn: str
    display_name: str
    tenant_id: str
    time_zone: str = "UTC"  # mailboxSettings.timeZone (a Windows zone id or UTC)

    @property
    def email(self) -> dict[str, str]:
        return {"name": self.display_name, "address": self.upn}


@dataclass
class Calendar:
    id: str
    name: str
    can_edit: bool
    is_default: bool
    owner: dict[str, str]
    color: str = "auto"


class Mailbox:
    """One user's calendars and events. Not thread-safe: the server's lock guards it."""

    def __init__(
        self,
        oid: str,
        owner: dict[str, str],
        clock: Callable[[], datetime],
        listener: Callable[[Mailbox, Change], None],
    ) -> None:
        self.oid = oid
        self.owner = owner
        self.clock = clock
        self.listener = listener
        self.calendars: dict[str, Calendar] = {}
        self.items: dict[str, Item] = {}
        self.rest_index: dict[str, str] = {}
        self.occurrence_index: dict[str, tuple[str, Moment]] = {}
        self.transactions: dict[str, str] = {}
        self.changes: list[Change] = []
        self.seq = 0
        self.add_calendar("Calendar", can_edit=True, default=True)

    # --- calendars ----------------------------------------------------------------------------

    def add_calendar(
        self,
        name: str,
        *,
        can_edit: bool = True,
        default: bool = False,
        owner: dict[str, str] | None = None,
    ) -> Calendar:
        calendar = Calendar(new_item_id(), name, can_edit, default, owner or dict(self.owner))
        self.calendars[calendar.id] = calendar
        return calendar

    @property
    def default_calendar(self) -> Calendar:
        return next(c for c in self.calendars.values() if c.is_default)

    # --- lookups ------------------------------------------------------------------------------

    def resolve(self, event_id: str) -> tuple[Item, Moment | None] | None:
        """Item (and original start, for an occurrence id) for an immutable or REST id."""
        key = event_id if event_id in self.items else self.rest_index.get(event_id)
        if key is not None:
            return self.items[key], None
        hit = self.occurrence_index.get(event_id)
        if hit is None or hit[0] not in self.items:
            return None
        item = self.items[hit[0]]
        if hit[1] in item.cancelled or not event_id.startswith((item.key[:24], item.rest_id[:24])):
            return None
        return item, hit[1]

    def instances(self, calendar_id: str, lo: datetime, hi: datetime) -> dict[str, Instance]:
        """calendarView of one calendar: instances overlapping [lo, hi), keyed by immutable id."""
        found: dict[str, Instance] = {}
        for item in self.items.values():
            if item.calendar_id != calendar_id:
                continue
            for instance in self._expand(item, lo, hi):
                if instance.overlaps(lo, hi):
                    found[instance.key] = instance
        return found

    def occurrence(self, item: Item, original: Moment) -> Instance:
        """The occurrence (or exception) of ``item`` that originally started at ``original``."""
        override = item.overrides.get(original)
        if override is not None:
            props = {**item.props, **override.props}
            return self._instance(item, "exception", override.start, override.end, props, original)
        end = self._occurrence_end(item, original)
        return self._instance(item, "occurrence", original, end, item.props, original)

    def master(self, item: Item) -> Instance:
        kind = "seriesMaster" if item.recurrence else "singleInstance"
        return self._instance(item, kind, item.start, item.end, item.props, None)

    # --- mutations ----------------------------------------------------------------------------

    def add_item(
        self,
        calendar_id: str,
        start: Moment,
        end: Moment,
        zone: Zone,
        props: dict[str, Any],
        *,
        recurrence: Recurrence | None = None,
        transaction_id: str | None = None,
    ) -> Item:
        now = self.clock()
        key = new_item_id()
        item = Item(
            key, new_item_id(), calendar_id, start, end, zone, props, recurrence,
            ical_uid="040000008200E00074C5B7101A82E008" + key[-40:-1].encode().hex()[:48].upper(),
            created=now, modified=now, transaction_id=transaction_id,
        )  # fmt: skip
        self.items[key] = item
        self.rest_index[item.rest_id] = key
        if transaction_id:
            self.transactions[transaction_id] = key
        self._log(item, "created", self._own_ids(item))
        return item

    def update_item(self, item: Item, **changes: Any) -> None:
        """Series-level or single-event change: start, end, zone, recurrence, props."""
        props = changes.pop("props", {})
        for name, value in changes.items():
            setattr(item, name, value)
        item.props.update(props)
        if "start" in changes and item.recurrence is not None:
            item.overrides.clear()
            item.cancelled.clear()
        self._touch(item)
        self._log(item, "updated", self._own_ids(item))

    def update_occurrence(self, item: Item, original: Moment, **changes: Any) -> str:
        """Turn an occurrence into an exception (or change an exception again)."""
        current = item.overrides.get(original)
        if current is None:
            current = Override(original, self._occurrence_end(item, original), {}, 0, item.modified)
        props = {**current.props, **changes.pop("props", {})}
        now = self.clock()
        item.overrides[original] = replace(
            current, props=props, version=current.version + 1, modified=now, **changes
        )
        occurrence = self._occurrence_ids(item, original)
        self._log(item, "updated", (occurrence,))
        return occurrence[0]

    def cancel_occurrence(self, item: Item, original: Moment) -> None:
        item.overrides.pop(original, None)
        item.cancelled.add(original)
        self._touch(item, bump=False)
        self._log(item, "deleted", (self._occurrence_ids(item, original),))

    def delete_item(self, item: Item) -> None:
        del self.items[item.key]
        self.rest_index.pop(item.rest_id, None)
        self._log(item, "deleted", self._own_ids(item))

    def move_item(self, item: Item, calendar_id: str) -> None:
        """Move to another calendar: the REST id changes, the immutable id does not."""
        self._log(item, "deleted", self._own_ids(item))
        self.rest_index.pop(item.rest_id, None)
        item.rest_id = new_item_id()
        self.rest_index[item.rest_id] = item.key
        item.calendar_id = calendar_id
        self._touch(item)
        self._log(item, "created", self._own_ids(item))

    def is_occurrence(self, item: Item, original: Moment) -> bool:
        if item.recurrence is None or original in item.cancelled:
            return False
        lo, hi = to_utc_bounds(original, original)
        return any(
            instance.original_start == original
            for instance in self._expand(item, lo - timedelta(days=1), hi + timedelta(days=1))
        )

    # --- internals ----------------------------------------------------------------------------

    def _touch(self, item: Item, *, bump: bool = True) -> None:
        item.modified = self.clock()
        if bump:
            item.version += 1

    def _log(self, item: Item, change_type: str, ids: tuple[tuple[str, str], ...]) -> None:
        self.seq += 1
        master = (item.key, item.rest_id)
        change = Change(self.seq, item.calendar_id, item.key, change_type, ids, master)
        self.changes.append(change)
        self.listener(self, change)

    def _own_ids(self, item: Item) -> tuple[tuple[str, str], ...]:
        return () if item.recurrence else ((item.key, item.rest_id),)

    def _occurrence_ids(self, item: Item, original: Moment) -> tuple[str, str]:
        salt = original.isoformat()
        ids = derive_id(item.key, salt), derive_id(item.rest_id, salt)
        for one in ids:
            self.occurrence_index[one] = (item.key, original)
        return ids

    def _occurrence_end(self, item: Item, original: Moment) -> Moment:
        return original + (item.end - item.start)  # type: ignore[operator]

    def _instance(
        self,
        item: Item,
        kind: str,
        start: Moment,
        end: Moment,
        props: dict[str, Any],
        original: Moment | None,
    ) -> Instance:
        override = item.overrides.get(original) if original is not None else None
        ids = (item.key, item.rest_id)
        if original is not None:
            ids = self._occurrence_ids(item, original)
        ical = item.ical_uid
        if original is not None:  # occurrences carry their own iCalUId
            ical += hashlib.sha256(original.isoformat().encode()).hexdigest()[:8].upper()
        return Instance(
            key=ids[0], rest_id=ids[1], calendar_id=item.calendar_id, kind=kind,
            start=start, end=end, zone=item.zone, props=copy.deepcopy(props),
            change_key=change_key(item.key, item.version, override.version if override else 0),
            ical_uid=ical, created=item.created,
            modified=max(item.modified, override.modified) if override else item.modified,
            transaction_id=item.transaction_id,
            series_key=item.key if original is not None else None,
            series_rest_id=item.rest_id if original is not None else None,
            original_start=original,
            recurrence=item.recurrence if kind == "seriesMaster" else None,
        )  # fmt: skip

    def _expand(self, item: Item, lo: datetime, hi: datetime) -> Iterator[Instance]:
        if item.recurrence is None:
            yield self._instance(item, "singleInstance", item.start, item.end, item.props, None)
            return
        for original in self._originals(item, lo, hi):
            if original not in item.cancelled and original not in item.overrides:
                yield self.occurrence(item, original)
        for original in item.overrides:
            yield self.occurrence(item, original)

    def _originals(self, item: Item, lo: datetime, hi: datetime) -> Iterator[Moment]:
        """Original starts of occurrences near [lo, hi), via rrule in the series' own zone."""
        assert item.recurrence is not None
        first_start, first_end = to_utc_bounds(item.start, item.end)
        span = timedelta(days=2) + (first_end - first_start)
        if isinstance(item.start, datetime):
            first = item.start.astimezone(item.zone.tz).replace(tzinfo=None)
            low = (lo - span).astimezone(item.zone.tz).replace(tzinfo=None)
            high = (hi + span).astimezone(item.zone.tz).replace(tzinfo=None)
            for wall in item.recurrence.rule(first).between(low, high, inc=True):
                yield wall.replace(tzinfo=item.zone.tz).astimezone(UTC)
        else:
            first = datetime.combine(item.start, time())
            low, high = (lo - span).replace(tzinfo=None), (hi + span).replace(tzinfo=None)
            for wall in item.recurrence.rule(first).between(low, high, inc=True):
                yield wall.date()


def default_props(owner: dict[str, str]) -> dict[str, Any]:
    """What Graph fills in for an event created with only times."""
    return {
        "subject": "",
        "body": {"contentType": "text", "content": ""},
        "location": {"displayName": "", "locationType": "default"},
        "showAs": "busy",
        "sensitivity": "normal",
        "importance": "normal",
        "categories": [],
        "attendees": [],
        "organizer": {"emailAddress": dict(owner)},
        "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
        "isCancelled": False,
        "isOnlineMeeting": False,
        "isReminderOn": True,
        "reminderMinutesBeforeStart": 15,
        "responseRequested": True,
        "allowNewTimeProposals": True,
        "hideAttendees": False,
    }


def zone_of(name: str) -> Zone:
    return resolve_zone(name)
