"""AAD v2 wire pieces for the fake identity platform: grants, errors, scopes, JWTs.

Owns: the records behind device codes, authorization codes, refresh and access
tokens; ``AuthorizationResponse`` (what the browser carries back to MSAL's
loopback); AAD's error type; scope parsing (Graph permissions vs. the reserved
OIDC scopes) and unsigned JWTs. It must not route requests or know about
mailboxes.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode

import requests

from .store import GraphUser
from .wire import Incoming

CONSUMER_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
MICROSOFT_HOSTS = frozenset(
    {"login.microsoftonline.com", "login.microsoft.com", "login.windows.net", "sts.windows.net"}
)
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
RESERVED = ("openid", "profile", "offline_access", "email")
GRAPH = "https://graph.microsoft.com/"
GRAPH_SCOPES = {
    s.lower(): s
    for s in (
        "Calendars.Read", "Calendars.ReadWrite", "Calendars.ReadBasic", "Calendars.Read.Shared",
        "Calendars.ReadWrite.Shared", "User.Read", "User.ReadBasic.All", "MailboxSettings.Read",
        "MailboxSettings.ReadWrite",
    )
}  # fmt: skip
REVOKED_TEXT = {
    70008: "The provided authorization code or refresh token has expired due to inactivity. "
    "Send a new interactive authorization request for this user and resource.",
    700082: "The refresh token has expired due to inactivity. "
    "The token was inactive for 90.00:00:00.",
    50173: "The provided grant has expired due to it being revoked, a fresh auth token is needed. "
    "The user might have changed or reset their password.",
    65001: "The user or administrator has not consented to use the application. "
    "Send an interactive authorization request for this user and resource.",
}


class AadError(Exception):
    def __init__(self, error: str, code: int, text: str) -> None:
        super().__init__(text)
        self.error, self.code, self.text = error, code, text


@dataclass
class DeviceCode:
    device_code: str
    user_code: str
    client_id: str
    scope: str
    expires_at: float
    status: str = "pending"  # pending | approved | declined | expired | redeemed
    user: GraphUser | None = None
    slow_downs: int = 0
    polls: int = 0


@dataclass
class AuthCode:
    client_id: str
    redirect_uri: str
    scope: str
    user: GraphUser
    challenge: str | None
    method: str
    nonce: str | None
    expires_at: float
    used: bool = False


@dataclass
class RefreshToken:
    client_id: str
    user: GraphUser
    revoked: int | None = None  # the AADSTS code refreshes now fail with
    used: bool = False


@dataclass
class AccessToken:
    token: str
    user: GraphUser
    client_id: str
    scopes: frozenset[str]
    expires_at: float
    revoked: bool = False


@dataclass(frozen=True)
class AuthorizationResponse:
    """What the browser would carry back to the app's redirect URI after sign-in."""

    redirect_uri: str
    params: dict[str, str]
    response_mode: str  # "form_post" (MSAL >= 1.3x) or "query"

    @property
    def url(self) -> str:
        """The redirect URL with the parameters in its query (``response_mode=query``)."""
        return f"{self.redirect_uri}?{urlencode(self.params)}"

    def deliver(self, timeout: float = 10.0) -> requests.Response:
        """Act as the browser: POST the form (form_post) or GET :attr:`url` (query)."""
        with requests.Session() as session:
            session.trust_env = False
            if self.response_mode == "form_post":
                return session.post(self.redirect_uri, data=self.params, timeout=timeout)
            return session.get(self.url, timeout=timeout)


# --- helpers ----------------------------------------------------------------------------------


def form_fields(req: Incoming) -> dict[str, str]:
    if not req.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise AadError(
            "invalid_request", 900144, "The request body must be application/x-www-form-urlencoded."
        )
    parsed = parse_qs(req.body.decode(), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


def require(form: dict[str, str], name: str) -> str:
    value = form.get(name)
    if not value:
        raise AadError(
            "invalid_request", 900144, f"The request body must contain the following parameter: "
            f"'{name}'.",
        )  # fmt: skip
    return value


def canonical_scope(scope: str) -> str | None:
    bare = scope[len(GRAPH) :] if scope.lower().startswith(GRAPH) else scope
    if bare == ".default":
        return ".default"
    return GRAPH_SCOPES.get(bare.lower())


def split_scopes(scope: str) -> tuple[list[str], list[str]]:
    """(resource scopes as sent, reserved OIDC scopes); unknown scopes -> invalid_scope."""
    resource, reserved = [], []
    for one in scope.split():
        if one.lower() in RESERVED:
            reserved.append(one)
        elif canonical_scope(one) is None:
            raise AadError(
                "invalid_scope", 70011, f"The provided value for the input parameter 'scope' is "
                f"not valid. The scope '{one}' is not a Graph permission FakeGraph knows.",
            )  # fmt: skip
        else:
            resource.append(one)
    return resource, reserved


def pkce_challenge(verifier: str | None, method: str) -> str | None:
    if not verifier:
        return None
    if method == "plain":
        return verifier
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def unsigned_jwt(claims: dict[str, Any]) -> str:
    """An unsigned JWT (``alg: none``): MSAL decodes id tokens but does not verify them."""

    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'typ': 'JWT', 'alg': 'none'})}.{part(claims)}."
