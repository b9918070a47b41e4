"""Request bodies as the voice platforms send them, built from their documented shapes.

Written from the platforms' own descriptions, not from calsync's adapters,
so an adapter that reads the wrong field fails the tests:

- Vapi: every server message is ``{"message": {"type", "call", "timestamp",
  "artifact", "assistant", "customer", "phoneNumber", ...}}`` (VapiAI/docs
  fern/server-url/events.mdx, fern/tools/custom-tools.mdx). A ``tool-calls``
  message carries ``toolCallList`` of OpenAPI ``ToolCall``s, ``{"id", "type":
  "function", "function": {"name", "arguments"}}`` (arguments an object or a
  JSON string), ``toolWithToolCallList`` (each tool's definition with its
  ``toolCall``) and the OpenAI-style ``toolCalls``. The call of a phone call
  has ``type: "inboundPhoneCall"`` (or outbound) and ``customer.number``.
- Retell: a custom function is ``POST {"name", "call", "args"}`` with
  ``call`` the call object (retell-sdk ``PhoneCallResponse``: ``call_id``,
  ``agent_id``, ``call_type: "phone_call"``, ``direction``, ``from_number``,
  ``to_number``, ``call_status``, ...). With ``args_at_root`` ("Payload: args
  only") the body is the arguments alone. Requests are signed with
  ``X-Retell-Signature`` over the body as ``JSON.stringify`` writes it.
  The agent webhook posts ``{"event": "call_ended", "call": {...}}``.
- ElevenLabs: a webhook tool's body is its parameters; ``conversation_id``
  and ``caller_id`` are body parameters whose values come from the system
  variables ``system__conversation_id`` and ``system__caller_id``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from tests.voice.conftest import NOW

NOW_MS = int(NOW.timestamp() * 1000)
PRAXIS_LINE = "+4319876543"  # the number callers dial for the praxis
ORG_ID = "5f1c2b9e-6a3d-4c1f-9e0b-7d2a8c4e1b37"

# --- Vapi ---------------------------------------------------------------------------------


def vapi_call(
    call_id: str, customer: str | None, *, kind: str = "inboundPhoneCall"
) -> dict[str, Any]:
    """Vapi's Call object as it rides along in every server message."""
    call: dict[str, Any] = {
        "id": call_id,
        "orgId": ORG_ID,
        "createdAt": "2026-12-07T06:59:41.120Z",
        "updatedAt": "2026-12-07T06:59:43.004Z",
        "type": kind,
        "status": "in-progress",
        "phoneCallProvider": "twilio",
        "phoneCallProviderId": "CA" + uuid.uuid5(uuid.NAMESPACE_URL, call_id).hex,
        "phoneCallTransport": "pstn",
        "phoneNumberId": "b7d1f0c2-0d4e-4d2b-8c55-0a9e3f6f2a11",
        "assistantId": "0e3b5f8a-2c1d-4f6e-9a7b-3c2d1e0f9a8b",
        "monitor": {"listenUrl": f"wss://phone-call-websocket.vapi.ai/{call_id}/listen"},
    }
    if customer is not None:
        call["customer"] = {"number": customer}
    return call


def vapi_tool_call(
    tool_call_id: str, name: str, arguments: dict[str, Any], *, as_string: bool = False
) -> dict[str, Any]:
    """One entry of ``toolCallList``: an OpenAPI ToolCall."""
    args: Any = json.dumps(arguments) if as_string else arguments
    return {"id": tool_call_id, "type": "function", "function": {"name": name, "arguments": args}}


def vapi_tool_calls(
    call_id: str,
    *tool_calls: dict[str, Any],
    customer: str | None = "+436641234567",
    line: str = PRAXIS_LINE,
    kind: str = "inboundPhoneCall",
) -> dict[str, Any]:
    """A ``tool-calls`` server message with everything a live phone call adds."""
    call = vapi_call(call_id, customer, kind=kind)
    message = _vapi_message("tool-calls", call, customer, line)
    message["toolCallList"] = list(tool_calls)
    message["toolWithToolCallList"] = [_vapi_tool_with_call(t) for t in tool_calls]
    message["toolCalls"] = [  # OpenAI's format: arguments always a JSON string
        {**t, "function": {**t["function"], "arguments": _as_text(t["function"]["arguments"])}}
        for t in tool_calls
    ]
    return {"message": message}


def vapi_end_of_call(call_id: str, customer: str | None = "+436641234567") -> dict[str, Any]:
    """The ``end-of-call-report`` Vapi sends once the call is over."""
    call = {**vapi_call(call_id, customer), "status": "ended", "endedReason": "customer-ended-call"}
    message = _vapi_message("end-of-call-report", call, customer, PRAXIS_LINE)
    message.update(
        {
            "endedReason": "customer-ended-call",
            "startedAt": "2026-12-07T06:59:43.004Z",
            "endedAt": "2026-12-07T07:03:12.551Z",
            "durationMs": 209547,
            "durationSeconds": 209.547,
            "cost": 0.1852,
            "costs": [{"type": "vapi", "minutes": 3.49, "cost": 0.1745}],
            "summary": "The caller held a time and hung up before giving a name.",
            "transcript": "AI: Praxis Dr. Huber, guten Tag. User: Ich hätte gern einen Termin.",
            "recordingUrl": "https://storage.vapi.ai/recording.wav",
            "analysis": {"summary": "Caller hung up.", "successEvaluation": "false"},
        }
    )
    return {"message": message}


def vapi_status_update(call_id: str, status: str) -> dict[str, Any]:
    message = _vapi_message("status-update", vapi_call(call_id, "+436641234567"), None, PRAXIS_LINE)
    message["status"] = status
    return {"message": message}


def vapi_results(response: Any) -> dict[str, tuple[str, dict[str, Any]]]:
    """``{toolCallId: ("result" or "error", the answer the model reads)}``; checks the shape."""
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for item in results:
        fields = set(item) - {"toolCallId"}
        assert len(fields) == 1, item  # exactly one of result / error
        (field,) = fields
        assert field in ("result", "error"), item
        assert isinstance(item[field], str), "Vapi wants a string the model reads"
        found[item["toolCallId"]] = (field, json.loads(item[field]))
    assert len(found) == len(results), "one result per toolCallId"
    return found


def _vapi_message(
    kind: str, call: dict[str, Any], customer: str | None, line: str
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "timestamp": NOW_MS,
        "type": kind,
        "call": call,
        "phoneNumber": {
            "id": call["phoneNumberId"],
            "orgId": ORG_ID,
            "number": line,
            "provider": "twilio",
            "name": "Empfang",
            "status": "active",
        },
        "assistant": {
            "id": call["assistantId"],
            "name": "Empfang",
            "firstMessage": "Praxis Dr. Huber, guten Tag.",
            "model": {"provider": "openai", "model": "gpt-4o"},
            "voice": {"provider": "11labs", "voiceId": "rachel"},
            "serverMessages": ["tool-calls", "end-of-call-report", "status-update"],
        },
        "artifact": {
            "messages": [
                {"role": "bot", "message": "Praxis Dr. Huber, guten Tag.", "time": NOW_MS - 9000},
                {"role": "user", "message": "Ich hätte gern einen Termin.", "time": NOW_MS - 4000},
            ],
            "messagesOpenAIFormatted": [
                {"role": "assistant", "content": "Praxis Dr. Huber, guten Tag."},
                {"role": "user", "content": "Ich hätte gern einen Termin."},
            ],
        },
    }
    if customer is not None:
        message["customer"] = {"number": customer}
    return message


def _vapi_tool_with_call(tool_call: dict[str, Any]) -> dict[str, Any]:
    name = tool_call["function"]["name"]
    return {
        "type": "function",
        "function": {"name": name, "parameters": {"type": "object", "properties": {}}},
        "server": {"url": "https://calsync.example.com/voice/vapi"},
        "messages": [{"type": "request-start", "content": "Einen Moment bitte."}],
        "toolCall": tool_call,
    }


def _as_text(arguments: Any) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


# --- Retell -------------------------------------------------------------------------------


def retell_call(
    call_id: str,
    customer: str,
    *,
    direction: str = "inbound",
    line: str = PRAXIS_LINE,
) -> dict[str, Any]:
    """Retell's call object (a phone call in progress) as custom functions receive it."""
    inbound = direction == "inbound"
    return {
        "call_id": call_id,
        "agent_id": "agent_3f6c1e0b9a2d4c7e8f1a",
        "agent_version": 4,
        "agent_name": "Empfang Praxis",
        "call_type": "phone_call",
        "call_status": "ongoing",
        "direction": direction,
        "from_number": customer if inbound else line,
        "to_number": line if inbound else customer,
        "start_timestamp": NOW_MS - 60_000,
        "metadata": {},
        "retell_llm_dynamic_variables": {"praxis": "Dr. Huber"},
        "data_storage_setting": "everything",
        "opt_in_signed_url": False,
        "transcript": "Agent: Praxis Dr. Huber, guten Tag.\nUser: Ich hätte gern einen Termin.\n",
        "transcript_object": [
            {"role": "agent", "content": "Praxis Dr. Huber, guten Tag.", "words": []},
            {"role": "user", "content": "Ich hätte gern einen Termin.", "words": []},
        ],
        "latency": {},
    }


def retell_function(name: str, args: dict[str, Any], call: dict[str, Any]) -> dict[str, Any]:
    """A custom function call with its arguments nested under ``args``."""
    return {"name": name, "call": call, "args": args}


def retell_event(event: str, call: dict[str, Any]) -> dict[str, Any]:
    """An agent webhook event (``call_started``, ``call_ended``, ``call_analyzed``)."""
    ended = {**call, "call_status": "ended", "end_timestamp": NOW_MS, "duration_ms": 60_000}
    return {"event": event, "call": ended if event != "call_started" else call}


def stringify(body: Any) -> str:
    """The body as JavaScript's ``JSON.stringify`` writes it (what Retell signs and sends)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


# --- ElevenLabs ---------------------------------------------------------------------------


def elevenlabs_body(
    parameters: dict[str, Any], *, conversation_id: str, caller_id: str | None
) -> dict[str, Any]:
    """A webhook tool's body: the model's parameters plus the two system-variable parameters."""
    body = {**parameters, "conversation_id": conversation_id}
    if caller_id is not None:
        body["caller_id"] = caller_id
    return body
