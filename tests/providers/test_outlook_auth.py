"""Outlook sign-in and token health: MSAL against FakeGraph's identity platform.

Every test starts its own fake, so MSAL's 60-second cache of HTTP 400 token
answers never sees the same request twice.
"""

from __future__ import annotations

import json
import re
import stat
import threading
import webbrowser
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from calsync.errors import InputError, ProviderAuthError, ProviderDataError
from calsync.providers.outlook import auth
from calsync.providers.outlook.provider import OutlookProvider
from tests.fakes.graph import FakeGraph

CLIENT_ID = "0b7a2c4e-5d6f-4a1b-9c8d-7e6f5a4b3c2d"
REAUTH = "run `calsync auth outlook --account office`"


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with FakeGraph() as fake:
        fake.device_code_interval = 0  # MSAL sleeps `interval` seconds between polls
        yield fake


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return auth.cache_path(tmp_path / "state", "office")


def user_code(message: str) -> str:
    found = re.search(r"enter the code (\w+)", message)
    assert found is not None, message
    return found.group(1)


def approving(graph: FakeGraph, **grant: Any) -> Callable[[str], None]:
    """The person at the browser: types the shown code at once and consents."""
    return lambda message: graph.approve_device_code(user_code(message), **grant)


def connect(graph: FakeGraph, path: Path, **options: Any) -> str:
    options.setdefault("announce", approving(graph))
    return auth.connect(
        path, account="office", client_id=CLIENT_ID, http_client=graph.http_client(), **options
    )


def source(graph: FakeGraph, path: Path) -> auth.TokenSource:
    return auth.TokenSource(
        path, account="office", client_id=CLIENT_ID, http_client=graph.http_client()
    )


def token_posts(graph: FakeGraph) -> list[str]:
    return [r.form()["grant_type"] for r in graph.requests if r.path.endswith("/v2.0/token")]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_device_login_is_completed_by_a_scripted_user(graph: FakeGraph, path: Path) -> None:
    graph.device_code_interval = 1
    shown: list[str] = []

    def user(message: str) -> None:  # reads the message, then approves after MSAL's first poll
        shown.append(message)
        code = user_code(message)

        def approve() -> None:
            graph.wait_for_device_code_poll(code, polls=1)
            graph.approve_device_code(code)

        threading.Thread(target=approve, daemon=True).start()

    assert connect(graph, path, announce=user) == "adele@contoso.example"
    assert "https://microsoft.com/devicelogin" in shown[0]
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert {"AccessToken", "RefreshToken", "IdToken", "Account"} <= set(
        json.loads(path.read_text())
    )
    device = next(r for r in graph.requests if r.path == "/common/oauth2/v2.0/devicecode")
    assert device.host == "login.microsoftonline.com"
    assert device.form()["scope"].split() == [
        "Calendars.ReadWrite", "User.Read", "offline_access", "openid", "profile",
    ]  # fmt: skip
    assert token_posts(graph).count("urn:ietf:params:oauth:grant-type:device_code") >= 2


def timed_session(graph: FakeGraph, timeouts: list[Any]) -> requests.Session:
    """The fake's loopback session, recording the timeout each request was sent with."""
    session = graph.http_client()
    send = session.request

    def request(method: str, url: str, **kwargs: Any) -> requests.Response:
        timeouts.append(kwargs.get("timeout"))
        return send(method, url, **kwargs)

    session.request = request  # type: ignore[method-assign]
    return session


def test_tokens_come_from_the_cache_which_is_rewritten_only_when_changed(
    graph: FakeGraph, path: Path
) -> None:
    connect(graph, path)
    written = path.stat().st_ino
    timeouts: list[Any] = []
    tokens = auth.TokenSource(
        path, account="office", client_id=CLIENT_ID, http_client=timed_session(graph, timeouts)
    )
    posts = len(token_posts(graph))
    first = tokens()
    assert tokens() == first
    assert len(token_posts(graph)) == posts  # served from the cache
    assert path.stat().st_ino == written  # nothing changed, nothing written

    fresh = tokens(force_refresh=True)
    assert fresh != first
    assert token_posts(graph)[-1] == "refresh_token"
    assert path.stat().st_ino != written
    assert mode(path) == 0o600
    assert timeouts == [auth.TIMEOUT] * 2  # OpenID configuration, refresh
    provider = OutlookProvider(
        tokens, account="office", session=graph.http_client(), default_timezone=ZoneInfo("UTC")
    )
    assert [c.id for c in provider.list_calendars()] == ["primary"]


def test_an_expiring_access_token_is_refreshed_silently(graph: FakeGraph, path: Path) -> None:
    graph.access_token_lifetime = 120  # MSAL treats under 5 minutes left as expired
    connect(graph, path)
    signed_in = json.loads(path.read_text())["AccessToken"]
    tokens = source(graph, path)
    token = tokens()
    assert token_posts(graph)[-1] == "refresh_token"
    assert token not in json.dumps(signed_in)
    assert token in path.read_text()  # the rotated tokens are kept


def test_a_revoked_grant_needs_reauth_and_says_how(graph: FakeGraph, path: Path) -> None:
    graph.access_token_lifetime = 120
    connect(graph, path)
    graph.revoke_refresh_tokens(70008)
    tokens = source(graph, path)
    with pytest.raises(ProviderAuthError, match=re.escape(REAUTH)) as err:
        tokens()
    assert "invalid_grant" in err.value.message
    assert "AADSTS70008" in err.value.message
    assert "Trace ID" not in err.value.message
    provider = OutlookProvider(
        tokens, account="office", session=graph.http_client(), default_timezone=ZoneInfo("UTC")
    )
    with pytest.raises(ProviderAuthError, match=re.escape(REAUTH)):
        provider.list_calendars()
    assert not [r for r in graph.requests if r.path.startswith("/v1.0/")]

    connect(graph, path)  # the admin runs `calsync auth outlook` again
    assert tokens()  # picked up without a restart


def test_no_stored_sign_in_needs_auth(graph: FakeGraph, path: Path) -> None:
    with pytest.raises(ProviderAuthError, match=f"not connected yet; {re.escape(REAUTH)}"):
        source(graph, path)()
    assert graph.requests == []
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(ProviderAuthError, match=re.escape(REAUTH)):
        source(graph, path)()


@pytest.mark.parametrize(
    ("answer", "expected"),
    [("decline_device_code", "declined"), ("expire_device_code", "code expired")],
)
def test_a_declined_or_expired_code_is_a_clear_error(
    graph: FakeGraph, path: Path, answer: str, expected: str
) -> None:
    def user(message: str) -> None:
        getattr(graph, answer)(user_code(message))

    with pytest.raises(InputError, match=expected):
        connect(graph, path, announce=user)
    assert not path.exists()


def test_scopes_not_granted_are_named(graph: FakeGraph, path: Path) -> None:
    with pytest.raises(InputError, match=r"did not grant Calendars\.ReadWrite"):
        connect(graph, path, announce=approving(graph, granted_scopes=["User.Read"]))


def test_an_authority_msal_does_not_know_skips_instance_discovery(
    graph: FakeGraph, path: Path
) -> None:
    user = connect(graph, path, tenant="organizations", authority="login.example.test")
    assert user == "adele@contoso.example"
    hosts = {r.host for r in graph.requests}
    assert hosts == {"login.example.test"}
    assert not [r for r in graph.requests if "discovery/instance" in r.path]
    tokens = auth.TokenSource(
        path, account="office", client_id=CLIENT_ID, http_client=graph.http_client(),
        tenant="organizations", authority="https://login.example.test",
    )  # fmt: skip
    assert tokens(force_refresh=True)


def test_an_unknown_tenant_names_the_config_keys(graph: FakeGraph, path: Path) -> None:
    with pytest.raises(ProviderDataError, match=r"accounts\.office\.tenant"):
        connect(graph, path, tenant="no-such-tenant")


@pytest.mark.parametrize(
    ("tenant", "authority", "expected"),
    [
        ("common", None, "https://login.microsoftonline.com/common"),
        ("contoso.example", "login.microsoftonline.us", "https://login.microsoftonline.us/contoso.example"),
        ("consumers", "https://login.example.test/", "https://login.example.test/consumers"),
        ("common", "https://login.example.test/tenant-x", "https://login.example.test/tenant-x"),
    ],
)  # fmt: skip
def test_authority_urls(tenant: str, authority: str | None, expected: str) -> None:
    assert auth.authority_url(tenant, authority) == expected


def test_browser_login_uses_the_loopback_redirect(
    graph: FakeGraph, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []

    def browser(url: str, *args: Any, **kwargs: Any) -> bool:  # the user's browser
        opened.append(url)
        threading.Thread(target=lambda: graph.consent(url).deliver(), daemon=True).start()
        return True

    monkeypatch.setenv("BROWSER", "test-browser")  # MSAL would prefer an installed Edge
    monkeypatch.setattr(webbrowser, "open", browser)
    assert connect(graph, path, browser=True, timeout=10) == "adele@contoso.example"
    assert "redirect_uri=http%3A%2F%2Flocalhost%3A" in opened[0]
    assert token_posts(graph) == ["authorization_code"]
    assert mode(path) == 0o600
