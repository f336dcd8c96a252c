"""What each platform shows is what the digest says (issue 22), asked of
the platforms' own parsers (tests/oracles: mfm-js for Misskey,
discord-markdown-parser for Discord, markdown-it for Teams' CommonMark,
slack-markdown for Slack, twitter-text with Mastodon's URL rule for
Mastodon), over generated hostile lines: markup runs of every length,
mentions in every position, URLs with ``@ _ ~ * (``, queries in Japanese,
URLs glued to the text before them.

For every kind: every URL of the line appears intact in what readers see,
and is a link where the platform makes links of bare URLs; no emphasis,
spoiler, code, mention, emoji or heading node comes from feed text; what
readers see is the line (zero-width spaces aside); and each kind measures
a message as its platform counts it, or more."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.kinds import KINDS
from bot.kinds.mastodon import mastodon_length
from bot.kinds.teams import card_size, card_text
from bot.render import utf16_len
from bot.spans import spans
from tests.renderers import Oracles, available, seen, shared

MARKUP = [
    "*",
    "**",
    "***",
    "_",
    "__",
    "~",
    "~~",
    "~~~",
    "|",
    "||",
    "|||",
    "`",
    "```",
    "$[x2 ",
    "$[spin ",
    "]",
    "[",
    "](",
    ")",
    "(",
    "<",
    ">",
    "\\",
    "&",
    "&amp;",
    "<b>",
    "</b>",
    "<plain>",
    "</plain>",
    "<center>",
    ":smile:",
    ":blobcat:",
    "# ",
    "> ",
    ">>> ",
    "- ",
    "-# ",
    "1. ",
    "+ ",
    "#",
    " 検索",
    " Search",
    "\\*",
    "![",
]
MENTIONS = [
    "@everyone",
    "@here",
    "@admin",
    "@user@host.example",
    "foo_@admin",
    "<@123456789012345678>",
    "<@&123456789012345678>",
    "<#123456789012345678>",
    "<t:1700000000:R>",
    "<users/all>",
    "<!channel>",
    "<!here>",
    "<@U12345678>",
    "#tag",
    "#中露",
    "@nhk_news",
    "＠admin",
]
WORDS = [
    "ロシア",
    "首脳会談",
    "ウクライナ情勢",
    "news",
    "bold",
    "x",
    "2",
    "3",
    "4",
    "見出し",
    "here",
    "「引用」",
    "。",
    "、",
]
URLS = [
    "https://medium.com/@writer/story_1",
    "https://example.jp/wiki/__init__/",
    "https://mastodon.example/@newsdesk/1",
    "https://news.example.jp/a/0001.html",
    "https://www3.nhk.or.jp/_amp/2025/article_1.html?_ga=2&x=~y",
    "https://en.wikipedia.org/wiki/Foo_(bar)",
    "https://news.example.jp/search?q=ロシア&page=2",
    "https://example.jp/a*b*c/",
    "http://a.example.jp/~user/x_y_z",
    "https://example.com/path|pipe",
]

fragment = st.one_of(st.sampled_from(MARKUP), st.sampled_from(MENTIONS), st.sampled_from(WORDS))
separator = st.sampled_from([" ", " ", "", "、", " — "])


@st.composite
def lines(draw: st.DrawFn) -> tuple[str, list[str], list[str]]:
    """A line, the URLs in it, and those of them that stand alone (spaces
    or the line's ends around them), which every linking platform links."""
    parts: list[str] = []
    urls: list[str] = []
    alone: list[str] = []
    for _ in range(draw(st.integers(1, 9))):
        if draw(st.integers(0, 3)) == 0:
            url = draw(st.sampled_from(URLS))
            glued = draw(st.booleans())
            if parts and not glued:
                parts.append(" ")
            parts.append(url)
            urls.append(url)
            if not glued or not parts[:-1]:
                alone.append(url)
            parts.append(" ")
        else:
            parts.append(draw(fragment))
            parts.append(draw(separator))
    line = "".join(parts).strip()
    alone = [u for u in alone if f" {u} " in f" {line} "]
    return line, urls, alone


@pytest.fixture(scope="module")
def oracles() -> Iterator[Oracles]:
    if not available():
        pytest.skip("the platforms' parsers are not installed: run `bash bootstrap.sh test` (node, tests/oracles)")
    yield shared()


PROPERTY = settings(max_examples=400, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# The hostile titles of issue 22's trial, tried first by every property.
HOSTILE = [
    "@everyone 速報 <b>x</b> [click](javascript:alert(1)) *bold* #tag @user@host <users/all> $[x2 大きく]",
    "**太字** _italic_ ***x*** ~~~x~~~ `code` ||spoiler|| |||x||| :smile: :blobcat: <@123456789012345678>",
    "foo_@admin 2*3*4 <!channel> <t:1700000000:R> \\*escaped\\* &amp; &lt;b&gt;",
    "see https://medium.com/@writer/story_1 and https://www3.nhk.or.jp/_amp/2025/article_1.html?_ga=2&x=~y now",
    "https://example.jp/wiki/__init__/ https://mastodon.example/@newsdesk/1 https://news.example.jp/search?q=ロシア&page=2",
    "@herehttps://news.example.jp/a/0001.html (https://en.wikipedia.org/wiki/Foo_(bar)) 「https://a.example.jp/x」",
    "# 見出し",
    "> 引用 @admin",
    "- 一 :smile: 検索",
    "1. first Search",
    "</plain>*x* <plain>y</plain>",
]


def hostile(test: Any) -> Any:
    """The trial's lines as explicit examples (each URL in them alone, as
    ``lines`` would report it)."""
    for line in HOSTILE:
        urls = [u for u in re.findall(r"https?://\S+", line)]
        alone = [u.rstrip(")」") for u in urls if f" {u} " in f" {line} "]
        test = example(case=(line, [u.rstrip(")」") for u in urls], alone))(test)
    return test


# The kinds whose platform parses markup, with the parser asked (Teams:
# its TextBlock's CommonMark).
MARKUP_KINDS = [("misskey", "misskey"), ("discord", "discord"), ("teams", "commonmark")]


@pytest.mark.parametrize(("kind", "parser"), MARKUP_KINDS, ids=[k for k, _ in MARKUP_KINDS])
@PROPERTY
@hostile
@given(case=lines())
def test_markup_platforms_show_the_line_with_its_links_and_no_markup(
    oracles: Oracles, kind: str, parser: str, case: tuple[str, list[str], list[str]]
) -> None:
    line, _urls, alone = case
    out = oracles.ask(parser, KINDS[kind].escape(line, ()))
    assert out["marks"] == [], (line, out)
    assert seen(str(out["visible"])) == line
    assert all(u in out["links"] for u in alone), (line, out["links"])


@PROPERTY
@hostile
@given(case=lines())
def test_slack_shows_the_line_with_its_links_and_no_mention_or_emoji(
    oracles: Oracles, case: tuple[str, list[str], list[str]]
) -> None:
    line, _urls, _alone = case
    escaped = KINDS["slack"].escape(line, ())
    out = oracles.ask("slack", escaped)
    assert out["marks"] == [], (line, out)
    assert seen(str(out["visible"])) == line
    assert json.loads(KINDS["slack"].message(escaped, 1, 0, None).body)["mrkdwn"] is False  # Slack's markup: off


@PROPERTY
@hostile
@given(case=lines())
def test_mastodon_counts_no_fewer_than_mastodon_and_keeps_links(
    oracles: Oracles, case: tuple[str, list[str], list[str]]
) -> None:
    line, urls, _alone = case
    escaped = KINDS["mastodon"].escape(line, ())
    out = oracles.ask("mastodon", escaped)
    assert mastodon_length(escaped) >= int(str(out["length"])), (escaped, out)
    assert seen(escaped) == line
    assert all(u in escaped for u in urls)


@PROPERTY
@hostile
@given(case=lines())
def test_google_chat_card_text_shows_the_line_with_its_links(case: tuple[str, list[str], list[str]]) -> None:
    line, _urls, alone = case
    reader = _Paragraph()
    reader.feed(KINDS["googlechat"].escape(line, ()))
    assert reader.text == line and reader.tags <= {"a"}
    assert all(u in reader.links for u in alone)


@PROPERTY
@hostile
@given(case=lines())
def test_plain_text_platforms_keep_links_intact_and_handles_silent(case: tuple[str, list[str], list[str]]) -> None:
    line, urls, _alone = case
    for kind in ("telegram", "matrix", "mastodon"):
        escaped = KINDS[kind].escape(line, ())
        assert seen(escaped) == line
        assert all(u in escaped for u in urls), (kind, escaped)
        text = "".join(piece for is_link, piece in spans(escaped) if not is_link)
        assert not re.search(r"(?<![\w.])[@＠]\w", text), (kind, escaped)  # no handle left to notify


class _Paragraph(HTMLParser):
    """What a card's text paragraph shows (the HTML subset Google Chat reads)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text = ""
        self.tags: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag == "a":
            self.links.append(html.unescape(dict(attrs).get("href") or ""))

    def handle_data(self, data: str) -> None:
        self.text += data


def test_the_items_own_link_is_kept_when_the_template_glues_it_to_the_title(oracles: Oracles) -> None:
    """``{title}{link}``: the link is known exactly, even after a letter."""
    link = "https://news.example.jp/a/0001.html"
    line = f"ロシア外相が@here発言{link}"
    for kind, platform in (("misskey", "misskey"), ("discord", "discord"), ("teams", "commonmark")):
        out = oracles.ask(platform, KINDS[kind].escape(line, (link,)))
        assert out["links"] == [link] and seen(str(out["visible"])) == line, (kind, out)


def test_sizes_are_measured_as_sent() -> None:
    teams = KINDS["teams"]
    text = "見出し\n— NHK January 21, 2025\n本文"
    assert teams.measure(text) == card_size(text) and card_text(teams.message(text, 1, 0, None).body) == text
    assert KINDS["discord"].measure("あ\\*") == utf16_len("あ\\*")
