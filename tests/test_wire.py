"""The lean HTTP/1.1 transport (bot/wire.py): framing, keep-alive, errors, TLS.

End-to-end cases run against a scripted asyncio server on 127.0.0.1 that
answers each request with exact bytes, so malformed and edge-case replies
can be produced; the parser is also fed byte by byte, without a socket.
"""

from __future__ import annotations

import asyncio
import gzip
import shutil
import ssl
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.config import PollSettings
from bot.errors import FetchError
from bot.fetch import FEED_MAX_BYTES, Client, _keeps_auth, _ssl_context, _target, fetch_feed, get, make_client
from bot.wire import HIGH_WATER, KEEPALIVE_EXPIRY, WireTransport, _Connection

# (connection number, request number on it, the request's bytes) -> reply bytes, or None to close silently
Answer = Callable[[int, int, bytes], "bytes | None"]


class Scripted:
    """A loopback server answering from a script; it counts connections and
    keeps every request it read."""

    def __init__(self, answer: Answer, close_after: Callable[[bytes], bool] = lambda reply: False) -> None:
        self.answer = answer
        self.close_after = close_after
        self.connections = 0
        self.open = 0  # connections the client has not closed yet
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.ssl: ssl.SSLContext | None = None

    async def __aenter__(self) -> Scripted:
        self.closed = asyncio.Event()  # set when a connection ends
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    def url(self, path: str = "/feed.xml", scheme: str = "http") -> str:
        assert self.server is not None
        return f"{scheme}://127.0.0.1:{self.server.sockets[0].getsockname()[1]}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        number = self.connections
        try:
            for n in range(1000):
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,
                )
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                reply = self.answer(number, n, request)
                if reply is None:
                    break
                writer.write(reply)
                await writer.drain()
                if self.close_after(reply):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            self.closed.set()
            writer.close()


def ok(body: bytes = b"<rss/>", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


NOT_MODIFIED = b'HTTP/1.1 304 Not Modified\r\nETag: "abc"\r\n\r\n'


def run(coro: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(coro())


def client(**kwargs: Any) -> httpx.AsyncClient:
    return make_client(PollSettings(**kwargs))


def test_conditional_gets_share_one_connection() -> None:
    async def go() -> tuple[list[int], int, list[bytes]]:
        async with Scripted(lambda c, n, r: NOT_MODIFIED if b"If-None-Match" in r else ok()) as server:
            async with client() as c:
                first = await fetch_feed(c, server.url(), None, None, 10)
                statuses = [first.status]
                for _ in range(20):
                    statuses.append((await fetch_feed(c, server.url(), '"abc"', None, 10)).status)
            return statuses, server.connections, server.requests

    statuses, connections, requests = run(go)
    assert statuses == [200] + [304] * 20
    assert connections == 1
    assert requests[1].startswith(b"GET /feed.xml HTTP/1.1\r\n")
    assert b'\r\nIf-None-Match: "abc"\r\n' in requests[1]
    assert b"\r\nHost: 127.0.0.1:" in requests[1] and b"\r\nUser-Agent: feedbot/" in requests[1]


def test_chunked_body_with_extensions_and_trailers() -> None:
    body = "ロシア外相が会見".encode() * 500
    pieces = [body[i : i + 777] for i in range(0, len(body), 777)]
    chunked = b"".join(b"%x;name=value\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\nX-Trailer: 1\r\n\r\n"
    reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked

    async def go() -> tuple[list[bytes], int]:
        async with Scripted(lambda c, n, r: reply if n < 2 else ok(b"third")) as server, client() as c:
            bodies = [
                (await get(c, server.url(), headers={}, max_bytes=FEED_MAX_BYTES, deadline=10)).content
                for _ in range(3)
            ]
            return bodies, server.connections

    bodies, connections = run(go)
    assert bodies == [body, body, b"third"]
    assert connections == 1  # a chunked body read to its end leaves the connection reusable


def test_body_until_close_and_http10() -> None:
    replies = {1: b"HTTP/1.0 200 OK\r\nContent-Type: text/xml\r\n\r\n<rss>until close</rss>", 2: ok(b"next")}

    async def go() -> tuple[bytes, bytes, int]:
        async with (
            Scripted(lambda c, n, r: replies[c], close_after=lambda reply: reply.startswith(b"HTTP/1.0")) as server,
            client() as c,
        ):
            first = await get(c, server.url(), headers={}, max_bytes=FEED_MAX_BYTES, deadline=10)
            second = await get(c, server.url(), headers={}, max_bytes=FEED_MAX_BYTES, deadline=10)
            return first.content, second.content, server.connections

    assert run(go) == (b"<rss>until close</rss>", b"next", 2)


@pytest.mark.parametrize(
    "extra", [b"Connection: close\r\n", b"Content-Length: 3\r\n"], ids=["connection-close", "with-length"]
)
def test_chunked_body_that_ends_the_connection(extra: bytes) -> None:
    reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n" + extra + b"\r\n5\r\nhello\r\n0\r\n\r\n"

    async def go() -> tuple[bytes, bytes, int]:
        async with Scripted(lambda c, n, r: reply if c == 1 else ok(b"next")) as server, client() as c:
            first = await get(c, server.url(), headers={}, max_bytes=100, deadline=10)
            second = await get(c, server.url(), headers={}, max_bytes=100, deadline=10)
            return first.content, second.content, server.connections

    assert run(go) == (b"hello", b"next", 2)  # decoded, and the connection not reused


def test_interim_response_is_skipped_and_connection_close_honoured() -> None:
    reply = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + ok(
        b"final", b"Connection: close\r\n"
    )

    async def go() -> tuple[int, bytes, int]:
        async with Scripted(lambda c, n, r: reply if c == 1 else ok(b"again")) as server, client() as c:
            first = await get(c, server.url(), headers={}, max_bytes=100, deadline=10)
            await get(c, server.url(), headers={}, max_bytes=100, deadline=10)
            return first.status, first.content, server.connections

    assert run(go) == (200, b"final", 2)


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", "bad Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "bad Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", "bad chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n", "longer than its size"),
        (b"ICY 200 OK\r\n\r\n", "not an HTTP/1.x status line"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header line"),
        (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", "response head over"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", "closed the connection mid-response"),
        # An empty Transfer-Encoding line must not cancel "chunked" and leave Content-Length framing.
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: \r\nContent-Length: 3\r\n\r\nabc",
            "unsupported Transfer-Encoding",
        ),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", "unsupported Transfer"),
        (b"HTTP/1.1 500 \x1b[2J\x1b[31mfake log line\r\n\r\n", "not an HTTP/1.x status line"),
        (b"HTTP/1.1 200 OK\r\nX-Bad: a\x00b\r\n\r\n", "control character"),
        (b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", "malformed header line"),
        (b"HTTP/1.1 100 Continue\r\n\r\n" * 9, "interim (1xx) responses"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + b"X-T: " + b"t" * 5000 + b"\r\n\r\n",
            "trailer line too long",
        ),
    ],
)
def test_malformed_responses_are_clear_errors(reply: bytes, message: str) -> None:
    async def go() -> str:
        async with Scripted(lambda c, n, r: reply, close_after=lambda _: True) as server, client() as c:
            with pytest.raises(FetchError) as caught:
                await get(c, server.url(), headers={}, max_bytes=FEED_MAX_BYTES, deadline=10)
            return str(caught.value)

    assert message in run(go)


def test_lenient_with_bare_newlines_and_folded_headers() -> None:
    reply = b"HTTP/1.1 200 OK\nContent-Type: text/xml;\n charset=utf-8\nContent-Length: 6\n\n<rss/>"

    async def go() -> tuple[str | None, bytes]:
        async with Scripted(lambda c, n, r: reply) as server, client() as c:
            r = await get(c, server.url(), headers={}, max_bytes=100, deadline=10)
            return r.content_type, r.content

    assert run(go) == ("text/xml; charset=utf-8", b"<rss/>")


def test_a_dropped_idle_connection_is_retried_for_get_but_not_for_post() -> None:
    # Connection 1 answers once, then closes on the next request without a
    # reply: what a server does when its keep-alive timer fires as we reuse.
    def answer(conn: int, n: int, request: bytes) -> bytes | None:
        return None if conn == 1 and n == 1 else ok(b"fresh" if conn > 1 else b"first")

    async def go(method: str) -> tuple[bytes | str, int]:
        async with Scripted(answer) as server, client() as c:
            await c.request(method, server.url(), content=b"x" if method == "POST" else None)
            try:
                second: bytes | str = (
                    await c.request(method, server.url(), content=b"x" if method == "POST" else None)
                ).content
            except httpx.HTTPError as exc:
                second = type(exc).__name__
            return second, server.connections

    assert asyncio.run(go("GET")) == (b"fresh", 2)
    # A POST might have been processed: it is not sent twice (the outbox retries it knowingly).
    assert asyncio.run(go("POST")) == ("RemoteProtocolError", 1)


def test_idle_connections_expire_on_the_injected_clock() -> None:
    now = [1000.0]

    async def go() -> int:
        async with Scripted(lambda c, n, r: NOT_MODIFIED) as server:
            transport = WireTransport(_ssl_context(), clock=lambda: now[0])
            async with httpx.AsyncClient(transport=transport) as c:
                await c.get(server.url())
                now[0] += KEEPALIVE_EXPIRY - 0.1
                await c.get(server.url())  # still fresh: reused
                now[0] += KEEPALIVE_EXPIRY + 0.1
                await c.get(server.url())  # expired: a new connection
            return server.connections

    assert run(go) == 2


def test_post_body_is_sent_whole_with_its_length() -> None:
    payload = '{"content": "ロシア"}'.encode()

    async def go() -> bytes:
        async with Scripted(lambda c, n, r: b"HTTP/1.1 204 No Content\r\n\r\n") as server, client() as c:
            r = await c.post(server.url("/hook"), content=payload, headers={"Content-Type": "application/json"})
            assert r.status_code == 204
            return server.requests[0]

    request = run(go)
    assert request.startswith(b"POST /hook HTTP/1.1\r\n")
    assert b"\r\nContent-Length: %d\r\n" % len(payload) in request
    assert request.endswith(b"\r\n\r\n" + payload)


def test_header_injection_is_refused_before_anything_is_sent() -> None:
    async def go() -> tuple[str, int]:
        async with Scripted(lambda c, n, r: ok()) as server, client() as c:
            with pytest.raises(httpx.LocalProtocolError) as caught:
                await c.get(server.url(), headers={"If-None-Match": '"a"\r\nX-Evil: 1'})
            return str(caught.value), server.connections

    message, connections = run(go)
    assert "line break" in message or "Illegal header value" in message
    assert connections == 0


def test_silent_server_times_out() -> None:
    async def go() -> str:
        async def never(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1)  # reads the request, never answers
            await asyncio.Event().wait()

        server = await asyncio.start_server(never, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with make_client(PollSettings()) as c:
                c.timeout = httpx.Timeout(0.2)
                with pytest.raises(FetchError) as caught:
                    await get(c, f"http://127.0.0.1:{port}/", headers={}, max_bytes=100, deadline=10)
                return str(caught.value)
        finally:
            server.close()

    assert run(go) == "timed out"


def test_refused_connection_is_a_connect_error() -> None:
    async def go() -> str:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        async with client() as c:
            with pytest.raises(FetchError) as caught:
                await get(c, f"http://127.0.0.1:{port}/", headers={}, max_bytes=100, deadline=10)
            return str(caught.value)

    message = run(go)
    assert message.startswith("request failed: cannot connect to 127.0.0.1:")


# -- the parser alone, fed byte by byte -------------------------------------------


class _FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.paused = False
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def test_parser_handles_any_split_of_the_bytes() -> None:
    body = "本文".encode() * 100
    reply = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nETag: x\r\n\r\n"
        + b"".join(b"%X\r\n%s\r\n" % (len(body[i : i + 50]), body[i : i + 50]) for i in range(0, len(body), 50))
        + b"0\r\n\r\n"
    )

    async def go() -> tuple[int, bytes, bool]:
        conn = _Connection()
        conn.connection_made(_FakeTransport())
        conn.send(b"GET", b"GET / HTTP/1.1\r\n\r\n")
        for i in range(len(reply)):
            conn.data_received(reply[i : i + 1])
        head = await conn.head(1)
        got = b""
        while (piece := await conn.chunk(1)) is not None:
            got += piece
        return head.status, got, conn.reusable

    assert run(go) == (200, body, True)


def test_reading_pauses_while_the_body_is_unread() -> None:
    async def go() -> tuple[bool, bool, int]:
        transport = _FakeTransport()
        conn = _Connection()
        conn.connection_made(transport)
        conn.send(b"GET", b"GET / HTTP/1.1\r\n\r\n")
        size = HIGH_WATER * 4
        conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        piece = b"x" * 65536
        while not transport.paused:
            conn.data_received(piece)
        paused_at = conn._buffered
        while transport.paused:
            assert await conn.chunk(1)
        return paused_at <= HIGH_WATER + len(piece), transport.paused, conn._buffered

    within, paused, left = run(go)
    assert within and not paused and left <= HIGH_WATER // 2


# -- TLS ---------------------------------------------------------------------------


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed to make a test certificate (.ci/run installs it)"
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def test_https_verifies_the_certificate(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ssl.load_cert_chain(cert, key)

    async def go() -> tuple[bytes, str, int]:
        scripted = Scripted(lambda c, n, r: ok(b"<rss>tls</rss>"))
        scripted.ssl = server_ssl
        async with scripted as server:
            trusting = ssl.create_default_context(cafile=str(cert))
            async with httpx.AsyncClient(transport=WireTransport(trusting)) as c:
                first = (await c.get(server.url(scheme="https"))).content
                await c.get(server.url(scheme="https"))
            wire = WireTransport(trusting)
            direct = Client(transport=wire)
            direct.wire = wire
            async with direct:  # feedbot's direct path
                second = await get(direct, server.url(scheme="https"), headers={}, max_bytes=100, deadline=10)
                assert second.content == b"<rss>tls</rss>"
            async with client() as c:  # the system's CAs: a self-signed certificate is refused
                with pytest.raises(FetchError) as caught:
                    await get(c, server.url(scheme="https"), headers={}, max_bytes=100, deadline=10)
            return first, str(caught.value), server.connections

    body, refused, connections = run(go)
    assert body == b"<rss>tls</rss>"
    assert "TLS handshake with 127.0.0.1 failed" in refused and "CERTIFICATE_VERIFY_FAILED" in refused
    assert connections == 2  # one per client, reused; the refused handshake never reaches the handler


# -- the feed GET: direct to the transport, or through httpx's client -------------


@pytest.fixture(params=["direct", "client"])
def way(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def feed_client(way: str) -> httpx.AsyncClient:
    c = client()
    assert c.wire is not None  # no proxy in the test environment
    if way == "client":
        c.wire = None  # as with a proxy configured: every request through httpx's client
    return c


def test_both_ways_agree_on_redirects_compression_and_errors(way: str) -> None:
    body = "<rss>ニュース</rss>".encode()
    gz = gzip.compress(body)

    def answer(conn: int, n: int, request: bytes) -> bytes | None:
        path = request.split(b" ", 2)[1]
        if path == b"/old":
            return b"HTTP/1.1 301 Moved Permanently\r\nLocation: /new\r\nContent-Length: 0\r\n\r\n"
        if path == b"/new":
            return ok(gz, b'Content-Encoding: gzip\r\nETag: "\xe9t\xe9"\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n')
        if path == b"/loop":
            return b"HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n"
        if path == b"/ftp":
            return b"HTTP/1.1 302 Found\r\nLocation: ftp://127.0.0.1/x\r\nContent-Length: 0\r\n\r\n"
        if path == b"/busy":
            return b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 120\r\nContent-Length: 0\r\n\r\n"
        return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"

    async def go() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with Scripted(answer) as server, feed_client(way) as c:
            r = await get(c, server.url("/old"), headers={"Accept": "x/y"}, max_bytes=1000, deadline=10)
            out["moved"] = (r.url.endswith("/new"), r.status, r.content, r.headers["etag"])
            out["cookies"] = r.headers["set-cookie"]
            for path in ("/loop", "/ftp", "/busy", "/gone"):
                with pytest.raises(FetchError) as caught:
                    await get(c, server.url(path), headers={}, max_bytes=1000, deadline=10)
                out[path] = (str(caught.value), caught.value.status, caught.value.retry_after)
            out["sent"] = server.requests[1]
        return out

    out = run(go)
    assert out["moved"] == (True, 200, body, '"été"')  # Latin-1: the ETag goes back byte for byte
    assert out["cookies"] == "a=1, b=2"
    assert out["/loop"] == ("more than 5 redirects", None, None)
    assert out["/ftp"] == ("redirected to a URL that is not http(s)", None, None)
    assert out["/busy"] == ("HTTP 429 Too Many Requests", 429, 120.0)
    assert out["/gone"] == ("HTTP 404 Not Found", 404, None)
    sent = out["sent"]  # the request that followed the redirect
    assert sent.startswith(b"GET /new HTTP/1.1\r\n")
    assert b"\r\nAccept: x/y\r\n" in sent and b"Accept: */*" not in sent  # the caller's Accept replaces the default
    assert b"\r\nUser-Agent: feedbot/" in sent and b"\r\nAccept-Encoding: gzip, deflate\r\n" in sent


def test_both_ways_send_credentials_from_the_url(way: str) -> None:
    async def go() -> bytes:
        async with Scripted(lambda c, n, r: NOT_MODIFIED) as server, feed_client(way) as c:
            url = server.url("/private.xml").replace("http://", "http://reader:p%40ss@")
            await fetch_feed(c, url, '"abc"', "Tue, 21 Jan 2025 00:00:00 GMT", 10)
            return server.requests[0]

    sent = run(go)
    assert b"\r\nAuthorization: Basic cmVhZGVyOnBAc3M=\r\n" in sent  # base64 of reader:p@ss
    assert b"\r\nIf-Modified-Since: Tue, 21 Jan 2025 00:00:00 GMT\r\n" in sent


def test_with_a_proxy_in_the_environment_feeds_go_through_it(monkeypatch: pytest.MonkeyPatch) -> None:
    async def go() -> tuple[bool, int, bytes]:
        async with Scripted(lambda c, n, r: ok(b"<rss>via proxy</rss>")) as proxy:
            monkeypatch.setenv("HTTP_PROXY", proxy.url("").rstrip("/"))
            async with client() as c:
                r = await fetch_feed(c, "http://feeds.invalid/feed.xml", None, None, 10)
                return c.wire is None, r.status, proxy.requests[0]

    direct, status, sent = run(go)
    assert direct and status == 200
    assert sent.startswith(b"GET http://feeds.invalid/feed.xml HTTP/1.1\r\n")


def test_credentials_follow_a_redirect_on_their_origin_only(way: str) -> None:
    async def go() -> tuple[bytes, bytes, bytes]:
        async with Scripted(lambda c, n, r: ok()) as other:
            elsewhere = other.url("/moved.xml")

            def answer(conn: int, n: int, request: bytes) -> bytes:
                path = request.split(b" ", 2)[1]
                if path == b"/private.xml":
                    return b"HTTP/1.1 302 Found\r\nLocation: /private/\r\nContent-Length: 0\r\n\r\n"
                if path == b"/private/":
                    location = elsewhere.encode()
                    return b"HTTP/1.1 302 Found\r\nLocation: " + location + b"\r\nContent-Length: 0\r\n\r\n"
                return ok()

            async with Scripted(answer) as server, feed_client(way) as c:
                url = server.url("/private.xml").replace("http://", "http://reader:secret@")
                await get(c, url, headers={}, max_bytes=100, deadline=10)
                return server.requests[0], server.requests[1], other.requests[0]

    first, same_origin, other_origin = run(go)
    auth = b"\r\nAuthorization: Basic cmVhZGVyOnNlY3JldA==\r\n"  # reader:secret
    assert auth in first and auth in same_origin
    assert b"Authorization" not in other_origin


def test_a_reset_is_not_the_end_of_a_body_that_ends_with_the_connection() -> None:
    async def go(error: Exception | None) -> tuple[bytes, str]:
        conn = _Connection()
        conn.connection_made(_FakeTransport())
        conn.send(b"GET", b"GET / HTTP/1.1\r\n\r\n")
        conn.data_received(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n<rss><item>one</item>")
        conn.connection_lost(error)
        await conn.head(1)
        got, outcome = b"", "complete"
        try:
            while (piece := await conn.chunk(1)) is not None:
                got += piece
        except httpx.HTTPError as exc:
            outcome = str(exc)
        return got, outcome

    assert asyncio.run(go(None)) == (b"<rss><item>one</item>", "complete")
    assert asyncio.run(go(ConnectionResetError())) == (
        b"<rss><item>one</item>",
        "server closed the connection mid-response",
    )


def test_a_head_trickled_byte_by_byte_is_searched_in_linear_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.wire

    searched = [0]
    real = bot.wire._HEAD_END

    class Counting:
        def search(self, buf: bytearray, pos: int = 0) -> Any:
            searched[0] += len(buf) - pos
            return real.search(buf, pos)

    monkeypatch.setattr(bot.wire, "_HEAD_END", Counting())
    head = b"HTTP/1.1 204 No Content\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 40) for i in range(1000)) + b"\r\n"

    async def go() -> int:
        conn = _Connection()
        conn.connection_made(_FakeTransport())
        conn.send(b"GET", b"GET / HTTP/1.1\r\n\r\n")
        for i in range(len(head)):
            conn.data_received(head[i : i + 1])
        return (await conn.head(1)).status

    assert run(go) == 204
    assert searched[0] < 5 * len(head)  # quadratic would be ~len(head)² / 2


def test_both_ways_follow_a_raw_utf8_location_and_send_redirect_cookies(way: str) -> None:
    def answer(conn: int, n: int, request: bytes) -> bytes:
        path = request.split(b" ", 2)[1]
        if path == b"/old":
            news = "/новости.xml".encode()  # raw UTF-8 in the header, as some servers send it
            return b"HTTP/1.1 301 Moved\r\nLocation: " + news + b"\r\nContent-Length: 0\r\n\r\n"
        if path == b"/%D0%BD%D0%BE%D0%B2%D0%BE%D1%81%D1%82%D0%B8.xml":
            if b"\r\nCookie: check=1\r\n" not in request:
                # A cookie check: set it, come back to the same URL.
                return (
                    b"HTTP/1.1 302 Found\r\nSet-Cookie: check=1; Path=/; HttpOnly\r\nLocation: "
                    + path
                    + b"\r\nContent-Length: 0\r\n\r\n"
                )
            return ok(b"<rss>news</rss>")
        return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"

    async def go() -> tuple[int, bytes]:
        async with Scripted(answer) as server, feed_client(way) as c:
            r = await get(c, server.url("/old"), headers={}, max_bytes=100, deadline=10)
            return r.status, r.content

    assert run(go) == (200, b"<rss>news</rss>")


def test_both_ways_send_a_stored_non_ascii_etag_as_bytes(way: str) -> None:
    async def go() -> bytes:
        async with Scripted(lambda c, n, r: NOT_MODIFIED) as server, feed_client(way) as c:
            await fetch_feed(c, server.url(), '"€"', None, 10)
            await fetch_feed(c, server.url(), '"été"', None, 10)
            return b"".join(server.requests)

    sent = run(go)
    assert b'\r\nIf-None-Match: "\xe2\x82\xac"\r\n' in sent  # not Latin-1: UTF-8
    assert b'\r\nIf-None-Match: "\xe9t\xe9"\r\n' in sent  # Latin-1, as the direct path read it


def test_without_following_redirects_the_redirect_is_the_answer() -> None:
    async def go() -> tuple[int, int]:
        reply = b"HTTP/1.1 301 Moved\r\nLocation: /new\r\nContent-Length: 0\r\n\r\n"
        async with Scripted(lambda c, n, r: reply) as server:
            async with make_client(PollSettings(), follow_redirects=False) as c:
                assert c.wire is not None
                r = await get(c, server.url("/old"), headers={}, max_bytes=100, deadline=10)
            return r.status, len(server.requests)

    assert run(go) == (301, 1)


def test_credentials_rules_as_httpx() -> None:
    assert _target("http://token@h.example/f")[2] == b"Authorization: Basic dG9rZW46\r\n"  # "token:"
    assert _target("http://:@h.example/f")[2] == b""
    assert _target("ftp://h.example/f") is None
    http, https = ("http", "h.example", 80), ("https", "h.example", 443)
    assert _keeps_auth(http, https)  # the usual upgrade keeps them
    assert not _keeps_auth(https, http)
    assert not _keeps_auth(http, ("https", "other.example", 443))
    assert not _keeps_auth(("http", "h.example", 8080), https)


def test_expired_idle_connections_of_every_origin_are_closed() -> None:
    now = [0.0]

    async def go() -> tuple[list[int], int]:
        servers = [Scripted(lambda c, n, r: NOT_MODIFIED) for _ in range(4)]
        for server in servers:
            await server.__aenter__()
        transport = WireTransport(_ssl_context(), clock=lambda: now[0])
        async with httpx.AsyncClient(transport=transport) as c:
            for server in servers[:3]:
                await c.get(server.url())
            now[0] += KEEPALIVE_EXPIRY + 1
            await c.get(servers[3].url())  # releasing this one sweeps the others
            for server in servers[:3]:
                await asyncio.wait_for(server.closed.wait(), 5)  # the server sees its connection end
            open_ = [server.open for server in servers]
            idle = sum(len(v) for v in transport._idle.values())
        for server in servers:
            await server.__aexit__()
        return open_, idle

    open_, idle = run(go)
    assert open_ == [0, 0, 0, 1] and idle == 1
