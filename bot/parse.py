"""Feed documents to entries (pure): bytes and headers in, ParsedFeed out.

feedparser never fetches here: it gets the bytes and the response headers
(for the charset).  Its HTML sanitiser and relative-URI resolver are off
(about 40% of its time, PERF_NOTES): every title and body is reduced to
plain text anyway, and links are resolved against the feed URL below.

A document feedparser could make nothing of raises ParseError naming the
feed; a survivable problem (``bozo`` with entries) is returned as a warning.
"""

from __future__ import annotations

import calendar
import time
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import feedparser

from bot.errors import ParseError
from bot.extract import html_paragraphs, plain
from bot.keys import Sharing, canonical_url, entry_keys, is_url
from bot.models import Entry, ParsedFeed

# feedparser's notes that are not problems: a feed served as text/plain, or
# a charset header that disagrees with the document (it then uses the right
# one).
_BENIGN = frozenset({"NonXMLContentType", "CharacterEncodingOverride"})


def parse_feed(data: bytes, url: str, headers: Mapping[str, str] | None = None) -> ParsedFeed:
    """Parse a feed document fetched from ``url``."""
    response_headers = {k.lower(): v for k, v in (headers or {}).items()}
    response_headers.setdefault("content-location", url)
    try:
        result: Any = feedparser.parse(
            data,
            response_headers=response_headers,
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except Exception as exc:  # feedparser is meant not to raise; if it does, it is this feed's error
        raise ParseError(f"feed {url}: parser failed: {type(exc).__name__}: {exc}") from exc
    raw_entries = list(result.get("entries") or [])
    problem = result.get("bozo_exception")
    detail = f"{type(problem).__name__}: {problem}" if result.get("bozo") and problem else None
    if not raw_entries and not result.get("version"):
        raise ParseError(f"feed {url}: not a feed ({detail or 'no RSS, Atom or JSON feed found'})")
    warning = detail if detail and type(problem).__name__ not in _BENIGN else None

    links = [_link(e, url) for e in raw_entries]
    pages = Counter(canonical_url(x) for x in links if x)
    exact = Counter(canonical_url(x, keep_fragment=True) for x in links if x)
    guids: set[str] = set()
    entries: list[Entry] = []
    for raw, link in zip(raw_entries, links, strict=True):
        guid = str(raw.get("id") or "").strip()
        sharing = _sharing(link, pages, exact, repeated=guid in guids)
        guids.add(guid)
        entries.append(_entry(raw, url, link, sharing))
    title = plain(str(result.get("feed", {}).get("title", "")))
    return ParsedFeed(title=title, entries=tuple(entries), warning=warning)


def _sharing(link: str, pages: Counter[str], exact: Counter[str], repeated: bool) -> Sharing:
    if not link:
        return Sharing(guid_repeated=repeated)
    return Sharing(
        guid_repeated=repeated,
        page_shared=pages[canonical_url(link)] > 1,
        link_shared=exact[canonical_url(link, keep_fragment=True)] > 1,
    )


def _link(raw: Any, feed_url: str) -> str:
    link = raw.get("link") or ""
    if not link:
        guid = raw.get("id") or ""
        if is_url(guid) and raw.get("guidislink", True):
            link = guid
    link = str(link).strip()
    return urljoin(feed_url, link) if link else ""


def _date(raw: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = raw.get(key)
        if isinstance(value, time.struct_time):
            try:
                return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
            except (OverflowError, ValueError, OSError):
                continue
    return None


def _content(raw: Any) -> tuple[str, ...]:
    """The entry's own text: the longest content, else the summary."""
    contents = [c.get("value", "") for c in raw.get("content") or [] if isinstance(c, dict)]
    best = max(contents, key=len, default="")
    if not best:
        best = str(raw.get("summary") or raw.get("description") or "")
    return tuple(html_paragraphs(best)) if best else ()


def _entry(raw: Any, feed_url: str, link: str, sharing: Sharing) -> Entry:
    title_detail = raw.get("title_detail") or {}
    raw_title = str(raw.get("title") or "")
    title = plain(raw_title) if title_detail.get("type", "text/html") != "text/plain" else " ".join(raw_title.split())
    published = _date(raw)
    guid = raw.get("id")
    identity = entry_keys(
        feed_url,
        str(guid) if guid else None,
        link or None,
        title,
        published.isoformat() if published else None,
        sharing,
    )
    return Entry(
        keys=identity.keys, title=title, link=link, published=published, content=_content(raw), alias=identity.alias
    )
