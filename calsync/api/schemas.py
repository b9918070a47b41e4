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
