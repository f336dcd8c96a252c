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
  ``COMPARED`` candidates that share most, in numpy.  Bounded by
  n·(R·P + C); a link is still only made between similar items, so a story
  can come out split, never joined wrongly (bench/stories.py: on 2,000
  items, 0 or 1 of ~270 stories split; 10,000 items in under 4 s of CPU).

A ``Budget`` of steps, shared by a digest's groups, bounds the rest: past
it, the groups not yet grouped keep their publication order.  SetSimilarity-
Search (exact, in Python) and datasketch's MinHash LSH (approximate) were
measured beside it (bench/stories.py, docs/labels.md): neither bounds the
cost at this low a threshold.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import chain, pairwise
from typing import Any

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
    return frozenset(_grams_of(_text(item)))


def _text(item: Item) -> str:
    """The first 400 characters of headline and first body line, folded (cut
    before folding too: a body line can be 7,000 characters, and folding
    shrinks text by half at most)."""
    return _fold(" ".join((item.title, *item.body[:1]))[:1000])[:400]


def _grams_of(text: str) -> dict[str, None]:
    """``text``'s grams in the order they first come (an order that does
    not depend on the process, as a set's would)."""
    if _CJK.search(text):
        squeezed = _NOT_TEXT.sub("", text)
        return dict.fromkeys(map(str.__add__, squeezed, squeezed[1:]))
    words = _words(text)
    return dict.fromkeys(chain(words, (f"{a} {b}" for a, b in pairwise(words))))


def _words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text) if w not in _STOP]


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def same_story(a: frozenset[str], b: frozenset[str], cjk: bool) -> bool:
    return similarity(a, b) >= (CJK_SIMILARITY if cjk else WORD_SIMILARITY)


# Beyond this many postings, a group's stories are found from candidate
# pairs only (``_Join.capped``); about 0.3 s of CPU on bench/stories.py's day.
EXACT_POSTINGS = 250_000
EXACT_ITEMS = 1500  # past this many, no exact join is tried (its grams as strings alone take seconds)
# ``_Join.capped``: each item's rarest grams indexed, the most recent
# postings of each read, the candidates sharing most of them (two at least)
# compared.  Tuned on bench/stories.py's 2,000-item day of seed 7, where
# they split 3 of its 296 stories (docs/labels.md has the other seeds).
RARE_GRAMS = 64
RECENT_POSTINGS = 16
COMPARED = 8
MIN_SHARED = 4
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
    texts = [_text(i) for i in items]
    cjk = [bool(_CJK.search(i.title)) for i in items]
    story = list(range(len(items)))

    def root(n: int) -> int:
        while story[n] != n:
            story[n] = story[story[n]]
            n = story[n]
        return n

    for flag, threshold in ((True, CJK_SIMILARITY), (False, WORD_SIMILARITY)):
        t = Fraction(str(threshold))
        members = [n for n in range(len(items)) if cjk[n] == flag]
        if len(members) < 2:
            continue
        if len(members) <= EXACT_ITEMS:
            join = _Join(members, {n: _grams_of(texts[n]) for n in members}, t, story, root, budget)
            if join.cost() <= min(EXACT_POSTINGS, budget.left):
                join.exact()
                continue
        budget.capped = True
        if not _capped(members, texts, t, story, root, budget):
            break
    first: dict[int, int] = {}
    return [first.setdefault(root(n), n) for n in range(len(items))]


class _Join:
    """The exact join: union in ``story`` every pair of ``members`` at
    least ``t`` similar.

    Each member's grams are sorted rarest first (by how many members have
    them; ties in text order, the same in every process); those only it
    has come first of all, and can make no candidate, but count in the
    prefix."""

    def __init__(
        self,
        members: list[int],
        seqs: dict[int, dict[str, None]],
        t: Fraction,  # exact: ⌈t·n⌉ in floating point is off by one at t·n = 3.0000000000000004
        story: list[int],
        root: Callable[[int], int],
        budget: Budget,
    ) -> None:
        self.members = [n for n in members if seqs[n]]  # no grams: similar to nothing
        self.t, self.story, self.root, self.budget = t, story, root, budget
        self.sets = {n: frozenset(seqs[n]) for n in self.members}
        self.frequency = Counter(chain.from_iterable(seqs[n] for n in self.members))
        key = self.frequency.__getitem__
        self.order = {n: sorted(seqs[n], key=key) for n in self.members}
        self.unique = {n: bisect_left(grams, 2, key=key) for n, grams in self.order.items()}

    def probe(self, n: int) -> list[str]:
        """The shared grams among the first |x| − ⌈t·|x|⌉ + 1 of ``n``'s
        grams, rarest first: a set sharing ⌈t·|x|⌉ grams with it has one of
        those (pigeonhole)."""
        size = len(self.sets[n])
        return self.order[n][self.unique[n] : size - _ceil(self.t * size) + 1]

    def cost(self) -> int:
        """About how many postings ``exact`` would read."""
        frequency = self.frequency.__getitem__
        return sum(sum(map(frequency, self.probe(n))) for n in self.members) // 2

    def exact(self) -> None:
        """Every earlier member sharing a probed gram is a candidate; the
        counts of shared probed grams rule most out before sets are compared
        (the rest of x's shared grams could all be shared: still short)."""
        index: dict[str, list[int]] = {}
        tn, td = self.t.numerator, self.t.denominator
        root, story, sets = self.root, self.story, self.sets
        for x in self.members:
            probe = self.probe(x)
            found: list[int] = []
            for g in probe:
                postings = index.get(g)
                if postings:
                    found += postings
            self.budget.left -= len(found)
            shared = self.order[x][self.unique[x] :]
            for g in shared:
                index.setdefault(g, []).append(x)
            unprobed = len(shared) - len(probe)
            rx = root(x)
            mine = sets[x]
            size = len(mine)
            for y, count in Counter(found).items():
                theirs = sets[y]
                other = len(theirs)
                if td * other < tn * size or tn * other > td * size or root(y) == rx:
                    continue  # sizes that cannot be t-similar, or the same story already
                if count + unprobed < -(-tn * (size + other) // (td + tn)):
                    continue  # t needs ⌈t/(1+t)·(|x|+|y|)⌉ shared grams
                self.budget.left -= 1
                if _similar(mine, theirs, tn, td):
                    story[root(y)] = rx


def _similar(a: frozenset[Any], b: frozenset[Any], tn: int, td: int) -> bool:
    """Jaccard ≥ tn/td, in whole numbers."""
    both = len(a & b)
    return both * td >= tn * (len(a) + len(b) - both)


def _capped(
    members: list[int], texts: list[str], t: Fraction, story: list[int], root: Callable[[int], int], budget: Budget
) -> bool:
    """The capped join, in numpy: each member's ``RARE_GRAMS`` rarest shared
    grams, the ``RECENT_POSTINGS`` latest members of each, the
    ``COMPARED`` sharing most of them (``MIN_SHARED`` at least) compared:
    at most n·(R·P + C) steps.  A link is only made between similar items:
    a story can come out split, never joined wrongly.  False if the budget
    ran out.

    Grams are numbers here: a pair of code points (Chinese, Japanese), or a
    word's or word pair's number in the order first seen; the same sets as
    ``grams``'s strings, so the same similarity."""
    import numpy as np

    vocab: dict[str, int] = {}
    arrays = []
    for n in members:
        text = texts[n]
        if _CJK.search(text):
            points = np.frombuffer(_NOT_TEXT.sub("", text).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
            codes = np.unique((points[:-1] << np.uint64(32)) | points[1:])  # above any word's number
        else:
            words = _words(text)
            tokens = dict.fromkeys(chain(words, (f"{a} {b}" for a, b in pairwise(words))))
            codes = np.unique(np.fromiter((vocab.setdefault(w, len(vocab)) for w in tokens), np.uint64, len(tokens)))
        arrays.append(codes)
    sizes = np.fromiter((len(a) for a in arrays), np.int64, len(arrays))
    if sizes.sum() == 0:
        return True
    owner = np.repeat(np.arange(len(members)), sizes)  # the member (by position) of each gram
    flat = np.concatenate(arrays)
    _, gram, counts = np.unique(flat, return_inverse=True, return_counts=True)  # gram: ordered by code
    frequency = counts[gram]
    shared = frequency >= 2
    owner, gram, frequency = owner[shared], gram[shared], frequency[shared]
    # Each member's rarest shared grams: by member, then rarity, then code.
    order = np.lexsort((gram, frequency, owner))
    owner, gram = owner[order], gram[order]
    first = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    rank = np.arange(len(owner)) - np.repeat(first, np.diff(np.r_[first, len(owner)]))
    owner, gram = owner[rank < RARE_GRAMS], gram[rank < RARE_GRAMS]
    # Postings: each gram's members in publication order; the P before each.
    order = np.lexsort((owner, gram))
    gram, owner = gram[order], owner[order]
    width = len(members)
    pairs = [
        owner[lag:][same].astype(np.int64) * width + owner[:-lag][same]
        for lag in range(1, RECENT_POSTINGS + 1)
        if len(owner) > lag
        for same in (gram[lag:] == gram[:-lag],)
    ]
    found = np.concatenate(pairs) if pairs else np.empty(0, np.int64)
    budget.left -= len(found)
    pair, shared_count = np.unique(found, return_counts=True)
    keep = shared_count >= MIN_SHARED
    pair, shared_count = pair[keep], shared_count[keep]
    later, earlier = pair // width, pair % width
    # The COMPARED of each member's candidates that share most (ties: the latest).
    order = np.lexsort((-earlier, -shared_count, later))
    later, earlier = later[order], earlier[order]
    first = np.flatnonzero(np.r_[True, later[1:] != later[:-1]]) if len(later) else np.empty(0, np.int64)
    rank = np.arange(len(later)) - np.repeat(first, np.diff(np.r_[first, len(later)]))
    later, earlier = later[rank < COMPARED], earlier[rank < COMPARED]
    sets: dict[int, frozenset[int]] = {}
    tn, td = t.numerator, t.denominator
    for x, y in zip(later.tolist(), earlier.tolist(), strict=True):
        a, b = members[x], members[y]
        size, other = int(sizes[x]), int(sizes[y])
        if td * other < tn * size or tn * other > td * size or root(a) == root(b):
            continue
        budget.left -= 1
        mine = sets.get(x) or sets.setdefault(x, frozenset(arrays[x].tolist()))
        theirs = sets.get(y) or sets.setdefault(y, frozenset(arrays[y].tolist()))
        if _similar(mine, theirs, tn, td):
            story[root(a)] = root(b)
        if budget.left < 0:
            budget.exhausted = True
            return False
    return True


def _ceil(value: Fraction) -> int:
    return -(-value.numerator // value.denominator)
