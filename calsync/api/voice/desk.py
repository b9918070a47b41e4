"""The one core behind every voice platform: runs a tool call, answers in speakable sentences.

``Desk.run(tool, arguments, call)`` checks the arguments, does the work
through the same availability and booking services as the REST API, and
returns an ``Answer``: a short sentence in the resource's language plus
structured data (slot ids, appointment ids). A refusal is an answer too
("Dieser Termin ist leider schon vergeben. Frei wären ..."), never an
exception, so every platform can hand it to its model. Writes carry an
idempotency key made of the call id and the tool call id, so a platform's
retry returns the first result instead of booking twice. This module knows
no platform's wire format.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool

from calsync.api.lookups import zone_or
from calsync.api.services import Services
from calsync.api.spoken import spoken
from calsync.api.voice import phrases
from calsync.api.voice.calls import Answer, Call, Memory, digest
from calsync.api.voice.offers import day_of, parse_slot_id, slot_id, spread, time_filter
from calsync.api.voice.tools import (
    BY_NAME,
    BookAppointment,
    CancelAppointment,
    CheckAvailability,
    FindMyAppointments,
    HoldSlot,
    RescheduleAppointment,
    parse_arguments,
    tool,
)
from calsync.errors import (
    CalsyncError,
    ConflictError,
    InputError,
    NotFoundError,
    SlotUnavailableError,
)
from calsync.metrics import Metrics
from calsync.model import Attendee, Booking, BookingStatus, Resource, TimeSpan, day_start
from calsync.model import parse_instant as _parse_instant
from calsync.scheduler.booking import BookingRequest
from calsync.scheduler.contacts import normalize_attendee

log = logging.getLogger("calsync.voice")
MAX_RANGE_DAYS = 31  # one check_availability call looks at most this many days
LOOK_AHEAD_DAYS = 14  # when the asked days are full, how far on the next free times are sought
UPCOMING_DAYS = 400
_REBOOKINGS = 5  # a call may book, cancel and book again the same time this often
_TAKEN_WORDS = ("overlaps", "too close", "taken")


class _Refused(Exception):
    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.say)
        self.answer = answer


@dataclass(frozen=True, slots=True)
class _When:
    resource: Resource
    start: datetime
    duration: timedelta | None
    zone: ZoneInfo


class Desk:
    """Runs voice tool calls against the booking core; thread-safe."""

    def __init__(self, services: Services, metrics: Metrics | None = None) -> None:
        self._svc = services
        self._metrics = metrics
        self._memory = Memory(services.clock)

    def run(
        self,
        name: str,
        arguments: Mapping[str, Any] | None,
        call: Call,
        *,
        resource: str | None = None,
    ) -> Answer:
        """Run one tool call; ``resource`` is the default when the arguments name none."""
        started = time.perf_counter()
        answer = self._answer(name, dict(arguments or {}), call, resource)
        seconds, outcome = time.perf_counter() - started, answer.error or "ok"
        log.info(
            "voice tool=%.40r platform=%s call=%.80s outcome=%s ms=%.1f",
            name, call.platform, call.call_id or "-", outcome, seconds * 1000,
        )  # fmt: skip
        if self._metrics is not None:
            known = name if name in BY_NAME else "unknown"
            self._metrics.observe_voice(call.platform, known, outcome, seconds)
        return answer

    async def run_async(
        self,
        name: str,
        arguments: Mapping[str, Any] | None,
        call: Call,
        *,
        resource: str | None = None,
    ) -> Answer:
        """``run`` for async code: lookups on the event loop (like the REST lookups: local
        reads that never wait on a lock), writes, which may wait, in a worker thread."""
        spec = BY_NAME.get(name)
        if spec is not None and not spec.writes:
            return self.run(name, arguments, call, resource=resource)
        return await run_in_threadpool(
            functools.partial(self.run, name, arguments, call, resource=resource)
        )

    def _answer(self, name: str, given: dict[str, Any], call: Call, resource: str | None) -> Answer:
        try:
            spec = tool(name)
            args = parse_arguments(spec, given)
            key = call.key(name, given) if spec.writes else None
            remembered = self._memory.recall(call, key)
            if remembered is not None:
                return remembered
            answer: Answer = getattr(self, f"_{name}")(args, call, resource)
            self._memory.remember(call, key, answer)
            return answer
        except _Refused as refused:
            return refused.answer
        except CalsyncError as err:
            named = given.get("resource")
            return self.failure(err, named if isinstance(named, str) else resource)

    # --- the tools ----------------------------------------------------------------------

    def _check_availability(
        self, args: CheckAvailability, call: Call, default: str | None
    ) -> Answer:
        res = self._resource(args.resource, default)
        zone = zone_or(res, args.timezone, key="timezone")
        now = self._svc.clock.now()
        span = self._days(args, zone, now, res.language)
        duration = timedelta(minutes=args.duration) if args.duration else None
        fits = time_filter(args.after, args.before, zone)
        found = [s for s in self._slots(res, span, duration) if fits(s)]
        key = "slots"
        if not found:
            key = "slots_later"
            later = TimeSpan(span.end, span.end + timedelta(days=LOOK_AHEAD_DAYS))
            found = [s for s in self._slots(res, later, duration) if fits(s)]
        picked = spread(found, args.limit, zone)
        stale = self._svc.availability.freshness(res).stale
        data = {
            "resource": res.id,
            "timezone": zone.key,
            "slots": [self._slot(res, s, zone, now) for s in picked],
            "stale": stale,
        }
        if not picked:
            text = phrases.say(res.language, "no_slots", name=res.name, days=LOOK_AHEAD_DAYS)
            return Answer(text, data)
        labels = [self._spoken(s.start, zone, res, now) for s in picked]
        listed = phrases.either(res.language, labels)
        text = phrases.say(res.language, key, name=res.name, list=listed)
        return Answer(self._with_zone(text, res, zone), data)

    def _hold_slot(self, args: HoldSlot, call: Call, default: str | None) -> Answer:
        when = self._when(args, default)
        res, now = when.resource, self._svc.clock.now()
        try:
            hold = self._svc.bookings.hold(res.id, when.start, when.duration, call.call_id)
        except SlotUnavailableError as err:
            raise _Refused(self._unavailable(err, res, when.zone)) from err
        minutes = max(1, round((hold.expires_at - now).total_seconds() / 60))
        label = self._spoken(hold.span.start, when.zone, res, now)
        text = phrases.say(res.language, "held", when=label, minutes=minutes)
        data = {
            "hold_id": hold.id,
            **self._slot(res, hold.span, when.zone, now),
            "expires_at": hold.expires_at.astimezone(when.zone).isoformat(),
        }
        return Answer(text, data)

    def _book_appointment(self, args: BookAppointment, call: Call, default: str | None) -> Answer:
        when = self._when(args, default)
        res = when.resource
        request = BookingRequest(
            resource=res.id,
            start=when.start,
            attendee=Attendee(args.name, args.phone or call.caller, args.email),
            duration=when.duration,
            hold_id=args.hold_id,
            call_id=call.call_id,
            notes=args.notes,
            metadata={"channel": call.platform},
        )
        try:
            booking = self._book(request, call, call.key("book_appointment", args.model_dump()))
        except SlotUnavailableError as err:
            raise _Refused(self._unavailable(err, res, when.zone)) from err
        now = self._svc.clock.now()
        label = self._spoken(booking.span.start, when.zone, res, now)
        text = phrases.say(res.language, "booked", name=res.name, when=label)
        return Answer(
            self._with_zone(text, res, when.zone), self._appointment(booking, when.zone, now)
        )

    def _book(self, request: BookingRequest, call: Call, key: str) -> Booking:
        """Book under ``key``. A key made from the arguments alone (no tool call id) may
        meet a booking this call made and cancelled before: then it is a new request, and
        the key is extended by that booking, the same way on every retry and instance."""
        for _ in range(_REBOOKINGS):
            booking, created = self._svc.bookings.book(request, key)
            if created or call.tool_call_id or booking.status is not BookingStatus.CANCELLED:
                return booking
            key = f"voice:{digest([key, booking.id])}"
        raise ConflictError("this call has booked and cancelled this time too often; call again")

    def _find_my_appointments(
        self, args: FindMyAppointments, call: Call, default: str | None
    ) -> Answer:
        scope = self._resource(args.resource, default) if args.resource else None
        phones, found = self._upcoming(args.phone, call, scope, default)
        phone = phones[0]
        language = self._language(scope, found, default)
        now = self._svc.clock.now()
        if not found:
            return Answer(phrases.say(language, "found_none", phone=phone), {"appointments": []})
        home = self._svc.availability.resource(found[0].resource)
        zone = zone_or(home, args.timezone, key="timezone")
        data = {"appointments": [self._appointment(b, zone, now) for b in found]}
        listed = phrases.both(language, [self._with(b, language, now, zone) for b in found])
        key = "found_one" if len(found) == 1 else "found"
        text = phrases.say(language, key, count=len(found), list=listed)
        return Answer(self._with_zone(text, home, zone), data)

    def _cancel_appointment(
        self, args: CancelAppointment, call: Call, default: str | None
    ) -> Answer:
        booking = self._callers(args.appointment_id, args.phone, call, default)
        done = self._svc.bookings.cancel(booking.id, args.reason)
        res = self._svc.availability.resource(done.resource)
        now = self._svc.clock.now()
        label = self._spoken(done.span.start, res.timezone, res, now)
        text = phrases.say(res.language, "cancelled", when=label)
        return Answer(text, self._appointment(done, None, now))

    def _reschedule_appointment(
        self, args: RescheduleAppointment, call: Call, default: str | None
    ) -> Answer:
        booking = self._callers(args.appointment_id, args.phone, call, default)
        when = self._when(args, booking.resource)
        if when.resource.id != booking.resource:
            raise InputError(
                f"the appointment is with {booking.resource}; it cannot move to {when.resource.id}"
            )
        try:
            moved = self._svc.bookings.reschedule(booking.id, when.start)
        except SlotUnavailableError as err:
            raise _Refused(self._unavailable(err, when.resource, when.zone)) from err
        now = self._svc.clock.now()
        label = self._spoken(moved.span.start, when.zone, when.resource, now)
        text = phrases.say(when.resource.language, "moved", when=label)
        return Answer(
            self._with_zone(text, when.resource, when.zone),
            self._appointment(moved, when.zone, now),
        )

    # --- finding things -------------------------------------------------------------------

    def _resource(self, given: str | None, default: str | None) -> Resource:
        wanted = given or default
        resources = self._svc.availability.resources()
        if wanted is None and len(resources) == 1:
            return resources[0]
        language = _shared_language(resources)
        names = [f"{r.id} ({r.name})" for r in resources]
        if wanted is None:
            listed = phrases.either(language, names)
            raise _Refused(
                Answer(phrases.say(language, "need_resource", list=listed),
                       {"resources": [r.id for r in resources]}, "resource_needed")
            )  # fmt: skip
        try:
            return self._svc.availability.resource(wanted)
        except NotFoundError:
            listed = phrases.both(language, names)
            text = phrases.say(language, "unknown_resource", id=wanted, list=listed)
            raise _Refused(
                Answer(text, {"resources": [r.id for r in resources]}, "unknown_resource")
            ) from None

    def _when(
        self, args: HoldSlot | BookAppointment | RescheduleAppointment, default: str | None
    ) -> _When:
        if args.slot_id and args.start:
            raise InputError("give slot_id or start, not both")
        if args.slot_id:
            slot_resource, start, minutes = parse_slot_id(args.slot_id)
            if args.resource and args.resource != slot_resource:
                raise InputError(
                    f"slot_id {args.slot_id} belongs to {slot_resource}, not {args.resource}"
                )
            res = self._resource(slot_resource, None)
            zone = zone_or(res, args.timezone, key="timezone")
            return _When(res, start, timedelta(minutes=args.duration or minutes), zone)
        if not args.start:
            raise InputError("give slot_id (from check_availability) or start")
        res = self._resource(args.resource, default)
        zone = zone_or(res, args.timezone, key="timezone")
        duration = timedelta(minutes=args.duration) if args.duration else None
        return _When(res, _parse_instant(args.start, zone, name="start"), duration, zone)

    def _days(
        self, args: CheckAvailability, zone: ZoneInfo, now: datetime, language: str
    ) -> TimeSpan:
        today = now.astimezone(zone).date()
        first = day_of(args.date, "date", today) if args.date else today
        last = day_of(args.end_date, "end_date", today) if args.end_date else first
        if last < first:
            raise InputError(f"end_date ({last}) must not be before date ({first})")
        if (last - first).days >= MAX_RANGE_DAYS:
            raise InputError(f"look at most {MAX_RANGE_DAYS} days at once")
        start = max(day_start(first, zone), now)
        end = day_start(last + timedelta(days=1), zone)
        if end <= start:
            detail = f"{last} is in the past; ask for today or a later day"
            text = phrases.say(language, "past", day=phrases.long_date(last, language))
            raise _Refused(Answer(text, {"detail": detail}, InputError.code))
        return TimeSpan(start, end)

    def _slots(self, res: Resource, span: TimeSpan, duration: timedelta | None) -> list[TimeSpan]:
        return self._svc.availability.slots(res.id, span, duration=duration).slots

    def _upcoming(
        self, given: str | None, call: Call, scope: Resource | None, default: str | None
    ) -> tuple[list[str], list[Booking]]:
        """The caller's numbers (E.164; a local number is read in each resource's country)
        and their upcoming appointments."""
        raw = given or call.caller
        if not raw:
            language = self._language(scope, [], default)
            raise _Refused(Answer(phrases.say(language, "need_phone"), {}, "phone_needed"))
        if scope is None and default:
            scope = self._resource(None, default)
        phones = _numbers(raw, [scope] if scope else self._svc.availability.resources())
        now = self._svc.clock.now()
        span = TimeSpan(now, now + timedelta(days=UPCOMING_DAYS))
        found: dict[str, Booking] = {}
        for phone in phones:
            for booking in self._svc.bookings.find(
                resource=scope.id if scope else None, phone=phone, span=span, limit=20
            ):
                if booking.status is not BookingStatus.CANCELLED:
                    found[booking.id] = booking
        return phones, sorted(found.values(), key=lambda b: (b.span.start, b.id))

    def _callers(
        self, booking_id: str | None, given: str | None, call: Call, default: str | None
    ) -> Booking:
        """The caller's appointment meant: the one named, or their only upcoming one."""
        phones, found = self._upcoming(given, call, None, default)
        phone = phones[0]
        language = self._language(None, found, default)
        if booking_id:
            try:
                booking = self._svc.bookings.get(booking_id)
            except NotFoundError:
                booking = None
            if booking is None or booking.attendee.phone not in phones:
                raise _Refused(
                    Answer(phrases.say(language, "not_yours", phone=phone), {}, "not_found")
                )
            return booking
        if not found:
            raise _Refused(
                Answer(phrases.say(language, "found_none", phone=phone), {}, "not_found")
            )
        if len(found) > 1:
            now = self._svc.clock.now()
            listed = phrases.either(language, [self._with(b, language, now) for b in found])
            data = {"appointments": [self._appointment(b, None, now) for b in found]}
            raise _Refused(Answer(phrases.say(language, "which", list=listed), data, "which_one"))
        return found[0]

    # --- answers --------------------------------------------------------------------------

    def _unavailable(self, err: SlotUnavailableError, res: Resource, zone: ZoneInfo) -> Answer:
        now = self._svc.clock.now()
        taken = any(word in err.message for word in _TAKEN_WORDS)
        text = phrases.say(res.language, "taken" if taken else "unavailable", name=res.name)
        others = [s for s in err.alternatives if isinstance(s, TimeSpan)]
        if others:
            labels = [self._spoken(s.start, zone, res, now) for s in others]
            text += " " + phrases.say(
                res.language, "instead", list=phrases.either(res.language, labels)
            )
        data = {
            "reason": err.message,
            "alternatives": [self._slot(res, s, zone, now) for s in others],
        }
        return Answer(self._with_zone(text, res, zone), data, "slot_unavailable")

    def failure(self, err: CalsyncError, resource: str | None = None) -> Answer:
        """An error as an answer the model can say, in the resource's language."""
        try:
            language = self._svc.availability.resource(resource).language if resource else None
        except NotFoundError:
            language = None
        language = language or _shared_language(self._svc.availability.resources())
        key = "bad_input" if isinstance(err, InputError) else "failed"
        return Answer(
            phrases.say(language, key, detail=err.message), {"detail": err.message}, err.code
        )

    def _slot(self, res: Resource, span: TimeSpan, zone: ZoneInfo, now: datetime) -> dict[str, str]:
        return {
            "slot_id": slot_id(res.id, span),
            "start": span.start.astimezone(zone).isoformat(),
            "end": span.end.astimezone(zone).isoformat(),
            "spoken": self._spoken(span.start, zone, res, now),
        }

    def _appointment(
        self, booking: Booking, zone: ZoneInfo | None, now: datetime
    ) -> dict[str, Any]:
        try:
            res: Resource | None = self._svc.availability.resource(booking.resource)
        except NotFoundError:
            res = None
        tz = zone or (res.timezone if res else ZoneInfo("UTC"))
        return {
            "appointment_id": booking.id,
            "resource": booking.resource,
            "start": booking.span.start.astimezone(tz).isoformat(),
            "end": booking.span.end.astimezone(tz).isoformat(),
            "spoken": spoken(booking.span.start, tz, res.language if res else "en", now=now),
            "status": booking.status.value,
            "name": booking.attendee.name,
        }

    def _with(
        self, booking: Booking, language: str, now: datetime, zone: ZoneInfo | None = None
    ) -> str:
        res = self._svc.availability.resource(booking.resource)
        label = spoken(booking.span.start, zone or res.timezone, language, now=now)
        return phrases.say(language, "with", when=label, name=res.name)

    def _spoken(self, start: datetime, zone: ZoneInfo, res: Resource, now: datetime) -> str:
        return spoken(start, zone, res.language, now=now)

    def _with_zone(self, text: str, res: Resource, zone: ZoneInfo) -> str:
        if zone.key == res.timezone.key:
            return text
        named = phrases.zone_name(zone, res.language)
        return f"{text} {phrases.say(res.language, 'zone', zone=named)}"

    def _language(self, scope: Resource | None, found: list[Booking], default: str | None) -> str:
        """The resource's language; else the bookings', the default resource's or the shared one."""
        if scope is not None:
            return scope.language
        for resource in [b.resource for b in found] + ([default] if default else []):
            try:
                return self._svc.availability.resource(resource).language
            except NotFoundError:
                continue
        return _shared_language(self._svc.availability.resources())


def _shared_language(resources: list[Resource]) -> str:
    languages = {r.language for r in resources}
    return languages.pop() if len(languages) == 1 else "en"


def _numbers(raw: str, resources: list[Resource]) -> list[str]:
    """``raw`` in E.164, read in each resource's country (once per distinct reading)."""
    found: list[str] = []
    for resource in resources:
        try:
            phone = normalize_attendee(Attendee("-", raw), resource).phone
        except InputError:
            continue
        if phone and phone not in found:
            found.append(phone)
    if not found:
        raise InputError(f"phone: {raw!r} is not a phone number; give it with its country code")
    return found
