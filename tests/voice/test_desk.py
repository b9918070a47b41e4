"""The desk behind every platform: the six tools' answers, on SQLite and PostgreSQL.

``Desk.run`` is called directly with the app's own services (real store,
frozen clock at Monday 7 December 2026, 08:00 in Vienna), so these tests
see exactly what a platform hands its model: the sentence to say, the
data, and whether the tool did what was asked.
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from calsync.api.voice.calls import Answer, Call
from calsync.api.voice.desk import Desk
from calsync.api.voice.offers import spread
from calsync.model import BookingStatus, TimeSpan
from tests.voice.conftest import VIENNA, Voice, later

UTC = ZoneInfo("UTC")
ANNA = "+436641234567"
BERT = "+436769876543"
JOE = "+16465550134"  # a caller of the New York studio
_TOOL_CALLS = itertools.count(1)


class Caller:
    """One phone call: each use is a new tool call of that call, as a platform sends it."""

    def __init__(self, desk: Desk, phone: str | None, call_id: str) -> None:
        self.desk, self.phone, self.call_id = desk, phone, call_id

    def __call__(self, tool: str, *, default: str | None = None, **args: Any) -> Answer:
        call = Call("vapi", self.call_id, self.phone, f"call_{next(_TOOL_CALLS)}")
        return self.desk.run(tool, args, call, resource=default)


@pytest.fixture
def desk(voice: Voice) -> Desk:
    return Desk(voice.services)


@pytest.fixture
def anna(desk: Desk) -> Caller:
    return Caller(desk, ANNA, "call-anna")


@pytest.fixture
def bert(desk: Desk) -> Caller:
    return Caller(desk, BERT, "call-bert")


def starts(answer: Answer, zone: ZoneInfo = VIENNA) -> list[datetime]:
    return [datetime.fromisoformat(s["start"]).astimezone(zone) for s in answer.data["slots"]]


def vienna(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=VIENNA)


# --- spread ---------------------------------------------------------------------------------


def half_hours(first: datetime, count: int) -> list[TimeSpan]:
    return [
        TimeSpan(first + timedelta(minutes=30 * i), first + timedelta(minutes=30 * (i + 1)))
        for i in range(count)
    ]


def test_spread_picks_across_the_day_not_the_first_few() -> None:
    morning = half_hours(vienna(8, 8), 8)  # 08:00 .. 11:30

    picked = spread(morning, 3, VIENNA)

    assert [s.start for s in picked] == [vienna(8, 8), vienna(8, 10), vienna(8, 11, 30)]


def test_spread_shares_the_options_among_the_days() -> None:
    tuesday, wednesday = half_hours(vienna(8, 8), 8), half_hours(vienna(9, 8), 8)

    three = spread(tuesday + wednesday, 3, VIENNA)
    four = spread(tuesday + wednesday, 4, VIENNA)

    assert [s.start for s in three] == [vienna(8, 8), vienna(8, 11, 30), vienna(9, 8)]
    assert [s.start for s in four] == [
        vienna(8, 8), vienna(8, 11, 30), vienna(9, 8), vienna(9, 11, 30),
    ]  # fmt: skip


def test_spread_with_few_slots_returns_them_all_in_order() -> None:
    few = half_hours(vienna(8, 8), 2)
    assert spread(list(reversed(few)), 3, VIENNA) == few
    assert spread([], 3, VIENNA) == []


def test_spread_counts_days_in_the_zone_given() -> None:
    late = half_hours(datetime(2026, 12, 7, 22, 0, tzinfo=UTC), 4)  # 23:00 .. 00:30 in Vienna
    morning = half_hours(datetime(2026, 12, 8, 8, 0, tzinfo=UTC), 1)

    in_utc = spread(late + morning, 2, UTC)  # two UTC days: one option each
    in_vienna = spread(late + morning, 2, VIENNA)  # Vienna's 8 December starts at 23:00 UTC

    assert [s.start for s in in_utc] == [late[0].start, morning[0].start]
    assert [s.start for s in in_vienna] == [late[0].start, late[2].start]


# --- check_availability ---------------------------------------------------------------------


def test_after_and_before_bound_the_start_times(anna: Caller) -> None:
    answer = anna(
        "check_availability",
        resource="praxis", date="2026-12-08", after="14:00", before="15:00", limit=10,
    )  # fmt: skip

    assert answer.ok
    assert starts(answer) == [vienna(8, 14), vienna(8, 14, 30), vienna(8, 15)]
    assert answer.say == (
        "Praxis Dr. Huber hat frei: morgen um 14:00 Uhr, morgen um 14:30 Uhr "
        "oder morgen um 15:00 Uhr."
    )


def test_after_that_is_not_a_time_of_day_is_named(anna: Caller) -> None:
    answer = anna("check_availability", resource="studio", after="2 pm")

    assert not answer.ok
    assert answer.error == "invalid_input"
    assert "after" in answer.say
    assert "'2 pm' is not a time of day like 14:00" in answer.say


def test_end_date_spreads_the_options_over_the_days(anna: Caller) -> None:
    answer = anna("check_availability", resource="praxis", date="2026-12-08", end_date="2026-12-10")

    assert answer.ok
    assert [s.date() for s in starts(answer)] == [
        date(2026, 12, 8), date(2026, 12, 9), date(2026, 12, 10),
    ]  # fmt: skip
    assert "Donnerstag, 10. Dezember, um 08:00 Uhr" in answer.say


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ({"date": "2026-12-10", "end_date": "2026-12-08"}, "must not be before date"),
        ({"date": "2026-12-08", "end_date": "2027-01-20"}, "at most 31 days"),
        ({"date": "8.12.2026"}, "is not a date like 2026-12-07"),
    ],
)
def test_bad_ranges_are_said_plainly(anna: Caller, args: dict[str, str], says: str) -> None:
    answer = anna("check_availability", resource="praxis", **args)

    assert not answer.ok
    assert answer.say.startswith("Das konnte ich so nicht verwenden: ")  # German resource
    assert says in answer.say


@pytest.mark.parametrize(("day", "said"), [("2026-12-04", "4."), ("2026-12-06", "6.")])
def test_a_past_date_gets_a_clear_sentence(anna: Caller, day: str, said: str) -> None:
    answer = anna("check_availability", resource="praxis", date=day)

    assert not answer.ok
    assert answer.error == "invalid_input"
    assert answer.say == f"Der {said} Dezember 2026 ist schon vorbei; ich kann ab heute nachsehen."
    assert answer.data["detail"] == f"{day} is in the past; ask for today or a later day"


def test_today_offers_nothing_before_now(anna: Caller, voice: Voice) -> None:
    later(voice, 150)  # 10:30 in Vienna

    answer = anna("check_availability", resource="praxis", limit=10)

    assert answer.ok
    assert starts(answer)
    assert min(starts(answer)) >= vienna(7, 10, 30)
    assert all(s.date() == date(2026, 12, 7) for s in starts(answer))


def test_a_full_day_offers_the_next_free_times(anna: Caller, bert: Caller) -> None:
    late_morning = {"resource": "praxis", "date": "2026-12-09", "after": "11:00"}
    assert anna("book_appointment", resource="praxis", start="2026-12-09T11:00", name="Anna").ok
    assert bert("book_appointment", resource="praxis", start="2026-12-09T11:30", name="Bert").ok

    answer = anna("check_availability", **late_morning)

    assert answer.ok
    assert answer.say.startswith(
        "Praxis Dr. Huber hat da leider nichts frei. Die nächsten freien Termine: "
        "Donnerstag, 10. Dezember, um 11:00 Uhr"
    )
    found = starts(answer)
    assert len(found) == 3
    assert all(s.date() > date(2026, 12, 9) and s.hour >= 11 for s in found)  # filter kept


def test_a_closed_day_offers_the_next_free_times_in_english(anna: Caller) -> None:
    answer = anna("check_availability", resource="studio", date="2026-12-12")  # a Saturday

    assert answer.ok
    assert answer.say.startswith(
        "Brooklyn Studio has nothing free then. The next free times are "
        "Monday, December 14 at 9:00 AM"
    )


def test_unknown_and_missing_resource_sentences(anna: Caller) -> None:
    unknown = anna("check_availability", resource="zahnarzt")
    missing = anna("check_availability")
    defaulted = anna("check_availability", default="praxis")

    assert unknown.error == "unknown_resource"
    assert unknown.say == (
        "I don't know the calendar zahnarzt. "
        "There are praxis (Praxis Dr. Huber) and studio (Brooklyn Studio)."
    )
    assert missing.error == "resource_needed"
    assert missing.say == (
        "Which calendar do you mean: praxis (Praxis Dr. Huber) or studio (Brooklyn Studio)?"
    )
    assert missing.data["resources"] == ["praxis", "studio"]
    assert defaulted.ok
    assert defaulted.data["resource"] == "praxis"


def test_an_unknown_argument_is_named(anna: Caller) -> None:
    answer = anna("check_availability", resource="praxis", colour="blue")
    nameless = anna("book_appointment", resource="praxis", start="2026-12-08T09:00")

    assert not answer.ok
    assert answer.say == (
        "Das konnte ich so nicht verwenden: "
        "check_availability: colour is not an argument of this tool"
    )
    assert not nameless.ok
    assert "name is required" in nameless.say


# --- holds ----------------------------------------------------------------------------------


def test_a_second_hold_in_the_same_call_replaces_the_first(anna: Caller, bert: Caller) -> None:
    first = anna("hold_slot", resource="praxis", start="2026-12-08T10:00")
    second = anna("hold_slot", resource="praxis", start="2026-12-08T11:00")

    assert first.ok
    assert second.ok
    assert second.say == "Ich habe morgen um 11:00 Uhr für 5 Minuten für Sie reserviert."
    assert second.data["hold_id"] != first.data["hold_id"]
    assert bert("hold_slot", resource="praxis", start="2026-12-08T10:00").ok  # free again
    taken = bert("hold_slot", resource="praxis", start="2026-12-08T11:00")
    assert taken.error == "slot_unavailable"


def test_a_retried_hold_of_the_same_time_keeps_the_hold(
    desk: Desk, voice: Voice, bert: Caller
) -> None:
    call = Call("vapi", "call-anna", ANNA, "call_hold_once")
    args = {"resource": "praxis", "start": "2026-12-08T10:00"}
    first = desk.run("hold_slot", args, call)
    later(voice, 3)  # the desk has forgotten the answer; the booking service keeps the hold
    again = desk.run("hold_slot", args, call)

    assert again.ok
    assert again.data["hold_id"] == first.data["hold_id"]
    assert not bert("hold_slot", **args).ok


def test_a_hold_expires_after_five_minutes(anna: Caller, bert: Caller, voice: Voice) -> None:
    ten = {"resource": "praxis", "start": "2026-12-08T10:00"}
    held = anna("hold_slot", **ten)
    assert held.data["expires_at"] == "2026-12-07T08:05:00+01:00"
    later(voice, 4)
    assert bert("hold_slot", **ten).error == "slot_unavailable"
    offered = bert("check_availability", resource="praxis", date="2026-12-08", limit=10,
                   after="10:00", before="10:00")  # fmt: skip
    assert vienna(8, 10) not in starts(offered)

    later(voice, 2)  # 6 minutes after the hold

    offered = bert("check_availability", resource="praxis", date="2026-12-08", limit=10,
                   after="10:00", before="10:00")  # fmt: skip
    assert starts(offered) == [vienna(8, 10)]
    assert bert("hold_slot", **ten).ok


# --- reschedule -----------------------------------------------------------------------------


def test_rescheduling_into_a_taken_time_is_refused_with_alternatives(
    anna: Caller, bert: Caller, voice: Voice
) -> None:
    mine = anna("book_appointment", resource="praxis", start="2026-12-08T09:00", name="Anna")
    assert bert("book_appointment", resource="praxis", start="2026-12-08T10:00", name="Bert").ok

    refused = anna("reschedule_appointment", start="2026-12-08T10:00")

    assert not refused.ok
    assert refused.error == "slot_unavailable"
    assert refused.say.startswith("Dieser Termin ist leider schon vergeben. Frei wären ")
    alternatives = refused.data["alternatives"]
    assert alternatives
    assert "2026-12-08T10:00:00+01:00" not in [a["start"] for a in alternatives]
    assert all(a["spoken"] in refused.say for a in alternatives)
    kept = voice.services.bookings.get(mine.data["appointment_id"])
    assert kept.span.start == vienna(8, 9)
    assert kept.status is BookingStatus.CONFIRMED


def test_rescheduling_keeps_the_appointment(anna: Caller, voice: Voice) -> None:
    mine = anna("book_appointment", resource="praxis", start="2026-12-08T09:00", name="Anna")

    moved = anna("reschedule_appointment", start="2026-12-10T15:30")

    assert moved.ok
    assert moved.say == "Ihr Termin ist verschoben auf Donnerstag, 10. Dezember, um 15:30 Uhr."
    assert moved.data["appointment_id"] == mine.data["appointment_id"]
    assert voice.services.bookings.get(mine.data["appointment_id"]).span.start == vienna(10, 15, 30)
    nine = anna("check_availability", resource="praxis", date="2026-12-08", after="09:00",
                before="09:00")  # fmt: skip
    assert starts(nine) == [vienna(8, 9)]  # the old time is free again


# --- find and cancel by phone ---------------------------------------------------------------


def test_find_with_a_local_number_finds_the_international_one(desk: Desk) -> None:
    booker = Caller(desk, None, "call-web")
    booked = booker(
        "book_appointment",
        resource="praxis", start="2026-12-08T09:00", name="Anna Berger", phone="+43 664 1234567",
    )  # fmt: skip
    caller = Caller(desk, "+4319876543", "call-from-the-office")  # not the number booked under

    found = caller("find_my_appointments", phone="0664 1234567", resource="praxis")
    by_default = caller("find_my_appointments", phone="0664/123 45 67", default="praxis")

    assert booked.ok
    assert found.ok
    assert [a["appointment_id"] for a in found.data["appointments"]] == [
        booked.data["appointment_id"]
    ]
    assert found.say == (
        "Sie haben einen kommenden Termin: morgen um 09:00 Uhr bei Praxis Dr. Huber."
    )
    assert by_default.data["appointments"] == found.data["appointments"]


def test_find_with_a_local_number_of_another_resources_country(desk: Desk) -> None:
    joe = Caller(desk, JOE, "call-joe")
    booked = joe("book_appointment", resource="studio", start="2026-12-08T11:00", name="Joe")
    asking = Caller(desk, None, "call-web")  # no caller number (a web call)

    found = asking("find_my_appointments", phone="(646) 555-0134")

    assert found.ok
    assert [a["appointment_id"] for a in found.data["appointments"]] == [
        booked.data["appointment_id"]
    ]


def test_cancel_with_several_appointments_asks_which_one(anna: Caller, voice: Voice) -> None:
    nine = anna("book_appointment", resource="praxis", start="2026-12-08T09:00", name="Anna")
    three = anna("book_appointment", resource="praxis", start="2026-12-10T15:00", name="Anna")

    which = anna("cancel_appointment")

    assert not which.ok
    assert which.error == "which_one"
    assert which.say == (
        "Sie haben mehrere Termine: morgen um 09:00 Uhr bei Praxis Dr. Huber oder "
        "Donnerstag, 10. Dezember, um 15:00 Uhr bei Praxis Dr. Huber. Welchen meinen Sie?"
    )
    ids = [a["appointment_id"] for a in which.data["appointments"]]
    assert ids == [nine.data["appointment_id"], three.data["appointment_id"]]
    for appointment in ids:
        assert voice.services.bookings.get(appointment).status is BookingStatus.CONFIRMED

    chosen = anna("cancel_appointment", appointment_id=three.data["appointment_id"])

    assert chosen.ok
    assert chosen.say == "Ihr Termin Donnerstag, 10. Dezember, um 15:00 Uhr ist storniert."
    assert voice.services.bookings.get(ids[0]).status is BookingStatus.CONFIRMED
    assert voice.services.bookings.get(ids[1]).status is BookingStatus.CANCELLED


def test_someone_elses_appointment_cannot_be_cancelled_or_moved(
    anna: Caller, bert: Caller, voice: Voice
) -> None:
    theirs = bert("book_appointment", resource="praxis", start="2026-12-08T09:00", name="Bert")
    appointment = theirs.data["appointment_id"]

    cancel = anna("cancel_appointment", appointment_id=appointment)
    move = anna("reschedule_appointment", appointment_id=appointment, start="2026-12-08T11:00")
    made_up = anna("cancel_appointment", appointment_id="00000000-0000-0000-0000-000000000000")

    for refused in (cancel, move, made_up):
        assert not refused.ok
        assert refused.error == "not_found"
        assert ANNA in refused.say
        assert "Bert" not in str(refused.data)  # nothing of the other caller's appointment
    kept = voice.services.bookings.get(appointment)
    assert kept.status is BookingStatus.CONFIRMED
    assert kept.span.start == vienna(8, 9)


def test_refusals_speak_the_default_resources_language(anna: Caller, bert: Caller) -> None:
    theirs = bert("book_appointment", resource="praxis", start="2026-12-08T09:00", name="Bert")

    refused = anna("cancel_appointment", appointment_id=theirs.data["appointment_id"],
                   default="praxis")  # fmt: skip
    none = anna("reschedule_appointment", start="2026-12-08T11:00", default="praxis")

    assert refused.say == f"Ich finde diesen Termin für {ANNA} nicht."
    assert none.say == f"Ich finde keine kommenden Termine für {ANNA}."


# --- retries racing the first request -------------------------------------------------------


def test_a_retry_racing_the_first_request_books_once(desk: Desk, voice: Voice) -> None:
    call = Call("vapi", "call-anna", ANNA, "call_race")
    args = {"resource": "praxis", "start": "2026-12-08T09:00", "name": "Anna Berger"}

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: desk.run("book_appointment", args, call), range(6)))

    assert all(a.ok for a in answers), [a.say for a in answers]
    assert len({a.data["appointment_id"] for a in answers}) == 1
    found = voice.services.bookings.find(resource="praxis")
    assert [b.id for b in found] == [answers[0].data["appointment_id"]]


def test_find_says_the_times_in_the_callers_zone(desk: Desk) -> None:
    joe = Caller(desk, JOE, "call-joe")
    joe("book_appointment", resource="studio", start="2026-12-08T11:00", name="Joe")

    at_home = joe("find_my_appointments")
    travelling = joe("find_my_appointments", timezone="Europe/London")

    assert at_home.say == (
        "You have one upcoming appointment: tomorrow at 11:00 AM with Brooklyn Studio."
    )
    assert travelling.say == (
        "You have one upcoming appointment: tomorrow at 4:00 PM with Brooklyn Studio. "
        "All times are United Kingdom Time."
    )
    assert travelling.data["appointments"][0]["start"] == "2026-12-08T16:00:00+00:00"


@pytest.mark.parametrize(
    ("tool", "args", "says"),
    [
        ("check_availability", {"date": "9999-12-31"}, "date: 9999-12-31 is out of range"),
        ("check_availability", {"end_date": "9999-12-31"}, "end_date: 9999-12-31 is out of range"),
        ("hold_slot", {"start": "9999-12-31T23:30"}, "start: 9999-12-31 is out of range"),
        ("hold_slot", {"slot_id": "praxis/9999-12-31T23:59Z/30"}, "slot_id: 9999-12-31 is out"),
        ("check_availability", {"timezone": "Mars/Base"}, "timezone: unknown time zone"),
    ],
)
def test_dates_beyond_reason_and_bad_zones_are_sentences(
    anna: Caller, tool: str, args: dict[str, str], says: str
) -> None:
    answer = anna(tool, resource="praxis", **args)

    assert not answer.ok
    assert answer.error == "invalid_input"
    assert says in answer.say


def test_a_resource_that_is_not_a_string_is_a_sentence(anna: Caller) -> None:
    answer = anna("check_availability", resource=["praxis"])

    assert answer.error == "invalid_input"
    assert "resource: Input should be a valid string" in answer.say
