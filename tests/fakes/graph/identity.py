"""Microsoft identity platform v2 endpoints, as MSAL Python 1.39 uses them (reference 2.7).

Owns: OIDC discovery (``/{tenant}/v2.0/.well-known/openid-configuration``),
instance discovery (unknown hosts -> ``invalid_instance``), the device-code
endpoint, the authorize step (``consent()`` or a browser GET), and the token
endpoint for the device_code, authorization_code (PKCE checked) and
refresh_token grants. Tokens: unsigned JWT ``id_token`` (oid, tid,
preferred_username, nonce), ``client_info``, ``scope`` echoed as requested,
rotated refresh tokens, access tokens the Graph side checks. Errors use AAD's
body (``error``, ``error_description`` "AADSTSnnnn: ...", ``error_codes``, ...).
The AADSTS numbers are best-effort; clients should branch on ``error`` only.
It must not know about mailboxes or Graph routes.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from .aad import (
    CONSUMER_TENANT,
    DEVICE_GRANT,
    GRAPH,
    MICROSOFT_HOSTS,
    REVOKED_TEXT,
    AadError,
    AccessToken,
    AuthCode,
    AuthorizationResponse,
    DeviceCode,
    RefreshToken,
    canonical_scope,
    form_fields,
    pkce_challenge,
    require,
    split_scopes,
    unsigned_jwt,
)
from .store import GraphUser
from .wire import Incoming, Reply, json_reply

if TYPE_CHECKING:
    from .server import FakeGraph


class Identity:
    """The AAD half of the fake. The server's lock guards its state."""

    def __init__(self, graph: FakeGraph) -> None:
        self.graph = graph
        self.device_codes: dict[str, DeviceCode] = {}
        self.auth_codes: dict[str, AuthCode] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.consents: dict[tuple[str, str], set[str]] = {}
        self.polled = threading.Condition(graph.lock)

    # --- routing ------------------------------------------------------------------------------

    def handle(self, req: Incoming) -> Reply:
        parts = req.path.strip("/").split("/")
        try:
            if req.method == "GET" and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
                return self._openid(req, self._tenant(parts[0]))
            if req.method == "GET" and parts[1:] == ["discovery", "instance"]:
                return self._instance_discovery(req)
            if len(parts) == 4 and parts[1:3] == ["oauth2", "v2.0"]:
                tenant = self._tenant(parts[0])
                if req.method == "POST" and parts[3] == "devicecode":
                    return self._device_code(req)
                if req.method == "POST" and parts[3] == "token":
                    return self._token(req, tenant)
                if req.method == "GET" and parts[3] == "authorize":
                    return self._authorize_page(req)
        except AadError as err:
            return self._error(req, err)
        return Reply(404, b"Not Found", {"Content-Type": "text/plain"})

    # --- test controls ------------------------------------------------------------------------

    def device_code(self, user_code: str) -> DeviceCode:
        found = [d for d in self.device_codes.values() if d.user_code == user_code]
        if not found:
            raise KeyError(f"no device code with user_code {user_code!r}")
        return found[0]

    def consent(
        self, auth_url: str, user: GraphUser, granted: list[str] | None, deny: bool
    ) -> AuthorizationResponse:
        split = urlsplit(auth_url)
        parts = split.path.strip("/").split("/")
        if split.hostname not in self.graph.authority_hosts or parts[1:] != [
            "oauth2", "v2.0", "authorize",
        ]:  # fmt: skip
            raise ValueError(f"not an authorize URL of this fake: {auth_url}")
        self._tenant(parts[0])
        return self._authorize(parse_qs(split.query), user, granted, deny)

    def mint(self, scopes: list[str], user: GraphUser, client_id: str) -> str:
        granted = frozenset(s for s in (canonical_scope(x) for x in scopes) if s)
        return self._access_token(user, client_id, granted).token

    # --- discovery ----------------------------------------------------------------------------

    def _openid(self, req: Incoming, tenant: str) -> Reply:
        base = f"{req.base_url}/{tenant}"
        issuer_tenant = {"common": "{tenantid}", "organizations": "{tenantid}"}.get(
            tenant, CONSUMER_TENANT if tenant == "consumers" else self.graph.user.tenant_id
        )
        return json_reply(
            200,
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{req.base_url}/{issuer_tenant}/v2.0",
                "request_uri_parameter_supported": False,
                "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "cloud_instance_name": "microsoftonline.com",
                "msgraph_host": "graph.microsoft.com",
            },
        )

    def _instance_discovery(self, req: Incoming) -> Reply:
        endpoint = req.param("authorization_endpoint") or ""
        host = urlsplit(endpoint).hostname
        if host not in MICROSOFT_HOSTS:
            raise AadError(
                "invalid_instance",
                50049,
                "Unknown or invalid instance. (Pass instance_discovery=False to MSAL for a "
                "host it does not know.)",
            )
        tenant_path = urlsplit(endpoint).path.split("/oauth2/")[0]
        return json_reply(
            200,
            {
                "tenant_discovery_endpoint": f"https://{host}{tenant_path}/v2.0/.well-known/"
                "openid-configuration",
                "api-version": "1.1",
                "metadata": [
                    {"preferred_network": host, "preferred_cache": host, "aliases": [host]}
                ],
            },
        )

    # --- device code --------------------------------------------------------------------------

    def _device_code(self, req: Incoming) -> Reply:
        form = form_fields(req)
        client_id = self._client(form)
        scope = require(form, "scope")
        split_scopes(scope)  # validates
        user_code = "".join(secrets.choice("BCDFGHJKLMNPQRSTVWXZ23456789") for _ in range(9))
        code = DeviceCode(
            device_code="DAQABIQEAAAB" + secrets.token_urlsafe(96),
            user_code=user_code,
            client_id=client_id,
            scope=scope,
            expires_at=time.time() + self.graph.device_code_lifetime,
        )
        self.device_codes[code.device_code] = code
        uri = "https://microsoft.com/devicelogin"
        return json_reply(
            200,
            {
                "user_code": user_code,
                "device_code": code.device_code,
                "verification_uri": uri,
                "expires_in": self.graph.device_code_lifetime,
                "interval": self.graph.device_code_interval,
                "message": f"To sign in, use a web browser to open the page {uri} "
                f"and enter the code {user_code} to authenticate.",
            },
        )

    # --- authorize ----------------------------------------------------------------------------

    def _authorize_page(self, req: Incoming) -> Reply:
        """A browser GET: signs in the default user at once and sends it back."""
        answer = self._authorize(req.query, self.graph.user, None, deny=False)
        if answer.response_mode == "form_post":
            fields = "".join(
                f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}"/>'
                for k, v in answer.params.items()
            )
            page = (
                f'<html><body onload="document.forms[0].submit()"><form method="POST" '
                f'action="{html.escape(answer.redirect_uri)}">{fields}</form></body></html>'
            )
            return Reply(200, page.encode(), {"Content-Type": "text/html; charset=utf-8"})
        return Reply(302, b"", {"Location": answer.url})

    def _authorize(
        self, query: dict[str, list[str]], user: GraphUser, granted: list[str] | None, deny: bool
    ) -> AuthorizationResponse:
        form = {k: v[0] for k, v in query.items()}
        client_id = self._client(form)
        redirect = require(form, "redirect_uri")
        target = urlsplit(redirect)
        if target.scheme != "http" or target.hostname not in ("localhost", "127.0.0.1"):
            raise AadError(
                "invalid_request", 50011, f"The redirect URI '{redirect}' does not match the "
                "redirect URIs configured for the application (http://localhost).",
            )  # fmt: skip
        if form.get("response_type") != "code":
            raise AadError("unsupported_response_type", 9002313, "Use response_type=code.")
        scope = require(form, "scope")
        split_scopes(scope)
        method = form.get("code_challenge_method", "plain")
        if method not in ("S256", "plain"):
            raise AadError("invalid_request", 9002313, f"Bad code_challenge_method {method!r}.")
        mode = form.get("response_mode", "query")
        state = {"state": form["state"]} if "state" in form else {}
        if deny:
            error = {"error": "access_denied", "error_description": "AADSTS65004: User declined."}
            return AuthorizationResponse(redirect, error | state, mode)
        self.grant(user, client_id, scope, granted)
        code = "1.AQ" + secrets.token_urlsafe(120)
        self.auth_codes[code] = AuthCode(
            client_id, redirect, scope, user, form.get("code_challenge"), method,
            form.get("nonce"), time.time() + 600,
        )  # fmt: skip
        params = {"code": code, **state, "session_state": str(uuid.uuid4())}
        return AuthorizationResponse(redirect, params, mode)

    def grant(self, user: GraphUser, client_id: str, scope: str, granted: list[str] | None) -> None:
        wanted = granted if granted is not None else split_scopes(scope)[0]
        names = {c for c in (canonical_scope(s) for s in wanted) if c}
        if ".default" in names:
            names = (names - {".default"}) | set(self.graph.app_permissions)
        self.consents.setdefault((user.oid, client_id), set()).update(names)

    # --- token endpoint -----------------------------------------------------------------------

    def _token(self, req: Incoming, tenant: str) -> Reply:
        form = form_fields(req)
        grant_type = require(form, "grant_type")
        client_id = self._client(form)
        if grant_type == DEVICE_GRANT:
            return self._redeem_device_code(req, form, client_id)
        if grant_type == "authorization_code":
            return self._redeem_auth_code(req, form, client_id)
        if grant_type == "refresh_token":
            return self._refresh(req, form, client_id)
        raise AadError(
            "unsupported_grant_type", 70003, "The app requested an unsupported grant type."
        )

    def _redeem_device_code(self, req: Incoming, form: dict[str, str], client_id: str) -> Reply:
        code = self.device_codes.get(require(form, "device_code"))
        if code is None or code.client_id != client_id:
            raise AadError("invalid_grant", 70000, "The provided device_code is not valid.")
        code.polls += 1
        self.polled.notify_all()
        if code.status == "redeemed":
            raise AadError("invalid_grant", 54005, "The device code was already redeemed.")
        if code.status == "expired" or time.time() > code.expires_at:
            raise AadError("expired_token", 70019, "Verification code expired.")
        if code.status == "declined":
            raise AadError("authorization_declined", 70000, "The user denied the request.")
        if code.slow_downs:
            code.slow_downs -= 1
            raise AadError("slow_down", 70016, "Polling too often; slow down.")
        if code.status == "pending" or code.user is None:
            raise AadError(
                "authorization_pending",
                70016,
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
            )
        code.status = "redeemed"
        return self._issue(req, form, code.user, client_id, code.scope, None)

    def _redeem_auth_code(self, req: Incoming, form: dict[str, str], client_id: str) -> Reply:
        code = self.auth_codes.get(require(form, "code"))
        if code is None or code.client_id != client_id:
            raise AadError("invalid_grant", 70000, "The provided authorization code is invalid.")
        if code.used:
            raise AadError(
                "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed."
            )
        if time.time() > code.expires_at:
            raise AadError("invalid_grant", 70008, REVOKED_TEXT[70008])
        if form.get("redirect_uri") != code.redirect_uri:
            raise AadError("invalid_grant", 50011, "The redirect_uri does not match the one used.")
        if code.challenge is not None and pkce_challenge(
            form.get("code_verifier"), code.method
        ) != (code.challenge):
            raise AadError(
                "invalid_grant",
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the "
                "authorization request.",
            )
        code.used = True
        scope = form.get("scope") or code.scope
        self._check_consented(code.user, client_id, scope)
        return self._issue(req, form, code.user, client_id, scope, code.nonce)

    def _refresh(self, req: Incoming, form: dict[str, str], client_id: str) -> Reply:
        token = self.refresh_tokens.get(require(form, "refresh_token"))
        if token is None or token.client_id != client_id:
            raise AadError("invalid_grant", 9002313, "Invalid request. Malformed refresh token.")
        if token.revoked is not None:
            text = REVOKED_TEXT.get(token.revoked, "The refresh token is no longer valid.")
            raise AadError("invalid_grant", token.revoked, text)
        if token.used and self.graph.single_use_refresh_tokens:
            raise AadError("invalid_grant", 70000, "The refresh token was already used.")
        scope = require(form, "scope")
        self._check_consented(token.user, client_id, scope)
        token.used = True
        return self._issue(req, form, token.user, client_id, scope, None)

    def _check_consented(self, user: GraphUser, client_id: str, scope: str) -> None:
        consented = self.consents.get((user.oid, client_id), set())
        wanted = {
            c for c in (canonical_scope(s) for s in split_scopes(scope)[0]) if c and c != ".default"
        }
        if not wanted <= consented:
            raise AadError("invalid_grant", 65001, REVOKED_TEXT[65001])

    def _issue(
        self, req: Incoming, form: dict[str, str], user: GraphUser, client_id: str,
        scope: str, nonce: str | None,
    ) -> Reply:  # fmt: skip
        resource, reserved = split_scopes(scope)
        consented = self.consents.get((user.oid, client_id), set())
        echoed = [s for s in resource if canonical_scope(s) in consented]
        if any(canonical_scope(s) == ".default" for s in resource):
            echoed = [GRAPH + s for s in sorted(consented)]
        granted = frozenset(c for c in (canonical_scope(s) for s in echoed) if c)
        access = self._access_token(user, client_id, granted)
        lifetime = self.graph.access_token_lifetime
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join([*echoed, *reserved]),
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": access.token,
        }
        if "offline_access" in reserved:
            refresh = "1.AQ" + secrets.token_urlsafe(160)
            self.refresh_tokens[refresh] = RefreshToken(client_id, user)
            body["refresh_token"] = refresh
        tid = self._tid(user)
        if "openid" in reserved:
            body["id_token"] = self._id_token(req, user, client_id, tid, nonce)
        if form.get("client_info") == "1":
            info = json.dumps({"uid": user.oid, "utid": tid}).encode()
            body["client_info"] = base64.urlsafe_b64encode(info).decode().rstrip("=")
        return json_reply(200, body, {"Cache-Control": "no-store"})

    def _access_token(self, user: GraphUser, client_id: str, scopes: frozenset[str]) -> AccessToken:
        now = int(time.time())
        claims = {"aud": "00000003-0000-0000-c000-000000000000", "iat": now, "oid": user.oid,
                  "tid": self._tid(user), "scp": " ".join(sorted(scopes)), "appid": client_id,
                  "uti": secrets.token_urlsafe(16)}  # fmt: skip
        token = unsigned_jwt(claims) + secrets.token_urlsafe(32)
        expires = time.time() + self.graph.access_token_lifetime
        self.access_tokens[token] = AccessToken(token, user, client_id, scopes, expires)
        return self.access_tokens[token]

    def _id_token(
        self, req: Incoming, user: GraphUser, client_id: str, tid: str, nonce: str | None
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": client_id,
            "iss": f"{req.base_url}/{tid}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "name": user.display_name,
            "oid": user.oid,
            "preferred_username": user.upn,
            "sub": hashlib.sha256(f"{user.oid}{client_id}".encode()).hexdigest()[:43],
            "tid": tid,
            "ver": "2.0",
        }
        if nonce is not None:
            claims["nonce"] = nonce
        return unsigned_jwt(claims)

    def _tid(self, user: GraphUser) -> str:
        return CONSUMER_TENANT if self.graph.personal_account else user.tenant_id

    # --- checks and errors --------------------------------------------------------------------

    def _tenant(self, tenant: str) -> str:
        known = {"common", "organizations", "consumers", self.graph.tenant_domain.lower()}
        known |= {u.tenant_id for u in self.graph.users}
        if tenant.lower() not in known:
            raise AadError(
                "invalid_tenant",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
                "and are signing into the correct cloud.",
            )
        return tenant

    def _client(self, form: dict[str, str]) -> str:
        client_id = require(form, "client_id")
        allowed = self.graph.client_ids
        if allowed is not None and client_id not in allowed:
            raise AadError(
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory.",
            )
        return client_id

    def _error(self, req: Incoming, err: AadError) -> Reply:
        trace = str(uuid.uuid4())
        correlation = req.headers.get("client-request-id") or str(uuid.uuid4())
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        description = (
            f"AADSTS{err.code}: {err.text} Trace ID: {trace} Correlation ID: {correlation} "
            f"Timestamp: {stamp}"
        )
        body = {
            "error": err.error,
            "error_description": description,
            "error_codes": [err.code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"{req.base_url}/error?code={err.code}",
        }
        return json_reply(400, body)
