"""Story grouping on a busy day: bot/stories.py against the all-pairs loop
it replaced and the libraries that find similar sets.

    .venv/bin/python -m bench.stories [--write docs/labels.md] [--quick]

On ``bench.busy``'s days (real sentences, one item in six re-reporting an
earlier story), in one process, CPU seconds:

- 300 to 2,000 items: ``together``'s stories against the all-pairs loop's
  (exact mode: identical; capped: the stories it splits, and any it joins
  wrongly, which must be none) and the time of both.  The capped
  parameters were tuned on seed 7; seeds 11 and 13 are reported as they
  come;
- **10,000 items** (200 feeds × 50): time and mode;
- a day of headlines from 32 words (bench/farm.py's vocabulary: every pair
  similar), the worst case for candidates;
- the libraries, on 2,000 items: SetSimilaritySearch's all_pairs (exact
  prefix filtering in Python) and datasketch's MinHash LSH (approximate),
  with ``pip install -e .[bench]``.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from bench.busy import busy_items
from bench.farm import WORDS
from bench.report import splice
from bot.models import Item
from bot.stories import _CJK, CJK_SIMILARITY, WORD_SIMILARITY, Budget, grams, similarity, story_starts


def all_pairs_starts(items: Sequence[Item]) -> list[int]:
    """The definition: every pair compared (the code before issue 21)."""
    sets = [grams(i) for i in items]
    cjk = [bool(_CJK.search(i.title)) for i in items]
    story = list(range(len(items)))

    def root(n: int) -> int:
        while story[n] != n:
            story[n] = story[story[n]]
            n = story[n]
        return n

    for a in range(len(items)):
        for b in range(a + 1, len(items)):
            if cjk[a] == cjk[b] and similarity(sets[a], sets[b]) >= (CJK_SIMILARITY if cjk[a] else WORD_SIMILARITY):
                story[root(b)] = root(a)
    first: dict[int, int] = {}
    return [first.setdefault(root(n), n) for n in range(len(items))]


def stories(starts: list[int]) -> set[frozenset[int]]:
    """The stories of more than one item, as sets of indexes."""
    by: dict[int, set[int]] = {}
    for n, s in enumerate(starts):
        by.setdefault(s, set()).add(n)
    return {frozenset(v) for v in by.values() if len(v) > 1}


def cpu(fn: Callable[[], object]) -> tuple[float, object]:
    started = time.process_time()
    result = fn()
    return time.process_time() - started, result


def farm_day(n: int, seed: int = 1) -> list[Item]:
    rng = random.Random(seed)
    when = datetime(2025, 1, 21, tzinfo=UTC)
    titles = ["、".join(rng.choice(WORDS) for _ in range(3)) + "を巡る動き" for _ in range(n)]
    return [
        Item(k, "f", f"https://f{k % 200}.example/", t, f"https://f.example/{k}", when, when, (t,))
        for k, t in enumerate(titles)
    ]


def libraries(items: Sequence[Item]) -> list[str]:
    rows = []
    sets = [grams(i) for i in items]
    cjk = [bool(_CJK.search(i.title)) for i in items]
    parts = [
        ([sets[n] for n in range(len(items)) if cjk[n]], CJK_SIMILARITY),
        ([sets[n] for n in range(len(items)) if not cjk[n]], WORD_SIMILARITY),
    ]
    exact_pairs = 0
    try:
        from SetSimilaritySearch import all_pairs

        def sss() -> int:
            return sum(
                sum(1 for _ in all_pairs(part, similarity_func_name="jaccard", similarity_threshold=t))
                for part, t in parts
            )

        took, found = cpu(sss)
        exact_pairs = int(found)  # type: ignore[call-overload]
        rows.append(f"| SetSimilaritySearch 1.0 all_pairs (exact) | {took:.2f} s | {exact_pairs} similar pairs |")
    except ImportError:
        rows.append("| SetSimilaritySearch | not installed | |")
    try:
        from datasketch import MinHash, MinHashLSH

        def lsh() -> int:
            hits = 0
            for part, t in parts:
                index = MinHashLSH(threshold=t, num_perm=128)
                hashes = []
                for k, grams_ in enumerate(part):
                    m = MinHash(num_perm=128)
                    m.update_batch([g.encode() for g in grams_])
                    hashes.append(m)
                    index.insert(k, m)
                for k, m in enumerate(hashes):
                    hits += sum(1 for j in index.query(m) if j > k and similarity(part[k], part[j]) >= t)
            return hits

        took, found = cpu(lsh)
        rows.append(
            f"| datasketch MinHash LSH, 128 permutations (approximate) | {took:.2f} s | {found} of the similar pairs"
            f"{f' ({int(found) / exact_pairs:.0%})' if exact_pairs else ''} |"  # type: ignore[call-overload]
        )
    except ImportError:
        rows.append("| datasketch | not installed | |")
    return rows


def compose_figures() -> list[str]:
    """The whole composition (``bot.compose.compose_day``, what the worker
    runs) of 10,000 items with the shipped config, as it is and with every
    topic group labelled automatically; CPU seconds after the dictionary
    is loaded."""
    from dataclasses import replace
    from datetime import date
    from pathlib import Path

    from bench.labels import TOPICS
    from bot.compose import compose_day
    from bot.config import load_config
    from bot.labels import phrases

    config = load_config(Path(__file__).resolve().parent.parent / "config.toml", {})
    auto = replace(config, labels=(), topics=TOPICS)  # broad topics the day's items fall in, no fixed label
    items = busy_items()
    phrases("辞書")  # loaded once, as in the worker
    compose_day(config, items[:200], date(2025, 1, 21), {})  # imports (numpy) paid once
    out = []
    variants = (("the shipped config.toml", config), ("bench.labels' broad topics, labelled automatically", auto))
    for name, cfg in variants:
        runs = [cpu(lambda cfg=cfg: compose_day(cfg, items, date(2025, 1, 21), {})) for _ in range(2)]  # type: ignore[misc]
        took = min(t for t, _ in runs)
        labels = sum(1 for c in runs[0][1].choices if c.label)  # type: ignore[attr-defined]
        out.append(
            f"- compose_day, 10,000 items, {name}: **{took:.2f} s** of CPU (the better of two runs;"
            f" stories {runs[0][1].stories}, {labels} automatic labels)"  # type: ignore[attr-defined]
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", help="rewrite the figures in this markdown page")
    parser.add_argument("--quick", action="store_true", help="skip the 2,000-item all-pairs runs (minutes)")
    parser.add_argument("--compose", action="store_true", help="only the whole composition of 10,000 items")
    args = parser.parse_args(argv)
    if args.compose:
        print("\n".join(compose_figures()))
        return 0
    rows = [
        "| items | seed | all-pairs loop | together | mode | stories | identical |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, seed in ((300, 1), (600, 1), (1000, 1), *(() if args.quick else ((2000, 7), (2000, 11), (2000, 13)))):
        items = busy_items(feeds=n // 50, per_feed=50, seed=seed)
        old_time, old = cpu(lambda items=items: all_pairs_starts(items))  # type: ignore[misc]
        budget = Budget()
        new_time, new = cpu(lambda items=items, budget=budget: story_starts(items, budget))  # type: ignore[misc]
        want, got = stories(old), stories(new)  # type: ignore[arg-type]
        if want == got:
            same = "yes"
        else:
            split = sum(1 for s in want if s not in got)
            wrong = sum(1 for s in got if not any(s <= w for w in want))
            same = f"no: {split} of {len(want)} split, {wrong} joined wrongly"
        mode = "capped" if budget.capped else "exact"
        rows.append(f"| {n:,} | {seed} | {old_time:.2f} s | {new_time:.2f} s | {mode} | {len(want)} | {same} |")
        print(rows[-1], flush=True)
    big = busy_items()
    budget = Budget()
    took, _ = cpu(lambda: story_starts(big, budget))
    work = Budget().left - budget.left
    rows.append(f"| 10,000 | 1 | – | {took:.2f} s | {'capped' if budget.capped else 'exact'} | – | {work:,} steps |")
    farm = farm_day(10_000)
    budget = Budget()
    took, _ = cpu(lambda: story_starts(farm, budget))
    rows.append(
        f"| 10,000 headlines of 32 words | 1 | – | {took:.2f} s | {'capped' if budget.capped else 'exact'} | – |"
        f" {Budget().left - budget.left:,} steps |"
    )
    lib_rows = ["| library | 2,000 items (seed 7) | found |", "|---|---|---|", *libraries(busy_items(40, 50, 7))]
    text = "\n".join(
        [
            "`python -m bench.stories`: CPU seconds in one process, side by side.",
            "",
            *rows,
            "",
            *lib_rows,
            "",
            "The whole composition of a busy day (labels, groups, stories, text: what the worker runs):",
            "",
            *compose_figures(),
        ]
    )
    print(text)
    if args.write:
        splice(args.write, "stories", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
