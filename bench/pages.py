"""Real article pages with their expected bodies, and how to score a body.

Two parts of ``shared/corpus`` (``FEEDBOT_CORPUS``) are read:

- ``pages/``: 1,588 pages from twelve public extraction test suites, each
  with the source project's own truth (``expected.txt``: the whole body, or
  ``expected.json``: snippets it must and must not contain);
- ``articles/``: the older, smaller set (newspaper, scrapinghub, readability,
  trafilatura pages), with the same two kinds of truth.

Scoring follows ``pages/README.md``: a body against text truth scores the
character F1 of non-space characters after Unicode NFC (it suits Japanese,
which has no word boundaries, as well as English); a body against snippets
passes when, with all whitespace removed from both sides, every ``with``
snippet is in it and no ``without`` one.  An empty body where the truth has
text scores 0.

Every page also falls in a fixed half of a **tuning/test split** decided by
a stable hash of its name: a third of the pages are kept for the test
figures and never looked at while tuning (``split(name)``).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parent.parent

Split = Literal["tune", "test"]


def corpus_dir() -> Path:
    return Path(os.environ.get("FEEDBOT_CORPUS") or ROOT.parent / "shared" / "corpus")


def split(name: str) -> Split:
    """``test`` for a third of the names, ``tune`` for the rest, for ever.

    SHA-256 of the name, so the split does not depend on the order of the
    corpus, on Python's hash seed, or on pages added later.
    """
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return "test" if int.from_bytes(digest[:8], "big") % 3 == 0 else "tune"


@dataclass(frozen=True)
class Page:
    name: str  # "<source>_<id>" as in pages/, or "articles/<set>/<id>"
    source: str  # the test suite it comes from ("aeb", "trafilatura", …), for pages of articles/ too
    lang: str
    path: Path
    gzipped: bool
    expected: str | None  # the whole body, when the truth is text
    with_: tuple[str, ...] = field(default=())  # snippets the body must contain
    without: tuple[str, ...] = field(default=())  # snippets it must not contain
    url: str | None = None
    outlet: str | None = None  # the news outlet, where the corpus names it (ja-news pages)

    @property
    def truth(self) -> Literal["text", "snippets"]:
        return "text" if self.expected is not None else "snippets"

    @property
    def split(self) -> Split:
        return split(self.name)

    @property
    def data(self) -> bytes:
        raw = self.path.read_bytes()
        return gzip.decompress(raw) if self.gzipped else raw


# -- loading ------------------------------------------------------------------


def _from_pages(base: Path) -> Iterator[Page]:
    folder = base / "pages"
    if not folder.is_dir():
        return
    for entry in sorted(p for p in folder.iterdir() if p.is_dir()):
        meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
        source = entry.name.split("_", 1)[0]
        common = {
            "name": entry.name,
            "source": source,
            "lang": str(meta.get("lang") or "und"),
            "path": entry / "page.html.gz",
            "gzipped": True,
            "url": meta.get("url"),
            "outlet": meta.get("outlet"),
        }
        text_truth = entry / "expected.txt"
        if text_truth.is_file():
            yield Page(expected=text_truth.read_text(encoding="utf-8"), **common)
        else:
            snippets = json.loads((entry / "expected.json").read_text(encoding="utf-8"))
            yield Page(
                expected=None,
                with_=tuple(snippets.get("with", [])),
                without=tuple(snippets.get("without", [])),
                **common,
            )


def _html_lines(markup: str) -> str:
    """readability's ``expected.html`` as lines of text (one per block)."""
    from lxml import html as lxml_html

    root = lxml_html.fromstring(markup)
    for br in root.iter("br"):
        br.tail = "\n" + (br.tail or "")
    blocks = {"p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "tr", "figcaption", "dd"}
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag in blocks:
            el.tail = "\n" + (el.tail or "")
            el.text = "\n" + (el.text or "")
    lines = (" ".join(line.split()) for line in root.text_content().split("\n"))
    return "\n".join(line for line in lines if line)


def _from_articles(base: Path) -> Iterator[Page]:
    folder = base / "articles"
    if not folder.is_dir():
        return

    def page(name: str, source: str, path: Path, lang: str, **truth: object) -> Page:
        return Page(name=f"articles/{name}", source=source, lang=lang, path=path, gzipped=False, **truth)  # type: ignore[arg-type]

    news = folder / "newspaper"
    for expected in sorted(news.glob("*.expected.txt")):
        stem = expected.name.removesuffix(".expected.txt")
        html_file = next(
            p
            for p in (
                news / f"{stem}.html",
                news / f"{stem}_article.html",
                news / f"{stem[:-1]}_article{stem[-1]}.html",
            )
            if p.is_file()
        )
        lang = "ja" if stem.startswith("japanese") else "en"
        yield page(f"newspaper/{stem}", "newspaper", html_file, lang, expected=expected.read_text("utf-8"))
    aeb = folder / "scrapinghub-aeb"
    truth = json.loads((aeb / "ground-truth.json").read_text(encoding="utf-8"))
    for key, value in sorted(truth.items()):
        yield page(f"scrapinghub-aeb/{key}", "aeb", aeb / f"{key}.html", "en", expected=value["articleBody"])
    for sub in sorted(p for p in (folder / "readability").iterdir() if p.is_dir()):
        expected_html = (sub / "expected.html").read_text(encoding="utf-8")
        truth = _html_lines(expected_html)
        yield page(f"readability/{sub.name}", "readability", sub / "source.html", "en", expected=truth)
    traf = folder / "trafilatura"
    for _url, value in sorted(json.loads((traf / "expected.json").read_text(encoding="utf-8")).items()):
        lang = "ja" if value["file"].startswith("nhk.") else "en"
        yield page(
            f"trafilatura/{value['file']}",
            "trafilatura",
            traf / value["file"],
            lang,
            expected=None,
            with_=tuple(value.get("with", [])),
            without=tuple(value.get("without", [])),
        )


def pages(root: Path | None = None) -> list[Page]:
    """Every page of ``pages/`` and ``articles/``, in a stable order."""
    base = root or corpus_dir()
    return [*_from_pages(base), *_from_articles(base)]


# -- scoring ------------------------------------------------------------------


def _chars(text: str) -> Counter[str]:
    return Counter(c for c in unicodedata.normalize("NFC", text) if not c.isspace())


def char_f1(got: str, expected: str) -> float:
    """F1 of the multisets of non-space characters (0 for an empty body)."""
    g, e = _chars(got), _chars(expected)
    overlap = sum((g & e).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / sum(g.values()), overlap / sum(e.values())
    return 2 * precision * recall / (precision + recall)


def _squeeze(text: str) -> str:
    return "".join(unicodedata.normalize("NFC", text).split())


def snippet_misses(got: str, page: Page) -> tuple[list[str], list[str]]:
    """(``with`` snippets missing from the body, ``without`` snippets in it)."""
    flat = _squeeze(got)
    missing = [s for s in page.with_ if _squeeze(s) not in flat]
    present = [s for s in page.without if _squeeze(s) in flat]
    return missing, present


@dataclass(frozen=True)
class Score:
    """One body against one page's truth."""

    value: float  # F1 for text truth; 1.0 or 0.0 (pass) for snippets
    empty: bool
    snippets_ok: int = 0
    snippets_total: int = 0


def score(got: str, page: Page) -> Score:
    empty = not got.strip()
    if page.expected is not None:
        return Score(char_f1(got, page.expected), empty)
    missing, present = snippet_misses(got, page)
    total = len(page.with_) + len(page.without)
    failed = len(missing) + len(present)
    return Score(0.0 if failed else 1.0, empty, total - failed, total)
