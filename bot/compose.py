"""A day's items to a rendered digest (pure), at a bounded cost.

``compose_day`` is what ``bot.digest`` runs in a worker process for every
digest: the automatic labels (``bot.labels``: SudachiPy's dictionary takes
~80 MB, which the service's process does not keep), the groups and their
stories (``bot.topics``, ``bot.stories``), the text (``bot.render``).  Its
cost grows with the items, never with their square: labels read a sample
of a busy day, stories are found from candidate pairs, each with a budget;
the worker's CPU limit is the last guard (issue 21: 2,000 items took 79 s
on the event loop, and a watchdog restart rebuilt the same digest for
ever).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from bot.config import Config
from bot.labels import Choice, GroupText, ItemText, label_groups
from bot.models import Item, Rendered
from bot.render import render
from bot.stories import Budget
from bot.topics import Assignment, assign, best_rule, build_digest, choose_label, topic_words


@dataclass(frozen=True)
class Composed:
    rendered: Rendered
    choices: tuple[Choice, ...] = ()  # how each automatic label was chosen
    phrases: frozenset[str] = frozenset()  # the day's phrases, tomorrow's background
    stories: str = "all"  # "all": every story found; "capped": from candidate pairs; "off": budget spent


def compose(
    config: Config,
    items: Sequence[Item],
    day: date,
    auto: Mapping[str, str] | None = None,
    budget: Budget | None = None,
    plan: Assignment | None = None,
) -> Rendered:
    """``auto``: the labels ``bot.labels`` chose, by topic tag; ``plan``:
    ``bot.topics.assign``'s answer for ``items``, if known."""
    digest = build_digest(items, day, config.topics, config.labels, config.digest, auto, budget, plan)
    return render(config, digest)


def compose_day(config: Config, items: Sequence[Item], day: date, background: Mapping[str, int]) -> Composed:
    """Labels, groups, stories and text of the day's digest."""
    choices: list[Choice] = []
    phrases: set[str] = set()
    plan = assign(items, config.topics, config.digest)
    if config.digest.labels == "auto":
        groups = label_input(config, items, plan)
        if any(g.auto for g in groups):
            choices, phrases = label_groups(groups, background)
    budget = Budget()
    rendered = compose(config, items, day, {c.tag: c.label for c in choices if c.label}, budget, plan)
    stories = "off" if budget.exhausted else "capped" if budget.capped else "all"
    return Composed(rendered, (*named_by_config(config, plan), *choices), frozenset(phrases), stories)


def named_by_config(config: Config, plan: Assignment) -> list[Choice]:
    """The topic groups the config names (a fixed label, a ``[[labels]]``
    rule), with what named them: ``digest --explain`` says so."""
    out = []
    for topic, members in zip(config.topics, plan.members, strict=True):
        if not members:
            continue
        if topic.label:
            out.append(Choice(topic.tag, topic.label, source="its topic's fixed label"))
        elif (best := best_rule(config.labels, [plan.texts[i.id] for i in members])) is not None:
            index, count = best
            rule = config.labels[index]
            out.append(
                Choice(
                    topic.tag,
                    rule.text,
                    source=f"the rule labels[{index}], which {count} of its {len(members)} item(s) match",
                )
            )
    return out


def compose_plain(config: Config, items: Sequence[Item], day: date) -> Composed:
    """The fallback when ``compose_day`` could not finish: groups and text,
    dated labels, items in publication order (no stories)."""
    return Composed(compose(config, items, day, None, Budget(left=0, exhausted=True)), stories="off")


def label_input(config: Config, items: Sequence[Item], plan: Assignment | None = None) -> list[GroupText]:
    """The day's groups as ``bot.labels`` reads them; ``auto`` for the topic
    groups that neither a fixed label nor a ``[[labels]]`` rule names."""
    plan = plan or assign(items, config.topics, config.digest)

    def texts(group: Sequence[Item]) -> tuple[ItemText, ...]:
        return tuple(ItemText(i.title or (i.body[0] if i.body else ""), i.body) for i in group)

    groups = [GroupText("", (), texts(plan.lead), auto=False)]
    for topic, members in zip(config.topics, plan.members, strict=True):
        if members:
            named = topic.label or choose_label(config.labels, [plan.texts[i.id] for i in members])
            groups.append(GroupText(topic.tag, topic_words(topic), texts(members), auto=named is None))
    groups.append(GroupText(config.digest.default_topic, (), texts(plan.rest), auto=False))
    return groups
