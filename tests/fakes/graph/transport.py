"""A ``requests`` transport that sends https calls for Microsoft hosts to the fake's http port.

MSAL refuses non-https authorities, so tests hand MSAL a session whose adapter,
mounted on ``https://login.microsoftonline.com`` (and custom authority hosts,
and ``https://graph.microsoft.com``), rewrites each request to
``http://127.0.0.1:PORT`` while keeping the original ``Host`` and adding
``X-Forwarded-Proto: https`` -- so the fake's links and OIDC metadata name the
host the client asked for, like a TLS-terminating proxy in front of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter


class LoopbackAdapter(HTTPAdapter):
    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        assert request.url is not None
        split = urlsplit(request.url)
        request.headers["Host"] = split.netloc
        request.headers["X-Forwarded-Proto"] = split.scheme
        request.url = urlunsplit(("http", f"127.0.0.1:{self.port}", split.path, split.query, ""))
        return super().send(request, stream, timeout, verify, cert, proxies)


def loopback_session(port: int, hosts: list[str]) -> requests.Session:
    """A session whose https requests to ``hosts`` reach the fake on ``port``."""
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment for loopback traffic
    adapter = LoopbackAdapter(port)
    for host in hosts:
        session.mount(f"https://{host}/", adapter)
    return session
