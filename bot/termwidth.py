"""Text fit to a terminal's columns (``feedbot list``).

A character's width is what a terminal gives it: East Asian wide and
fullwidth characters take two columns (a name of 例新聞 is six columns,
not three), combining marks and zero-width format characters none.  From
``unicodedata`` (wcwidth is not a dependency; for the names and addresses
listed here the two agree).  "…" counts one column, as terminals outside
CJK legacy-width mode show it.
"""

from __future__ import annotations

import os
import shutil
import unicodedata
from typing import TextIO

ELLIPSIS = "…"
TAIL_COLUMNS = 10  # of an address's path kept at least when it is cut in the middle
MIN_COLUMNS = 40  # a narrower COLUMNS is taken as 40: a line cut to nothing helps nobody


def char_width(c: str) -> int:
    if unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(c) in "WF" else 1


def width(text: str) -> int:
    return sum(char_width(c) for c in text)


def pad(text: str, columns: int) -> str:
    return text + " " * max(0, columns - width(text))


def cut(text: str, columns: int) -> str:
    """``text`` in at most ``columns`` columns, "…" at the end if cut (never
    half of a wide character)."""
    if width(text) <= columns:
        return text
    out, used = [], 0
    for c in text:
        w = char_width(c)
        if used + w > columns - 1:
            break
        out.append(c)
        used += w
    return "".join(out).rstrip() + ELLIPSIS


def _tail(text: str, columns: int) -> str:
    """The end of ``text`` that fits in ``columns`` columns."""
    out: list[str] = []
    used = 0
    for c in reversed(text):
        w = char_width(c)
        if used + w > columns:
            break
        out.append(c)
        used += w
    return "".join(reversed(out))


def elide_url(url: str, columns: int) -> str:
    """An address in at most ``columns`` columns, cut in the middle: its
    host and the end of its path are what tell two feeds apart
    (``https://news.web.nhk/…/cat6.xml``)."""
    if width(url) <= columns:
        return url
    scheme, sep, rest = url.partition("://")
    if not sep:
        return cut(url, columns)
    host, _, path = rest.partition("/")
    for head in (f"{scheme}://{host}/", f"{host}/"):  # the scheme goes before the end of the path does
        room = columns - width(head) - 1
        if room >= TAIL_COLUMNS:
            return head + ELLIPSIS + _tail(path, room)
    return cut(url, columns)


def terminal_columns(out: TextIO) -> int | None:
    """The width to fit: COLUMNS if set, else the terminal's if ``out`` is
    one; None (no limit) for a pipe or a file, so that a script or grep
    gets whole addresses."""
    if os.environ.get("COLUMNS", "").strip().isdigit() or out.isatty():
        return max(MIN_COLUMNS, shutil.get_terminal_size().columns)
    return None
