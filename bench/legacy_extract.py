"""feedbot's first body extractor, kept only to be measured against.

A hand-written scorer in the spirit of Readability (bs4 on lxml): blocks of
inline text vote for their ancestors, the best-scoring element is the
article.  It was tuned on about twenty pages and did not generalise (issue
11); ``bot.extract`` replaced it.  ``python -m bench.extract_eval`` runs it
as "feedbot 0.1" so that the report shows what changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bs4 import BeautifulSoup, Tag

from bot.markup import decode_html, iter_blocks, soup_of
from bot.text import clean

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
    blocks = [_Block(t, e, n) for t, e, n in iter_blocks(root)]
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


def extract_body(data: bytes, content_type: str | None = None) -> list[str]:
    """The body the first extractor found, one line per paragraph."""
    if content_type and not re.search(r"html|xml", content_type, re.I):
        return []
    return [clean(p) for p in _auto(soup_of(decode_html(data, content_type))) if p]
