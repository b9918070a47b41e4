"""The six voice tools as each platform's ready-to-paste definitions (``calsync tools export``).

Owns the shape of a tool definition on OpenAI, Vapi, Retell and ElevenLabs:
names, descriptions and parameters come from ``tools``; the URLs point at the
adapters in ``platforms``, which accept exactly what is exported here
(tests/voice/test_export.py feeds each format's example calls back through
them). It reads no config and holds no secret: the calsync API key appears
only as ``KEY_PLACEHOLDER``, which the admin replaces after pasting.

Where a platform documents a closed set of schema keys, only those keys are
exported, so that a paste is never refused for a key the platform does not
know:

- OpenAI Chat Completions and Retell take any JSON Schema as ``parameters``:
  the full schema, with ``examples`` (one realistic call).
- Vapi's ``function.parameters`` allows ``type``/``properties``/``required``
  only, a property ``type``/``items``/``properties``/``description``/
  ``pattern``/``format``/``required``/``enum``/``title``, and its API refuses
  unknown keys ("property X should not exist"): no ``examples``, no ranges or
  defaults (the descriptions say them; the desk checks them anyway).
- ElevenLabs' body properties are ``type``/``description``/``enum`` (or a
  ``dynamic_variable`` instead of a description): likewise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, Final
from urllib.parse import quote

from calsync.api.voice.tools import TOOLS, Tool, example_arguments, parameters_schema
from calsync.errors import InputError

FORMATS: Final = ("openai", "vapi", "retell", "elevenlabs")
KEY_PLACEHOLDER: Final = "Bearer <CALSYNC_API_KEY>"  # replaced by the admin, never a real key
TIMEOUT_SECONDS: Final = 10  # a phone caller will not wait longer for a tool
# Spoken by Vapi while a write runs (it may wait on the calendar provider); lookups are instant.
_FILLER: Final = {"en": "One moment, please.", "de": "Einen Moment bitte."}
_RETELL_FILLER: Final = "Tell the caller in a few words that you are taking care of it now."
_VAPI_PROPERTY_KEYS: Final = frozenset(
    {"type", "items", "properties", "description", "pattern", "format", "required", "enum", "title"}
)
_ELEVENLABS_PROPERTY_KEYS: Final = frozenset({"type", "description", "enum"})
# ElevenLabs fills these body fields itself from its system dynamic variables.
_ELEVENLABS_CALL_FIELDS: Final = {
    "conversation_id": "system__conversation_id",
    "caller_id": "system__caller_id",
}


@dataclass(frozen=True, slots=True)
class _Target:
    """Where the tools are served and how they are called."""

    base_url: str  # no trailing slash
    resource: str | None  # set in the URLs, so no tool argument names it
    today: date
    example_resource: str | None  # named in the examples when no resource is fixed
    language: str
    retell_signed: bool

    @property
    def fixed(self) -> frozenset[str]:
        return frozenset({"resource"}) if self.resource else frozenset()

    def url(self, path: str) -> str:
        query = f"?resource={quote(self.resource, safe='')}" if self.resource else ""
        return f"{self.base_url}{path}{query}"

    def example(self, spec: Tool) -> dict[str, Any]:
        named = None if self.resource else self.example_resource
        return example_arguments(spec, self.today, resource=named)

    def schema(self, spec: Tool, *, keep: frozenset[str] | None = None) -> dict[str, Any]:
        """The tool's parameters; with ``keep``, each property has only those keys."""
        schema = parameters_schema(spec, fixed=self.fixed)
        if keep is None:
            return {**schema, "examples": [self.example(spec)]}
        properties = {
            name: {k: v for k, v in prop.items() if k in keep}
            for name, prop in schema["properties"].items()
        }
        return {**schema, "properties": properties}


def definitions(
    format: str,
    *,
    base_url: str,
    resource: str | None,
    today: date,
    example_resource: str | None = None,
    language: str = "en",
    retell_signed: bool = False,
) -> list[dict[str, Any]]:
    """Every tool as ``format`` defines a tool, served at ``base_url``.

    ``resource`` is set in the tools' URLs (``?resource=R``) and dropped from
    their arguments. ``today`` dates the examples (the next Tuesday);
    ``example_resource`` is the resource they name when none is fixed.
    ``language`` is that of the filler Vapi speaks during a booking;
    ``retell_signed`` leaves the API key header out of Retell's tools (their
    signature is the credential then).
    """
    build = _BUILDERS.get(format)
    if build is None:
        raise InputError(f"unknown format {format!r}; use one of {', '.join(FORMATS)}")
    target = _Target(
        base_url.rstrip("/"), resource, today, example_resource, language, retell_signed
    )
    return [build(spec, target) for spec in TOOLS]


def _openai(spec: Tool, target: _Target) -> dict[str, Any]:
    """Chat Completions ``tools``: the integrator calls calsync itself, so no URL."""
    function = {"name": spec.name, "description": spec.description}
    return {"type": "function", "function": {**function, "parameters": target.schema(spec)}}


def _vapi(spec: Tool, target: _Target) -> dict[str, Any]:
    """A Vapi function tool posting ``tool-calls`` messages to ``/voice/vapi``.

    Shape from github.com/VapiAI/docs fern/tools/custom-tools.mdx (type,
    function, server, messages with ``request-start``) and Vapi's API schema
    (VapiAI/server-sdk-ruby types/server.rb: ``url``, ``timeoutSeconds``,
    ``headers``; types/tool_message_start.rb: ``content``; the
    OpenAIFunctionParameters and JsonSchema components for the keys kept).
    """
    parameters = target.schema(spec, keep=_VAPI_PROPERTY_KEYS)
    tool: dict[str, Any] = {
        "type": "function",
        "function": {"name": spec.name, "description": spec.description, "parameters": parameters},
        "server": {
            "url": target.url("/voice/vapi"),
            "timeoutSeconds": TIMEOUT_SECONDS,
            "headers": {"Authorization": KEY_PLACEHOLDER},
        },
    }
    if spec.writes:
        filler = _FILLER.get(target.language.split("-")[0].lower(), _FILLER["en"])
        tool["messages"] = [{"type": "request-start", "content": filler}]
    return tool


def _retell(spec: Tool, target: _Target) -> dict[str, Any]:
    """A Retell custom function posting ``{call, name, args}`` to ``/voice/retell/<name>``.

    Field names from Retell's own SDK (retell-sdk, types/llm_create_params.py
    ``GeneralToolCustomTool``) and docs.retellai.com/build/single-multi-prompt/
    custom-function: ``speak_during_execution`` for calls that may take over a
    second (bookings), ``timeout_ms`` 1 s .. 10 min (default 2 min, far too
    long on a phone call).
    """
    tool: dict[str, Any] = {
        "type": "custom",
        "name": spec.name,
        "description": spec.description,
        "url": target.url(f"/voice/retell/{spec.name}"),
        "method": "POST",
        "parameters": target.schema(spec),
        "speak_during_execution": spec.writes,
        "speak_after_execution": True,
        "timeout_ms": TIMEOUT_SECONDS * 1000,
    }
    if spec.writes:
        tool["execution_message_description"] = _RETELL_FILLER
    if not target.retell_signed:
        tool["headers"] = {"Authorization": KEY_PLACEHOLDER}
    return tool


def _elevenlabs(spec: Tool, target: _Target) -> dict[str, Any]:
    """An ElevenLabs webhook tool (the ``tool_config`` of ``POST /v1/convai/tools``).

    Fields from ElevenLabs' SDK (elevenlabs-python types/webhook_tool_config_input.py,
    webhook_tool_api_schema_config_input.py, literal_json_schema_property.py): a body
    property takes its value from a dynamic variable with ``dynamic_variable``
    (and then has no ``description``: the two exclude each other).
    ``system__conversation_id`` and ``system__caller_id`` are system variables
    (elevenlabs.io/docs, customization/personalization/dynamic-variables).
    """
    body = target.schema(spec, keep=_ELEVENLABS_PROPERTY_KEYS)
    for field, variable in _ELEVENLABS_CALL_FIELDS.items():
        body["properties"][field] = {"type": "string", "dynamic_variable": variable}
    body["description"] = f"The {spec.name} arguments, the conversation and the caller's number."
    return {
        "type": "webhook",
        "name": spec.name,
        "description": spec.description,
        "response_timeout_secs": TIMEOUT_SECONDS,
        "api_schema": {
            "url": target.url(f"/voice/elevenlabs/{spec.name}"),
            "method": "POST",
            "request_headers": {"Authorization": KEY_PLACEHOLDER},
            "request_body_schema": body,
        },
    }


_BUILDERS: Final[dict[str, Callable[[Tool, _Target], dict[str, Any]]]] = {
    "openai": _openai,
    "vapi": _vapi,
    "retell": _retell,
    "elevenlabs": _elevenlabs,
}
