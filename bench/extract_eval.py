"""Body extraction measured on every real page of the corpus, side by side.

    .venv/bin/python -m bench.extract_eval [--write docs/extraction.md] [--split tune|test|all]
                                           [--only NAME ...] [--jobs N] [--worst N]

Every page of ``shared/corpus/pages`` and ``shared/corpus/articles``
(bench/pages.py) goes through each candidate in the same process, one page
after the other, so that the times are side by side: feedbot's extractor
(``bot.extract.extract_body``), trafilatura 2.x and readability-lxml, each
given the same bytes (the libraries get the page as feedbot decodes it).

Figures, for the tuning and the test split apart (bench/pages.py fixes the
split by a hash of the page name; only the tuning part was looked at while
tuning ``bot/extract.py``):

- text truth: mean character F1 per source, and the macro mean over sources
  (so that no suite drowns the others);
- snippet truth: the share of pages that pass (every ``with`` snippet found,
  no ``without`` one), per source and macro over sources;
- per language, and Japanese pages of both kinds on their own: by outlet
  (the ``ja-news`` pages' outlets; the other suites' Japanese pages by
  suite), the ``ja-news`` text pages' macro F1 over outlets, and the worst
  Japanese pages by name;
- empty bodies (every page of the corpus is an article);
- the characters each candidate takes from pages that are *not* articles
  (the demo site's live-updates page and tests/data/not_articles/), which
  must be 0;
- time per page, median and p95;
- the worst pages by name.

``--jobs N`` spreads the pages over N processes (each still runs every
candidate on its page in turn); use 1 for the times in the report.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.pages import ROOT, Page, Score, corpus_dir, pages, score
from bench.report import splice

Extractor = Callable[[bytes, str | None], str]

NOT_ARTICLES = ROOT / "tests" / "data" / "not_articles"


# -- candidates -----------------------------------------------------------------


def _feedbot(data: bytes, url: str | None) -> str:
    from bot.extract import extract_body

    return "\n".join(extract_body(data, url or "https://example.org/", None, "auto"))


def _legacy(data: bytes, url: str | None) -> str:
    from bench.legacy_extract import extract_body

    return "\n".join(extract_body(data))


def _trafilatura(data: bytes, url: str | None) -> str:
    import trafilatura

    from bot.markup import decode_html

    return trafilatura.extract(decode_html(data), url=url, include_comments=False, include_tables=True) or ""


def _readability(data: bytes, url: str | None) -> str:
    from readability import Document

    from bot.markup import decode_html, html_paragraphs

    return "\n".join(html_paragraphs(Document(decode_html(data)).summary(html_partial=True)))


CANDIDATES: dict[str, Extractor] = {
    "feedbot": _feedbot,
    "feedbot 0.1": _legacy,
    "trafilatura": _trafilatura,
    "readability-lxml": _readability,
}


def available(names: Iterable[str]) -> dict[str, Extractor]:
    found: dict[str, Extractor] = {}
    for name in names:
        fn = CANDIDATES[name]
        try:
            fn(b"<html><body><p>warm-up</p></body></html>", None)
        except ImportError:
            print(f"{name}: not installed (pip install -e .[bench]); left out", file=sys.stderr)
            continue
        found[name] = fn
    return found


# -- running --------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    page: str
    candidate: str
    score: Score
    ms: float
    chars: int


def _run_page(args: tuple[Page, Sequence[str]]) -> list[Result]:
    page, names = args
    data = page.data
    out: list[Result] = []
    for name in names:
        fn = CANDIDATES[name]
        start = time.perf_counter()
        try:
            body = fn(data, page.url)
        except Exception as exc:  # a crash is a failure of that candidate on that page, not of the run
            print(f"{name} failed on {page.name}: {exc!r}", file=sys.stderr)
            body = ""
        ms = (time.perf_counter() - start) * 1000
        out.append(Result(page.name, name, score(body, page), ms, len(body)))
    return out


def run(selected: Sequence[Page], names: Sequence[str], jobs: int) -> list[Result]:
    work = [(p, names) for p in selected]
    results: list[Result] = []
    if jobs <= 1:
        for n, item in enumerate(work, 1):
            results.extend(_run_page(item))
            if n % 200 == 0:
                print(f"  {n}/{len(work)} pages", file=sys.stderr)
        return results
    with ProcessPoolExecutor(jobs) as pool:
        for chunk in pool.map(_run_page, work, chunksize=8):
            results.extend(chunk)
    return results


def not_article_chars(names: Sequence[str]) -> dict[str, int]:
    """Characters each candidate takes from pages that have no article."""
    from bot.demo import SITE

    files = [SITE / "nhk/news/html/20250121/k10014698911000.html"]
    if NOT_ARTICLES.is_dir():
        files += sorted(NOT_ARTICLES.glob("*.html"))
    taken: dict[str, int] = {}
    for name in names:
        taken[name] = sum(len(CANDIDATES[name](f.read_bytes(), None).strip()) for f in files)
    return taken


# -- figures --------------------------------------------------------------------


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def _pct(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


@dataclass(frozen=True)
class Figures:
    text_macro: float
    text_micro: float
    text_pages: int
    snip_macro: float
    snip_micro: float
    snip_pages: int
    snippet_rate: float  # share of single snippets satisfied
    ja: float  # Japanese pages, both kinds: F1 or pass, averaged
    ja_pages: int
    ja_news_text: float  # ja-news pages with text truth: F1, macro over outlets
    ja_news_text_pages: int
    by_outlet: dict[str, tuple[int, float]]  # Japanese pages by outlet (or suite)
    empty: int
    pages: int
    median_ms: float
    p95_ms: float
    by_source: dict[str, tuple[str, int, float]]
    by_lang: dict[str, tuple[int, float]]


def japanese_group(page: Page) -> str:
    """A Japanese page's outlet, or its suite where the corpus names none."""
    return page.outlet if page.outlet else f"{page.source} (suite)"


def figures(results: Sequence[Result], index: dict[str, Page]) -> Figures:
    text_by_source: dict[str, list[float]] = defaultdict(list)
    snip_by_source: dict[str, list[float]] = defaultdict(list)
    by_lang: dict[str, list[float]] = defaultdict(list)
    by_outlet: dict[str, list[float]] = defaultdict(list)
    ja_news_text: dict[str, list[float]] = defaultdict(list)
    ja: list[float] = []
    ok = total = empty = 0
    for r in results:
        page = index[r.page]
        (text_by_source if page.truth == "text" else snip_by_source)[page.source].append(r.score.value)
        by_lang[page.lang].append(r.score.value)
        if page.lang == "ja":
            ja.append(r.score.value)
            by_outlet[japanese_group(page)].append(r.score.value)
            if page.source == "ja-news" and page.truth == "text":
                ja_news_text[japanese_group(page)].append(r.score.value)
        ok += r.score.snippets_ok
        total += r.score.snippets_total
        empty += r.score.empty
    text_all = [v for vs in text_by_source.values() for v in vs]
    snip_all = [v for vs in snip_by_source.values() for v in vs]
    times = [r.ms for r in results]
    by_source = {s: ("text", len(v), _mean(v)) for s, v in text_by_source.items()}
    by_source |= {s: ("snippets", len(v), _mean(v)) for s, v in snip_by_source.items()}
    return Figures(
        text_macro=_mean([_mean(v) for v in text_by_source.values()]),
        text_micro=_mean(text_all),
        text_pages=len(text_all),
        snip_macro=_mean([_mean(v) for v in snip_by_source.values()]),
        snip_micro=_mean(snip_all),
        snip_pages=len(snip_all),
        snippet_rate=ok / total if total else math.nan,
        ja=_mean(ja),
        ja_pages=len(ja),
        ja_news_text=_mean([_mean(v) for v in ja_news_text.values()]),
        ja_news_text_pages=sum(len(v) for v in ja_news_text.values()),
        by_outlet={k: (len(v), _mean(v)) for k, v in sorted(by_outlet.items())},
        empty=empty,
        pages=len(results),
        median_ms=statistics.median(times) if times else math.nan,
        p95_ms=_pct(times, 0.95),
        by_source=dict(sorted(by_source.items())),
        by_lang={k: (len(v), _mean(v)) for k, v in sorted(by_lang.items(), key=lambda kv: -len(kv[1]))},
    )


# -- report ---------------------------------------------------------------------


def _f(x: float, digits: int = 3) -> str:
    return "–" if math.isnan(x) else f"{x:.{digits}f}"


def _p(x: float) -> str:
    return "–" if math.isnan(x) else f"{100 * x:.1f}%"


def report(
    results: Sequence[Result],
    index: dict[str, Page],
    names: Sequence[str],
    splits: Sequence[str],
    not_articles: dict[str, int],
    worst: int,
) -> str:
    figs: dict[tuple[str, str], Figures] = {}
    for sp in splits:
        for name in names:
            figs[(sp, name)] = figures(
                [r for r in results if r.candidate == name and (sp == "all" or index[r.page].split == sp)], index
            )
    lines = [
        "| split | extractor | text: macro F1 over sources | text: mean F1 (pages) | snippets: macro pass "
        "| snippets: pages passed | single snippets satisfied | Japanese (both kinds) | ja-news text: macro F1 "
        "| empty bodies | median ms | p95 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for sp in splits:
        for name in names:
            f = figs[(sp, name)]
            lines.append(
                f"| {sp} | {name} | **{_f(f.text_macro)}** | {_f(f.text_micro)} ({f.text_pages}) "
                f"| **{_p(f.snip_macro)}** | {_p(f.snip_micro)} ({f.snip_pages}) | {_p(f.snippet_rate)} "
                f"| {_f(f.ja)} ({f.ja_pages}) | {_f(f.ja_news_text)} ({f.ja_news_text_pages}) "
                f"| {f.empty}/{f.pages} ({_p(f.empty / f.pages if f.pages else math.nan)}) "
                f"| {_f(f.median_ms, 1)} | {_f(f.p95_ms, 1)} |"
            )
    lines += [
        "",
        "Characters taken from pages that are not articles (must be 0): "
        + ", ".join(f"{n} {not_articles.get(n, '–')}" for n in names)
        + ".",
        "",
    ]
    for sp in splits:
        lines += [
            f"### By source ({sp} split)",
            "",
            "| source | truth | pages | " + " | ".join(names) + " |",
            "|---|---|---|" + "---|" * len(names),
        ]
        sources = figs[(sp, names[0])].by_source
        for src, (kind, count, _) in sources.items():
            cells = []
            for name in names:
                v = figs[(sp, name)].by_source.get(src, ("", 0, math.nan))[2]
                cells.append(_f(v) if kind == "text" else _p(v))
            lines.append(f"| {src} | {kind} | {count} | " + " | ".join(cells) + " |")
        lines += [
            "",
            f"### By language ({sp} split; F1 on text truth and pass on snippets, averaged together)",
            "",
            "| language | pages | " + " | ".join(names) + " |",
            "|---|---|" + "---|" * len(names),
        ]
        for lang, (count, _) in figs[(sp, names[0])].by_lang.items():
            cells = [_f(figs[(sp, name)].by_lang.get(lang, (0, math.nan))[1]) for name in names]
            lines.append(f"| {lang} | {count} | " + " | ".join(cells) + " |")
        lines += [
            "",
            f"### Japanese pages by outlet ({sp} split; F1 on text truth and pass on snippets, averaged together)",
            "",
            "| outlet | pages | " + " | ".join(names) + " |",
            "|---|---|" + "---|" * len(names),
        ]
        for outlet, (count, _) in figs[(sp, names[0])].by_outlet.items():
            cells = [_f(figs[(sp, name)].by_outlet.get(outlet, (0, math.nan))[1]) for name in names]
            lines.append(f"| {outlet} | {count} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += _worst_japanese(results, index, names, worst)
    for name in names:
        mine = sorted(
            (r for r in results if r.candidate == name and index[r.page].truth == "text"),
            key=lambda r: (r.score.value, r.page),
        )[:worst]
        failed = sorted(
            r.page for r in results if r.candidate == name and index[r.page].truth == "snippets" and not r.score.value
        )
        lines += [
            f"### Worst pages of {name}",
            "",
            "Text truth, lowest F1: "
            + ", ".join(f"`{r.page}` {r.score.value:.2f}{' (empty)' if r.score.empty else ''}" for r in mine)
            + ".",
            "",
            f"Snippet pages failed ({len(failed)}): "
            + ", ".join(f"`{p}`" for p in failed[:worst])
            + (" …" if len(failed) > worst else "")
            + ".",
            "",
        ]
    return "\n".join(lines)


def _worst_japanese(results: Sequence[Result], index: dict[str, Page], names: Sequence[str], worst: int) -> list[str]:
    """The Japanese pages each candidate does worst on, by name, with their
    split (F1 for text truth, "failed" for a snippet page not passed)."""
    lines = ["### Worst Japanese pages", ""]
    for name in names:
        mine = sorted(
            (r for r in results if r.candidate == name and index[r.page].lang == "ja" and r.score.value < 1),
            key=lambda r: (r.score.value, r.page),
        )
        shown = [
            f"`{r.page}` ({index[r.page].split}) "
            + (f"{r.score.value:.2f}" if index[r.page].truth == "text" else "failed")
            + (" (empty)" if r.score.empty else "")
            for r in mine[:worst]
        ]
        lines.append(
            f"- {name} ({len(mine)} below 1.0): " + (", ".join(shown) or "none") + ("" if len(mine) <= worst else " …")
        )
    return [*lines, ""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", type=Path, help="rewrite the figures in this markdown page (the prose stays)")
    parser.add_argument("--split", choices=["tune", "test", "all"], default="all")
    parser.add_argument("--only", nargs="+", choices=list(CANDIDATES), help="candidates to run (default: all)")
    parser.add_argument("--source", help="only pages of this source (e.g. aeb, articles-newspaper)")
    parser.add_argument("--lang", help="only pages in this language")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--worst", type=int, default=15)
    args = parser.parse_args(argv)

    corpus = corpus_dir()
    everything = pages(corpus)
    if not everything:
        print(f"no pages under {corpus}: set FEEDBOT_CORPUS", file=sys.stderr)
        return 2
    index = {p.name: p for p in everything}
    selected = [
        p
        for p in everything
        if (args.split == "all" or p.split == args.split)
        and (not args.source or p.source == args.source)
        and (not args.lang or p.lang == args.lang)
    ]
    names = list(available(args.only or CANDIDATES))
    started = time.perf_counter()
    results = run(selected, names, args.jobs)
    elapsed = time.perf_counter() - started
    splits = ["tune", "test"] if args.split == "all" else [args.split]
    body = report(results, index, names, splits, not_article_chars(names), args.worst)
    head = (
        f"Measured by `python -m bench.extract_eval` on {platform.machine()}, Python {platform.python_version()}, "
        f"{len(selected)} pages ({sum(p.split == 'test' for p in selected)} in the test split), "
        f"{len(names)} extractors side by side in {elapsed:.0f} s with {args.jobs} process(es)."
    )
    text = head + "\n\n" + body
    print(text)
    if args.write:
        splice(args.write, "extract_eval", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
