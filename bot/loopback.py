"""Small HTTP servers on 127.0.0.1, for ``feedbot demo`` and the tests.

``Server`` runs a handler function in a background thread.  ``SiteHandler``
serves a folder of feeds and pages with ``{{BASE}}`` replaced by the
server's own address, answering conditional GETs with 304 like a real feed
server.  ``Receiver`` is a webhook that records what it is sent and can be
told to fail.  Nothing here listens beyond loopback.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import struct
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

LAST_MODIFIED = "Tue, 21 Jan 2025 12:00:00 GMT"
RESET = 0  # a Reply with this status resets the connection instead of answering
_TYPES = {
    ".xml": "application/rss+xml; charset=utf-8",
    ".rdf": "application/rdf+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    # A body sent chunk by chunk (flushed each time) instead of ``body``: for
    # huge or never-ending answers.  Without a Content-Length header in
    # ``headers``, the connection is closed at its end.
    stream: Callable[[], Iterator[bytes]] | None = None
    before: Callable[[], object] | None = None  # called before answering (to stall)
    reason: str | None = None  # the status line's reason phrase, if not the usual one


Handler = Callable[[Request], Reply]


def throwaway_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made with
    openssl in ``folder`` (for HTTPS tests and benchmarks; valid two days)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("openssl is needed to make a test certificate (bootstrap.sh test installs it)")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


class Listener(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: a poll opening 16 connections
    # at once would lose SYNs to it and wait a second for each retransmission.
    request_queue_size = 1024
    daemon_threads = True


class Server:
    """A threaded HTTP server on 127.0.0.1 calling ``handler`` per request."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1") -> None:
        if not host.startswith("127."):
            raise ValueError("loopback servers listen on 127.0.0.0/8 only")
        outer = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                reply = outer.handler(req)
                if reply.before is not None:
                    reply.before()
                if reply.status == RESET:
                    # Abort the connection: the client sees a reset, no answer.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    return
                self.send_response(reply.status, reply.reason)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                if reply.stream is None:
                    self.send_header("Content-Length", str(len(reply.body)))
                elif "Content-Length" not in reply.headers:
                    self.close_connection = True
                    self.send_header("Connection", "close")
                self.end_headers()
                if self.command == "HEAD":
                    return
                if reply.stream is None:
                    self.wfile.write(reply.body)
                    return
                try:
                    for chunk in reply.stream():
                        self.wfile.write(chunk)
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up: what we test

            do_GET = do_POST = do_HEAD = do_PUT = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the tests and the demo print what matters

        self.handler = handler
        self.httpd = Listener((host, 0), _H)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class SiteHandler:
    """Serves ``root``: ``{{BASE}}`` in files becomes the server's address."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.base = ""
        self.hits: dict[str, int] = {}
        self.overrides: dict[str, Reply] = {}
        self._lock = threading.Lock()

    def __call__(self, req: Request) -> Reply:
        path = req.path.split("?", 1)[0]
        with self._lock:
            self.hits[path] = self.hits.get(path, 0) + 1
            override = self.overrides.get(path)
        if override is not None:
            return override
        target = (self.root / path.lstrip("/")).resolve()
        if not target.is_relative_to(self.root):
            return Reply(404)
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            return Reply(404, {"Content-Type": "text/plain"}, b"not found")
        body = target.read_bytes().replace(b"{{BASE}}", self.base.encode())
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        headers = {"ETag": etag, "Last-Modified": LAST_MODIFIED}
        if req.headers.get("if-none-match") == etag:
            return Reply(304, headers)
        headers["Content-Type"] = _TYPES.get(target.suffix, "application/octet-stream")
        return Reply(200, headers, body)


class Receiver:
    """A webhook receiver: records every request; ``fail`` queues bad answers."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._answers: deque[Reply] = deque()
        self._cond = threading.Condition()

    def fail(self, count: int, status: int = 500, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        """The next ``count`` requests get this answer (status RESET: a reset)."""
        with self._cond:
            self._answers.extend(Reply(status, dict(headers or {}), body) for _ in range(count))

    def stall(self, count: int, release: threading.Event, seconds: float) -> None:
        """The next ``count`` requests get no answer for ``seconds`` (or until ``release``)."""

        with self._cond:
            self._answers.extend(
                Reply(504, {}, b"too late", before=lambda: release.wait(seconds)) for _ in range(count)
            )

    def clear(self) -> None:
        with self._cond:
            self._answers.clear()

    def __call__(self, req: Request) -> Reply:
        with self._cond:
            answer = self._answers.popleft() if self._answers else None
            if answer is None:
                self.requests.append(req)
                self._cond.notify_all()
        if answer is not None:
            return answer
        return Reply(200, {"Content-Type": "application/json"}, json.dumps({"id": str(len(self.requests))}).encode())

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        """Block until ``count`` requests were accepted (an event, not a sleep)."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self.requests) >= count, timeout)

    @property
    def accepted(self) -> list[Request]:
        with self._cond:
            return list(self.requests)
