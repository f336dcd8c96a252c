"""The day's event named by itself, stories kept together, broken feeds reported (issue 14).

Through the CLI on the reference scenario (the demo site on loopback), and
on small hand-made groups for the rules one by one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from bot.labels import GroupText, ItemText, label_groups, phrases
from bot.loopback import Receiver, Server
from bot.models import Item
from bot.state import SQLiteStore, open_store
from bot.stories import together
from tests.conftest import map_links, run_cli

NOW = datetime(2025, 1, 21, 12, 0, tzinfo=UTC)


def without_label_rules(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r"\[\[labels\]\]\ntext = .*\nmatch = .*\n\n?", "", text), encoding="utf-8")


def test_reference_scenario_without_label_rules_names_its_events(
    demo_config: Callable[[str | None], Path], demo_site: tuple[Server, object], reference_text: str
) -> None:
    path = demo_config(None)
    without_label_rules(path)
    assert "[[labels]]" not in path.read_text(encoding="utf-8")
    assert run_cli("--config", str(path), "poll").returncode == 0
    dry = run_cli("--config", str(path), "digest", "--dry-run", "--explain", "--date", "2025-01-21")
    assert dry.returncode == 0, dry.stderr
    taglines = dict(re.findall(r"^#(\S+?)\((.+)\)$", dry.stdout, re.M))
    assert "就任" in taglines["米露"] and "就任" in taglines["ゼレンスキー"]
    assert "会談" in taglines["中露"]
    assert taglines["ロシア"] == "250121"  # the fallback group keeps its date
    assert len(taglines["米露"]) <= 20
    # Every other line is the reference's: only the labels differ.
    expected = reference_text.split("\n")
    got = map_links(dry.stdout, demo_site[0].base).rstrip("\n").split("\n")
    assert len(got) == len(expected)
    assert [a for a, b in zip(got, expected, strict=True) if a != b and not a.startswith("#")] == []
    # --explain says why, per group, with the scores.
    assert "#中露: 首脳会談" in dry.stderr and "headline" in dry.stderr


def test_with_the_label_rules_the_reference_is_unchanged(
    demo_config: Callable[[str | None], Path], demo_site: tuple[Server, object], reference_text: str
) -> None:
    path = demo_config(None)
    run_cli("--config", str(path), "poll")
    dry = run_cli("--config", str(path), "digest", "--dry-run", "--explain", "--date", "2025-01-21")
    assert map_links(dry.stdout, demo_site[0].base) == reference_text + "\n"
    # --explain names the rule that named each group, and how many items it matched.
    rule = r"^#(\S+): (.+) — named by the rule labels\[(\d+)\], which (\d+) of its (\d+) item"
    named = re.findall(rule, dry.stderr, re.M)
    assert named and all(int(m) <= int(n) for *_, m, n in named), dry.stderr
    assert {tag for tag, *_ in named} <= set(re.findall(r"^#(\S+?)\(", reference_text, re.M))


def test_labels_date_keeps_the_date(demo_config: Callable[[str | None], Path]) -> None:
    path = demo_config(None)
    without_label_rules(path)
    path.write_text(
        path.read_text(encoding="utf-8").replace("[digest]\n", '[digest]\nlabels = "date"\n'), encoding="utf-8"
    )
    run_cli("--config", str(path), "poll")
    dry = run_cli("--config", str(path), "digest", "--dry-run", "--date", "2025-01-21")
    assert "#中露(250121)" in dry.stdout and "#米露(250121)" in dry.stdout


# -- the rules one by one ---------------------------------------------------------------


def test_phrases_are_compound_nouns_headed_by_a_common_noun() -> None:
    found = phrases("ロシアと中国 オンラインで首脳会談 トランプ新政権けん制か")
    assert "首脳会談" in found and "オンライン" in found
    assert "ロシア" not in found and "中国" not in found  # names name no event
    assert {"interest rate cut", "federal reserve"} <= phrases("The Federal Reserve weighs an interest rate cut.")


def test_a_phrase_of_every_day_loses_to_todays() -> None:
    group = GroupText(
        "日銀",
        ("日銀",),
        (
            ItemText("日銀 金融政策決定会合で追加利上げ", ("金融政策決定会合で追加利上げを決めた。",)),
            ItemText("追加利上げ 金融政策決定会合の結果", ("金融政策決定会合は二日間。",)),
        ),
    )
    fresh, _ = label_groups([group], {})
    assert fresh[0].label == "金融政策決定会合"  # in both headlines and both bodies
    seasoned, _ = label_groups([group], {"金融政策決定会合": 14})  # there every day for two weeks
    assert seasoned[0].label == "追加利上げ"


def test_the_same_items_give_the_same_label_and_nothing_gives_none() -> None:
    groups = [GroupText("X", (), (ItemText("首脳会談を開催"), ItemText("首脳会談で合意")))]
    assert label_groups(groups, {}) == label_groups(groups, {})
    lonely = [GroupText("X", (), (ItemText("晴れ"), ItemText("雨")))]
    assert label_groups(lonely, {})[0][0].label is None  # the date, then


def _item(n: int, title: str, body: str, minutes: int) -> Item:
    return Item(n, "f", "u", title, f"https://a/{n}", NOW + timedelta(minutes=minutes), NOW, (body,))


def test_two_outlets_reports_of_one_story_stand_together() -> None:
    nhk = _item(
        1,
        "ロシアと中国 オンラインで首脳会談 トランプ新政権けん制か",
        "ロシアのプーチン大統領は21日、中国の習近平国家主席とオンラインで首脳会談を行いました。",
        0,
    )
    other = _item(2, "ウクライナ軍 ロシア西部クルスク州で攻撃続ける", "ウクライナ軍は越境攻撃を続けている。", 10)
    reuters = _item(
        3,
        "中国主席と首脳会談、プーチン大統領「戦略的協力の発展」に意欲",
        "ロシアのプーチン大統領は21日、中国の習近平国家主席とビデオ会談を行った。",
        20,
    )
    assert [i.id for i in together([nhk, other, reuters])] == [1, 3, 2]  # the story where its first item was
    assert [i.id for i in together([other, nhk, reuters])] == [2, 1, 3]
    english = [
        _item(4, "Fed holds interest rates steady", "The Federal Reserve held interest rates steady on Wednesday.", 0),
        _item(5, "Storm hits coast", "A storm brought heavy rain to the coast.", 5),
        _item(6, "Fed keeps interest rates on hold", "The Federal Reserve kept interest rates on hold.", 9),
    ]
    assert [i.id for i in together(english)] == [4, 6, 5]


# -- the broken-feed report ---------------------------------------------------------------


def test_the_health_message_lists_a_feed_failing_two_days_not_one_failing_an_hour(
    tmp_path: Path, demo_config: Callable[[str | None], Path]
) -> None:
    rec = Receiver()
    with Server(rec) as hook:
        path = demo_config(hook.base + "/api/webhooks/1/x")
        text = path.read_text(encoding="utf-8")
        path.write_text(
            text
            + '\n[[feeds]]\nname = "壊れたフィード"\nurl = "http://127.0.0.1:9/long"\n'
            + '\n[[feeds]]\nname = "さっき壊れた"\nurl = "http://127.0.0.1:9/short"\n',
            encoding="utf-8",
        )
        assert run_cli("--config", str(path), "poll").returncode in (0, 1)
        from bot.config import load_config

        store = open_store(load_config(path, {}))
        now = datetime.now(UTC)
        store.conn.execute(
            "UPDATE feeds SET failing_since=?, error_count=9 WHERE url=?",
            (int((now - timedelta(days=2)).timestamp()), "http://127.0.0.1:9/long"),
        )
        store.conn.execute(
            "UPDATE feeds SET failing_since=? WHERE url=?",
            (int((now - timedelta(hours=1)).timestamp()), "http://127.0.0.1:9/short"),
        )
        store.close()
        sent = run_cli("--config", str(path), "digest", "--date", "2025-01-21")
    assert sent.returncode == 0, sent.stderr
    contents = [r.json()["content"] for r in rec.accepted]
    report = contents[-1]
    assert report.startswith("⚠ feedbot: 1 feed failing")
    assert "壊れたフィード: failing since" in report and "(9 tries)" in report
    assert "さっき壊れた" not in report
    assert not any("壊れたフィード" in c for c in contents[:-1])  # never inside the digest


def test_the_json_kind_carries_the_report_as_a_field(tmp_path: Path, demo_config: Callable[[str | None], Path]) -> None:
    rec = Receiver()
    with Server(rec) as hook:
        path = demo_config(None)
        path.write_text(
            path.read_text(encoding="utf-8")
            + f'\n[[webhooks]]\nkind = "json"\nurl = "{hook.base}/hook"\n'
            + '\n[[feeds]]\nname = "壊れたフィード"\nurl = "http://127.0.0.1:9/long"\n',
            encoding="utf-8",
        )
        run_cli("--config", str(path), "poll")
        from bot.config import load_config

        store = open_store(load_config(path, {}))
        store.conn.execute(
            "UPDATE feeds SET failing_since=? WHERE url=?",
            (int((datetime.now(UTC) - timedelta(days=3)).timestamp()), "http://127.0.0.1:9/long"),
        )
        store.close()
        run_cli("--config", str(path), "digest", "--date", "2025-01-21")
    (payload,) = [r.json() for r in rec.accepted]
    assert [h["feed"] for h in payload["health"]] == ["壊れたフィード"]
    assert "壊れたフィード" not in payload["text"]


@pytest.mark.parametrize("value", ["sometimes", 3])
def test_bad_label_and_health_settings_name_the_key(tmp_path: Path, value: object) -> None:
    from tests.conftest import write_toml

    shown = json.dumps(value)
    path = write_toml(tmp_path, f'[digest]\nlabels = {shown}\nhealth = {shown}\nhealth_after = "0s"\n')
    r = run_cli("--config", str(path), "check")
    assert r.returncode == 2
    assert "digest.labels:" in r.stderr and "digest.health:" in r.stderr and "digest.health_after:" in r.stderr


def test_a_day_of_phrases_is_remembered(tmp_path: Path) -> None:
    store = SQLiteStore.open(tmp_path)
    try:
        store.record_label_phrases("2025-01-20", {"首脳会談", "就任"})
        store.record_label_phrases("2025-01-21", {"首脳会談"})
        assert store.label_background("2025-01-22", 14) == {"首脳会談": 2, "就任": 1}
        assert store.label_background("2025-01-21", 14) == {"首脳会談": 1, "就任": 1}  # not the day itself
        assert store.label_background(date(2025, 3, 1).isoformat(), 14) == {}
    finally:
        store.close()
