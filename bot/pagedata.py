"""Article text that a page carries as data, or loads as JSON (pure).

NHK NEWS WEB's pages (``news.web.nhk/newsweb/na/na-k…``, where the old
``www3.nhk.or.jp/news/html/…`` addresses now lead) are a Next.js
application.  What public code that reads them shows (issue 23):

- the article is a ``NewsArticle`` JSON object, served by NHK's article
  API at ``api.web.nhk/r8/t/newsarticle/na/<id>.json`` with ``headline``,
  ``description``, ``abstract``, ``articleBody`` and
  ``detailedArticleBody`` (``markedLead`` and ``markedBody``, NHK's
  markdown: ``:::nw--link-…`` / ``:::nw--video…`` blocks that are not
  text, ``![…](…){…}`` images, ``==NEW==`` marks, ``#`` headings);
- the page renders that object with React, so when the page is served
  whole, the object travels inside the HTML as the framework's data
  (``self.__next_f.push([1, "…"])`` rows, or ``__NEXT_DATA__``);
- the full text (``detailedArticleBody``) is only given to a client that
  has gone through NHK's consent hand-shake; a plain GET, which is what
  feedbot does, gets the page (in July 2026: the ``<h1>``, the lead
  paragraphs and teaser blocks) and, from the API, the article without
  ``detailedArticleBody`` (its ``abstract``: the lead).  feedbot does not
  make that hand-shake: it would declare consent on the reader's behalf.

So the body comes from, in order: the article object inside the page
(``embedded_lines``), the page's HTML (``bot.extract``), and, when that
gives nothing, the article JSON (``data_url`` names it, ``bot.bodies``
fetches it through the same guarded page fetcher, ``json_lines`` reads
it).  This module does no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from bot.text import collapse

MARKER = "detailedArticleBody"  # the key that says a page carries its article as data
MAX_DATA_CHARS = 4_000_000  # framework data read from one page, at most
MAX_DEPTH = 64  # how deep an article object is looked for in the data

_NHK_PAGE = re.compile(
    r"^https?://(?:news\.web\.nhk/newsweb/na/na-|www3?\.nhk\.or\.jp/news/html/\d{8}/)(k\d{14})(?:\.html)?/?(?:[?#].*)?$"
)
NHK_ARTICLE_API = "https://api.web.nhk/r8/t/newsarticle/na/na-{id}.json"

_NEXT_F = re.compile(r"self\.__next_f\.push\(\[1,\s*(\"(?:[^\"\\]|\\.)*\")\s*\]\)")
_NEXT_DATA = re.compile(r"<script[^>]*\bid=[\"']__NEXT_DATA__[\"'][^>]*>(.*?)</script>", re.DOTALL)
_ROW_ID = re.compile(rb"([0-9a-fA-F]*):")
_TEXT_ROW = re.compile(rb"T([0-9a-fA-F]+),")
_REFERENCE = re.compile(r"^\$([0-9a-fA-F]+)$")

# NHK's markdown, line by line.
_DIRECTIVE = re.compile(r"^:::\s*([^\s{]+)")
_DROPPED_DIRECTIVES = ("nw--link", "nw--video", "nw--audio", "nw--embed", "nw--image", "nw--photo", "nw--related")
_NEW_MARK = re.compile(r"^==NEW==(?:\{[^}]*\})?$", re.IGNORECASE)
_IMAGE_LINE = re.compile(r"^!\[[^\]]*\]\([^)]*\)\s*(?:\{[^}]*\})?$")
_HEADING = re.compile(r"^#{1,6}\s+")
_LIST_ITEM = re.compile(r"^(?:[-*+]|\d{1,3}[.)])\s+")
_ATTRIBUTES = re.compile(r"\s*\{[^{}\n]*\}\s*$")
_INLINE_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_EMPHASIS = re.compile(r"\*\*(.+?)\*\*|__(.+?)__|==(.+?)==")
_TAG = re.compile(r"<[^<>]*>")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+.!\-=~|>])")


def data_url(page_url: str) -> str | None:
    """The address of the JSON behind an article page, for the pages that
    need it: NHK NEWS WEB's (the current and the 2020-2025 addresses)."""
    m = _NHK_PAGE.match(page_url)
    return NHK_ARTICLE_API.format(id=m.group(1)) if m else None


def embedded_lines(markup: str) -> list[str] | None:
    """The body of an article object the page carries as framework data
    (NHK NEWS WEB served whole), or ``None`` when it carries none."""
    if MARKER not in markup:
        return None
    for payload in _framework_data(markup):
        article = _find_article(payload)
        if article is not None:
            lines = _article_lines(article, full_only=True)
            if lines:
                return lines
    return None


def json_lines(data: bytes) -> list[str]:
    """The body of an article JSON document (NHK's article API): its full
    text when given, else its plain ``articleBody``, else its lead."""
    try:
        document = json.loads(data[:MAX_DATA_CHARS].decode("utf-8", errors="replace"))
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
        return []
    article = _find_article(document)
    return _article_lines(article, full_only=False) if article is not None else []


# -- the article object -----------------------------------------------------


def _find_article(root: Any) -> dict[str, Any] | None:
    """The first object with a ``detailedArticleBody``, else the first that
    is a ``NewsArticle`` (breadth first: the page's own article comes
    before the related ones nested in it)."""
    fallback: dict[str, Any] | None = None
    queue: list[tuple[Any, int]] = [(root, 0)]
    at = 0
    while at < len(queue):
        node, depth = queue[at]
        at += 1
        if isinstance(node, dict):
            if isinstance(node.get(MARKER), dict):
                return node
            if fallback is None and (node.get("type") == "NewsArticle" or node.get("@type") == "NewsArticle"):
                fallback = node
            children: Sequence[Any] = list(node.values())
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth < MAX_DEPTH:
            queue.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return fallback


def _article_lines(article: dict[str, Any], full_only: bool) -> list[str]:
    detailed = article.get(MARKER)
    lines: list[str] = []
    if isinstance(detailed, dict):
        lead = _marked(detailed.get("noHtmlMarkedLead")) or _marked(detailed.get("markedLead"))
        body = _marked(detailed.get("noHtmlMarkedBody")) or _marked(detailed.get("markedBody"))
        if body:
            lines = lead + body if body[: len(lead)] != lead else body
    if not lines and not full_only:
        for key in ("articleBody", "abstract", "description"):
            value = article.get(key)
            if isinstance(value, str) and value.strip():
                lines = [t for t in (collapse(part) for part in value.splitlines()) if t]
                break
    headline = article.get("headline") or article.get("name")
    titles = [headline] if isinstance(headline, str) else []
    # Here, not at the top: bot.markup imports this module for MARKER, and
    # a feed's parse (bot.parse) needs none of the rules' patterns.
    from bot.boilerplate import Line, clean_lines

    return [line.text for line in clean_lines([Line(text) for text in lines], titles)]


def _marked(value: Any) -> list[str]:
    """Lines of a marked field: NHK's markdown as a string, or as a tree of
    blocks (``paragraph``/``heading`` with text ``children``)."""
    if isinstance(value, str):
        return _markdown_lines(value)
    if isinstance(value, list):
        return [t for t in (collapse(_block_text(block)) for block in value if isinstance(block, dict)) if t]
    return []


def _block_text(node: dict[str, Any]) -> str:
    if node.get("type") in ("image", "thematicBreak", "html"):
        return ""
    value = node.get("value")
    own = value if isinstance(value, str) else ""
    children = node.get("children")
    if isinstance(children, list):
        own += "".join(_block_text(child) for child in children if isinstance(child, dict))
    return own


def _markdown_lines(text: str) -> list[str]:
    """One line per text line of NHK's markdown (a line break in it is a
    line break on the page); blocks that are links, videos or embeds, and
    images, are not text."""
    lines: list[str] = []
    dropping: list[bool] = []
    fenced = False
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.strip()
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        if line == ":::":
            if dropping:
                dropping.pop()
            continue
        directive = _DIRECTIVE.match(line)
        if directive:
            name = directive.group(1).lower()
            dropping.append(any(dropping) or name.startswith(_DROPPED_DIRECTIVES))
            continue
        if any(dropping) or not line or _NEW_MARK.match(line) or _IMAGE_LINE.match(line):
            continue
        plain = _inline(_LIST_ITEM.sub("", _HEADING.sub("", line)))
        if plain:
            lines.append(plain)
    return lines


def _inline(text: str) -> str:
    text = _ATTRIBUTES.sub("", text.rstrip("\\").rstrip())
    text = _LINK.sub(r"\1", _INLINE_IMAGE.sub("", text))
    text = _EMPHASIS.sub(lambda m: next(g for g in m.groups() if g is not None), text)
    return collapse(_ESCAPE.sub(r"\1", _TAG.sub("", text)))


# -- the framework's data in the page ---------------------------------------


def _framework_data(markup: str) -> Iterator[Any]:
    """The JSON values a Next.js page carries: ``__NEXT_DATA__`` (pages
    router), and the rows of the React Server Components payload that
    ``self.__next_f.push([1, "…"])`` scripts hand over (app router)."""
    for m in _NEXT_DATA.finditer(markup):
        try:
            yield json.loads(m.group(1))
        except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
            continue
    chunks: list[str] = []
    size = 0
    for m in _NEXT_F.finditer(markup):
        try:
            chunk = json.loads(m.group(1))
        except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
            continue
        if isinstance(chunk, str):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_DATA_CHARS:
                break
    if chunks:
        yield from _flight_rows("".join(chunks).encode("utf-8"))


def _flight_rows(payload: bytes) -> Iterator[Any]:
    """The JSON rows of a React Server Components payload, long strings
    (``T`` rows, referred to as ``"$<id>"``) put back in place."""
    texts: dict[str, str] = {}
    rows: list[Any] = []
    at = 0
    while at < len(payload):
        row = _ROW_ID.match(payload, at)
        if row is None:
            break
        at = row.end()
        text = _TEXT_ROW.match(payload, at)
        if text is not None:
            start = text.end()
            end = start + int(text.group(1), 16)  # a length in bytes
            texts[row.group(1).decode("ascii")] = payload[start:end].decode("utf-8", errors="replace")
            at = end
            continue
        end = payload.find(b"\n", at)
        end = len(payload) if end < 0 else end
        line = payload[at:end]
        at = end + 1
        if line[:1] in (b"[", b"{"):
            try:
                rows.append(json.loads(line))
            except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
                continue
    for value in rows:
        yield _resolved(value, texts, 0)


def _resolved(value: Any, texts: dict[str, str], depth: int) -> Any:
    if depth > MAX_DEPTH:
        return None
    if isinstance(value, str):
        ref = _REFERENCE.match(value)
        if ref and ref.group(1) in texts:
            return texts[ref.group(1)]
        return value[1:] if value.startswith("$$") else value  # "$$" is a "$" escaped
    if isinstance(value, list):
        return [_resolved(v, texts, depth + 1) for v in value]
    if isinstance(value, dict):
        return {k: _resolved(v, texts, depth + 1) for k, v in value.items()}
    return value
