"""The article pages of ``shared/corpus/articles`` with their expected bodies.

Shared by the extraction tests (floors per page) and the comparison
benchmark (``bench/extract_compare.py``).  Scores are character-level F1:
the multiset of non-space characters of the extracted body against the
expected one, which suits Japanese (no word boundaries) as well as English.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def corpus_dir() -> Path:
    return Path(os.environ.get("FEEDBOT_CORPUS") or ROOT.parent / "shared" / "corpus")


@dataclass(frozen=True)
class Case:
    name: str
    path: Path
    expected: str | None  # the whole body, when the set gives it
    with_: tuple[str, ...] = field(default=())  # snippets the body must contain
    without: tuple[str, ...] = field(default=())  # snippets it must not contain

    @property
    def data(self) -> bytes:
        return self.path.read_bytes()


def _html_text(markup: str) -> str:
    from bot.extract import html_paragraphs

    return "\n".join(html_paragraphs(markup))


def cases(root: Path | None = None) -> Iterator[Case]:
    base = (root or corpus_dir()) / "articles"
    news = base / "newspaper"
    for expected in sorted(news.glob("*.expected.txt")):
        stem = expected.name.removesuffix(".expected.txt")
        page = next(
            p
            for p in (
                news / f"{stem}.html",
                news / f"{stem}_article.html",
                news / f"{stem[:-1]}_article{stem[-1]}.html",
            )
            if p.is_file()
        )
        yield Case(f"newspaper/{stem}", page, expected.read_text(encoding="utf-8"))
    aeb = base / "scrapinghub-aeb"
    truth = json.loads((aeb / "ground-truth.json").read_text(encoding="utf-8"))
    for key, value in sorted(truth.items()):
        yield Case(f"scrapinghub-aeb/{key}", aeb / f"{key}.html", value["articleBody"])
    for folder in sorted(p for p in (base / "readability").iterdir() if p.is_dir()):
        expected_html = (folder / "expected.html").read_text(encoding="utf-8")
        yield Case(f"readability/{folder.name}", folder / "source.html", _html_text(expected_html))
    traf = base / "trafilatura"
    for _url, value in sorted(json.loads((traf / "expected.json").read_text(encoding="utf-8")).items()):
        yield Case(
            f"trafilatura/{value['file']}",
            traf / value["file"],
            None,
            tuple(value.get("with", [])),
            tuple(value.get("without", [])),
        )


def _chars(text: str) -> Counter[str]:
    return Counter(c for c in text if not c.isspace())


def char_f1(got: str, expected: str) -> float:
    g, e = _chars(got), _chars(expected)
    overlap = sum((g & e).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / sum(g.values()), overlap / sum(e.values())
    return 2 * precision * recall / (precision + recall)


def snippets_ok(got: str, case: Case) -> tuple[list[str], list[str]]:
    """(missing ``with`` snippets, present ``without`` snippets)."""
    flat = " ".join(got.split())
    missing = [s for s in case.with_ if " ".join(s.split()) not in flat]
    present = [s for s in case.without if " ".join(s.split()) in flat]
    return missing, present
