"""A lean HTTP/1.1 transport for httpx, for feed polls and webhooks.

Why: a steady poll is a thousand conditional GETs answered ``304`` with a
few hundred bytes each.  Through httpcore each costs ~0.4–0.9 ms of CPU
(anyio streams, h11, and a connection pool whose assignment grows with the
number of connections: PERF_NOTES, BENCHMARKS.md), which made an idle cycle
cost as much CPU as rss2email's.  This transport speaks HTTP/1.1 on
``asyncio.Protocol`` directly: one ``data_received`` call per response, the
head parsed with one split, idle connections kept per origin.  It stays
behind httpx's client (timeouts, redirects, headers, proxies from the
environment still go through httpx's own transports), so callers and tests
see plain httpx.

What it implements, after RFC 9112: ``Content-Length`` and ``chunked``
bodies (trailers dropped), bodies delimited by the connection closing,
1xx interim responses skipped, no body for HEAD/204/304, keep-alive unless
the server says ``close`` or answers HTTP/1.0, request bodies given whole.
It is as strict as h11 where leniency is a risk (conflicting
``Content-Length``, any ``Transfer-Encoding`` but ``chunked``, control
characters, oversized heads, trailers or chunk lines) and lenient where
real servers are sloppy (bare ``\\n`` line ends, folded header lines).
Expired idle connections are closed for every origin, not only when that
origin is used again.

Article pages keep httpcore: they go through the address guard
(``bot.guard``), and there are few of them.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Final

import httpx

MAX_HEAD: Final = 64 * 1024  # status line and headers
MAX_CHUNK_LINE: Final = 4 * 1024  # a chunk's size line, or one trailer field
MAX_INTERIM: Final = 8  # 1xx responses before the real one
HIGH_WATER: Final = 256 * 1024  # unread body bytes before reading from the socket pauses
KEEPALIVE_EXPIRY: Final = 5.0  # seconds an idle connection is kept; servers often close at 5–15 s

_HEAD_END = re.compile(rb"\r?\n\r?\n")
_STATUS = re.compile(rb"HTTP/1\.([01]) (\d{3})(?: ([\t\x20-\x7e\x80-\xff]*))?")
# RFC 9110 §5.1, §5.5: a field name is a token; a value has no control characters but tab.
_TOKEN_TEXT = rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+"
_TOKEN = re.compile(_TOKEN_TEXT)
_TOKENS = re.compile(rb"(?:%s(?:\n%s)*)?" % (_TOKEN_TEXT, _TOKEN_TEXT))  # names, one a line
_FIELD_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")
_UNSAFE = re.compile(rb"[\r\n\0]")


Origin = tuple[str, str, int]  # scheme, host (IDNA), port


def origin(url: httpx.URL) -> Origin:
    # raw_host: the IDNA (ASCII) form, which is what DNS and SNI take.
    return (url.scheme, url.raw_host.decode("ascii"), url.port or (443 if url.scheme == "https" else 80))


class Head:
    __slots__ = ("headers", "keep_alive", "reason", "status", "version")

    def __init__(
        self, version: bytes, status: int, reason: bytes, headers: list[tuple[bytes, bytes]], keep_alive: bool
    ) -> None:
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers
        self.keep_alive = keep_alive


# How the body of the current response ends.
_NONE, _LENGTH, _CHUNKED, _CLOSE = range(4)
# Where the chunked decoder is.
_SIZE, _DATA, _DATA_END, _TRAILER = range(4)


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection, one exchange at a time.

    The protocol parses as bytes arrive and hands the consumer a parsed head
    and then body chunks; the consumer waits on ``_waiter``.  Reading pauses
    while more than ``HIGH_WATER`` body bytes are unread, so a large body is
    never buffered whole here (the caller enforces its own size limit).
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._buf = bytearray()
        self._scanned = 0  # bytes of _buf already searched for the end of a head
        self._interim = 0
        self._trailer = 0
        self._head: Head | None = None
        self._method = b"GET"
        self._expecting = False  # an exchange is in progress
        self._received_any = False
        self._framing = _NONE
        self._remaining = 0
        self._chunk_state = _SIZE
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._done = False
        self._error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None

    # -- asyncio.Protocol ------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if not self._expecting:
            # Bytes nobody asked for: the connection cannot be trusted again.
            self.close()
            return
        self._received_any = True
        self._buf += data
        try:
            self._parse()
        except httpx.RemoteProtocolError as exc:
            self._fail(exc)
            self.close()
        self._wake()

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._expecting and not self._done and self._error is None:
            if self._head is not None and self._framing == _CLOSE and exc is None:
                self._done = True  # the body ends where the connection does (cleanly: a reset is no end)
            elif not self._received_any:
                self._error = _Stale("server closed the connection without sending a response")
            else:
                self._error = httpx.RemoteProtocolError("server closed the connection mid-response")
        self._wake()

    # -- parsing ------------------------------------------------------------

    def _parse(self) -> None:
        while self._head is None:
            # Search only what is new (and the 3 bytes before it): a head
            # trickled a byte at a time must not cost quadratic time.
            end = _HEAD_END.search(self._buf, max(0, self._scanned - 3))
            if end is None:
                self._scanned = len(self._buf)
                if len(self._buf) > MAX_HEAD:
                    raise httpx.RemoteProtocolError(f"response head over {MAX_HEAD} bytes")
                return
            if end.start() > MAX_HEAD:
                raise httpx.RemoteProtocolError(f"response head over {MAX_HEAD} bytes")
            raw = bytes(self._buf[: end.start()])
            del self._buf[: end.end()]
            self._scanned = 0
            head = _parse_head(raw)
            if 100 <= head.status < 200:
                self._interim += 1
                if self._interim > MAX_INTERIM:
                    raise httpx.RemoteProtocolError(f"more than {MAX_INTERIM} interim (1xx) responses")
                continue  # interim (100 Continue, 103 Early Hints): the real one follows
            self._head = head
            self._chunk_state = _SIZE
            self._framing, self._remaining = _framing(head, self._method)
            if self._framing == _NONE:
                self._done = True
        if self._framing == _LENGTH:
            take = min(self._remaining, len(self._buf))
            if take:
                self._push(bytes(self._buf[:take]))
                del self._buf[:take]
                self._remaining -= take
            if self._remaining == 0:
                self._done = True
        elif self._framing == _CHUNKED:
            self._parse_chunked()
        elif self._framing == _CLOSE and self._buf:
            self._push(bytes(self._buf))
            self._buf.clear()
        if self._done and self._buf:
            self._head.keep_alive = False  # more than the response: do not reuse

    def _parse_chunked(self) -> None:
        buf = self._buf
        while not self._done:
            if self._chunk_state == _DATA:
                take = min(self._remaining, len(buf))
                if not take:
                    return
                self._push(bytes(buf[:take]))
                del buf[:take]
                self._remaining -= take
                if self._remaining:
                    return
                self._chunk_state = _DATA_END
                continue
            newline = buf.find(b"\n", 0, MAX_CHUNK_LINE + 1)
            if newline < 0:
                if len(buf) > MAX_CHUNK_LINE:
                    raise httpx.RemoteProtocolError("chunk header or trailer line too long")
                return
            line = bytes(buf[:newline]).rstrip(b"\r")
            del buf[: newline + 1]
            if self._chunk_state == _SIZE:
                size = line.split(b";", 1)[0].strip()
                if not _CHUNK_SIZE.fullmatch(size):
                    raise httpx.RemoteProtocolError(f"bad chunk size {size[:20]!r}")
                self._remaining = int(size, 16)
                self._chunk_state = _DATA if self._remaining else _TRAILER
            elif self._chunk_state == _DATA_END:
                if line:
                    raise httpx.RemoteProtocolError("chunk data longer than its size")
                self._chunk_state = _SIZE
            elif not line:  # _TRAILER: trailer fields are dropped; an empty line ends them
                self._done = True
            else:
                self._trailer += len(line)
                if self._trailer > MAX_HEAD:
                    raise httpx.RemoteProtocolError(f"trailer fields over {MAX_HEAD} bytes")

    def _push(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    # -- the consumer's side ---------------------------------------------------

    def _fail(self, exc: Exception) -> None:
        if self._error is None:
            self._error = exc

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _wait(self, timeout: float | None) -> None:
        # A bare timer on the waiter: asyncio.timeout() costs several times
        # more, and this runs at least once per request.
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = None if timeout is None else loop.call_later(timeout, _expire, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def send(self, method: bytes, data: bytes) -> None:
        assert self.transport is not None
        self._method = method
        self._expecting = True
        self._received_any = False
        self._head = None
        self._done = False
        self._error = None
        self._scanned = self._interim = self._trailer = 0
        self.transport.write(data)

    async def head(self, timeout: float | None) -> Head:
        while self._head is None:
            if self._error is not None:
                raise self._error
            await self._wait(timeout)
        return self._head

    async def chunk(self, timeout: float | None) -> bytes | None:
        """The next piece of the body; None at its end."""
        while True:
            if self._chunks:
                data = self._chunks.popleft()
                self._buffered -= len(data)
                if self._paused and self._buffered <= HIGH_WATER // 2 and self.transport is not None:
                    self._paused = False
                    self.transport.resume_reading()
                return data
            if self._error is not None:
                raise self._error
            if self._done:
                return None
            await self._wait(timeout)

    @property
    def reusable(self) -> bool:
        return (
            not self.closed
            and self.transport is not None
            and not self.transport.is_closing()
            and self._done
            and self._error is None
            and self._head is not None
            and self._head.keep_alive
            and not self._chunks
        )

    @property
    def in_use(self) -> bool:
        return self._expecting

    def finish(self, now: float) -> None:
        self._expecting = False
        self.idle_since = now

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(httpx.ReadTimeout("timed out waiting for the server"))


class _Stale(httpx.RemoteProtocolError):
    """The server closed the connection before answering: on a reused
    connection, the usual keep-alive race, and safe to retry for GET/HEAD."""


def _parse_head(raw: bytes) -> Head:
    lines = raw.replace(b"\r\n", b"\n").split(b"\n")  # CRLF, or a sloppy server's bare LF
    status = _STATUS.fullmatch(lines[0])
    if status is None:
        raise httpx.RemoteProtocolError(f"not an HTTP/1.x status line: {lines[0][:40]!r}")
    minor = status.group(1)
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t") and headers:  # obsolete folding: one value
            name, value = headers[-1]
            headers[-1] = (name, value + b" " + line.strip())
            continue
        name, colon, value = line.partition(b":")
        if not colon:
            raise httpx.RemoteProtocolError(f"malformed header line {line[:40]!r}")
        headers.append((name, value.strip()))
    # One search each over all names and all values (this runs for every response).
    if not _TOKENS.fullmatch(b"\n".join(name for name, _ in headers)):
        line = next(name for name, _ in headers if not _TOKEN.fullmatch(name))
        raise httpx.RemoteProtocolError(f"malformed header line {line[:40]!r}")
    if not _FIELD_VALUE.fullmatch(b"\t".join(value for _, value in headers)):  # tab is allowed in values
        name = next(name for name, value in headers if not _FIELD_VALUE.fullmatch(value))
        raise httpx.RemoteProtocolError(f"control character in the {name[:40]!r} header")
    keep_alive = minor == b"1"
    for name, value in headers:
        if len(name) == 10 and name.lower() == b"connection" and b"close" in value.lower():
            keep_alive = False
    return Head(b"HTTP/1." + minor, int(status.group(2)), status.group(3) or b"", headers, keep_alive)


def _framing(head: Head, method: bytes) -> tuple[int, int]:
    """How the body ends (RFC 9112 §6.3), and its length if known."""
    if method == b"HEAD" or head.status in (204, 304):
        return _NONE, 0
    lengths: set[bytes] = set()
    codings: list[bytes] = []
    for name, value in head.headers:
        lower = name.lower()
        if lower == b"transfer-encoding":
            codings += (c.strip().lower() for c in value.split(b","))
        elif lower == b"content-length":
            lengths.update(v.strip() for v in value.split(b","))
    if codings:
        # Every Transfer-Encoding line counts, and only plain "chunked" is
        # understood (as h11 does): anything else could frame the body two ways.
        if codings != [b"chunked"]:
            raise httpx.RemoteProtocolError(f"unsupported Transfer-Encoding {b', '.join(codings)[:40]!r}")
        if lengths:
            head.keep_alive = False  # both framings: chunked wins (RFC 9112 §6.3), never reuse
        return _CHUNKED, 0
    if lengths:
        if len(lengths) > 1 or not all(v.isdigit() for v in lengths):
            raise httpx.RemoteProtocolError(f"bad Content-Length {b', '.join(sorted(lengths))[:40]!r}")
        length = int(lengths.pop())
        return (_LENGTH, length) if length else (_NONE, 0)
    head.keep_alive = False
    return _CLOSE, 0


class Body(httpx.AsyncByteStream):
    """The response body; closing it returns the connection to the pool
    when the whole body was read, and closes it otherwise."""

    def __init__(self, transport: WireTransport, key: Origin, conn: _Connection, timeout: float | None):
        self._transport = transport
        self._key = key
        self._conn = conn
        self._timeout = timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (data := await self._conn.chunk(self._timeout)) is not None:
            yield data

    async def aclose(self) -> None:
        self._transport._release(self._key, self._conn)


class WireTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over asyncio, with idle connections kept per origin.

    It does not cap open connections: callers bound their own concurrency
    (``poll.concurrency``, one delivery at a time per webhook).  At most
    ``max_idle`` idle connections are kept per origin, each for
    ``KEEPALIVE_EXPIRY`` seconds.
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        max_idle: int = 8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ssl = ssl_context
        self._max_idle = max_idle
        self._clock = clock
        self._idle: dict[Origin, list[_Connection]] = {}
        self._next_sweep = 0.0
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}")
        timeouts = request.extensions.get("timeout", {})
        method = request.method.encode("ascii")
        head, body = await self.exchange(
            origin(url), method, await _serialise(request, method), timeouts.get("connect"), timeouts.get("read")
        )
        return httpx.Response(
            head.status,
            headers=head.headers,
            stream=body,
            extensions={"http_version": head.version, "reason_phrase": head.reason},
        )

    async def exchange(
        self, key: Origin, method: bytes, data: bytes, connect_timeout: float | None, read_timeout: float | None
    ) -> tuple[Head, Body]:
        """Send ``data`` (a whole request) to ``key``; the response's head,
        and its body to read and then close (which frees the connection)."""
        while True:
            conn, reused = self._checkout(key), True
            if conn is None:
                conn, reused = await self._connect(key, connect_timeout), False
            try:
                conn.send(method, data)
                head = await conn.head(read_timeout)
            except _Stale as exc:
                conn.close()
                if reused and method in (b"GET", b"HEAD"):
                    continue  # the server dropped an idle connection as we reused it
                raise httpx.RemoteProtocolError(str(exc)) from None
            except BaseException:
                conn.close()
                raise
            return head, Body(self, key, conn, read_timeout)

    def _checkout(self, key: Origin) -> _Connection | None:
        idle = self._idle.get(key)
        now = self._clock()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < KEEPALIVE_EXPIRY:
                return conn
            conn.close()
        return None

    async def _connect(self, key: Origin, timeout: float | None) -> _Connection:
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(
                    _Connection,
                    host,
                    port,
                    ssl=self._ssl if scheme == "https" else None,
                    server_hostname=host if scheme == "https" else None,
                    happy_eyeballs_delay=0.25,
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"could not connect to {host}:{port} in time") from None
        except ssl.SSLError as exc:
            raise httpx.ConnectError(f"TLS handshake with {host} failed: {exc.reason or exc}") from None
        except OSError as exc:
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
        return conn

    def _release(self, key: Origin, conn: _Connection) -> None:
        if not conn.in_use:
            return  # released already
        now = self._clock()
        conn.finish(now)
        if self._closed or not conn.reusable:
            conn.close()
            return
        idle = self._idle.setdefault(key, [])
        idle.append(conn)
        while len(idle) > self._max_idle:
            idle.pop(0).close()
        self._sweep(now)

    def _sweep(self, now: float) -> None:
        """Close expired idle connections of every origin, every
        ``KEEPALIVE_EXPIRY`` seconds: with one feed per host, an origin's
        connection would otherwise stay open until its next poll."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + KEEPALIVE_EXPIRY
        for key, idle in list(self._idle.items()):
            fresh = [c for c in idle if not c.closed and now - c.idle_since < KEEPALIVE_EXPIRY]
            for conn in idle:
                if conn not in fresh:
                    conn.close()
            if fresh:
                self._idle[key] = fresh
            else:
                del self._idle[key]

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()


async def _serialise(request: httpx.Request, method: bytes) -> bytes:
    """The request as bytes: a body is sent whole, framed by length."""
    body = b"".join([part async for part in request.stream])  # type: ignore[union-attr]
    lines = [method, b" ", request.url.raw_path, b" HTTP/1.1\r\n"]
    has_length = False
    check_headers(request.headers.raw)
    for name, value in request.headers.raw:
        lower = name.lower()
        if lower == b"transfer-encoding":
            continue  # the body is framed by its length below
        has_length = has_length or lower == b"content-length"
        lines += (name, b": ", value, b"\r\n")
    if body and not has_length:
        lines += (b"Content-Length: ", str(len(body)).encode(), b"\r\n")
    lines.append(b"\r\n")
    lines.append(body)
    return b"".join(lines)


def check_headers(fields: list[tuple[bytes, bytes]]) -> None:
    """A line break in a header would let its value write further headers
    (one search over all of them: this runs for every request)."""
    if _UNSAFE.search(b"".join(map(b"".join, fields))):
        name = next(name for name, value in fields if _UNSAFE.search(name + value))
        raise httpx.LocalProtocolError(f"line break in the request header {name[:40]!r}")
