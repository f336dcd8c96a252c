"""Adding feeds without hand-editing: `feedbot add`, `list`, `remove`, `opml`.

Through the real CLI against loopback sites, and the config edits checked
byte for byte: everything outside the edited tables stays as it was.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.config import load_config
from bot.configfile import ConfigFile, NewFeed, locked, same_feed_url, write
from bot.discover import alternate_links, well_known_urls
from bot.errors import ConfigError
from bot.loopback import Reply, Request, Server
from bot.opml import export, plan_import, read_opml
from tests.conftest import run_cli
from tests.test_service import spawn_run

REPO = Path(__file__).resolve().parent.parent

RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>{title}</title><link>{base}/</link>
<item><title>プーチン大統領 トランプ氏と電話会談</title><link>{base}/a/1</link>
<pubDate>Tue, 21 Jan 2025 09:00:00 +0900</pubDate>
<description>ロシアのプーチン大統領は電話で会談した。</description></item>
<item><title>中国とロシア オンライン会談</title><link>{base}/a/2</link>
<pubDate>Tue, 21 Jan 2025 08:00:00 +0900</pubDate>
<description>習近平国家主席とプーチン大統領が会談した。</description></item>
<item><title>古い記事</title><link>{base}/a/3</link>
<pubDate>Mon, 13 Jan 2025 08:00:00 +0900</pubDate><description>古い。</description></item>
</channel></rss>"""
ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Comments</title><id>urn:c</id><updated>2025-01-20T00:00:00Z</updated>
<entry><title>a comment</title><id>urn:c1</id><link href="{base}/c/1"/><updated>2025-01-20T00:00:00Z</updated></entry>
</feed>"""
ARTICLE = (
    "<html><head><title>t</title></head><body><nav>新着ニュース</nav><article><h1>見出し</h1>"
    "<p>ロシアのプーチン大統領は２０日、アメリカのトランプ大統領と電話で会談しました。</p>"
    "<p>両首脳は、ウクライナ情勢をめぐって意見を交わしたということです。</p></article></body></html>"
)


@dataclass
class Site:
    """A news site on loopback: pages with or without feed links, feeds, articles."""

    base: str = ""
    hits: list[str] = field(default_factory=list)
    wanted: dict[str, threading.Event] = field(default_factory=dict)

    def __call__(self, req: Request) -> Reply:
        path = req.path.split("?")[0]
        self.hits.append(path)
        if path in self.wanted:
            self.wanted[path].set()
        html = {"Content-Type": "text/html; charset=utf-8"}
        if path == "/":
            links = (
                '<link rel="alternate" type="application/rss+xml" title="国際" href="/rss/world.xml">'
                f'<link rel="alternate" type="application/atom+xml" href="{self.base}/comments.atom">'
                '<link rel="stylesheet" href="/s.css"><link rel="alternate" hreflang="en" href="/en/">'
            )
            return Reply(200, html, f"<html><head>{links}</head><body>top</body></html>".encode())
        if path == "/plain/":
            return Reply(200, html, b"<html><head><title>no links</title></head><body>x</body></html>")
        if path in ("/rss/world.xml", "/feed", "/other.xml"):
            title = {"/rss/world.xml": "テスト新聞 国際", "/feed": "テスト新聞", "/other.xml": "別の新聞"}[path]
            body = RSS.format(title=title, base=self.base).encode()
            return Reply(200, {"Content-Type": "application/rss+xml; charset=utf-8"}, body)
        if path == "/comments.atom":
            return Reply(200, {"Content-Type": "application/atom+xml"}, ATOM.format(base=self.base).encode())
        if path == "/broken.xml":
            return Reply(200, {"Content-Type": "application/xml"}, b"<?xml version='1.0'?><nothing-here/>")
        if path == "/a/1":
            return Reply(200, html, ARTICLE.encode())
        if path.startswith("/a/"):
            other = ARTICLE.replace("アメリカのトランプ大統領と電話で", "中国の習近平国家主席とオンラインで")
            return Reply(200, html, other.encode())
        return Reply(404, {"Content-Type": "text/plain"}, b"not found")


@pytest.fixture
def site() -> Iterator[Site]:
    handler = Site()
    with Server(handler) as server:
        handler.base = server.base
        yield handler


def shipped_config(folder: Path) -> Path:
    """The repository's own commented config.toml, state in ``folder``,
    article pages on loopback allowed (the test site is on 127.0.0.1)."""
    text = (REPO / "config.toml").read_text(encoding="utf-8")
    text = text.replace("# allow_private_addresses = false", "allow_private_addresses = true")
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def without_block(text: str, start_marker: str) -> str:
    """``text`` without the table that starts with ``start_marker`` (its
    header line) and the blank line before it."""
    at = text.index(start_marker)
    end = text.find("\n\n", at)
    end = len(text) if end < 0 else end + 1
    return text[: at - 1] + text[end:]


# -- add ---------------------------------------------------------------------


def test_add_lists_both_alternates_then_adds_the_picked_one(site: Site, tmp_path: Path) -> None:
    path = shipped_config(tmp_path)
    original = path.read_text(encoding="utf-8")
    r = run_cli("--config", str(path), "add", site.base + "/")
    assert r.returncode == 2, r.stderr
    assert "run again with --pick N (1-2)" in r.stderr
    assert f"1. テスト新聞 国際 — {site.base}/rss/world.xml (3 items, newest 2025-01-21 09:00" in r.stdout
    assert f"2. Comments — {site.base}/comments.atom (1 item, newest 2025-01-20 09:00" in r.stdout
    assert path.read_text(encoding="utf-8") == original  # nothing written

    r = run_cli("--config", str(path), "add", site.base + "/", "--pick", "1", "--handle", "test_news")
    assert r.returncode == 0, r.stderr
    text = path.read_text(encoding="utf-8")
    assert (tmp_path / "config.toml.bak").read_text(encoding="utf-8") == original
    added = "[[feeds]]\n# added by feedbot add on "
    assert text.count(added) == 1
    block = text[text.index(added) :].split("\n\n")[0]
    assert block.endswith(f'name = "テスト新聞 国際"\nurl = "{site.base}/rss/world.xml"\nhandle = "test_news"')
    assert without_block(text, added) == original  # every other byte as it was
    # After the last feed's own lines, before the comments that follow them.
    assert text.index(added) > text.index('name = "AFPBB News"')
    assert text.index(added) < text.index("# A social account whose posts have no title")
    feed = load_config(path).feed_named("テスト新聞 国際")
    assert feed is not None and feed.url == f"{site.base}/rss/world.xml" and feed.handle == "test_news"

    # The preview: headline, attribution and body as the digest shows them,
    # the group each item would go to, and what the first poll leaves out.
    out = r.stdout
    headline = f"  プーチン大統領 トランプ氏と電話会談 {site.base}/a/1\n"
    assert headline + "  — テスト新聞 国際 (@test_news) January 21, 2025" in out
    assert "  ロシアのプーチン大統領は２０日、アメリカのトランプ大統領と電話で会談しました。" in out
    assert "新着ニュース" not in out  # the page's navigation is not body
    groups = re.findall(r"^  \[(.*)\]$", out, re.M)
    assert groups[0].startswith("#米露") and groups[1].startswith("#中露")
    assert all("too old for the first poll" in g for g in groups)  # January 2025 entries, run today


def test_add_of_a_page_without_feed_links_finds_slash_feed(site: Site, tmp_path: Path) -> None:
    path = shipped_config(tmp_path)
    r = run_cli("--config", str(path), "add", site.base + "/plain/", "--body", "feed")
    assert r.returncode == 0, r.stderr
    assert f"1. テスト新聞 — {site.base}/feed (3 items" in r.stdout and "; /feed)" in r.stdout
    assert site.hits[:2] == ["/plain/", "/feed"]  # the first usual path answered: no more tried
    feed = load_config(path).feed_named("テスト新聞")
    assert feed is not None and feed.url == site.base + "/feed" and feed.body == "feed"
    assert f"found at {site.base}/plain/" in path.read_text(encoding="utf-8")


def test_add_of_a_feed_address_takes_it_and_dry_run_writes_nothing(site: Site, tmp_path: Path) -> None:
    path = shipped_config(tmp_path)
    before = path.read_bytes()
    r = run_cli("--config", str(path), "add", site.base + "/other.xml", "--name", "別", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "the address given" in r.stdout
    assert f"dry run: {path} not changed" in r.stdout and 'name = "別"' in r.stdout
    assert path.read_bytes() == before and not (tmp_path / "config.toml.bak").exists()


def test_add_refuses_a_duplicate_url_or_name(site: Site, tmp_path: Path) -> None:
    path = shipped_config(tmp_path)
    assert run_cli("--config", str(path), "add", site.base + "/other.xml").returncode == 0
    before = path.read_bytes()
    # The same feed with a tracking parameter is the same feed.
    again = site.base + "/other.xml?utm_source=twitter"
    r = run_cli("--config", str(path), "add", again)
    assert r.returncode == 2
    assert r.stderr.strip() == f"feedbot add: {again} is already configured as '別の新聞'"
    # A page whose feed is already configured: refused after discovery.
    r = run_cli("--config", str(path), "add", site.base + "/plain/", "--name", "NHKニュース")
    assert r.returncode == 2 and "a feed named 'NHKニュース' already exists" in r.stderr
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["http://127.0.0.1:9/feed"], 1, "feedbot: cannot fetch http://127.0.0.1:9/feed: "),
        (["{base}/missing"], 1, "feedbot: cannot fetch {base}/missing: HTTP 404"),
        (["{base}/broken.xml"], 1, "feedbot: {base}/broken.xml is neither a web page nor a feed that parses"),
        (["ftp://example.org/feed"], 2, "feedbot add: the address: not an http(s) URL: 'ftp://example.org/feed'"),
        (["{base}/feed", "--body", "p::before"], 2, "feedbot add: --body: 'p::before' is neither auto, feed, none"),
        (["{base}/feed", "--handle", "a b"], 2, "feedbot add: --handle: "),
        (["{base}/", "--pick", "3"], 2, "feedbot add: --pick 3: there are 2 feed(s) to pick from"),
    ],
)
def test_add_errors_are_one_sentence_and_change_nothing(
    site: Site, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    path = shipped_config(tmp_path)
    before = path.read_bytes()
    r = run_cli("--config", str(path), "add", *(a.format(base=site.base) for a in args))
    assert r.returncode == code, r.stderr
    assert r.stderr.startswith(message.format(base=site.base)), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert path.read_bytes() == before


def test_add_of_a_site_without_any_feed_says_so(tmp_path: Path) -> None:
    path = shipped_config(tmp_path)
    before = path.read_bytes()
    asked: list[str] = []

    def pages_only(req: Request) -> Reply:
        asked.append(req.path)
        return Reply(200, {"Content-Type": "text/html"}, b"<html><head></head><body>just a page</body></html>")

    with Server(pages_only) as server:
        r = run_cli("--config", str(path), "add", server.base + "/news/")
    assert r.returncode == 1
    assert r.stderr.strip() == (
        f'feedbot: no feed found at {server.base}/news/: the page links to none (<link rel="alternate">)'
        " and none of /feed, /rss, /index.rdf, /atom.xml, /feed.xml, /rss.xml, /index.xml, /feed/, /rss/ is a feed"
    )
    assert asked == ["/news/", "/feed", "/rss", "/index.rdf", "/atom.xml", "/feed.xml", "/rss.xml", "/index.xml",
                     "/feed/", "/rss/"]  # fmt: skip
    assert path.read_bytes() == before


def test_add_refuses_to_edit_an_invalid_config(site: Site, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('timezone = "Mars/Base"\n', encoding="utf-8")
    r = run_cli("--config", str(path), "add", site.base + "/feed")
    assert r.returncode == 2 and "timezone: 'Mars/Base' is not an IANA time zone" in r.stderr
    assert site.hits == []  # nothing fetched for a config that cannot take the feed


def test_a_running_service_polls_a_feed_added_by_add_within_seconds(site: Site, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        f'# my feeds\ntimezone = "Asia/Tokyo"\n\n[schedule]\npoll_every = "1h"\n\n'
        f'[[feeds]]\nname = "one"\nurl = "{site.base}/feed"\nbody = "none"\n',
        encoding="utf-8",
    )
    polled = site.wanted.setdefault("/other.xml", threading.Event())
    proc = spawn_run(path)
    try:
        first = site.wanted.setdefault("/feed", threading.Event())
        assert first.wait(60), "the service did not start polling"
        # add's own fetches do not count: as many as a dry run makes.  (The
        # service may poll the feed before add has even exited.)
        assert run_cli("--config", str(path), "add", site.base + "/other.xml", "--dry-run").returncode == 0
        by_add = site.hits.count("/other.xml")
        r = run_cli("--config", str(path), "add", site.base + "/other.xml", "--body", "none")
        assert r.returncode == 0, r.stderr
        added_at = time.monotonic()
        while site.hits.count("/other.xml") < 2 * by_add + 1:
            polled.clear()
            if site.hits.count("/other.xml") >= 2 * by_add + 1:
                break
            assert polled.wait(30), "the added feed was not polled"
        assert time.monotonic() - added_at < 15
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    assert "config reloaded (the file changed): added 別の新聞" in err


# -- remove and list ----------------------------------------------------------


def test_remove_takes_only_the_tables_own_lines(tmp_path: Path) -> None:
    path = shipped_config(tmp_path)
    original = path.read_text(encoding="utf-8")
    r = run_cli("--config", str(path), "remove", "毎日新聞")
    assert r.returncode == 0, r.stderr
    text = path.read_text(encoding="utf-8")
    start = original.index('[[feeds]]\nname = "毎日新聞"')
    end = original.index('poll_every = "10m"\n', start) + len('poll_every = "10m"\n')
    assert text == original[: start - 1] + original[end:]
    assert [f.name for f in load_config(path).feeds] == [
        "NHKニュース", "NHKニュース(主要)", "朝日新聞", "BBCニュース", "AFPBB News",
    ]  # fmt: skip

    # The last feed: the comments after it (an example, the next banner) stay.
    r = run_cli("--config", str(path), "remove", "http://feeds.afpbb.com/rss/afpbb/afpbbnews")
    assert r.returncode == 0, r.stderr
    after = path.read_text(encoding="utf-8")
    assert "AFPBB" not in after and "# A social account whose posts have no title" in after
    assert "# -- Topics ----" in after
    r = run_cli("--config", str(path), "remove", "nope")
    assert r.returncode == 2 and r.stderr.startswith("feedbot remove: no feed named 'nope' or with that URL")


def test_add_then_remove_gives_back_the_file_byte_for_byte(site: Site, tmp_path: Path) -> None:
    path = shipped_config(tmp_path)
    original = path.read_bytes()
    assert run_cli("--config", str(path), "add", site.base + "/other.xml").returncode == 0
    assert run_cli("--config", str(path), "add", site.base + "/feed", "--name", "二つ目").returncode == 0
    assert run_cli("--config", str(path), "remove", "別の新聞").returncode == 0
    assert run_cli("--config", str(path), "remove", "二つ目").returncode == 0
    assert path.read_bytes() == original


def test_list_shows_each_feed_on_one_line_with_its_state(site: Site, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[[feeds]]\nname = "ok feed"\nurl = "{site.base}/feed"\nbody = "none"\n\n'
        f'[[feeds]]\nname = "壊れた"\nurl = "{site.base}/missing"\n\n'
        f'[[feeds]]\nname = "off"\nurl = "{site.base}/other.xml"\nenabled = false\n',
        encoding="utf-8",
    )
    assert run_cli("--config", str(path), "poll").returncode == 1  # one feed fails
    r = run_cli("--config", str(path), "list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("ok feed  ok, polled ") and lines[0].endswith(f"{site.base}/feed")
    assert "3 item(s) taken" in lines[0] or "item(s) taken" in lines[0]
    assert lines[1].startswith("壊れた   FAILING since ") and "HTTP 404" in lines[1]  # 壊れた is 6 columns wide
    assert lines[2].startswith("off      disabled  ")


# -- the config file edits (pure) ---------------------------------------------


def test_edits_keep_comments_order_and_format(tmp_path: Path) -> None:
    text = (
        "# top comment\n"
        "timezone = 'Asia/Tokyo'   # aligned comment\n\n"
        "[[feeds]]  # first\n"
        "name = 'a'\n"
        "url   =   'https://a.example/feed'\n"
        "# enabled = false\n\n"
        "# about topics\n"
        "[[topics]]\ntag = 't'\nmatch = ['x']\n"
    )
    f = ConfigFile(tmp_path / "c.toml", text)
    f.add_feeds([NewFeed("b", 'https://b.example/"x"', body="none", comments=("from x.opml, folder 技術",))])
    assert f.text == text.replace(
        "# enabled = false\n\n",
        '# enabled = false\n\n[[feeds]]\n# from x.opml, folder 技術\nname = "b"\n'
        'url = "https://b.example/\\"x\\""\nbody = "none"\n\n',
    )
    f.remove_feed("a")
    assert f.text == (
        "# top comment\ntimezone = 'Asia/Tokyo'   # aligned comment\n\n"
        '[[feeds]]\n# from x.opml, folder 技術\nname = "b"\nurl = "https://b.example/\\"x\\""\nbody = "none"\n\n'
        "# about topics\n[[topics]]\ntag = 't'\nmatch = ['x']\n"
    )


def test_first_feed_in_a_file_without_feeds_and_inline_arrays_refused(tmp_path: Path) -> None:
    f = ConfigFile(tmp_path / "c.toml", "timezone = 'UTC'")
    f.add_feeds([NewFeed("a", "https://a.example/")])
    assert f.text == 'timezone = \'UTC\'\n\n[[feeds]]\nname = "a"\nurl = "https://a.example/"\n'
    assert [x.name for x in f.validate({}).feeds] == ["a"]
    inline = ConfigFile(tmp_path / "c.toml", "feeds = [{name = 'a', url = 'https://a.example/'}]\n")
    with pytest.raises(ConfigError, match="not written as \\[\\[feeds\\]\\] tables"):
        inline.add_feeds([NewFeed("b", "https://b.example/")])


def test_two_editors_at_once_both_land(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("# feeds\n", encoding="utf-8")
    second_done = threading.Event()

    def second() -> None:
        with locked(path) as f:  # waits for the first editor, then reads its file
            f.add_feeds([NewFeed("b", "https://b.example/")])
            write(f)
        second_done.set()

    with locked(path) as first:
        thread = threading.Thread(target=second)
        thread.start()
        assert not second_done.wait(0.2)  # held back by the lock
        first.add_feeds([NewFeed("a", "https://a.example/")])
        write(first)
    thread.join(30)
    assert [f.name for f in load_config(path).feeds] == ["a", "b"]
    assert (tmp_path / "config.toml.bak").read_text(encoding="utf-8").count("[[feeds]]") == 1


def test_same_feed_url_ignores_scheme_case_port_and_tracking() -> None:
    a = same_feed_url("http://Example.ORG:80/rss?utm_source=x")
    assert a == same_feed_url("https://example.org/rss") != same_feed_url("https://example.org/rss2")


# -- discovery (pure) -----------------------------------------------------------


def test_alternate_links_in_page_order_resolved_against_base() -> None:
    page = b"""<html><head><base href="https://cdn.example.jp/news/">
    <link rel="alternate" type="application/rss+xml" href="rss/top.xml" title=" Top  stories ">
    <link rel="Alternate Feed" type="application/atom+xml; charset=utf-8" href="//example.jp/atom.xml">
    <link rel="alternate" type="application/feed+json" href="/feed.json">
    <link rel="alternate" type="text/html" href="/en/">
    <link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">
    <link rel="alternate" type="application/rss+xml" href="rss/top.xml">
    </head><body></body></html>"""
    assert alternate_links(page, "https://example.jp/a/b.html") == [
        ("https://cdn.example.jp/news/rss/top.xml", "Top stories"),
        ("https://example.jp/atom.xml", ""),
        ("https://cdn.example.jp/feed.json", ""),
    ]
    assert well_known_urls("https://example.jp/a/b.html")[:3] == [
        "https://example.jp/feed",
        "https://example.jp/rss",
        "https://example.jp/index.rdf",
    ]


# -- OPML ------------------------------------------------------------------------


def _opml_dir() -> Path:
    base = Path(os.environ.get("FEEDBOT_CORPUS") or REPO.parent / "shared" / "corpus")
    folder = base / "opml"
    if not folder.is_dir():
        pytest.skip(f"OPML corpus not found at {folder} (set FEEDBOT_CORPUS)")
    return folder


def _sources() -> list[dict[str, object]]:
    base = Path(os.environ.get("FEEDBOT_CORPUS") or REPO.parent / "shared" / "corpus")
    path = base / "opml" / "SOURCES.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []


# What a strict parser cannot tell for the files that are not well-formed XML:
# the feeds a reader recovers from each (listparser's own "Eval:" lines and
# node-opmlparser's test say the same) and why.
NOT_WELL_FORMED = {
    "kurtmckee_listparser_bad_bytes-00ff.xml": 0,  # no outline at all
    "kurtmckee_listparser_concatenated-documents.xml": 2,  # both documents' outlines
    "kurtmckee_listparser_end-element-missing.xml": 1,
    "kurtmckee_listparser_html-entity-attribute.xml": 2,  # &aelig; in an attribute
    "danmactough_node-opmlparser_malformed.opml": 15,  # its test: every outline recovered
    # The "Signal v. Noise" outline holds raw <a href="..."> in an attribute:
    # its xmlUrl is past the quote that ends the attribute; no parser reaches it.
    "spacecowboy_feeder_programming.opml": 49,
}


def _expected(path: Path) -> tuple[int, int]:
    """(feed addresses, pseudo-addresses) by a strict reading independent of
    the importer: distinct http(s) xmlUrl values (any capitalisation; spaces
    percent-encoded), and the rest."""
    data = path.read_bytes()
    if path.name == "rssbandit_rssbandit_dotnet-junkies.opml":
        data = data.replace(b'encoding="utf-16"', b'encoding="us-ascii"')  # ASCII bytes, utf-16 label
    data = re.sub(rb"""encoding=(['"])utf8\1""", b'encoding="utf-8"', data)
    root = ET.fromstring(data)
    good: set[str] = set()
    bad: set[str] = set()
    for outline in root.iter("outline"):
        url = next((v.strip() for k, v in outline.attrib.items() if k.lower() == "xmlurl"), "")
        if not url:
            continue
        url = url.replace(" ", "%20")
        (good if re.match(r"https?://[^/\s]+", url, re.IGNORECASE) else bad).add(url)
    return len({same_feed_url(u) for u in good}), len(bad)


@pytest.mark.parametrize("name", [str(s["file"]) for s in _sources()] or ["(no corpus)"])
def test_every_real_opml_file_imports_with_its_feeds(name: str) -> None:
    path = _opml_dir() / name
    opml = read_opml(path.read_bytes())
    plan = plan_import(opml, [], name)
    source = next(s for s in _sources() if s["file"] == name)
    if name in NOT_WELL_FORMED:
        assert opml.problem is not None and "not well-formed" in opml.problem  # and the user is told
        assert len(plan.add) == NOT_WELL_FORMED[name]
        return
    feeds, pseudo = _expected(path)
    assert len(plan.add) == feeds
    assert len(plan.rejected) == pseudo  # vfolder, exec:, newsletter:, hhttps://, relative paths: reported
    assert len(plan.add) + len(plan.duplicates) + len(plan.rejected) <= int(str(source["outlines"])) or (
        name == "kurtmckee_listparser_outline_xmlurl-miscapitalized.xml"  # counted as 0: its xmlURL is capitalised
    )
    assert len({f.name for f in plan.add}) == len(plan.add)  # names unique
    # The edit itself validates: every table a valid [[feeds]] table.
    f = ConfigFile(Path("/nonexistent/config.toml"), 'timezone = "UTC"\n')
    f.add_feeds(plan.add)
    assert len(f.validate({}).feeds) == feeds


def test_opml_import_keeps_the_config_and_reports_duplicates_and_folders(tmp_path: Path) -> None:
    path = shipped_config(tmp_path)
    original = path.read_text(encoding="utf-8")
    opml = tmp_path / "mine.opml"
    opml.write_bytes(
        '\ufeff<?xml version="1.0" encoding="utf-8"?><opml version="2.0"><head><title>購読</title></head><body>'
        '<outline text="ニュース"><outline text="NHK" type="rss" xmlUrl="http://news.web.nhk/n-data/conf/na/rss/cat6.xml"/>'
        '<outline text="時事" type="rss" xmlUrl="https://www.jiji.com/rss/ranking.rdf"/>'
        '<outline text="国際"><outline text="時事" xmlUrl="https://www.jiji.com/rss/ranking.rdf"/></outline></outline>'
        '<outline text="unread" xmlUrl="vfolder"/>'
        '<outline title="毎日新聞" xmlUrl="https://example.jp/mainichi.rdf"/></body></opml>'.encode()
    )
    r = run_cli("--config", str(path), "opml", "import", str(opml), "--body", "none")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "mine.opml (購読): 4 feed outline(s)" in out
    assert "2 to add (1 renamed to keep names unique)" in out
    assert "1 skipped, already configured:" in out and "already configured as 'NHKニュース'" in out
    assert "1 skipped, not feed addresses:" in out and "vfolder" in out
    assert "ニュース (1)" in out and "ニュース / 国際 (1)" in out
    config = load_config(path)
    assert [(f.name, f.url, f.body) for f in config.feeds[-2:]] == [
        ("時事", "https://www.jiji.com/rss/ranking.rdf", "none"),
        ("毎日新聞 (2)", "https://example.jp/mainichi.rdf", "none"),
    ]
    text = path.read_text(encoding="utf-8")
    first = text.index("[[feeds]]\n# from mine.opml")
    last_end = text.index('body = "none"\n', text.index('name = "毎日新聞 (2)"')) + len('body = "none"\n')
    assert text[: first - 1] + text[last_end:] == original
    # The folders are tags now (an older import noted them in the comment).
    assert '# from mine.opml\nname = "時事"\nurl = "https://www.jiji.com/rss/ranking.rdf"\nbody = "none"\n' in text
    assert 'tags = ["ニュース", "ニュース / 国際"]\n' in text
    assert [f.tags for f in config.feeds[-2:]] == [("ニュース", "ニュース / 国際"), ()]


def test_opml_export_then_import_gives_the_same_feeds(tmp_path: Path) -> None:
    path = shipped_config(tmp_path)
    exported = tmp_path / "feeds.opml"
    r = run_cli("--config", str(path), "opml", "export", str(exported))
    assert r.returncode == 0, r.stderr
    empty = tmp_path / "empty" / "config.toml"
    empty.parent.mkdir()
    empty.write_text("# nothing yet\n", encoding="utf-8")
    r = run_cli("--config", str(empty), "opml", "import", str(exported))
    assert r.returncode == 0, r.stderr
    assert [(f.name, f.url) for f in load_config(empty).feeds] == [(f.name, f.url) for f in load_config(path).feeds]
    r = run_cli("--config", str(path), "opml", "export")  # to stdout
    assert r.returncode == 0 and r.stdout.startswith("<?xml") and "NHKニュース" in r.stdout


def test_opml_that_is_not_a_subscription_list_is_one_sentence(tmp_path: Path) -> None:
    path = shipped_config(tmp_path)
    before = path.read_bytes()
    bad = tmp_path / "x.opml"
    bad.write_bytes(b"<html><body>not opml</body></html>")
    r = run_cli("--config", str(path), "opml", "import", str(bad))
    assert r.returncode == 1
    assert r.stderr.strip() == "feedbot: not an OPML subscription list (no <opml> element with feed outlines)"
    r = run_cli("--config", str(path), "opml", "import", str(tmp_path / "missing.opml"))
    assert r.returncode == 2 and "cannot be read (No such file or directory)" in r.stderr
    assert path.read_bytes() == before


def test_opml_entities_are_not_expanded() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">'
        b'<!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
        b'<opml version="2.0"><body><outline text="&d;&d;&d;&d;" xmlUrl="https://example.org/feed"/></body></opml>'
    )
    opml = read_opml(bomb)
    assert [o.url for o in opml.outlines] == ["https://example.org/feed"]
    assert len(opml.outlines[0].title) < 10_000


def test_export_is_opml_2_with_escaped_names() -> None:
    from bot.config import Feed

    data = export([Feed(name='A & <B> "C"', url="https://example.org/a?x=1&y=2")])
    root = ET.fromstring(data)
    assert root.get("version") == "2.0"
    outline = root.find("body/outline")
    assert outline is not None and outline.get("text") == 'A & <B> "C"'
    assert outline.get("xmlUrl") == "https://example.org/a?x=1&y=2"


# -- enable / disable (issue 25) -------------------------------------------------


def test_disable_then_enable_gives_back_the_file_byte_for_byte(tmp_path: Path) -> None:
    path = shipped_config(tmp_path)
    original = path.read_text(encoding="utf-8")
    r = run_cli("--config", str(path), "disable", "毎日新聞")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("disabled feed '毎日新聞' in ") and "no longer polled" in r.stdout
    text = path.read_text(encoding="utf-8")
    assert (tmp_path / "config.toml.bak").read_text(encoding="utf-8") == original
    # One line more, after the table's last key line; every other byte kept.
    assert text.replace('poll_every = "10m"\nenabled = false\n', 'poll_every = "10m"\n', 1) == original
    assert not next(f for f in load_config(path).feeds if f.name == "毎日新聞").enabled
    r = run_cli("--config", str(path), "disable", "毎日新聞")
    assert r.returncode == 0 and "is already disabled" in r.stdout
    r = run_cli("--config", str(path), "enable", "https://mainichi.jp/rss/etc/mainichi-flash.rss")  # by URL
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("enabled feed '毎日新聞' in ")
    assert path.read_text(encoding="utf-8") == original


def test_enable_keeps_a_comment_on_the_enabled_line_and_dry_run_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    original = (
        "# feeds\n[[feeds]]\nname = 'a'\nurl = 'https://a.example/feed'\n"
        "enabled = false   # 503 since May\n# body = 'none'\n\n# the end\n"
    )
    path.write_text(original, encoding="utf-8")
    r = run_cli("--config", str(path), "enable", "a", "--dry-run")
    assert r.returncode == 0 and "dry run" in r.stdout and "would be enabled" in r.stdout
    assert path.read_text(encoding="utf-8") == original
    assert run_cli("--config", str(path), "enable", "a").returncode == 0
    assert path.read_text(encoding="utf-8") == original.replace("enabled = false", "enabled = true")
    assert run_cli("--config", str(path), "disable", "a").returncode == 0
    assert path.read_text(encoding="utf-8") == original


def test_enable_of_an_unknown_feed_suggests_close_names(tmp_path: Path) -> None:
    path = shipped_config(tmp_path)
    before = path.read_bytes()
    r = run_cli("--config", str(path), "disable", "bbc ニュース")
    assert r.returncode == 2
    assert r.stderr.strip() == (
        "feedbot disable: no feed named 'bbc ニュース' or with that URL (did you mean 'BBCニュース'?)"
    )
    r = run_cli("--config", str(path), "enable", "zzz")
    assert r.returncode == 2 and "(feeds: 'NHKニュース', 'NHKニュース(主要)', " in r.stderr  # nothing close
    assert path.read_bytes() == before


def test_set_enabled_falls_back_to_tomlkit_for_a_header_inside_a_string() -> None:
    text = (
        '[[feeds]]\nname = "a"\nurl = "https://a.example/feed"\n'
        'headline = """{title}\n[[feeds]]\n"""\n\n[[feeds]]\nname = "b"\nurl = "https://b.example/feed"\n'
    )
    file = ConfigFile(Path("config.toml"), text)
    assert file.set_enabled("b", False)
    assert [f.enabled for f in file.validate().feeds] == [True, False]
    assert file.text.startswith(text)


# -- pending (issue 25) -----------------------------------------------------------


def test_pending_lists_the_items_of_the_next_digest_by_feed(site: Site, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        'timezone = "Asia/Tokyo"\n[poll]\nfirst_poll = "all"\nmax_age = "none"\nallow_private_addresses = true\n'
        "[digest]\nmax_items_per_feed = 2\n\n"
        f'[[feeds]]\nname = "一つ目"\nurl = "{site.base}/feed"\nbody = "none"\n\n'
        f'[[feeds]]\nname = "二つ目"\nurl = "{site.base}/comments.atom"\nbody = "none"\n',
        encoding="utf-8",
    )
    r = run_cli("--config", str(path), "pending")
    assert r.returncode == 1 and "no state at" in r.stderr  # nothing polled yet, and no state made by asking
    assert run_cli("--config", str(path), "poll").returncode == 0
    assert run_cli("--config", str(path), "disable", "二つ目").returncode == 0
    r = run_cli("--config", str(path), "pending")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "4 item(s) from 2 feed(s) wait for the next digest:"
    assert lines[2] == "一つ目 (3; 1 wait for the digest after: digest.max_items_per_feed is 2):"
    assert re.fullmatch(r"  \d{4}-\d\d-\d\d \d\d:\d\d JST  プーチン大統領 トランプ氏と電話会談", lines[3])
    assert lines[4] == f"      {site.base}/a/1"
    assert lines[7].endswith("  古い記事 (later)")
    assert lines[10:] == ["二つ目 (1; disabled):", lines[11], f"      {site.base}/c/1"]
    assert lines[11].endswith("  a comment")
    before = path.read_bytes()
    digest = run_cli("--config", str(path), "digest", "--dry-run")
    assert digest.returncode == 0 and "トランプ氏と電話会談" in digest.stdout
    # Read only: the dry run and the listing change nothing.
    assert run_cli("--config", str(path), "pending").stdout == r.stdout and path.read_bytes() == before
    assert run_cli("--config", str(path), "digest").returncode == 0  # no webhook: to stdout
    r = run_cli("--config", str(path), "pending")
    assert r.stdout.startswith("1 item(s) from 1 feed(s) wait for the next digest:")  # the one held back
    assert "古い記事" in r.stdout


# -- opml import --dry-run, export with folders and the disabled state (issue 25) -----------


def test_opml_import_dry_run_lists_every_feed_it_would_add_and_skip(tmp_path: Path) -> None:
    path = shipped_config(tmp_path)
    before = path.read_bytes()
    many = "".join(f'<outline text="blog {n}" xmlUrl="https://blog{n}.example/feed"/>' for n in range(12))
    opml = tmp_path / "mine.opml"
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><head><title>購読</title></head><body>'
        '<outline text="ニュース"><outline text="時事" xmlUrl="https://www.jiji.com/rss/ranking.rdf"/>'
        '<outline text="NHK" xmlUrl="http://news.web.nhk/n-data/conf/na/rss/cat6.xml"/></outline>'
        f'<outline text="unread" xmlUrl="vfolder"/>{many}</body></opml>',
        encoding="utf-8",
    )
    r = run_cli("--config", str(path), "opml", "import", str(opml), "--dry-run", "--disabled")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:3] == [
        "mine.opml (購読): 15 feed outline(s)",
        "  13 to add:",
        "    時事 https://www.jiji.com/rss/ranking.rdf (folder ニュース; disabled)",
    ]
    assert "    blog 11 https://blog11.example/feed (disabled)" in lines  # all of them, not ten
    assert not any("… and" in line for line in lines)
    assert "  1 skipped, already configured:" in lines
    assert "    NHK http://news.web.nhk/n-data/conf/na/rss/cat6.xml: already configured as 'NHKニュース'" in lines
    assert "  1 skipped, not feed addresses:" in lines
    assert any(line.startswith("    unread vfolder: not a feed address") for line in lines)
    assert lines[-1] == f"dry run: {path} not changed"
    assert path.read_bytes() == before
    r = run_cli("--config", str(path), "opml", "import", str(opml))  # the import itself sums up
    assert r.returncode == 0 and "  13 to add\n" in r.stdout and "blog 11" not in r.stdout


def test_opml_export_keeps_folders_and_the_disabled_state_through_an_import(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[[feeds]]\n# from subs.opml, folder ニュース ; ニュース / 国際\nname = "時事"\n'
        'url = "https://www.jiji.com/rss/ranking.rdf"\n\n'
        '[[feeds]]\n# added by feedbot add on 2025-01-21\nname = "top"\nurl = "https://top.example/feed"\n'
        "enabled = false\n\n"
        '[[feeds]]\n# from subs.opml, folder ニュース\nname = "off"\nurl = "https://off.example/feed"\n'
        "enabled = false\n",
        encoding="utf-8",
    )
    exported = tmp_path / "feeds.opml"
    r = run_cli("--config", str(path), "opml", "export", str(exported))
    assert r.returncode == 0, r.stderr
    root = ET.fromstring(exported.read_bytes())
    enabled = "{urn:feedbot:opml:1}enabled"
    news = root.find("body/outline[@text='ニュース']")
    assert news is not None and news.get("xmlUrl") is None  # a folder
    assert [o.get("text") for o in news] == ["時事", "国際", "off"]
    assert [o.get("text") for o in news.findall("outline[@text='国際']/outline")] == ["時事"]  # nested: both
    assert news.find("outline[@text='off']").get(enabled) == "false"  # type: ignore[union-attr]
    top = root.find("body/outline[@text='top']")
    assert top is not None and top.get(enabled) == "false" and top.get("xmlUrl") == "https://top.example/feed"
    assert news.find("outline[@text='時事']").get(enabled) is None  # type: ignore[union-attr]

    empty = tmp_path / "empty" / "config.toml"
    empty.parent.mkdir()
    # Addresses taken as they are: no name is looked up (no test touches the internet).
    empty.write_text("# nothing yet\n[poll]\nallow_private_addresses = true\n", encoding="utf-8")
    r = run_cli("--config", str(empty), "opml", "import", str(exported))
    assert r.returncode == 0, r.stderr
    assert "ニュース (2)" in r.stdout and "ニュース / 国際 (1)" in r.stdout

    def feeds(config: Path) -> set[tuple[str, str, bool]]:
        return {(f.name, f.url, f.enabled) for f in load_config(config).feeds}

    assert feeds(empty) == feeds(path)
    # The folders an older import noted in comments come back as tags.
    assert {f.name: f.tags for f in load_config(empty).feeds} == {
        "時事": ("ニュース", "ニュース / 国際"),
        "top": (),
        "off": ("ニュース",),
    }
    again = tmp_path / "again.opml"
    assert run_cli("--config", str(empty), "opml", "export", str(again)).returncode == 0
    third = tmp_path / "third" / "config.toml"
    third.parent.mkdir()
    third.write_text("[poll]\nallow_private_addresses = true\n", encoding="utf-8")
    assert run_cli("--config", str(third), "opml", "import", str(again)).returncode == 0
    assert [(f.name, f.tags, f.enabled) for f in load_config(third).feeds] == [
        (f.name, f.tags, f.enabled) for f in load_config(empty).feeds
    ]
    last = tmp_path / "last.opml"
    assert run_cli("--config", str(third), "opml", "export", str(last)).returncode == 0

    def body(data: bytes) -> bytes:  # the same outlines, in the same folders, the second time
        return data[data.index(b"<body>") :]

    assert body(last.read_bytes()) == body(again.read_bytes())


# -- add: already configured candidates, a typo at the prompt (issue 25) ----------------


def _at_a_terminal(answers: str) -> tuple[int, int]:
    """A pseudo-terminal holding ``answers`` as typed: ``add`` asks only at a
    terminal (a script gives --pick), so the test's standard input is one."""
    import pty

    main, terminal = pty.openpty()
    os.write(main, answers.encode())
    return main, terminal


def test_add_marks_configured_candidates_and_asks_again_on_a_typo(site: Site, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f'[[feeds]]\nname = "国際"\nurl = "{site.base}/rss/world.xml"\n', encoding="utf-8")
    main, terminal = _at_a_terminal("x\n1\n3\n2\n")
    try:
        r = run_cli("--config", str(path), "add", site.base + "/", "--dry-run", stdin=terminal)
    finally:
        os.close(terminal)
        os.close(main)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert f"1. テスト新聞 国際 — {site.base}/rss/world.xml (3 items, " in out
    assert out.splitlines()[1].endswith("[already configured as '国際']")
    assert "[already configured" not in out.splitlines()[2]
    prompt = "pick a feed [1-2, q to give up]: "
    assert out.count(prompt) == 4
    assert "  'x' is not a number from 1 to 2\n" in out
    assert "  1 is already configured as '国際': pick another\n" in out
    assert "  '3' is not a number from 1 to 2\n" in out
    assert f'url = "{site.base}/comments.atom"' in out  # the second, picked at last

    main, terminal = _at_a_terminal("q\n")
    try:
        r = run_cli("--config", str(path), "add", site.base + "/", stdin=terminal)
    finally:
        os.close(terminal)
        os.close(main)
    assert r.returncode == 2 and r.stderr.strip() == "feedbot add: no feed picked: nothing added"
    assert "comments.atom" not in path.read_text(encoding="utf-8")


def test_add_says_when_every_feed_found_is_configured(site: Site, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[[feeds]]\nname = "国際"\nurl = "{site.base}/rss/world.xml"\n\n'
        f'[[feeds]]\nname = "c"\nurl = "{site.base}/comments.atom"\n',
        encoding="utf-8",
    )
    r = run_cli("--config", str(path), "add", site.base + "/")
    assert r.returncode == 2
    assert r.stderr.strip() == "feedbot add: every feed found is already configured (as '国際', 'c'): nothing to add"


# -- list fits the terminal (issue 25) ----------------------------------------------


def test_list_fits_80_and_120_columns_counting_wide_characters_twice(site: Site, tmp_path: Path) -> None:
    from bot.termwidth import width

    long_name = "日本経済新聞 電子版 マーケット総合 速報ニュース一覧"  # 51 columns, 27 characters
    long_path = "/rss/markets/" + "a" * 60 + "/index-of-markets.rdf"
    path = tmp_path / "config.toml"
    path.write_text(
        f'[[feeds]]\nname = "{long_name}"\nurl = "{site.base}{long_path}"\nbody = "none"\n\n'
        f'[[feeds]]\nname = "off"\nurl = "{site.base}/other.xml"\nenabled = false\n',
        encoding="utf-8",
    )
    assert run_cli("--config", str(path), "poll").returncode == 1  # HTTP 404: a long FAILING state
    for columns, name_columns in ((80, 16), (120, 24)):
        r = run_cli("--config", str(path), "list", env={"COLUMNS": str(columns)})
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert len(lines) == 2 and all(width(line) <= columns for line in lines), lines
        first, off = lines
        shown_name = first.split("  ")[0]
        assert shown_name.endswith("…") and long_name.startswith(shown_name[:-1])
        assert width(shown_name) <= name_columns
        assert first[len(shown_name) :].startswith("  FAILING since ")
        # The address cut in its middle: its host and the end of its path stay.
        url = first.split("  ")[-1]
        assert url.endswith("kets.rdf") and "127.0.0.1:" in url and "/…" in url  # the host and the path's end
        assert off == f"{'off':<{width(shown_name)}}  disabled  {site.base}/other.xml"  # short: whole
    r = run_cli("--config", str(path), "list", env={"COLUMNS": ""})  # a pipe, no COLUMNS: whole lines
    assert r.stdout.splitlines()[0].endswith(long_path) and "HTTP 404" in r.stdout
