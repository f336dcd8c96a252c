"""Finding a site's feeds from an address a user gives (``feedbot add``).

If the address is a feed, that is the answer.  If it is a page, its
``<link rel="alternate">`` elements of feed types are the candidates; if it
has none, the usual paths (``/feed``, ``/rss``, ``/index.rdf``, ...) are
tried in turn.  Every candidate is verified by fetching and parsing it, and
only feeds that parse are offered, with their title, item count and newest
item date.

``alternate_links`` and ``well_known_urls`` are pure; ``discover`` does the
fetching and parses in the worker processes, as polls do.  The address
given is the user's: it and its origin are fetched whatever they are.
Anything else (where it redirects, an alternate link or a well-known path
on another origin) was found in a document and goes through the guard of
article pages (``bot.guard``): refused, before any connection, when it is
not public, unless ``allow_private_addresses`` (or ``add --allow-private``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from bs4 import BeautifulSoup
from bs4.filter import SoupStrainer

from bot.errors import DiscoveryError, FetchError, ParseError, WorkerError
from bot.fetch import PageFetcher, Response, fetch_feed, short
from bot.models import ParsedFeed
from bot.parse import parse_feed
from bot.secrets import without_credentials
from bot.workers import Workers

# <link type> values that announce a feed.  Generic XML types count too:
# some sites label their RSS application/xml; the parse decides.
FEED_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/rdf+xml",
        "application/rss+rdf",
        "application/x-rss+xml",
        "application/x-atom+xml",
        "application/x.atom+xml",
        "application/feed+json",
        "application/json",
        "text/xml",
        "application/xml",
    }
)
# Tried in this order when a page links to no feed (the paths blog engines,
# CMSs and Japanese news sites use); the first that parses is the answer.
WELL_KNOWN_PATHS = (
    "/feed",
    "/rss",
    "/index.rdf",
    "/atom.xml",
    "/feed.xml",
    "/rss.xml",
    "/index.xml",
    "/feed/",
    "/rss/",
)
MAX_ALTERNATES = 10  # a page that links to more is not listing its own feeds
HEAD_BYTES = 1024 * 1024  # <link> elements are in the head: no need to read a whole page


@dataclass(frozen=True)
class Candidate:
    url: str
    feed: ParsedFeed
    via: str  # how it was found: "the address given", "<link rel=alternate>", "/feed", ...

    @property
    def title(self) -> str:
        return self.feed.title

    @property
    def newest(self) -> datetime | None:
        return max((e.published for e in self.feed.entries if e.published), default=None)

    def describe(self, zone: tzinfo) -> str:
        count = len(self.feed.entries)
        when = self.newest
        newest = f", newest {when.astimezone(zone):%Y-%m-%d %H:%M %Z}" if when else ""
        title = self.title or "(no title)"
        return f"{title} — {self.url} ({count} item{'s' if count != 1 else ''}{newest}; {self.via})"


def _looks_like_html(response: Response) -> bool:
    kind = (response.content_type or "").split(";")[0].strip().lower()
    if kind in ("text/html", "application/xhtml+xml"):
        return True
    head = response.content[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def alternate_links(page: bytes, base_url: str) -> list[tuple[str, str]]:
    """The feeds a page announces: ``(absolute URL, title)`` in page order,
    duplicates and non-http(s) links dropped; ``<base href>`` honoured."""
    soup = BeautifulSoup(page[:HEAD_BYTES], "lxml", parse_only=SoupStrainer(["link", "base"]))
    base = base_url
    tag = soup.find("base", href=True)
    if tag is not None:
        base = urljoin(base_url, str(tag["href"]).strip())
    found: list[tuple[str, str]] = []
    seen: set[str] = set()
    for link in soup.find_all("link", href=True):
        rel: Any = link.get("rel") or []
        rels = {r.lower() for r in (rel if isinstance(rel, list) else str(rel).split())}
        kind = str(link.get("type") or "").split(";")[0].strip().lower()
        if "alternate" not in rels or kind not in FEED_TYPES:
            continue
        url = urljoin(base, str(link["href"]).strip())
        if urlsplit(url).scheme not in ("http", "https") or url in seen:
            continue
        seen.add(url)
        found.append((url, " ".join(str(link.get("title") or "").split())))
    return found[:MAX_ALTERNATES]


def well_known_urls(url: str) -> list[str]:
    root = urljoin(url, "/")
    return [urljoin(root, path) for path in WELL_KNOWN_PATHS]


@dataclass(frozen=True)
class Discovery:
    candidates: tuple[Candidate, ...]
    notes: tuple[str, ...] = ()  # candidates that did not verify, and why
    refused: bool = False  # some were refused by the address policy (``REFUSED_HINT`` says how to allow them)


async def _parse(workers: Workers, response: Response) -> ParsedFeed:
    try:
        return await workers.run(parse_feed, response.content, response.url, response.headers)
    except WorkerError as exc:
        raise ParseError(f"parse {exc}") from None


@dataclass(frozen=True)
class _Fetching:
    """How discovery fetches: the user's client for the address given
    (``given``) and its origin, the guarded clients for the rest."""

    client: httpx.AsyncClient
    pages: PageFetcher
    workers: Workers
    given: str
    deadline: float

    async def get(self, url: str) -> Response:
        return await fetch_feed(self.client, url, None, None, self.deadline, self.pages, given=self.given)


REFUSED_HINT = (
    "an address found in a page or a redirect is refused unless it is public:"
    " --allow-private, or [poll] allow_private_addresses = true, allows it"
)


async def _verify(how: _Fetching, url: str, via: str) -> Candidate:
    response = await how.get(url)
    if _looks_like_html(response):
        raise ParseError("a web page, not a feed")
    return Candidate(url, await _parse(how.workers, response), via)


async def discover(
    client: httpx.AsyncClient, url: str, workers: Workers, deadline: float, pages: PageFetcher
) -> Discovery:
    """The feeds at or announced by ``url``; DiscoveryError if none.

    FetchError if ``url`` itself cannot be fetched.  ``client`` fetches the
    address given and its origin; ``pages`` (the guarded clients, with the
    address policy) everything else."""
    shown = without_credentials(url)
    how = _Fetching(client, pages, workers, url, deadline)
    try:
        response = await how.get(url)
    except FetchError as exc:
        hint = f" ({REFUSED_HINT})" if str(exc).startswith("refused") else ""
        raise FetchError(f"cannot fetch {shown}: {exc}{hint}", exc.status) from None
    if not _looks_like_html(response):
        try:
            return Discovery((Candidate(url, await _parse(workers, response), "the address given"),))
        except ParseError as exc:
            raise DiscoveryError(f"{shown} is neither a web page nor a feed that parses ({short(str(exc))})") from None
    links = alternate_links(response.content, response.url)
    if links:
        results = await asyncio.gather(
            *(_verify(how, link, "<link rel=alternate>") for link, _ in links), return_exceptions=True
        )
        good = tuple(r for r in results if isinstance(r, Candidate))
        notes = tuple(
            f"{without_credentials(link)}: {short(str(r))}"
            for (link, _), r in zip(links, results, strict=True)
            if isinstance(r, (FetchError, ParseError))
        )
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, (FetchError, ParseError)):
                raise r
        refused = any(str(r).startswith("refused") for r in results if isinstance(r, FetchError))
        if good:
            return Discovery(good, notes, refused)
        hint = f" ({REFUSED_HINT})" if refused else ""
        raise DiscoveryError(
            f"{shown} links to {len(links)} feed(s) but none could be read: " + "; ".join(notes) + hint
        )
    return await _try_paths(how, shown, well_known_urls(response.url))


async def _try_paths(how: _Fetching, shown: str, urls: Sequence[str]) -> Discovery:
    """One at a time, politely: most of these answer 404."""
    for candidate in urls:
        try:
            found = await _verify(how, candidate, urlsplit(candidate).path)
        except (FetchError, ParseError):
            continue
        return Discovery((found,))
    paths = ", ".join(WELL_KNOWN_PATHS)
    raise DiscoveryError(
        f'no feed found at {shown}: the page links to none (<link rel="alternate">) and none of {paths} is a feed'
    )
