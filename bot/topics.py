"""Grouping items under hashtag topics and choosing labels (pure).

``match`` rules are lists whose elements must all be found in an item's
title and body; an element is a tuple of alternatives of which one must be
found.  Comparison is on NFKC-normalised, case-folded text, so 「ＵＳＡ」,
"usa" and "USA" are one word.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from bot.config import DigestSettings, LabelRule, Topic
from bot.models import Digest, Group, Item
from bot.stories import Budget, together

Rule = tuple[tuple[str, ...], ...]


def fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def haystack(item: Item) -> str:
    return fold("\n".join((item.title, *item.body)))


@lru_cache(maxsize=4096)
def _word(text: str) -> str:
    """A rule's word, folded once (rules are matched against every item)."""
    return fold(text)


def matches(rule: Rule, text: str) -> bool:
    """``text`` must already be folded."""
    return all(any(_word(alt) in text for alt in element) for element in rule)


def excluded(words: Sequence[str], text: str) -> bool:
    return any(_word(w) in text for w in words)


def topic_of(topics: Sequence[Topic], text: str) -> int | None:
    """Index of the first topic whose match holds and exclude does not."""
    for i, topic in enumerate(topics):
        if matches(topic.match, text) and not excluded(topic.exclude, text):
            return i
    return None


def is_lead(lead: Sequence[str], item: Item) -> bool:
    title = fold(item.title)
    return bool(item.title) and any(_word(p) in title for p in lead)


def choose_label(rules: Sequence[LabelRule], texts: Sequence[str]) -> str | None:
    """The rule matched by most items (ties: the first rule), else None."""
    best = best_rule(rules, texts)
    return rules[best[0]].text if best is not None else None


def best_rule(rules: Sequence[LabelRule], texts: Sequence[str]) -> tuple[int, int] | None:
    """The index of the rule matched by most items (ties: the first), and
    how many it matched; None if none matched."""
    best: tuple[int, int] | None = None
    for index, rule in enumerate(rules):
        count = sum(1 for t in texts if matches(rule.match, t))
        if count > (best[1] if best else 0):
            best = (index, count)
    return best


def yymmdd(day: date) -> str:
    return day.strftime("%y%m%d")


@dataclass(frozen=True)
class Assignment:
    """Which group each item of a digest goes to, before labels."""

    lead: tuple[Item, ...]
    members: tuple[tuple[Item, ...], ...]  # per topic, in configuration order
    rest: tuple[Item, ...]  # the fallback group
    texts: Mapping[int, str]  # each item's folded text (``haystack``), by item id: label rules read it again


def assign(items: Sequence[Item], topics: Sequence[Topic], settings: DigestSettings) -> Assignment:
    """Lead items, each topic's items and the rest, each in publication order."""
    ordered = sorted(items, key=lambda i: (i.when, i.id))
    lead: list[Item] = []
    members: list[list[Item]] = [[] for _ in topics]
    rest: list[Item] = []
    texts: dict[int, str] = {}
    for item in ordered:
        if is_lead(settings.lead, item):
            lead.append(item)
            continue
        text = texts[item.id] = haystack(item)
        index = topic_of(topics, text)
        (rest if index is None else members[index]).append(item)
    return Assignment(tuple(lead), tuple(tuple(m) for m in members), tuple(rest), texts)


def topic_words(topic: Topic) -> tuple[str, ...]:
    """Every word of a topic's match rule (a label must say more than these)."""
    return tuple(alt for element in topic.match for alt in element)


def build_digest(
    items: Sequence[Item],
    day: date,
    topics: Sequence[Topic],
    labels: Sequence[LabelRule],
    settings: DigestSettings,
    auto: Mapping[str, str] | None = None,
    budget: Budget | None = None,
    plan: Assignment | None = None,
) -> Digest:
    """Lead items first, then topic groups in configuration order, fallback last.

    A topic group's label: the topic's fixed label, else the ``[[labels]]``
    rule most of its items match, else ``auto[tag]`` (the day's event,
    ``bot.labels``), else the date.  Within a group, items of one story
    stand together (``together``), within ``budget`` for the whole digest.
    ``plan``: ``assign``'s answer for these items, if already known."""
    budget = budget if budget is not None else Budget()
    plan = plan or assign(items, topics, settings)
    date_label = yymmdd(day)
    groups = []
    for topic, group in zip(topics, plan.members, strict=True):
        if not group:
            continue
        label = topic.label or choose_label(labels, [plan.texts[i.id] for i in group]) or (auto or {}).get(topic.tag)
        groups.append(Group(tag=topic.tag, label=label or date_label, items=together(group, budget)))
    if plan.rest:
        groups.append(Group(tag=settings.default_topic, label=date_label, items=together(plan.rest, budget)))
    return Digest(date=day.isoformat(), lead=plan.lead, groups=tuple(groups))
