"""HTTP manners: conditional GET for feeds, bounded GET for article pages.

One ``httpx.AsyncClient`` is made per process and reused (creating one costs
tens of milliseconds).  Every response is read as a stream and cut at a
size limit, so a server cannot make us hold 100 MB; every request has a
total deadline on top of httpx's connect/read timeouts, so a server that
trickles bytes cannot hold a poll forever.

Errors become FetchError with a short message (status, timeout, refused);
the caller records them on the feed.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from bot import __version__
from bot.config import PollSettings
from bot.errors import FetchError

FEED_MAX_BYTES = 10 * 1024 * 1024
PAGE_MAX_BYTES = 5 * 1024 * 1024
MAX_REDIRECTS = 5
PER_HOST = 2  # article requests at a time to one host
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


def make_client(settings: PollSettings, transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    seconds = settings.timeout.total_seconds()
    return httpx.AsyncClient(
        timeout=httpx.Timeout(seconds, connect=min(seconds, 10.0)),
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        headers={"User-Agent": settings.user_agent.format(version=__version__)},
        limits=httpx.Limits(max_connections=settings.concurrency * 2, max_keepalive_connections=settings.concurrency),
        transport=transport,
    )


async def get(
    client: httpx.AsyncClient,
    url: str,
    *,
    headers: dict[str, str],
    max_bytes: int,
    deadline: float,
) -> Response:
    """GET ``url``: the whole body up to ``max_bytes``, within ``deadline`` seconds."""
    try:
        async with asyncio.timeout(deadline):
            async with client.stream("GET", url, headers=headers) as r:
                if r.status_code == 304:
                    return Response(str(r.url), 304, dict(r.headers), b"")
                if r.status_code >= 400:
                    raise FetchError(f"HTTP {r.status_code} {r.reason_phrase}".strip(), status=r.status_code)
                declared = r.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise FetchError(f"response too large ({int(declared)} bytes, limit {max_bytes})")
                chunks: list[bytes] = []
                size = 0
                async for chunk in r.aiter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise FetchError(f"response too large (over {max_bytes} bytes)")
                    chunks.append(chunk)
                return Response(str(r.url), r.status_code, dict(r.headers), b"".join(chunks))
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


class HostLimiter:
    """At most ``PER_HOST`` concurrent requests to one host, ``total`` overall."""

    def __init__(self, total: int) -> None:
        self._total = asyncio.Semaphore(total)
        self._hosts: defaultdict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(PER_HOST))

    async def fetch_page(self, client: httpx.AsyncClient, url: str, deadline: float) -> Response:
        host = (urlsplit(url).hostname or "").lower()
        async with self._total, self._hosts[host]:
            return await get(client, url, headers={"Accept": PAGE_ACCEPT}, max_bytes=PAGE_MAX_BYTES, deadline=deadline)
