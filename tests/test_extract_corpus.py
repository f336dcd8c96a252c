"""Body extraction on every page of shared/corpus/articles, against floors.

The floors are the issue's acceptance bar: mean character F1 ≥ 0.90, no
page below 0.60, every ``with`` snippet present and no ``without`` one.
``python -m bench.extract_compare`` prints the same scores next to
trafilatura's and readability-lxml's.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from bench.articles import Case, cases, char_f1, snippets_ok
from bot.extract import decode_html, extract_body

PAGE_FLOOR = 0.60
MEAN_FLOOR = 0.90


def _all(corpus: Path) -> list[Case]:
    return list(cases(corpus))


def _body(case: Case) -> str:
    return "\n".join(extract_body(case.data, "https://example.org/", None, "auto"))


def test_every_page_scores_above_the_floor_and_the_mean_holds(corpus: Path) -> None:
    scored = [(c.name, char_f1(_body(c), c.expected)) for c in _all(corpus) if c.expected is not None]
    assert len(scored) >= 12
    low = [(name, round(f1, 3)) for name, f1 in scored if f1 < PAGE_FLOOR]
    assert not low, f"pages below {PAGE_FLOOR}: {low}"
    mean = statistics.mean(f1 for _, f1 in scored)
    print(f"\nmean character F1 over {len(scored)} pages: {mean:.3f}; lowest {min(f for _, f in scored):.3f}")
    assert mean >= MEAN_FLOOR


def test_trafilatura_snippets(corpus: Path) -> None:
    checked = 0
    for case in _all(corpus):
        if case.expected is not None:
            continue
        missing, present = snippets_ok(_body(case), case)
        assert not missing, (case.name, missing)
        assert not present, (case.name, present)
        checked += 1
    assert checked == 4


def test_nhk_furigana_page_has_no_readings(corpus: Path) -> None:
    case = next(c for c in _all(corpus) if "nhk" in c.name)
    body = _body(case)
    assert body and "\ufffd" not in body
    # Readings (<rt>) would double every word: 「名前なまえ」.
    from bs4 import BeautifulSoup

    rubies = BeautifulSoup(decode_html(case.data), "lxml").find_all("ruby")
    pairs = {(r.contents[0].get_text(), r.rt.get_text()) for r in rubies if r.rt and r.contents}
    assert len(pairs) > 20
    assert not [base + reading for base, reading in pairs if base + reading in body]
    assert sum(1 for base, _ in pairs if base in body) > 10


def test_encoded_pages_decode_cleanly(corpus: Path) -> None:
    for path in sorted((corpus / "articles").rglob("*.html")):
        text = decode_html(path.read_bytes())
        assert "\ufffd" not in text, path.name
