"""Google's OAuth 2.0 server for installed apps: consent (``/auth``), ``/token`` and ``/revoke``.

Owns OAuth clients, authorization codes (single use, 10 minutes, bound to
client, redirect URI, PKCE challenge and the scopes the user ticked), refresh
tokens (issued with ``access_type=offline`` on the first consent, or again
with ``prompt=consent``) and access tokens (3599 s, carrying their scopes).
Errors use Google's JSON (``{"error", "error_description"}``). The caller
holds the lock. It does not know about calendars.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from .errors import ApiError, unauthenticated

SCOPE_PREFIX = "https://www.googleapis.com/auth/"
CALENDAR_SCOPE = SCOPE_PREFIX + "calendar"
OTHER_SCOPES = frozenset({"openid", "email", "profile"})
ACCESS_TTL = timedelta(seconds=3599)
CODE_TTL = timedelta(minutes=10)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


class OAuthError(Exception):
    """A token/revoke endpoint error: ``{"error": ..., "error_description": ...}``."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{status} {error}: {description}")
        self.status = status
        self.body = {"error": error, "error_description": description}


class ConsentError(Exception):
    """What Google's consent page shows instead of redirecting (e.g. ``redirect_uri_mismatch``)."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(f"Error {status}: {error} ({detail})")
        self.status = status


@dataclass
class OAuthClient:
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...] = ("http://localhost",)


@dataclass
class _Grant:
    scopes: frozenset[str]
    client_id: str
    revoked: bool = False  # /revoke: the whole grant, access tokens included
    refresh_revoked: bool = False  # revoke_refresh_tokens(): refresh only (expiry, user revoked)


@dataclass
class AccessToken:
    value: str
    grant: _Grant
    scopes: frozenset[str]
    expires_at: datetime


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    grant: _Grant
    challenge: str | None
    method: str
    expires_at: datetime
    with_refresh: bool
    used: bool = False


class OAuthServer:
    def __init__(self, clock: Callable[[], datetime], client: OAuthClient) -> None:
        self.clock = clock
        self.clients = {client.client_id: client}
        self.codes: dict[str, _Code] = {}
        self.access: dict[str, AccessToken] = {}
        self.refresh: dict[str, _Grant] = {}
        self.consented: set[str] = set()  # client ids the user has granted offline access to

    # --- consent screen ------------------------------------------------------------------

    def authorize(
        self, auth_url: str, granted: list[str] | None = None, *, deny: bool = False
    ) -> str:
        """Simulate the user on the consent page; the URL the browser is redirected to."""
        query = {k: v[-1] for k, v in parse_qs(urlsplit(auth_url).query).items()}
        client = self.clients.get(query.get("client_id", ""))
        if client is None:
            raise ConsentError(401, "invalid_client", "The OAuth client was not found.")
        redirect_uri = query.get("redirect_uri", "")
        if not _redirect_allowed(client, redirect_uri):
            raise ConsentError(400, "redirect_uri_mismatch", redirect_uri)
        if query.get("response_type") != "code":
            raise ConsentError(400, "unsupported_response_type", query.get("response_type", ""))
        requested = query.get("scope", "").split()
        invalid = [s for s in requested if not s.startswith(SCOPE_PREFIX) and s not in OTHER_SCOPES]
        if not requested or invalid:
            raise ConsentError(
                400, "invalid_scope", f"Some requested scopes were invalid. {invalid}"
            )
        method = query.get("code_challenge_method", "plain")
        if method not in ("plain", "S256"):
            raise ConsentError(400, "invalid_request", f"code_challenge_method {method}")
        chosen = list(requested if granted is None else granted)
        if not chosen or not set(chosen) <= set(requested):
            raise ValueError(f"granted scopes {chosen} must be a non-empty subset of {requested}")
        state = {"state": query["state"]} if "state" in query else {}
        if deny:
            return _with_query(redirect_uri, {**state, "error": "access_denied"})
        offline = query.get("access_type") == "offline"
        prompts = query.get("prompt", "").split()
        with_refresh = offline and (client.client_id not in self.consented or "consent" in prompts)
        if offline:
            self.consented.add(client.client_id)
        code = "4/0A" + secrets.token_urlsafe(30)
        self.codes[code] = _Code(
            client.client_id,
            redirect_uri,
            _Grant(frozenset(chosen), client.client_id),
            query.get("code_challenge"),
            method,
            self.clock() + CODE_TTL,
            with_refresh,
        )
        scope = " ".join(chosen)
        return _with_query(redirect_uri, {**state, "code": code, "scope": scope, "authuser": "0"})

    # --- token endpoint ------------------------------------------------------------------

    def token(self, form: dict[str, str], basic: tuple[str, str] | None) -> dict[str, Any]:
        client = self._client(form, basic)
        grant_type = form.get("grant_type", "")
        if grant_type == "authorization_code":
            return self._exchange(client, form)
        if grant_type == "refresh_token":
            return self._refresh(client, form)
        raise OAuthError(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")

    def _client(self, form: dict[str, str], basic: tuple[str, str] | None) -> OAuthClient:
        client_id, secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
        if not client_id:
            raise OAuthError(400, "invalid_request", "Could not determine client ID from request.")
        client = self.clients.get(client_id)
        if client is None:
            raise OAuthError(401, "invalid_client", "The OAuth client was not found.")
        if secret != client.client_secret:
            raise OAuthError(401, "invalid_client", "Unauthorized")
        return client

    def _exchange(self, client: OAuthClient, form: dict[str, str]) -> dict[str, Any]:
        code = self.codes.get(form.get("code", ""))
        if code is None:
            raise OAuthError(400, "invalid_grant", "Malformed auth code.")
        if code.used or code.expires_at <= self.clock() or code.client_id != client.client_id:
            raise OAuthError(400, "invalid_grant", "Bad Request")
        if form.get("redirect_uri") != code.redirect_uri:
            raise OAuthError(400, "redirect_uri_mismatch", "Bad Request")
        if code.challenge is not None:
            verifier = form.get("code_verifier")
            if not verifier:
                raise OAuthError(400, "invalid_grant", "Missing code verifier.")
            if _challenge(verifier, code.method) != code.challenge:
                raise OAuthError(400, "invalid_grant", "Invalid code verifier.")
        code.used = True
        response = self._access_response(code.grant, code.grant.scopes)
        if code.with_refresh:
            response["refresh_token"] = self._new_refresh(code.grant)
        return response

    def _refresh(self, client: OAuthClient, form: dict[str, str]) -> dict[str, Any]:
        value = form.get("refresh_token")
        if not value:
            raise OAuthError(400, "invalid_request", "Missing required parameter: refresh_token")
        grant = self.refresh.get(value)
        if grant is None or grant.revoked or grant.refresh_revoked:
            raise OAuthError(400, "invalid_grant", "Token has been expired or revoked.")
        if grant.client_id != client.client_id:
            raise OAuthError(400, "unauthorized_client", "Unauthorized")
        scopes = grant.scopes
        if form.get("scope"):
            scopes = grant.scopes & frozenset(form["scope"].split())
            if not scopes:
                raise OAuthError(400, "invalid_scope", "Bad Request")
        return self._access_response(grant, scopes)

    def _access_response(self, grant: _Grant, scopes: frozenset[str]) -> dict[str, Any]:
        token = self.issue_access(grant, scopes)
        return {
            "access_token": token,
            "expires_in": int(ACCESS_TTL.total_seconds()),
            "scope": " ".join(sorted(scopes)),
            "token_type": "Bearer",
        }

    # --- tokens --------------------------------------------------------------------------

    def new_grant(self, scopes: list[str] | tuple[str, ...], client_id: str) -> _Grant:
        return _Grant(frozenset(scopes), client_id)

    def issue_access(self, grant: _Grant, scopes: frozenset[str] | None = None) -> str:
        value = "ya29.a0" + secrets.token_urlsafe(40)
        chosen = grant.scopes if scopes is None else scopes
        self.access[value] = AccessToken(value, grant, chosen, self.clock() + ACCESS_TTL)
        return value

    def _new_refresh(self, grant: _Grant) -> str:
        value = "1//0" + secrets.token_urlsafe(40)
        self.refresh[value] = grant
        return value

    def issue_refresh(self, grant: _Grant) -> str:
        return self._new_refresh(grant)

    def check(self, value: str | None) -> AccessToken:
        """The access token a request carries, or Google's 401."""
        if not value:
            raise unauthenticated("required")
        token = self.access.get(value)
        if token is None or token.grant.revoked or token.expires_at <= self.clock():
            raise unauthenticated()
        return token

    def expire_access_tokens(self) -> None:
        for token in self.access.values():
            token.expires_at = min(token.expires_at, self.clock())

    def revoke_refresh_tokens(self) -> None:
        for grant in self.refresh.values():
            grant.refresh_revoked = True

    def revoke(self, value: str) -> None:
        """``/revoke``: revoking either token of a grant ends the whole grant."""
        grant = self.refresh.get(value)
        if grant is None and value in self.access:
            grant = self.access[value].grant
        if grant is None or grant.revoked:
            raise OAuthError(400, "invalid_token", "Token expired or revoked")
        grant.revoked = True


def require_scope(token: AccessToken, allowed: frozenset[str]) -> None:
    if allowed and not token.scopes & allowed:
        raise ApiError(
            403,
            "insufficientPermissions",
            "Insufficient Permission",
            top_message="Request had insufficient authentication scopes.",
        )


def _challenge(verifier: str, method: str) -> str:
    if method == "plain":
        return verifier
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _redirect_allowed(client: OAuthClient, redirect_uri: str) -> bool:
    """Installed apps may use any port on a loopback host (Google's loopback flow)."""
    if redirect_uri in client.redirect_uris:
        return True
    parts = urlsplit(redirect_uri)
    host = parts.hostname or ""
    return parts.scheme == "http" and (host in LOOPBACK_HOSTS or f"[{host}]" in LOOPBACK_HOSTS)


def _with_query(url: str, params: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)
