"""The Calendar v3 discovery document bundled with google-api-python-client, as rules.

Answers two questions exactly as the document describes them: which method a
request path names (``match``) and whether its query parameters are valid
(``validate_query``: unknown names, repeats of non-repeated parameters, types,
enums, minimums and RFC 3339 offsets are 400s). Knows nothing about behaviour.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import googleapiclient

from .errors import ApiError, bad_parameter
from .wire import parse_rfc3339

DOCUMENT_PATH = (
    Path(googleapiclient.__file__).parent / "discovery_cache" / "documents" / "calendar.v3.json"
)
SERVICE_PATH = "/calendar/v3/"


@dataclass(frozen=True)
class Method:
    id: str  # e.g. "calendar.events.list"
    http_method: str
    template: tuple[str, ...]  # path segments; "{name}" is a parameter
    parameters: dict[str, dict[str, Any]]  # query parameters incl. the global ones
    scopes: frozenset[str]

    @property
    def literal_count(self) -> int:
        return sum(not part.startswith("{") for part in self.template)

    def bind(self, segments: list[str]) -> dict[str, str] | None:
        if len(segments) != len(self.template):
            return None
        bound: dict[str, str] = {}
        for part, segment in zip(self.template, segments, strict=True):
            if part.startswith("{"):
                if not segment:
                    return None
                bound[part.strip("{}+")] = unquote(segment)
            elif part != segment:
                return None
        return bound


@cache
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DOCUMENT_PATH.read_text(encoding="utf-8"))
    return loaded


@cache
def methods() -> tuple[Method, ...]:
    doc = document()
    global_params = doc["parameters"]
    found: list[Method] = []
    for resource in doc["resources"].values():
        for spec in resource.get("methods", {}).values():
            params = {
                name: p
                for name, p in spec.get("parameters", {}).items()
                if p["location"] == "query"
            }
            found.append(
                Method(
                    id=spec["id"],
                    http_method=spec["httpMethod"],
                    template=tuple(spec["path"].split("/")),
                    parameters={**global_params, **params},
                    scopes=frozenset(spec.get("scopes", ())),
                )
            )
    found.sort(key=lambda m: -m.literal_count)
    return tuple(found)


def match(http_method: str, path: str) -> tuple[Method, dict[str, str]] | None:
    """The method for ``path`` (relative to the service path, still percent-encoded)."""
    segments = path.split("/")
    for method in methods():
        if method.http_method != http_method:
            continue
        bound = method.bind(segments)
        if bound is not None:
            return method, bound
    return None


def validate_query(method: Method, query: dict[str, list[str]]) -> dict[str, Any]:
    """Typed query values (lists for repeated parameters), or Google's 400."""
    values: dict[str, Any] = {}
    for name, raw in query.items():
        spec = method.parameters.get(name)
        if spec is None:
            raise bad_parameter(name, f"Unknown parameter: {name!r}.", reason="invalidParameter")
        if len(raw) > 1 and not spec.get("repeated"):
            raise bad_parameter(name, f"Parameter {name!r} may be given only once.")
        typed = [_typed(name, spec, item) for item in raw]
        values[name] = typed if spec.get("repeated") else typed[0]
    return values


def _typed(name: str, spec: dict[str, Any], raw: str) -> Any:
    kind = spec.get("type")
    if "enum" in spec and raw not in spec["enum"]:
        raise bad_parameter(name)
    if kind == "boolean":
        if raw not in ("true", "false"):
            raise bad_parameter(name)
        return raw == "true"
    if kind == "integer":
        if not re.fullmatch(r"-?\d+", raw):
            raise bad_parameter(name)
        number = int(raw)
        if "minimum" in spec and number < int(spec["minimum"]):
            raise bad_parameter(name)
        if "maximum" in spec and number > int(spec["maximum"]):
            raise bad_parameter(name)
        return number
    if spec.get("format") == "date-time":
        try:
            return parse_rfc3339(raw)
        except ValueError as err:
            raise ApiError(400, "badRequest", "Bad Request") from err
    if name == "quotaUser" and len(raw) > 40:
        raise bad_parameter(name)
    return raw
