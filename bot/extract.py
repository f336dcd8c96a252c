"""Article body extraction: page bytes in, paragraphs out (pure).

``extract_body(data, url, content_type, mode)`` decodes the page (HTTP
charset, BOM, ``<meta charset>``, then detection; Shift_JIS read as CP932)
and returns its body as a list of one-line paragraphs in document order.

``mode`` is ``"auto"`` (find the main text) or a CSS selector (the text of
the selected elements).  A page without an article body, such as an index
or a live-updates page, gives ``[]``: link lists are not a body.

The "auto" extractor scores text blocks in the spirit of Readability: a
block is a run of inline text between block-level boundaries; blocks with
enough text and few links vote for their parent and grandparent; the best
container, plus siblings that score nearly as well, is the article.
Boilerplate (navigation, share buttons, related links, captions, footers)
is removed before scoring by tag and by class/id words.

This module does no I/O.
"""

from __future__ import annotations

import codecs
import html
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # bs4 costs ~80 ms to import: only the code paths that parse HTML load it
    from bs4 import BeautifulSoup, Tag

from bot.text import BLOCK_TAGS, INVISIBLE_TAGS, clean, collapse

# Elements that are never article text.
_BOILERPLATE_TAGS = frozenset(
    ["nav", "header", "footer", "aside", "form", "button", "select", "figure", "figcaption", "dialog", "menu"]
)
# class/id words that mark boilerplate containers.  Matched as whole words
# (split on - _ and space) to avoid hitting "shadow" for "ad".
_BOILERPLATE_WORDS = frozenset(
    """share sharing social sns related recommend recommended ranking rank popular breadcrumb breadcrumbs
    comment comments footer header nav navi navigation menu sidebar ad ads advert advertisement banner promo
    newsletter signup subscribe caption credit copyright tags tag pagination pager byline author toolbar
    modal cookie consent widget sponsor pr relatedarticles trending gallery slideshow carousel about
    tool tools pulldown dropdown login regist register paywall""".split()
)
_CONTENT_WORDS = frozenset(["article", "content", "main", "story", "body", "entry", "post"])
_NEVER_BOILERPLATE = frozenset(["html", "body", "main", "article"])
_BOILERPLATE_ROLES = frozenset({"navigation", "banner", "contentinfo", "complementary", "search", "dialog"})
_WORD_SPLIT = re.compile(r"[\s_\-]+|(?<=[a-z])(?=[A-Z])")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.I)
_HEADINGS = frozenset(["h1", "h2", "h3", "h4", "h5", "h6"])
_LISTS = frozenset(["ul", "ol"])

MIN_BLOCK_CHARS = 20  # shorter blocks do not vote (CJK text is dense: 20 chars is a sentence)
MIN_BODY_CHARS = 30  # a "body" shorter than this is not an article (a 速報 flash can be this short)
MAX_LINK_DENSITY = 0.35  # a block with more link text than this does not vote
MAX_BODY_LINK_DENSITY = 0.5  # inside the article, a paragraph may link more
LINKY_PART = 0.5  # a part of the article with more link text than this is a link module


@dataclass
class _Block:
    text: str
    element: Tag  # nearest block-level ancestor
    link_chars: int

    @property
    def link_density(self) -> float:
        return self.link_chars / max(len(self.text), 1)


# -- decoding ---------------------------------------------------------------


def charset_from_content_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    m = re.search(r"charset\s*=\s*[\"']?([^\s;\"']+)", content_type, re.I)
    return m.group(1) if m else None


def normalise_codec(name: str) -> str | None:
    """Map a declared charset to the Python codec that really decodes it."""
    try:
        codec = codecs.lookup(name.strip().lower()).name
    except LookupError:
        return None
    # Japanese pages labelled Shift_JIS are written by Windows tools: CP932
    # is the superset (NEC/IBM extensions, ① and friends).
    if codec in ("shift_jis", "shift_jis_2004", "shift_jisx0213"):
        return "cp932"
    if codec == "euc_jp":
        return "euc_jis_2004"
    if codec in ("latin-1", "iso8859-1", "ascii"):
        return "cp1252"  # what browsers do (WHATWG encoding standard)
    return codec


def _try(data: bytes, codec: str | None) -> str | None:
    if codec is None:
        return None
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def decode_html(data: bytes, content_type: str | None = None) -> str:
    """Decode a page: a declared charset that does not decode is not trusted."""
    for bom, codec in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            text = _try(data, codec)
            if text is not None:
                return text
    declared = charset_from_content_type(content_type)
    if declared:
        text = _try(data, normalise_codec(declared))
        if text is not None:
            return text
    m = _META_CHARSET.search(data[:8192])
    if m:
        text = _try(data, normalise_codec(m.group(1).decode("ascii", "replace")))
        if text is not None:
            return text
    text = _try(data, "utf-8")
    if text is not None:
        return text
    from charset_normalizer import from_bytes

    best = from_bytes(data[:200_000]).best()
    if best is not None and best.encoding:
        text = _try(data, normalise_codec(best.encoding))
        if text is not None:
            return text
    return data.decode("utf-8", errors="replace")


# -- parsing and blocks -----------------------------------------------------


def soup_of(markup: str) -> BeautifulSoup:
    from bs4 import BeautifulSoup
    from bs4.element import Comment

    soup = BeautifulSoup(markup, "lxml")
    for tag in soup.find_all(INVISIBLE_TAGS):
        tag.decompose()
    for comment in soup.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()
    return soup


def _iter_blocks(root: Tag) -> Iterator[_Block]:
    """Runs of inline text between block boundaries, in document order."""
    from bs4 import Tag
    from bs4.element import NavigableString

    parts: list[str] = []
    link_chars = 0
    owner: Tag = root

    def flush() -> _Block | None:
        nonlocal parts, link_chars
        text = collapse("".join(parts))
        block = _Block(text, owner, min(link_chars, len(text))) if text else None
        parts, link_chars = [], 0
        return block

    def walk(node: Tag, in_link: bool) -> Iterator[_Block]:
        nonlocal owner, link_chars
        for child in node.children:
            if isinstance(child, NavigableString):
                s = str(child)
                parts.append(s)
                if in_link:
                    link_chars += len(collapse(s))
            elif isinstance(child, Tag):
                if child.name == "br":
                    block = flush()
                    if block:
                        yield block
                    continue
                if child.name in BLOCK_TAGS:
                    block = flush()
                    if block:
                        yield block
                    saved = owner
                    owner = child
                    yield from walk(child, in_link)
                    block = flush()
                    if block:
                        yield block
                    owner = saved
                else:
                    yield from walk(child, in_link or child.name == "a")

    yield from walk(root, False)
    last = flush()
    if last:
        yield last


def block_texts(soup: BeautifulSoup | Tag) -> list[str]:
    """Every non-empty text block of a fragment, one line each."""
    return [b.text for b in _iter_blocks(soup)]


# -- auto extraction --------------------------------------------------------


def _is_boilerplate(tag: Tag) -> bool:
    if tag.name in _BOILERPLATE_TAGS:
        return True
    if tag.name in _NEVER_BOILERPLATE:
        return False
    attrs = tag.attrs or {}
    if attrs.get("hidden") is not None or attrs.get("aria-hidden") == "true":
        return True
    if str(attrs.get("role", "")).lower() in _BOILERPLATE_ROLES:
        return True
    tokens: list[str] = []
    for key in ("class", "id"):
        value = attrs.get(key)
        if value:
            tokens.extend(value if isinstance(value, list) else str(value).split())
    return any(_boilerplate_token(t) for t in tokens)


def _boilerplate_token(token: str) -> bool:
    """One class or id: ``article-share`` and ``ArticleBody-related-coverage``
    are boilerplate, ``share-content`` is not.  Class names read from the
    general to the particular (BEM), so the last of the telling words wins.
    """
    verdict = False
    for word in _WORD_SPLIT.split(token):
        w = word.lower()
        if w in _BOILERPLATE_WORDS:
            verdict = True
        elif w in _CONTENT_WORDS:
            verdict = False
    return verdict


def _strip_boilerplate(root: Tag) -> None:
    doomed = [t for t in root.find_all(True) if _is_boilerplate(t)]
    for tag in doomed:
        if not tag.decomposed:
            tag.decompose()


def _good(block: _Block) -> bool:
    return (
        len(block.text) >= MIN_BLOCK_CHARS
        and block.link_density <= MAX_LINK_DENSITY
        and block.element.name not in _HEADINGS
    )


def _auto(soup: BeautifulSoup) -> list[str]:
    root = soup.body or soup
    _strip_boilerplate(root)
    blocks = list(_iter_blocks(root))
    # Each element scores the text of its good blocks minus all link text
    # inside it.  The article is the best-scoring element, the deepest one on
    # ties: growing a container pays only when it adds text without links
    # (a lead paragraph kept apart from the rest), and costs when it adds
    # link lists (related stories, rankings).
    scores: dict[int, float] = {}
    text_chars: dict[int, int] = {}
    link_chars: dict[int, int] = {}
    depth: dict[int, int] = {}
    nodes: dict[int, Tag] = {}
    chains: list[list[int]] = []  # per block: its elements, innermost first
    for block in blocks:
        value = (len(block.text) if _good(block) else 0) - block.link_chars
        chain: list[Tag] = []
        node: Tag | None = block.element
        while node is not None:
            chain.append(node)
            node = node.parent if node is not root else None
        chains.append([id(t) for t in chain])
        for level, tag in enumerate(reversed(chain)):
            key = id(tag)
            scores[key] = scores.get(key, 0.0) + value
            text_chars[key] = text_chars.get(key, 0) + len(block.text)
            link_chars[key] = link_chars.get(key, 0) + block.link_chars
            depth[key] = level
            nodes[key] = tag
    if not scores:
        return []
    best = max(scores, key=lambda k: (scores[k], depth[k]))
    if scores[best] <= 0:
        return []
    top = nodes[best]
    # Inside the article, a part that is mostly links (a "related" module,
    # a list of headlines) is not body, even when each line has some text.
    linky = {id(lst) for lst in _link_lists(top)} | {
        k for k in scores if text_chars[k] >= 40 and link_chars[k] > LINKY_PART * text_chars[k]
    }
    body: list[str] = []
    for block, ids in zip(blocks, chains, strict=True):
        if best not in ids:
            continue
        inner = ids[: ids.index(best)]
        if any(k in linky for k in inner) or block.element.name == "h1":  # h1: the title, already the headline
            continue
        if block.link_density > MAX_BODY_LINK_DENSITY:
            continue
        if (
            len(block.text) >= MIN_BLOCK_CHARS
            or block.element.name in ("p", "h2", "h3", "h4")
            or _sentence_end(block.text)
        ):
            body.append(block.text)
    if sum(len(t) for t in body) < MIN_BODY_CHARS:
        return []
    return body


def _link_lists(top: Tag) -> list[Tag]:
    """Lists inside the article whose items are mostly links ("Full Article")."""
    found: list[Tag] = []
    for lst in top.find_all(_LISTS):
        items = lst.find_all("li", recursive=False)
        if len(items) >= 2 and sum(1 for li in items if li.find("a")) * 2 >= len(items):
            found.append(lst)
    return found


def _sentence_end(text: str) -> bool:
    """A short block that ends like a sentence is a paragraph, not a label."""
    return text.endswith(("。", ".", "!", "?", "！", "？", "」", "”", '"'))


def _selected(soup: BeautifulSoup, selector: str) -> list[str]:
    out: list[str] = []
    for element in soup.select(selector):
        out.extend(b.text for b in _iter_blocks(element))
    return out


def looks_like_markup(text: str) -> bool:
    return "<" in text and re.search(r"</?[a-zA-Z][^>]*>", text) is not None


def html_paragraphs(fragment: str) -> list[str]:
    """Paragraphs of an HTML fragment (feed content), one line each."""
    if not looks_like_markup(fragment):
        decoded = html.unescape(fragment)
        return [p for p in (collapse(x) for x in re.split(r"\n\s*\n", decoded)) if p]
    return block_texts(soup_of(fragment))


def plain(fragment: str) -> str:
    """A fragment as one line of plain text (titles, post texts)."""
    return " ".join(html_paragraphs(fragment))


def limit_body(
    paragraphs: Sequence[str], max_paragraphs: int | None, max_chars: int | None, ellipsis: str = "…"
) -> tuple[str, ...]:
    """Keep at most ``max_paragraphs`` lines and ``max_chars`` characters.

    A cut body ends its last kept line with "…".
    """
    kept: list[str] = []
    used = 0
    cut = False
    for n, line in enumerate(paragraphs):
        if max_paragraphs is not None and n >= max_paragraphs:
            cut = True
            break
        if max_chars is not None and used + len(line) > max_chars:
            room = max_chars - used
            if room > 10 or not kept:
                kept.append(line[: max(room, 1)].rstrip())
            cut = True
            break
        kept.append(line)
        used += len(line)
    if cut and kept:
        kept[-1] += ellipsis
    return tuple(kept)


def extract_body(data: bytes, url: str, content_type: str | None, mode: str) -> list[str]:
    """The article body of a fetched page as one-line paragraphs.

    ``url`` names the page in errors and is kept for rules that depend on
    the site; ``mode`` is ``"auto"`` or a CSS selector.
    """
    del url  # reserved for site-specific rules; the generic path needs none
    if content_type and not re.search(r"html|xml", content_type, re.I):
        return []
    soup = soup_of(decode_html(data, content_type))
    paragraphs = _auto(soup) if mode == "auto" else _selected(soup, mode)
    return [clean(p) for p in paragraphs if p]
