"""Vapi, Retell and ElevenLabs requests replayed against the real app, on SQLite and PostgreSQL.

The bodies come from ``tests.voice.bodies`` (the platforms' documented
shapes, with the extra fields a live call carries), so these tests check
that each adapter reads the platform's real format: the tool name, the
arguments, the call id and the caller's number, and that retries of one
tool call never book twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from retell.lib.webhook_auth import symmetric

from calsync.model import Booking, BookingStatus, TimeSpan
from tests.voice.bodies import (
    NOW_MS,
    PRAXIS_LINE,
    elevenlabs_body,
    retell_call,
    retell_event,
    retell_function,
    stringify,
    vapi_call,
    vapi_end_of_call,
    vapi_results,
    vapi_status_update,
    vapi_tool_call,
    vapi_tool_calls,
)
from tests.voice.conftest import NEW_YORK, VIENNA, Voice, build, later

UTC = ZoneInfo("UTC")
LONDON = ZoneInfo("Europe/London")
ANNA = "+436641234567"  # callers of the praxis
BERT = "+436769876543"
JOE = "+16465550134"  # a caller of the studio in New York
KATE = "+442079460958"  # a caller of the studio in London
TUE_9 = datetime(2026, 12, 8, 9, 0, tzinfo=VIENNA)
TUE_10 = datetime(2026, 12, 8, 10, 0, tzinfo=VIENNA)
RETELL_KEY = "key_6f2b0c9d8e7a41f3b5c2d1e0"


def active_at(voice: Voice, resource: str, start: datetime) -> list[Booking]:
    """The resource's bookings (not cancelled) starting at ``start``, from the store."""
    found = voice.services.bookings.find(
        resource=resource, span=TimeSpan(start, start + timedelta(minutes=30))
    )
    return [b for b in found if b.span.start == start and b.status is not BookingStatus.CANCELLED]


# --- Vapi -----------------------------------------------------------------------------------


def vapi(voice: Voice, call_id: str, *tool_calls: dict[str, Any], **extra: Any) -> Any:
    return voice.post("/voice/vapi", vapi_tool_calls(call_id, *tool_calls, **extra))


def vapi_one(
    voice: Voice, call_id: str, tool_call_id: str, name: str, args: dict[str, Any], **extra: Any
) -> tuple[str, dict[str, Any]]:
    """Run one tool call; ("result" or "error", the answer)."""
    answer = vapi(voice, call_id, vapi_tool_call(tool_call_id, name, args), **extra)
    return vapi_results(answer)[tool_call_id]


def test_vapi_arguments_as_object_and_as_json_string(voice: Voice) -> None:
    args = {"resource": "praxis", "date": "2026-12-08", "after": "14:00"}
    as_object = vapi(voice, "call-obj", vapi_tool_call("call_a1", "check_availability", args))
    as_string = vapi(
        voice, "call-str", vapi_tool_call("call_b1", "check_availability", args, as_string=True)
    )

    field, first = vapi_results(as_object)["call_a1"]
    assert field == "result"
    assert first["ok"] is True
    assert first["say"].startswith("Praxis Dr. Huber hat frei: morgen um 14:00 Uhr")
    starts = [datetime.fromisoformat(s["start"]) for s in first["slots"]]
    assert starts
    assert all(s.date().isoformat() == "2026-12-08" and s.hour >= 14 for s in starts)
    assert all(s.utcoffset() == timedelta(hours=1) for s in starts)  # said in Vienna time
    assert vapi_results(as_string)["call_b1"] == ("result", first)


def test_vapi_several_tool_calls_get_one_result_each(voice: Voice) -> None:
    ten = {"resource": "praxis", "start": "2026-12-08T10:00"}
    answer = vapi(
        voice,
        "call-many",
        vapi_tool_call("call_praxis", "check_availability", {"resource": "praxis"}),
        vapi_tool_call("call_studio", "check_availability", {"resource": "studio"}),
        vapi_tool_call("call_hold", "hold_slot", ten),
        vapi_tool_call("call_odd", "transfer_call", {"destination": "+4312345"}),
    )

    results = vapi_results(answer)
    assert set(results) == {"call_praxis", "call_studio", "call_hold", "call_odd"}
    assert results["call_praxis"][0] == "result"
    assert results["call_praxis"][1]["resource"] == "praxis"
    assert "hat frei" in results["call_praxis"][1]["say"]
    assert results["call_studio"][0] == "result"
    assert results["call_studio"][1]["resource"] == "studio"
    assert results["call_studio"][1]["say"].startswith("Brooklyn Studio is free today at 9:00 AM")
    field, held = results["call_hold"]
    assert field == "result"
    assert held["hold_id"]
    assert held["start"] == "2026-12-08T10:00:00+01:00"
    field, odd = results["call_odd"]
    assert field == "error"
    assert "transfer_call" in odd["say"]
    assert "check_availability" in odd["say"]  # names the tools there are


def test_vapi_retried_book_returns_the_same_appointment(voice: Voice) -> None:
    book = vapi_tool_call(
        "call_Bk7dQ2", "book_appointment",
        {"resource": "praxis", "start": "2026-12-08T09:00", "name": "Anna Berger"},
    )  # fmt: skip
    first = vapi_results(vapi(voice, "call-anna", book, customer=ANNA))["call_Bk7dQ2"]
    again = vapi_results(vapi(voice, "call-anna", book, customer=ANNA))["call_Bk7dQ2"]
    later(voice, 3)  # past the desk's memory of recent answers: the store's key answers
    late = vapi_results(vapi(voice, "call-anna", book, customer=ANNA))["call_Bk7dQ2"]

    assert first[0] == "result"
    assert first[1]["say"] == "Ihr Termin bei Praxis Dr. Huber ist gebucht: morgen um 09:00 Uhr."
    appointment = first[1]["appointment_id"]
    assert again[1]["appointment_id"] == appointment
    assert late[0] == "result"
    assert late[1]["appointment_id"] == appointment
    (booked,) = active_at(voice, "praxis", TUE_9)
    assert booked.id == appointment
    assert booked.attendee.name == "Anna Berger"
    assert booked.attendee.phone == ANNA  # the caller, from message.call.customer


@pytest.mark.parametrize("where", ["message.customer", "message.call.customer"])
def test_vapi_caller_number_from_either_customer(voice: Voice, where: str) -> None:
    book = vapi_tool_call(
        "call_c1", "book_appointment",
        {"resource": "praxis", "start": "2026-12-08T09:00", "name": "Anna Berger"},
    )  # fmt: skip
    body = vapi_tool_calls("call-anna", book, customer=ANNA, kind="outboundPhoneCall")
    if where == "message.customer":
        del body["message"]["call"]["customer"]
    else:
        del body["message"]["customer"]

    assert vapi_results(voice.post("/voice/vapi", body))["call_c1"][0] == "result"
    (booked,) = active_at(voice, "praxis", TUE_9)
    assert booked.attendee.phone == ANNA


def test_vapi_another_caller_cannot_book_a_taken_time(voice: Voice) -> None:
    args = {"resource": "praxis", "start": "2026-12-08T09:00", "name": "Anna Berger"}
    vapi_one(voice, "call-anna", "call_a", "book_appointment", args, customer=ANNA)
    args = {**args, "name": "Bert Gruber"}
    field, refused = vapi_one(voice, "call-bert", "call_b", "book_appointment", args, customer=BERT)

    assert field == "error"
    assert refused["ok"] is False
    assert refused["error"] == "slot_unavailable"
    assert refused["say"].startswith("Dieser Termin ist leider schon vergeben. Frei wären ")
    alternatives = refused["alternatives"]
    assert alternatives
    for alternative in alternatives:
        assert alternative["start"] != "2026-12-08T09:00:00+01:00"
        assert alternative["spoken"] in refused["say"]
        assert alternative["slot_id"].startswith("praxis/")
    (kept,) = active_at(voice, "praxis", TUE_9)
    assert kept.attendee.name == "Anna Berger"


def test_vapi_end_of_call_report_releases_the_calls_hold(voice: Voice) -> None:
    ten = {"resource": "praxis", "start": "2026-12-08T10:00"}
    assert vapi_one(voice, "call-anna", "call_h1", "hold_slot", ten, customer=ANNA)[0] == "result"
    field, refused = vapi_one(voice, "call-bert", "call_h2", "hold_slot", ten, customer=BERT)
    assert field == "error"
    assert refused["error"] == "slot_unavailable"

    other = voice.post("/voice/vapi", vapi_end_of_call("call-someone-else"))
    assert other.status_code == 200
    field, _ = vapi_one(voice, "call-bert", "call_h3", "hold_slot", ten, customer=BERT)
    assert field == "error"  # another call's end released nothing of Anna's

    ended = voice.post("/voice/vapi", vapi_end_of_call("call-anna", ANNA))
    assert ended.status_code == 200
    field, held = vapi_one(voice, "call-bert", "call_h4", "hold_slot", ten, customer=BERT)
    assert field == "result"
    assert held["start"] == "2026-12-08T10:00:00+01:00"


@pytest.mark.parametrize("status", ["ringing", "in-progress", "ended"])
def test_vapi_other_server_messages_are_acknowledged_and_ignored(voice: Voice, status: str) -> None:
    ten = {"resource": "praxis", "start": "2026-12-08T10:00"}
    vapi_one(voice, "call-anna", "call_h1", "hold_slot", ten, customer=ANNA)

    answer = voice.post("/voice/vapi", vapi_status_update("call-anna", status))

    assert answer.status_code == 200
    assert "results" not in answer.json()
    speech = {"message": {"type": "speech-update", "status": "started", "role": "assistant"}}
    assert voice.post("/voice/vapi", speech).status_code == 200
    field, _ = vapi_one(voice, "call-bert", "call_h2", "hold_slot", ten, customer=BERT)
    assert field == "error"  # Anna's hold stands


def test_vapi_message_with_tool_with_tool_call_list_only(voice: Voice) -> None:
    body = vapi_tool_calls(
        "call-old", vapi_tool_call("call_w1", "check_availability", {"resource": "studio"})
    )
    del body["message"]["toolCallList"]
    del body["message"]["toolCalls"]

    field, answer = vapi_results(voice.post("/voice/vapi", body))["call_w1"]

    assert field == "result"
    assert answer["resource"] == "studio"


def test_vapi_invalid_json_is_a_400(voice: Voice) -> None:
    answer = voice.client.post(
        "/voice/vapi",
        content=b'{"message": {"type": "tool-calls",',
        headers={**voice.auth, "Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_json"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer csk_not_a_key"}])
def test_vapi_without_a_valid_key_is_a_401(voice: Voice, headers: dict[str, str]) -> None:
    body = vapi_tool_calls(
        "call-x", vapi_tool_call("call_1", "book_appointment", {"resource": "praxis",
                                 "start": "2026-12-08T09:00", "name": "Anna Berger"})
    )  # fmt: skip
    answer = voice.client.post("/voice/vapi", json=body, headers=headers)

    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthorized"
    assert active_at(voice, "praxis", TUE_9) == []


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"message": "tool-calls"}, "Vapi server message"),
        ({"type": "tool-calls", "toolCallList": []}, "Vapi server message"),
        ({"message": {"call": {"id": "c"}, "toolCallList": []}}, "Vapi server message"),
        ({"message": {"type": "tool-calls", "call": vapi_call("c", ANNA)}}, "toolCallList"),
        ({"message": {"type": "tool-calls", "toolCallList": []}}, "toolCallList"),
        ([{"message": {"type": "tool-calls"}}], "JSON object"),
    ],
)
def test_vapi_malformed_message_is_a_422_saying_what_is_wrong(
    voice: Voice, body: Any, says: str
) -> None:
    answer = voice.post("/voice/vapi", body)

    assert answer.status_code == 422
    assert says in answer.json()["error"]["message"]


@pytest.mark.parametrize("field", ["arguments", "parameters"])
def test_vapi_flat_tool_call_entries_from_the_docs(voice: Voice, field: str) -> None:
    """Vapi's pages also show ``{id, name, arguments}`` (tools/custom-tools.mdx) and
    ``{id, name, parameters}`` (server-url/events.mdx) entries."""
    entry = {"id": "call_flat", "name": "check_availability", field: {"resource": "praxis"}}
    body = vapi_tool_calls("call-flat")
    body["message"]["toolCallList"] = [entry]

    result, answer = vapi_results(voice.post("/voice/vapi", body))["call_flat"]

    assert result == "result"
    assert answer["resource"] == "praxis"


# --- Retell ---------------------------------------------------------------------------------


def retell(
    voice: Voice, name: str, args: dict[str, Any], call: dict[str, Any], query: str = ""
) -> Any:
    answer = voice.post(f"/voice/retell/{name}{query}", retell_function(name, args, call))
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_retell_args_nested_and_at_root(voice: Voice) -> None:
    args = {"resource": "praxis", "date": "2026-12-09", "before": "09:00"}
    nested = retell(voice, "check_availability", args, retell_call("call_r1", ANNA))
    at_root = voice.post("/voice/retell/check_availability", args)  # "Payload: args only"

    assert nested["ok"] is True
    assert nested["say"] == (
        "Praxis Dr. Huber hat frei: Mittwoch, 9. Dezember, um 08:00 Uhr, "
        "Mittwoch, 9. Dezember, um 08:30 Uhr oder Mittwoch, 9. Dezember, um 09:00 Uhr."
    )
    assert at_root.status_code == 200
    assert at_root.json() == nested


def test_retell_caller_is_from_number_inbound_and_to_number_outbound(voice: Voice) -> None:
    inbound = retell_call("call_in", ANNA, direction="inbound")
    outbound = retell_call("call_out", BERT, direction="outbound")
    nine = {"resource": "praxis", "start": "2026-12-08T09:00", "name": "Anna Berger"}
    ten = {"resource": "praxis", "start": "2026-12-08T10:00", "name": "Bert Gruber"}

    assert inbound["from_number"] == ANNA
    assert outbound["from_number"] == PRAXIS_LINE
    assert retell(voice, "book_appointment", nine, inbound)["ok"] is True
    assert retell(voice, "book_appointment", ten, outbound)["ok"] is True

    (anna,) = active_at(voice, "praxis", TUE_9)
    (bert,) = active_at(voice, "praxis", TUE_10)
    assert anna.attendee.phone == ANNA
    assert bert.attendee.phone == BERT  # the person called, not the praxis's own line


def test_retell_german_caller_books_finds_and_cancels_by_phone(voice: Voice) -> None:
    call = retell_call("call_5e1f0a", ANNA)
    offered = retell(
        voice, "check_availability", {"resource": "praxis", "date": "2026-12-10"}, call
    )
    slot = offered["slots"][0]
    booked = retell(
        voice, "book_appointment",
        {"slot_id": slot["slot_id"], "name": "Jürgen Müller", "notes": "Kontrolle"}, call,
    )  # fmt: skip
    found = retell(voice, "find_my_appointments", {}, retell_call("call_later", ANNA))
    cancelled = retell(
        voice, "cancel_appointment", {"reason": "verhindert"}, retell_call("call_later", ANNA)
    )
    after = retell(voice, "find_my_appointments", {}, retell_call("call_later", ANNA))

    assert slot["spoken"] == "Donnerstag, 10. Dezember, um 08:00 Uhr"
    assert booked["say"] == (
        "Ihr Termin bei Praxis Dr. Huber ist gebucht: Donnerstag, 10. Dezember, um 08:00 Uhr."
    )
    assert found["say"] == (
        "Sie haben einen kommenden Termin: "
        "Donnerstag, 10. Dezember, um 08:00 Uhr bei Praxis Dr. Huber."
    )
    assert [a["appointment_id"] for a in found["appointments"]] == [booked["appointment_id"]]
    assert cancelled["ok"] is True
    assert cancelled["say"] == "Ihr Termin Donnerstag, 10. Dezember, um 08:00 Uhr ist storniert."
    assert after["ok"] is True
    assert after["appointments"] == []
    stored = voice.services.bookings.get(booked["appointment_id"])
    assert stored.status is BookingStatus.CANCELLED
    assert stored.attendee.name == "Jürgen Müller"
    assert stored.attendee.phone == ANNA


def test_retell_retried_function_call_books_once(voice: Voice) -> None:
    call = retell_call("call_retry", ANNA)
    args = {"resource": "praxis", "start": "2026-12-08T09:00", "name": "Anna Berger"}

    first = retell(voice, "book_appointment", args, call)
    again = retell(voice, "book_appointment", args, call)  # Retell retries a failed request
    later(voice, 3)
    late = retell(voice, "book_appointment", args, call)

    assert first["ok"] is True
    assert again["appointment_id"] == first["appointment_id"]
    assert late["appointment_id"] == first["appointment_id"]
    assert len(active_at(voice, "praxis", TUE_9)) == 1


def test_retell_call_ended_event_releases_the_calls_holds(voice: Voice) -> None:
    ten = {"resource": "praxis", "start": "2026-12-08T10:00"}
    anna = retell_call("call_anna", ANNA)
    assert retell(voice, "hold_slot", ten, anna)["ok"] is True
    assert retell(voice, "hold_slot", ten, retell_call("call_bert", BERT))["ok"] is False

    ended = voice.post("/voice/retell/events", retell_event("call_ended", anna))

    assert ended.status_code == 200
    assert retell(voice, "hold_slot", ten, retell_call("call_bert", BERT))["ok"] is True


def test_retell_nothing_found_is_said_in_the_default_resources_language(voice: Voice) -> None:
    """With two languages configured, the URL's default resource picks the language."""
    praxis = "?resource=praxis"  # how a praxis's agent points its function URLs at calsync
    found = retell(voice, "find_my_appointments", {}, retell_call("call_c", ANNA), praxis)
    cancel = retell(voice, "cancel_appointment", {}, retell_call("call_c", ANNA), praxis)
    web = {
        "call_id": "call_web",
        "agent_id": "agent_3f6c",
        "call_type": "web_call",
        "call_status": "ongoing",
        "access_token": "eyJhbGciOi...",
    }  # no phone number
    anonymous = retell(voice, "find_my_appointments", {}, web, praxis)

    assert found["say"] == f"Ich finde keine kommenden Termine für {ANNA}."
    assert cancel["say"] == f"Ich finde keine kommenden Termine für {ANNA}."
    assert anonymous["say"] == (
        "Ich brauche die Telefonnummer, unter der der Termin gebucht wurde."
    )


def test_retell_args_at_root_keeps_the_name_argument(voice: Voice) -> None:
    """At the root, book_appointment's own ``name`` (the caller's) is an argument."""
    args = {"resource": "praxis", "start": "2026-12-08T09:00", "name": "Anna Berger", "phone": ANNA}

    answer = voice.post("/voice/retell/book_appointment", args)

    assert answer.json()["ok"] is True
    (booked,) = active_at(voice, "praxis", TUE_9)
    assert booked.attendee.name == "Anna Berger"


def test_retell_holding_a_time_again_after_another_holds_it(voice: Voice) -> None:
    """Without tool call ids, the same arguments after another write are a new request."""
    call = retell_call("call_anna", ANNA)
    ten = {"resource": "praxis", "start": "2026-12-08T10:00"}
    eleven = {"resource": "praxis", "start": "2026-12-08T11:00"}
    retell(voice, "hold_slot", ten, call)
    retell(voice, "hold_slot", eleven, call)  # replaces the hold of 10:00
    retell(voice, "hold_slot", ten, call)  # the caller changes their mind back

    other = retell(voice, "hold_slot", ten, retell_call("call_bert", BERT))

    assert other["ok"] is False  # 10:00 is Anna's again


def test_retell_booking_again_after_cancelling_books(voice: Voice) -> None:
    """Without tool call ids, booking a time this call cancelled books it again."""
    call = retell_call("call_anna", ANNA)
    args = {"resource": "praxis", "start": "2026-12-08T09:00", "name": "Anna Berger"}
    retell(voice, "book_appointment", args, call)
    retell(voice, "cancel_appointment", {}, call)

    again = retell(voice, "book_appointment", args, call)

    assert again["ok"] is True
    assert again["status"] == "confirmed"
    assert len(active_at(voice, "praxis", TUE_9)) == 1


# --- Retell signatures ----------------------------------------------------------------------


@pytest.fixture
def signed(db_url: str, tmp_path: Path) -> Iterator[Voice]:
    """The app with voice.retell_api_key_file set: Retell's signature is the credential."""
    built, store = build(db_url, tmp_path, retell_key=RETELL_KEY)
    with built.client:
        yield built
    store.close()


def signed_body() -> str:
    args = {"resource": "praxis", "start": "2026-12-08T09:00", "name": "Jürgen Müller"}
    return stringify(retell_function("book_appointment", args, retell_call("call_sig", ANNA)))


def post_raw(voice: Voice, raw: str, **headers: str) -> Any:
    return voice.client.post(
        "/voice/retell/book_appointment",
        content=raw.encode(),
        headers={"Content-Type": "application/json", **headers},
    )


def test_retell_request_signed_by_retells_own_signer_is_accepted(signed: Voice) -> None:
    raw = signed_body()
    signature = symmetric["sign"](raw, RETELL_KEY, NOW_MS)

    answer = post_raw(signed, raw, **{"X-Retell-Signature": signature})  # no API key

    assert answer.status_code == 200, answer.text
    assert answer.json()["ok"] is True
    (booked,) = active_at(signed, "praxis", TUE_9)
    assert booked.attendee.name == "Jürgen Müller"


FIVE_MINUTES_MS = 5 * 60 * 1000


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param(lambda raw: None, id="unsigned"),
        pytest.param(lambda raw: "", id="empty"),
        pytest.param(lambda raw: "sha256=deadbeef", id="not-retells-format"),
        pytest.param(lambda raw: symmetric["sign"](raw, "key_other", NOW_MS), id="wrong-key"),
        pytest.param(
            lambda raw: symmetric["sign"](raw, RETELL_KEY, NOW_MS - FIVE_MINUTES_MS - 1000),
            id="stale",
        ),
        pytest.param(
            lambda raw: symmetric["sign"](raw, RETELL_KEY, NOW_MS + FIVE_MINUTES_MS + 1000),
            id="from-the-future",
        ),
        pytest.param(
            lambda raw: symmetric["sign"](raw.replace("09:00", "10:00"), RETELL_KEY, NOW_MS),
            id="body-changed-after-signing",
        ),
    ],
)
def test_retell_request_without_a_good_signature_is_a_401(signed: Voice, signature: Any) -> None:
    raw = signed_body()
    header = signature(raw)
    headers = {} if header is None else {"X-Retell-Signature": header}

    answer = post_raw(signed, raw, **headers, **signed.auth)  # an API key does not stand in

    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthorized"
    assert "X-Retell-Signature" in answer.json()["error"]["message"]
    assert active_at(signed, "praxis", TUE_9) == []


def test_retell_signed_request_replayed_later_is_a_401(signed: Voice) -> None:
    raw = signed_body()
    signature = symmetric["sign"](raw, RETELL_KEY, NOW_MS)
    later(signed, 6)

    answer = post_raw(signed, raw, **{"X-Retell-Signature": signature})

    assert answer.status_code == 401


def test_retell_without_a_retell_key_needs_an_api_key(voice: Voice) -> None:
    raw = signed_body()
    assert post_raw(voice, raw).status_code == 401
    assert post_raw(voice, raw, **voice.auth).status_code == 200


# --- ElevenLabs -----------------------------------------------------------------------------


def elevenlabs(
    voice: Voice, name: str, params: dict[str, Any], *, conversation: str, caller: str | None
) -> dict[str, Any]:
    body = elevenlabs_body(params, conversation_id=conversation, caller_id=caller)
    answer = voice.post(f"/voice/elevenlabs/{name}", body)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def test_elevenlabs_english_caller_books_finds_and_cancels(voice: Voice) -> None:
    conv = {"conversation": "conv_01jf8x2k9q", "caller": JOE}
    offered = elevenlabs(voice, "check_availability", {"resource": "studio"}, **conv)
    first = offered["slots"][0]
    booked = elevenlabs(
        voice, "book_appointment", {"slot_id": first["slot_id"], "name": "Joe Rivera"}, **conv
    )
    found = elevenlabs(voice, "find_my_appointments", {}, **conv)
    cancelled = elevenlabs(voice, "cancel_appointment", {}, **conv)

    assert offered["say"] == (
        "Brooklyn Studio is free today at 9:00 AM, today at 1:00 PM, or today at 4:00 PM."
    )
    assert first["start"] == "2026-12-07T09:00:00-05:00"
    assert booked["say"] == "Your appointment with Brooklyn Studio is booked for today at 9:00 AM."
    assert found["say"] == (
        "You have one upcoming appointment: today at 9:00 AM with Brooklyn Studio."
    )
    assert cancelled["say"] == "Your appointment today at 9:00 AM is cancelled."
    stored = voice.services.bookings.get(booked["appointment_id"])
    assert stored.status is BookingStatus.CANCELLED
    assert stored.attendee.phone == JOE  # from caller_id (system__caller_id)
    assert stored.span.start == datetime(2026, 12, 7, 9, 0, tzinfo=NEW_YORK)


def test_elevenlabs_retried_webhook_books_once(voice: Voice) -> None:
    conv = {"conversation": "conv_retry", "caller": JOE}
    args = {"resource": "studio", "start": "2026-12-08T11:00", "name": "Joe Rivera"}

    first = elevenlabs(voice, "book_appointment", args, **conv)
    again = elevenlabs(voice, "book_appointment", args, **conv)
    later(voice, 3)
    late = elevenlabs(voice, "book_appointment", args, **conv)

    assert first["ok"] is True
    assert again["appointment_id"] == first["appointment_id"]
    assert late["appointment_id"] == first["appointment_id"]
    assert late["status"] == "confirmed"
    eleven = datetime(2026, 12, 8, 11, 0, tzinfo=NEW_YORK)
    assert len(active_at(voice, "studio", eleven)) == 1


def test_elevenlabs_caller_in_another_time_zone(voice: Voice) -> None:
    conv = {"conversation": "conv_london", "caller": KATE}
    london = {"resource": "studio", "timezone": "Europe/London"}

    offered = elevenlabs(voice, "check_availability", london, **conv)
    booked = elevenlabs(
        voice, "book_appointment",
        {**london, "start": "2026-12-08T15:00", "name": "Kate Hughes"}, **conv,
    )  # fmt: skip

    # 09:00 in New York is 14:00 in London: said in the caller's zone, and the zone named
    assert offered["say"] == (
        "Brooklyn Studio is free today at 2:00 PM, today at 6:00 PM, or today at 9:00 PM. "
        "All times are United Kingdom Time."
    )
    assert offered["timezone"] == "Europe/London"
    assert offered["slots"][0]["start"] == "2026-12-07T14:00:00+00:00"
    assert booked["say"] == (
        "Your appointment with Brooklyn Studio is booked for tomorrow at 3:00 PM. "
        "All times are United Kingdom Time."
    )
    assert booked["start"] == "2026-12-08T15:00:00+00:00"
    stored = voice.services.bookings.get(booked["appointment_id"])
    assert stored.span.start == datetime(2026, 12, 8, 15, 0, tzinfo=UTC)
    assert stored.span.start.astimezone(NEW_YORK).hour == 10  # 10 AM at the studio
    assert stored.attendee.phone == KATE


def test_elevenlabs_caller_in_another_zone_books_an_offered_slot(voice: Voice) -> None:
    conv = {"conversation": "conv_london2", "caller": KATE}
    london = {"resource": "studio", "timezone": "Europe/London", "date": "2026-12-09"}
    offered = elevenlabs(voice, "check_availability", {**london, "after": "17:00"}, **conv)
    slot = offered["slots"][0]

    booked = elevenlabs(
        voice, "book_appointment",
        {"slot_id": slot["slot_id"], "timezone": "Europe/London", "name": "Kate Hughes"}, **conv,
    )  # fmt: skip

    start = datetime.fromisoformat(slot["start"])
    assert start.astimezone(LONDON).hour >= 17  # "after" is read in the caller's zone
    assert booked["start"] == slot["start"]
    assert booked["spoken"] == slot["spoken"]
    stored = voice.services.bookings.get(booked["appointment_id"])
    assert stored.span.start == start


def test_elevenlabs_without_a_key_is_a_401(voice: Voice) -> None:
    body = elevenlabs_body({"resource": "studio"}, conversation_id="conv_x", caller_id=JOE)
    answer = voice.client.post("/voice/elevenlabs/check_availability", json=body)

    assert answer.status_code == 401
