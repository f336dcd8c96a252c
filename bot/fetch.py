"""HTTP manners: conditional GET for feeds, bounded GET for article pages.

Every request goes through one stack: httpx's client on aiohttp's protocol
(``bot.transport``, chosen by measurement: ``bench/http_compare.py``).  One
client is made per process and reused for feeds and webhooks; article
pages have their own guarded clients (``PageFetcher``), so that no
connection opened for a feed is reused for a link a feed supplied.

Redirects are followed here, hop by hop (issue 24): a hop on the origin the
user gave (a feed's ``url``, the address typed after ``feedbot add``) goes
through the feed client, any other hop through the guarded clients, under
the one address policy of ``bot.guard``.  Cookies live for one fetch: what
a redirect sets is sent on the next hop, nothing is kept for the next poll
or shown to another feed, and a cookie no request could carry is dropped
with a warning.  A validator (ETag, Last-Modified) no request could carry
back is neither sent nor kept (``validator``), so it cannot brick its feed.

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
import logging
import ssl
import zlib
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from functools import lru_cache

import httpx

from bot import __version__, guard, tls
from bot.config import PollSettings
from bot.errors import FetchError
from bot.guard import (
    AddressRefused,
    GuardedResolver,
    IsPublic,
    Origin,
    Policy,
    Resolver,
    is_loopback,
    is_public,
    origin_of,
    resolve,
)
from bot.health import retry_after_seconds
from bot.secrets import without_credentials
from bot.text import collapse, shown
from bot.transport import Client, sendable

FEED_MAX_BYTES = 10 * 1024 * 1024
PAGE_MAX_BYTES = 5 * 1024 * 1024
MAX_REDIRECTS = 5
PER_HOST = 2  # article requests at a time to one host
REASON_MAX = 80  # characters of a server's reason phrase kept in an error
FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
WARNED_MAX = 4096  # the warnings said once per process: a bounded memory of them

log = logging.getLogger("feedbot.fetch")


@dataclass(frozen=True)
class Response:
    url: str  # after redirects
    status: int
    headers: dict[str, str]
    content: bytes

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")


def _ssl_context() -> ssl.SSLContext:
    """Loading the CA bundle costs ~50 ms: once per process, and only for a
    run that makes an HTTPS request (``bot.tls``)."""
    return tls.context()


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
            "ssl_context": tls.context,  # built on the first HTTPS request
            "max_connections": settings.concurrency * 2,
            "keepalive_expiry": 5.0,
            "resolver": resolver,
            "reuse_connections": reuse_connections,
        },
        # No ``verify``: httpx hands it only to the transports it would make,
        # and every transport here is an AiohttpTransport with the context above.
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


_warned: set[str] = set()


def _warn_once(key: str, message: str, *args: object) -> None:
    """A warning about a server's lasting habit, once per process (not once
    per poll of a feed polled every few minutes)."""
    if key in _warned:
        return
    if len(_warned) >= WARNED_MAX:
        _warned.clear()
    _warned.add(key)
    log.warning(message, *args)


def validator(url: str, name: str, value: str | None) -> str | None:
    """``value`` if a request can carry it back as ``name`` (ETag,
    Last-Modified), else None, with a warning once per feed and header.

    A validator with a control character was stored and sent back, and
    every later poll failed before anything went out, even after the
    server was fixed (issue 24)."""
    if not value:
        return None
    if sendable(header_bytes(value)):
        return value
    _warn_once(
        f"{url}\n{name}",
        "feed %s: its %s holds a control character or bytes a request cannot carry back: not kept,"
        " the feed is polled without it",
        without_credentials(url),
        name,
    )
    return None


def _cookie_ok(text: str) -> bool:
    """Printable ASCII: what a Cookie header carries (RFC 6265's cookie-octets and a little more)."""
    return text.isascii() and text.isprintable()


class _Jar:
    """The cookies of one fetch: what a redirect sets is sent on the next
    hop (consent walls work so), and nothing outlives the fetch.  One jar
    for every feed let one feed's cookie fail every other feed of its host
    (issue 24); one kept across polls would carry a site's tracking state
    from poll to poll for nothing a feed needs."""

    def __init__(self) -> None:
        self.cookies: httpx.Cookies | None = None

    def take(self, response: httpx.Response) -> None:
        # On the raw pairs: httpx's ``in`` first works out the encoding of
        # every header of the response, on every poll.
        if all(name.lower() != b"set-cookie" for name, _ in response.headers.raw):
            return
        if self.cookies is None:
            self.cookies = httpx.Cookies()
        try:
            self.cookies.extract_cookies(response)
        except Exception:  # http.cookiejar on a header nobody foresaw: no cookie, not a failed fetch
            log.warning("cookies from %s ignored: they could not be read", response.url.host)
            self.cookies = None
            return
        for cookie in list(self.cookies.jar):
            if not (_cookie_ok(cookie.name) and _cookie_ok(cookie.value or "")):
                self.cookies.jar.clear(cookie.domain, cookie.path, cookie.name)
                _warn_once(
                    f"cookie\n{response.url.host}\n{cookie.name}",
                    "cookie %r from %s dropped: its value holds characters a request cannot carry",
                    short(cookie.name, 40),
                    response.url.host,
                )

    def give(self, request: httpx.Request) -> None:
        if self.cookies:
            self.cookies.set_cookie_header(request)


async def get(
    client: httpx.AsyncClient,
    url: str,
    *,
    headers: dict[str, str],
    max_bytes: int,
    deadline: float,
    pages: PageFetcher | None = None,
    given: str | None = None,
) -> Response:
    """GET ``url``: the whole body up to ``max_bytes``, within ``deadline`` seconds.

    ``url`` is the user's (a feed's, or one on the origin of ``given``, the
    address typed after ``feedbot add``): hops on that origin go through
    ``client``, any other through ``pages``' guarded clients (made for the
    occasion, with the default policy, if not given)."""
    raw = {name.encode("ascii"): header_bytes(value) for name, value in headers.items()}
    guard_clients = pages if pages is not None else PageFetcher(PollSettings())
    try:
        return await guard_clients.follow(url, given or url, raw, max_bytes, deadline, trusted=client)
    finally:
        if pages is None:
            await guard_clients.aclose()


@lru_cache(maxsize=4096)
def _url(url: str) -> httpx.URL:
    """Each feed's URL parsed once per process, not once per poll (httpx's
    URL parser is a tenth of the CPU of a 304)."""
    return httpx.URL(url)


def _get_request(client: httpx.AsyncClient, url: httpx.URL, headers: Mapping[bytes, bytes]) -> httpx.Request:
    """``client.build_request("GET", url, headers=headers)``, the same request
    made without its merges (of the client's URL, query, cookies and headers,
    each copied into new httpx objects): they were a fifth of the CPU of a
    304 poll.  feedbot's clients have no base URL, query or cookies of their
    own (``transport._Cookies``); a relative URL, or a client that has them,
    takes httpx's own way."""
    if url.is_relative_url or client.params or client.cookies or not isinstance(client.timeout, httpx.Timeout):
        return client.build_request("GET", url, headers=headers)
    given = {name.lower() for name in headers}
    raw = [(name, value) for name, value in client.headers.raw if name.lower() not in given]
    raw.extend(headers.items())
    # As httpx's Request adds it to a request it makes the body of (given a
    # stream, the body being empty, it adds no header and builds none twice).
    if all(name.lower() != b"host" for name, _ in raw):
        raw.insert(0, (b"Host", url.netloc))
    return httpx.Request("GET", url, headers=raw, stream=_NO_BODY, extensions={"timeout": client.timeout.as_dict()})


_NO_BODY = httpx.ByteStream(b"")  # immutable: one for every GET


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
    client: httpx.AsyncClient,
    url: str,
    etag: str | None,
    last_modified: str | None,
    deadline: float,
    pages: PageFetcher | None = None,
    given: str | None = None,
) -> Response:
    """Conditional GET: an unchanged feed answers 304 and costs no parse.

    A stored validator no request can carry (one an older feedbot kept) is
    left out: the feed answers in full, and its new validators replace it."""
    headers = {"Accept": FEED_ACCEPT}
    etag = validator(url, "ETag", etag)
    last_modified = validator(url, "Last-Modified", last_modified)
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return await get(
        client, url, headers=headers, max_bytes=FEED_MAX_BYTES, deadline=deadline, pages=pages, given=given
    )


class PageFetcher:
    """The guarded side of fetching: article pages, and every hop of a feed
    or of discovery that leaves the address the user gave.

    Article pages: polite (at most ``PER_HOST`` at a time per host and
    ``concurrency`` overall) and safe (``bot.guard``: the addresses of every
    connection checked where it is made, at every redirect hop; http(s)
    only; at most ``MAX_REDIRECTS`` redirects; ``PAGE_MAX_BYTES``; a total
    deadline per page).

    Two clients, so that a kept-alive connection is never reused under a
    looser rule than the one it was opened under: ``public`` pools
    connections to public addresses only; ``own`` serves a feed's own
    origin, whose address may be private, and keeps no connection.  Each
    is made on first use: most polls never leave their feed's origin.
    """

    def __init__(
        self,
        settings: PollSettings,
        resolver: Resolver = resolve,
        public: IsPublic = is_public,
        loopback: IsPublic = is_loopback,
    ) -> None:
        self.settings = settings
        self.resolver = resolver
        self.is_public = public
        self.is_loopback = loopback
        self._public: Client | None = None
        self._own: Client | None = None
        self._total = asyncio.Semaphore(settings.concurrency)
        self._hosts: dict[str, tuple[asyncio.Semaphore, int]] = {}  # host -> (bound, users)

    @property
    def public(self) -> Client:
        if self._public is None:
            self._public = make_client(self.settings, resolver=GuardedResolver(self.resolver), follow_redirects=False)
        return self._public

    @property
    def own(self) -> Client:
        if self._own is None:
            self._own = make_client(
                self.settings,
                resolver=GuardedResolver(self.resolver, own_origin=True),
                reuse_connections=False,
                follow_redirects=False,
            )
        return self._own

    async def aclose(self) -> None:
        for client in (self._public, self._own):
            if client is not None:
                await client.aclose()

    def policy(self, origin_url: str) -> Policy:
        """The policy of a fetch for ``origin_url`` (the item's feed, or the
        address the user gave)."""
        try:
            own: Origin | None = origin_of(_url(origin_url))  # parsed once per process, as feed URLs are
        except (httpx.InvalidURL, ValueError):
            own = None
        return Policy(self.settings.allow_private_addresses, own, self.is_public, self.is_loopback)

    async def fetch(self, url: str, feed_url: str, deadline: float) -> Response:
        """An article page ``url`` linked by the feed at ``feed_url``."""
        with _errors(deadline):
            host = httpx.URL(url).host
        # The host's turn first, then a slot of the total: a fetch waiting for
        # a busy host holds no slot another feed's page could use.  The
        # deadline counts from the fetch's own turn.
        async with self._per_host(host), self._total:
            raw = {b"Accept": PAGE_ACCEPT.encode("ascii")}
            return await self.follow(url, feed_url, raw, PAGE_MAX_BYTES, deadline)

    async def follow(
        self,
        url: str,
        origin_url: str,
        headers: Mapping[bytes, bytes],
        max_bytes: int,
        deadline: float,
        trusted: httpx.AsyncClient | None = None,
    ) -> Response:
        """GET ``url``, following its redirects hop by hop under the policy
        for ``origin_url``.  ``trusted``: the client for hops on that origin,
        which the user gave (any address, the environment's proxy); without
        it, that origin's hops go through ``own`` (the article-page rule)."""
        policy = self.policy(origin_url)
        token = guard.current.set(policy)
        try:
            with _errors(deadline):
                async with asyncio.timeout(deadline):
                    return await self._follow(_url(url), policy, headers, max_bytes, trusted)
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

    async def _follow(
        self,
        url: httpx.URL,
        policy: Policy,
        headers: Mapping[bytes, bytes],
        max_bytes: int,
        trusted: httpx.AsyncClient | None,
    ) -> Response:
        jar = _Jar()
        first = trusted if trusted is not None and policy.is_own(url) else self.public
        request = _get_request(first, url, headers)
        for _hop in range(MAX_REDIRECTS + 1):
            target = request.url
            if target.scheme not in ("http", "https") or not target.host:
                raise FetchError(f"not an http(s) URL ({short(target.scheme, 20)}:)")
            client = await self._client_for(target, policy, trusted)
            jar.give(request)
            r = (
                await client.send_hop(request)
                if isinstance(client, Client)
                else await client.send(request, follow_redirects=False, stream=True)
            )
            try:
                jar.take(r)
                if r.is_redirect and r.next_request is not None:
                    request = r.next_request
                    continue
                return await _response(r, max_bytes)
            finally:
                await r.aclose()
        raise FetchError(f"more than {MAX_REDIRECTS} redirects")

    async def _client_for(
        self, target: httpx.URL, policy: Policy, trusted: httpx.AsyncClient | None
    ) -> httpx.AsyncClient:
        """The client a hop goes through, once the policy allows it."""
        own = policy.is_own(target)
        if own and trusted is not None:
            return trusted  # the address the user gave: theirs, whatever it is
        port = origin_of(target)[2]
        if isinstance(trusted, Client) and trusted.proxied(target):
            # The environment sends this through a proxy, which the guarded
            # clients do not use: the name is judged as it resolves here
            # (a name only the proxy can resolve cannot be judged; the
            # proxy's own rules hold), then sent through the proxy.
            try:
                addresses = await self.resolver(target.host, port)
            except OSError:
                return trusted
            policy.check(target.host, port, addresses, own_origin=own)
            return trusted
        policy.check_literal(target.host, port, own_origin=own)
        return self.own if own else self.public
