"""Article bodies: the page fetched, its text extracted, the feed's text as
the fallback.

Shared by the poller (bodies stored with new items) and ``feedbot add``
(the preview of a feed's newest items).  Pages are fetched through the
guarded ``PageFetcher`` and extracted in worker processes, so that no page
can stop the caller or reach a private address.  A page served without its
article (NHK NEWS WEB's) is followed by the JSON it loads
(``bot.pagedata``), through the same fetcher.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from bot import metrics
from bot.config import Feed, PollSettings
from bot.errors import FetchError, WorkerError
from bot.fetch import PageFetcher
from bot.models import Entry
from bot.text import limit_body
from bot.workers import Workers

PRIVATE_HINT = " (poll.allow_private_addresses = true allows it)"

log = logging.getLogger("feedbot.poll")
PAGES_AT_ONCE = 2  # article pages of one feed fetched at a time: no feed can take every slot
BIG_PAGE_BYTES = 512 * 1024  # a page this big (scripts and styles out) is extracted alone, in a fresh worker


class Bodies:
    """Bodies of entries, with one page fetcher made on first use (a poll of
    feeds without bodies never needs one); ``aclose`` closes it if it is ours."""

    def __init__(self, settings: PollSettings, workers: Workers, pages: PageFetcher | None = None) -> None:
        self.settings = settings
        self.workers = workers
        self._pages = pages
        self._own_pages = pages is None
        self.deadline = settings.timeout.total_seconds() * 2

    @property
    def pages(self) -> PageFetcher:
        if self._pages is None:
            self._pages = PageFetcher(self.settings)
        return self._pages

    async def aclose(self) -> None:
        if self._own_pages and self._pages is not None:
            await self._pages.aclose()

    async def for_entries(self, feed: Feed, entries: Sequence[Entry]) -> list[tuple[str, ...]]:
        """The bodies of one poll's new entries: at most ``PAGES_AT_ONCE``
        pages of this feed fetched at a time (so that another feed's pages
        are never queued behind this one's), and at most
        ``poll.max_pages_per_poll`` in all; the rest keep the feed's text."""
        budget = self.settings.max_pages_per_poll
        fetching = [e for e in entries if self._needs_page(feed, e)]
        over = fetching[budget:]
        if over:
            log.warning(
                "feed=%s has %d new items with pages; %d over poll.max_pages_per_poll (%d) keep the feed's text",
                feed.name,
                len(fetching),
                len(over),
                budget,
            )
        skipped = {id(e) for e in over}
        if over:
            metrics.page_fetches.labels("over-budget").inc(len(over))
        turn = asyncio.Semaphore(PAGES_AT_ONCE)

        async def one(entry: Entry) -> tuple[str, ...]:
            async with turn:
                return await self.body(feed, entry)

        # A task only for a page to fetch: a first poll of 200 feeds of 50
        # entries made 10,000 tasks for bodies that were the feed's own text.
        bodies: list[tuple[str, ...]] = []
        fetch: list[int] = []
        for n, entry in enumerate(entries):
            if id(entry) in skipped:
                bodies.append(limit_body(entry.content, feed.max_paragraphs, feed.max_body_chars))
            elif self._needs_page(feed, entry):
                bodies.append(())
                fetch.append(n)
            else:
                bodies.append(self._without_page(feed, entry))
        if fetch:
            for n, body in zip(fetch, await asyncio.gather(*(one(entries[n]) for n in fetch)), strict=True):
                bodies[n] = body
        return bodies

    @staticmethod
    def _needs_page(feed: Feed, entry: Entry) -> bool:
        return not entry.titleless and feed.body not in ("feed", "none") and bool(entry.link)

    @staticmethod
    def _without_page(feed: Feed, entry: Entry) -> tuple[str, ...]:
        """The body of an entry whose page is not fetched (``_needs_page``)."""
        if entry.titleless:
            return entry.content  # a post's text is its body (cut in rendering only)
        return limit_body(entry.content if feed.body == "feed" else (), feed.max_paragraphs, feed.max_body_chars)

    async def body(self, feed: Feed, entry: Entry) -> tuple[str, ...]:
        """The body stored with the item: fetched once, at poll time."""
        if not self._needs_page(feed, entry):
            return self._without_page(feed, entry)
        return limit_body(await self._body(feed, entry), feed.max_paragraphs, feed.max_body_chars)

    async def _body(self, feed: Feed, entry: Entry) -> tuple[str, ...]:
        """The body from the entry's page (``_needs_page``: there is one to fetch)."""
        try:
            page = await self.pages.fetch(entry.link, feed.url, self.deadline)
            metrics.page_fetches.labels("ok").inc()
            log.debug("feed=%s article=%s status=%d bytes=%d", feed.name, entry.link, page.status, len(page.content))
        except FetchError as exc:
            metrics.page_fetches.labels("error").inc()
            # The feed's own text is better than nothing; say so once.  A
            # refused address names the switch (off on purpose) for an
            # operator whose pages are on a private network.
            said = str(exc) + (PRIVATE_HINT if str(exc).startswith("refused: ") else "")
            log.warning("feed=%s article=%s status=error error=%r fallback=feed-content", feed.name, entry.link, said)
            return entry.content
        from bot.extract import extract_body
        from bot.markup import bounded_bytes
        from bot.pagedata import data_url

        try:
            # Scripts and styles cut out here: what the worker gets, and decodes, is the page's text.
            data, url, content_type = bounded_bytes(page.content), page.url, page.content_type
            del page  # the whole page is not kept while the worker works
            # A big page is extracted in a worker of its own, one at a time:
            # what extraction holds grows with the page, and a long-lived
            # worker would keep that memory.
            big = len(data) > BIG_PAGE_BYTES
            lines = await self.workers.run(extract_body, data, url, content_type, feed.body, single=big)
        except Exception as exc:  # a page nobody foresaw costs its entry the body, not the feed its poll
            reason = f"extraction {exc}" if isinstance(exc, WorkerError) else f"extraction failed: {type(exc).__name__}"
            log.warning("feed=%s article=%s status=error error=%r fallback=feed-content", feed.name, entry.link, reason)
            return entry.content
        if not lines and feed.body == "auto" and (json_url := data_url(url) or data_url(entry.link)):
            lines = await self._from_json(feed, entry, json_url)
        return tuple(lines)

    async def _from_json(self, feed: Feed, entry: Entry, json_url: str) -> list[str]:
        """The body from the JSON an article page loads, when the page as
        served did not carry it (NHK NEWS WEB: ``bot.pagedata``); fetched
        through the same guarded fetcher as the page."""
        from bot.pagedata import json_lines

        try:
            document = await self.pages.fetch(json_url, feed.url, self.deadline)
            return list(await self.workers.run(json_lines, document.content))
        except (FetchError, WorkerError) as exc:
            log.warning("feed=%s article=%s status=error error=%r source=article-json", feed.name, entry.link, str(exc))
            return []
