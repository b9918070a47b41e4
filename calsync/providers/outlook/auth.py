"""Outlook credentials: one MSAL sign-in, then silent tokens from the cache in ``state_dir``.

``connect`` signs an account in once, with the device-code flow (works on a
headless server: it shows a URL and a code) or the browser loopback flow,
and keeps MSAL's token cache as ``state_dir/outlook-<account>.json`` (mode
0600, written only when MSAL changed it). ``TokenSource`` hands the daemon a
fresh access token from that cache; when the refresh token is gone
(``invalid_grant``, any AADSTS refusal, no signed-in user) it raises a
``ProviderAuthError`` that names ``calsync auth outlook --account NAME``.

Scopes are the Graph ones only: MSAL adds ``offline_access openid profile``
itself and refuses them from the caller. An authority host MSAL does not
know (a proxy, a test server) gets ``instance_discovery=False``; TLS goes
through the injected ``requests`` session, which honours
``REQUESTS_CA_BUNDLE`` for a private CA.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msal
import requests
from msal.authority import WELL_KNOWN_AUTHORITY_HOSTS

from calsync.errors import CalsyncError, InputError, ProviderAuthError
from calsync.providers.files import write_private
from calsync.providers.outlook._errors import (
    aad_text,
    from_exception,
    from_token_result,
    reauth,
)

SCOPES = ("Calendars.ReadWrite", "User.Read")
DEFAULT_AUTHORITY_HOST = "login.microsoftonline.com"
TIMEOUT = 30.0  # seconds, for every request MSAL makes


def cache_path(state_dir: Path, account: str) -> Path:
    return state_dir / f"outlook-{account}.json"


def load_cache(path: Path, account: str) -> msal.SerializableTokenCache:
    """The stored token cache (empty when there is none yet)."""
    cache = msal.SerializableTokenCache()
    try:
        cache.deserialize(path.read_text())
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as err:
        raise reauth(account, f"cannot read {path} ({err})") from err
    return cache


def save_cache(path: Path, cache: msal.SerializableTokenCache) -> bool:
    """Write the cache (0600) if MSAL changed it; whether it was written."""
    if not cache.has_state_changed:
        return False
    write_private(path, cache.serialize())
    cache.has_state_changed = False
    return True


def authority_url(tenant: str, authority: str | None = None) -> str:
    """``https://<host>/<tenant>``; ``authority`` may be a host, a base URL or a full authority."""
    if not authority:
        return f"https://{DEFAULT_AUTHORITY_HOST}/{tenant}"
    text = authority.strip().rstrip("/")
    if "://" not in text:
        text = f"https://{text}"
    return text if urlsplit(text).path.strip("/") else f"{text}/{tenant}"


def make_app(
    client_id: str,
    *,
    account: str,
    cache: msal.SerializableTokenCache,
    http_client: requests.Session,
    tenant: str = "common",
    authority: str | None = None,
) -> msal.PublicClientApplication:
    """MSAL's app for one account (it fetches the authority's OpenID configuration now)."""
    url = authority_url(tenant, authority)
    options: dict[str, Any] = {}
    if urlsplit(url).hostname not in WELL_KNOWN_AUTHORITY_HOSTS:
        options["instance_discovery"] = False  # a proxy or private cloud MSAL cannot look up
    try:
        return msal.PublicClientApplication(
            client_id, authority=url, token_cache=cache, http_client=_Timed(http_client), **options
        )
    except (ValueError, requests.RequestException) as err:
        raise from_exception(err, account) from err


def device_login(
    app: msal.PublicClientApplication,
    *,
    account: str,
    announce: Callable[[str], None] = print,
) -> str:
    """Sign in with a code typed at microsoft.com/devicelogin; the signed-in user's name."""
    flow = _guarded(lambda: app.initiate_device_flow(scopes=list(SCOPES)), account)
    if "user_code" not in flow:
        raise InputError(
            f"Microsoft would not start a device sign-in ({aad_text(flow)}); check "
            f"accounts.{account}.client_id and that the app registration allows public "
            "client flows"
        )
    announce(str(flow["message"]))
    result = _guarded(lambda: app.acquire_token_by_device_flow(flow), account)
    return signed_in(app, result, account)


def browser_login(
    app: msal.PublicClientApplication, *, account: str, port: int = 0, timeout: int = 300
) -> str:
    """Sign in through the browser, redirected to ``http://localhost:<port>``."""
    try:
        result = app.acquire_token_interactive(
            list(SCOPES), prompt="select_account", port=port or None, timeout=timeout
        )
    except (ValueError, requests.RequestException) as err:  # before OSError: a subclass
        raise from_exception(err, account) from err
    except OSError as err:
        raise InputError(
            f"--port: cannot listen on localhost:{port} ({err.strerror}); pick another port"
        ) from err
    return signed_in(app, result, account)


def signed_in(app: msal.PublicClientApplication, result: Mapping[str, Any], account: str) -> str:
    """Check a sign-in result: a token, every scope granted, a cached user; the user's name."""
    if "access_token" not in result:
        error = result.get("error")
        if error == "authorization_declined":
            raise InputError("the sign-in was declined; run the command again and accept")
        if error in ("expired_token", "code_expired"):
            raise InputError(
                "the code expired before the sign-in was completed; run the command again"
            )
        raise InputError(f"Microsoft refused the sign-in ({error}: {aad_text(result)})")
    granted = {scope.rsplit("/", 1)[-1].lower() for scope in str(result.get("scope", "")).split()}
    missing = [scope for scope in SCOPES if scope.lower() not in granted]
    if missing:
        raise InputError(
            f"Microsoft did not grant {', '.join(missing)}; an administrator may need to "
            f"consent for the app of accounts.{account}.client_id, then run the command again"
        )
    if not app.get_accounts():
        raise InputError("Microsoft answered without an id token; the sign-in cannot be kept")
    claims = result.get("id_token_claims") or {}
    return str(claims.get("preferred_username") or claims.get("name") or "")


def connect(
    path: Path,
    *,
    account: str,
    client_id: str,
    http_client: requests.Session,
    tenant: str = "common",
    authority: str | None = None,
    browser: bool = False,
    port: int = 0,
    timeout: int = 300,
    announce: Callable[[str], None] = print,
) -> str:
    """``calsync auth outlook``: sign in, keep the token cache at ``path``; the user's name."""
    cache = load_cache(path, account)
    app = make_app(
        client_id, account=account, cache=cache, http_client=http_client,
        tenant=tenant, authority=authority,
    )  # fmt: skip
    if browser:
        user = browser_login(app, account=account, port=port, timeout=timeout)
    else:
        user = device_login(app, account=account, announce=announce)
    save_cache(path, cache)
    return user


class TokenSource:
    """Fresh Graph access tokens for the daemon, from the cache ``connect`` wrote.

    The file is read when first needed and again after an auth failure, so
    the daemon starts without it and picks up a new sign-in by itself.
    """

    def __init__(
        self,
        path: Path,
        *,
        account: str,
        client_id: str,
        http_client: requests.Session,
        tenant: str = "common",
        authority: str | None = None,
    ) -> None:
        self._path = path
        self._account = account
        self._client_id = client_id
        self._http = http_client
        self._tenant = tenant
        self._authority = authority
        self._lock = threading.Lock()
        self._app: msal.PublicClientApplication | None = None
        self._cache = msal.SerializableTokenCache()

    def __call__(self, *, force_refresh: bool = False) -> str:
        with self._lock:
            try:
                return self._acquire(force_refresh)
            except ProviderAuthError:
                self._app = None  # `calsync auth outlook` may write a new cache meanwhile
                raise

    def _acquire(self, force_refresh: bool) -> str:
        app = self._app or self._open()
        users = app.get_accounts()
        if not users:
            raise reauth(self._account, f"no signed-in user in {self._path}")
        result = _guarded(
            lambda: app.acquire_token_silent_with_error(
                list(SCOPES), account=users[0], force_refresh=force_refresh
            ),
            self._account,
        )
        if not result:
            raise reauth(self._account, "the stored sign-in holds no usable token")
        if "access_token" not in result:
            raise from_token_result(result, self._account)
        save_cache(self._path, self._cache)
        return str(result["access_token"])

    def _open(self) -> msal.PublicClientApplication:
        if not self._path.exists():
            raise reauth(self._account, "not connected yet")
        self._cache = load_cache(self._path, self._account)
        self._app = make_app(
            self._client_id, account=self._account, cache=self._cache,
            http_client=self._http, tenant=self._tenant, authority=self._authority,
        )  # fmt: skip
        return self._app


class _Timed:
    """The injected session with a timeout on each request: MSAL ignores its own ``timeout``
    option when given an ``http_client``. The session stays the caller's to close."""

    def __init__(self, session: requests.Session) -> None:
        self._session = session

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", TIMEOUT)
        return self._session.get(url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", TIMEOUT)
        return self._session.post(url, **kwargs)

    def close(self) -> None:
        pass


def _guarded(call: Callable[[], Any], account: str) -> Any:
    """Run an MSAL call; network trouble and refusals become calsync errors."""
    try:
        return call()
    except CalsyncError:
        raise
    except (ValueError, requests.RequestException) as err:
        raise from_exception(err, account) from err
