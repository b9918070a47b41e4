"""``FakeGraph``: the HTTP server, its knobs, and the helpers tests drive it with.

Owns: the ThreadingHTTPServer on 127.0.0.1 (identity paths and ``/v1.0``
share one port), the request log, bearer-token checks (401
``InvalidAuthenticationToken``), injected throttling (429/503 with
``Retry-After``), the per-mailbox concurrency guard (more than
``concurrency_limit`` requests in flight -> 429 naming MailboxConcurrency),
and the failure knobs. Test helpers for mailboxes and sign-in come from
``helpers``; route logic lives in the sibling modules.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from . import routes
from .aad import AccessToken
from .delta import DeltaService
from .helpers import MailboxHelpers, SignInHelpers
from .identity import Identity
from .store import Change, GraphUser, Mailbox
from .subscriptions import Delivery, SubscriptionService
from .transport import loopback_session
from .wire import (
    UTC_ZONE,
    Incoming,
    Reply,
    WireError,
    Zone,
    graph_error,
    parse_prefer,
    resolve_zone,
    wire_error_reply,
)

_WWW_AUTH = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize",'
    ' client_id="00000003-0000-0000-c000-000000000000"'
)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased
    body: bytes = b""
    host: str = ""  # the Host the client addressed (login.microsoftonline.com via the adapter)

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


class FakeGraph(MailboxHelpers, SignInHelpers):
    """Microsoft Graph (calendar) + AAD v2 on one loopback port; use as a context manager."""

    def __init__(
        self,
        *,
        upn: str = "adele@contoso.example",
        display_name: str = "Adele Vance",
        time_zone: str = "W. Europe Standard Time",
        tenant_id: str = "72f988bf-86f1-41af-91ab-2d7cd011db47",
        tenant_domain: str = "contoso.example",
        authority_hosts: Iterable[str] = ("login.example.test",),
        client_ids: Iterable[str] | None = None,
        clock: Callable[[], datetime] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.tls = tls  # serve https itself (for a client in another process, via a private CA)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.tenant_domain = tenant_domain
        self.authority_hosts = ["login.microsoftonline.com", *authority_hosts]
        self.client_ids = None if client_ids is None else set(client_ids)
        # identity knobs
        self.device_code_interval = 5
        self.device_code_lifetime = 900
        self.access_token_lifetime = 3599
        self.single_use_refresh_tokens = False
        self.app_permissions: tuple[str, ...] = ("Calendars.ReadWrite", "User.Read")
        self.personal_account = False
        # Graph knobs
        self.default_page_size = 10
        self.duplicate_items = False
        self.partial_updates = False
        self.empty_first_page = False
        self.schedule_limit = 20
        self.validation_timeout = 10.0
        self.delivery_timeout = 10.0
        self.concurrency_limit = 4
        self.latency = 0.0
        self.max_concurrency = 0
        self.users: list[GraphUser] = []
        self._tenant_id = tenant_id
        self._mailboxes: dict[str, Mailbox] = {}
        self._throttle: list[tuple[int, int]] = []
        self._in_flight: dict[str, int] = {}
        self._requests: list[RecordedRequest] = []
        self._sessions: list[requests.Session] = []
        self._server: ThreadingHTTPServer | None = None
        self.identity = Identity(self)
        self.delta = DeltaService(self)
        self.subscription_service = SubscriptionService(self)
        self.user = self.add_user(upn, display_name, time_zone=time_zone)

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FakeGraph:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        if self.tls is not None:
            server.socket = self.tls.wrap_socket(server.socket, server_side=True)
        self._server = server
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        self.subscription_service.start()
        return self

    def stop(self) -> None:
        self.subscription_service.stop()
        for session in self._sessions:
            session.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeGraph:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the server is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def graph_url(self) -> str:
        return f"{self.base_url}/v1.0"

    def authority(self, tenant: str = "common", host: str = "login.microsoftonline.com") -> str:
        """An https authority for MSAL; reach it with :meth:`http_client`."""
        return f"https://{host}/{tenant}"

    def http_client(self) -> requests.Session:
        """A session that routes the authority hosts and graph.microsoft.com to this fake.

        Pass it to MSAL as ``http_client=``. For a host MSAL does not know
        (``login.example.test``) also pass ``instance_discovery=False``: otherwise
        MSAL asks login.microsoftonline.com's instance discovery, which answers
        ``invalid_instance`` and MSAL raises ValueError. Closed on ``stop()``.
        """
        session = loopback_session(self.port, [*self.authority_hosts, "graph.microsoft.com"])
        self._sessions.append(session)
        return session

    # --- inspection ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self.lock:
            return list(self._requests)

    @property
    def deliveries(self) -> list[Delivery]:
        return self.subscription_service.wait_for(0, 0)

    def wait_for_deliveries(self, count: int, timeout: float = 5.0) -> list[Delivery]:
        return self.subscription_service.wait_for(count, timeout)

    def subscriptions(self) -> list[dict[str, Any]]:
        with self.lock:
            return [vars(s).copy() for s in self.subscription_service.subs.values()]

    # --- Graph failure knobs ------------------------------------------------------------------

    def expire_delta_tokens(self, code: str = "SyncStateNotFound") -> None:
        """Every token issued so far gets 410 ``SyncStateNotFound`` (or ``resyncRequired``)."""
        with self.lock:
            self.delta.expire_all(code)

    def throttle_next(self, n: int = 1, *, retry_after: int = 1, status: int = 429) -> None:
        """Answer the next ``n`` authenticated Graph requests with ``status`` + ``Retry-After``."""
        with self.lock:
            self._throttle.extend([(status, retry_after)] * n)

    def send_lifecycle_event(self, subscription_id: str, event: str) -> None:
        """POST ``reauthorizationRequired``, ``subscriptionRemoved`` or ``missed``."""
        with self.lock:
            self.subscription_service.send_lifecycle(subscription_id, event)

    # --- used by the routes -------------------------------------------------------------------

    def prefer(self, req: Incoming) -> dict[str, str]:
        return parse_prefer(req.headers.get("prefer"))

    def zone(self, req: Incoming) -> Zone:
        name = self.prefer(req).get("outlook.timezone")
        return UTC_ZONE if name is None else resolve_zone(name)

    def immutable(self, req: Incoming) -> bool:
        return self.prefer(req).get("idtype", "").lower() == "immutableid"

    def _dispatch(self, req: Incoming) -> Reply:
        host = req.base_url.split("://", 1)[-1]
        with self.lock:
            self._requests.append(
                RecordedRequest(req.method, req.path, req.query, req.headers, req.body, host)
            )
            if not (req.path == "/v1.0" or req.path.startswith("/v1.0/")):
                return self.identity.handle(req)
        try:
            return self._graph(req)
        except WireError as err:
            reply = wire_error_reply(err)
            if err.status == 401:
                reply.headers["WWW-Authenticate"] = _WWW_AUTH
            return reply

    def _graph(self, req: Incoming) -> Reply:
        with self.lock:
            token = self._bearer(req)
            forced = self._throttle.pop(0) if self._throttle else None
        if forced is not None:
            return _throttled(*forced)
        oid = token.user.oid
        try:
            if not self._enter(oid):
                return graph_error(
                    429, "ApplicationThrottled",
                    "Application is over its MailboxConcurrency limit.", {"Retry-After": "1"},
                )  # fmt: skip
            if self.latency:
                time.sleep(self.latency)
            if req.method == "POST" and req.path.rstrip("/").lower() == "/v1.0/subscriptions":
                if not token.scopes & routes.READ:
                    raise WireError("ExtensionError", "Operation: Create; Forbidden.", 403)
                return self.subscription_service.create(req, oid, token.client_id)
            with self.lock:
                return routes.route(self, req, token)
        finally:
            self._leave(oid)

    def _bearer(self, req: Incoming) -> AccessToken:
        header = req.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if not value or scheme.lower() != "bearer":
            raise WireError("InvalidAuthenticationToken", "Access token is empty.", 401)
        token = self.identity.access_tokens.get(value.strip())
        if token is None:
            raise WireError("InvalidAuthenticationToken", "IDX14100: JWT is not well formed.", 401)
        if token.revoked or time.time() >= token.expires_at:
            raise WireError(
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
                401,
            )
        return token

    def _enter(self, oid: str) -> bool:
        with self.lock:
            count = self._in_flight.get(oid, 0) + 1
            self._in_flight[oid] = count
            self.max_concurrency = max(self.max_concurrency, count)
            return count <= self.concurrency_limit

    def _leave(self, oid: str) -> None:
        with self.lock:
            self._in_flight[oid] -= 1

    def _changed(self, mailbox: Mailbox, change: Change) -> None:
        self.subscription_service.on_change(mailbox, change)


def _throttled(status: int, retry_after: int) -> Reply:
    if status == 429:
        code, message = "ApplicationThrottled", "Application is over its request limit."
    else:
        code, message = "ServiceUnavailable", "The service is temporarily unavailable."
    return graph_error(status, code, message, {"Retry-After": str(retry_after)})


def _handler_for(graph: FakeGraph) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers: dict[str, str] = {}
            for name, value in self.headers.items():
                key = name.lower()
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
            split = urlsplit(self.path)
            scheme = headers.get("x-forwarded-proto", "https" if graph.tls else "http")
            base = f"{scheme}://{headers.get('host', f'127.0.0.1:{graph.port}')}"
            query = parse_qs(split.query, keep_blank_values=True)
            reply = graph._dispatch(Incoming(self.command, split.path, query, headers, body, base))
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if reply.status != 204:  # RFC 9110 8.6: no Content-Length on 204
                self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
