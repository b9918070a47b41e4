"""Graph's and MSAL's failures -> calsync errors, at one boundary.

Graph answers errors as ``{"error": {"code", "message"}}`` with an HTTP
status that decides the calsync error; MSAL reports token failures as a
result dict (``error``, ``error_description`` starting ``AADSTSnnnn:``) and
lets ``requests`` exceptions through; an authority the identity platform
does not know is a ``ValueError`` from MSAL. No message here ever carries a
token: only statuses, codes and the servers' own texts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import requests

from calsync.errors import (
    CalsyncError,
    CursorExpiredError,
    NotFoundError,
    ProviderAuthError,
    ProviderDataError,
    ProviderUnavailableError,
    RateLimitedError,
)

REAUTH_ERRORS = frozenset(
    {"invalid_grant", "interaction_required", "consent_required", "login_required"}
)
TRANSIENT_ERRORS = frozenset({"temporarily_unavailable", "server_error"})
THROTTLE_STATUSES = frozenset({429, 503, 504})
_AADSTS = re.compile(r"(AADSTS\d+):\s*([^.\r\n]*)")


def reauth(account: str, detail: str) -> ProviderAuthError:
    return ProviderAuthError(
        f"Outlook account {account!r}: {detail}; run `calsync auth outlook --account {account}`"
    )


def from_response(response: requests.Response, account: str) -> CalsyncError:
    """The calsync error for a Graph answer that is not a success."""
    status = response.status_code
    code, text = graph_error(response)
    message = f"Microsoft Graph answered {status}" + (f" {code}" if code else "")
    message += f": {text}" if text else ""
    if status == 401:
        return reauth(account, f"Microsoft Graph refused the access token ({code or status})")
    if status == 404:
        return NotFoundError(message)
    if status == 410:
        return CursorExpiredError(message)
    if throttled(response):
        return RateLimitedError(message, retry_after(response))
    if status >= 500:
        return ProviderUnavailableError(message)
    if status == 403:
        return ProviderDataError(
            f"{message} (check that account {account!r} may use this calendar with "
            "Calendars.ReadWrite)"
        )
    return ProviderDataError(message)


def throttled(response: requests.Response) -> bool:
    """Graph asked to slow down: a 429, or a 503/504 that says when to come back."""
    status = response.status_code
    return status == 429 or (status in THROTTLE_STATUSES and retry_after(response) is not None)


def from_exception(err: Exception, account: str) -> CalsyncError:
    """The calsync error for a transport failure or an MSAL exception."""
    if isinstance(err, requests.Timeout | requests.ConnectionError):
        return ProviderUnavailableError(f"Microsoft Graph unreachable: {type(err).__name__}")
    if isinstance(err, requests.HTTPError):  # MSAL's OIDC discovery got a 5xx
        return ProviderUnavailableError(f"Microsoft identity platform unavailable: {err}")
    if isinstance(err, requests.RequestException | OSError):
        return ProviderUnavailableError(f"Microsoft Graph unreachable: {err}")
    if isinstance(err, ValueError):  # MSAL: unknown tenant or authority host
        return ProviderDataError(
            f"Outlook account {account!r}: the identity platform refused the authority "
            f"({first_line(str(err))}); check accounts.{account}.tenant and "
            f"accounts.{account}.authority"
        )
    return ProviderDataError(f"Outlook: unexpected {type(err).__name__}: {err}")


def from_token_result(result: Mapping[str, Any], account: str) -> CalsyncError:
    """The calsync error for an MSAL result without an access token."""
    error = str(result.get("error", "unknown_error"))
    if error in TRANSIENT_ERRORS:
        return ProviderUnavailableError(
            f"Microsoft identity platform unavailable ({error}: {aad_text(result)})"
        )
    return reauth(account, f"the sign-in is no longer valid ({error}: {aad_text(result)})")


def aad_text(result: Mapping[str, Any]) -> str:
    """``AADSTS70008: The provided ... has expired due to inactivity`` (no trace ids)."""
    description = str(result.get("error_description") or "")
    found = _AADSTS.search(description)
    if found:
        return f"{found.group(1)}: {found.group(2).strip()}"
    return first_line(description) or "no description"


def graph_error(response: requests.Response) -> tuple[str, str]:
    """Graph's ``error.code`` and ``error.message`` (empty when the body is not Graph's)."""
    try:
        error = response.json().get("error", {})
    except (ValueError, AttributeError):
        return "", first_line(response.text)
    if not isinstance(error, dict):
        return "", str(error)
    return str(error.get("code", "")), str(error.get("message", ""))


def retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: let the retrier back off on its own


def first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else ""
