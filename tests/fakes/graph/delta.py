"""calendarView delta (reference 2.1): rounds, ``$skiptoken`` pages and ``$deltatoken`` links.

A round is fixed when it starts: the first request (window params) lists every
instance in the window; a ``$deltatoken`` request diffs the window now against
what the previous round handed out, plus ``@removed`` for events changed
outside the window (the docs' rule). Pages render with the *current* request's
``Prefer`` (zone, ids, page size). Knobs on the server: ``duplicate_items``,
``partial_updates``, ``empty_first_page``, ``default_page_size``;
``expire_delta_tokens`` makes every token answer 410.
It must not know about HTTP plumbing, tokens of the identity side, or writes.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from .events import render_event
from .store import Calendar, Instance, Mailbox
from .wire import UTC_ZONE, Incoming, Reply, WireError, Zone, graph_error, json_reply, parse_instant

if TYPE_CHECKING:
    from .server import FakeGraph

UNSUPPORTED = ("$select", "$expand", "$filter", "$orderby", "$search")
MAX_WINDOW = timedelta(days=1825)
MAX_PAGE = 1000


@dataclass
class DeltaState:
    oid: str
    calendar_id: str
    lo: datetime
    hi: datetime
    snapshot: dict[str, Instance]
    seq: int
    generation: int


@dataclass
class Entry:
    instance: Instance | None = None  # an upsert
    removed: tuple[str, str] | None = None  # (immutable id, REST id)
    previous: Instance | None = None  # for partial rendering


@dataclass
class Round:
    path: str
    entries: list[Entry]
    final: DeltaState
    empty_first: bool = False
    pages: list[str] = field(default_factory=list)


class DeltaService:
    """Delta rounds for every mailbox; the server's lock guards it."""

    def __init__(self, graph: FakeGraph) -> None:
        self.graph = graph
        self.deltas: dict[str, DeltaState] = {}
        self.pages: dict[str, tuple[Round, int]] = {}
        self.expired: dict[str, tuple[str, DeltaState | None]] = {}
        self.generation = 148

    def expire_all(self, code: str) -> None:
        for token, state in self.deltas.items():
            self.expired[token] = (code, state)
        for token, (round_, _) in self.pages.items():
            self.expired[token] = (code, round_.final)
        self.deltas.clear()
        self.pages.clear()

    def handle(
        self, req: Incoming, mailbox: Mailbox, calendar: Calendar, zone: Zone, immutable: bool
    ) -> Reply:
        skip, token = req.param("$skiptoken"), req.param("$deltatoken")
        if skip or token:
            extra = sorted(k for k in req.query if k not in ("$skiptoken", "$deltatoken"))
            if extra:
                raise WireError(
                    "ErrorInvalidUrlQuery",
                    f"Query parameters other than the state token are not allowed: {extra[0]}.",
                )
        if skip:
            found = self.pages.get(skip)
            if found is None or not self._owns(found[0].final, mailbox, calendar):
                return self._gone(req, skip)
            return self._page(req, *found, zone, immutable)
        if token:
            state = self.deltas.get(token)
            if state is None or not self._owns(state, mailbox, calendar):
                return self._gone(req, token)
            return self._page(req, self._next_round(req, mailbox, state), 0, zone, immutable)
        lo, hi = self._window(req)
        return self._page(
            req, self._first_round(req, mailbox, calendar, lo, hi), 0, zone, immutable
        )

    # --- rounds -------------------------------------------------------------------------------

    def _first_round(
        self, req: Incoming, mailbox: Mailbox, calendar: Calendar, lo: datetime, hi: datetime
    ) -> Round:
        current = mailbox.instances(calendar.id, lo, hi)
        ordered = sorted(current.values(), key=lambda i: (str(i.start), i.key))
        state = self._state(mailbox, calendar.id, lo, hi, current)
        return self._round(req, [Entry(instance=i) for i in ordered], state)

    def _next_round(self, req: Incoming, mailbox: Mailbox, old: DeltaState) -> Round:
        current = mailbox.instances(old.calendar_id, old.lo, old.hi)
        entries: list[Entry] = []
        for key, instance in sorted(current.items(), key=lambda kv: (str(kv[1].start), kv[0])):
            before = old.snapshot.get(key)
            if before is None or before.change_key != instance.change_key:
                entries.append(Entry(instance=instance, previous=before))
        gone = {k: (i.key, i.rest_id) for k, i in old.snapshot.items() if k not in current}
        for change in mailbox.changes:  # events changed outside the window: @removed too
            if change.seq > old.seq and change.calendar_id == old.calendar_id:
                for key, rest in change.ids:
                    if key not in current:
                        gone.setdefault(key, (key, rest))
        entries.extend(Entry(removed=ids) for ids in gone.values())
        state = self._state(mailbox, old.calendar_id, old.lo, old.hi, current)
        return self._round(req, entries, state)

    def _round(self, req: Incoming, entries: list[Entry], state: DeltaState) -> Round:
        if self.graph.duplicate_items and entries:
            entries.append(entries[0])
        return Round(req.path, entries, state, empty_first=self.graph.empty_first_page)

    def _state(
        self,
        mailbox: Mailbox,
        calendar_id: str,
        lo: datetime,
        hi: datetime,
        snap: dict[str, Instance],
    ) -> DeltaState:
        self.generation += 1
        return DeltaState(mailbox.oid, calendar_id, lo, hi, snap, mailbox.seq, self.generation)

    # --- pages --------------------------------------------------------------------------------

    def _page(self, req: Incoming, round_: Round, pos: int, zone: Zone, immutable: bool) -> Reply:
        size, applied = self._page_size(req)
        if round_.empty_first:
            round_.empty_first, chunk, end = False, [], pos
        else:
            chunk, end = round_.entries[pos : pos + size], pos + size
        payload: dict[str, Any] = {
            "@odata.context": f"{req.base_url}/v1.0/$metadata#Collection(event)",
            "value": [self._render(entry, zone, immutable) for entry in chunk],
        }
        if end < len(round_.entries):
            token = secrets.token_urlsafe(24)
            self.pages[token] = (round_, end)
            payload["@odata.nextLink"] = f"{req.base_url}{round_.path}?$skiptoken={token}"
        else:
            token = secrets.token_urlsafe(24)
            self.deltas[token] = round_.final
            payload["@odata.deltaLink"] = f"{req.base_url}{round_.path}?$deltatoken={token}"
        prefs = [f"odata.maxpagesize={size}"] if applied else []
        if "outlook.timezone" in self.graph.prefer(req):
            prefs.append(f'outlook.timezone="{zone.name}"')
        headers = {"Preference-Applied": ", ".join(prefs)} if prefs else {}
        return json_reply(200, payload, headers)

    def _render(self, entry: Entry, zone: Zone, immutable: bool) -> dict[str, Any]:
        if entry.removed is not None:
            ident = entry.removed[0] if immutable else entry.removed[1]
            return {
                "@odata.type": "#microsoft.graph.event",
                "id": ident,
                "@removed": {"reason": "deleted"},
            }
        assert entry.instance is not None
        full = render_event(entry.instance, zone, immutable=immutable)
        if self.graph.partial_updates and entry.previous is not None:
            now = render_event(entry.instance, UTC_ZONE)
            before = render_event(entry.previous, UTC_ZONE)
            changed = [k for k in now if now[k] != before.get(k) and k != "id"]
            full = {"@odata.etag": full["@odata.etag"], "id": full["id"]} | {
                k: full[k] for k in changed
            }
        return {"@odata.type": "#microsoft.graph.event", **full}

    def _page_size(self, req: Incoming) -> tuple[int, bool]:
        wanted = self.graph.prefer(req).get("odata.maxpagesize")
        if wanted is not None and wanted.isdigit() and int(wanted) > 0:
            return min(int(wanted), MAX_PAGE), True
        return self.graph.default_page_size, False

    # --- checks -------------------------------------------------------------------------------

    def _window(self, req: Incoming) -> tuple[datetime, datetime]:
        bad = [k for k in req.query if k.lower() in UNSUPPORTED]
        if bad:
            raise WireError(
                "ErrorInvalidUrlQuery",
                f"The following parameters are not supported with change tracking over the "
                f"'CalendarView' resource: '{', '.join(bad)}'.",
            )
        lowered = {k.lower(): v[0] for k, v in req.query.items()}
        if "startdatetime" not in lowered or "enddatetime" not in lowered:
            raise WireError(
                "ErrorInvalidParameter",
                "This request requires a time window specified by the query string parameters "
                "StartDateTime and EndDateTime.",
            )
        lo = parse_instant(lowered["startdatetime"], "startDateTime")
        hi = parse_instant(lowered["enddatetime"], "endDateTime")
        if hi <= lo:
            raise WireError("ErrorInvalidParameter", "EndDateTime must be after StartDateTime.")
        if hi - lo > MAX_WINDOW:
            raise WireError(
                "ErrorInvalidRequest",
                "The time range for CalendarView is too large. Maximum number of days: 1825",
            )
        return lo, hi

    @staticmethod
    def _owns(state: DeltaState, mailbox: Mailbox, calendar: Calendar) -> bool:
        return state.oid == mailbox.oid and state.calendar_id == calendar.id

    def _gone(self, req: Incoming, token: str) -> Reply:
        code, state = self.expired.get(token, ("SyncStateNotFound", None))
        if code.lower() == "resyncrequired" and state is not None:
            query = urlencode(
                {
                    "startDateTime": f"{state.lo.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}",
                    "endDateTime": f"{state.hi.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}",
                    "$deltatoken": "",
                },
                safe="$:",
            )
            return graph_error(
                410,
                "resyncRequired",
                "Resync required. Replace any local items with the server's version.",
                {"Location": f"{req.base_url}{req.path}?{query}"},
            )
        generation = state.generation if state else 0
        return graph_error(
            410,
            "SyncStateNotFound",
            f"The sync state generation is not found; generation={generation};"
            f"[highest={self.generation}]",
        )
