"""The day's event named by itself: automatic labels of topic groups (pure).

In the reference digest a group's tag line names its topic and the day's
event: ``#中露(オンライン会談)``.  Without a ``[[labels]]`` rule that
matches, ``label_groups`` chooses that event from the day's items.

**Phrases.**  Japanese text is cut into words by SudachiPy (its core
dictionary, split mode C: the longest units it knows); a phrase is a run of
nouns (with prefixes and noun-forming suffixes: 新政権, トランプ氏, 戦略的)
whose last noun is a common noun (普通名詞): 首脳会談, トランプ氏就任,
政策金利.  A bare name (ウクライナ, プーチン氏) names no event.  Other text:
a phrase is a run of one to four words with no stop word and no punctuation
in it ("interest rate cut", "climate summit"); a single word needs four
letters.  Leading numbers are dropped ("17年ぶり水準" gives "年ぶり水準" no:
it starts at the first word that is not a number or a counter).

**Candidates** of a group: a phrase found in at least two of its items
(headline or the first body lines), or in the headline of a group of one;
two to 20 characters; not one of the topic's own match words, nor one with
a character or so around it (中国 says nothing for #中露, nor プーチン氏).

**Score**: 2 for each item of the group whose headline has the phrase, 1
for each whose body has it, and 2 for each item of the day's other groups
whose headline has it (the day's event is in more than one story); divided
by 1 + the number of the previous days (of ``BACKGROUND_DAYS``) on which it
appeared: what is there every day says nothing new.

**Ties**: the higher score, then the longer phrase, then the one found
first (items in their order, headline before body), then code-point order.
The same items and history give the same label.

This module reads no files of its own; SudachiPy loads its dictionary (in a
worker process: it takes ~80 MB, ``bot.digest`` runs this there).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

MAX_LABEL_CHARS = 20
BODY_LINES = 3  # of each item's body, read for phrases
TEXT_CHARS = 600  # of each item's headline and body lines together
BACKGROUND_DAYS = 14  # previous days whose phrases make the background
SAMPLE_ITEMS = 400  # items read for a day's labels at most (``sampled``)
SAMPLE_FLOOR = 20  # of each group, when the day is sampled
HEADLINE_WEIGHT = 2
BODY_WEIGHT = 1
ELSEWHERE_WEIGHT = 2

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")
_WORD = re.compile(r"[^\W\d_][\w'’\-]*|\d[\d.,]*", re.UNICODE)
_BREAK = re.compile(r"[.,;:!?()\[\]{}\"“”‘’«»|/\\–—]")
# Nouns that name nothing on their own (a phrase ending in one is no event).
_EMPTY_HEADS = frozenset(
    "こと もの ため よう ところ 方 中 後 前 時 日 月 年 人 者 等 など 以上 以下 今回 今後"
    " 現在 一部 全て 場合 予定 可能性 必要 様子 ほか 他 方針 点 際 上 下 間 的".split()
)
_STOP = frozenset(
    """a an the and or but if of to in on at by for from with without as is are was were be been being it its
    this that these those he she they we you i his her their our your my me him them us not no nor so than
    too very can could will would shall should may might must do does did has have had having into over under
    after before about against between during up down out off again further then once here there when where why
    how all any both each few more most other some such only own same just also says said say new
    der die das und oder ein eine le la les et ou un une des el los las y o del en de""".split()
)


@dataclass(frozen=True)
class ItemText:
    """What of an item is read for phrases."""

    headline: str
    body: tuple[str, ...] = ()


@dataclass(frozen=True)
class GroupText:
    """One group of the day: its tag, its topic's match words, its items.
    ``auto``: whether it gets an automatic label (the fallback group and
    the lead items only count for the others' "elsewhere")."""

    tag: str
    words: tuple[str, ...]
    items: tuple[ItemText, ...]
    auto: bool = True


@dataclass(frozen=True)
class Candidate:
    phrase: str
    score: float
    headlines: int  # items of the group whose headline has it
    bodies: int  # items of the group whose body (only) has it
    elsewhere: int  # headlines of the day's other groups that have it
    past_days: int  # previous days it appeared on

    def explain(self) -> str:
        return (
            f"{self.phrase}: {self.score:.2f} = ({HEADLINE_WEIGHT}×{self.headlines} headline"
            f" + {BODY_WEIGHT}×{self.bodies} body + {ELSEWHERE_WEIGHT}×{self.elsewhere} elsewhere)"
            f" / (1 + {self.past_days} past day{'s' if self.past_days != 1 else ''})"
        )


@dataclass(frozen=True)
class Choice:
    tag: str
    label: str | None  # None: nothing qualified (the date is used)
    candidates: tuple[Candidate, ...] = field(default=())
    source: str = ""  # a group named by the config, not chosen here: by what (for --explain)


def fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


# -- phrases ---------------------------------------------------------------


@lru_cache(maxsize=1)
def _tokenizer() -> Any:
    from sudachipy import Dictionary, SplitMode

    return Dictionary(dict="core").tokenizer(mode=SplitMode.C)


def _japanese_phrases(text: str) -> list[str]:
    found: list[str] = []
    run: list[tuple[str, tuple[str, ...]]] = []

    def close() -> None:
        while run and (run[0][1][1] == "数詞" or run[0][1][0] == "接尾辞"):
            run.pop(0)  # a phrase starts at a word, not at "17" or "年"
        nouns = [pos for _, pos in run if pos[0] == "名詞"]
        if nouns and nouns[-1][1] == "普通名詞" and run[-1][0] not in _EMPTY_HEADS:
            last_noun = next(s for s, pos in reversed(run) if pos[0] == "名詞")
            if last_noun not in _EMPTY_HEADS:
                found.append("".join(s for s, _ in run))
        run.clear()

    for m in _tokenizer().tokenize(text):
        pos = tuple(m.part_of_speech())
        joins = pos[0] == "名詞" or pos[0] == "接頭辞" or (pos[0] == "接尾辞" and bool(run))
        if joins and pos[1] != "代名詞":
            run.append((m.surface(), pos))
        else:
            close()
    close()
    return found


def _other_phrases(text: str) -> list[str]:
    found: list[str] = []
    for part in _BREAK.split(text):
        words = _WORD.findall(part)
        run: list[str] = []
        for word in [*words, ""]:
            if word and fold(word) not in _STOP and not word[0].isdigit():
                run.append(word)
                continue
            for size in range(min(len(run), 4), 0, -1):  # the longest piece first
                for start in range(0, len(run) - size + 1):
                    piece = run[start : start + size]
                    if size > 1 or len(piece[0]) >= 4:
                        found.append(" ".join(piece))
            run = []
    return found


def phrases(text: str) -> set[str]:
    """The folded phrases of ``text`` (see the module's docstring)."""
    text = text[:TEXT_CHARS]
    found = _japanese_phrases(text) if _CJK.search(text) else _other_phrases(text)
    return {fold(p) for p in found if 2 <= len(p) <= MAX_LABEL_CHARS}


def _shown_forms(texts: Iterable[str]) -> dict[str, str]:
    """Each folded phrase as first written (a label keeps its full-width
    characters and capitals)."""
    forms: dict[str, str] = {}
    for text in texts:
        text = text[:TEXT_CHARS]
        for p in _japanese_phrases(text) if _CJK.search(text) else _other_phrases(text):
            forms.setdefault(fold(p), p)
    return forms


# -- choosing -----------------------------------------------------------------


def _is_topic_word(phrase: str, words: Sequence[str]) -> bool:
    """The topic's own word, or nearly: 中国, プーチン氏 (one character left)."""
    for word in words:
        w = fold(word)
        if w and w in phrase and len(phrase.replace(w, "")) < 2:
            return True
    return False


def sampled(groups: Sequence[GroupText], most: int = SAMPLE_ITEMS) -> list[GroupText]:
    """The groups with at most about ``most`` items in all: on a busy day
    each group keeps the same share of its items (``SAMPLE_FLOOR`` at
    least), evenly spaced through the day.  Sudachi reads ~2 ms an item,
    and a day's event is in many of its items: 10,000 items would take 20 s
    to say what 400 say (issue 21)."""
    total = sum(len(g.items) for g in groups)
    if total <= most:
        return list(groups)
    out = []
    for g in groups:
        keep = min(len(g.items), max(SAMPLE_FLOOR, len(g.items) * most // total))
        out.append(replace(g, items=tuple(g.items[k * len(g.items) // keep] for k in range(keep))))
    return out


def label_groups(groups: Sequence[GroupText], background: Mapping[str, int]) -> tuple[list[Choice], set[str]]:
    """A choice per group with ``auto`` set, and every phrase of the day (to
    remember as tomorrow's background).  ``background``: folded phrase →
    the number of previous days it appeared on."""
    groups = sampled(groups)
    read = [
        [(phrases(item.headline), phrases(" ".join(item.body[:BODY_LINES]))) for item in group.items]
        for group in groups
    ]
    day = {p for group in read for head, body in group for p in head | body}
    # Counted once, not per phrase and item: a busy day has thousands of each.
    every_head = Counter(p for group in read for head, _ in group for p in head)
    choices: list[Choice] = []
    for index, group in enumerate(groups):
        if not group.auto:
            continue
        own = read[index]
        own_heads = Counter(p for head, _ in own for p in head)
        own_bodies = Counter(p for head, body in own for p in body - head)
        order: dict[str, int] = {}
        for head, body in own:
            for p in sorted(head) + sorted(body - head):
                order.setdefault(p, len(order))
        candidates = []
        for phrase in order:
            heads, bodies = own_heads[phrase], own_bodies[phrase]
            qualifies = heads + bodies >= 2 or (len(own) == 1 and heads == 1)
            if not qualifies or _is_topic_word(phrase, group.words):
                continue
            elsewhere = every_head[phrase] - heads
            past = background.get(phrase, 0)
            score = (HEADLINE_WEIGHT * heads + BODY_WEIGHT * bodies + ELSEWHERE_WEIGHT * elsewhere) / (1 + past)
            candidates.append(Candidate(phrase, score, heads, bodies, elsewhere, past))
        candidates.sort(key=lambda c: (-c.score, -len(c.phrase), order[c.phrase], c.phrase))
        label = None
        if candidates:
            forms = _shown_forms(t for item in group.items for t in (item.headline, *item.body[:BODY_LINES]))
            label = forms.get(candidates[0].phrase, candidates[0].phrase)
        choices.append(Choice(group.tag, label, tuple(candidates[:8])))
    return choices, day
