"""Voice tool calls on /metrics: by platform, tool and outcome."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.voice.bodies import retell_call, retell_function
from tests.voice.conftest import Voice


def counts(voice: Voice) -> dict[tuple[str, str, str], float]:
    text = voice.client.get("/metrics", headers=voice.auth).text
    return {
        (s.labels["platform"], s.labels["tool"], s.labels["outcome"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "calsync_voice_tool_seconds_count"
    }


def call(voice: Voice, function: str, args: dict[str, object]) -> None:
    body = retell_function(function, args, retell_call("call-1", "+436641234567"))
    assert voice.post(f"/voice/retell/{function}", body).status_code == 200


def test_tool_calls_are_counted_by_outcome(voice: Voice) -> None:
    check = {"resource": "praxis", "date": "2026-12-08"}
    call(voice, "check_availability", check)
    call(voice, "check_availability", check)
    call(voice, "check_availability", {"x": 1})
    call(voice, "no_such_tool", {})

    assert counts(voice) == {
        ("retell", "check_availability", "ok"): 2,
        ("retell", "check_availability", "invalid_input"): 1,
        ("retell", "unknown", "invalid_input"): 1,
    }
