"""API key authentication for the HTTP API: who is calling, and may they?

Owns reading the ``Authorization: Bearer`` header (and, for the ICS feed
only, the ``?key=`` query parameter), a short-lived in-memory cache of
good keys, and the scope check. It raises ``AuthError`` (401) and
``ForbiddenError`` (403) and builds no responses: the app maps errors to
``{error:{code,message}}`` and adds ``WWW-Authenticate: Bearer``.

Caching: a key that verified is trusted for ``ttl`` (default 5 s) without
touching the database, so a voice agent's burst of lookups costs one read.
The price is that revoking a key (``calsync apikey revoke``, often from
another process) takes effect within ``ttl``, not instantly; code in this
process that revokes a key can call ``Authenticator.forget()`` to make it
immediate.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Protocol

from fastapi import Depends, Request
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from calsync.clock import Clock
from calsync.errors import AuthError, ForbiddenError
from calsync.model import ApiKey, Scope
from calsync.store.apikeys import hash_token, parse_token

DEFAULT_TTL = timedelta(seconds=5)
_CACHE_SWEEP_AT = 1024  # entries; above this, expired ones are dropped on insert
_CREATE_HINT = "create one with `calsync apikey create --name NAME --scope read`"

# Declared only so the OpenAPI document shows how to authenticate; the header and
# the query parameter are parsed below, to give each mistake its own message.
_BEARER_DOC = HTTPBearer(
    auto_error=False, description="An API key: `Authorization: Bearer csk_...`"
)
_QUERY_DOC = APIKeyQuery(
    name="key",
    auto_error=False,
    description="The API key as `?key=csk_...`, for calendar apps that cannot send headers. "
    "URLs end up in logs and app settings: use a read-scope key.",
)


class KeyVerifier(Protocol):
    """What the authenticator needs of ``calsync.store.apikeys.ApiKeyRepo``."""

    def verify(self, token: str, now: datetime) -> ApiKey | None: ...


class Authenticator:
    """Turns a request's credentials into an ``ApiKey``; thread-safe."""

    def __init__(self, keys: KeyVerifier, clock: Clock, ttl: timedelta = DEFAULT_TTL) -> None:
        self._keys = keys
        self._clock = clock
        self._ttl = ttl
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[ApiKey, datetime]] = {}  # sha256(token) -> key, expiry

    def authenticate(
        self, authorization_header: str | None, query_key: str | None = None
    ) -> ApiKey:
        """The key behind a request; the header wins over ``query_key`` when both are sent."""
        return self._check(_token(authorization_header, query_key))

    def cached(
        self, authorization_header: str | None, query_key: str | None = None
    ) -> ApiKey | None:
        """The key if it verified within ``ttl`` (no database read); None: ask ``authenticate``."""
        token = _token(authorization_header, query_key)
        if parse_token(token) is None:
            return None  # authenticate explains what is wrong with it
        return self._cached(hash_token(token), self._clock.now())

    def forget(self) -> None:
        """Drop every cached verification, e.g. right after revoking a key in this process."""
        with self._lock:
            self._cache.clear()

    def _check(self, token: str) -> ApiKey:
        prefix = parse_token(token)
        if prefix is None:
            raise AuthError(
                "malformed API key: calsync keys look like csk_<8 characters>_<secret>; "
                + _CREATE_HINT
            )
        digest = hash_token(token)  # the cache never holds a token itself
        now = self._clock.now()
        cached = self._cached(digest, now)
        if cached is not None:
            return cached
        key = self._keys.verify(token, now)  # outside the lock: requests must not queue on I/O
        if key is None:
            raise AuthError(
                f"API key csk_{prefix}_... is unknown or revoked "
                f"(see `calsync apikey list`); {_CREATE_HINT}"
            )
        self._remember(digest, key, now)
        return key

    def _cached(self, digest: str, now: datetime) -> ApiKey | None:
        with self._lock:
            entry = self._cache.get(digest)
            if entry is None:
                return None
            if now >= entry[1]:
                del self._cache[digest]
                return None
            return entry[0]

    def _remember(self, digest: str, key: ApiKey, now: datetime) -> None:
        with self._lock:
            if len(self._cache) >= _CACHE_SWEEP_AT:
                self._cache = {d: e for d, e in self._cache.items() if now < e[1]}
            self._cache[digest] = (key, now + self._ttl)


def require(scope: Scope) -> Callable[..., Awaitable[ApiKey]]:
    """A FastAPI dependency: the request's API key, which must allow ``scope``.

    Use as ``key: Annotated[ApiKey, Depends(require(Scope.WRITE))]`` or in a
    route's ``dependencies=[...]``.
    """

    async def api_key(
        request: Request,
        _doc: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER_DOC)],
    ) -> ApiKey:
        return await _admitted(request, scope, None)

    return api_key


def require_feed(scope: Scope = Scope.READ) -> Callable[..., Awaitable[ApiKey]]:
    """Like ``require``, but also accepts the key as ``?key=``; only for the ICS feed.

    Calendar apps subscribe to a URL and cannot send headers. A key in a URL
    leaks into logs and app settings, so no other endpoint accepts it.
    """

    async def api_key(
        request: Request,
        _doc_header: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER_DOC)],
        query_key: Annotated[str | None, Depends(_QUERY_DOC)],
    ) -> ApiKey:
        return await _admitted(request, scope, query_key)

    return api_key


async def admit(request: Request, needed: Scope) -> ApiKey:
    """The request's API key, which must allow ``needed``; for routes that decide at run time."""
    return await _admitted(request, needed, None)


async def _admitted(request: Request, needed: Scope, query_key: str | None) -> ApiKey:
    """Like ``_admit``, but a key that is not cached is verified off the event loop."""
    header = request.headers.get("authorization")
    key = _authenticator(request).cached(header, query_key)
    if key is None:
        return await run_in_threadpool(_admit, request, needed, query_key)
    return _allowed(request, key, needed)


def _admit(request: Request, needed: Scope, query_key: str | None) -> ApiKey:
    header = request.headers.get("authorization")
    key = _authenticator(request).authenticate(header, query_key)
    return _allowed(request, key, needed)


def _authenticator(request: Request) -> Authenticator:
    authenticator = getattr(request.app.state, "authenticator", None)
    if not isinstance(authenticator, Authenticator):
        raise RuntimeError("app.state.authenticator is not set to an Authenticator")
    return authenticator


def _allowed(request: Request, key: ApiKey, needed: Scope) -> ApiKey:
    if not key.scope.allows(needed):
        raise ForbiddenError(f"this API key has scope {key.scope}; {needed} is needed")
    request.state.api_key = key  # for access logs: who did it (id and prefix, never the token)
    return key


def _token(authorization_header: str | None, query_key: str | None) -> str:
    if authorization_header:
        return _bearer_token(authorization_header)
    if query_key:
        return query_key.strip()
    raise AuthError(f"no API key: send Authorization: Bearer <api key>; {_CREATE_HINT}")


def _bearer_token(header: str) -> str:
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        # Name the scheme only when it looks like one: a bare token must not be echoed.
        named = f"the {scheme!r} scheme" if scheme.isalpha() and len(scheme) <= 20 else "no scheme"
        raise AuthError(
            f"Authorization uses {named}; send Authorization: Bearer <api key>; {_CREATE_HINT}"
        )
    token = token.strip()
    if not token:
        raise AuthError(f"Authorization: Bearer has no API key after it; {_CREATE_HINT}")
    return token
