"""The ``[[digests]]`` tables: the digests one installation makes, each of
its own feeds, topics and label rules, on its own schedule, to its own
webhooks.

```toml
[[digests]]
name = "ukraine"
feeds = ["NHK*", "ロイター"]      # feed names or globs (case-sensitive)
tags = ["ukraine"]               # and/or feeds whose tags hold one
webhooks = ["tg-ukraine"]        # by the webhooks' name keys
topics = ["ウクライナ*"]          # [[topics]] by tag (globs)
label_rules = ["ウクライナ侵攻"]   # [[labels]] by text
digest_at = ["08:00"]            # digest_at / digest_every: its own timing
lead = ["..."]                   # and any of PER_DIGEST's [digest] keys
```

A key left out takes everything (every feed, webhook, topic, rule) or the
global value (``[schedule]``'s timing, ``[digest]``'s settings).  With no
``[[digests]]`` table there is one implicit digest, named "", of everything
(``Config.streams``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from bot.config.feeds import Feed, LabelRule, Topic
from bot.config.reading import Reader
from bot.config.schedule import DIGEST_CHECKS, PER_DIGEST, DigestSettings, Schedule, digest_settings, digest_times
from bot.config.values import _did_you_mean, _nonempty_str, _shown, _str_list
from bot.config.webhooks import Webhook

DIGEST_KEYS = frozenset({"name", "feeds", "tags", "webhooks", "topics", "label_rules", "digest_at", "digest_every"})
_NAME = re.compile(r"[\w.-]{1,64}")
_NONE: tuple[str, ...] = ()


@dataclass(frozen=True)
class DigestSpec:
    """One digest the installation makes: its feeds, topics, schedule, destinations."""

    name: str = ""  # "" only for the implicit digest of a config without [[digests]]
    feeds: tuple[str, ...] = ()  # the NAMES of the configured feeds it takes (resolved, config order)
    webhooks: tuple[Webhook, ...] = ()
    topics: tuple[Topic, ...] = ()
    labels: tuple[LabelRule, ...] = ()
    # Its digest_at / digest_every; poll_every = the global one (unused per digest).
    schedule: Schedule = field(default_factory=Schedule)
    digest: DigestSettings = field(default_factory=DigestSettings)


def digest_name(v: Any) -> str:
    """1 to 64 letters (any script), digits, "_", "." or "-": it appears in slot keys and ``--name``."""
    s = _nonempty_str(v)
    if not _NAME.fullmatch(s):
        raise ValueError(f'{s!r} is not a digest name: 1 to 64 letters, digits, "_", "." or "-"')
    return s


def read_digests(
    r: Reader,
    data: Any,
    *,
    feeds: Sequence[Feed],
    webhooks: Sequence[Webhook],
    topics: Sequence[Topic],
    labels: Sequence[LabelRule],
    schedule: Schedule,
    digest: DigestSettings,
    raw_webhooks: Any = (),
) -> tuple[DigestSpec, ...]:
    """The ``[[digests]]`` tables, each resolved against the tables read
    before them.  ``raw_webhooks``, the ``[[webhooks]]`` data: a name there
    whose webhook was refused is that webhook's problem, not the reference's."""
    if not isinstance(data, list):
        r.problem("digests", f"must be an array of tables ([[digests]]), not {_shown(data)}")
        return ()
    out: list[DigestSpec] = []
    names: dict[str, int] = {}
    allowed = set(DIGEST_KEYS) | set(PER_DIGEST)
    refused = {w["name"].strip() for w in raw_webhooks if isinstance(w, dict) and isinstance(w.get("name"), str)} - {
        w.name for w in webhooks
    }
    for i, raw in enumerate(data):
        p = f"digests[{i}]"
        t = r.table(raw, p, allowed)
        name = r.required(t, "name", f"{p}.name", digest_name)
        if name is not None:
            if name in names:
                r.problem(f"{p}.name", f"{name!r} is already the name of digests[{names[name]}]")
            names.setdefault(name, i)
        if "digest_at" in t or "digest_every" in t:  # its own timing, read as [schedule]'s
            at, every = digest_times(r, t, p, Schedule())
            own = Schedule(poll_every=schedule.poll_every, digest_at=at, digest_every=every)
        else:
            own = schedule
        out.append(
            DigestSpec(
                name=name or "",
                feeds=_feeds(r, t, p, feeds),
                webhooks=_webhooks(r, t, p, webhooks, refused),
                topics=_topics(r, t, p, topics),
                labels=_labels(r, t, p, labels),
                schedule=own,
                digest=digest_settings(r, t, p, digest, {k: DIGEST_CHECKS[k] for k in PER_DIGEST}),
            )
        )
    if out:
        taken = {f for spec in out for f in spec.feeds}
        for k, feed in enumerate(feeds):
            if feed.enabled and feed.name and feed.name not in taken:
                r.warnings.append((f"feeds[{k}]", "polled for no digest: no [[digests]] table takes this feed"))
    return tuple(out)


def _feeds(r: Reader, t: dict[str, Any], p: str, feeds: Sequence[Feed]) -> tuple[str, ...]:
    """The names of the feeds a digest takes, in config order: those its
    ``feeds`` patterns or its ``tags`` select; every feed without either."""
    named = [f for f in feeds if f.name]
    if "feeds" not in t and "tags" not in t:
        return tuple(f.name for f in named)
    patterns = r.get(t, "feeds", f"{p}.feeds", _str_list, _NONE)
    tags = r.get(t, "tags", f"{p}.tags", _str_list, _NONE)
    names = [f.name for f in named]
    for j, pattern in enumerate(patterns):
        if not any(fnmatchcase(n, pattern) for n in names):
            r.problem(f"{p}.feeds[{j}]", f"{pattern!r} matches no feed{_suggest(pattern, names)}")
    have = {tag for f in named for tag in f.tags}
    for j, tag in enumerate(tags):
        if tag not in have:
            r.warnings.append((f"{p}.tags[{j}]", f"no feed has the tag {tag!r} (yet)"))
    taken = tuple(
        f.name
        for f in named
        if any(fnmatchcase(f.name, pattern) for pattern in patterns) or any(tag in f.tags for tag in tags)
    )
    if not taken and (patterns or tags):
        r.warnings.append((p, "takes no feed: its feeds and tags select none"))
    return taken


def _suggest(pattern: str, names: Sequence[str]) -> str:
    """``; did you mean "NHK*"?`` for a pattern that matches no name: a
    name it matches but for case (patterns are case-sensitive), else the
    nearest name, or for a prefix glob ("NKH*") the nearest prefix ("NHK*")."""
    folded = [n for n in names if fnmatchcase(n.casefold(), pattern.casefold())]
    if folded:
        return _did_you_mean(folded[0], folded[:1])
    near = list(names)
    if pattern.endswith("*") and not any(c in pattern[:-1] for c in "*?["):
        near = sorted({n[: len(pattern) - 1] + "*" for n in names}) + near
    return _did_you_mean(pattern, near)


def _webhooks(
    r: Reader, t: dict[str, Any], p: str, webhooks: Sequence[Webhook], refused: set[str]
) -> tuple[Webhook, ...]:
    """The webhooks a digest's ``webhooks`` names (by their ``name`` keys); every webhook without it."""
    if "webhooks" not in t:
        return tuple(webhooks)
    wanted = r.get(t, "webhooks", f"{p}.webhooks", _str_list, _NONE)
    by_name = {w.name: w for w in webhooks if w.ident == f"name:{w.name}"}
    for j, name in enumerate(wanted):
        if name not in by_name and name not in refused:
            hint = _did_you_mean(name, by_name) or ("" if by_name else " (a webhook is named by its name key)")
            r.problem(f"{p}.webhooks[{j}]", f"{name!r} is the name of no webhook{hint}")
    return tuple(w for w in webhooks if w.name in wanted and w.name in by_name)


def _topics(r: Reader, t: dict[str, Any], p: str, topics: Sequence[Topic]) -> tuple[Topic, ...]:
    """The ``[[topics]]`` whose tag a digest's ``topics`` names (globs); every topic without it."""
    if "topics" not in t:
        return tuple(topics)
    patterns = r.get(t, "topics", f"{p}.topics", _str_list, _NONE)
    tags = [x.tag for x in topics if x.tag]
    for j, pattern in enumerate(patterns):
        if not any(fnmatchcase(tag, pattern) for tag in tags):
            r.problem(f"{p}.topics[{j}]", f"{pattern!r} matches no [[topics]] tag{_suggest(pattern, tags)}")
    return tuple(x for x in topics if any(fnmatchcase(x.tag, pattern) for pattern in patterns))


def _labels(r: Reader, t: dict[str, Any], p: str, labels: Sequence[LabelRule]) -> tuple[LabelRule, ...]:
    """The ``[[labels]]`` rules whose text a digest's ``label_rules`` names; every rule without it."""
    if "label_rules" not in t:
        return tuple(labels)
    wanted = r.get(t, "label_rules", f"{p}.label_rules", _str_list, _NONE)
    texts = [x.text for x in labels]
    for j, text in enumerate(wanted):
        if text not in texts:
            near = _did_you_mean(text, texts)
            r.problem(f"{p}.label_rules[{j}]", f"{text!r} is the text of no [[labels]] rule{near}")
    return tuple(x for x in labels if x.text in wanted)
