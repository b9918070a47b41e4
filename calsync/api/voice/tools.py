"""The six voice tools as data: names, descriptions, arguments and example calls.

Owns what a phone agent's model is told about each tool and what arguments
it may send: one pydantic model per tool, from which both the argument
check (``parse_arguments``) and the JSON Schema every platform receives
(``parameters_schema``) come. It does not run tools (``desk`` does) and
knows no platform's wire format (``platforms``, ``export``, ``mcp`` do).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from calsync.errors import InputError

_RESOURCE = "The calendar (resource id) to use; leave it out when there is only one."
_ZONE = (
    "The caller's IANA time zone, like America/New_York, when the caller is elsewhere; "
    "times are then read and said in it. Default: the business's zone."
)
_SLOT = "A slot_id from check_availability (preferred over start)."
_START = (
    "Start time as ISO 8601, like 2026-12-08T15:00, in the caller's time zone if given, "
    "else the business's. Use slot_id instead when you have one."
)
_PHONE = "The phone number, any usual format; default: the number the caller is calling from."


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _When(_Args):
    resource: str | None = Field(None, description=_RESOURCE)
    slot_id: str | None = Field(None, description=_SLOT)
    start: str | None = Field(None, description=_START)
    duration: int | None = Field(None, ge=5, le=480, description="Length in minutes.")
    timezone: str | None = Field(None, description=_ZONE)


class CheckAvailability(_Args):
    resource: str | None = Field(None, description=_RESOURCE)
    date: str | None = Field(None, description="First day to look at, YYYY-MM-DD. Default: today.")
    end_date: str | None = Field(
        None, description="Last day to look at, YYYY-MM-DD. Default: the same day as date."
    )
    after: str | None = Field(
        None, description="Earliest start time of day, HH:MM (e.g. 14:00 for the afternoon)."
    )
    before: str | None = Field(None, description="Latest start time of day, HH:MM.")
    duration: int | None = Field(
        None, ge=5, le=480, description="Length in minutes. Default: the usual length."
    )
    timezone: str | None = Field(None, description=_ZONE)
    limit: int = Field(3, ge=1, le=10, description="How many options to offer (default 3).")


class HoldSlot(_When):
    pass


class BookAppointment(_When):
    name: str = Field(..., min_length=1, max_length=200, description="The caller's full name.")
    phone: str | None = Field(None, max_length=40, description=_PHONE)
    email: str | None = Field(None, max_length=254, description="Email address, if given.")
    notes: str | None = Field(None, max_length=2000, description="Reason for the visit, if any.")
    hold_id: str | None = Field(None, description="The hold_id from hold_slot, if you held one.")


class FindMyAppointments(_Args):
    phone: str | None = Field(None, max_length=40, description=_PHONE)
    resource: str | None = Field(None, description="Only this calendar; default: all.")
    timezone: str | None = Field(None, description=_ZONE)


class CancelAppointment(_Args):
    appointment_id: str | None = Field(
        None, description="From find_my_appointments; may be left out if the caller has one."
    )
    phone: str | None = Field(None, max_length=40, description=_PHONE)
    reason: str | None = Field(None, max_length=500, description="Why, if the caller said.")


class RescheduleAppointment(_When):
    appointment_id: str | None = Field(
        None, description="From find_my_appointments; may be left out if the caller has one."
    )
    phone: str | None = Field(None, max_length=40, description=_PHONE)


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    arguments: type[_Args]
    writes: bool  # needs a write-scope key


TOOLS: Final[tuple[Tool, ...]] = (
    Tool(
        "check_availability",
        "Find free appointment times. Returns a few options, each with a spoken label to read "
        "out and a slot_id to hold or book it. Call it before offering any time.",
        CheckAvailability,
        writes=False,
    ),
    Tool(
        "hold_slot",
        "Reserve a time for a few minutes while you take the caller's details, so nobody "
        "else can book it. A new hold in the same call replaces the previous one.",
        HoldSlot,
        writes=True,
    ),
    Tool(
        "book_appointment",
        "Book the appointment once the caller has agreed on a time and given their name. "
        "Safe to retry: the same tool call never books twice.",
        BookAppointment,
        writes=True,
    ),
    Tool(
        "find_my_appointments",
        "List the caller's upcoming appointments, found by their phone number.",
        FindMyAppointments,
        writes=False,
    ),
    Tool(
        "cancel_appointment",
        "Cancel one of the caller's appointments. Confirm with the caller before calling.",
        CancelAppointment,
        writes=True,
    ),
    Tool(
        "reschedule_appointment",
        "Move one of the caller's appointments to another free time (from check_availability).",
        RescheduleAppointment,
        writes=True,
    ),
)
BY_NAME: Final = {tool.name: tool for tool in TOOLS}


def tool(name: str) -> Tool:
    found = BY_NAME.get(name)
    if found is None:
        raise InputError(f"unknown tool {name!r}; calsync has {', '.join(BY_NAME)}")
    return found


def parse_arguments(spec: Tool, arguments: dict[str, Any]) -> Any:
    """The tool's arguments, checked; a mistake is an InputError naming the argument."""
    try:
        return spec.arguments.model_validate(arguments)
    except ValidationError as err:
        problems = [_problem(e) for e in err.errors()]
        raise InputError(f"{spec.name}: {'; '.join(problems)}") from None


def parameters_schema(spec: Tool, *, fixed: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The JSON Schema of a tool's arguments, plain enough for every platform.

    ``fixed`` names arguments the platform never sends (e.g. ``resource``
    when it is set in the tool's URL); they are left out.
    """
    raw = spec.arguments.model_json_schema()
    properties = {
        name: _plain(prop) for name, prop in raw["properties"].items() if name not in fixed
    }
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    required = [name for name in raw.get("required", []) if name not in fixed]
    if required:
        schema["required"] = required
    return schema


def example_arguments(spec: Tool, today: date, *, resource: str | None) -> dict[str, Any]:
    """A realistic call of the tool, for the exported definitions and their tests.

    Times fall on the first Tuesday after ``today`` at 10:00, business time.
    """
    day = today + timedelta(days=(1 - today.weekday()) % 7 or 7)
    start = f"{day.isoformat()}T10:00"
    where = {"resource": resource} if resource else {}
    examples: dict[str, dict[str, Any]] = {
        "check_availability": {**where, "date": day.isoformat(), "after": "09:00"},
        "hold_slot": {**where, "start": start},
        "book_appointment": {**where, "start": start, "name": "Anna Berger"},
        "find_my_appointments": {},
        "cancel_appointment": {"reason": "feeling better"},
        "reschedule_appointment": {**where, "start": f"{day.isoformat()}T11:00"},
    }
    return examples[spec.name]


def _plain(prop: dict[str, Any]) -> dict[str, Any]:
    """A pydantic property without title, null branch or null default."""
    options = [p for p in prop.get("anyOf", []) if p.get("type") != "null"]
    base = dict(options[0]) if len(options) == 1 else dict(prop)
    base.pop("anyOf", None)
    for key in ("description", "default"):
        if key in prop:
            base[key] = prop[key]
    base.pop("title", None)
    if base.get("default", 0) is None:
        del base["default"]
    return base


def _problem(error: Any) -> str:
    where = ".".join(str(part) for part in error.get("loc", ())) or "arguments"
    kind = error.get("type")
    if kind == "missing":
        return f"{where} is required"
    if kind == "extra_forbidden":
        return f"{where} is not an argument of this tool"
    return f"{where}: {error.get('msg', 'is invalid')}"
