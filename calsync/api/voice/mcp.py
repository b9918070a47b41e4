"""The MCP server at ``/mcp``: the six voice tools for any MCP client, over streamable HTTP.

Owns translating MCP to the desk and back, nothing more: ``tools/list``
returns the tools of ``tools`` with the very JSON Schemas every other
platform gets (``parameters_schema``), and ``tools/call`` runs
``Desk.run_async`` and answers with two text blocks (the
sentence to say, then the answer's JSON) plus the same JSON as
``structuredContent``; ``isError`` is set when the tool did not do what was
asked (a taken slot, a bad argument), so the sentence still reaches the model.
It is served with the official SDK's low-level ``Server``, which takes the
schemas as they are.

Authorisation: every request needs ``Authorization: Bearer csk_...``
(checked by the API's own ``Authenticator``, before any MCP processing); a
missing or wrong key is the API's 401 ``{"error": {...}}`` with
``WWW-Authenticate: Bearer``. A read-scope key sees and may call only the
read tools (``check_availability``, ``find_my_appointments``); a write tool
called with it answers ``isError`` with code ``forbidden``.

Stateless, JSON responses: each POST is served on its own, with no
``Mcp-Session-Id`` and no server-side session, and answered with one JSON
body instead of an SSE stream. So any instance behind a load balancer can
serve any request (no sticky sessions), a restart or reload loses nothing,
there are no idle sessions to reap, and proxies that buffer or time out SSE
do no harm. The tools never ask the client anything back (no sampling or
elicitation), which is all that statelessness gives up. MCP clients on the
2026-07-28 revision are served per request by the SDK in any case.

A call id and the caller's number have no place in MCP itself; a client
(e.g. Vapi's MCP tool, through ``server.headers`` with its variables) may
send them as ``X-Call-Id`` and ``X-Caller-Number``. The call id scopes the
idempotency key of writes and ties holds to the call; without it, a retry
with the same arguments is still recognised by its arguments.

Hosts and proxies: the SDK's DNS-rebinding guard (a Host/Origin allow-list)
is off, so ``127.0.0.1:<port>``, a test client and any proxy's ``Host``
work unconfigured. A rebinding web page cannot send a bearer key it does
not know, and the key is what guards ``/mcp``. Behind a proxy, pass the
``Authorization`` header through and route ``POST /mcp`` as is.

The SDK's session manager runs inside the app's lifespan (``running``); a
new one is made for every start, as the SDK allows one run per manager.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Final

import mcp_types as types
from fastapi import FastAPI
from mcp.server import Server, ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from calsync import __version__
from calsync.api.auth import admit
from calsync.api.voice.calls import Answer, Call
from calsync.api.voice.desk import Desk
from calsync.api.voice.tools import BY_NAME, TOOLS, Tool, parameters_schema
from calsync.errors import ForbiddenError
from calsync.model import ApiKey
from calsync.model import Scope as KeyScope

PATH: Final = "/mcp"
CALL_ID_HEADER: Final = "x-call-id"
CALLER_HEADER: Final = "x-caller-number"
_SESSION_HEADER: Final = "mcp-session-id"  # only if a client sends one: never issued here
INSTRUCTIONS: Final = (
    "Tools to find free appointment times and to book, move or cancel appointments during a "
    "phone call. Every answer has `say`, a sentence in the business's language to read to the "
    "caller, and the ids (slot_id, hold_id, appointment_id) to use in the next call. Offer only "
    "times check_availability returned; when ok is false, say the sentence and go on from it."
)


def mount(app: FastAPI) -> None:
    """Serve MCP at ``/mcp`` on ``app`` with its desk; ``running(app)`` must wrap serving."""
    endpoint = _Endpoint(build_server(app.state.desk))
    app.state.mcp = endpoint
    app.router.routes.append(Route(PATH, endpoint, name="mcp", include_in_schema=False))


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[None]:
    """The MCP session manager for one run of the app; a no-op when ``mount`` was not called."""
    endpoint = getattr(app.state, "mcp", None)
    if not isinstance(endpoint, _Endpoint):
        yield
        return
    async with endpoint.serving():
        yield


def build_server(desk: Desk) -> Server[Any]:
    """The MCP server: the six tools, run on ``desk``."""
    listed = [(spec, _mcp_tool(spec)) for spec in TOOLS]
    schemas = {tool.name: tool.input_schema for _, tool in listed}

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        writer = _may_write(_api_key(ctx))
        return types.ListToolsResult(tools=[t for spec, t in listed if writer or not spec.writes])

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        arguments = dict(params.arguments or {})
        may_write = _may_write(_api_key(ctx))
        call = _call(ctx)
        return result(await _answer(desk, params.name, arguments, call, may_write))

    return Server(
        "calsync",
        version=__version__,
        instructions=INSTRUCTIONS,
        get_tool_input_schema=schemas.get,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def result(answer: Answer) -> types.CallToolResult:
    """An answer as MCP hands it to the model: the sentence, then the whole answer as JSON."""
    document = answer.document()
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=answer.say),
                 types.TextContent(type="text", text=text)],
        structured_content=document,
        is_error=not answer.ok,
    )  # fmt: skip


class _Endpoint:
    """The ASGI app at ``/mcp``: the API key first, then the SDK's session manager."""

    def __init__(self, server: Server[Any]) -> None:
        self._server = server
        self._manager: StreamableHTTPSessionManager | None = None

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[None]:
        manager = StreamableHTTPSessionManager(self._server, json_response=True, stateless=True)
        async with manager.run():
            self._manager = manager
            try:
                yield
            finally:
                self._manager = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # AuthError/ForbiddenError propagate to the app's handlers: the API's 401/403 envelope.
        await admit(Request(scope), KeyScope.READ)
        if self._manager is None:
            raise RuntimeError("the MCP session manager runs only inside the app's lifespan")
        await self._manager.handle_request(scope, receive, send)


async def _answer(
    desk: Desk, name: str, arguments: Mapping[str, Any], call: Call, may_write: bool
) -> Answer:
    spec = BY_NAME.get(name)
    if spec is not None and spec.writes and not may_write:
        refused = ForbiddenError(f"{name} needs an API key with write scope; this one only reads")
        resource = arguments.get("resource")
        return desk.failure(refused, resource if isinstance(resource, str) else None)
    return await desk.run_async(name, arguments, call)


def _mcp_tool(spec: Tool) -> types.Tool:
    return types.Tool(
        name=spec.name,
        description=spec.description,
        input_schema=parameters_schema(spec),
        annotations=types.ToolAnnotations(
            read_only_hint=not spec.writes,
            destructive_hint=spec.name == "cancel_appointment",
            open_world_hint=False,
        ),
    )


def _request(ctx: ServerRequestContext[Any]) -> Request | None:
    request = ctx.request
    return request if isinstance(request, Request) else None


def _api_key(ctx: ServerRequestContext[Any]) -> ApiKey | None:
    request = _request(ctx)
    key = getattr(request.state, "api_key", None) if request is not None else None
    return key if isinstance(key, ApiKey) else None


def _may_write(key: ApiKey | None) -> bool:
    return key is not None and key.scope.allows(KeyScope.WRITE)


def _call(ctx: ServerRequestContext[Any]) -> Call:
    request = _request(ctx)
    headers = request.headers if request is not None else {}
    call_id = headers.get(CALL_ID_HEADER) or headers.get(_SESSION_HEADER)
    return Call("mcp", _header(call_id), _header(headers.get(CALLER_HEADER)))


def _header(value: str | None) -> str | None:
    text = (value or "").strip()
    return text[:200] if text else None
