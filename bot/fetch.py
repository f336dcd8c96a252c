"""HTTP manners: conditional GET for feeds, bounded GET for article pages.

One ``httpx.AsyncClient`` is made per process and reused (creating one costs
tens of milliseconds), on the lean transport of ``bot.wire``; a feed GET
goes to that transport directly (``_get_direct``: the same request,
redirects, limits and errors, for a fraction of the CPU).  Every response is
read as a stream and cut at a size limit, so a server cannot make us hold
100 MB; every request has a total deadline on top of the connect/read
timeouts, so a server that trickles bytes cannot hold a poll forever.

Errors become FetchError with a short message (status, timeout, refused);
the caller records them on the feed.
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import zlib
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from bot import __version__, guard
from bot.config import PollSettings
from bot.errors import FetchError
from bot.guard import AddressRefused, GuardedBackend, IsPublic, Policy, Resolver, is_public, resolve
from bot.wire import Origin, WireTransport, check_headers, origin

FEED_MAX_BYTES = 10 * 1024 * 1024
PAGE_MAX_BYTES = 5 * 1024 * 1024
MAX_REDIRECTS = 5
PER_HOST = 2  # article requests at a time to one host
FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
REDIRECTS = frozenset({301, 302, 303, 307, 308})
# What httpx reads from the environment (trust_env) to choose a proxy.
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@dataclass(frozen=True)
class Response:
    url: str  # after redirects
    status: int
    headers: dict[str, str]
    content: bytes

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")


@lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    """Loading the CA bundle costs ~15 ms: once per process."""
    return httpx.create_ssl_context()


class Client(httpx.AsyncClient):
    """httpx's client, plus the lean path for feed GETs (``get``).

    ``wire`` is set when no proxy is configured in the environment: the
    client's transport is then ``bot.wire``'s, and a feed GET goes to it
    directly, skipping the client's request and response models, cookie jar
    and event hooks (about half of the CPU of a 304; BENCHMARKS.md).  With
    a proxy, httpx makes its own transports and everything goes through them.
    """

    wire: WireTransport | None = None


def make_client(
    settings: PollSettings, transport: httpx.AsyncBaseTransport | None = None, follow_redirects: bool = True
) -> Client:
    seconds = settings.timeout.total_seconds()
    # httpx honours proxy variables only when it makes its own transport.
    own = transport is None and not _proxied()
    wire = WireTransport(_ssl_context(), max_idle=settings.concurrency) if own else None
    client = Client(
        verify=_ssl_context(),
        timeout=httpx.Timeout(seconds, connect=min(seconds, 10.0)),
        follow_redirects=follow_redirects,
        max_redirects=MAX_REDIRECTS,
        # Only what _read can inflate within its limit.
        headers={"User-Agent": settings.user_agent.format(version=__version__), "Accept-Encoding": "gzip, deflate"},
        limits=httpx.Limits(max_connections=settings.concurrency * 2, max_keepalive_connections=settings.concurrency),
        # Feeds and webhooks: the lean HTTP/1.1 transport (bot/wire.py says why).
        transport=transport or wire,
    )
    client.wire = wire
    return client


def _proxied() -> bool:
    """Whether httpx's client would route some request through a proxy."""
    return any(os.environ.get(name) for name in PROXY_VARIABLES)


async def _read(chunks: AsyncIterator[bytes], headers: Mapping[str, str], max_bytes: int) -> bytes:
    """The body, but never more than ``max_bytes``: the rest is not read.

    Compressed bodies are inflated here, never more than the limit at a
    time: httpx would inflate a 64 KB chunk of a gzip bomb to 64 MB at once.
    """
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(f"response too large ({int(declared)} bytes, limit {max_bytes})")
    inflate = _inflater(headers.get("content-encoding", ""))
    parts: list[bytes] = []
    size = 0
    async for raw in chunks:
        pending = raw
        while pending:
            if inflate is None:
                chunk, pending = pending, b""
            else:
                chunk = inflate.decompress(pending, max_bytes + 1 - size)
                pending = inflate.unconsumed_tail
            size += len(chunk)
            if size > max_bytes:
                raise FetchError(f"response too large (over {max_bytes} bytes)")
            parts.append(chunk)
    if inflate is not None:
        parts.append(inflate.flush())
    return b"".join(parts)


def _inflater(encoding: str) -> zlib._Decompress | None:
    coding = encoding.strip().lower()
    if coding in ("", "identity"):
        return None
    if coding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if coding == "deflate":
        return zlib.decompressobj()
    raise FetchError(f"unsupported Content-Encoding {encoding!r}")


@contextmanager
def _errors(deadline: float) -> Iterator[None]:
    """httpx's exceptions as one-sentence FetchErrors."""
    try:
        yield
    except TimeoutError:
        raise FetchError(f"no complete response within {deadline:g}s") from None
    except httpx.TimeoutException:
        raise FetchError("timed out") from None
    except httpx.TooManyRedirects:
        raise FetchError(f"more than {MAX_REDIRECTS} redirects") from None
    except httpx.UnsupportedProtocol:
        raise FetchError("redirected to a URL that is not http(s)") from None
    except httpx.DecodingError:
        raise FetchError("response body could not be decoded (bad compression)") from None
    except httpx.HTTPError as exc:
        raise FetchError(f"request failed: {_describe(exc)}") from None


async def get(
    client: httpx.AsyncClient,
    url: str,
    *,
    headers: dict[str, str],
    max_bytes: int,
    deadline: float,
) -> Response:
    """GET ``url``: the whole body up to ``max_bytes``, within ``deadline`` seconds."""
    with _errors(deadline):
        async with asyncio.timeout(deadline):
            if isinstance(client, Client) and client.wire is not None:
                return await _get_direct(client, client.wire, url, headers, max_bytes)
            # Values as bytes: httpx would encode a str as ASCII, and a stored ETag may not be.
            raw = {name.encode("ascii"): header_bytes(value) for name, value in headers.items()}
            async with client.stream("GET", url, headers=raw) as r:
                if r.status_code == 304:
                    await r.aread()  # so the connection goes back to the pool
                    return Response(str(r.url), 304, dict(r.headers), b"")
                _raise_for_status(r.status_code, r.reason_phrase, r.headers)
                return Response(
                    str(r.url), r.status_code, dict(r.headers), await _read(r.aiter_raw(), r.headers, max_bytes)
                )


async def _get_direct(
    client: httpx.AsyncClient, wire: WireTransport, url: str, headers: dict[str, str], max_bytes: int
) -> Response:
    """``get`` on the transport itself: the same request bytes, redirects,
    credentials, limits and errors as through the client, without its
    per-request models.  Cookies set by a redirect are sent on the following
    hops to that host (a cookie check), and not kept after the request."""
    extra = [(name.encode("ascii"), header_bytes(value)) for name, value in headers.items()]
    overridden = {name.lower() for name, _ in extra}
    fields = [(k, v) for k, v in client.headers.raw if k.lower() not in overridden] + extra
    check_headers(fields)
    auth: tuple[Origin, bytes] | None = None  # an Authorization line, and the origin it is for
    cookies: dict[str, dict[bytes, bytes]] = {}  # host -> name -> value, from redirects
    hops = client.max_redirects if client.follow_redirects else 0
    for hop in range(hops + 1):
        target = _target(url)
        if target is None:
            raise FetchError("redirected to a URL that is not http(s)" if hop else f"not an http(s) URL: {url[:100]}")
        key, request_line, credentials = target
        if credentials:
            auth = (key, credentials)
        lines = [request_line]
        if auth is not None and _keeps_auth(auth[0], key):
            lines.append(auth[1])
        if key[1] in cookies:
            lines.append(b"Cookie: " + b"; ".join(n + b"=" + v for n, v in cookies[key[1]].items()) + b"\r\n")
        for name, value in fields:
            lines += (name, b": ", value, b"\r\n")
        lines.append(b"\r\n")
        timeout = client.timeout
        head, body = await wire.exchange(key, b"GET", b"".join(lines), timeout.connect, timeout.read)
        try:
            location = _location(head.headers) if head.status in REDIRECTS else None
            if location is not None and hop < hops:
                _remember_cookies(head.headers, cookies.setdefault(key[1], {}))
                url = urljoin(url, location)
                continue
            if location is not None and client.follow_redirects:
                break
            found = _header_dict(head.headers)
            if head.status == 304:
                return Response(url, 304, found, b"")
            _raise_for_status(head.status, head.reason.decode("latin-1"), found)
            return Response(url, head.status, found, await _read(aiter(body), found, max_bytes))
        finally:
            await body.aclose()
    raise FetchError(f"more than {hops} redirects")


def header_bytes(value: str) -> bytes:
    """A header value as it goes out: Latin-1 (how the direct path decodes
    what comes in, byte for byte), else UTF-8."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def _keeps_auth(source: Origin, target: Origin) -> bool:
    """As httpx: credentials go to their own origin, and along the usual
    upgrade of the same host from http (port 80) to https (port 443)."""
    upgrade = source[0] == "http" and target[0] == "https" and source[2] == 80 and target[2] == 443
    return source == target or (upgrade and source[1] == target[1])


def _location(fields: list[tuple[bytes, bytes]]) -> str | None:
    """The Location header; UTF-8 as httpx reads it (a raw non-ASCII path),
    else Latin-1."""
    for name, value in fields:
        if name.lower() == b"location":
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                return value.decode("latin-1")
    return None


def _remember_cookies(fields: list[tuple[bytes, bytes]], jar: dict[bytes, bytes]) -> None:
    for name, value in fields:
        if name.lower() == b"set-cookie":
            pair = value.split(b";", 1)[0]
            cookie, equals, content = pair.partition(b"=")
            if equals and cookie.strip():
                jar[cookie.strip()] = content.strip()


@lru_cache(maxsize=4096)
def _target(url: str) -> tuple[Origin, bytes, bytes] | None:
    """Where a URL goes, its request line and Host, and the Authorization
    line for credentials in it (as httpx sends them); None if it is not
    http(s).  Cached: each feed's URL is parsed once per process, not once
    per poll."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return None
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        return None
    line = b"GET " + parsed.raw_path + b" HTTP/1.1\r\nHost: " + parsed.netloc + b"\r\n"
    auth = b""
    if parsed.username or parsed.password:
        userpass = f"{parsed.username}:{parsed.password}".encode()
        auth = b"Authorization: Basic " + base64.b64encode(userpass) + b"\r\n"
    return origin(parsed), line, auth


def _header_dict(fields: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Lower-cased names; repeated fields joined with ", " (as httpx does).
    Latin-1 maps every byte to one character, so an ETag goes back as it came."""
    found: dict[str, str] = {}
    for name, value in fields:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        found[key] = f"{found[key]}, {text}" if key in found else text
    return found


def _raise_for_status(status: int, reason: str, headers: Mapping[str, str]) -> None:
    if status >= 400:
        wait = _retry_after(headers.get("retry-after", "")) if status in (429, 503) else None
        reason = reason or httpx.codes.get_reason_phrase(status)
        raise FetchError(f"HTTP {status} {reason}".strip(), status, wait)


def _retry_after(value: str) -> float | None:
    """``Retry-After``: seconds, or an HTTP date."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _describe(exc: httpx.HTTPError) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


async def fetch_feed(
    client: httpx.AsyncClient, url: str, etag: str | None, last_modified: str | None, deadline: float
) -> Response:
    """Conditional GET: an unchanged feed answers 304 and costs no parse."""
    headers = {"Accept": FEED_ACCEPT}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return await get(client, url, headers=headers, max_bytes=FEED_MAX_BYTES, deadline=deadline)


class PageFetcher:
    """Article pages: polite (at most ``PER_HOST`` at a time per host and
    ``concurrency`` overall) and safe (public addresses only, see
    ``bot.guard``; http(s) only; at most ``MAX_REDIRECTS`` redirects, each
    hop checked; ``PAGE_MAX_BYTES``; a total deadline per page).

    It has its own client, so that no connection opened for a feed is
    reused for an article link.
    """

    def __init__(
        self,
        settings: PollSettings,
        resolver: Resolver = resolve,
        public: IsPublic = is_public,
    ) -> None:
        self.settings = settings
        self.resolver = resolver
        self.public = public
        self.client = make_client(settings, _guarded_transport(settings, resolver), follow_redirects=False)
        self._total = asyncio.Semaphore(settings.concurrency)
        self._hosts: defaultdict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(PER_HOST))

    async def aclose(self) -> None:
        await self.client.aclose()

    async def fetch(self, url: str, feed_url: str, deadline: float) -> Response:
        host = (urlsplit(url).hostname or "").lower()
        policy = Policy(
            allow_private=self.settings.allow_private_addresses,
            own_hosts=frozenset({(urlsplit(feed_url).hostname or "").lower()}),
            public=self.public,
        )
        token = guard.current.set(policy)
        try:
            async with self._total, self._hosts[host]:
                with _errors(deadline):
                    async with asyncio.timeout(deadline):
                        return await self._follow(url, policy)
        finally:
            guard.current.reset(token)

    async def _follow(self, url: str, policy: Policy) -> Response:
        for _hop in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise FetchError("redirected to a URL that is not http(s)")
            try:
                policy.check(parts.hostname, await self.resolver(parts.hostname, parts.port or 443))
            except AddressRefused as exc:
                raise FetchError(f"refused: {exc}") from None
            except OSError as exc:
                raise FetchError(f"request failed: cannot resolve {parts.hostname} ({exc.strerror or exc})") from None
            request = self.client.build_request("GET", url, headers={"Accept": PAGE_ACCEPT})
            r = await self.client.send(request, stream=True)
            try:
                if r.is_redirect and "location" in r.headers:
                    url = urljoin(url, r.headers["location"])
                    continue
                _raise_for_status(r.status_code, r.reason_phrase, r.headers)
                return Response(
                    str(r.url), r.status_code, dict(r.headers), await _read(r.aiter_raw(), r.headers, PAGE_MAX_BYTES)
                )
            finally:
                await r.aclose()
        raise FetchError(f"more than {MAX_REDIRECTS} redirects")


def _guarded_transport(settings: PollSettings, resolver: Resolver) -> httpx.AsyncHTTPTransport:
    # verify= the shared context: without it httpx would load the CA bundle again.
    transport = httpx.AsyncHTTPTransport(verify=_ssl_context(), retries=0)
    # httpx has no public hook for the network backend; the pool it builds is
    # replaced by the same pool on the guarded backend (httpx is pinned <0.29).
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=_ssl_context(),
        max_connections=settings.concurrency * 2,
        max_keepalive_connections=settings.concurrency,
        keepalive_expiry=5.0,
        network_backend=GuardedBackend(resolver),
    )
    return transport
