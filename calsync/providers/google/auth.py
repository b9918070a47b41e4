"""Google credentials: the one-time consent flow, and the refreshable token in ``state_dir``.

``consent`` runs the installed-app flow (google-auth-oauthlib) on a loopback
port and checks that every needed scope was granted and a refresh token
came back. Tokens are stored as JSON with mode 0600 and loaded by the
daemon; a missing or unusable file is a ``ProviderAuthError`` telling the
admin which command fixes it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from google.oauth2.credentials import Credentials
from google_auth_oauthlib.flow import InstalledAppFlow, WSGITimeoutError
from oauthlib.oauth2.rfc6749.errors import OAuth2Error

from calsync.errors import InputError, ProviderAuthError
from calsync.providers.files import write_private

DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
SCOPES = (
    "https://www.googleapis.com/auth/calendar.events",
    "https://www.googleapis.com/auth/calendar.freebusy",
    "https://www.googleapis.com/auth/calendar.calendarlist.readonly",
)
SCOPE_NAMES = {
    SCOPES[0]: "see and edit events",
    SCOPES[1]: "see free/busy",
    SCOPES[2]: "see the list of calendars",
}


def token_path(state_dir: Path, account: str) -> Path:
    return state_dir / f"google-{account}.json"


def load_credentials(path: Path, account: str, token_uri: str | None = None) -> Credentials:
    try:
        info = json.loads(path.read_text())
        credentials = Credentials(  # type: ignore[no-untyped-call]
            token=info.get("token"),
            refresh_token=info["refresh_token"],
            token_uri=token_uri or info.get("token_uri") or DEFAULT_TOKEN_URI,
            client_id=info["client_id"],
            client_secret=info.get("client_secret"),
            scopes=info.get("scopes") or list(SCOPES),
            expiry=_expiry(info.get("expiry")),
        )
    except FileNotFoundError:
        raise ProviderAuthError(
            f"Google account {account!r} is not connected yet; "
            f"run `calsync auth google --account {account}`"
        ) from None
    except (OSError, ValueError, KeyError) as err:
        raise ProviderAuthError(
            f"Google account {account!r}: cannot read {path} ({err}); "
            f"run `calsync auth google --account {account}`"
        ) from err
    return credentials


def _expiry(text: str | None) -> datetime | None:
    """google-auth keeps expiries as naive UTC datetimes."""
    if not text:
        return None
    return datetime.fromisoformat(text.rstrip("Z")).astimezone(UTC).replace(tzinfo=None)


def save_credentials(path: Path, credentials: Credentials) -> None:
    write_private(path, credentials.to_json())  # type: ignore[no-untyped-call]


def consent(
    client_secrets: Path,
    *,
    port: int,
    open_browser: bool,
    timeout: int,
    token_uri: str | None = None,
    announce: Callable[[str], None] = print,
) -> Credentials:
    """Run the consent flow on ``http://localhost:port/`` and return checked credentials."""
    os.environ.setdefault("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")  # we check the scopes ourselves
    if token_uri and urlsplit(token_uri).hostname in LOOPBACK:
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"  # a test server without TLS
    flow = InstalledAppFlow.from_client_config(_client_config(client_secrets, token_uri), SCOPES)
    message = (
        "Open this URL in a browser and allow calsync access:\n\n{url}\n\n"
        f"If the browser runs on another machine, forward the port first:\n"
        f"  ssh -L {port}:localhost:{port} <this server>\n"
    )
    try:
        credentials = flow.run_local_server(
            host="localhost",
            port=port,
            open_browser=open_browser,
            timeout_seconds=timeout,
            authorization_prompt_message=message if not open_browser else "Opening {url}",
            success_message="calsync is connected. You may close this window.",
            prompt="consent",
        )
    except WSGITimeoutError as err:
        raise InputError(f"no answer from the browser within {timeout} s; run it again") from err
    except OAuth2Error as err:
        raise InputError(f"Google refused: {err.description or err.error}") from err
    except OSError as err:
        raise InputError(
            f"--port: cannot listen on localhost:{port} ({err.strerror}); pick another port"
        ) from err
    check(credentials)
    return credentials  # type: ignore[no-any-return]


def check(credentials: Any) -> None:
    granted = set(credentials.granted_scopes or credentials.scopes or ())
    missing = [scope for scope in SCOPES if scope not in granted]
    if missing:
        names = ", ".join(f"{SCOPE_NAMES[s]} ({s})" for s in missing)
        raise InputError(
            f"Google did not grant: {names}. Run the command again and leave every box ticked"
        )
    if not credentials.refresh_token:
        raise InputError(
            "Google returned no refresh token; remove calsync's access at "
            "https://myaccount.google.com/permissions and run the command again"
        )


def _client_config(path: Path, token_uri: str | None) -> dict[str, Any]:
    try:
        config: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise InputError(f"client_secrets: cannot read {path}: {err}") from err
    kind = "installed" if "installed" in config else "web" if "web" in config else None
    if kind is None:
        raise InputError(
            f"client_secrets: {path} is not an OAuth client file; download the JSON of a "
            '"Desktop app" OAuth client from Google Cloud Console'
        )
    if token_uri:
        config[kind]["token_uri"] = token_uri
    return {"installed": config[kind]}
