"""A line of the digest as link and text spans (pure).

Escaping feed text for a platform must never touch a link: a zero-width
space or a backslash inside ``https://medium.com/@writer/story_1`` breaks
the link, and the link is the point of every item (issue 22).  So a line
is split first: the item's own link wherever it stands (exactly: the
headline template may glue it to the title, ``{title}{link}``), then any
other ``http(s)://`` URL in the rest (a link in a title or a body line),
by ``URL``.  Each kind escapes the text spans with what its platform
honours and writes the link spans its own way (as they are, or in the
delimiters that make the platform link exactly that: ``<…>``).

``URL`` is what a reader would call the link: no spaces, no ``<>"``; its
path ASCII (a URL glued to the Japanese text after it ends where the
text begins), its query and fragment may hold other scripts
(``?q=ロシア``), and it does not end in sentence punctuation (a closing
bracket only when it closes one of the URL's own).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

Span = tuple[bool, str]  # (a link?, its text)

_CJK_PUNCT = "\u3000-\u303f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65"
# (No IGNORECASE for the whole: with it, the non-ASCII range would exclude
# "i", "k" and "s", which İ, K and ſ fold to.)
URL = re.compile(
    r"(?i:https?)://[^\s<>\"\x00-\x1f\x7f?#\u0080-\U0010ffff]+"  # scheme, host and path: ASCII
    rf"(?:[?#][^\s<>\"\x00-\x1f\x7f{_CJK_PUNCT}]*)?"  # query and fragment: any script
)
_TRAILING = ".,:;!?'\"*~"  # as Mastodon's rule: a URL may end in _ (__init__), not in these
_CLOSERS = {")": "(", "]": "[", "}": "{"}


def spans(line: str, links: Sequence[str] = ()) -> list[Span]:
    """``line`` as text and link spans, in order; joined, they are ``line``."""
    out: list[Span] = []
    rest = line
    known = [link for link in links if link and link in line]
    while rest:
        at, found = _first_known(rest, known)
        text = rest[:at] if found else rest
        out.extend(_urls(text))
        if not found:
            break
        out.append((True, found))
        rest = rest[at + len(found) :]
    return [s for s in out if s[1]]


def escape_line(line: str, links: Sequence[str], text: Callable[[str], str], link: Callable[[str], str]) -> str:
    """``line`` with each text span through ``text`` and each link through ``link``."""
    return "".join(link(s) if is_link else text(s) for is_link, s in spans(line, links))


def _first_known(rest: str, known: Sequence[str]) -> tuple[int, str]:
    """The earliest (then longest) occurrence of a known link in ``rest``."""
    best = (len(rest), "")
    for link in known:
        at = rest.find(link)
        if at >= 0 and (at < best[0] or (at == best[0] and len(link) > len(best[1]))):
            best = (at, link)
    return best if best[1] else (0, "")


def _urls(text: str) -> list[Span]:
    out: list[Span] = []
    start = 0
    for m in URL.finditer(text):
        url = _trim(m.group(0))
        if len(url) <= len("https://"):
            continue
        out.append((False, text[start : m.start()]))
        out.append((True, url))
        start = m.start() + len(url)
    out.append((False, text[start:]))
    return out


def _trim(url: str) -> str:
    """Sentence punctuation after a URL is not part of it; a closing
    bracket is, when it closes one the URL opened."""
    while url:
        last = url[-1]
        if last in _TRAILING or (last in _CLOSERS and url.count(last) > url.count(_CLOSERS[last])):
            url = url[:-1]
        else:
            break
    return url
