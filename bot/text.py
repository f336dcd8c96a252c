"""Plain text from feed and page fragments (pure).

Everything that reaches a digest line goes through here: markup removed,
entities decoded, whitespace (newlines included) collapsed to single spaces.
Characters that can disguise text (controls, bidi overrides, zero-width
joiners used outside emoji) are removed; emoji and flags are kept.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

# Block-level elements: their boundaries separate paragraphs.
BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    ]
)
# Never text: their content is code, styling, or furigana readings.
INVISIBLE_TAGS = frozenset(
    ["script", "style", "noscript", "template", "rt", "rp", "head", "title", "svg", "math", "iframe", "object"]
)

_SPACE = re.compile(r"\s+")
# C0/C1 controls (but not whitespace, handled by collapsing), bidi embeddings,
# overrides and isolates, and invisible format characters that have no
# business in a headline.  U+200D (ZWJ) is kept only between emoji.
_UNSAFE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200b\u200c\u200e\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u2069\ufeff\ufff9-\ufffb]"
)
_ZWJ = "\u200d"
_SURROGATE = re.compile("[\ud800-\udfff]")


def no_surrogates(text: str) -> str:
    """Lone surrogates (from a JSON "\\ud800" or a broken reference) as
    U+FFFD: they cannot be encoded, so one would fail a whole poll."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def collapse(text: str) -> str:
    """Collapse whitespace runs to one space and strip the ends."""
    return _SPACE.sub(" ", clean(text)).strip()


def clean(text: str) -> str:
    """Remove characters that can hide or disguise text; keep emoji intact."""
    text = _UNSAFE.sub("", no_surrogates(text))
    if _ZWJ in text:
        text = "".join(
            c
            for i, c in enumerate(text)
            if c != _ZWJ or (0 < i < len(text) - 1 and _is_emoji(text[i - 1]) and _is_emoji(text[i + 1]))
        )
    return text


def _is_emoji(c: str) -> bool:
    return unicodedata.category(c) == "So" or 0x1F000 <= ord(c) <= 0x1FAFF or c == "\ufe0f"


def _joins_previous(c: str) -> bool:
    """Characters that belong to the character before them."""
    return (
        unicodedata.combining(c) > 0
        or c in ("\u200d", "\ufe0f", "\ufe0e", "\u20e3")
        or 0x1F3FB <= ord(c) <= 0x1F3FF  # skin tones
        or 0xE0020 <= ord(c) <= 0xE007F  # tag sequences (flags of regions)
        or unicodedata.category(c) == "Mn"
    )


def _regional(c: str) -> bool:
    return 0x1F1E6 <= ord(c) <= 0x1F1FF


def safe_cut(text: str, n: int) -> int:
    """The largest cut point ≤ ``n`` that splits no emoji, flag or combining
    sequence: a flag 🇺🇦 is two code points, 👨‍👩‍👧 five."""
    n = max(0, min(n, len(text)))
    while 0 < n < len(text) and (_joins_previous(text[n]) or text[n - 1] == "\u200d"):
        n -= 1
    if 0 < n < len(text) and _regional(text[n]):
        run = 0
        while n - run > 0 and _regional(text[n - run - 1]):
            run += 1
        if run % 2:  # the cut falls between the two halves of a flag
            n -= 1
    return n


def truncate(text: str, limit: int, ellipsis: str = "…") -> str:
    """Cut ``text`` to ``limit`` characters and append ``ellipsis`` if cut."""
    if len(text) <= limit:
        return text
    return text[: safe_cut(text, limit)].rstrip() + ellipsis


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape_controls(text: str) -> str:
    """Control characters as visible escapes (``\\x0a``, ``\\x1b``): one
    line, nothing a terminal or the journal would obey."""
    return _CONTROL.sub(_escaped, text)


def _escaped(m: re.Match[str]) -> str:
    code = ord(m.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(text: str, limit: int = 200) -> str:
    """A server's or a feed's text fit to show: control characters escaped,
    cut at ``limit`` characters with "…"."""
    line = escape_controls(text[: limit * 2])
    return line if len(line) <= limit else line[: limit - 1] + "…"


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
