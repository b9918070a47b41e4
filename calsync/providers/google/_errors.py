"""Google's failures -> calsync errors, at one boundary.

HttpError bodies carry ``error.errors[].reason``; token refresh failures come
as ``RefreshError``; network trouble as socket/httplib2 errors.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import httplib2
from google.auth.exceptions import RefreshError, TransportError
from googleapiclient.errors import HttpError

from calsync.errors import (
    CalsyncError,
    CursorExpiredError,
    NotFoundError,
    ProviderAuthError,
    ProviderDataError,
    ProviderUnavailableError,
    RateLimitedError,
)

RATE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"})
TESTING_HINT = (
    'Google revoked or expired the refresh token (apps in Google\'s "Testing" publishing '
    "status lose it after 7 days; publish the app to avoid that)"
)


def reauth(account: str, detail: str) -> ProviderAuthError:
    return ProviderAuthError(
        f"Google account {account!r}: {detail}; run `calsync auth google --account {account}`"
    )


def translate(err: Exception, account: str) -> CalsyncError:
    if isinstance(err, HttpError):
        return _http(err, account)
    if isinstance(err, RefreshError):
        text = str(err.args[0]) if err.args else str(err)
        detail = TESTING_HINT if "invalid_grant" in text else f"cannot refresh the token ({text})"
        return reauth(account, detail)
    if isinstance(
        err, (TransportError, socket.timeout, TimeoutError, OSError, httplib2.HttpLib2Error)
    ):
        return ProviderUnavailableError(f"Google Calendar unreachable: {err}")
    return ProviderDataError(f"Google Calendar: unexpected {type(err).__name__}: {err}")


def reason(err: HttpError) -> str:
    first = _errors(err)[0] if _errors(err) else {}
    return str(first.get("reason", ""))


def _http(err: HttpError, account: str) -> CalsyncError:
    status, why = err.resp.status, reason(err)
    message = f"Google Calendar answered {status} {why or ''}: {_message(err)}".replace("  ", " ")
    if status == 410 and why in ("fullSyncRequired", "updatedMinTooLongAgo"):
        return CursorExpiredError(message)
    if status == 429 or (status == 403 and why in RATE_REASONS):
        return RateLimitedError(message, _retry_after(err))
    if status == 401:
        return reauth(account, "Google refused the access token")
    if status == 404:
        return NotFoundError(message)
    if status >= 500:
        return ProviderUnavailableError(message)
    return ProviderDataError(message)


def _errors(err: HttpError) -> list[dict[str, Any]]:
    try:
        body = json.loads(err.content or b"{}")
    except ValueError:
        return []
    errors = body.get("error", {}).get("errors", []) if isinstance(body, dict) else []
    return [e for e in errors if isinstance(e, dict)]


def _message(err: HttpError) -> str:
    try:
        return str(json.loads(err.content or b"{}")["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return str(err.reason or "")


def _retry_after(err: HttpError) -> float | None:
    value = err.resp.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
