"""Request bodies of the HTTP API (pydantic). Times stay strings here: a time without an
offset is read in the resource's zone, which only the route knows."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_METADATA_KEYS = 50


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AttendeeIn(_Body):
    name: str = Field(min_length=1, max_length=256)
    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=320)


class HoldIn(_Body):
    resource: str = Field(min_length=1, max_length=64)
    start: str = Field(max_length=40, description="ISO 8601; no offset = resource zone")
    duration: int | None = Field(default=None, ge=1, le=24 * 60, description="minutes")
    call_id: str | None = Field(default=None, max_length=255)


class BookingIn(HoldIn):
    attendee: AttendeeIn
    hold_id: str | None = Field(default=None, max_length=64)
    notes: str | None = Field(default=None, max_length=2000)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > MAX_METADATA_KEYS:
            raise ValueError(f"at most {MAX_METADATA_KEYS} keys")
        return value


class CancelIn(_Body):
    reason: str | None = Field(default=None, max_length=500)


class RescheduleIn(_Body):
    start: str = Field(max_length=40, description="ISO 8601; no offset = resource zone")


# --- responses (documentation: handlers return the views in calsync.api.views) ---------


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")  # tests validate real responses against these


class Span(_Out):
    start: str = Field(description="ISO 8601 with offset")
    end: str = Field(description="ISO 8601 with offset")


class SlotOut(Span):
    spoken: str = Field(description='e.g. "Dienstag, 24. November, um 15:00 Uhr"')


class Freshness(_Out):
    as_of: str | None = Field(description="oldest last successful sync of the calendars used")
    stale: bool = Field(description="true when as_of is older than twice the sync interval")


class SlotsOut(Span, Freshness):
    resource: str
    timezone: str
    duration: int = Field(description="minutes")
    slots: list[SlotOut]


class FreeBusyOut(Span, Freshness):
    resource: str
    timezone: str
    busy: list[Span]


class OverrideOut(_Out):
    date: str
    hours: list[str]


class ResourceOut(_Out):
    id: str
    name: str
    timezone: str
    language: str
    duration: int
    step: int
    buffer_before: int
    buffer_after: int
    min_notice: int
    max_days_ahead: int
    max_per_day: int | None
    hours: dict[str, list[str]]
    overrides: list[OverrideOut]
    check: list[str]
    book_into: str | None


class ResourcesOut(_Out):
    resources: list[ResourceOut]


class AttendeeOut(_Out):
    name: str
    phone: str | None = Field(description="E.164")
    email: str | None


class BookingOut(Span):
    id: str
    resource: str
    start_utc: str
    end_utc: str
    duration: int
    timezone: str
    status: str = Field(description="pending | confirmed | cancelled")
    attendee: AttendeeOut
    notes: str | None
    metadata: dict[str, Any]
    provider: dict[str, Any] = Field(description="references in the provider calendar")
    call_id: str | None
    cancel_reason: str | None
    created_at: str
    updated_at: str


class BookingsOut(_Out):
    bookings: list[BookingOut]


class HoldOut(Span):
    id: str
    resource: str
    expires_at: str
    call_id: str | None


class SyncOut(_Out):
    calendars: int = Field(description="calendars whose next sync was moved to now")


class ErrorBody(_Out):
    code: str
    message: str
    details: Any = None
    alternatives: list[SlotOut] | None = Field(
        default=None, description="for slot_unavailable: free slots near the requested time"
    )


class ErrorOut(_Out):
    error: ErrorBody


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": text}
    for status, text in (
        (400, "malformed request (e.g. invalid JSON)"),
        (401, "missing or unknown API key"),
        (403, "the API key's scope is too small"),
        (404, "unknown resource, booking or hold"),
        (409, "slot_unavailable (with alternatives) or another conflict"),
        (413, "request body too large"),
        (422, "invalid input: the message says what to fix"),
    )
}
