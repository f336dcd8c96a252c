"""Stories on a busy day (issue 21): the same stories as comparing every
pair, at a cost that grows with the items, not their square."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.busy import busy_items
from bench.labels import corpus_items
from bench.stories import all_pairs_starts, stories
from bot import stories as story_module
from bot.models import Item
from bot.stories import Budget, story_starts, together
from tests.conftest import ROOT

NOW = datetime(2025, 1, 21, tzinfo=UTC)
# Few words, so that random items are often, and often only just, similar.
JA = ["ロシア", "中国", "首脳会談", "オンライン", "大統領", "停戦", "交渉", "制裁", "経済", "国連", "が", "を", "は"]
EN = ["Federal", "Reserve", "interest", "rates", "storm", "coast", "election", "summit", "trade", "talks", "held"]


def item(n: int, title: str, body: str) -> Item:
    return Item(n, f"f{n % 3}", f"https://f{n % 3}.example/rss", title, f"https://a.example/{n}", NOW, NOW, (body,))


words = st.lists(st.sampled_from(JA + EN), min_size=1, max_size=12)
days = st.lists(st.tuples(words, words), min_size=2, max_size=40)


@settings(max_examples=150, deadline=None)
@given(days)
def test_stories_are_those_of_comparing_every_pair(day: list[tuple[list[str], list[str]]]) -> None:
    items = [item(n, "".join(t) if t[0] in JA else " ".join(t), " ".join(b)) for n, (t, b) in enumerate(day)]
    budget = Budget()
    assert story_starts(items, budget) == all_pairs_starts(items)
    assert not budget.capped  # a small day: the exact join


def test_the_corpus_feeds_and_the_reference_keep_todays_stories(corpus: Path, reference_text: str) -> None:
    items = corpus_items(corpus / "feeds")
    budget = Budget()
    assert story_starts(items, budget) == all_pairs_starts(items) and not budget.capped
    lines = reference_text.split("\n")

    def ref(n: int, title: int, body: slice) -> Item:  # as bench/labels.py reads the reference
        return Item(n, "r", "r", lines[title].split(" http")[0], "", None, NOW, tuple(lines[body]))

    nhk, reuters, other = ref(1, 27, slice(29, 32)), ref(2, 18, slice(20, 27)), ref(3, 2, slice(4, 11))
    assert [i.id for i in together([nhk, other, reuters])] == [1, 2, 3]  # the summit: NHK and Reuters


def test_the_capped_join_never_joins_what_is_not_one_story(monkeypatch: pytest.MonkeyPatch, corpus: Path) -> None:
    items = busy_items(feeds=8, per_feed=50, seed=3, corpus=corpus)
    want = stories(all_pairs_starts(items))
    monkeypatch.setattr(story_module, "EXACT_POSTINGS", 0)  # as on a busy day
    budget = Budget()
    got = stories(story_starts(items, budget))
    assert budget.capped and not budget.exhausted
    assert all(any(s <= w for w in want) for s in got)  # every story found is part of a real one
    split = sum(1 for w in want if w not in got)
    assert len(want) > 40 and split <= len(want) // 10


def test_ten_thousand_items_take_bounded_work_and_the_budget_ends_grouping(corpus: Path) -> None:
    items = busy_items(corpus=corpus)  # 200 feeds × 50, Japanese and English
    budget = Budget()
    starts = story_starts(items, budget)
    assert budget.capped and not budget.exhausted
    assert Budget().left - budget.left <= 12_000_000  # steps, not seconds: the same on any machine
    assert sum(1 for n, s in enumerate(starts) if s != n) > 500  # stories were found
    spent = Budget(left=len(items) * story_module.ITEM_STEPS // 2)
    assert story_starts(items, spent) == list(range(len(items))) and spent.exhausted
    assert together(items[:10], spent) == tuple(items[:10])  # later groups: publication order


def test_capped_stories_do_not_depend_on_the_process(corpus: Path) -> None:
    """Python hashes strings differently in every process: the grams' order
    must not follow it (ties are broken by the gram)."""
    script = (
        "import json, sys, pathlib; import bot.stories as s; from bench.busy import busy_items;"
        "s.EXACT_POSTINGS = 0; items = busy_items(8, 50, 5, corpus=pathlib.Path(sys.argv[1]));"
        "print(json.dumps(s.story_starts(items)))"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", script, str(corpus)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
        ).stdout
        for seed in ("1", "2")
    ]
    assert json.loads(runs[0]) == json.loads(runs[1])


def test_a_day_of_near_identical_headlines_is_grouped_within_its_budget() -> None:
    """bench/farm.py's headlines: three of 32 words each, every pair close."""
    from bench.stories import farm_day

    items = farm_day(3000)
    budget = Budget()
    starts = story_starts(items, budget)
    assert budget.capped and Budget().left - budget.left <= 4_000_000
    assert len(set(starts)) < len(items) // 2  # most headlines joined into stories
