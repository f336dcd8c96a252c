"""Article bodies: page bytes in, one-line paragraphs out (pure).

``extract_body(data, url, content_type, mode)`` returns the body of a
fetched page as a list of one-line paragraphs in document order, or ``[]``
for a page that has no article (an index, a live-updates list, a search
result, a login wall).  ``mode`` is ``"auto"`` or a CSS selector from the
feed's config, whose elements' text is the body.

A page that carries its article as data (NHK NEWS WEB's Next.js pages,
``bot.pagedata``) gives that article's text.  Otherwise the automatic path
is trafilatura, chosen by measurement (issue 11, ``python -m
bench.extract_eval``, ``docs/extraction.md``), with feedbot's own
knowledge around it:

1. before: furigana readings (``<rt>``, ``<rp>``) and photo-teaser links
   (``【写真】…``) leave the tree, and a link inside a run of Japanese,
   Chinese or Korean prose becomes plain text, because trafilatura's
   link-density limits count characters and a CJK sentence with one linked
   name looks like a short link to them;
2. trafilatura in its precision mode; when that finds little prose, its
   recall mode, taken if it finds more;
3. after: the paragraphs put back in the page's order (trafilatura appends
   the text it recovers from outside the main block, such as a lead kept
   apart), and the small print removed line by line (``bot.boilerplate``):
   datelines, bylines, captions and credits, "related" blocks, badges,
   copyright and share lines, the page's own title, repeated lines;
4. a result with less than ``MIN_PROSE_CHARS`` of running text (link lines
   and headings do not count), or a list of teasers, is not the article:
   the engine is asked again about the page without its attributes
   (class names mislead it: NHK's hashed ones; an article under a consent
   dialog is marked hidden), and if that finds none either, the page has
   no article: ``[]``.

This module does no I/O.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from itertools import pairwise
from typing import TYPE_CHECKING

from bot.boilerplate import Line, clean_lines, ends_sentence, prose_chars
from bot.markup import block_texts, bounded_markup, decode_html, soup_of
from bot.pagedata import embedded_lines
from bot.text import clean, collapse

if TYPE_CHECKING:  # lxml and trafilatura load only when a page is extracted
    from lxml.etree import _Element
    from lxml.html import HtmlElement

MIN_PROSE_CHARS = 30  # less running text than this is not an article (a 速報 flash can be this short)
RETRY_PROSE_CHARS = 400  # precision mode found less: ask recall mode too…
CJK_DENSITY = 4  # …or a quarter of it in CJK text, which says as much in fewer characters
TEASER_MIN = 4  # a list of blurbs has at least this many…
TEASER_MAX_CHARS = 120  # …of at most this many characters (median)…
TEASER_SHARE = 0.75  # …and a headline link between this share of them
HEADLINE_MIN_CHARS = 10  # a link with this much text can be a headline
CJK_LINK_SHARE = 0.5  # in CJK prose, links that are at most this share of their block's text are text
CJK_MIN_TEXT = 20  # …and the block has at least this many characters outside links
PROSE_LINE_CHARS = 160  # a paragraph that follows the headline reads like prose from this long (a quarter in CJK)

_BLANK_LINE = re.compile(r"\n[^\S\n]*\n\s*")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]{0,200}\?>")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f]")
# Links that advertise a photo, video or chart of the story from inside its
# text (Yahoo! News, Japanese wire copy): 【写真】「…」 is never body.
_TEASER_LINK = re.compile(
    r"^\s*[【［\[](?:写真|画像|動画|図|図解|表|グラフ|関連|関連記事|PR|広告)[^】］\]]{0,10}[】］\]]"
)
_INLINE_BLOCKS = frozenset(
    "a abbr b bdi bdo cite code data dfn em font i kbd mark q ruby s samp small span strong sub sup".split()
    + "time u var wbr".split()
)
_AS_WRITTEN = frozenset(["pre", "textarea", "code", "script", "style", "title", "head"])
_INVISIBLE = frozenset(["script", "style", "noscript", "template", "head", "title"])


def extract_body(data: bytes, url: str, content_type: str | None, mode: str) -> list[str]:
    """The article body of a fetched page as one-line paragraphs.

    ``url`` is the page's address (trafilatura uses it to tell links
    within the site); ``mode`` is ``"auto"`` or a CSS selector.
    """
    if content_type and not re.search(r"html|xml", content_type, re.IGNORECASE):
        return []
    decoded = decode_html(data, content_type)
    if mode == "auto" and (carried := embedded_lines(decoded)):
        return carried  # the article's own data (NHK NEWS WEB served whole)
    markup = bounded_markup(decoded)
    if mode != "auto":
        return _selected(markup, mode)
    tree = _load(markup)
    if tree is None:
        return []
    return [clean(line.text) for line in auto_lines(tree, url)]


def auto_lines(tree: HtmlElement, url: str | None = None) -> list[Line]:
    """The body lines of a parsed page (the tree is changed: readings and
    prose links are taken out)."""
    _prepare(tree)
    page_text, links = _visible_text(tree)
    titles = _titles(tree)
    body = _engine_body(tree, url, page_text, links, titles)
    if not body:
        # The engine's best block was teasers or small print: the page's
        # attributes may have misled it (a hashed class with "bar" in it
        # reads as a navigation bar; an article under a consent dialog is
        # marked hidden), so it is asked again about the bare structure.
        body = _engine_body(_unnamed(tree), url, page_text, links, titles)
    if not body:
        # Nor about that: the paragraphs that follow the headline, if any.
        body = clean_lines(_after_headline(tree), titles)
        if prose_chars(body) < MIN_PROSE_CHARS:
            return []
    return body


def _after_headline(tree: HtmlElement) -> list[Line]:
    """The paragraphs that follow the page's ``<h1>``: the first ``<p>``
    after it that reads like prose sets the others' parent and class (how
    a news page marks its paragraphs; its teasers are marked otherwise)."""
    headline = next(tree.iter("h1"), None)
    if headline is None:
        return []
    after = False
    first: HtmlElement | None = None
    for element in tree.iter():
        if element is headline:
            after = True
        elif after and element.tag == "p" and _prose_like(collapse(element.text_content())):
            first = element
            break
    parent = first.getparent() if first is not None else None
    if first is None or parent is None:
        return []
    kind = first.get("class")
    return [
        Line(text) for p in parent.iterchildren("p") if p.get("class") == kind and (text := collapse(p.text_content()))
    ]


def _prose_like(text: str) -> bool:
    size = _squeezed_len(text)
    cjk = len(_CJK.findall(text)) * 2 >= size
    return size >= (PROSE_LINE_CHARS // CJK_DENSITY if cjk else PROSE_LINE_CHARS) and ends_sentence(text)


def _engine_body(
    tree: HtmlElement, url: str | None, page_text: str, links: Sequence[tuple[int, int]], titles: Sequence[str]
) -> list[Line]:
    """The engine's body lines in page order, small print out; ``[]`` for
    too little prose or a list of teasers."""
    lines = _trafilatura(tree, url, precision=True)
    if prose_chars(lines) < _retry_below(lines):
        wider = _trafilatura(tree, url, precision=False)
        if _better(wider, lines, page_text):
            lines = wider
    placed = in_page_order(lines, page_text)
    body = clean_lines([line for _, line in placed], titles)
    if prose_chars(body) < MIN_PROSE_CHARS or _teaser_list(body, placed, links):
        return []
    return body


# -- the page -----------------------------------------------------------------


def _load(markup: str) -> HtmlElement | None:
    from lxml import etree
    from lxml.html import HTMLParser, document_fromstring

    # lxml refuses a str that still declares its (byte) encoding; the
    # engine's XML output refuses control characters (a page with "\x07"
    # between its words gave no body).
    markup = _CONTROL.sub(" ", _XML_DECLARATION.sub("", markup, count=1))
    if not markup.strip():
        return None
    # trafilatura's own parser settings: comments and processing
    # instructions out, so that text around them joins up.
    parser = HTMLParser(remove_comments=True, remove_pis=True, collect_ids=False, default_doctype=False)
    try:
        return document_fromstring(markup, parser=parser)
    except (etree.ParserError, ValueError):
        return None


def _unnamed(tree: HtmlElement) -> HtmlElement:
    """A copy of the page with no attributes but links' addresses: no class
    or id names, and no ``hidden``, ``aria-hidden`` or ``style`` (a page
    behind a consent dialog marks the article under it hidden)."""
    from copy import deepcopy

    bare = deepcopy(tree)
    for element in bare.iter():
        if isinstance(element.tag, str) and element.attrib:
            href = element.get("href")
            element.attrib.clear()
            if href is not None:
                element.set("href", href)
    return bare


def _mark_blank_lines(tree: HtmlElement) -> None:
    """A blank line between two runs of text becomes a ``<br>``: the
    engine collapses whitespace, and a blank line is the only paragraph
    mark of text shown as written (Yahoo! News: a story's paragraphs in one
    ``<p>``, a blank line between each two) and of bare text in ``<body>``."""
    from lxml.html import Element

    # Only text with a line break and something besides whitespace can
    # hold a blank line between two runs (lxml finds those, not Python).
    found = [
        (text.getparent(), bool(text.is_text), str(text))
        for text in tree.xpath("//text()[contains(., '\n') and normalize-space(.) != '']")
    ]
    for element, own, text in found:
        if element is None or not isinstance(element.tag, str) or (pieces := _pieces(text)) is None:
            continue
        if next(element.iterancestors("pre", "textarea"), None) is not None:
            continue
        if own:
            if element.tag in _AS_WRITTEN:
                continue
            element.text = pieces[0]
            parent, at = element, 0
        else:
            parent = element.getparent()
            if parent is None or parent.tag in _AS_WRITTEN:
                continue
            element.tail = pieces[0]
            at = parent.index(element) + 1
        for n, piece in enumerate(pieces[1:]):
            br = Element("br")
            br.tail = piece
            parent.insert(at + n, br)


def _pieces(text: str) -> list[str] | None:
    split = _BLANK_LINE.split(text)
    return split if sum(1 for piece in split if piece.strip()) >= 2 else None


def _block_of(element: HtmlElement) -> HtmlElement | None:
    node = element.getparent()
    while node is not None and isinstance(node.tag, str) and node.tag in _INLINE_BLOCKS:
        node = node.getparent()
    return node


def _squeezed_len(text: str) -> int:
    return len(text) - sum(text.count(c) for c in " \n\t\r\u3000")


def _prepare(tree: HtmlElement) -> None:
    for reading in list(tree.iter("rt", "rp")):
        reading.drop_tree()  # keeps the text after it
    _mark_blank_lines(tree)
    links = list(tree.iter("a"))
    for link in links:
        if _TEASER_LINK.match(link.text_content()):
            link.drop_tree()
    # Each block is looked at once, with all its links (a page of 15,000
    # links in one block made this quadratic).
    by_block: dict[HtmlElement, list[HtmlElement]] = {}
    for link in links:
        if link.getparent() is not None and (block := _block_of(link)) is not None:
            by_block.setdefault(block, []).append(link)
    for block, inside in by_block.items():
        text = block.text_content()
        total = _squeezed_len(text)
        if len(_CJK.findall(text)) * 2 < total:
            continue  # not CJK prose: trafilatura's limits fit it
        linked = sum(_squeezed_len(a.text_content()) for a in block.iter("a"))
        if linked <= CJK_LINK_SHARE * total and total - linked >= CJK_MIN_TEXT:
            for link in inside:
                link.drop_tag()  # its text stays in place


def _titles(tree: HtmlElement) -> list[str]:
    """The page's own headline: the digest prints it already."""
    found = [collapse(h.text_content()) for h in tree.iter("h1", "title")]
    for meta in tree.iter("meta"):
        if meta.get("property") == "og:title" or meta.get("name") == "twitter:title":
            found.append(collapse(meta.get("content") or ""))
    return [t for t in found if t]


def _visible_text(tree: HtmlElement) -> tuple[str, list[tuple[int, int]]]:
    """The page's text without scripts and styles, whitespace removed, and
    where in it the text of each headline-sized link lies."""
    body = tree.find("body")
    parts: list[str] = []
    size = 0
    links: list[tuple[int, int]] = []

    def add(text: str | None) -> None:
        nonlocal size
        if text:
            squeezed = "".join(text.split())
            parts.append(squeezed)
            size += len(squeezed)

    def walk(node: _Element) -> None:
        if isinstance(node.tag, str) and node.tag not in _INVISIBLE:
            start = size
            add(node.text)
            for child in node:
                walk(child)
            if node.tag == "a" and size - start >= HEADLINE_MIN_CHARS:
                links.append((start, size))
        add(node.tail)

    for child in body if body is not None else tree:
        walk(child)
    return "".join(parts), links


def in_page_order(lines: Sequence[Line], page_text: str) -> list[tuple[int, Line]]:
    """``lines`` sorted by where they start in the page's text (whitespace
    removed), with that place.

    Each line is looked for after the previous one first, so that a line
    repeated earlier in the page (a teaser) does not move it; a line not
    found keeps its place after its predecessor.
    """
    placed: list[tuple[int, int, Line]] = []
    previous = 0
    for n, line in enumerate(lines):
        probe = "".join(line.text.split())[:24]
        where = page_text.find(probe, previous) if probe else -1
        if where < 0 and probe:
            where = page_text.find(probe)
        if where < 0:
            where = previous
        placed.append((where, n, line))
        previous = where
    return [(where, line) for where, _, line in sorted(placed, key=lambda p: (p[0], p[1]))]


def _retry_below(lines: Sequence[Line]) -> int:
    """Prose below which recall mode is asked too."""
    sample = "".join(line.text for line in lines)[:2000]
    cjk = len(_CJK.findall(sample)) * 2 >= len(sample) > 0
    return RETRY_PROSE_CHARS // CJK_DENSITY if cjk else RETRY_PROSE_CHARS


def _better(wider: Sequence[Line], narrow: Sequence[Line], page_text: str) -> bool:
    """Recall mode's result replaces precision mode's when it has more
    prose in at least as many paragraphs, and is not trafilatura's last
    resort: the page's whole text run together, which means no article was
    found (an index, a login form), or an article whose paragraphs it lost."""
    if len(wider) < len(narrow) or prose_chars(wider) <= prose_chars(narrow):
        return False
    return not (len(wider) == 1 and 2 * _squeezed_len(wider[0].text) >= len(page_text))


def _teaser_list(body: Sequence[Line], placed: Sequence[tuple[int, Line]], links: Sequence[tuple[int, int]]) -> bool:
    """Short blurbs with a headline link between each two: search results
    or a topic page, not an article (whose paragraphs follow one another)."""
    kept = {id(line) for line in body}
    spots = [(where, _squeezed_len(line.text)) for where, line in placed if id(line) in kept and not line.heading]
    if len(spots) < TEASER_MIN or sorted(n for _, n in spots)[len(spots) // 2] > TEASER_MAX_CHARS:
        return False
    starts = [start for start, _ in links]
    linked_gaps = 0
    for (a, n), (b, _) in pairwise(spots):
        i = bisect_left(starts, a + n)
        if i < len(links) and links[i][1] <= b:
            linked_gaps += 1
    return linked_gaps >= TEASER_SHARE * (len(spots) - 1)


# -- the engine ---------------------------------------------------------------


def _trafilatura(tree: HtmlElement, url: str | None, precision: bool) -> list[Line]:
    from trafilatura import bare_extraction

    document = bare_extraction(
        tree,  # copied by trafilatura: ours stays whole
        url=url,
        favor_precision=precision,
        favor_recall=not precision,
        include_comments=False,
        include_tables=True,
        include_links=True,  # to tell link lines from prose
        include_images=False,
        with_metadata=False,
    )
    body = getattr(document, "body", None)
    return list(_body_lines(body)) if body is not None else []


# trafilatura's output elements that start a line of their own; <code> does
# only as a block (inside a paragraph it is a word in monospace).
_LINE_ELEMENTS = frozenset(["p", "head", "item", "quote", "row", "list", "table", "div"])
_TEXT_ELEMENTS = frozenset(["p", "head", "item", "quote", "cell", "hi", "ref", "del"])


def _body_lines(body: _Element) -> Iterator[Line]:
    """trafilatura's XML body as lines: a paragraph, heading, list item,
    quote or table row each, ``<lb/>`` breaking a line.

    A blank line in the text breaks a line too: it is the only paragraph
    mark of a page's bare text (trafilatura's last resort for a page
    without paragraph elements: text right in ``<body>``) and of text
    shown as written (Yahoo! News puts a story's paragraphs in one ``<p>``,
    a blank line between each two)."""
    parts: list[str] = []
    link_chars = 0
    heading = False

    def flush() -> Line | None:
        nonlocal link_chars, heading
        text = collapse("".join(parts))
        line = Line(text, heading, min(link_chars, len(text))) if text else None
        parts.clear()
        link_chars, heading = 0, False
        return line

    def add(text: str | None, linked: bool) -> Iterator[Line]:
        nonlocal link_chars
        if not text:
            return
        first, *rest = _BLANK_LINE.split(text) if "\n" in text else (text,)
        for n, piece in enumerate((first, *rest)):
            if n:
                kept_heading = heading
                line = flush()
                if line:
                    yield line
                set_heading(kept_heading)
            parts.append(piece)
            if linked:
                link_chars += _squeezed_len(piece)

    def set_heading(value: bool) -> None:
        nonlocal heading
        heading = value

    def walk(node: _Element, in_link: bool) -> Iterator[Line]:
        parent = node.getparent()
        starts = node.tag in _LINE_ELEMENTS or (
            node.tag == "code" and (parent is None or parent.tag not in _TEXT_ELEMENTS)
        )
        if starts or node.tag == "lb":
            line = flush()
            if line:
                yield line
        if node.tag == "head":
            set_heading(True)
        elif node.tag == "cell":
            parts.append(" ")
        linked = in_link or node.tag == "ref"
        yield from add(node.text, linked)
        for child in node:
            yield from walk(child, linked)
        if starts:
            line = flush()
            if line:
                yield line
        if parent is not body:
            yield from add(node.tail, in_link)

    yield from add(body.text, False)
    for child in body:
        yield from walk(child, False)
        yield from add(child.tail, False)
    last = flush()
    if last:
        yield last


# -- a selector from the config ----------------------------------------------


def _selected(markup: str, selector: str) -> list[str]:
    out: list[str] = []
    for element in soup_of(markup).select(selector):
        out.extend(clean(text) for text in block_texts(element))
    return out
