"""API key authentication: 401 vs 403, the ``?key=`` feed variant, and the verification cache."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from calsync.api.auth import Authenticator, require, require_feed
from calsync.clock import FrozenClock
from calsync.errors import AuthError, CalsyncError, ForbiddenError
from calsync.model import ApiKey, Scope
from calsync.store import Store

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=ZoneInfo("Europe/Vienna"))
CREATE_HINT = "create one with `calsync apikey create --name NAME --scope read`"


class CountingVerifier:
    """The real repository, counting how often the database is asked."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.calls = 0
        self._lock = threading.Lock()

    def verify(self, token: str, now: datetime) -> ApiKey | None:
        with self._lock:
            self.calls += 1
        return self.store.api_keys.verify(token, now)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path}/calsync.db")
    store.upgrade()
    yield store
    store.close()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
def verifier(store: Store) -> CountingVerifier:
    return CountingVerifier(store)


@pytest.fixture
def authenticator(verifier: CountingVerifier, clock: FrozenClock) -> Authenticator:
    return Authenticator(verifier, clock)


def make_app(authenticator: Authenticator) -> FastAPI:
    app = FastAPI()
    app.state.authenticator = authenticator

    @app.exception_handler(CalsyncError)
    def _error(_request: Request, err: CalsyncError) -> JSONResponse:
        status = {AuthError: 401, ForbiddenError: 403}.get(type(err), 400)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        body = {"error": {"code": err.code, "message": err.message}}
        return JSONResponse(body, status_code=status, headers=headers)

    @app.get("/read")
    def read(key: Annotated[ApiKey, Depends(require(Scope.READ))]) -> dict[str, str]:
        return {"prefix": key.prefix, "scope": key.scope}

    @app.post("/write", dependencies=[Depends(require(Scope.WRITE))])
    def write() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/admin", dependencies=[Depends(require(Scope.ADMIN))])
    def admin() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/feed.ics")
    def feed(key: Annotated[ApiKey, Depends(require_feed())]) -> dict[str, str]:
        return {"prefix": key.prefix}

    return app


@pytest.fixture
def client(authenticator: Authenticator) -> Iterator[TestClient]:
    with TestClient(make_app(authenticator)) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_for(store: Store, scope: Scope, name: str = "agent") -> str:
    return store.api_keys.create(f"{name}-{scope}", scope, T0)[1]


def message(response: Any) -> str:
    return str(response.json()["error"]["message"])


# --- 401: who are you? ---------------------------------------------------------------------


def test_no_header_is_401_and_says_how_to_get_a_key(client: TestClient) -> None:
    response = client.get("/read")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"
    assert "send Authorization: Bearer <api key>" in message(response)
    assert CREATE_HINT in message(response)


def test_another_scheme_is_401_naming_bearer(client: TestClient, store: Store) -> None:
    response = client.get("/read", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert response.status_code == 401
    assert "'Basic' scheme" in message(response)
    assert "Bearer <api key>" in message(response)


def test_a_bare_token_without_scheme_is_401_and_not_echoed(
    client: TestClient, store: Store
) -> None:
    token = token_for(store, Scope.READ)
    response = client.get("/read", headers={"Authorization": token})
    assert response.status_code == 401
    assert "no scheme" in message(response)
    assert token[13:20] not in message(response)


def test_bearer_without_a_key_is_401(client: TestClient) -> None:
    response = client.get("/read", headers={"Authorization": "Bearer   "})
    assert response.status_code == 401
    assert "no API key" in message(response)


def test_a_malformed_key_is_401(client: TestClient) -> None:
    response = client.get("/read", headers=bearer("not-a-calsync-key"))
    assert response.status_code == 401
    assert "malformed API key" in message(response)


def test_an_unknown_key_is_401(client: TestClient, store: Store) -> None:
    token = token_for(store, Scope.ADMIN)
    wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    response = client.get("/read", headers=bearer(wrong))
    assert response.status_code == 401
    assert "unknown or revoked" in message(response)
    assert f"{token[:13]}..." in message(response)
    assert wrong[13:] not in message(response)


def test_a_revoked_key_is_401(client: TestClient, store: Store) -> None:
    token = token_for(store, Scope.READ)
    store.api_keys.revoke(token, T0)
    response = client.get("/read", headers=bearer(token))
    assert response.status_code == 401
    assert "unknown or revoked" in message(response)


def test_the_scheme_is_case_insensitive(client: TestClient, store: Store) -> None:
    token = token_for(store, Scope.READ)
    response = client.get("/read", headers={"Authorization": f"bearer {token}"})
    assert response.status_code == 200


# --- 403: may you? -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "allowed"),
    [
        (Scope.READ, {"/read"}),
        (Scope.WRITE, {"/read", "/write"}),
        (Scope.ADMIN, {"/read", "/write", "/admin"}),
    ],
)
def test_each_scope_includes_the_ones_before_it(
    client: TestClient, store: Store, scope: Scope, allowed: set[str]
) -> None:
    headers = bearer(token_for(store, scope))
    for path, needed in [("/read", "read"), ("/write", "write"), ("/admin", "admin")]:
        method = client.get if path == "/read" else client.post
        response = method(path, headers=headers)
        if path in allowed:
            assert response.status_code == 200, (path, response.text)
        else:
            assert response.status_code == 403, path
            assert response.json()["error"]["code"] == "forbidden"
            assert "www-authenticate" not in response.headers
            assert message(response) == f"this API key has scope {scope}; {needed} is needed"


def test_the_route_gets_the_key(client: TestClient, store: Store) -> None:
    key, token = store.api_keys.create("agent", Scope.WRITE, T0)
    response = client.get("/read", headers=bearer(token))
    assert response.json() == {"prefix": key.prefix, "scope": "write"}


# --- ?key= for the ICS feed only -----------------------------------------------------------


def test_the_feed_accepts_the_key_as_a_query_parameter(client: TestClient, store: Store) -> None:
    key, token = store.api_keys.create("calendar-app", Scope.READ, T0)
    response = client.get("/feed.ics", params={"key": token})
    assert response.status_code == 200
    assert response.json() == {"prefix": key.prefix}


def test_the_feed_also_accepts_the_header(client: TestClient, store: Store) -> None:
    response = client.get("/feed.ics", headers=bearer(token_for(store, Scope.ADMIN)))
    assert response.status_code == 200


def test_the_header_wins_over_the_query_parameter(client: TestClient, store: Store) -> None:
    token = token_for(store, Scope.READ)
    response = client.get("/feed.ics", params={"key": "garbage"}, headers=bearer(token))
    assert response.status_code == 200


def test_the_feed_without_any_key_is_401(client: TestClient) -> None:
    response = client.get("/feed.ics")
    assert response.status_code == 401
    assert CREATE_HINT in message(response)


def test_the_feed_with_a_revoked_query_key_is_401(client: TestClient, store: Store) -> None:
    token = token_for(store, Scope.READ)
    store.api_keys.revoke(token, T0)
    assert client.get("/feed.ics", params={"key": token}).status_code == 401


def test_other_endpoints_ignore_the_query_parameter(client: TestClient, store: Store) -> None:
    token = token_for(store, Scope.ADMIN)
    response = client.get("/read", params={"key": token})
    assert response.status_code == 401
    assert "send Authorization: Bearer" in message(response)


def test_openapi_documents_both_ways_to_authenticate(authenticator: Authenticator) -> None:
    schema = make_app(authenticator).openapi()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    assert schemes["APIKeyQuery"] == {
        "type": "apiKey",
        "in": "query",
        "name": "key",
        "description": schemes["APIKeyQuery"]["description"],
    }
    assert schema["paths"]["/read"]["get"]["security"] == [{"HTTPBearer": []}]
    feed_security = schema["paths"]["/feed.ics"]["get"]["security"]
    assert {"APIKeyQuery": []} in feed_security


def test_an_app_without_an_authenticator_fails_loudly(authenticator: Authenticator) -> None:
    app = make_app(authenticator)
    del app.state.authenticator
    with TestClient(app) as client, pytest.raises(RuntimeError, match=r"app\.state\.authenticator"):
        client.get("/read", headers=bearer("csk_abcdefgh_x"))


# --- the cache -----------------------------------------------------------------------------


def test_good_keys_are_cached_for_the_ttl(
    client: TestClient, store: Store, clock: FrozenClock, verifier: CountingVerifier
) -> None:
    headers = bearer(token_for(store, Scope.READ))
    for _ in range(10):
        assert client.get("/read", headers=headers).status_code == 200
    assert verifier.calls == 1
    clock.advance(timedelta(seconds=4.9))
    assert client.get("/read", headers=headers).status_code == 200
    assert verifier.calls == 1
    clock.advance(timedelta(seconds=0.1))
    assert client.get("/read", headers=headers).status_code == 200
    assert verifier.calls == 2


def test_bad_keys_are_not_cached(
    client: TestClient, store: Store, verifier: CountingVerifier
) -> None:
    token = token_for(store, Scope.READ)
    store.api_keys.revoke(token, T0)
    for _ in range(3):
        assert client.get("/read", headers=bearer(token)).status_code == 401
    assert verifier.calls == 3


def test_malformed_keys_never_reach_the_database(
    client: TestClient, verifier: CountingVerifier
) -> None:
    assert client.get("/read", headers=bearer("csk_short_x")).status_code == 401
    assert verifier.calls == 0


def test_a_revoked_key_stops_working_after_the_ttl(
    client: TestClient, store: Store, clock: FrozenClock
) -> None:
    token = token_for(store, Scope.READ)
    assert client.get("/read", headers=bearer(token)).status_code == 200
    store.api_keys.revoke(token, clock.now())  # e.g. `calsync apikey revoke` in another process
    clock.advance(timedelta(seconds=2))
    assert client.get("/read", headers=bearer(token)).status_code == 200  # still cached
    clock.advance(timedelta(seconds=3))
    assert client.get("/read", headers=bearer(token)).status_code == 401


def test_forget_makes_a_revocation_immediate(
    client: TestClient, store: Store, authenticator: Authenticator
) -> None:
    token = token_for(store, Scope.READ)
    assert client.get("/read", headers=bearer(token)).status_code == 200
    store.api_keys.revoke(token, T0)
    authenticator.forget()
    assert client.get("/read", headers=bearer(token)).status_code == 401


def test_the_ttl_is_configurable(
    store: Store, clock: FrozenClock, verifier: CountingVerifier
) -> None:
    authenticator = Authenticator(verifier, clock, ttl=timedelta(0))
    token = token_for(store, Scope.READ)
    for _ in range(3):
        authenticator.authenticate(f"Bearer {token}")
    assert verifier.calls == 3


def test_the_cache_is_per_token(
    store: Store, authenticator: Authenticator, verifier: CountingVerifier
) -> None:
    read, write = token_for(store, Scope.READ), token_for(store, Scope.WRITE)
    assert authenticator.authenticate(f"Bearer {read}").scope is Scope.READ
    assert authenticator.authenticate(f"Bearer {write}").scope is Scope.WRITE
    assert authenticator.authenticate(f"Bearer {read}").scope is Scope.READ
    assert verifier.calls == 2


def test_concurrent_requests_all_authenticate(
    store: Store, authenticator: Authenticator, verifier: CountingVerifier
) -> None:
    tokens = [token_for(store, Scope.READ, name=f"k{i}") for i in range(4)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = list(
            pool.map(lambda i: authenticator.authenticate(f"Bearer {tokens[i % 4]}"), range(200))
        )
    assert len({key.id for key in keys}) == 4
    assert 4 <= verifier.calls < 200


def test_authenticate_messages(authenticator: Authenticator) -> None:
    with pytest.raises(AuthError, match="send Authorization: Bearer <api key>"):
        authenticator.authenticate(None)
    with pytest.raises(AuthError, match="send Authorization: Bearer <api key>"):
        authenticator.authenticate("", "")
    with pytest.raises(AuthError, match="'Token' scheme"):
        authenticator.authenticate("Token abc")
