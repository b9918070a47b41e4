"""The voice platforms' wire formats: Vapi, Retell and ElevenLabs in, the desk's answers out.

Owns reading each platform's request (where the tool name, the arguments,
the call id and the caller's number sit) and shaping the reply it expects.
What a tool does is the desk's business; this module only translates.

- Vapi: ``POST /voice/vapi`` with a ``tool-calls`` message; one result per
  ``toolCallId``. ``end-of-call-report`` releases the call's holds; other
  server messages are acknowledged and ignored.
- Retell: ``POST /voice/retell/{function}``; ``args`` nested or at the root;
  the caller is ``from_number`` (``to_number`` on outbound calls). With
  ``voice.retell_api_key_file`` set, ``X-Retell-Signature`` is required.
  Pointed at any such URL (``/voice/retell/events``), the agent webhook's
  ``call_ended`` event releases the call's holds.
- ElevenLabs: ``POST /voice/elevenlabs/{function}``; the body is the tool's
  parameters, plus ``conversation_id`` / ``caller_id`` filled from its system
  variables (``calsync tools export --format elevenlabs`` sets that up).

A tool that cannot do what was asked still answers 200 with ``ok: false``
and a sentence to say: the model should hear it. Only a request that is not
the platform's format, or lacks credentials, gets a 4xx.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from calsync.api.auth import admit, require
from calsync.api.schemas import ERRORS
from calsync.api.services import Services, services
from calsync.api.voice.calls import Answer, Call
from calsync.api.voice.desk import Desk
from calsync.errors import AuthError, InputError, MalformedRequestError
from calsync.model import Scope

router = APIRouter(prefix="/voice", tags=["voice"], responses=ERRORS)
Svc = Annotated[Services, Depends(services)]
WRITE = [Depends(require(Scope.WRITE))]
Resource = Annotated[
    str | None, Query(description="The resource to use when a tool call names none")
]
RETELL_WINDOW_MS = 5 * 60 * 1000  # how old a Retell signature may be
_RETELL_SIGNATURE = re.compile(r"v=(\d+),d=([0-9a-fA-F]+)")
_ELEVENLABS_CALL = ("conversation_id", "caller_id", "tool_call_id", "tool_name")


def desk(request: Request) -> Desk:
    found: Desk = request.app.state.desk
    return found


Desked = Annotated[Desk, Depends(desk)]


@router.post("/vapi", dependencies=WRITE)
async def vapi(request: Request, desk: Desked, svc: Svc, resource: Resource = None) -> JSONResponse:
    """Vapi's server messages: tool calls are run, the end of a call releases its holds."""
    message = (await _json(request)).get("message")
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise InputError('expected a Vapi server message: {"message": {"type": "tool-calls", ...}}')
    call = _object(message.get("call"))
    call_id = _text(call.get("id"))
    if message["type"] == "end-of-call-report":
        released = await run_in_threadpool(svc.bookings.release_call, call_id) if call_id else 0
        return JSONResponse({"released_holds": released})
    if message["type"] != "tool-calls":
        return JSONResponse({})
    customer = _object(message.get("customer")) or _object(call.get("customer"))
    caller = _text(customer.get("number"))
    calls = _vapi_tool_calls(message)
    results = [
        await _vapi_result(desk, item, Call("vapi", call_id, caller), resource) for item in calls
    ]
    return JSONResponse({"results": results})


@router.post("/retell/{function}")
async def retell(
    function: str, request: Request, desk: Desked, svc: Svc, resource: Resource = None
) -> JSONResponse:
    """A Retell custom function call, or an event of Retell's agent webhook."""
    raw = await request.body()
    await _retell_admitted(request, raw, svc)
    body = _parse(raw)
    call = _object(body.get("call"))
    if isinstance(body.get("event"), str):  # call_started, call_ended, call_analyzed
        call_id = _text(call.get("call_id"))
        if body["event"] != "call_ended" or call_id is None:
            return JSONResponse({})
        released = await run_in_threadpool(svc.bookings.release_call, call_id)
        return JSONResponse({"released_holds": released})
    nested = body.get("args")
    if isinstance(nested, dict):
        arguments = nested
    else:
        # at the root, Retell's "name" (the function) meets the tools' own "name" argument
        arguments = {k: v for k, v in body.items() if k not in ("call", "args")}
        if arguments.get("name") == function:
            del arguments["name"]
    outbound = call.get("direction") == "outbound"
    caller = _text(call.get("to_number" if outbound else "from_number"))
    who = Call("retell", _text(call.get("call_id")), caller)
    answer = await desk.run_async(function, arguments, who, resource=resource)
    return JSONResponse(answer.document())


@router.post("/elevenlabs/{function}", dependencies=WRITE)
async def elevenlabs(
    function: str, request: Request, desk: Desked, resource: Resource = None
) -> JSONResponse:
    """An ElevenLabs webhook tool call."""
    body = await _json(request)
    wrapped = body.get("parameters")
    arguments = wrapped if isinstance(wrapped, dict) else body
    arguments = {k: v for k, v in arguments.items() if k not in _ELEVENLABS_CALL}
    who = Call(
        "elevenlabs",
        _text(body.get("conversation_id")),
        _text(body.get("caller_id")),
        _text(body.get("tool_call_id")),
    )
    answer = await desk.run_async(function, arguments, who, resource=resource)
    return JSONResponse(answer.document())


# --- Vapi -------------------------------------------------------------------------------


def _vapi_tool_calls(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    listed = message.get("toolCallList")
    if not isinstance(listed, list):  # older messages carry toolWithToolCallList only
        with_tools = message.get("toolWithToolCallList")
        listed = [t.get("toolCall") for t in with_tools or [] if isinstance(t, dict)]
    calls = [item for item in listed if isinstance(item, dict)]
    if not calls:
        raise InputError("the tool-calls message has no toolCallList entries")
    return calls


async def _vapi_result(
    desk: Desk, item: Mapping[str, Any], call: Call, resource: str | None
) -> dict[str, str]:
    tool_call_id = _text(item.get("id")) or ""
    function = _object(item.get("function")) or item  # some messages list {id, name, ...} flat
    name = _text(function.get("name")) or ""
    who = Call(call.platform, call.call_id, call.caller, tool_call_id)
    arguments = function.get("arguments", function.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError:
            arguments = None
    if not isinstance(arguments, dict):
        answer = desk.failure(InputError(f"{name}: arguments must be a JSON object"))
    else:
        answer = await desk.run_async(name, arguments, who, resource=resource)
    field = "result" if answer.ok else "error"
    return {"toolCallId": tool_call_id, field: _compact(answer)}


def _compact(answer: Answer) -> str:
    """Vapi wants a string: the answer's JSON, which the model reads like prose."""
    return json.dumps(answer.document(), ensure_ascii=False, separators=(",", ":"))


# --- Retell -----------------------------------------------------------------------------


async def _retell_admitted(request: Request, raw: bytes, svc: Services) -> None:
    """With a Retell key configured its signature is the credential; else an API key is."""
    key = svc.retell_key
    if key is None:
        await admit(request, Scope.WRITE)
        return
    header = request.headers.get("x-retell-signature", "")
    now_ms = int(svc.clock.now().timestamp() * 1000)
    if not retell_signature_valid(raw, header, key, now_ms):
        raise AuthError(
            "X-Retell-Signature is missing, stale or wrong; the request must come from Retell "
            "signed with the key in voice.retell_api_key_file"
        )


def retell_signature_valid(body: bytes, header: str, key: str, now_ms: int) -> bool:
    """Retell's scheme: ``v=<ms timestamp>,d=<hex HMAC-SHA256(key, body + timestamp)>``."""
    match = _RETELL_SIGNATURE.fullmatch(header.strip())
    if match is None or abs(now_ms - int(match[1])) > RETELL_WINDOW_MS:
        return False
    expected = hmac.new(key.encode(), body + match[1].encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, match[2].lower())


# --- bodies -----------------------------------------------------------------------------


async def _json(request: Request) -> dict[str, Any]:
    return _parse(await request.body())


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise MalformedRequestError("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InputError("the request body must be a JSON object")
    return body


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
