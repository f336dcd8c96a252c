"""HTTP manners: conditional GET for feeds, bounded GET for article pages.

Every request goes through one stack: httpx's client on aiohttp's protocol
(``bot.transport``, chosen by measurement: ``bench/http_compare.py``).  One
client is made per process and reused for feeds and webhooks; article
pages have their own guarded clients (``PageFetcher``), so that no
connection opened for a feed is reused for a link a feed supplied.

Every response is read as a stream and cut at a size limit, compressed
bodies inflated within that limit, so a server cannot make us hold 100 MB;
every request has a total deadline on top of the connect/read timeouts, so
a server that trickles bytes cannot hold a poll forever.  Whatever goes
wrong (a refused connection, a malformed URL or redirect, a reply the
parser rejects, a body that says gzip and is not) becomes a ``FetchError``
with a one-sentence message; the caller records it on the feed or item.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from functools import lru_cache

import httpx

from bot import __version__, guard
from bot.config import PollSettings
from bot.errors import FetchError
from bot.guard import (
    AddressRefused,
    GuardedResolver,
    IsPublic,
    Policy,
    Resolver,
    is_loopback,
    is_public,
    origin_of,
    resolve,
)
from bot.health import retry_after_seconds
from bot.text import collapse, shown
from bot.transport import Client

FEED_MAX_BYTES = 10 * 1024 * 1024
PAGE_MAX_BYTES = 5 * 1024 * 1024
MAX_REDIRECTS = 5
PER_HOST = 2  # article requests at a time to one host
REASON_MAX = 80  # characters of a server's reason phrase kept in an error
FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"


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


def make_client(
    settings: PollSettings,
    *,
    resolver: GuardedResolver | None = None,
    reuse_connections: bool = True,
    follow_redirects: bool = True,
) -> Client:
    """The client for feeds and webhooks (or, with a ``resolver``, for pages).

    Page clients take no proxy from the environment: a proxy would make the
    connection the guard checks, to an address it never sees."""
    seconds = settings.timeout.total_seconds()
    return Client(
        trust_env=resolver is None,
        transport_options={
            "ssl_context": _ssl_context(),
            "max_connections": settings.concurrency * 2,
            "keepalive_expiry": 5.0,
            "resolver": resolver,
            "reuse_connections": reuse_connections,
        },
        verify=_ssl_context(),
        timeout=httpx.Timeout(seconds, connect=min(seconds, 10.0)),
        follow_redirects=follow_redirects,
        max_redirects=MAX_REDIRECTS,
        # Only what read_limited can inflate within its limit.
        headers={"User-Agent": settings.user_agent.format(version=__version__), "Accept-Encoding": "gzip, deflate"},
    )


async def read_limited(chunks: AsyncIterator[bytes], headers: Mapping[str, str], max_bytes: int) -> bytes:
    """The body, but never more than ``max_bytes``: the rest is not read.

    Compressed bodies are inflated here, never more than the limit at a
    time: httpx would inflate a 64 KB chunk of a gzip bomb to 64 MB at once.
    """
    declared = headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and (len(declared) > 15 or int(declared) > max_bytes):
        raise FetchError(f"response too large ({declared[:16]} bytes, limit {max_bytes})")
    inflate = _inflater(headers.get("content-encoding", ""))
    parts: list[bytes] = []
    size = 0
    try:
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
            tail = inflate.flush()  # what the decoder still held: the input is all in
            if size + len(tail) > max_bytes:
                raise FetchError(f"response too large (over {max_bytes} bytes)")
            parts.append(tail)
    except zlib.error:
        raise FetchError("response body could not be decoded (bad compression)") from None
    return b"".join(parts)


def _inflater(encoding: str) -> zlib._Decompress | None:
    coding = encoding.strip().lower()
    if coding in ("", "identity"):
        return None
    if coding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if coding == "deflate":
        return zlib.decompressobj()
    raise FetchError(f"unsupported Content-Encoding {short(encoding)!r}")


def short(text: str, limit: int = REASON_MAX) -> str:
    """A server's text for an error: one line, printable, cut to ``limit``."""
    return shown(collapse(text[: limit * 4]), limit)


@contextmanager
def _errors(deadline: float) -> Iterator[None]:
    """What a request can raise, as one-sentence FetchErrors."""
    try:
        yield
    except TimeoutError:
        raise FetchError(f"no complete response within {deadline:g}s") from None
    except httpx.TimeoutException:
        raise FetchError("timed out") from None
    except httpx.TooManyRedirects:
        raise FetchError(f"more than {MAX_REDIRECTS} redirects") from None
    except httpx.UnsupportedProtocol as exc:
        raise FetchError(f"not an http(s) URL ({short(str(exc))})") from None
    except httpx.DecodingError:
        raise FetchError("response body could not be decoded (bad compression)") from None
    except httpx.InvalidURL as exc:
        raise FetchError(f"invalid URL ({short(str(exc))})") from None
    except httpx.HTTPError as exc:
        raise FetchError(f"request failed: {short(str(exc) or type(exc).__name__, 200)}") from None
    except (ValueError, UnicodeError) as exc:
        # httpx and yarl refuse some URLs with plain ValueErrors (a port
        # above 65535, a bracket left open, a tab in a redirect).
        raise FetchError(f"invalid URL ({short(str(exc))})") from None


def header_bytes(value: str) -> bytes:
    """A header value as it goes out: Latin-1 (an ETag comes back byte for
    byte as it came), else UTF-8."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


async def get(
    client: httpx.AsyncClient,
    url: str,
    *,
    headers: dict[str, str],
    max_bytes: int,
    deadline: float,
) -> Response:
    """GET ``url``: the whole body up to ``max_bytes``, within ``deadline`` seconds."""
    raw = {name.encode("ascii"): header_bytes(value) for name, value in headers.items()}
    with _errors(deadline):
        async with asyncio.timeout(deadline), client.stream("GET", _url(url), headers=raw) as r:
            return await _response(r, max_bytes)


@lru_cache(maxsize=4096)
def _url(url: str) -> httpx.URL:
    """Each feed's URL parsed once per process, not once per poll (httpx's
    URL parser is a tenth of the CPU of a 304)."""
    return httpx.URL(url)


def _header_dict(headers: httpx.Headers) -> dict[str, str]:
    """Lower-cased names, repeated fields joined with ", " (as httpx's own
    lookup does), in one pass: ``dict(headers)`` looks each name up again."""
    found: dict[str, str] = {}
    for name, value in headers.raw:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        found[key] = f"{found[key]}, {text}" if key in found else text
    return found


async def _response(r: httpx.Response, max_bytes: int) -> Response:
    headers = _header_dict(r.headers)
    if r.status_code == 304:
        await r.aclose()
        return Response(str(r.url), 304, headers, b"")
    _raise_for_status(r.status_code, r.reason_phrase, headers)
    content = await read_limited(r.aiter_raw(), headers, max_bytes)
    return Response(str(r.url), r.status_code, headers, content)


def _raise_for_status(status: int, reason: str, headers: Mapping[str, str]) -> None:
    if status >= 400:
        wait = retry_after_seconds(headers.get("retry-after", "")) if status in (429, 503) else None
        reason = short(reason) or httpx.codes.get_reason_phrase(status)
        raise FetchError(f"HTTP {status} {reason}".strip(), status, wait)


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
    ``concurrency`` overall) and safe (``bot.guard``: the addresses of every
    connection checked where it is made, at every redirect hop; http(s)
    only; at most ``MAX_REDIRECTS`` redirects; ``PAGE_MAX_BYTES``; a total
    deadline per page).

    Two clients, so that a kept-alive connection is never reused under a
    looser rule than the one it was opened under: ``public`` pools
    connections to public addresses only; ``own`` serves a feed's own
    origin, whose address may be private, and keeps no connection.
    """

    def __init__(
        self,
        settings: PollSettings,
        resolver: Resolver = resolve,
        public: IsPublic = is_public,
        loopback: IsPublic = is_loopback,
    ) -> None:
        self.settings = settings
        self.is_public = public
        self.is_loopback = loopback
        self.public = make_client(settings, resolver=GuardedResolver(resolver), follow_redirects=False)
        self.own = make_client(
            settings,
            resolver=GuardedResolver(resolver, own_origin=True),
            reuse_connections=False,
            follow_redirects=False,
        )
        self._total = asyncio.Semaphore(settings.concurrency)
        self._hosts: dict[str, tuple[asyncio.Semaphore, int]] = {}  # host -> (bound, users)

    async def aclose(self) -> None:
        await self.public.aclose()
        await self.own.aclose()

    async def fetch(self, url: str, feed_url: str, deadline: float) -> Response:
        policy = Policy.for_feed(
            feed_url,
            allow_private=self.settings.allow_private_addresses,
            public=self.is_public,
            loopback=self.is_loopback,
        )
        token = guard.current.set(policy)
        try:
            with _errors(deadline):
                target = httpx.URL(url)
                # The host's turn first, then a slot of the total: a fetch
                # waiting for a busy host holds no slot another feed's page
                # could use.  The deadline counts from the fetch's own turn.
                async with self._per_host(target.host), self._total, asyncio.timeout(deadline):
                    return await self._follow(target, policy)
        except AddressRefused as exc:
            raise FetchError(f"refused: {exc}") from None
        finally:
            guard.current.reset(token)

    @asynccontextmanager
    async def _per_host(self, host: str) -> AsyncIterator[None]:
        bound, users = self._hosts.get(host) or (asyncio.Semaphore(PER_HOST), 0)
        self._hosts[host] = (bound, users + 1)
        try:
            async with bound:
                yield
        finally:
            bound, users = self._hosts[host]
            if users > 1:
                self._hosts[host] = (bound, users - 1)
            else:
                del self._hosts[host]  # no table of every host ever linked

    async def _follow(self, url: httpx.URL, policy: Policy) -> Response:
        request = self.public.build_request("GET", url, headers={"Accept": PAGE_ACCEPT})
        for _hop in range(MAX_REDIRECTS + 1):
            target = request.url
            if target.scheme not in ("http", "https") or not target.host:
                raise FetchError(f"not an http(s) URL ({short(target.scheme, 20)}:)")
            own = policy.is_own(target)
            policy.check_literal(target.host, origin_of(target)[2], own_origin=own)
            r = await (self.own if own else self.public).send(request, follow_redirects=False, stream=True)
            try:
                if r.is_redirect and r.next_request is not None:
                    request = r.next_request
                    continue
                return await _response(r, PAGE_MAX_BYTES)
            finally:
                await r.aclose()
        raise FetchError(f"more than {MAX_REDIRECTS} redirects")
