"""FakeGraph driven only by the real clients: MSAL for sign-in, requests for Graph.

Each test starts its own fake (and, for webhooks, a tiny receiver server), so
MSAL's 60-second cache of HTTP 400 token responses never sees the same input
twice.
"""

from __future__ import annotations

import threading
import time
import webbrowser
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msal
import pytest
import requests

from tests.fakes.graph import FakeGraph, Recurrence

CLIENT_ID = "0b7a2c4e-5d6f-4a1b-9c8d-7e6f5a4b3c2d"
SCOPES = ["Calendars.ReadWrite", "User.Read"]
WINDOW = {"startDateTime": "2026-03-01T00:00:00Z", "endDateTime": "2026-04-01T00:00:00Z"}
MON = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday; 10:00 in Berlin (CET)


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with FakeGraph() as fake:
        fake.device_code_interval = 0  # MSAL sleeps `interval` seconds between polls
        yield fake


def make_app(graph: FakeGraph, **kwargs: Any) -> msal.PublicClientApplication:
    kwargs.setdefault("authority", graph.authority())
    return msal.PublicClientApplication(CLIENT_ID, http_client=graph.http_client(), **kwargs)


def sign_in(
    graph: FakeGraph, scopes: list[str] = SCOPES, **kwargs: Any
) -> tuple[msal.PublicClientApplication, dict[str, Any]]:
    """Device flow with the user approving before MSAL's first poll."""
    app = make_app(graph, **kwargs)
    flow = app.initiate_device_flow(scopes=scopes)
    graph.approve_device_code(flow["user_code"])
    result = app.acquire_token_by_device_flow(flow)
    assert "access_token" in result, result
    return app, result


class Api:
    """requests against the fake's Graph with one bearer token."""

    def __init__(self, graph: FakeGraph, token: str) -> None:
        self.base = graph.graph_url
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.headers["Authorization"] = f"Bearer {token}"

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base + path

    def call(
        self, method: str, path: str, *, immutable: bool = True, **kwargs: Any
    ) -> requests.Response:
        """Sends ``Prefer: IdType="ImmutableId"`` (as the reference advises) unless told not to."""
        headers = dict(kwargs.pop("headers", None) or {})
        prefer = [headers.pop("Prefer")] if "Prefer" in headers else []
        if immutable:
            prefer.append('IdType="ImmutableId"')
        if prefer:
            headers["Prefer"] = ", ".join(prefer)
        return self.session.request(method, self.url(path), headers=headers, timeout=15, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("POST", path, **kwargs)

    def sync(
        self, first: str, prefer: str | None = None, params: dict | None = None
    ) -> tuple[list[dict], str, list[dict]]:
        """Follow nextLinks to the deltaLink: (items, deltaLink, raw pages)."""
        headers = {"Prefer": prefer} if prefer else {}
        pages, url, query = [], first, params
        while True:
            response = self.get(url, headers=headers, params=query)
            assert response.status_code == 200, response.text
            pages.append(response.json())
            if "@odata.deltaLink" in pages[-1]:
                items = [item for page in pages for item in page["value"]]
                return items, pages[-1]["@odata.deltaLink"], pages
            url, query = pages[-1]["@odata.nextLink"], None


@pytest.fixture
def api(graph: FakeGraph) -> Iterator[Api]:
    _, result = sign_in(graph)
    client = Api(graph, result["access_token"])
    yield client
    client.session.close()


def event_body(subject: str, start: str, end: str, zone: str = "UTC", **extra: Any) -> dict:
    return {
        "subject": subject,
        "start": {"dateTime": start, "timeZone": zone},
        "end": {"dateTime": end, "timeZone": zone},
        **extra,
    }


def error_code(response: requests.Response) -> str:
    return str(response.json()["error"]["code"])


class Receiver:
    """A webhook endpoint: echoes validation tokens (or not) and records every POST."""

    def __init__(self, echo: bool = True, delay: float = 0.0) -> None:
        self.echo = echo
        self.delay = delay
        self.posts: list[tuple[str, dict[str, list[str]], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                split = urlsplit(self.path)
                query = parse_qs(split.query)
                receiver.posts.append((split.path, query, body))
                token = query.get("validationToken", [None])[0]
                time.sleep(receiver.delay)
                if token is not None:
                    reply = (token if receiver.echo else "nope").encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain; charset=utf-8")
                else:
                    reply = b""
                    self.send_response(202)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.close()


# --- identity: MSAL against the fake AAD -----------------------------------------------------


def test_device_flow_completes_after_scripted_approval(graph: FakeGraph) -> None:
    graph.device_code_interval = 1
    app = make_app(graph)
    flow = app.initiate_device_flow(scopes=SCOPES)
    assert flow["interval"] == 1
    assert flow["user_code"] in flow["message"]
    outcome: dict[str, Any] = {}
    worker = threading.Thread(
        target=lambda: outcome.update(app.acquire_token_by_device_flow(flow)), daemon=True
    )
    worker.start()
    graph.wait_for_device_code_poll(flow["user_code"], polls=1)  # answered authorization_pending
    graph.approve_device_code(flow["user_code"])
    worker.join(timeout=10)

    assert outcome["token_type"] == "Bearer"
    assert outcome["token_source"] == "identity_provider"
    assert outcome["id_token_claims"]["preferred_username"] == "adele@contoso.example"
    assert outcome["id_token_claims"]["tid"] == graph.user.tenant_id
    assert set(outcome["scope"].split()) == {*SCOPES, "offline_access", "openid", "profile"}
    assert app.get_accounts()[0]["home_account_id"] == f"{graph.user.oid}.{graph.user.tenant_id}"
    device, *polls = [r for r in graph.requests if r.path.startswith("/common/oauth2")]
    assert device.host == "login.microsoftonline.com"
    assert set(device.form()["scope"].split()) == {*SCOPES, "offline_access", "openid", "profile"}
    assert len(polls) >= 2
    assert polls[-1].form()["client_info"] == "1"


def test_device_flow_slow_down_declined_and_expired(graph: FakeGraph) -> None:
    app = make_app(graph)
    flows = [app.initiate_device_flow(scopes=["Calendars.Read"]) for _ in range(3)]
    graph.slow_down_device_code(flows[0]["user_code"])
    graph.decline_device_code(flows[1]["user_code"])
    graph.expire_device_code(flows[2]["user_code"])
    once = {"exit_condition": lambda flow: True}  # poll once, do not sleep

    slowed = app.acquire_token_by_device_flow(flows[0], **once)
    assert slowed["error"] == "slow_down"
    assert flows[0]["interval"] == 5
    assert app.acquire_token_by_device_flow(flows[1], **once)["error"] == "authorization_declined"
    expired = app.acquire_token_by_device_flow(flows[2], **once)
    assert expired["error"] == "expired_token"
    assert expired["error_codes"] == [70019]


def test_silent_acquisition_uses_the_cache_then_refreshes(graph: FakeGraph) -> None:
    app, first = sign_in(graph)
    account = app.get_accounts()[0]
    cached = app.acquire_token_silent(SCOPES, account=account)
    assert cached["token_source"] == "cache"
    assert cached["access_token"] == first["access_token"]

    graph.expire_access_tokens()
    with Api(graph, first["access_token"]).session as session:
        session.headers["Authorization"] = f"Bearer {first['access_token']}"
        denied = session.get(f"{graph.graph_url}/me", timeout=5)
    assert denied.status_code == 401
    assert error_code(denied) == "InvalidAuthenticationToken"
    assert denied.headers["WWW-Authenticate"].startswith("Bearer")

    fresh = app.acquire_token_silent(SCOPES, account=account, force_refresh=True)
    assert fresh["token_source"] == "identity_provider"
    assert fresh["access_token"] != first["access_token"]
    assert fresh["refresh_token"] != first["refresh_token"]  # rotated
    assert [r.form()["grant_type"] for r in graph.requests if r.path.endswith("/token")][-1] == (
        "refresh_token"
    )


def test_short_lived_access_tokens_are_refreshed_by_msal_itself(graph: FakeGraph) -> None:
    graph.access_token_lifetime = 120  # MSAL treats < 5 minutes left as expired
    app, first = sign_in(graph)
    again = app.acquire_token_silent(SCOPES, account=app.get_accounts()[0])
    assert again["token_source"] == "identity_provider"
    assert again["access_token"] != first["access_token"]


def test_revoked_refresh_token_surfaces_invalid_grant(graph: FakeGraph) -> None:
    graph.access_token_lifetime = 120
    app, _ = sign_in(graph)
    graph.revoke_refresh_tokens(70008)
    account = app.get_accounts()[0]
    failure = app.acquire_token_silent_with_error(SCOPES, account=account)
    assert failure is not None
    assert failure["error"] == "invalid_grant"
    assert failure["error_codes"] == [70008]
    assert failure["error_description"].startswith("AADSTS70008:")
    assert app.acquire_token_silent(["Calendars.Read"], account=account) is None


def test_scope_beyond_consent_needs_interaction(graph: FakeGraph) -> None:
    app, _ = sign_in(graph, ["Calendars.Read"])
    failure = app.acquire_token_silent_with_error(
        ["Calendars.ReadWrite"], account=app.get_accounts()[0]
    )
    assert failure is not None
    assert failure["error"] == "invalid_grant"
    assert failure["error_codes"] == [65001]


def test_custom_authority_host_needs_instance_discovery_off(graph: FakeGraph) -> None:
    authority = graph.authority("organizations", host="login.example.test")
    with pytest.raises(ValueError, match="invalid_instance"):
        make_app(graph, authority=authority)
    _, result = sign_in(graph, authority=authority, instance_discovery=False)
    assert result["id_token_claims"]["iss"].startswith("https://login.example.test/")
    assert {r.host for r in graph.requests if r.path.startswith("/organizations/")} == {
        "login.example.test"
    }


def test_interactive_flow_with_pkce_and_form_post(
    graph: FakeGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    def browser(url: str, *args: Any, **kwargs: Any) -> bool:  # the user's browser
        seen.append(url)
        threading.Thread(target=lambda: graph.consent(url).deliver()).start()
        return True

    monkeypatch.setenv("BROWSER", "test-browser")  # MSAL would prefer an installed Edge
    monkeypatch.setattr(webbrowser, "open", browser)
    app = make_app(graph)
    result = app.acquire_token_interactive(["Calendars.Read"], timeout=10)
    assert result["id_token_claims"]["oid"] == graph.user.oid
    query = parse_qs(urlsplit(seen[0]).query)
    assert query["response_mode"] == ["form_post"]
    assert query["code_challenge_method"] == ["S256"]
    assert result["id_token_claims"]["nonce"] == query["nonce"][0]
    redeem = [r.form() for r in graph.requests if r.path.endswith("/token")][-1]
    assert redeem["grant_type"] == "authorization_code"
    assert redeem["code_verifier"]


def test_pkce_verifier_is_checked_and_errors_look_like_aad(graph: FakeGraph) -> None:
    flow = make_app(graph).initiate_auth_code_flow(
        ["Calendars.Read"], redirect_uri="http://localhost", response_mode="form_post"
    )
    code = graph.consent(flow["auth_uri"]).params["code"]
    token_url = "https://login.microsoftonline.com/common/oauth2/v2.0/token"
    form = {
        "client_id": CLIENT_ID,
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": "http://localhost",
        "code_verifier": "not-the-verifier",
    }
    response = graph.http_client().post(
        token_url, data=form, headers={"client-request-id": "corr-1"}, timeout=5
    )
    body = response.json()
    assert response.status_code == 400
    assert body["error"] == "invalid_grant"
    assert body["error_codes"] == [501481]
    assert body["error_description"].startswith("AADSTS501481")
    assert body["correlation_id"] == "corr-1"
    assert body["trace_id"]
    assert body["timestamp"]


# --- Graph basics ------------------------------------------------------------------------


def test_graph_requires_a_bearer_token(graph: FakeGraph) -> None:
    with requests.Session() as session:
        session.trust_env = False
        bare = session.get(f"{graph.graph_url}/me/calendars", timeout=5)
        forged = session.get(
            f"{graph.graph_url}/me/calendars", headers={"Authorization": "Bearer x.y.z"}, timeout=5
        )
    assert bare.status_code == forged.status_code == 401
    error = bare.json()["error"]
    assert error["code"] == "InvalidAuthenticationToken"
    assert set(error["innerError"]) >= {"request-id", "date"}


def test_me_and_calendars_respect_permissions(graph: FakeGraph, api: Api) -> None:
    graph.add_calendar("Team (read only)", can_edit=False)
    assert api.get("/me").json()["userPrincipalName"] == "adele@contoso.example"
    calendars = api.get("/me/calendars").json()["value"]
    assert [(c["name"], c["canEdit"], c["isDefaultCalendar"]) for c in calendars] == [
        ("Calendar", True, True),
        ("Team (read only)", False, False),
    ]
    assert calendars[0]["owner"] == {"name": "Adele Vance", "address": "adele@contoso.example"}
    read_only = Api(graph, graph.mint_access_token(["Calendars.Read"]))
    assert read_only.get("/me").status_code == 403
    denied = read_only.post(
        "/me/events", json=event_body("x", "2026-03-02T09:00:00", "2026-03-02T10:00:00")
    )
    assert denied.status_code == 403
    assert error_code(denied) == "ErrorAccessDenied"
    read_only.session.close()


# --- calendarView delta --------------------------------------------------------------------


def test_delta_pages_until_a_delta_link(graph: FakeGraph, api: Api) -> None:
    for day in range(5):
        graph.add_event(f"e{day}", MON + timedelta(days=day), MON + timedelta(days=day, hours=1))
    graph.add_event("outside", MON + timedelta(days=60), MON + timedelta(days=60, hours=1))
    items, delta_link, pages = api.sync(
        "/me/calendarView/delta", prefer="odata.maxpagesize=2", params=WINDOW
    )
    assert [len(p["value"]) for p in pages] == [2, 2, 1]
    assert [i["subject"] for i in items] == ["e0", "e1", "e2", "e3", "e4"]
    next_links = [urlsplit(p["@odata.nextLink"]) for p in pages[:-1]]
    assert all(list(parse_qs(link.query)) == ["$skiptoken"] for link in next_links)
    assert list(parse_qs(urlsplit(delta_link).query)) == ["$deltatoken"]
    again = api.get(delta_link, headers={"Prefer": "odata.maxpagesize=2"})
    assert again.headers["Preference-Applied"] == "odata.maxpagesize=2"
    assert again.json()["value"] == []
    assert "@odata.deltaLink" in again.json()


def test_delta_per_calendar(graph: FakeGraph, api: Api) -> None:
    team = graph.add_calendar("Team")
    graph.add_event("default", MON, MON + timedelta(hours=1))
    graph.add_event("team", MON, MON + timedelta(hours=1), calendar_id=team)
    team_items, _, _ = api.sync(f"/me/calendars/{team}/calendarView/delta", params=WINDOW)
    default_items, _, _ = api.sync("/me/calendar/calendarView/delta", params=WINDOW)
    assert [i["subject"] for i in team_items] == ["team"]
    assert [i["subject"] for i in default_items] == ["default"]
    missing = api.get("/me/calendars/AAMkAnope=/calendarView/delta", params=WINDOW)
    assert missing.status_code == 404
    assert error_code(missing) == "ErrorItemNotFound"


def test_delta_serves_occurrences_and_incremental_changes(graph: FakeGraph, api: Api) -> None:
    weekly = graph.add_event(
        "standup",
        MON,
        MON + timedelta(minutes=15),
        time_zone="W. Europe Standard Time",
        recurrence=Recurrence("weekly", days_of_week=("monday",)),
    )
    graph.cancel_occurrence(weekly, MON + timedelta(weeks=1))
    third = MON + timedelta(weeks=2)
    graph.update_occurrence(
        weekly, third, start=third + timedelta(hours=3), end=third + timedelta(hours=3, minutes=15)
    )
    daily = graph.add_event(
        "focus", MON, MON + timedelta(hours=1), recurrence=Recurrence("daily", count=3)
    )
    lunch = graph.add_event("lunch", MON + timedelta(hours=3), MON + timedelta(hours=4))
    leaving = graph.add_event("leaving", MON + timedelta(hours=5), MON + timedelta(hours=6))

    items, link, _ = api.sync("/me/calendarView/delta", params=WINDOW)
    kinds = sorted((i["subject"], i["type"]) for i in items)
    assert ("standup", "exception") in kinds
    assert ("standup", "seriesMaster") not in kinds
    assert sum(1 for i in items if i["subject"] == "standup") == 4  # 5 Mondays, one cancelled
    assert sum(1 for i in items if i["subject"] == "focus") == 3
    assert all(i["seriesMasterId"] == weekly for i in items if i["subject"] == "standup")
    fourth_monday = graph.occurrence_id(weekly, MON + timedelta(weeks=3))
    by_id = {i["id"]: i for i in items}

    new = graph.add_event("new", MON + timedelta(days=1), MON + timedelta(days=1, hours=1))
    graph.update_event(lunch, start=MON + timedelta(hours=4), end=MON + timedelta(hours=5))
    graph.cancel_occurrence(weekly, MON + timedelta(weeks=3))
    graph.delete_event(daily)
    graph.update_event(
        leaving, start=MON + timedelta(days=90), end=MON + timedelta(days=90, hours=1)
    )
    far = graph.add_event("far away", MON + timedelta(days=200), MON + timedelta(days=200, hours=1))

    changes, _, _ = api.sync(link)
    upserts = {i["id"]: i for i in changes if "@removed" not in i}
    removed = {i["id"] for i in changes if "@removed" in i}
    assert set(upserts) == {new, lunch}
    assert upserts[lunch]["start"]["dateTime"] == "2026-03-02T13:00:00.0000000"
    focus_ids = {i for i, e in by_id.items() if e["subject"] == "focus"}
    assert removed == {fourth_monday, leaving, far} | focus_ids  # far: changed outside the window
    assert all(i["@removed"] == {"reason": "deleted"} for i in changes if "@removed" in i)


def test_partial_updates_and_duplicate_items(graph: FakeGraph, api: Api) -> None:
    first = graph.add_event("one", MON, MON + timedelta(hours=1))
    graph.add_event("two", MON + timedelta(days=1), MON + timedelta(days=1, hours=1))
    graph.duplicate_items = True
    items, link, _ = api.sync("/me/calendarView/delta", params=WINDOW)
    assert [i["subject"] for i in items] == ["one", "two", "one"]  # a replay: merge idempotently

    graph.duplicate_items, graph.partial_updates = False, True
    graph.update_event(first, subject="one, renamed")
    (update,), _, _ = api.sync(link)
    assert update["id"] == first
    assert update["subject"] == "one, renamed"
    assert "start" not in update
    assert "changeKey" in update


def test_expired_delta_tokens_answer_410(graph: FakeGraph, api: Api) -> None:
    graph.add_event("one", MON, MON + timedelta(hours=1))
    _, link, _ = api.sync("/me/calendarView/delta", params=WINDOW)
    graph.expire_delta_tokens()
    gone = api.get(link)
    assert gone.status_code == 410
    assert error_code(gone) == "SyncStateNotFound"
    assert "generation=" in gone.json()["error"]["message"]

    _, link, _ = api.sync("/me/calendarView/delta", params=WINDOW)
    graph.expire_delta_tokens("resyncRequired")
    resync = api.get(link)
    assert resync.status_code == 410
    assert error_code(resync) == "resyncRequired"
    items, _, _ = api.sync(resync.headers["Location"])  # a fresh full round
    assert [i["subject"] for i in items] == ["one"]


def test_delta_query_rules(graph: FakeGraph, api: Api) -> None:
    select = api.get("/me/calendarView/delta", params={**WINDOW, "$select": "subject"})
    assert select.status_code == 400
    assert "$select" in select.json()["error"]["message"]
    assert api.get("/me/calendarView/delta").status_code == 400  # no window
    plus = api.get(
        f"/me/calendarView/delta?startDateTime=2026-03-01T00:00:00+01:00&endDateTime={WINDOW['endDateTime']}"
    )
    assert plus.status_code == 400  # an unescaped '+' arrives as a space
    offset = api.get(
        "/me/calendarView/delta", params={**WINDOW, "startDateTime": "2026-03-01T00:00:00+01:00"}
    )
    assert offset.status_code == 200
    _, link, _ = api.sync("/me/calendarView/delta", params=WINDOW)
    assert api.get(link, params={"startDateTime": WINDOW["startDateTime"]}).status_code == 400


def test_outlook_timezone_preference(graph: FakeGraph, api: Api) -> None:
    series = graph.add_event(
        "standup",
        MON,
        MON + timedelta(minutes=15),
        time_zone="W. Europe Standard Time",
        recurrence=Recurrence("weekly", count=6),
    )
    graph.add_event("holiday", date(2026, 3, 6), date(2026, 3, 7))
    utc, _, _ = api.sync("/me/calendarView/delta", params=WINDOW)
    berlin, _, _ = api.sync(
        "/me/calendarView/delta", prefer='outlook.timezone="W. Europe Standard Time"', params=WINDOW
    )
    new_york, _, _ = api.sync(
        "/me/calendarView/delta", prefer='outlook.timezone="America/New_York"', params=WINDOW
    )
    standups = [i["start"] for i in utc if i["seriesMasterId"] == series]
    assert standups[0] == {"dateTime": "2026-03-02T09:00:00.0000000", "timeZone": "UTC"}
    assert standups[-1]["dateTime"] == "2026-03-30T08:00:00.0000000"  # CEST: wall time kept
    local = [i["start"]["dateTime"][11:16] for i in berlin if i["seriesMasterId"] == series]
    assert set(local) == {"10:00"}
    assert {i["start"]["timeZone"] for i in berlin} == {"W. Europe Standard Time"}
    assert new_york[0]["start"]["dateTime"] == "2026-03-02T04:00:00.0000000"
    holiday = next(i for i in berlin if i["isAllDay"])
    assert holiday["start"]["dateTime"] == "2026-03-06T00:00:00.0000000"  # all-day floats
    bad = api.get(
        "/me/calendarView/delta", params=WINDOW, headers={"Prefer": 'outlook.timezone="Mars"'}
    )
    assert bad.status_code == 400
    assert error_code(bad) == "TimeZoneNotSupportedException"


def test_ids_change_across_calendars_unless_immutable(graph: FakeGraph, api: Api) -> None:
    other = graph.add_calendar("Other")
    event = graph.add_event("moving", MON, MON + timedelta(hours=1))
    rest_id = api.get(f"/me/events/{event}", immutable=False).json()["id"]
    assert rest_id != event
    assert api.get(f"/me/events/{rest_id}").json()["id"] == event
    graph.move_event(event, other)
    assert api.get(f"/me/events/{event}").json()["id"] == event
    assert api.get(f"/me/events/{event}", immutable=False).json()["id"] != rest_id
    assert error_code(api.get(f"/me/events/{rest_id}")) == "ErrorItemNotFound"


# --- writes --------------------------------------------------------------------------------


def test_create_with_the_same_transaction_id_twice_makes_one_event(
    graph: FakeGraph, api: Api
) -> None:
    body = event_body(
        "Booking",
        "2026-03-03T10:00:00",
        "2026-03-03T10:30:00",
        "W. Europe Standard Time",
        transactionId="calsync-booking-42",
        attendees=[{"emailAddress": {"address": "guest@example.org"}, "type": "required"}],
    )
    first = api.post("/me/calendar/events", json=body)
    second = api.post("/me/calendar/events", json={**body, "subject": "Retried"})
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert second.json()["subject"] == "Booking"
    assert second.json()["transactionId"] == "calsync-booking-42"
    assert first.json()["start"] == {"dateTime": "2026-03-03T09:00:00.0000000", "timeZone": "UTC"}
    assert len(graph.events()) == 1
    stored = graph.event(first.json()["id"])
    assert stored is not None
    assert stored["attendees"][0]["emailAddress"]["address"] == "guest@example.org"
    assert stored["originalStartTimeZone"] == "W. Europe Standard Time"


def test_patch_and_delete_events(graph: FakeGraph, api: Api) -> None:
    calendar = graph.default_calendar_id()
    created = api.post(
        f"/me/calendars/{calendar}/events",
        json=event_body("a", "2026-03-03T10:00:00", "2026-03-03T11:00:00"),
    )
    event_id = created.json()["id"]
    patched = api.call(
        "PATCH", f"/me/events/{event_id}", json={"subject": "b", "showAs": "tentative"}
    )
    assert patched.status_code == 200
    assert patched.json()["subject"] == "b"
    assert graph.event(event_id)["showAs"] == "tentative"  # type: ignore[index]
    bad = api.call("PATCH", f"/me/events/{event_id}", json={"colour": "red"})
    assert bad.status_code == 400
    assert error_code(bad) == "RequestBodyRead"
    offset = api.call(
        "PATCH",
        f"/me/events/{event_id}",
        json=event_body("c", "2026-03-03T10:00:00+02:00", "2026-03-03T11:00:00", "UTC"),
    )
    assert offset.status_code == 400
    assert api.call("DELETE", f"/me/calendars/{calendar}/events/{event_id}").status_code == 204
    again = api.call("DELETE", f"/me/events/{event_id}")
    assert again.status_code == 404
    assert error_code(again) == "ErrorItemNotFound"

    series = graph.add_event(
        "s", MON, MON + timedelta(hours=1), recurrence=Recurrence("daily", count=3)
    )
    second = graph.occurrence_id(series, MON + timedelta(days=1))
    moved = api.call(
        "PATCH",
        f"/me/events/{second}",
        json=event_body("moved", "2026-03-03T15:00:00", "2026-03-03T16:00:00"),
    )
    assert moved.json()["type"] == "exception"
    assert moved.json()["seriesMasterId"] == series
    assert api.call("DELETE", f"/me/events/{second}").status_code == 204
    view = graph.calendar_view(MON, MON + timedelta(days=7))
    assert [v["type"] for v in view] == ["occurrence", "occurrence"]

    read_only = graph.add_calendar("Shared", can_edit=False)
    denied = api.post(
        f"/me/calendars/{read_only}/events",
        json=event_body("x", "2026-03-03T10:00:00", "2026-03-03T11:00:00"),
    )
    assert denied.status_code == 403


# --- getSchedule ---------------------------------------------------------------------------


def test_get_schedule(graph: FakeGraph, api: Api) -> None:
    colleague = graph.add_user("ben@contoso.example", "Ben Walters")
    graph.add_event("busy", MON, MON + timedelta(minutes=30))
    graph.add_event(
        "maybe", MON + timedelta(minutes=30), MON + timedelta(hours=1), showAs="tentative"
    )
    graph.add_event(
        "away", MON + timedelta(hours=1), MON + timedelta(hours=2), user=colleague, showAs="oof"
    )
    body = {
        "schedules": ["adele@contoso.example", "ben@contoso.example", "nobody@contoso.example"],
        "startTime": {"dateTime": "2026-03-02T09:00:00", "timeZone": "UTC"},
        "endTime": {"dateTime": "2026-03-02T11:00:00", "timeZone": "UTC"},
        "availabilityViewInterval": 30,
    }
    mine, bens, nobody = api.post("/me/calendar/getSchedule", json=body).json()["value"]
    assert mine["availabilityView"] == "2100"
    assert bens["availabilityView"] == "0033"
    assert [i["status"] for i in mine["scheduleItems"]] == ["busy", "tentative"]
    assert mine["scheduleItems"][0]["subject"] == "busy"
    assert "subject" not in bens["scheduleItems"][0]
    assert nobody["error"]["responseCode"] == "5009"

    too_many = api.post(
        "/me/calendar/getSchedule", json={**body, "schedules": [f"u{i}@x.test" for i in range(21)]}
    )
    assert too_many.status_code == 400
    assert error_code(too_many) == "ErrorMailboxDataArrayTooBig"
    long = {**body, "endTime": {"dateTime": "2026-05-03T09:00:00", "timeZone": "UTC"}}
    too_long = api.post("/me/calendar/getSchedule", json=long)
    assert too_long.status_code == 400
    assert error_code(too_long) == "ErrorTimeIntervalTooBig"
    graph.personal_account = True
    personal = api.post("/me/calendar/getSchedule", json=body)
    assert personal.status_code == 500
    assert error_code(personal) == "ErrorInternalServerError"


# --- subscriptions -------------------------------------------------------------------------


def subscription(url: str, minutes: int = 60, **extra: Any) -> dict[str, Any]:
    expires = datetime.now(UTC) + timedelta(minutes=minutes)
    return {
        "changeType": "created,updated,deleted",
        "notificationUrl": url,
        "resource": "/me/events",
        "expirationDateTime": expires.isoformat().replace("+00:00", "Z"),
        "clientState": "s3cret",
        **extra,
    }


def test_subscription_handshake_and_notifications(
    graph: FakeGraph, api: Api, receiver: Receiver
) -> None:
    created = api.post(
        "/subscriptions",
        json=subscription(receiver.url()),
        headers={"Prefer": 'IdType="ImmutableId"'},
    )
    assert created.status_code == 201, created.text
    sub = created.json()
    (validation,) = graph.deliveries
    assert validation.kind == "validation"
    assert validation.status == 200
    assert receiver.posts[0][1]["validationToken"] == [validation.payload]

    event = graph.add_event("new", MON, MON + timedelta(hours=1))
    delivered = graph.wait_for_deliveries(2)[-1]
    assert delivered.status == 202
    assert delivered.latency < 3
    (note,) = delivered.payload["value"]
    assert note["subscriptionId"] == sub["id"]
    assert note["clientState"] == "s3cret"
    assert note["changeType"] == "created"
    assert note["resourceData"]["id"] == event
    assert note["tenantId"] == graph.user.tenant_id

    renewed = api.call(
        "PATCH", f"/subscriptions/{sub['id']}", json=subscription(receiver.url(), 600) | {}
    )
    assert renewed.status_code == 400  # only expirationDateTime may change
    expiry = subscription(receiver.url(), 600)["expirationDateTime"]
    renewed = api.call("PATCH", f"/subscriptions/{sub['id']}", json={"expirationDateTime": expiry})
    assert renewed.status_code == 200
    assert api.call("DELETE", f"/subscriptions/{sub['id']}").status_code == 204
    assert api.call("DELETE", f"/subscriptions/{sub['id']}").status_code == 404


def test_subscription_needs_an_echo_and_a_short_lifetime(graph: FakeGraph, api: Api) -> None:
    mute = Receiver(echo=False)
    try:
        refused = api.post("/subscriptions", json=subscription(mute.url()))
    finally:
        mute.close()
    assert refused.status_code == 400
    assert error_code(refused) == "ValidationError"
    assert graph.subscriptions() == []
    too_long = api.post(
        "/subscriptions", json=subscription("https://hooks.example/x", minutes=10081)
    )
    assert too_long.status_code == 400
    assert "10080" in too_long.json()["error"]["message"]


def test_subscription_handshake_has_a_deadline(graph: FakeGraph, api: Api) -> None:
    graph.validation_timeout = 0.3  # Graph allows 10 s; shortened to keep the test fast
    slow = Receiver(delay=1.0)
    try:
        late = api.post("/subscriptions", json=subscription(slow.url()))
    finally:
        slow.close()
    assert late.status_code == 400
    assert error_code(late) == "ValidationError"
    (attempt,) = graph.deliveries
    assert attempt.status is None
    assert attempt.error is not None


def test_lifecycle_events(graph: FakeGraph, api: Api, receiver: Receiver) -> None:
    body = subscription(
        receiver.url("/hook?tenant=a"), lifecycleNotificationUrl=receiver.url("/life")
    )
    sub = api.post("/subscriptions", json=body).json()
    assert [d.url.split("?")[0][-5:] for d in graph.deliveries] == ["/hook", "/life"]
    assert "tenant=a&validationToken=" in graph.deliveries[0].url  # the URL's query is kept
    graph.send_lifecycle_event(sub["id"], "reauthorizationRequired")
    graph.send_lifecycle_event(sub["id"], "subscriptionRemoved")
    *_, reauth, removed = graph.wait_for_deliveries(4)
    assert reauth.payload["value"][0]["lifecycleEvent"] == "reauthorizationRequired"
    assert removed.url.endswith("/life")
    assert removed.status == 202
    assert api.get(f"/subscriptions/{sub['id']}").status_code == 404


# --- throttling ----------------------------------------------------------------------------


def test_throttling_sends_retry_after(graph: FakeGraph, api: Api) -> None:
    graph.throttle_next(1, retry_after=2)
    graph.throttle_next(1, retry_after=0, status=503)
    throttled, unavailable, fine = (api.get("/me/calendars") for _ in range(3))
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "2"
    assert error_code(throttled) == "ApplicationThrottled"
    assert unavailable.status_code == 503
    assert unavailable.headers["Retry-After"] == "0"
    assert fine.status_code == 200


def test_concurrency_guard_per_mailbox(graph: FakeGraph, api: Api) -> None:
    graph.latency = 0.3

    def burst(limit: threading.Semaphore | None) -> list[requests.Response]:
        results: list[requests.Response] = []

        def one() -> None:
            with requests.Session() as session:
                session.trust_env = False
                session.headers.update(api.session.headers)
                if limit is None:
                    results.append(session.get(f"{graph.graph_url}/me/calendars", timeout=10))
                    return
                with limit:
                    results.append(session.get(f"{graph.graph_url}/me/calendars", timeout=10))

        threads = [threading.Thread(target=one) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results

    unbounded = burst(None)
    rejected = [r for r in unbounded if r.status_code == 429]
    assert rejected
    assert "MailboxConcurrency" in rejected[0].json()["error"]["message"]
    assert graph.max_concurrency > 4
    graph.max_concurrency = 0
    started = time.monotonic()
    assert {r.status_code for r in burst(threading.Semaphore(4))} == {200}
    assert graph.max_concurrency <= 4
    assert time.monotonic() - started >= 0.6
