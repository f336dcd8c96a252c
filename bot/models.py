"""Typed records that travel between the pipeline's stages.

Past the parser nothing is a dict: entries, items, groups and digests are
frozen dataclasses.  Times are timezone-aware UTC datetimes; conversion to
the configured zone happens only when rendering.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.keys import Key


@dataclass(frozen=True)
class Entry:
    """One feed entry, normalised to plain text."""

    keys: tuple[Key, ...]  # seen when any of these was recorded (bot.keys)
    title: str  # plain one-line text; "" for a title-less post
    link: str  # absolute URL, or "" when the entry has none
    published: datetime | None
    content: tuple[str, ...] = ()  # the feed's own text (content:encoded, else summary) as paragraphs
    alias: Key | None = None  # seen when recorded by another feed (the link of a GUID entry)

    @property
    def titleless(self) -> bool:
        return not self.title


@dataclass(frozen=True)
class ParsedFeed:
    title: str
    entries: tuple[Entry, ...]
    warning: str | None = None  # a survivable problem feedparser reported (bozo)
    ttl: int | None = None  # RSS <ttl>: minutes the feed may be cached


@dataclass(frozen=True)
class Item:
    """An entry taken for a digest, as stored in the state database."""

    id: int
    feed: str  # the feed's name (attribution)
    feed_url: str
    title: str  # "" for a title-less post
    link: str
    published: datetime | None
    first_seen: datetime
    body: tuple[str, ...]
    stream: str = ""  # the digest ([[digests]] name) it waits for; "" without [[digests]]

    @property
    def when(self) -> datetime:
        """The item's date for attribution and ordering."""
        return self.published or self.first_seen

    @property
    def titleless(self) -> bool:
        return not self.title


@dataclass(frozen=True)
class Group:
    tag: str
    label: str
    items: tuple[Item, ...]

    @property
    def tagline(self) -> str:
        return f"#{self.tag}({self.label})"


@dataclass(frozen=True)
class Digest:
    date: str  # YYYY-MM-DD, the digest date in the configured zone
    lead: tuple[Item, ...]
    groups: tuple[Group, ...]

    @property
    def items(self) -> tuple[Item, ...]:
        return self.lead + tuple(i for g in self.groups for i in g.items)


@dataclass(frozen=True)
class Block:
    """The lines of one item, plus its group's tag line if it closes one.

    Blocks are the units a digest is cut into messages by: a message never
    splits a block, so a tag line always stays with its group's last item.
    """

    lines: tuple[str, ...]
    item_id: int
    tagline: str | None = None
    link: str = ""  # the item's link, wherever the headline template put it (kinds never escape it)

    @property
    def all_lines(self) -> tuple[str, ...]:
        return self.lines + ((self.tagline,) if self.tagline else ())


@dataclass(frozen=True)
class FailingFeed:
    """A feed failing for longer than ``digest.health_after``, for the
    broken-feed message that follows a digest."""

    name: str
    since: datetime
    tries: int
    error: str  # one line, cut


@dataclass(frozen=True)
class DeliveryProblem:
    """A webhook whose messages need an operator, for the same report:
    messages its platform refused for good (set aside), or a queue held or
    failing (its first message's error)."""

    webhook: str  # its display name
    set_aside: int
    pending: int
    error: str  # one line, cut: the queue's error, else the last refusal


@dataclass(frozen=True)
class Rendered:
    digest: Digest
    blocks: tuple[Block, ...] = field(default=())
    health: tuple[FailingFeed, ...] = field(default=())  # sent after the digest, never inside it
    deliveries: tuple[DeliveryProblem, ...] = field(default=())  # in that report too

    @property
    def text(self) -> str:
        return "\n".join(line for b in self.blocks for line in b.all_lines)
