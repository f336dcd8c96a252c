"""Items about the same story, kept together in their group (pure).

The same event reported by two outlets (NHK's 「ロシアと中国 オンラインで
首脳会談」 and Reuters' 「中国主席と首脳会談、プーチン大統領…」) should stand
side by side, not apart with another story between them.

Two items are one story when their headlines and first body lines are
similar enough: the Jaccard similarity of their **character bigrams** for
Japanese and Chinese text (no spaces: a shared word shares its bigrams),
of their **content words and word pairs** for other text (character
bigrams of English are shared by any two sentences).  ``together`` joins
items into stories (through any chain of similar pairs) and places each
story where its earliest item stands.  The thresholds were measured on the
corpus's news feeds and the reference digest (``python -m bench.labels``,
``docs/labels.md``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from itertools import pairwise

from bot.models import Item

CJK_SIMILARITY = 0.2  # character bigrams: the reference's same-story pair is 0.32, its other pairs 0.04–0.11
WORD_SIMILARITY = 0.25  # content words and word pairs
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")
_NOT_TEXT = re.compile(r"[\s\W_]+")
_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)
_STOP = frozenset(
    """the and for with from that this into over after about against between during under will would could should
    have has had been were was are not but its their they them his her says said say new more than also just
    says who what when where which while your you our out off all any can may one two""".split()
)


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def grams(item: Item) -> frozenset[str]:
    """What an item's story is compared by (see the module's docstring)."""
    text = _fold(" ".join((item.title, *item.body[:1])))[:400]
    if _CJK.search(text):
        squeezed = _NOT_TEXT.sub("", text)
        return frozenset(squeezed[i : i + 2] for i in range(len(squeezed) - 1))
    words = [w for w in _WORD.findall(text) if w not in _STOP]
    return frozenset(words) | frozenset(f"{a} {b}" for a, b in pairwise(words))


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def same_story(a: frozenset[str], b: frozenset[str], cjk: bool) -> bool:
    return similarity(a, b) >= (CJK_SIMILARITY if cjk else WORD_SIMILARITY)


def together(items: Sequence[Item]) -> tuple[Item, ...]:
    """``items`` (in publication order) with each story's items adjacent: a
    story stands where its earliest item does, its items in publication
    order."""
    sets = [grams(i) for i in items]
    cjk = [bool(_CJK.search(i.title)) for i in items]
    story = list(range(len(items)))

    def root(n: int) -> int:
        while story[n] != n:
            story[n] = story[story[n]]
            n = story[n]
        return n

    for a in range(len(items)):
        for b in range(a + 1, len(items)):
            if cjk[a] == cjk[b] and same_story(sets[a], sets[b], cjk[a]):
                story[root(b)] = root(a)
    first: dict[int, int] = {}
    for n in range(len(items)):
        first.setdefault(root(n), n)
    return tuple(item for _, item in sorted(enumerate(items), key=lambda p: (first[root(p[0])], p[0])))
