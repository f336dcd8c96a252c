"""HTML as text: page decoding, and plain text from feed fragments (pure).

- ``decode_html(data, content_type)`` decodes page bytes the way a browser
  would: BOM, the HTTP charset, ``<meta charset>``, ISO-2022-JP's escapes,
  then UTF-8, then detection (Shift_JIS and EUC-JP pages often declare
  nothing); a declared charset that does not decode is not trusted;
  Shift_JIS is read as CP932 and Latin-1 as Windows-1252 (the WHATWG
  encoding standard).
- ``html_paragraphs`` and ``plain`` turn an HTML fragment from a feed (a
  description, a title with markup) into one-line paragraphs or one line.
- ``block_texts`` gives the text blocks of a parsed fragment, one line
  each: the body of a page whose CSS selector the config names.

Article bodies found automatically are ``bot.extract``'s business.  This
module does no I/O.
"""

from __future__ import annotations

import codecs
import html
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # bs4 costs ~80 ms to import: only the code paths that parse HTML load it
    from bs4 import BeautifulSoup, Tag

from bot.pagedata import MARKER
from bot.text import BLOCK_TAGS, INVISIBLE_TAGS, collapse

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.I)
_ISO2022_JP = re.compile(rb"\x1b\$[@B]")  # ISO-2022-JP's switch to JIS X 0208
_HTTP_CHARSET = re.compile(r"charset\s*=\s*[\"']?([^\s;\"']+)", re.I)
# A tag: "<", a name, then anything but another "<" up to ">".  Excluding
# "<" keeps the search linear: "&lt;a" repeated 360,000 times made the old
# pattern ([^>]*) scan to the end of the text from every "<a" (issue 13).
_TAG = re.compile(r"</?[a-zA-Z][^<>]*>")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
# Elements whose content is never text, dropped before a page is parsed.
# (Not <noscript>: Blogger and others put the whole post there for readers
# without JavaScript.)
_HEAVY = re.compile(r"<(script|style|svg|template|iframe|math)(?=[\s>/])", re.IGNORECASE)
_HEAVY_NAMES = ("script", "style", "svg", "template", "iframe", "math")
_CLOSING = {name: re.compile(f"</{name}", re.IGNORECASE) for name in _HEAVY_NAMES}
_HEAVY_BYTES = re.compile(rb"<(script|style|svg|template|iframe|math)(?=[\s>/])", re.IGNORECASE)
_DATA_MARKER = MARKER.encode()
_FRAMEWORK_DATA = re.compile(rb"self\.__next_f\.push|__NEXT_DATA__")
_CLOSING_BYTES = {name.encode(): re.compile(b"</" + name.encode(), re.IGNORECASE) for name in _HEAVY_NAMES}
# Of a page's markup, once the heavy elements are out: 4 pages of the
# corpus's 1,604 are longer (their ends are cut).
MAX_PAGE_CHARS = 512_000
# Tags of a page (the median article has 1,230; 5 of the corpus's 1,604 have
# more): what an extractor's time and memory grow with.
MAX_PAGE_TAGS = 10_000

# -- decoding ---------------------------------------------------------------


def charset_from_content_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    m = _HTTP_CHARSET.search(content_type)
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
    if _ISO2022_JP.search(data[:200_000]):
        # 7-bit, so it also "decodes" as UTF-8: its escapes say what it is.
        text = _try(data, "iso2022_jp_ext")
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


def bounded_bytes(data: bytes, limit: int = 4 * MAX_PAGE_CHARS) -> bytes:
    """``bounded_markup`` on the undecoded page, roughly: heavy elements cut
    out and at most ``limit`` bytes (a character is at most four), so that
    a 5 MB page is not carried whole to a worker and decoded there.  Only
    for encodings where "<" is always the byte 0x3C (not UTF-16 or -32).
    On a page that carries its article as data (``bot.pagedata``), the
    scripts that hand the framework's data over stay."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:1024]:
        return data
    if len(data) <= limit and _HEAVY_BYTES.search(data) is None:
        return data
    carried = _DATA_MARKER in data
    kept: list[bytes] = []
    size = at = 0
    while size < limit:
        m = _HEAVY_BYTES.search(data, at)
        stop = m.start() if m else len(data)
        kept.append(data[at:stop])
        size += stop - at
        if m is None:
            break
        closing = _CLOSING_BYTES[m.group(1).lower()].search(data, m.end())
        if closing is None:
            break
        end = data.find(b">", closing.start())
        at = len(data) if end < 0 else end + 1
        if carried and m.group(1).lower() == b"script" and _FRAMEWORK_DATA.search(data, stop, closing.start()):
            kept.append(data[stop:at])
            size += at - stop
    return b"".join(kept)[:limit]


def bounded_markup(markup: str, limit: int = MAX_PAGE_CHARS, tags: int = MAX_PAGE_TAGS) -> str:
    """A page's markup fit to parse: scripts, styles, SVG and the like cut
    out (a modern page is mostly those), then at most ``limit`` characters
    and ``tags`` tags.

    Parsing multiplies a page some hundred times in memory, and a page of
    tiny paragraphs costs its parser time faster than its size grows; this
    is what keeps one hostile page from taking a worker's memory.  Linear:
    one search for the next heavy element, one for its end; no lower-case
    copy of the page."""
    if _HEAVY.search(markup) is None:
        return _first_tags(markup[:limit], tags)
    kept: list[str] = []
    size = 0
    at = 0
    while size < limit:
        m = _HEAVY.search(markup, at)
        stop = m.start() if m else len(markup)
        kept.append(markup[at:stop])
        size += stop - at
        if m is None:
            break
        closing = _CLOSING[m.group(1).lower()].search(markup, m.end())
        if closing is None:
            break  # never closed: the rest is its content
        end = markup.find(">", closing.start())
        at = len(markup) if end < 0 else end + 1
    return _first_tags("".join(kept)[:limit], tags)


def _first_tags(markup: str, tags: int) -> str:
    """``markup`` up to its ``tags``-th tag (a page of 50,000 one-word
    paragraphs costs an extractor minutes and hundreds of MB)."""
    at = -1
    for _ in range(tags):
        at = markup.find("<", at + 1)
        if at < 0:
            return markup
    return markup[:at]


# -- fragments ----------------------------------------------------------------


def soup_of(markup: str) -> BeautifulSoup:
    """A parsed fragment without scripts, styles, furigana readings or comments."""
    from bs4 import BeautifulSoup
    from bs4.element import Comment

    soup = BeautifulSoup(markup, "lxml")
    for tag in soup.find_all(INVISIBLE_TAGS):
        tag.decompose()
    for comment in soup.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()
    return soup


def iter_blocks(root: Tag) -> Iterator[tuple[str, Tag, int]]:
    """Runs of inline text between block boundaries, in document order:
    (one-line text, nearest block-level element, characters inside links)."""
    from bs4 import Tag
    from bs4.element import NavigableString

    parts: list[str] = []
    link_chars = 0
    owner: Tag = root

    def flush() -> tuple[str, Tag, int] | None:
        nonlocal parts, link_chars
        text = collapse("".join(parts))
        block = (text, owner, min(link_chars, len(text))) if text else None
        parts, link_chars = [], 0
        return block

    def walk(node: Tag, in_link: bool) -> Iterator[tuple[str, Tag, int]]:
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


def block_texts(root: BeautifulSoup | Tag) -> list[str]:
    """Every non-empty text block of a fragment, one line each."""
    return [text for text, _, _ in iter_blocks(root)]


def looks_like_markup(text: str) -> bool:
    return "<" in text and _TAG.search(text) is not None


def html_paragraphs(fragment: str) -> list[str]:
    """Paragraphs of an HTML fragment (feed content), one line each."""
    if not looks_like_markup(fragment):
        decoded = html.unescape(fragment)
        return [p for p in (collapse(x) for x in _PARAGRAPH_BREAK.split(decoded)) if p]
    return block_texts(soup_of(fragment))


def plain(fragment: str) -> str:
    """A fragment as one line of plain text (titles, post texts)."""
    return " ".join(html_paragraphs(fragment))
