"""Grouping items under hashtag topics and choosing labels (pure).

``match`` rules are lists whose elements must all be found in an item's
title and body; an element is a tuple of alternatives of which one must be
found.  Comparison is on NFKC-normalised, case-folded text, so 「ＵＳＡ」,
"usa" and "USA" are one word.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import date

from bot.config import DigestSettings, LabelRule, Topic
from bot.models import Digest, Group, Item

Rule = tuple[tuple[str, ...], ...]


def fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def haystack(item: Item) -> str:
    return fold("\n".join((item.title, *item.body)))


def matches(rule: Rule, text: str) -> bool:
    """``text`` must already be folded."""
    return all(any(fold(alt) in text for alt in element) for element in rule)


def excluded(words: Sequence[str], text: str) -> bool:
    return any(fold(w) in text for w in words)


def topic_of(topics: Sequence[Topic], text: str) -> int | None:
    """Index of the first topic whose match holds and exclude does not."""
    for i, topic in enumerate(topics):
        if matches(topic.match, text) and not excluded(topic.exclude, text):
            return i
    return None


def is_lead(lead: Sequence[str], item: Item) -> bool:
    title = fold(item.title)
    return bool(item.title) and any(fold(p) in title for p in lead)


def choose_label(rules: Sequence[LabelRule], texts: Sequence[str], fallback: str) -> str:
    """The rule matched by most items (ties: the first rule), else ``fallback``."""
    best, best_count = fallback, 0
    for rule in rules:
        count = sum(1 for t in texts if matches(rule.match, t))
        if count > best_count:
            best, best_count = rule.text, count
    return best


def yymmdd(day: date) -> str:
    return day.strftime("%y%m%d")


def build_digest(
    items: Sequence[Item],
    day: date,
    topics: Sequence[Topic],
    labels: Sequence[LabelRule],
    settings: DigestSettings,
) -> Digest:
    """Lead items first, then topic groups in configuration order, fallback last."""
    ordered = sorted(items, key=lambda i: (i.when, i.id))
    lead: list[Item] = []
    members: list[list[tuple[Item, str]]] = [[] for _ in topics]
    rest: list[Item] = []
    for item in ordered:
        if is_lead(settings.lead, item):
            lead.append(item)
            continue
        text = haystack(item)
        index = topic_of(topics, text)
        if index is None:
            rest.append(item)
        else:
            members[index].append((item, text))
    date_label = yymmdd(day)
    groups = [
        Group(
            tag=topic.tag,
            label=topic.label or choose_label(labels, [t for _, t in group], date_label),
            items=tuple(i for i, _ in group),
        )
        for topic, group in zip(topics, members, strict=True)
        if group
    ]
    if rest:
        groups.append(Group(tag=settings.default_topic, label=date_label, items=tuple(rest)))
    return Digest(date=day.isoformat(), lead=tuple(lead), groups=tuple(groups))
