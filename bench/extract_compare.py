"""Compare body extractors on shared/corpus/articles: quality and speed.

    .venv/bin/python -m bench.extract_compare [--write docs/extraction.md] [--repeat 5]

Candidates: feedbot's own extractor (bs4 + lxml, ``bot.extract``),
trafilatura and readability-lxml (installed with ``pip install -e .[bench]``;
a candidate that is not installed is left out of the table).  Every
candidate gets the same decoded page.  Scores are character-level F1
against the expected body (bench/articles.py); trafilatura's set has only
``with``/``without`` snippets, which are checked instead.  Times are the
median over the corpus of the best of ``--repeat`` runs per page, measured
side by side in one process; compare the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.articles import Case, cases, char_f1, snippets_ok
from bot.demo import SITE
from bot.extract import decode_html, extract_body, html_paragraphs

# NHK's live-updates page of the demo site: headlines and links, no article.
LIVE_PAGE = (SITE / "nhk/news/html/20250121/k10014698911000.html").read_bytes()

Extractor = Callable[[str, bytes], str]


def _feedbot(markup: str, data: bytes) -> str:
    return "\n".join(extract_body(data, "https://example.org/", None, "auto"))


def _trafilatura() -> Extractor | None:
    try:
        import trafilatura
    except ImportError:
        return None

    def run(markup: str, data: bytes) -> str:
        return trafilatura.extract(markup, include_comments=False, include_tables=False) or ""

    return run


def _readability() -> Extractor | None:
    try:
        from readability import Document
    except ImportError:
        return None

    def run(markup: str, data: bytes) -> str:
        return "\n".join(html_paragraphs(Document(markup).summary(html_partial=True)))

    return run


def candidates() -> dict[str, Extractor]:
    found: dict[str, Extractor] = {"feedbot (bs4+lxml)": _feedbot}
    for name, make in (("trafilatura", _trafilatura), ("readability-lxml", _readability)):
        fn = make()
        if fn is not None:
            found[name] = fn
    return found


def measure(fn: Extractor, case: Case, repeat: int) -> tuple[str, float]:
    data = case.data
    markup = decode_html(data)
    best = float("inf")
    out = ""
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn(markup, data)
        best = min(best, time.perf_counter() - start)
    return out, best * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", type=Path, help="write the markdown report here")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    all_cases = list(cases())
    extractors = candidates()
    rows: dict[str, dict[str, str]] = {c.name: {} for c in all_cases}
    summary: list[str] = []
    for name, fn in extractors.items():
        scores: list[float] = []
        times: list[float] = []
        typical: list[float] = []  # pages of 100-200 KB, the "typical page"
        snippet_fail = 0
        for case in all_cases:
            out, ms = measure(fn, case, args.repeat)
            times.append(ms)
            if 100_000 <= len(case.data) <= 200_000:
                typical.append(ms)
            if case.expected is not None:
                f1 = char_f1(out, case.expected)
                scores.append(f1)
                rows[case.name][name] = f"{f1:.3f}"
            else:
                missing, present = snippets_ok(out, case)
                snippet_fail += len(missing) + len(present)
                total = len(case.with_) + len(case.without)
                rows[case.name][name] = f"{total - len(missing) - len(present)}/{total} snippets"
        live = len(fn(LIVE_PAGE.decode("utf-8"), LIVE_PAGE).strip())
        summary.append(
            f"| {name} | {statistics.mean(scores):.3f} | {min(scores):.3f} | {snippet_fail} | {live} | "
            f"{statistics.median(times):.1f} | {statistics.median(typical):.1f} | {max(times):.1f} |"
        )
    names = list(extractors)
    lines = [
        "# Body extraction: candidates compared",
        "",
        f"Produced by `python -m bench.extract_compare --write docs/extraction.md` on "
        f"{platform.machine()}, Python {platform.python_version()}, {len(all_cases)} pages of "
        "`shared/corpus/articles` (character-level F1 against the expected body; for the trafilatura set, "
        "the `with` snippets found and `without` snippets absent). Times: median and maximum over the pages "
        f"of the best of {args.repeat} runs, side by side in one process.",
        "",
        "| extractor | mean F1 | min F1 | snippet failures | chars taken from a live-updates index page "
        "(must be 0) | median ms | median ms, 100–200 KB pages | max ms |",
        "|---|---|---|---|---|---|---|---|",
        *summary,
        "",
        "| page | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
        *(f"| {case} | " + " | ".join(cells.get(n, "–") for n in names) + " |" for case, cells in rows.items()),
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if args.write:
        args.write.write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
