"""HTTP/1.1 plumbing for FakeGoogle: read a request, hand it to the Backend, write the answer.

Keeps connections alive like Google's front end, reads ``Content-Length`` or
chunked bodies, and never decides anything about the API itself.
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler

from .api import Backend


def handler_for(backend: Backend) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        pass

    Handler.backend = backend
    return Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    backend: Backend

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def log_message(self, format: str, *args: object) -> None:  # quiet tests
        pass

    def _handle(self) -> None:
        body = self._read_body()
        if body is None:
            self.send_response(411)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        response = self.backend.dispatch(self.command, self.path, headers, body)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.status not in (204, 304):
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if response.body and self.command != "HEAD":
            self.wfile.write(response.body)

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if length is None:
            return b"" if self.command in ("GET", "DELETE", "HEAD", "OPTIONS") else None
        return self.rfile.read(int(length))

    def _read_chunked(self) -> bytes:
        data = b""
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return data
            data += self.rfile.read(size)
            self.rfile.readline()
