"""A busy news day's pending items, from real text: N feeds × M items.

    from bench.busy import busy_items
    items = busy_items(feeds=200, per_feed=50, seed=1)   # 10,000 items

Sentences come from the corpus's article pages (``sentences``); each feed
is Japanese or English (three in five Japanese), each item a headline and
two or three paragraphs, the first ~300 characters long (what story
grouping reads).  Each story has its own person, place and figure (random
names: what a real day's stories do not share), named in its headline and
in every sentence of its first paragraph.  One item in six re-reports an
earlier item's story from another feed: the same headline and first
paragraph with a third of the sentences replaced, as a second outlet
would tell it, so the day has real stories to find.
Deterministic for a seed.  Used by ``bench/stories.py``, ``bench/chaos.py``
and the tests of a 10,000-item digest (the corpus is needed: they skip
without it).
"""

from __future__ import annotations

import gzip
import random
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import lxml.html

from bench.pages import corpus_dir
from bot.keys import entry_keys
from bot.models import Entry, Item
from bot.state import NewItem, Store

_KANA = re.compile(r"[\u3040-\u30ff]")
_JA_SENTENCE = re.compile(r"[^。！？]+[。！？]")
_EN_SENTENCE = re.compile(r"[A-Z][^.!?]{30,240}[.!?]")
DAY = datetime(2025, 1, 21, tzinfo=UTC)


@lru_cache(maxsize=2)
def sentences(corpus: Path | None = None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(Japanese clauses, English sentences) of the corpus's article pages:
    the English of their expected bodies; the Japanese of their HTML text
    too, cut at 、 (the corpus's Japanese bodies have too few sentences for
    6,000 items: clauses recombined, ``_ja_sentence``, make distinct ones)."""
    root = corpus or corpus_dir()
    ja: set[str] = set()
    en: set[str] = set()
    for line in (root / "pages" / "INDEX.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        name, _repo, lang, truth, _size = line.split("\t")
        folder = root / "pages" / name
        if lang == "ja":
            page = lxml.html.fromstring(gzip.decompress((folder / "page.html.gz").read_bytes()))
            for element in page.iter("p", "li", "div"):
                for sentence in _JA_SENTENCE.findall((element.text or "").strip()):
                    if 12 <= len(sentence.strip()) <= 120 and _KANA.search(sentence):
                        ja.update(
                            c.strip() for c in re.split(r"[、，]", sentence.strip().rstrip("。！？")) if len(c) >= 4
                        )
        elif lang == "en" and truth == "text":
            for text in (folder / "expected.txt").read_text(encoding="utf-8").splitlines():
                en.update(s.strip() for s in _EN_SENTENCE.findall(text))
    return tuple(sorted(ja)), tuple(sorted(en))


def busy_items(feeds: int = 200, per_feed: int = 50, seed: int = 1, corpus: Path | None = None) -> list[Item]:
    """``feeds`` × ``per_feed`` items (ids from 1, in publication order)."""
    rng = random.Random(seed)
    ja, en = sentences(corpus)
    kanji = sorted({c for clause in ja for c in clause if "\u4e00" <= c <= "\u9fff"})
    japanese = [rng.random() < 0.6 for _ in range(feeds)]
    made: dict[bool, list[tuple[str, list[str], list[str]]]] = {True: [], False: []}  # earlier stories
    items: list[Item] = []
    for n in range(feeds * per_feed):
        f = n % feeds
        cjk = japanese[f]
        pool = ja if cjk else en
        earlier = made[cjk]
        if earlier and rng.random() < 1 / 6:
            title, first, who = rng.choice(earlier)
            first = [s if rng.random() < 2 / 3 else _sentence(rng, pool, cjk, who) for s in first]
        else:
            who = _entities(rng, cjk, kanji)
            title = _headline(_sentence(rng, pool, cjk, who[:1]), cjk)
            first = _paragraph(rng, pool, 300 if cjk else 450, cjk, who)
            earlier.append((title, first, who))
        body = ("".join(first) if cjk else " ".join(first), *_rest(rng, pool, cjk))
        published = DAY + timedelta(seconds=n * 86400 // (feeds * per_feed))
        name = f"{'ニュース' if cjk else 'News'} {f:03d}"
        items.append(
            Item(
                n + 1,
                name,
                f"https://feed{f:03d}.example/rss",
                title,
                f"https://feed{f:03d}.example/a/{n}",
                published,
                published,
                body,
            )
        )
    return items


_KATAKANA = [chr(c) for c in range(0x30A2, 0x30F3)]
_KANJI = [chr(c) for c in range(0x4E00, 0x4E00 + 2000)]  # a common block's first 2,000
_SYLLABLES = "ka ri to mo sen dra vel lin ar co ne bas tor mi vi del ran os ur bel".split()


def _entities(rng: random.Random, cjk: bool, kanji: list[str]) -> list[str]:
    """Who, where and how many: what a story's reports share and no other
    story has (a day's real stories have their names, places, figures)."""
    if cjk:
        person = "".join(rng.choice(_KATAKANA) for _ in range(rng.randint(3, 5))) + "氏"
        place = "".join(rng.choice(kanji) for _ in range(2)) + rng.choice("市県町")
        return [person, place, f"{rng.randint(2, 9999)}人"]
    person = "".join(rng.choice(_SYLLABLES) for _ in range(3)).capitalize()
    place = "".join(rng.choice(_SYLLABLES) for _ in range(2)).capitalize() + rng.choice([" City", " Bay", " Valley"])
    return [person, place, f"{rng.randint(2, 9999)} people"]


def _headline(sentence: str, cjk: bool) -> str:
    text = sentence.rstrip("。！？.!?")
    return text[:40] if cjk else " ".join(text.split()[:14])


def _sentence(rng: random.Random, pool: tuple[str, ...], cjk: bool, who: list[str] | None = None) -> str:
    about = rng.choice(who) if who else ""
    if cjk:
        said = "、".join(rng.choice(pool) for _ in range(rng.randint(2, 3)))
        # A third of its kanji changed: the corpus has ~2,300 clauses for
        # 6,000 items, and two stories of a real day do not share whole clauses.
        said = "".join(rng.choice(_KANJI) if "\u4e00" <= c <= "\u9fff" and rng.random() < 1 / 3 else c for c in said)
        return (f"{about}は" if about else "") + said + "。"
    return (f"{about}: " if about else "") + rng.choice(pool)


def _paragraph(
    rng: random.Random, pool: tuple[str, ...], chars: int, cjk: bool, who: list[str] | None = None
) -> list[str]:
    out: list[str] = []
    while sum(map(len, out)) < chars:
        out.append(_sentence(rng, pool, cjk, who))
    return out


def _rest(rng: random.Random, pool: tuple[str, ...], cjk: bool) -> tuple[str, ...]:
    joiner = "" if cjk else " "
    return tuple(joiner.join(_paragraph(rng, pool, 150 if cjk else 250, cjk)) for _ in range(rng.randint(1, 2)))


def fill_state(store: Store, items: Sequence[Item], now: datetime) -> None:
    """Record ``items`` as taken by their feeds' polls (pending for the next digest)."""
    by_feed: dict[str, list[Item]] = {}
    for item in items:
        by_feed.setdefault(item.feed_url, []).append(item)
    for url, feed_items in by_feed.items():
        take = [
            NewItem(Entry(entry_keys(url, i.link, i.link, i.title, None).keys, i.title, i.link, i.published), i.body)
            for i in feed_items
        ]
        store.record_poll(url, feed_items[0].feed, now, etag=None, last_modified=None, take=take, skip=[])
