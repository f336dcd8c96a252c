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

Comparing every pair costs n²: 2,000 items of a busy day took 79 s, on the
event loop (issue 21).  ``together`` compares candidate pairs only:

* **exact**, while the postings it would read stay under
  ``EXACT_POSTINGS`` (a digest of a few hundred items, the reference
  digest, the corpus's feeds): *prefix filtering* (Chaudhuri et al. 2006;
  Bayardo et al. 2007, "all-pairs").  A set sharing ⌈t·|x|⌉ grams with x
  has one of any |x| − ⌈t·|x|⌉ + 1 of x's grams (pigeonhole), so x looks up
  only that many of its grams, the rarest, in an index of the earlier
  items; counting how many of them each candidate has rules most out
  before two sets are compared.  The stories are those of the all-pairs
  definition (tests/test_stories.py);
* **capped** on a busy day: each item looks up its ``RARE_GRAMS`` rarest
  grams among their ``RECENT_POSTINGS`` latest items and compares the
  ``COMPARED`` candidates that share most.  Bounded by n·(R·P + C); a
  link is still only made between similar items, so a story can come out
  split, never joined wrongly (bench/stories.py: 3 to 6 of ~300 stories
  split on 2,000 items, 10,000 items in ~5 s).

A ``Budget`` of steps, shared by a digest's groups, bounds the rest: past
it, the groups not yet grouped keep their publication order.  SetSimilarity-
Search (exact, in Python) and datasketch's MinHash LSH (approximate) were
measured beside it (bench/stories.py, docs/labels.md): neither bounds the
cost at this low a threshold.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import chain, pairwise
from operator import itemgetter

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
    # The first 400 characters, folded (cut before folding too: a body line
    # can be 7,000 characters, and folding shrinks text by half at most).
    text = _fold(" ".join((item.title, *item.body[:1]))[:1000])[:400]
    if _CJK.search(text):
        squeezed = _NOT_TEXT.sub("", text)
        return frozenset(map(str.__add__, squeezed, squeezed[1:]))
    words = [w for w in _WORD.findall(text) if w not in _STOP]
    return frozenset(words) | frozenset(f"{a} {b}" for a, b in pairwise(words))


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def same_story(a: frozenset[str], b: frozenset[str], cjk: bool) -> bool:
    return similarity(a, b) >= (CJK_SIMILARITY if cjk else WORD_SIMILARITY)


# Beyond this many postings, a group's stories are found from candidate
# pairs only (``_Join.capped``); about 0.3 s of CPU on bench/stories.py's day.
EXACT_POSTINGS = 250_000
# ``_Join.capped``: each item's rarest grams indexed, the most recent
# postings of each read, the candidates sharing most of them (two at least)
# compared.  Tuned on bench/stories.py's 2,000-item day of seed 7, where
# they split 3 of its 296 stories (docs/labels.md has the other seeds).
RARE_GRAMS = 64
RECENT_POSTINGS = 16
COMPARED = 16
MIN_SHARED = 2
ITEM_STEPS = 400  # what reading an item's grams costs, in budget steps (its first 400 characters)


@dataclass
class Budget:
    """Work ``together`` may still do, in steps: ``ITEM_STEPS`` per item
    read, then postings read and pairs compared; shared by the groups of one
    digest.  A count, not a clock: the same items give the same digest on
    any machine, however busy.  10,000 items of 400 characters take about
    10 million steps (5 s of CPU); past the budget, the groups not yet
    grouped keep their publication order (``exhausted``).  ``capped``: some
    group's stories were found among candidate pairs only."""

    left: int = 20_000_000
    capped: bool = False
    exhausted: bool = False


def together(items: Sequence[Item], budget: Budget | None = None) -> tuple[Item, ...]:
    """``items`` (in publication order) with each story's items adjacent: a
    story stands where its earliest item does, its items in publication
    order.  With ``budget`` spent, ``items`` in the order given."""
    first = story_starts(items, budget)
    return tuple(item for _, item in sorted(enumerate(items), key=lambda p: (first[p[0]], p[0])))


def story_starts(items: Sequence[Item], budget: Budget | None = None) -> list[int]:
    """For each item, the index of the first item of its story."""
    budget = budget if budget is not None else Budget()
    if len(items) < 2:
        return list(range(len(items)))
    budget.left -= len(items) * ITEM_STEPS
    if budget.exhausted or budget.left < 0:
        budget.exhausted = True
        return list(range(len(items)))
    sets = [grams(i) for i in items]
    cjk = [bool(_CJK.search(i.title)) for i in items]
    story = list(range(len(items)))

    def root(n: int) -> int:
        while story[n] != n:
            story[n] = story[story[n]]
            n = story[n]
        return n

    for flag, threshold in ((True, CJK_SIMILARITY), (False, WORD_SIMILARITY)):
        members = [n for n in range(len(items)) if cjk[n] == flag and sets[n]]
        if len(members) > 1:
            _Join(members, sets, Fraction(str(threshold)), story, root, budget).run()
    first: dict[int, int] = {}
    return [first.setdefault(root(n), n) for n in range(len(items))]


class _Join:
    """Union in ``story`` every pair of ``members`` at least ``t`` similar
    (exact), or the pairs found among candidates (``capped``).

    The grams that more than one member has become numbers in one order,
    rarest first (ties by the gram), so that a member's sorted numbers are
    its shared grams rarest first; a gram only one member has can make no
    candidate, but it counts in the prefix (it comes first)."""

    def __init__(
        self,
        members: list[int],
        sets: list[frozenset[str]],
        t: Fraction,  # exact: ⌈t·n⌉ in floating point is off by one at t·n = 3.0000000000000004
        story: list[int],
        root: Callable[[int], int],
        budget: Budget,
    ) -> None:
        self.members, self.sets, self.t, self.story, self.root, self.budget = members, sets, t, story, root, budget
        frequency = Counter(chain.from_iterable(sets[n] for n in members))
        order = sorted(((f, g) for g, f in frequency.items() if f > 1))
        rank = {g: r for r, (_, g) in enumerate(order, start=1)}  # from 1: ``rank.get`` gives None for the rest
        self.by_rank = [0, *(f for f, _ in order)]  # a gram's frequency, by its number
        self.ids = {n: sorted(filter(None, map(rank.get, sets[n]))) for n in members}
        # Compared as sets of numbers: twice as fast as sets of strings, and
        # the same size of intersection (a gram only one member has is
        # shared with nobody); the sizes are those of the whole sets.
        self.shared = {n: frozenset(ids) for n, ids in self.ids.items()}

    def probe(self, n: int) -> list[int]:
        """The shared grams among the first |x| − ⌈t·|x|⌉ + 1 of ``n``'s
        grams, rarest first: a set sharing ⌈t·|x|⌉ grams with it has one of
        those (pigeonhole)."""
        size, ids = len(self.sets[n]), self.ids[n]
        return ids[: max(0, size - _ceil(self.t * size) + 1 - (size - len(ids)))]

    def run(self) -> None:
        by_rank = self.by_rank
        cost = sum(sum(map(by_rank.__getitem__, self.probe(n))) for n in self.members) // 2
        if cost <= min(EXACT_POSTINGS, self.budget.left):
            self.exact()
        else:
            self.budget.capped = True
            self.capped()

    def link(self, x: int, candidates: Iterable[int], counts: Counter[int] | None = None) -> None:
        """Join ``x`` to each candidate at least ``t`` similar to it.  With
        ``counts`` (of x's probed grams each candidate has), the candidates
        that cannot reach ``t`` are ruled out before their sets are compared."""
        root, story, sets, shared_grams = self.root, self.story, self.sets, self.shared
        rx = root(x)
        mine = shared_grams[x]
        size = len(sets[x])
        tn, td = self.t.numerator, self.t.denominator
        unprobed = len(self.ids[x]) - len(self.probe(x))  # shared grams of x the counts did not look at
        for y in candidates:
            other = len(sets[y])
            if td * other < tn * size or tn * other > td * size or root(y) == rx:
                continue  # sizes that cannot be t-similar, or the same story already
            if counts is not None and counts[y] + unprobed < -(-tn * (size + other) // (td + tn)):
                continue  # t needs ⌈t/(1+t)·(|x|+|y|)⌉ shared grams
            self.budget.left -= 1
            shared = len(mine & shared_grams[y])
            if shared * td >= tn * (size + other - shared):  # Jaccard ≥ t, in whole numbers
                story[root(y)] = rx

    def exact(self) -> None:
        """Every earlier member sharing a probed gram is a candidate; the
        counts of shared probed grams rule most out before sets are compared."""
        index: dict[int, list[int]] = {}
        for x in self.members:
            found: list[int] = []
            for g in self.probe(x):
                postings = index.get(g)
                if postings:
                    found += postings
            self.budget.left -= len(found)
            for g in self.ids[x]:
                index.setdefault(g, []).append(x)
            counts = Counter(found)
            self.link(x, counts, counts)

    def capped(self) -> None:
        """Each member's ``RARE_GRAMS`` rarest shared grams, the
        ``RECENT_POSTINGS`` latest members of each, the ``COMPARED`` sharing
        most of them compared: at most n·(R·P + C) steps.  A link is only
        made between similar items: a story can come out split, never
        joined wrongly."""
        index: dict[int, list[int]] = {}
        for x in self.members:
            found: list[int] = []
            for g in self.ids[x][:RARE_GRAMS]:
                postings = index.setdefault(g, [])
                found += postings[-RECENT_POSTINGS:]
                postings.append(x)
            self.budget.left -= len(found)
            ranked = sorted(Counter(found).items(), key=itemgetter(1), reverse=True)[:COMPARED]
            self.link(x, [y for y, n in ranked if n >= MIN_SHARED])
            if self.budget.left < 0:
                self.budget.exhausted = True
                return


def _ceil(value: Fraction) -> int:
    return -(-value.numerator // value.denominator)
