"""calsync errors and request-validation failures -> ``{error:{code,message,details}}`` responses.

Every bad input is a 4xx that says what to fix; a 5xx only means calsync or
a provider is in trouble, never that the caller sent something wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from calsync import errors

log = logging.getLogger(__name__)

STATUS: tuple[tuple[type[errors.CalsyncError], int], ...] = (
    (errors.AuthError, 401),
    (errors.ForbiddenError, 403),
    (errors.MalformedRequestError, 400),
    (errors.NotFoundError, 404),
    (errors.ConflictError, 409),
    (errors.SyncRefusedError, 409),
    (errors.InputError, 422),
    (errors.StoreError, 503),
    (errors.RateLimitedError, 503),
    (errors.ProviderAuthError, 502),
    (errors.ProviderError, 502),
)


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message, **(extra or {})}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def install(
    app: FastAPI, extra_of: Callable[[Request, errors.CalsyncError], dict[str, Any]]
) -> None:
    """Register the handlers; ``extra_of`` adds fields to an error (e.g. alternatives)."""

    @app.exception_handler(errors.CalsyncError)
    async def calsync_error(request: Request, err: errors.CalsyncError) -> JSONResponse:
        status = next((s for kind, s in STATUS if isinstance(err, kind)), 500)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if isinstance(err, errors.RateLimitedError) and err.retry_after:
            headers = {"Retry-After": str(int(err.retry_after))}
        if status >= 500:
            log.warning(
                "request failed path=%s error=%s message=%r",
                request.url.path,
                err.code,
                err.message,
            )
        extra = extra_of(request, err)
        return error_response(status, err.code, err.message, headers=headers, extra=extra)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, err: RequestValidationError) -> JSONResponse:
        problems = [_problem(e) for e in err.errors()]
        if any(e.get("type") == "json_invalid" for e in err.errors()):
            return error_response(400, "invalid_json", "the request body is not valid JSON")
        return error_response(422, "invalid_request", "; ".join(problems), problems)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(err.status_code, "http_error")
        message = str(err.detail)
        if err.status_code == 404:
            message = f"no such endpoint: {request.method} {request.url.path}"
        return error_response(err.status_code, code, message, headers=dict(err.headers or {}))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception) -> JSONResponse:
        log.exception("unexpected failure path=%s", request.url.path)
        return error_response(500, "internal_error", "calsync failed unexpectedly; see its log")


def _problem(error: Any) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    message = str(error.get("msg", "is invalid"))
    if error.get("type") == "missing":
        message = "is required"
    elif error.get("type") == "extra_forbidden":
        message = "is not a known field"
    return f"{where}: {message}" if where else message
