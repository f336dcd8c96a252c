"""Feed parsing and body extraction on real data (corpus) and the demo site."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.demo import SITE
from bot.errors import ParseError
from bot.extract import extract_body
from bot.markup import decode_html, html_paragraphs
from bot.parse import parse_feed
from tests.conftest import REFERENCE

BASE = "http://127.0.0.1:9"


def site_bytes(path: str) -> bytes:
    return (SITE / path).read_bytes().replace(b"{{BASE}}", BASE.encode())


def reference_lines() -> list[str]:
    if not REFERENCE.is_file():
        pytest.skip("reference digest not found")
    return REFERENCE.read_text(encoding="utf-8").split("\n")


# -- feeds --------------------------------------------------------------------


def test_demo_feeds_parse_with_titles_links_dates() -> None:
    feed = parse_feed(site_bytes("reuters/world.xml"), BASE + "/reuters/world.xml")
    titles = [e.title for e in feed.entries]
    assert "中国主席と首脳会談、プーチン大統領「戦略的協力の発展」に意欲" in titles
    first = feed.entries[0]
    assert first.link == BASE + "/reuters/world/putin-xi-video-call-2025-01-21/"
    assert first.published == datetime(2025, 1, 21, 7, 20, tzinfo=UTC)
    assert feed.warning is None


def test_titleless_social_posts_keep_their_text_as_content() -> None:
    lines = reference_lines()
    feed = parse_feed(site_bytes("x/j_sato.xml"), BASE + "/x/j_sato.xml")
    (post,) = feed.entries
    assert post.titleless
    assert post.content == (lines[36],)


@pytest.mark.parametrize(
    "name",
    [
        "asahi_headlines_rdf.xml",
        "mainichi_flash_rdf.xml",
        "gihyo_2018-03-19.rss",
        "gihyo_2018-03-19.rdf",
        "gihyo_2018-03-19.atom",
        "encoded/chardet_EUC-JP_arclamp.jp.xml",
        "encoded/chardet_SHIFT_JIS_10e.org.xml",
        "encoded/chardet_SHIFT_JIS_blog.inkase.net.xml",
        "encoded/plagger_tdiary_eucjp.rdf",
    ],
)
def test_japanese_feeds_decode_cleanly(corpus: Path, name: str) -> None:
    feed = parse_feed((corpus / "feeds" / name).read_bytes(), "https://example.org/feed")
    assert len(feed.entries) >= 10
    for e in feed.entries:
        assert e.title and e.link.startswith("http") and e.published is not None
        for text in (e.title, *e.content):
            assert "\ufffd" not in text
            # Mojibake of UTF-8 read as Latin-1/CP1252 shows these.
            assert "ã" not in text and "ï¼" not in text
    assert any("\u3040" <= ch <= "\u30ff" for e in feed.entries for ch in e.title)


def test_gihyo_formats_agree(corpus: Path) -> None:
    parsed = [
        parse_feed((corpus / "feeds" / f"gihyo_2018-03-19.{ext}").read_bytes(), "https://gihyo.jp/feed")
        for ext in ("rss", "rdf", "atom")
    ]
    titles = [[e.title for e in p.entries] for p in parsed]
    assert titles[0] == titles[1] == titles[2]
    assert [e.link for e in parsed[0].entries] == [e.link for e in parsed[2].entries]


@pytest.mark.parametrize(
    "name", ["social/mastodon_pdxjohnny_2022-11-15.rss", "social/bluesky_kaedotcom_2026-01-14.rss"]
)
def test_social_feeds_are_titleless_posts(corpus: Path, name: str) -> None:
    feed = parse_feed((corpus / "feeds" / name).read_bytes(), "https://example.org/feed")
    assert feed.entries
    for e in feed.entries:
        assert e.titleless and e.content and e.link.startswith("https://")
        assert all("<" not in line for line in e.content)


def test_scripting_news_posts_on_one_page_stay_distinct(corpus: Path) -> None:
    feed = parse_feed((corpus / "feeds" / "netnewswire_scriptingNews.rss").read_bytes(), "http://scripting.com/rss")
    keys = [e.keys[0] for e in feed.entries]
    assert len(set(keys)) == len(keys) == 50


def test_not_a_feed_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match=r"feed http://f: not a feed"):
        parse_feed(b"<html><body><a href='/'>home</a></body></html>", "http://f", {"content-type": "text/html"})
    with pytest.raises(ParseError):
        parse_feed(b"", "http://f")


# -- extraction -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "first", "last"),
    [
        ("reuters/world/putin-congratulates-trump-2025-01-20/index.html", 5, 11),
        ("reuters/world/zelenskiy-congratulates-trump-2025-01-20/index.html", 15, 17),
        ("reuters/world/putin-xi-video-call-2025-01-21/index.html", 21, 27),
        ("nhk/news/html/20250121/k10014699731000.html", 30, 32),
    ],
)
def test_article_bodies_match_the_reference(path: str, first: int, last: int) -> None:
    lines = reference_lines()
    body = extract_body(site_bytes(path), BASE + "/" + path, "text/html; charset=utf-8", "auto")
    assert body == lines[first - 1 : last]


def test_live_updates_index_page_has_no_body() -> None:
    page = site_bytes("nhk/news/html/20250121/k10014698911000.html")
    assert extract_body(page, BASE, "text/html", "auto") == []


def test_css_selector_mode() -> None:
    page = site_bytes("nhk/news/html/20250121/k10014699731000.html")
    assert extract_body(page, BASE, "text/html", "div.body-text p") == reference_lines()[30:32]


def test_non_html_content_gives_no_body() -> None:
    assert extract_body(b"%PDF-1.4 ...", BASE, "application/pdf", "auto") == []


def test_furigana_readings_are_not_text() -> None:
    page = (
        "<html><body><article><p>"
        + "<ruby>漢字<rp>(</rp><rt>かんじ</rt><rp>)</rp></ruby>を読む練習をする。" * 8
        + "</p></article></body></html>"
    )
    (para,) = extract_body(page.encode(), BASE, "text/html; charset=utf-8", "auto")
    assert "かんじ" not in para and "(" not in para
    assert para == "漢字を読む練習をする。" * 8


def test_cp932_page_decodes_without_replacement(corpus: Path) -> None:
    data = (corpus / "articles" / "encoded" / "chardet_CP932_hardsoft.at.webry.info.html").read_bytes()
    text = decode_html(data, None)
    assert "\ufffd" not in text
    assert any("\u3040" <= ch <= "\u30ff" for ch in text)
    # A wrong charset header is not trusted when the bytes do not decode.
    assert decode_html(data, "text/html; charset=utf-8") == text


@pytest.mark.parametrize("codec", ["cp932", "euc_jp", "utf-8"])
def test_declared_and_undeclared_japanese_charsets(codec: str) -> None:
    text = "ロシアのプーチン大統領は21日、中国の習近平国家主席とオンラインで首脳会談を行いました。①"
    if codec == "euc_jp":
        text = text.replace("①", "")
    page = f"<html><head><meta charset='{codec}'></head><body><p>{text}</p></body></html>"
    assert text in decode_html(page.encode(codec))
    bare = f"<html><body><p>{text * 3}</p></body></html>".encode(codec)
    assert text in decode_html(bare)


def test_feed_html_becomes_paragraphs() -> None:
    assert html_paragraphs("<p>one <b>two</b></p><p>three<br>four</p><script>x()</script>") == [
        "one two",
        "three",
        "four",
    ]
    assert html_paragraphs("plain &amp; simple\n\nsecond") == ["plain & simple", "second"]


@pytest.mark.parametrize(
    ("codec", "declared", "title"),
    [
        ("cp932", "Shift_JIS", "ロシア外相が会見①髙島屋～"),  # CP932-only characters in a "Shift_JIS" feed
        ("euc_jis_2004", "EUC-JP", "ロシア外相が会見①～"),
        ("cp932", None, "ロシア外相が会見したことを伝えました"),  # undeclared: detected
        ("euc_jp", None, "ロシア外相が会見したことを伝えました"),
    ],
)
@pytest.mark.parametrize("header", [False, True])
def test_japanese_feed_charsets(codec: str, declared: str | None, title: str, header: bool) -> None:
    decl = f'<?xml version="1.0" encoding="{declared}"?>' if declared else '<?xml version="1.0"?>'
    body = f"<rss version='2.0'><channel><title>t</title><item><title>{title}</title><link>http://x/1</link>"
    doc = (decl + body + "</item></channel></rss>").encode(codec)
    # A header that lies (utf-8 for Shift_JIS bytes) is not trusted either.
    headers = {"Content-Type": f"application/rss+xml; charset={declared or 'utf-8'}"} if header else {}
    (entry,) = parse_feed(doc, "http://f", headers).entries
    assert entry.title == title


@pytest.mark.parametrize(
    "name", ["social/mastodon_pdxjohnny_2022-11-15.rss", "social/bluesky_kaedotcom_2026-01-14.rss"]
)
def test_social_posts_render_per_the_format(corpus: Path, name: str) -> None:
    from datetime import UTC, datetime

    from bot.config import Feed
    from bot.models import Item
    from bot.render import headline_and_body

    feed = Feed(name="Someone", url="https://example.org/feed", handle="someone", headline="{title} {link}")
    for n, e in enumerate(parse_feed((corpus / "feeds" / name).read_bytes(), "https://example.org/feed").entries):
        item = Item(n, "Someone", feed.url, e.title, e.link, e.published, datetime.now(UTC), e.content)
        head, body = headline_and_body(item, feed, 40)
        text = " ".join(" ".join(e.content).split())
        if len(text) > 40:
            assert head.startswith(text[:30]) and head.endswith("… " + e.link)
            assert len(head.removesuffix(" " + e.link)) <= 41
            assert body == e.content  # the full text as the body
        else:
            assert head == f"{text} {e.link}" and body == ()


def test_the_fast_parser_reads_every_document_it_takes_as_feedparser_does(corpus: Path) -> None:
    from bench.parser_identity import compare

    fast_docs, identical, differences = compare(corpus)
    assert fast_docs >= 8  # the real RSS/RDF/Atom news feeds among them
    assert differences == [] and identical == fast_docs


def _rss(items: str, channel: str = "") -> bytes:
    head = "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>t</title>"
    return f"{head}{channel}{items}</channel></rss>".encode()


@pytest.mark.parametrize("dated", [True, False])
def test_the_fast_path_reads_the_channel_ttl_and_undated_feeds_as_feedparser(dated: bool) -> None:
    from bot.parse import _fast

    date = "<pubDate>Tue, 21 Jan 2025 00:00:00 GMT</pubDate>" if dated else ""
    doc = _rss(
        "".join(f"<item><title>t{n}</title><link>https://a.example/{n}</link>{date}</item>" for n in range(3)),
        "<ttl>90</ttl>",
    )
    assert _fast(doc) is not None  # taken by the fast parser
    fast, slow = parse_feed(doc, "http://f"), parse_feed(doc, "http://f", fast=False)
    assert fast.ttl == slow.ttl == 90
    assert fast.entries == slow.entries


def test_a_document_cut_short_is_left_to_feedparser_which_says_so() -> None:
    from bot.parse import _fast

    doc = _rss("<item><title>a</title><link>https://a.example/1</link></item>" * 3)
    assert _fast(doc[: len(doc) - 20]) is None
    assert parse_feed(doc[: len(doc) - 20], "http://f").warning  # feedparser's note on the damage
