"""Automatic labels and stories on the corpus's real news feeds.

    .venv/bin/python -m bench.labels [--write docs/labels.md]

- The labels ``bot.labels`` chooses, per day and per topic group, for the
  items of ``shared/corpus/feeds`` (Asahi, Mainichi, gihyo.jp, BBC, the
  Guardian, Livemint, …) grouped by a few broad topics; the days are taken
  in order, each day's phrases becoming the next days' background, as the
  service does.
- The time to label 500 items, after start-up (the dictionary's load
  shown apart).
- The two Japanese analysers considered, side by side on the same
  headlines: SudachiPy with its core dictionary (chosen) and fugashi with
  UniDic-lite (left out if not installed): install size, speed, and how
  they cut the headlines into phrases.
- What the story threshold was measured on: the similarity of the
  reference digest's same-story pair and of every pair of items from
  different outlets in the corpus (which are never the same story).
"""

from __future__ import annotations

import argparse
import itertools
import re
import statistics
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.pages import corpus_dir
from bench.report import splice
from bot.config import DigestSettings, Topic
from bot.labels import GroupText, ItemText, label_groups, phrases
from bot.models import Item
from bot.parse import parse_feed
from bot.stories import CJK_SIMILARITY, WORD_SIMILARITY, grams, similarity
from bot.topics import assign, topic_words

ZONE = ZoneInfo("Asia/Tokyo")
TOPICS = (
    Topic("政治", (("首相", "政府", "国会", "選挙", "自民", "議員", "大臣", "外相"),)),
    Topic("経済", (("経済", "株", "円相場", "日銀", "企業", "決算", "物価", "賃金", "市場"),)),
    Topic("社会", (("事件", "警察", "容疑", "逮捕", "裁判", "地裁", "事故", "死亡"),)),
    Topic("技術", (("技術", "ソフトウェア", "開発", "アプリ", "エンジニア", "プログラミング", "セキュリティ"),)),
    Topic("Politics", (("Trump", "Congress", "election", "minister", "government", "Brexit", "president"),)),
    Topic("Business", (("market", "stocks", "economy", "bank", "company", "prices", "trade"),)),
)


def corpus_items(folder: Path) -> list[Item]:
    items: list[Item] = []
    for path in sorted(folder.glob("*.*")) + sorted((folder / "encoded").glob("*.*")):
        try:
            parsed = parse_feed(path.read_bytes(), f"https://{path.stem}.example/feed")
        except Exception:  # a corpus file that is not a feed: not this bench's subject
            continue
        for entry in parsed.entries:
            when = entry.published or datetime(2000, 1, 1, tzinfo=UTC)
            items.append(
                Item(len(items), path.stem, path.name, entry.title, entry.link, entry.published, when, entry.content)
            )
    return items


def day_groups(items: list[Item]) -> list[GroupText]:
    plan = assign(items, TOPICS, DigestSettings(default_topic="その他"))

    def texts(group: tuple[Item, ...]) -> tuple[ItemText, ...]:
        return tuple(ItemText(i.title or (i.body[0] if i.body else ""), i.body) for i in group)

    groups = [GroupText(t.tag, topic_words(t), texts(m)) for t, m in zip(TOPICS, plan.members, strict=True) if m]
    return [*groups, GroupText("その他", (), texts(plan.rest), auto=False)]


def label_table(items: list[Item]) -> tuple[list[str], float]:
    by_day: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        by_day[item.when.astimezone(ZONE).date().isoformat()].append(item)
    history: dict[str, int] = {}
    rows = ["| day | group | items | label | runner-up |", "|---|---|---|---|---|"]
    spent = 0.0
    for day in sorted(by_day):
        groups = day_groups(by_day[day])
        started = time.perf_counter()
        choices, day_phrases = label_groups(groups, history)
        spent += time.perf_counter() - started
        for choice in choices:
            size = next(len(g.items) for g in groups if g.tag == choice.tag)
            second = choice.candidates[1].phrase if len(choice.candidates) > 1 else "–"
            rows.append(f"| {day} | #{choice.tag} | {size} | {choice.label or '(date)'} | {second} |")
        for p in day_phrases:
            history[p] = history.get(p, 0) + 1
    return rows, spent


def timing(items: list[Item]) -> tuple[float, float]:
    """(seconds to load the dictionary, seconds to label 500 items)."""
    started = time.perf_counter()
    phrases("辞書を読み込む")
    load = time.perf_counter() - started
    sample = (items * (500 // max(len(items), 1) + 1))[:500]
    groups = day_groups(sample)
    started = time.perf_counter()
    label_groups(groups, {})
    return load, time.perf_counter() - started


def analysers(headlines: list[str]) -> list[str]:
    rows = [
        f"| analyser | installed size | {min(len(headlines), 500)} headlines | phrases of a headline |",
        "|---|---|---|---|",
    ]
    site = Path(sys.modules["bot"].__file__ or "").resolve().parent.parent  # the checkout: sizes from the venv
    packages = next((p for p in (site / ".venv/lib").glob("python3*/site-packages")), None)

    def size(*names: str) -> str:
        if packages is None:
            return "?"
        total = sum(f.stat().st_size for n in names for f in (packages / n).rglob("*") if f.is_file())
        return f"{total / 2**20:.0f} MB"

    sample = headlines[:500]
    example = "ロシアと中国 オンラインで首脳会談 トランプ新政権けん制か"
    started = time.perf_counter()
    for h in sample:
        phrases(h)
    took = time.perf_counter() - started
    rows.append(
        f"| SudachiPy 0.7 + core dictionary, split mode C (chosen) | {size('sudachipy', 'sudachidict_core')} "
        f"| {took * 1000:.0f} ms | {' / '.join(sorted(phrases(example)))} |"
    )
    try:
        import fugashi
    except ImportError:
        rows.append("| fugashi + UniDic-lite | not installed here | – | – |")
        return rows
    tagger = fugashi.Tagger()

    def unidic_phrases(text: str) -> list[str]:
        """The same rule as bot/labels.py's, on UniDic's words."""
        out: list[str] = []
        run: list[object] = []

        def close() -> None:
            if run and run[-1].feature.pos1 == "名詞" and run[-1].feature.pos2 == "普通名詞":  # type: ignore[attr-defined]
                out.append("".join(x.surface for x in run))  # type: ignore[attr-defined]
            run.clear()

        for w in tagger(text):
            if w.white_space:
                close()  # a space ends a phrase, as it does in Sudachi's output
            if w.feature.pos1 in ("名詞", "接頭辞") or (w.feature.pos1 == "接尾辞" and run):
                run.append(w)
            else:
                close()
        close()
        return out

    started = time.perf_counter()
    for h in sample:
        unidic_phrases(h)
    took = time.perf_counter() - started
    rows.append(
        f"| fugashi 1.5 + UniDic-lite | {size('fugashi', 'unidic_lite')} | {took * 1000:.0f} ms "
        f"| {' / '.join(sorted(unidic_phrases(example)))} |"
    )
    differ = [h for h in sample if phrases(h) != {p.casefold() for p in unidic_phrases(h)}]
    rows += ["", f"The two cut {len(differ)} of the {len(sample)} headlines into different phrases; the first five:"]
    rows.append("")
    for h in differ[:5]:
        a = " / ".join(sorted(phrases(h)))
        b = " / ".join(sorted(p.casefold() for p in unidic_phrases(h)))
        rows.append(f"- {h[:60]}: Sudachi {a or '–'}; UniDic {b or '–'}")
    return rows


def story_measure(items: list[Item], reference: Path) -> list[str]:
    ref = reference.read_text(encoding="utf-8").split("\n")

    def item(line: int, body: list[str]) -> Item:
        title = re.sub(r"\s*https?://\S+.*$", "", ref[line])
        return Item(0, "r", "r", title, "", None, datetime.now(UTC), tuple(body))

    nhk, reuters = item(27, ref[29:32]), item(18, ref[20:27])
    others = [item(2, ref[4:11]), item(12, ref[14:17])]
    same = similarity(grams(nhk), grams(reuters))
    apart = [similarity(grams(a), grams(b)) for a, b in itertools.combinations([nhk, reuters, *others], 2)]
    apart.remove(same)
    cjk, other = [], []
    for a, b in itertools.combinations(items, 2):
        if a.feed_url.split("_")[0] == b.feed_url.split("_")[0] or not (a.title and b.title):
            continue
        both_cjk = bool(re.search(r"[\u3040-\u9fff]", a.title)) and bool(re.search(r"[\u3040-\u9fff]", b.title))
        (cjk if both_cjk else other).append(similarity(grams(a), grams(b)))
    return [
        f"- the reference digest's same story (NHK and Reuters on the summit): **{same:.2f}**; its other pairs "
        f"{min(apart):.2f}–{max(apart):.2f};",
        f"- {len(cjk):,} Japanese pairs of items from different outlets (never one story: the feeds are of other "
        f"days): max {max(cjk):.2f}, {sum(v >= CJK_SIMILARITY for v in cjk)} at or above the threshold "
        f"{CJK_SIMILARITY}; median {statistics.median(cjk):.3f};",
        f"- {len(other):,} English pairs: max {max(other):.2f}, {sum(v >= WORD_SIMILARITY for v in other)} at or "
        f"above {WORD_SIMILARITY}.",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", type=Path, help="rewrite the figures in this markdown page")
    args = parser.parse_args(argv)
    corpus = corpus_dir()
    items = corpus_items(corpus / "feeds")
    load, five_hundred = timing(items)
    rows, spent = label_table(items)
    headlines = [i.title for i in items if re.search(r"[\u3040-\u9fff]", i.title)]
    text = "\n".join(
        [
            f"`python -m bench.labels` on {len(items)} items of `shared/corpus/feeds` grouped by "
            f"{len(TOPICS)} broad topics ({', '.join('#' + t.tag for t in TOPICS)}), day by day, each day's "
            "phrases the background of the next.",
            "",
            f"Time: the dictionary loads in {load * 1000:.0f} ms; labelling 500 items takes "
            f"**{five_hundred:.2f} s** after that (target < 2 s); the whole table below {spent:.2f} s.",
            "",
            *rows,
            "",
            "Japanese analysers on the corpus's Japanese headlines:",
            "",
            *analysers(headlines),
            "",
            "Stories (`bot/stories.py`), similarity of headline and first body line:",
            "",
            *story_measure(items, corpus.parent / "reference" / "000_d21a33c6ea28c451.txt"),
        ]
    )
    print(text)
    if args.write:
        splice(args.write, "labels", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
