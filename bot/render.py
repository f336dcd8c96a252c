"""Rendering a digest to text and cutting it into messages (pure).

The format is ``shared/DIGEST_FORMAT.md``: per item a headline built from the
feed's template, an attribution line ``— NAME (@HANDLE) January 20, 2025``
in the configured time zone, the body lines; each group closed by its tag
line.  ``split`` cuts the result into messages only between items.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import tzinfo

from bot.config.feeds import DEFAULT_HEADLINE, Feed
from bot.config.record import Config
from bot.models import Block, Digest, Item, Rendered
from bot.spans import spans
from bot.text import collapse, safe_cut, truncate

MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
ELLIPSIS = "…"

Measure = Callable[[str], int]


def attribution(name: str, handle: str | None, item: Item, zone: tzinfo) -> str:
    local = item.when.astimezone(zone)
    who = f"{name} (@{handle})" if handle else name
    return f"\u2014 {who} {MONTHS[local.month - 1]} {local.day}, {local.year}"


def headline_and_body(item: Item, feed: Feed, headline_max: int) -> tuple[str, tuple[str, ...]]:
    """A titled item uses its title; a title-less post its text, cut if long."""
    if item.titleless:
        full = collapse(" ".join(item.body))
        title = truncate(full, headline_max, ELLIPSIS)
        body = item.body if title != full else ()
    else:
        title, body = item.title, item.body
    line = feed.headline.format_map({"title": title, "link": item.link, "feed": feed.name, "handle": feed.handle or ""})
    return collapse(line), tuple(b for b in (collapse(x) for x in body) if b)


class _Feeds:
    """The item's feed as configured now: by URL (a renamed feed keeps its
    handle and template), else by name (a feed whose URL moved); a feed
    removed from the config renders under its old name, default template.
    Looked up in dictionaries: a digest of 10,000 items from 200 feeds."""

    def __init__(self, config: Config) -> None:
        self.by_url: dict[str, Feed] = {}
        self.by_name: dict[str, Feed] = {}
        for feed in config.feeds:
            self.by_url.setdefault(feed.url, feed)
            self.by_name.setdefault(feed.name, feed)

    def __call__(self, item: Item) -> Feed:
        return (
            self.by_url.get(item.feed_url)
            or self.by_name.get(item.feed)
            or Feed(name=item.feed, url=item.feed_url, headline=DEFAULT_HEADLINE)
        )


def item_lines(config: Config, item: Item, feeds: _Feeds | None = None) -> tuple[str, ...]:
    feed = (feeds or _Feeds(config))(item)
    head, body = headline_and_body(item, feed, config.digest.headline_max)
    return (head, attribution(feed.name, feed.handle, item, config.timezone), *body)


def render(config: Config, digest: Digest) -> Rendered:
    feeds = _Feeds(config)
    blocks = [Block(item_lines(config, i, feeds), i.id, link=i.link) for i in digest.lead]
    for group in digest.groups:
        for n, item in enumerate(group.items):
            last = n == len(group.items) - 1
            blocks.append(Block(item_lines(config, item, feeds), item.id, group.tagline if last else None, item.link))
    return Rendered(digest=digest, blocks=tuple(blocks))


def utf16_len(text: str) -> int:
    """Length as JavaScript counts it: chat services limit messages this way."""
    return len(text.encode("utf-16-le")) // 2


def _fit(text: str, room: int, measure: Measure) -> str:
    """The longest prefix of ``text`` plus "…" that measures at most ``room``
    (never splitting an emoji or a flag, and never a link: a link cut short
    points elsewhere, so it goes whole or not at all)."""
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if measure(text[:mid].rstrip() + ELLIPSIS) <= room:
            lo = mid
        else:
            hi = mid - 1
    lo = safe_cut(text, lo)
    start = 0
    for is_link, piece in spans(text):
        if is_link and start < lo < start + len(piece):
            lo = start
            break
        start += len(piece)
    return text[:lo].rstrip() + ELLIPSIS if lo else ""


def _same(line: str) -> str:
    return line


def shrink(block: Block, limit: int, measure: Measure = len, escape: Callable[[str], str] = _same) -> tuple[str, ...]:
    """Cut one block to ``limit``: body lines go from the end first.

    The headline and attribution are kept whole unless they alone exceed
    the limit, and the tag line is always kept; the last kept line ends with
    "…" (a body line may be kept in part).  Lines are cut as written and
    measured as ``escape`` makes them for the platform (an escape cut in
    half, a ``<plain>`` without its end, would show); they come back escaped.
    """

    def sized(lines: Sequence[str]) -> int:
        return measure("\n".join(escape(x) for x in lines))

    def done(lines: Sequence[str]) -> tuple[str, ...]:
        return tuple(escape(x) for x in lines)

    whole = done(block.all_lines)  # escaped once: most blocks fit, and are sent as measured
    if measure("\n".join(whole)) <= limit:
        return whole
    kept = list(block.lines[:2])
    body = block.lines[2:]
    tail = [block.tagline] if block.tagline else []

    def size(extra: Sequence[str]) -> int:
        return sized([*kept, *extra, *tail])

    if size([]) > limit:
        # Even headline + attribution do not fit: cut the headline itself.
        room = limit - sized([*kept[1:], *tail]) - 1
        kept[0] = _fit(kept[0], max(room, 1), lambda t: measure(escape(t))) or kept[0][:1]
        return done([*kept, *tail])
    taken: list[str] = []
    for line in body:
        if size([*taken, line + ELLIPSIS]) <= limit:
            taken.append(line)
            continue
        room = limit - size([*taken, ""])
        partial = _fit(line, room, lambda t: measure(escape(t))) if room > 10 else ""
        if partial:
            taken.append(partial)
        elif taken:
            taken[-1] += ELLIPSIS
        break
    return done([*kept, *taken, *tail])


LineEscape = Callable[[str, Sequence[str]], str]  # (line, the item's links) -> the line as sent


def split(blocks: Sequence[Block], limit: int, measure: Measure = len, escape: LineEscape | None = None) -> list[str]:
    """Pack blocks into messages of at most ``limit`` (as ``measure`` counts
    the lines ``escape`` made of them).

    Messages are cut only between blocks; a block too long for one message
    is shrunk.  Joining the messages with "\\n" gives back the digest text
    (escaped) whenever no block had to be shrunk.
    """
    messages: list[str] = []
    current = ""
    for block in blocks:
        if escape is None:
            line_escape = _same
        else:

            def line_escape(line: str, links: tuple[str, ...] = (block.link,), fn: LineEscape = escape) -> str:
                return fn(line, links)

        text = "\n".join(shrink(block, limit, measure, line_escape))
        if current and measure(current + "\n" + text) <= limit:
            current += "\n" + text
        else:
            if current:
                messages.append(current)
            current = text
    if current:
        messages.append(current)
    return messages
