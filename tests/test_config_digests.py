"""``[[digests]]`` tables and feed ``tags``: several digests from one
installation, each of its own feeds, webhooks, topics, schedule and settings."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import time, timedelta
from pathlib import Path

import pytest

from bot.config import Config, DigestSpec, load_config
from bot.errors import ConfigError
from tests.conftest import ROOT, write_toml

BASE = """
timezone = "Asia/Tokyo"

[schedule]
poll_every = "10m"
digest_at = ["07:00", "19:00"]

[digest]
default_topic = "国内"
headline_max = 200
health_after = "2h"

[[feeds]]
name = "NHK 国際"
url = "https://nhk.example/intl.xml"
tags = ["ukraine", "mideast"]

[[feeds]]
name = "NHK 経済"
url = "https://nhk.example/econ.xml"

[[feeds]]
name = "ロイター"
url = "https://reuters.example/world.xml"
tags = ["ukraine"]

[[feeds]]
name = "Al Jazeera"
url = "https://aljazeera.example/rss.xml"
tags = ["mideast"]

[[topics]]
tag = "中露"
match = ["中国", "ロシア"]

[[topics]]
tag = "ウクライナ戦況"
match = ["ウクライナ"]

[[topics]]
tag = "ウクライナ支援"
match = ["支援"]

[[labels]]
text = "ガザ停戦"
match = ["ガザ"]

[[labels]]
text = "ウクライナ侵攻"
match = ["ウクライナ"]

[[webhooks]]
kind = "discord"
url = "https://discord.example/api/webhooks/1/a"
name = "tg-ukraine"

[[webhooks]]
kind = "json"
url = "https://json.example/hook"
name = "mail-desk"

[[webhooks]]
kind = "slack"
url = "https://hooks.example/services/T0/B0/x"
"""

TWO = """
[[digests]]
name = "ウクライナ"
feeds = ["NHK*"]
tags = ["ukraine"]
webhooks = ["tg-ukraine", "mail-desk"]
topics = ["ウクライナ*"]
label_rules = ["ウクライナ侵攻"]
digest_at = ["08:30"]
default_topic = "戦況"
lead = ["ウクライナ情勢のまとめ"]
max_items_per_feed = 20

[[digests]]
name = "mideast.daily"
tags = ["mideast"]
webhooks = ["mail-desk"]
digest_every = "6h"
labels = "date"
health = "off"
headline_max = 100
"""


def load(tmp_path: Path, text: str) -> Config:
    return load_config(write_toml(tmp_path, text), {})


def problems(tmp_path: Path, text: str) -> list[str]:
    """The problems found, without their ``config.toml:LINE: ``."""
    path = write_toml(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    return [re.sub(rf"^{re.escape(str(path))}:\d+: ", "", p) for p in info.value.problems]


def test_without_digests_there_is_one_implicit_digest_of_everything(tmp_path: Path) -> None:
    config = load(tmp_path, BASE)
    assert config.digests == ()
    assert config.warnings == ()
    (only,) = config.streams()
    assert only == DigestSpec(
        name="",
        feeds=("NHK 国際", "NHK 経済", "ロイター", "Al Jazeera"),
        webhooks=config.webhooks,
        topics=config.topics,
        labels=config.labels,
        schedule=config.schedule,
        digest=config.digest,
    )
    assert len(only.webhooks) == 3 and len(only.topics) == 3 and len(only.labels) == 2
    assert only.schedule.digest_at == (time(7), time(19)) and only.digest.default_topic == "国内"
    # Its view is the config itself: the old meaning, unchanged.
    assert config.for_digest(only) == config
    assert config.digest_named("") == only and config.digest_named("x") is None
    assert config.streams_of("ロイター") == ("",)
    assert config.feeds[0].tags == ("ukraine", "mideast") and config.feeds[1].tags == ()


def test_two_digests_take_feeds_by_glob_and_tag_and_webhooks_by_name(tmp_path: Path) -> None:
    config = load(tmp_path, BASE + TWO)
    ukraine, mideast = config.digests
    assert config.streams() == config.digests
    assert ukraine.name == "ウクライナ" and mideast.name == "mideast.daily"
    # Config order, a feed matched by a pattern and a tag once.
    assert ukraine.feeds == ("NHK 国際", "NHK 経済", "ロイター")
    assert mideast.feeds == ("NHK 国際", "Al Jazeera")
    assert [w.name for w in ukraine.webhooks] == ["tg-ukraine", "mail-desk"]
    assert [w.name for w in mideast.webhooks] == ["mail-desk"]  # a webhook serves several digests
    assert [t.tag for t in ukraine.topics] == ["ウクライナ戦況", "ウクライナ支援"]
    assert [t.tag for t in mideast.topics] == ["中露", "ウクライナ戦況", "ウクライナ支援"]  # absent: all
    assert [r.text for r in ukraine.labels] == ["ウクライナ侵攻"]
    assert len(mideast.labels) == 2
    # Its own timing; poll_every stays the global one.
    assert ukraine.schedule.digest_at == (time(8, 30),) and ukraine.schedule.digest_every is None
    assert mideast.schedule.digest_at == () and mideast.schedule.digest_every == timedelta(hours=6)
    assert ukraine.schedule.poll_every == mideast.schedule.poll_every == timedelta(minutes=10)
    # Overrides of [digest]; the rest is the global [digest].
    assert ukraine.digest == replace(
        config.digest, default_topic="戦況", lead=("ウクライナ情勢のまとめ",), max_items_per_feed=20
    )
    assert mideast.digest == replace(config.digest, labels="date", health="off", headline_max=100)
    assert mideast.digest.default_topic == "国内" and mideast.digest.health_after == timedelta(hours=2)
    assert config.digest_named("mideast.daily") == mideast and config.digest_named("") is None
    assert config.streams_of("NHK 国際") == ("ウクライナ", "mideast.daily")
    assert config.streams_of("ロイター") == ("ウクライナ",)
    assert config.streams_of("nope") == ()
    assert config.warnings == ()


def test_a_digest_without_feeds_or_tags_takes_every_feed_and_the_global_schedule(tmp_path: Path) -> None:
    config = load(tmp_path, BASE + '[[digests]]\nname = "all"\n')
    (spec,) = config.streams()
    assert spec.feeds == tuple(f.name for f in config.feeds)
    assert spec.webhooks == config.webhooks and spec.topics == config.topics and spec.labels == config.labels
    assert spec.schedule == config.schedule and spec.digest == config.digest


def test_for_digest_is_the_config_as_one_digest_sees_it(tmp_path: Path) -> None:
    config = load(tmp_path, BASE + TWO)
    ukraine = config.digest_named("ウクライナ")
    assert ukraine is not None
    view = config.for_digest(ukraine)
    assert [f.name for f in view.feeds] == ["NHK 国際", "NHK 経済", "ロイター"]
    assert view.webhooks == ukraine.webhooks and view.topics == ukraine.topics and view.labels == ukraine.labels
    assert view.digest == ukraine.digest
    assert view.schedule == replace(config.schedule, digest_at=(time(8, 30),), digest_every=None)
    assert view.schedule.poll_every == timedelta(minutes=10)
    assert view.digests == ()
    assert view.poll == config.poll and view.state == config.state and view.timezone == config.timezone
    # The view makes one digest: its own, implicit.
    assert [s.feeds for s in view.streams()] == [ukraine.feeds]


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('name = "a"\n[[digests]]\nname = "a"', "digests[1].name: 'a' is already the name of digests[0]"),
        ('name = "two words"', "digests[0].name: 'two words' is not a digest name"),
        ('name = "a/b"', "digests[0].name: 'a/b' is not a digest name"),
        (f'name = "{"x" * 65}"', "digests[0].name: "),
        ('feeds = ["NHK*"]', "digests[0].name: missing (required)"),
        (
            'name = "a"\nfeeds = ["ロイター", "NKH*"]',
            """digests[0].feeds[1]: 'NKH*' matches no feed; did you mean "NHK*"?""",
        ),
        (
            'name = "a"\nfeeds = ["nhk*"]',
            """digests[0].feeds[0]: 'nhk*' matches no feed; did you mean "NHK 国際"?""",
        ),
        (
            'name = "a"\nwebhooks = ["tg-ukrain"]',
            """digests[0].webhooks[0]: 'tg-ukrain' is the name of no webhook; did you mean "tg-ukraine"?""",
        ),
        ('name = "a"\nwebhooks = ["slack#2"]', "digests[0].webhooks[0]: 'slack#2' is the name of no webhook"),
        (
            'name = "a"\ntopics = ["中露", "ウクライナ戦京"]',
            """digests[0].topics[1]: 'ウクライナ戦京' matches no [[topics]] tag; did you mean "ウクライナ戦況"?""",
        ),
        (
            'name = "a"\nlabel_rules = ["ガザ停"]',
            """digests[0].label_rules[0]: 'ガザ停' is the text of no [[labels]] rule; did you mean "ガザ停戦"?""",
        ),
        ('name = "a"\ndigest_tim = ["08:00"]', """digests[0].digest_tim: unknown key; did you mean "digest_at"?"""),
        ('name = "a"\nhealth_after = "1h"', "digests[0].health_after: unknown key"),
        ('name = "a"\ndigest_at = ["25:00"]', "digests[0].digest_at: '25:00' is not a time of day HH:MM"),
        ('name = "a"\nlabels = "day"', "digests[0].labels: 'day' is not one of 'auto', 'date'"),
        ('name = "a"\nheadline_max = 5', "digests[0].headline_max: must be between 10 and 1000, not 5"),
        ('name = "a"\nfeeds = "NHK*"\ntags = [1]', "digests[0].tags: must be a list of non-empty strings"),
    ],
)
def test_digest_problems_name_their_key(tmp_path: Path, table: str, expected: str) -> None:
    found = problems(tmp_path, BASE + "[[digests]]\n" + table + "\n")
    assert any(p.startswith(expected) for p in found), found


def test_digests_must_be_an_array_of_tables_and_feed_tags_strings(tmp_path: Path) -> None:
    assert problems(tmp_path, 'digests = "all"\n' + BASE) == [
        "digests: must be an array of tables ([[digests]]), not 'all'"
    ]
    text = BASE.replace('tags = ["ukraine"]\n', "tags = [1]\n", 1)
    assert problems(tmp_path, text) == ['feeds[2] ("ロイター").tags: must be a list of non-empty strings, not [1]']


def test_problems_are_placed_at_their_line(tmp_path: Path) -> None:
    text = BASE + '[[digests]]\nname = "a"\nfeeds = ["NKH*"]\n'
    path = write_toml(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    line = text.split("\n").index('feeds = ["NKH*"]') + 1
    assert info.value.problems[0].startswith(f"{path}:{line}: digests[0].feeds[0]: ")


def test_warnings_unknown_tag_no_feed_taken_and_feeds_of_no_digest(tmp_path: Path) -> None:
    text = BASE + '[[digests]]\nname = "a"\ntags = ["asia"]\n[[digests]]\nname = "b"\nfeeds = ["ロイター"]\n'
    config = load(tmp_path, text)
    assert config.digests[0].feeds == ()
    warned = "\n".join(config.warnings)
    assert "digests[0].tags[0]: no feed has the tag 'asia' (yet)" in warned
    assert "digests[0]: takes no feed" in warned
    for name in ("NHK 国際", "NHK 経済", "Al Jazeera"):
        assert f'("{name}"): polled for no digest' in warned
    assert '("ロイター"): polled for' not in warned
    assert config.streams_of("NHK 経済") == ()
    # A disabled feed is polled for nothing: no warning.
    text = text.replace('name = "NHK 経済"\n', 'name = "NHK 経済"\nenabled = false\n')
    assert '("NHK 経済")' not in "\n".join(load(tmp_path, text).warnings)


def test_a_refused_webhook_is_its_own_problem_not_the_digests(tmp_path: Path) -> None:
    text = BASE.replace('url = "https://json.example/hook"', 'url = "ftp://json.example/hook"')
    found = problems(tmp_path, text + '[[digests]]\nname = "a"\nwebhooks = ["mail-desk"]\n')
    assert found == ['webhooks[1] ("mail-desk").url: not an http(s) URL']


def test_the_shipped_config_means_what_it_meant(tmp_path: Path) -> None:
    config = load_config(ROOT / "config.toml", {}, need_secrets=False)
    assert config.digests == ()
    (only,) = config.streams()
    assert config.for_digest(only) == config
