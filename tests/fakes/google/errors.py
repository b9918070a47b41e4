"""Google's JSON error envelope: the one exception type the fake raises for API errors.

Owns the body shape ``{"error": {"errors": [{domain, reason, message, ...}],
"code": N, "message": ...}}`` and the canned errors the reference pins down
word for word. It does not know about HTTP handlers or routing.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answered in Google's envelope; ``headers`` are added to the response."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        *,
        domain: str = "global",
        location: str | None = None,
        location_type: str | None = None,
        headers: dict[str, str] | None = None,
        top_message: str | None = None,
    ) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.domain = domain
        self.location = location
        self.location_type = location_type
        self.headers = dict(headers or {})
        self.top_message = top_message or message

    def body(self) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "domain": self.domain,
            "reason": self.reason,
            "message": self.message,
        }
        if self.location_type is not None:
            detail["locationType"] = self.location_type
        if self.location is not None:
            detail["location"] = self.location
        return {"error": {"errors": [detail], "code": self.status, "message": self.top_message}}


def bad_parameter(
    name: str, message: str = "Invalid Value", reason: str = "invalid", status: int = 400
) -> ApiError:
    return ApiError(status, reason, message, location=name, location_type="parameter")


def not_found() -> ApiError:
    return ApiError(404, "notFound", "Not Found")


def deleted() -> ApiError:
    return ApiError(410, "deleted", "Resource has been deleted")


def full_sync_required() -> ApiError:
    """The exact 410 body of providers.md 1.2."""
    return ApiError(
        410,
        "fullSyncRequired",
        "Sync token is no longer valid, a full sync is required.",
        domain="calendar",
        location="syncToken",
        location_type="parameter",
    )


def time_range_empty(location: str = "timeMax") -> ApiError:
    return ApiError(
        400,
        "timeRangeEmpty",
        "The specified time range is empty.",
        domain="calendar",
        location=location,
        location_type="parameter",
    )


def unauthenticated(reason: str = "authError") -> ApiError:
    """401 as Google sends it: ``authError`` for a bad token, ``required`` for none."""
    message = "Invalid Credentials" if reason == "authError" else "Login Required."
    return ApiError(
        401,
        reason,
        message,
        location="Authorization",
        location_type="header",
        headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
    )


# Canned (domain, message) per reason, for fail_next(); the status picks a default reason.
CANNED: dict[str, tuple[str, str]] = {
    "rateLimitExceeded": ("usageLimits", "Rate Limit Exceeded"),
    "userRateLimitExceeded": ("usageLimits", "User Rate Limit Exceeded"),
    "quotaExceeded": ("usageLimits", "Calendar usage limits exceeded."),
    "backendError": ("global", "Backend Error"),
    "internalError": ("global", "Internal Error"),
    "authError": ("global", "Invalid Credentials"),
    "forbidden": ("global", "Forbidden"),
    "notFound": ("global", "Not Found"),
    "deleted": ("global", "Resource has been deleted"),
    "duplicate": ("global", "The requested identifier already exists."),
    "badRequest": ("global", "Bad Request"),
}
DEFAULT_REASON: dict[int, str] = {
    400: "badRequest",
    401: "authError",
    403: "rateLimitExceeded",
    404: "notFound",
    409: "duplicate",
    410: "deleted",
    429: "rateLimitExceeded",
    500: "backendError",
    502: "backendError",
    503: "backendError",
    504: "backendError",
}


def injected(status: int, reason: str | None, message: str | None) -> ApiError:
    """The error a ``fail_next`` entry answers with, in Google's words where known."""
    if reason == "fullSyncRequired":
        return full_sync_required()
    if status == 401 and reason in (None, "authError"):
        return unauthenticated()
    reason = reason or DEFAULT_REASON.get(status, "backendError")
    domain, canned = CANNED.get(reason, ("global", reason))
    return ApiError(status, reason, message or canned, domain=domain)
