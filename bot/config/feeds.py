"""The ``[[feeds]]``, ``[[topics]]`` and ``[[labels]]`` tables: their
records and their reading."""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.config.reading import Reader
from bot.config.values import (
    _bool,
    _http_url,
    _int_between,
    _interval,
    _keys,
    _label,
    _match,
    _nonempty_str,
    _shown,
    _str_list,
    _tag,
)

DEFAULT_HEADLINE = "{title} {link}"
HEADLINE_FIELDS = frozenset({"title", "link", "feed", "handle"})
BODY_MODES = ("auto", "feed", "none")


@dataclass(frozen=True)
class Feed:
    name: str
    url: str
    handle: str | None = None
    headline: str = DEFAULT_HEADLINE
    body: str = "auto"  # "auto" | "feed" | "none" | a CSS selector
    poll_every: timedelta | None = None  # None: the [schedule] default
    enabled: bool = True
    include: tuple[tuple[str, ...], ...] = ()  # entries must match this (title + feed text); () = all
    exclude: tuple[str, ...] = ()  # entries containing any of these are never taken
    max_paragraphs: int | None = None  # body lines kept at most
    max_body_chars: int | None = None  # body characters kept at most
    tags: tuple[str, ...] = ()  # what [[digests]] tables select it by (tags = ["ukraine"])


@dataclass(frozen=True)
class Topic:
    tag: str
    match: tuple[tuple[str, ...], ...]
    exclude: tuple[str, ...] = ()
    label: str | None = None


@dataclass(frozen=True)
class LabelRule:
    text: str
    match: tuple[tuple[str, ...], ...]


def read_feeds(r: Reader, data: Any) -> tuple[Feed, ...]:
    if not isinstance(data, list):
        r.problem("feeds", f"must be an array of tables ([[feeds]]), not {_shown(data)}")
        return ()
    out: list[Feed] = []
    names: dict[str, int] = {}
    urls: dict[str, int] = {}
    allowed = _keys(Feed)
    for i, raw in enumerate(data):
        p = f"feeds[{i}]"
        t = r.table(raw, p, allowed)
        name = r.required(t, "name", f"{p}.name", _nonempty_str)
        url = r.required(t, "url", f"{p}.url", _http_url)
        feed = Feed(
            name=name or "",
            url=url or "",
            handle=r.get(t, "handle", f"{p}.handle", _handle, None),
            headline=r.get(t, "headline", f"{p}.headline", _headline, DEFAULT_HEADLINE),
            body=r.get(t, "body", f"{p}.body", _body, "auto"),
            poll_every=r.get(t, "poll_every", f"{p}.poll_every", _interval, None),
            enabled=r.get(t, "enabled", f"{p}.enabled", _bool, True),
            include=r.get(t, "include", f"{p}.include", _match, ()),
            exclude=r.get(t, "exclude", f"{p}.exclude", _str_list, ()),
            max_paragraphs=r.get(t, "max_paragraphs", f"{p}.max_paragraphs", _int_between(1, 1000), None),
            max_body_chars=r.get(t, "max_body_chars", f"{p}.max_body_chars", _int_between(20, 100_000), None),
            tags=r.get(t, "tags", f"{p}.tags", _str_list, ()),
        )
        if name is not None:
            if name in names:
                r.problem(f"{p}.name", f"{name!r} is already the name of feeds[{names[name]}]")
            names.setdefault(name, i)
        if url is not None:
            if url in urls:
                r.problem(f"{p}.url", f"the same URL as feeds[{urls[url]}]")
            urls.setdefault(url, i)
        out.append(feed)
    return tuple(out)


def read_topics(r: Reader, data: Any) -> tuple[Topic, ...]:
    if not isinstance(data, list):
        r.problem("topics", f"must be an array of tables ([[topics]]), not {_shown(data)}")
        return ()
    out: list[Topic] = []
    for i, raw in enumerate(data):
        p = f"topics[{i}]"
        t = r.table(raw, p, _keys(Topic))
        tag = r.required(t, "tag", f"{p}.tag", _tag)
        match = r.required(t, "match", f"{p}.match", _match)
        out.append(
            Topic(
                tag=tag or "",
                match=match or (),
                exclude=r.get(t, "exclude", f"{p}.exclude", _str_list, ()),
                label=r.get(t, "label", f"{p}.label", _label, None),
            )
        )
    return tuple(out)


def read_labels(r: Reader, data: Any) -> tuple[LabelRule, ...]:
    if not isinstance(data, list):
        r.problem("labels", f"must be an array of tables ([[labels]]), not {_shown(data)}")
        return ()
    out: list[LabelRule] = []
    for i, raw in enumerate(data):
        p = f"labels[{i}]"
        t = r.table(raw, p, _keys(LabelRule))
        text = r.required(t, "text", f"{p}.text", _label)
        match = r.required(t, "match", f"{p}.match", _match)
        out.append(LabelRule(text=text or "", match=match or ()))
    return tuple(out)


def _handle(v: Any) -> str:
    s = _nonempty_str(v).removeprefix("@")
    if any(c.isspace() for c in s):
        raise ValueError(f"{s!r} must not contain spaces")
    return s


def _headline(v: Any) -> str:
    s = _nonempty_str(v)
    try:
        fields = {f for _, f, _spec, _conv in string.Formatter().parse(s) if f is not None}
    except ValueError as exc:
        raise ValueError(f"{s!r} is not a valid template ({exc}); write {{{{ and }}}} for literal braces") from None
    unknown = fields - HEADLINE_FIELDS
    if unknown:
        names = ", ".join("{" + u + "}" for u in sorted(unknown))
        raise ValueError(
            f"{s!r} has an unknown placeholder {names}; use {{title}}, {{link}}, {{feed}} or {{handle}}"
        ) from None
    if "title" not in fields:
        raise ValueError(f"{s!r} must contain {{title}}")
    try:  # conversions and format specs ("{title!x}", "{title:d}") fail only when used
        s.format_map(dict.fromkeys(HEADLINE_FIELDS, "x"))
    except (ValueError, KeyError, IndexError, AttributeError) as exc:
        raise ValueError(f"{s!r} is not a valid template ({exc}); use plain {{title}}, {{link}} and so on") from None
    return s


def _body(v: Any) -> str:
    s = _nonempty_str(v)
    if s in BODY_MODES:
        return s
    import soupsieve  # CSS selectors are checked here, not at first use

    try:
        soupsieve.compile(s)
    except Exception as exc:  # SelectorSyntaxError, NotImplementedError ("p::before"), ...
        first = str(exc).splitlines()[0]
        raise ValueError(f"{s!r} is neither auto, feed, none nor a valid CSS selector ({first})") from None
    return s


def feed_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a feed's ``url`` (the check ``check`` makes), or None."""
    try:
        _http_url(url, echo=False)
    except (ValueError, TypeError) as exc:
        return str(exc)
    return None


def feed_table_problems(table: Mapping[str, Any]) -> list[str]:
    """What ``check`` would say of one ``[[feeds]]`` table on its own, each
    problem keyed by the table's key (``body: ...``)."""
    reader = Reader(Path("."), {}, need_secrets=False)
    read_feeds(reader, [dict(table)])
    return [f"{key.removeprefix('feeds[0].')}: {message}" for key, message in reader.problems]
