"""httpx's API on aiohttp's HTTP/1.1: the one HTTP stack of feeds, pages and webhooks.

httpx is the client feedbot is written against: it builds requests, follows
redirects (credentials only to the same origin), keeps cookies, reads
proxies from the environment and raises its own exceptions.  aiohttp does
the protocol: connection pools, TLS, and llhttp, its C parser, which costs a
fraction of httpcore's CPU per request (issue 12, ``bench/http_compare.py``).
This module is only the glue between them: an ``httpx`` transport that hands
each request to an ``aiohttp`` session and streams the raw reply back.

- Bodies come back as sent (``auto_decompress=False``): the caller inflates
  within its size cap (``bot.fetch``), never a whole gzip bomb at once.
- aiohttp's cookies, redirects and proxy lookup are off: httpx does them.
- aiohttp's exceptions become httpx's (``_errors``), so callers handle one
  family; an unknown one is an ``httpx.TransportError``, never a crash.
- ``resolver``: an ``aiohttp.abc.AbstractResolver`` that decides which
  addresses a connection may be made to (the article-page guard,
  ``bot.guard.GuardedResolver``); without one, aiohttp's threaded resolver.
- A header value a request cannot carry (a control character, bytes that
  are not UTF-8, which aiohttp would re-encode) is dropped with a warning,
  never an error for the request (issue 24: a stored ETag with an ESC in
  it failed every later poll of its feed before anything was sent).
- httpx's client keeps no cookies (``_Cookies``): a fetch keeps its own
  for its redirects (``bot.fetch``), so no feed sees another's.
- TLS: every request that makes a TLS connection (an https URL, or any URL
  through an https proxy) carries the transport's context; the context may
  be given as a function (``bot.tls.context``), called on the first such
  request, so a run of plain-HTTP feeds loads no CA store.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import logging
import re
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import httpx
from httpx._exceptions import request_context  # what httpx's own send wraps a transport in
from yarl import URL

READ_CHUNK = 64 * 1024
log = logging.getLogger("feedbot.http")
# What aiohttp refuses in a header ("Forbidden control character detected
# in headers"): every control character but the tab.
_FORBIDDEN = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


@functools.lru_cache(maxsize=4096)  # the same few values (user agent, accept, validators) on every poll
def sendable(value: bytes) -> bool:
    """Whether a request can carry ``value`` as a header value byte for
    byte: no control character but the tab, and UTF-8 (aiohttp encodes
    every header as UTF-8, so other bytes would not go out as they came)."""
    if _FORBIDDEN.search(value):
        return False
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@functools.lru_cache(maxsize=4096)  # as ``sendable``: the same few pairs on every poll
def _pair(name: bytes, value: bytes) -> tuple[str, str] | None:
    """A header as aiohttp takes it, or None if its value cannot be sent."""
    return (name.decode("latin-1"), value.decode("utf-8")) if sendable(value) else None


def _headers(request: httpx.Request) -> list[tuple[str, str]]:
    """The request's headers for aiohttp; one it cannot send is left out."""
    headers = []
    for name, value in request.headers.raw:
        pair = _pair(name, value)
        if pair is not None:
            headers.append(pair)
        else:
            shown = name.decode("latin-1")[:40]  # the name only: a value may be a credential
            log.warning("header %s left out of a request to %s: its value cannot be sent", shown, request.url.host)
    return headers


@functools.lru_cache(maxsize=4096)
def _yarl(url: str) -> URL:
    """httpx has validated and encoded the URL: yarl must not again.  Each
    feed's URL is made once per process (yarl's parse of it was a tenth of
    this transport's own CPU per 304); yarl's URLs are immutable."""
    return URL(url, encoded=True)


class _Body(httpx.AsyncByteStream):
    """aiohttp's response body, as raw chunks, for httpx."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _errors():
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        # A body not read to its end cannot leave the connection reusable:
        # release() closes it then, and returns it to the pool otherwise.
        self._response.release()


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """aiohttp's exceptions as httpx's (the most specific first)."""
    try:
        yield
    except (aiohttp.ConnectionTimeoutError, aiohttp.ServerTimeoutError) as exc:
        cls: type[httpx.TransportError] = (
            httpx.ConnectTimeout if isinstance(exc, aiohttp.ConnectionTimeoutError) else httpx.ReadTimeout
        )
        raise cls(str(exc) or "timed out") from exc
    except aiohttp.ClientConnectorError as exc:
        raise httpx.ConnectError(_first_line(exc)) from exc
    except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, aiohttp.ClientResponseError) as exc:
        # A body cut short or malformed, a connection closed mid-reply, a
        # status line or header aiohttp's parser rejects.
        raise httpx.RemoteProtocolError(_first_line(exc)) from exc
    except aiohttp.InvalidURL as exc:
        raise httpx.UnsupportedProtocol(f"invalid URL {_first_line(exc)}") from exc
    except aiohttp.ClientError as exc:
        raise httpx.TransportError(_first_line(exc)) from exc
    except TimeoutError as exc:  # aiohttp's sock_read deadline
        raise httpx.ReadTimeout("timed out") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


@functools.lru_cache(maxsize=16)
def _timeout(connect: float | None, read: float | None) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read)


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport on one aiohttp session (made on first use, in the
    running event loop)."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext | Callable[[], ssl.SSLContext],
        *,
        max_connections: int,
        keepalive_expiry: float | None = 5.0,
        proxy: httpx.Proxy | None = None,
        resolver: aiohttp.abc.AbstractResolver | None = None,
        reuse_connections: bool = True,
    ) -> None:
        self._ssl_context = ssl_context
        self.max_connections = max_connections
        self.keepalive_expiry = keepalive_expiry
        # httpx has moved a proxy URL's credentials to ``auth``.
        self.proxy = str(proxy.url) if proxy is not None else None
        self._proxy_tls = proxy is not None and proxy.url.scheme == "https"
        self.proxy_headers: dict[str, str] | None = None
        if proxy is not None and proxy.auth:
            userpass = base64.b64encode(f"{proxy.auth[0]}:{proxy.auth[1]}".encode()).decode("ascii")
            self.proxy_headers = {"Proxy-Authorization": f"Basic {userpass}"}
        self.resolver = resolver
        self.reuse_connections = reuse_connections
        self._session: aiohttp.ClientSession | None = None

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """The context of this transport's TLS connections (made now if it was given as a function)."""
        if not isinstance(self._ssl_context, ssl.SSLContext):
            self._ssl_context = self._ssl_context()
        return self._ssl_context

    def _tls(self, url: httpx.URL) -> ssl.SSLContext | bool:
        """What a request to ``url`` passes as aiohttp's ``ssl``: the context
        if the request makes a TLS connection (to the origin, or to an https
        proxy), else aiohttp's default (no TLS is made, so none is loaded)."""
        if url.scheme == "https" or self._proxy_tls:
            return self.ssl_context
        return True

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            # Each TLS request brings the context (``_tls``): none is made
            # here for a session that may never need one.
            limit=self.max_connections,
            keepalive_timeout=self.keepalive_expiry if self.reuse_connections else None,
            force_close=not self.reuse_connections,
            resolver=self.resolver,
            # A guarded resolver must see every connection's name: no cache
            # may answer for it under another policy.
            use_dns_cache=self.resolver is None,
        )
        return aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # httpx keeps the cookies
            auto_decompress=False,
            trust_env=False,  # httpx chose the proxy already
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
            timeout=aiohttp.ClientTimeout(total=None),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme not in ("http", "https"):  # as httpx's own transports say it
            raise httpx.UnsupportedProtocol(f"Request URL has an unsupported protocol '{request.url.scheme}://'.")
        if self._session is None or self._session.closed:
            self._session = self._open()
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        body = await request.aread() if request.method != "GET" else b""
        url = request.url
        if url.userinfo:  # httpx has made it the Authorization header already
            url = url.copy_with(userinfo=b"")
        headers = _headers(request)
        if self.proxy_headers and url.scheme == "http":
            # Plain HTTP goes to the proxy as is (no CONNECT): the proxy's
            # credentials ride on the request itself.
            headers += self.proxy_headers.items()
        with _errors():
            response = await self._session.request(
                request.method,
                _yarl(str(url)),
                headers=headers,
                data=body or None,
                allow_redirects=False,
                proxy=self.proxy,
                proxy_headers=self.proxy_headers,
                timeout=_timeout(timeouts.get("connect"), timeouts.get("read")),
                ssl=self._tls(url),
            )
        reason = (response.reason or "").encode("latin-1", "replace")
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=_Body(response),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            # aiohttp closes TLS transports on the next loop iteration.
            await asyncio.sleep(0)


class _Cookies(httpx.Cookies):
    """httpx's cookie jar, kept empty: one jar for every feed let a feed's
    cookie break, or be read by, every other feed of its host (issue 24).
    A fetch keeps the cookies of its own redirects (``bot.fetch``)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class Client(httpx.AsyncClient):
    """httpx's client whose every transport, proxied ones included, is an
    ``AiohttpTransport`` (httpx makes one per proxy it reads from the
    environment; ``NO_PROXY`` is honoured by httpx's routing)."""

    def __init__(self, *, transport_options: dict[str, Any], **kwargs: Any) -> None:
        self._transport_options = transport_options
        super().__init__(**kwargs)
        # httpx's setter would copy the jar into a plain Cookies (pinned <0.29).
        self._cookies = _Cookies(self._cookies.jar)

    async def send_hop(self, request: httpx.Request) -> httpx.Response:
        """``send(request, follow_redirects=False, stream=True)``: one hop,
        its body unread, ``next_request`` set on a redirect.  A request with
        nothing for the client's layers to do (no auth, no event hooks:
        every feed GET but one with credentials in its URL) goes straight to
        its transport; those layers (auth flow, redirect loop, timer,
        cookie jar, a log line) were a sixth of a 304 poll's CPU.  httpx's
        own ``send`` takes any other."""
        hooks = self._event_hooks
        if self.is_closed or self.auth is not None or request.url.userinfo or hooks["request"] or hooks["response"]:
            return await self.send(request, follow_redirects=False, stream=True)
        with request_context(request=request):
            response = await self._transport_for_url(request.url).handle_async_request(request)
        response.request = request
        if response.has_redirect_location:
            try:
                response.next_request = self._build_redirect_request(request, response)
            except BaseException:
                await response.aclose()
                raise
        return response

    def proxied(self, url: httpx.URL) -> bool:
        """Whether a request to ``url`` goes through a proxy (the environment's)."""
        return self._transport_for_url(url) is not self._transport

    def _init_transport(self, *args: Any, **kwargs: Any) -> httpx.AsyncBaseTransport:
        transport = kwargs.get("transport")
        if transport is not None:
            return transport  # type: ignore[no-any-return]
        return AiohttpTransport(**self._transport_options)

    def _init_proxy_transport(self, proxy: httpx.Proxy, *args: Any, **kwargs: Any) -> httpx.AsyncBaseTransport:
        if proxy.url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"proxy scheme {proxy.url.scheme!r} is not supported (http, https)")
        return AiohttpTransport(**self._transport_options, proxy=proxy)
