"""Rendering and splitting: the reference digest byte for byte, and the cuts."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.compose import compose
from bot.config import Config, DigestSettings, Feed, load_config
from bot.demo import write_config
from bot.models import Block, Item
from bot.render import attribution, headline_and_body, shrink, split, utf16_len


def _item(n: int, feed: str, title: str, link: str, published: datetime, body: list[str]) -> Item:
    return Item(
        id=n,
        feed=feed,
        feed_url=f"https://example.org/{feed}",
        title=title,
        link=link,
        published=published,
        first_seen=published,
        body=tuple(body),
    )


def reference_items(ref: list[str]) -> list[Item]:
    """Items equivalent to the reference digest (lines are 1-based in the docs)."""
    line = lambda n: ref[n - 1]  # noqa: E731
    lines = lambda a, b: ref[a - 1 : b]  # noqa: E731
    utc = lambda *a: datetime(*a, tzinfo=UTC)  # noqa: E731
    return [
        # Given out of order on purpose: the digest orders them.
        _item(7, "J Sato", "", "https://x.example/j_sato/1", utc(2025, 1, 21, 2, 30), [line(37)]),
        _item(
            1,
            "NHKニュース",
            "【随時更新】ロシア ウクライナに軍事侵攻(1月21日の動き)",
            "https://t.co/OwvoAqO5dQ",
            utc(2025, 1, 20, 14, 40),
            [],
        ),
        _item(
            5,
            "NHKニュース",
            "ロシアと中国 オンラインで首脳会談 トランプ新政権けん制か",
            "https://t.co/lkSUtHQ5dv",
            utc(2025, 1, 21, 9, 34),
            lines(30, 32),
        ),
        _item(
            2,
            "ロイター",
            "プーチン氏、トランプ氏就任を祝福 ウクライナ巡る対話の用意も",
            "https://t.co/Q8s0LeN6Bj",
            utc(2025, 1, 20, 11, 5),
            lines(5, 11),
        ),
        _item(
            3,
            "ロイター",
            "ウクライナ大統領、トランプ氏就任に祝意 公正な平和実現に期待",
            "https://t.co/S44o5IbCwK",
            utc(2025, 1, 20, 21, 10),
            lines(15, 17),
        ),
        _item(
            4,
            "ロイター",
            "中国主席と首脳会談、プーチン大統領「戦略的協力の発展」に意欲",
            "https://t.co/d8snPvMpaz",
            utc(2025, 1, 21, 7, 20),
            lines(21, 27),
        ),
        _item(6, "矢野義昭(Yoshiaki Yano)", "", "https://x.example/LB05g/1", utc(2025, 1, 20, 12, 15), [line(36)]),
    ]


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(write_config(tmp_path, "http://127.0.0.1:1", None))


def test_reference_digest_byte_for_byte(config: Config, reference_text: str) -> None:
    items = reference_items(reference_text.split("\n"))
    rendered = compose(config, items, date(2025, 1, 21))
    assert rendered.text == reference_text


def test_reference_groups_and_labels(config: Config, reference_text: str) -> None:
    rendered = compose(config, reference_items(reference_text.split("\n")), date(2025, 1, 21))
    assert [i.id for i in rendered.digest.lead] == [1]
    assert [(g.tagline, [i.id for i in g.items]) for g in rendered.digest.groups] == [
        ("#米露(トランプ大統領就任式)", [2]),
        ("#ゼレンスキー(トランプ大統領就任式)", [3]),
        ("#中露(オンライン会談)", [4, 5]),
        ("#ロシア(250121)", [6, 7]),
    ]


def test_discord_split_joins_back_to_the_reference(config: Config, reference_text: str) -> None:
    rendered = compose(config, reference_items(reference_text.split("\n")), date(2025, 1, 21))
    messages = split(rendered.blocks, 2000, utf16_len)
    assert len(messages) == 2
    assert all(utf16_len(m) <= 2000 for m in messages)
    assert "\n".join(messages) == reference_text
    # Cut only between items: every message starts with an item's headline.
    headlines = {b.lines[0] for b in rendered.blocks}
    assert all(m.split("\n")[0] in headlines for m in messages)


def test_attribution_uses_configured_zone_and_english_month() -> None:
    item = _item(1, "x", "t", "l", datetime(2025, 1, 20, 21, 10, tzinfo=UTC), [])
    assert attribution("ロイター", "ReutersJapan", item, ZoneInfo("Asia/Tokyo")) == (
        "— ロイター (@ReutersJapan) January 21, 2025"
    )
    assert attribution("BBC", None, item, ZoneInfo("Europe/London")) == "— BBC January 20, 2025"
    march = _item(1, "x", "t", "l", datetime(2024, 3, 5, 12, tzinfo=UTC), [])
    assert attribution("A", None, march, ZoneInfo("UTC")).endswith("March 5, 2024")


def test_attribution_without_publication_time_uses_first_seen() -> None:
    seen = datetime(2025, 2, 1, 16, 0, tzinfo=UTC)
    item = Item(1, "F", "u", "t", "l", None, seen, ())
    assert attribution("F", None, item, ZoneInfo("Asia/Tokyo")) == "— F February 2, 2025"


def test_titleless_post_fits_has_no_body() -> None:
    feed = Feed(name="A", url="u", headline="{title}")
    item = Item(1, "A", "u", "", "https://x/1", None, datetime(2025, 1, 1, tzinfo=UTC), ("short post",))
    assert headline_and_body(item, feed, 140) == ("short post", ())


def test_titleless_post_cut_at_headline_max_keeps_full_text_as_body() -> None:
    feed = Feed(name="A", url="u", headline="{title} {link}")
    text = "あ" * 150
    item = Item(1, "A", "u", "", "https://x/1", None, datetime(2025, 1, 1, tzinfo=UTC), (text,))
    head, body = headline_and_body(item, feed, 140)
    assert head == "あ" * 140 + "… https://x/1"
    assert body == (text,)


def test_headline_template_and_whitespace() -> None:
    feed = Feed(name="NHK", url="u", handle="nhk_news", headline="{title}{link} #{handle}")
    item = Item(1, "NHK", "u", "a  b\nc", "https://n/1", None, datetime(2025, 1, 1, tzinfo=UTC), (" p  1 ", ""))
    assert headline_and_body(item, feed, 140) == ("a b chttps://n/1 #nhk_news", ("p 1",))


def _block(n: int, body_lines: int, width: int, tag: str | None = None) -> Block:
    return Block((f"head {n}", f"— attribution {n}", *[f"{n}:" + "x" * width for _ in range(body_lines)]), n, tag)


def test_split_never_cuts_inside_an_item_and_respects_the_limit() -> None:
    blocks = [_block(n, 3, 100, "#t(1)" if n % 3 == 2 else None) for n in range(20)]
    messages = split(blocks, 500)
    assert all(len(m) <= 500 for m in messages)
    assert "\n".join(messages) == "\n".join("\n".join(b.all_lines) for b in blocks)
    for m in messages:
        assert m.startswith("head ")
    # A tag line stays with the last item of its group.
    for m in messages:
        assert not m.startswith("#")


def test_an_item_longer_than_the_limit_loses_body_lines_from_its_end() -> None:
    block = _block(1, 10, 100, "#tag(250121)")
    lines = shrink(block, 450)
    assert len("\n".join(lines)) <= 450
    assert lines[:2] == block.lines[:2]
    assert lines[-1] == "#tag(250121)"
    assert lines[-2].endswith("…")
    assert lines[2] == block.lines[2]


def test_an_oversized_headline_is_cut_to_fit() -> None:
    block = Block(("h" * 3000, "— a", "body"), 1, "#t(1)")
    lines = shrink(block, 2000)
    assert len("\n".join(lines)) <= 2000
    assert lines[0].endswith("…") and lines[-1] == "#t(1)"


def test_utf16_length_counts_emoji_as_javascript_does() -> None:
    assert utf16_len("🇺🇦") == 4
    assert utf16_len("ロシア") == 3
    blocks = [Block(("🇺🇦" * 300, "— a"), 1), Block(("🇺🇦" * 300, "— b"), 2)]
    messages = split(blocks, 2000, utf16_len)
    assert len(messages) == 2 and all(utf16_len(m) <= 2000 for m in messages)


def test_fallback_topic_name_comes_from_config() -> None:
    from bot.topics import build_digest

    item = Item(1, "F", "u", "天気", "l", None, datetime(2025, 1, 21, tzinfo=UTC), ())
    digest = build_digest([item], date(2025, 1, 21), (), (), DigestSettings(default_topic="ニュース"))
    assert digest.groups[0].tagline == "#ニュース(250121)"


def test_cuts_never_split_a_flag_or_an_emoji_sequence() -> None:
    from bot.text import safe_cut, truncate

    text = "ab🇺🇦🇯🇵cd"
    assert [safe_cut(text, n) for n in range(len(text) + 1)] == [0, 1, 2, 2, 4, 4, 6, 7, 8]
    family = "x👨\u200d👩\u200d👧y"
    assert {family[: safe_cut(family, n)] for n in range(len(family) + 1)} <= {"", "x", "x👨\u200d👩\u200d👧", family}
    assert truncate("ab🇺🇦cd", 3) == "ab…"
    for limit in range(40, 60):
        block = Block(("🇺🇦" * 30, "— a", "🇺🇦" * 30), 1)
        for line in shrink(block, limit, utf16_len):
            halves = sum(1 for c in line if 0x1F1E6 <= ord(c) <= 0x1F1FF)
            assert halves % 2 == 0, line  # whole flags only


def test_a_renamed_feed_keeps_its_handle_and_template(config: Config) -> None:
    from dataclasses import replace

    feed = config.feeds[0]
    renamed = replace(config, feeds=(replace(feed, name="NHK"), *config.feeds[1:]))
    item = Item(
        1,
        feed.name,
        feed.url,
        "見出し",
        "https://n/1",
        datetime(2025, 1, 21, tzinfo=UTC),
        datetime(2025, 1, 21, tzinfo=UTC),
        (),
    )
    from bot.render import item_lines

    assert item_lines(renamed, item)[:2] == ("見出しhttps://n/1 #nhk_news", "— NHK (@nhk_news) January 21, 2025")
