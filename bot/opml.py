"""OPML subscription lists in and out (``feedbot opml import|export``).

Reading is listparser's (Kurt McKee's, the feedparser maintainer's): OPML
1.0/1.1/2.0, nested folders, ``category`` attributes, miscapitalised
``xmlURL``, BOMs and odd encoding labels, broken markup recovered as far as
lxml's recovering parser goes.  It merges outlines with the same URL (their
folders are kept).  Entities are not expanded and nothing is fetched.

``plan_import`` is pure: the outlines against the configured feeds (and
the addresses the caller's guard refused: an outline is found in a
document, so one on a non-public address is not imported unless asked,
issue 24) → what to add, what is a duplicate, what is not a feed address,
what is refused, and the folders (which ``import`` reports: a folder is
often a topic).  Linear in the outlines and the feeds: names are numbered
from a counter per name, not by trying " (2)", " (3)" … each time.

``export`` writes OPML 2.0 with the standard library's serializer.

Folders are tags.  ``import`` writes each folder an outline sits in as one
tag of its feed, the whole path with its levels joined by FOLDER_LEVELS
(``tags = ["News / Tech"]``), not the innermost folder alone: "Tech" under
"News" and "Tech" under "Blogs" stay apart, and ``export`` rebuilds the
nesting from the tag.  ``export`` writes a feed in the folder of its first
tag and gives every tag in the outline's ``category`` attribute as OPML 2.0
defines it (comma-separated, slash-prefixed paths: "/News/Tech,/ukraine"),
first tag first, so that an import reads the tags back in their order (a
reader lists the category paths before the folder).  A tag that a category
path cannot hold (a "/" or "," within a level) is written as a further
folder holding the feed instead: it comes back, maybe in another place in
the order.  A feed without tags goes into the folders an older import
noted in its table's comment (``folders_noted``), into each of them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote, urlsplit
from xml.etree import ElementTree

import listparser
import lxml.etree

from bot.config import Feed, feed_url_problem
from bot.configfile import NewFeed, same_feed_url
from bot.errors import ParseError
from bot.text import collapse

MAX_OPML_BYTES = 16 * 1024 * 1024  # the largest real export seen is 286 KB
URL_SAFE = ":/?#[]@!$&'()*+,;=%~"  # what quote leaves alone in an address
NAME_MAX = 100  # characters of a feed name taken from an outline
_SPACE = re.compile(r"\s")


# A disabled feed is exported with feedbot:enabled="false" in this
# namespace (OPML 2.0 allows attributes of its own only in a namespace;
# there is no common one for a paused feed), and imported disabled again.
NAMESPACE = "urn:feedbot:opml:1"
ENABLED = f"{{{NAMESPACE}}}enabled"


@dataclass(frozen=True)
class Outline:
    title: str
    url: str
    folders: tuple[str, ...] = ()  # each folder as "a / b" (an outline can sit in several)
    enabled: bool = True  # False: exported by feedbot from a disabled feed


@dataclass(frozen=True)
class Opml:
    title: str
    outlines: tuple[Outline, ...]
    problem: str | None = None  # the file is not well-formed: what could be read is here


def read_opml(data: bytes) -> Opml:
    """The feed outlines of an OPML file; ParseError if it holds no OPML at all."""
    if len(data) > MAX_OPML_BYTES:
        raise ParseError(f"the file is too large for a subscription list ({len(data)} bytes, limit {MAX_OPML_BYTES})")
    result: Any = listparser.parse(data)
    disabled = _disabled_urls(data)
    outlines = []
    for feed in result.feeds:
        folders = tuple(
            FOLDER_LEVELS.join(collapse(p) for p in path if collapse(p)) for path in feed.get("categories", [])
        )
        url = _quoted(str(feed.get("url", "")))
        title = collapse(str(feed.get("title", "")))
        outlines.append(Outline(title, url, tuple(f for f in folders if f), url not in disabled))
    version = str(result.get("version") or "")
    if not outlines and not version.startswith("opml"):
        raise ParseError("not an OPML subscription list (no <opml> element with feed outlines)")
    return Opml(collapse(str(result.meta.get("title") or "")), tuple(outlines), _not_well_formed(data))


def _levels(folder: str) -> tuple[str, ...]:
    """A folder path's levels ("A / B" → ("A", "B"))."""
    return tuple(p.strip() for p in folder.split(FOLDER_LEVELS) if p.strip())


def _in_category(tag: str) -> bool:
    """Whether a category path can hold the tag: no level holds "/" or ","."""
    levels = _levels(tag)
    return bool(levels) and not any("/" in p or "," in p for p in levels)


def _disabled_urls(data: bytes) -> set[str]:
    """The addresses of outlines marked feedbot:enabled="false" (listparser
    keeps no attribute of its own), read as leniently as listparser reads."""
    if NAMESPACE.encode() not in data:  # a list feedbot did not write: no second reading
        return set()
    parser = lxml.etree.XMLParser(
        recover=True, resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = lxml.etree.fromstring(data, parser)
    except lxml.etree.XMLSyntaxError:
        return set()
    if root is None:
        return set()
    found = set()
    for element in root.iter("outline"):
        if str(element.get(ENABLED, "")).strip().lower() != "false":
            continue
        url = next((str(v) for k, v in element.attrib.items() if str(k).lower() == "xmlurl"), "")
        found.add(_quoted(url))
    return found


def _quoted(url: str) -> str:
    """Spaces inside an address percent-encoded, as a browser would (old
    exports hold "http://host/WebLog/jonne kats/rss.aspx")."""
    url = url.strip()
    return quote(url, safe=URL_SAFE) if _SPACE.search(url) else url


def _not_well_formed(data: bytes) -> str | None:
    """What a strict parser says, so that a user knows to check the list:
    a recovering parser may have lost outlines near the error."""
    parser = lxml.etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        lxml.etree.fromstring(data, parser)
    except lxml.etree.XMLSyntaxError as exc:
        return f"not well-formed XML ({exc}); outlines near the error may be missing"
    return None


# An older import's table comment, "from FILE, folder A / B ; C": where its
# folders were kept before feeds had tags; ``export`` still finds them there
# for a feed without tags.  An import now writes them as tags.
FOLDER_NOTE = ", folder "
FOLDER_SEPARATOR = " ; "
FOLDER_LEVELS = " / "
_FROM_NOTE = re.compile(r"^from .*?" + re.escape(FOLDER_NOTE) + r"(?P<folders>.+)$")


def folders_noted(comment: str) -> tuple[str, ...]:
    """The folders an import wrote in a comment line ("from x.opml, folder
    A / B ; C" → ("A / B", "C")); () for any other comment."""
    found = _FROM_NOTE.match(comment.strip().lstrip("#").strip())
    if found is None:
        return ()
    return tuple(f.strip() for f in found.group("folders").split(FOLDER_SEPARATOR) if f.strip())


@dataclass(frozen=True)
class Skipped:
    title: str
    url: str
    why: str


@dataclass(frozen=True)
class ImportPlan:
    add: tuple[NewFeed, ...]
    duplicates: tuple[Skipped, ...]
    rejected: tuple[Skipped, ...]
    folders: Counter[str] = field(default_factory=Counter)  # folder → feeds added from it
    renamed: int = 0  # names made unique with " (2)"
    refused: tuple[Skipped, ...] = ()  # on a non-public address


def _name(outline: Outline) -> str:
    name = outline.title or (urlsplit(outline.url).hostname or outline.url)
    if len(name) > NAME_MAX:
        name = name[: NAME_MAX - 1].rstrip() + "…"
    return name


def _unique(name: str, taken: set[str], next_number: dict[str, int]) -> str:
    """``name``, or ``name (n)`` with the first n from 2 not taken.  Where
    the search for ``name`` stopped last time is kept in ``next_number``:
    4,000 outlines of one title cost 2 s (each search from 2 again)."""
    if name not in taken:
        return name
    n = next_number.get(name, 2)
    while f"{name} ({n})" in taken:
        n += 1
    next_number[name] = n + 1
    return f"{name} ({n})"


def plan_import(
    opml: Opml,
    existing: Sequence[Feed],
    source: str,
    body: str | None = None,
    enabled: bool = True,
    refused: Mapping[str, str] | None = None,
) -> ImportPlan:
    """What importing ``opml`` into a config with ``existing`` feeds does;
    ``refused``: outline URL → why the address policy refused it."""
    urls = {same_feed_url(f.url): f.name for f in existing}
    names = {f.name for f in existing}
    numbers: dict[str, int] = {}
    add: list[NewFeed] = []
    duplicates: list[Skipped] = []
    rejected: list[Skipped] = []
    outside: list[Skipped] = []
    folders: Counter[str] = Counter()
    renamed = 0
    for outline in opml.outlines:
        problem = feed_url_problem(outline.url)
        if problem is not None:
            rejected.append(Skipped(outline.title, outline.url, f"not a feed address ({problem})"))
            continue
        key = same_feed_url(outline.url)
        if key in urls:
            duplicates.append(Skipped(outline.title, outline.url, f"already configured as {urls[key]!r}"))
            continue
        why = (refused or {}).get(outline.url)
        if why is not None:
            outside.append(Skipped(outline.title, outline.url, f"refused: {why}"))
            continue
        base = _name(outline)
        name = _unique(base, names, numbers)
        renamed += name != base
        names.add(name)
        urls[key] = name
        comments = (f"from {source}",)
        on = enabled and outline.enabled
        tags = tuple(dict.fromkeys(outline.folders))  # each folder path, one tag (see the module's docstring)
        add.append(NewFeed(name=name, url=outline.url, body=body, enabled=on, comments=comments, tags=tags))
        folders.update(outline.folders or ("(no folder)",))
    return ImportPlan(tuple(add), tuple(duplicates), tuple(rejected), folders, renamed, tuple(outside))


def export(
    feeds: Iterable[Feed],
    title: str = "feedbot feeds",
    now: datetime | None = None,
    folders: Mapping[str, Sequence[str]] | None = None,
) -> bytes:
    """OPML 2.0 of ``feeds``: what any reader imports, and ``import`` reads
    back.  A feed with tags is in its first tag's folder, its tags in the
    outline's ``category`` (see the module's docstring).  ``folders``: feed
    name → the folders ("A / B") an older import noted, for a feed without
    tags, each written as nested outlines (a feed in two folders is in
    both, as readers export it; import merges it back); a disabled feed
    carries feedbot:enabled="false"."""
    ElementTree.register_namespace("feedbot", NAMESPACE)
    root = ElementTree.Element("opml", version="2.0")
    head = ElementTree.SubElement(root, "head")
    ElementTree.SubElement(head, "title").text = title
    ElementTree.SubElement(head, "dateCreated").text = format_datetime(now or datetime.now(UTC))
    body = ElementTree.SubElement(root, "body")
    made: dict[tuple[str, ...], ElementTree.Element] = {}  # a folder's outline, made where it first appears

    def folder(path: tuple[str, ...]) -> ElementTree.Element:
        if not path:
            return body
        if path not in made:
            made[path] = ElementTree.SubElement(folder(path[:-1]), "outline", text=path[-1], title=path[-1])
        return made[path]

    for feed in feeds:
        if feed.tags:
            paths = [_levels(feed.tags[0])]
            held = [t for t in feed.tags if _in_category(t)]
            paths += [_levels(t) for t in feed.tags[1:] if not _in_category(t)]
            category = ",".join("/" + "/".join(_levels(t)) for t in held)
        else:
            noted = (folders or {}).get(feed.name, ())
            paths = [_levels(f) for f in noted]
            category = ""
        for path in dict.fromkeys(paths or [()]):
            outline = ElementTree.SubElement(
                folder(path), "outline", type="rss", text=feed.name, title=feed.name, xmlUrl=feed.url
            )
            if category and len(feed.tags) > 1:
                outline.set("category", category)
            if not feed.enabled:
                outline.set(ENABLED, "false")
    ElementTree.indent(root)
    data: bytes = ElementTree.tostring(root, encoding="UTF-8", xml_declaration=True)
    return data + b"\n"
