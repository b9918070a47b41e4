"""Cal.com credentials: the API key, verified against ``/v2/me`` and kept in ``state_dir``.

``calsync auth calcom --account NAME`` reads a key (hidden prompt, or
``--api-key-file`` via ``read_key_file``) and calls ``connect``: the key is
checked with Cal.com first, then stored as ``state_dir/calcom-NAME.key`` with
mode 0600. The daemon reads it with ``load_api_key``; a missing or empty file
is a ``ProviderAuthError`` naming the command that fixes it. The inbound
webhook secret (``accounts.NAME.webhook_secret_file``) is read with
``load_webhook_secret``. No message here ever contains a key or a secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from calsync.errors import InputError, NotFoundError, ProviderAuthError, ProviderDataError
from calsync.providers.calcom import _errors
from calsync.providers.files import write_private

DEFAULT_ENDPOINT = "https://api.cal.com/v2"
KEYS_PAGE = "Settings > Developer > API keys"


@dataclass(frozen=True, slots=True)
class CalcomUser:
    """Whom an API key belongs to, as ``GET /v2/me`` says."""

    username: str
    email: str | None
    time_zone: str | None
    name: str | None = None
    id: int | None = None


def key_path(state_dir: Path, account: str) -> Path:
    return state_dir / f"calcom-{account}.key"


def clean_key(text: str) -> str:
    """The key without surrounding whitespace; an empty or multi-word key is refused."""
    key = text.strip()
    if not key or any(c.isspace() for c in key):
        raise InputError(
            f"that is not a Cal.com API key; copy one from Cal.com ({KEYS_PAGE}); "
            "it looks like cal_live_..."
        )
    return key


def read_key_file(path: Path) -> str:
    """A key from ``--api-key-file``."""
    try:
        return clean_key(path.read_text())
    except OSError as err:
        raise InputError(f"--api-key-file: cannot read {path} ({err.strerror})") from err


def save_api_key(path: Path, key: str) -> None:
    write_private(path, clean_key(key) + "\n")


def load_api_key(path: Path, account: str) -> str:
    """The stored key of ``account`` (the daemon's ``api_key`` source)."""
    fix = f"run `calsync auth calcom --account {account}`"
    try:
        key = path.read_text().strip()
    except FileNotFoundError:
        raise ProviderAuthError(
            f"Cal.com account {account!r} is not connected yet; {fix}"
        ) from None
    except OSError as err:
        raise ProviderAuthError(
            f"Cal.com account {account!r}: cannot read {path} ({err.strerror}); {fix}"
        ) from err
    if not key:
        raise ProviderAuthError(f"Cal.com account {account!r}: {path} is empty; {fix}")
    return key


def verify(
    session: requests.Session,
    endpoint: str | None,
    key: str,
    *,
    account: str | None = None,
    timeout: float = 30.0,
) -> CalcomUser:
    """The user ``key`` belongs to; a key Cal.com refuses is a clear ``InputError``."""
    base = (endpoint or DEFAULT_ENDPOINT).rstrip("/")
    try:
        response = session.get(
            f"{base}/me", headers={"Authorization": f"Bearer {clean_key(key)}"}, timeout=timeout
        )
    except requests.RequestException as err:
        raise _errors.from_exception(err) from err
    if response.status_code in (401, 403):
        _, text = _errors.api_error(response)
        raise InputError(
            f"Cal.com refused this API key ({text or response.status_code}); create a new one "
            f"in Cal.com ({KEYS_PAGE}) and run the command again"
        )
    if response.status_code == 404:
        where = f"accounts.{account}.endpoint" if account else "the account's endpoint"
        raise InputError(
            f"{base} is not a Cal.com API v2 (GET /me answered 404); check {where}, "
            f"e.g. {DEFAULT_ENDPOINT}"
        )
    if response.status_code >= 400:
        raise _errors.from_response(response, account or "?")
    return _user(_errors.success(response).get("data"))


def connect(
    state_dir: Path,
    account: str,
    key: str,
    *,
    session: requests.Session,
    endpoint: str | None = None,
    timeout: float = 30.0,
) -> CalcomUser:
    """Verify ``key`` with Cal.com, then store it for ``account``; returns its user."""
    user = verify(session, endpoint, key, account=account, timeout=timeout)
    save_api_key(key_path(state_dir, account), key)
    return user


def load_webhook_secret(path: Path, account: str) -> str:
    """The secret Cal.com signs ``account``'s webhooks with (surrounding whitespace dropped)."""
    fix = f"accounts.{account}.webhook_secret_file"
    try:
        secret = path.read_text().strip()
    except OSError as err:
        raise NotFoundError(f"{fix}: cannot read {path} ({err.strerror})") from err
    if not secret:
        raise InputError(f"{fix}: {path} is empty; put the webhook's secret from Cal.com in it")
    return secret


def _user(data: Any) -> CalcomUser:
    if not isinstance(data, dict) or not data.get("username"):
        raise ProviderDataError("Cal.com answered GET /v2/me without a username")
    return CalcomUser(
        username=str(data["username"]),
        email=data.get("email"),
        time_zone=data.get("timeZone"),
        name=data.get("name"),
        id=data.get("id") if isinstance(data.get("id"), int) else None,
    )
