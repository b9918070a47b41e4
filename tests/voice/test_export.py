"""``calsync tools export``: each format's definitions are valid, and the adapters take their calls.

The round trips build each platform's request from the exported definition
alone (its URL, its headers with the placeholder replaced by a real key, its
function name, the example arguments) and run one whole phone call through
the real app: check -> hold -> book -> find -> reschedule -> cancel.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner, Result
from jsonschema import Draft202012Validator

from calsync.api.voice.export import FORMATS, KEY_PLACEHOLDER, definitions
from calsync.api.voice.tools import BY_NAME, TOOLS, example_arguments
from calsync.cli import main
from calsync.errors import InputError
from tests.voice.conftest import CONFIG, Voice

TODAY = date(2026, 12, 7)  # the conftest clock's Monday: examples fall on Tuesday the 8th
BASE = "https://calsync.example.com/"
CALLER = "+436641234567"
PRAXIS_LINE = "+4319876543"
CALL_ORDER = (
    "check_availability",
    "hold_slot",
    "book_appointment",
    "find_my_appointments",
    "reschedule_appointment",
    "cancel_appointment",
)
ADAPTER_PATHS = {
    "vapi": lambda name: "/voice/vapi",
    "retell": lambda name: f"/voice/retell/{name}",
    "elevenlabs": lambda name: f"/voice/elevenlabs/{name}",
}
Send = Callable[[str, dict[str, Any]], dict[str, Any]]  # (tool, arguments) -> answer document


def export(format_: str, resource: str | None = "praxis", **options: Any) -> list[dict[str, Any]]:
    return definitions(
        format_,
        base_url=BASE,
        resource=resource,
        today=TODAY,
        example_resource="praxis",
        language="de",
        **options,
    )


def parts(format_: str, item: dict[str, Any]) -> tuple[str, str, dict[str, Any], str | None]:
    """name, description, parameters schema and URL of one exported tool."""
    if format_ in ("openai", "vapi"):
        function = item["function"]
        url = item["server"]["url"] if format_ == "vapi" else None
        return function["name"], function["description"], function["parameters"], url
    if format_ == "retell":
        return item["name"], item["description"], item["parameters"], item["url"]
    api = item["api_schema"]
    return item["name"], item["description"], api["request_body_schema"], api["url"]


def example_of(format_: str, item: dict[str, Any], resource: str | None) -> dict[str, Any]:
    """The exported example, or (Vapi and ElevenLabs take no ``examples``) the same call."""
    name, _, schema, _ = parts(format_, item)
    if "examples" in schema:
        example: dict[str, Any] = schema["examples"][0]
        return example
    return example_arguments(BY_NAME[name], TODAY, resource=None if resource else "praxis")


def headers_of(item: dict[str, Any], token: str) -> dict[str, str]:
    """The headers the platform will send, with the admin's key in place of the placeholder."""
    found = item.get("server", {}).get("headers") or item.get("headers")
    found = found or item.get("api_schema", {}).get("request_headers", {})
    return {k: v.replace("<CALSYNC_API_KEY>", token) for k, v in found.items()}


def target(url: str) -> str:
    """The exported URL's path and query, for the in-process client."""
    parts_ = urlsplit(url)
    return f"{parts_.path}?{parts_.query}" if parts_.query else parts_.path


def one_call(send: Send, exported: dict[str, dict[str, Any]], examples: dict[str, Any]) -> None:
    """A phone call using every tool once, each answering ok."""
    for name in CALL_ORDER:
        assert name in exported
        answer = send(name, examples[name])
        assert answer["ok"] is True, (name, answer)
        assert answer["say"]


# --- the definitions ----------------------------------------------------------------------


@pytest.mark.parametrize("resource", ["praxis", None])
@pytest.mark.parametrize("format_", FORMATS)
def test_every_format_exports_the_six_tools_with_valid_schemas(
    format_: str, resource: str | None
) -> None:
    exported = export(format_, resource)
    assert [parts(format_, item)[:2] for item in exported] == [
        (spec.name, spec.description) for spec in TOOLS
    ]
    for item in exported:
        name, _, schema, url = parts(format_, item)
        Draft202012Validator.check_schema(schema)
        assert schema["type"] == "object"
        Draft202012Validator(schema).validate(example_of(format_, item, resource))
        takes_resource = "resource" in BY_NAME[name].arguments.model_fields
        assert ("resource" in schema["properties"]) is (takes_resource and resource is None)
        if format_ == "openai":
            assert url is None
            continue
        assert url is not None
        split = urlsplit(url)
        assert f"{split.scheme}://{split.netloc}" == BASE.rstrip("/")
        assert split.path == ADAPTER_PATHS[format_](name)
        assert split.query == ("resource=praxis" if resource else "")


@pytest.mark.parametrize("format_", ["openai", "retell"])
def test_open_json_schema_formats_carry_a_realistic_example(format_: str) -> None:
    for item in export(format_, resource=None):
        name, _, schema, _ = parts(format_, item)
        assert schema["examples"] == [example_arguments(BY_NAME[name], TODAY, resource="praxis")]
    book = parts(format_, export(format_)[2])[2]
    assert book["examples"] == [{"start": "2026-12-08T10:00", "name": "Anna Berger"}]
    assert book["properties"]["name"]["maxLength"] == 200  # the full schema, ranges included


def test_vapi_tools_use_only_the_keys_vapi_accepts() -> None:
    allowed = {"type", "items", "properties", "description", "pattern", "format", "required"}
    allowed |= {"enum", "title"}
    for item in export("vapi"):
        assert set(item) <= {"type", "function", "server", "messages"}
        parameters = item["function"]["parameters"]
        assert set(parameters) <= {"type", "properties", "required"}
        for prop in parameters["properties"].values():
            assert set(prop) <= allowed
        assert item["server"]["headers"] == {"Authorization": KEY_PLACEHOLDER}
        assert item["server"]["timeoutSeconds"] == 10
    spoken = {item["function"]["name"]: item.get("messages") for item in export("vapi")}
    assert spoken["book_appointment"] == [
        {"type": "request-start", "content": "Einen Moment bitte."}
    ]
    assert spoken["check_availability"] is None  # answered from the cache at once


def test_retell_custom_functions() -> None:
    by_name = {item["name"]: item for item in export("retell")}
    book = by_name["book_appointment"]
    assert book["type"] == "custom"
    assert book["method"] == "POST"
    assert book["speak_during_execution"] is True
    assert book["execution_message_description"]
    assert book["speak_after_execution"] is True
    assert book["timeout_ms"] == 10_000
    assert book["headers"] == {"Authorization": KEY_PLACEHOLDER}
    assert by_name["check_availability"]["speak_during_execution"] is False
    signed = export("retell", retell_signed=True)
    assert all("headers" not in item for item in signed)


def test_elevenlabs_fills_the_conversation_and_caller_from_system_variables() -> None:
    for item in export("elevenlabs"):
        assert item["type"] == "webhook"
        assert item["response_timeout_secs"] == 10
        api = item["api_schema"]
        assert api["method"] == "POST"
        assert api["request_headers"] == {"Authorization": KEY_PLACEHOLDER}
        properties = api["request_body_schema"]["properties"]
        assert properties["conversation_id"] == {
            "type": "string",
            "dynamic_variable": "system__conversation_id",
        }
        assert properties["caller_id"] == {
            "type": "string",
            "dynamic_variable": "system__caller_id",
        }
        for name, prop in properties.items():
            assert set(prop) <= {"type", "description", "enum", "dynamic_variable"}, name
            assert ("description" in prop) != ("dynamic_variable" in prop), name


def test_no_format_carries_a_key_and_unknown_formats_are_refused() -> None:
    for format_ in FORMATS:
        text = json.dumps(export(format_))
        assert "csk_" not in text
        assert "//voice" not in text
    with pytest.raises(InputError, match="unknown format 'bland'; use one of openai, vapi"):
        export("bland")


# --- round trips through the adapters -------------------------------------------------------


def by_name(exported: list[dict[str, Any]], format_: str) -> dict[str, dict[str, Any]]:
    return {parts(format_, item)[0]: item for item in exported}


def examples_of(format_: str, resource: str | None = "praxis") -> dict[str, Any]:
    return {
        parts(format_, item)[0]: example_of(format_, item, resource)
        for item in export(format_, resource)
    }


@pytest.mark.parametrize("as_string", [False, True], ids=["arguments-object", "arguments-string"])
def test_vapi_round_trip(voice: Voice, as_string: bool) -> None:
    tools = by_name(export("vapi"), "vapi")
    counter = iter(range(100))

    def send(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        tool = tools[name]
        tool_call_id = f"call_{next(counter)}"
        function = {"name": tool["function"]["name"], "arguments": arguments}
        if as_string:
            function["arguments"] = json.dumps(arguments)
        customer = {"number": CALLER}
        message = {
            "type": "tool-calls",
            "call": {"id": "vapi-call-1", "type": "inboundPhoneCall", "customer": customer},
            "customer": customer,
            "toolCallList": [{"id": tool_call_id, "type": "function", "function": function}],
        }
        response = voice.client.post(
            target(tool["server"]["url"]),
            json={"message": message},
            headers=headers_of(tool, voice.token),
        )
        assert response.status_code == 200, response.text
        (result,) = response.json()["results"]
        assert result["toolCallId"] == tool_call_id
        assert "result" in result, result
        document: dict[str, Any] = json.loads(result["result"])
        return document

    one_call(send, tools, examples_of("vapi"))


@pytest.mark.parametrize(
    "nested",
    [True, False],
    ids=["args-nested", "args-at-root"],
)
def test_retell_round_trip(voice: Voice, nested: bool) -> None:
    tools = by_name(export("retell"), "retell")
    call = {
        "call_id": "retell-call-1",
        "call_type": "phone_call",
        "direction": "inbound",
        "from_number": CALLER,
        "to_number": PRAXIS_LINE,
    }

    def send(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        tool = tools[name]
        args = {"args": arguments} if nested else arguments
        body = {"call": call, "name": tool["name"], **args}
        response = voice.client.post(
            target(tool["url"]), json=body, headers=headers_of(tool, voice.token)
        )
        assert response.status_code == 200, response.text
        document: dict[str, Any] = response.json()
        return document

    one_call(send, tools, examples_of("retell"))


@pytest.mark.parametrize("resource", ["praxis", None], ids=["resource-in-url", "resource-argument"])
def test_elevenlabs_round_trip(voice: Voice, resource: str | None) -> None:
    tools = by_name(export("elevenlabs", resource), "elevenlabs")
    counter = iter(range(100))

    def send(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        tool = tools[name]
        api = tool["api_schema"]
        body = {**arguments, "conversation_id": "conv_1", "caller_id": CALLER}
        Draft202012Validator(api["request_body_schema"]).validate(body)
        assert set(body) <= set(api["request_body_schema"]["properties"])
        body["tool_call_id"] = f"tool_{next(counter)}"
        response = voice.client.post(
            target(api["url"]), json=body, headers=headers_of(tool, voice.token)
        )
        assert response.status_code == 200, response.text
        document: dict[str, Any] = response.json()
        return document

    one_call(send, tools, examples_of("elevenlabs", resource))


# --- the command ------------------------------------------------------------------------------


def run(tmp_path: Path, *args: str, extra: str = "") -> Result:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.replace("[daemon]\n", f"[daemon]\n{extra}"))
    return CliRunner().invoke(main, ["--config", str(config), "tools", "export", *args])


def test_cli_prints_pure_json_for_the_resource_and_base_url(tmp_path: Path) -> None:
    result = run(
        tmp_path, "--format", "vapi", "--resource", "praxis", "--base-url", "https://x.example/"
    )
    assert result.exit_code == 0, result.output
    exported = json.loads(result.stdout)
    assert [item["function"]["name"] for item in exported] == [spec.name for spec in TOOLS]
    assert {item["server"]["url"] for item in exported} == {
        "https://x.example/voice/vapi?resource=praxis"
    }
    assert all("resource" not in item["function"]["parameters"]["properties"] for item in exported)
    spoken = exported[2]["messages"][0]["content"]
    assert spoken == "Einen Moment bitte."  # the praxis speaks German


def test_cli_base_url_defaults_to_the_public_url_then_the_listen_address(tmp_path: Path) -> None:
    public = run(tmp_path, "--format", "retell", extra='public_url = "https://cal.example.org/"\n')
    assert public.exit_code == 0, public.output
    assert json.loads(public.stdout)[0]["url"] == (
        "https://cal.example.org/voice/retell/check_availability"
    )
    listen = run(tmp_path, "--format", "elevenlabs", extra='listen = "[::1]:9000"\n')
    assert listen.exit_code == 0, listen.output
    url = json.loads(listen.stdout)[0]["api_schema"]["url"]
    assert url == "http://[::1]:9000/voice/elevenlabs/check_availability"


def test_cli_retell_with_a_signature_key_carries_no_key_header(tmp_path: Path) -> None:
    (tmp_path / "retell.key").write_text("key_123\n")
    config = tmp_path / "config.toml"
    config.write_text(CONFIG + '\n[voice]\nretell_api_key_file = "retell.key"\n')
    result = CliRunner().invoke(
        main, ["--config", str(config), "tools", "export", "--format", "retell"]
    )
    assert result.exit_code == 0, result.output
    assert all("headers" not in item for item in json.loads(result.stdout))


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ("--format", "vapi", "--resource", "nope"),
            1,
            "--resource: no resource 'nope' in the config (configured: praxis, studio)",
        ),
        (("--format", "bland"), 2, "Invalid value for '--format'"),
        (("--resource", "praxis"), 2, "Missing option '--format'"),
        (
            ("--format", "openai", "--base-url", "calsync.example.com"),
            1,
            "--base-url: 'calsync.example.com' is not a base URL",
        ),
    ],
)
def test_cli_errors_are_one_clear_line(
    tmp_path: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    result = run(tmp_path, *args)
    assert result.exit_code == code
    assert message in result.output
    assert "Traceback" not in result.output
