"""Article pages from a misbehaving local server: encodings, sizes, redirects, addresses.

Three loopback servers stand for three hosts: the feed on 127.0.0.1, a
"public" news site on 127.0.0.2 (``news.example``) and an intranet on
127.0.0.3 (``intranet.example``).  The page fetcher gets a resolver and an
address classifier that say so: that is the simulated resolution; every
connection really goes to 127.0.0.x.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import Config, load_config
from bot.fetch import PageFetcher, make_client
from bot.loopback import Reply, Request, Server
from bot.poll import Poller
from bot.state import open_store
from tests.conftest import Clock, DynamicFeeds, FeedItem, write_toml

TEXT = "ロシアのプーチン大統領は21日、中国の習近平国家主席とオンラインで首脳会談を行いました。①②"
FEED_SUMMARY = "フィードの要約です。"
AGAIN = "続報です。"  # the second paragraph differs: a paragraph repeated right after itself is dropped


def page(body: str, charset: str = "utf-8", meta: str | None = None) -> bytes:
    head = f"<meta charset='{meta}'>" if meta else ""
    return (
        f"<html><head>{head}</head><body><nav><a href='/'>トップ</a></nav><article><h1>見出し</h1><p>{body}</p>"
        f"<p>{AGAIN}{body}</p></article></body></html>".encode(charset)
    )


def twice(body: str) -> tuple[str, str]:
    """The body of ``page(body)``: its two paragraphs."""
    return (body, AGAIN + body)


class Site:
    """The "public" news site, with every way a page can go wrong."""

    def __init__(self) -> None:
        self.sent: dict[str, int] = {}
        self.stop = threading.Event()
        self.base = ""
        self.internal = ""

    def _count(self, path: str, chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.sent[path] = self.sent.get(path, 0) + len(chunk)
            yield chunk

    def __call__(self, req: Request) -> Reply:
        path = req.path
        html = {"Content-Type": "text/html"}
        if path == "/nocharset":
            return Reply(200, html, page(TEXT, "cp932"))
        if path == "/wrongcharset":
            return Reply(200, {"Content-Type": "text/html; charset=utf-8"}, page(TEXT.replace("①②", ""), "euc_jp"))
        if path == "/cp932":
            return Reply(200, html, page(TEXT, "cp932", meta="Shift_JIS"))
        if path == "/eucjp":
            return Reply(200, {"Content-Type": "text/html; charset=EUC-JP"}, page(TEXT.replace("①②", ""), "euc_jp"))
        if path == "/furigana":
            ruby = "<ruby>首脳<rp>(</rp><rt>しゅのう</rt><rp>)</rp></ruby>会談が行われました。" * 4
            return Reply(200, {"Content-Type": "text/html; charset=utf-8"}, page(ruby))
        if path in ("/huge", "/huge-unannounced"):
            size = 50 * 1024 * 1024
            headers = dict(html, **({"Content-Length": str(size)} if path == "/huge" else {}))
            chunk = b"<p>" + b"x" * (1024 * 1024 - 3)
            return Reply(200, headers, stream=lambda: self._count(path, (chunk for _ in range(50))))
        if path == "/slow":
            return Reply(200, html, stream=lambda: self._count(path, self._trickle()))
        if path.startswith("/chain/"):
            n = int(path.rsplit("/", 1)[1])
            target = f"/chain/{n - 1}" if n > 1 else "/cp932"
            return Reply(302, {"Location": target})
        if path == "/loop":
            return Reply(301, {"Location": "/loop"})
        if path == "/to-internal":
            return Reply(302, {"Location": self.internal + "/secret"})
        if path == "/to-ftp":
            return Reply(302, {"Location": "ftp://news.example/file"})
        if path == "/pdf":
            return Reply(200, {"Content-Type": "application/pdf"}, b"%PDF-1.4 " + b"0" * 1000)
        return Reply(404, {}, b"")

    def _trickle(self) -> Iterator[bytes]:
        yield b"<html><body><p>"
        for _ in range(600):  # at most a minute; the client gives up long before
            if self.stop.wait(0.1):
                return
            yield "遅".encode()


@pytest.fixture
def servers() -> Iterator[tuple[Site, Server, list[Request]]]:
    site = Site()
    internal_hits: list[Request] = []

    def internal(req: Request) -> Reply:
        internal_hits.append(req)
        return Reply(200, {"Content-Type": "text/html"}, page("社外秘の文書です。" * 5))

    with Server(site, "127.0.0.2") as public, Server(internal, "127.0.0.3") as intranet:
        site.base = public.base.replace("127.0.0.2", "news.example")
        site.internal = intranet.base
        yield site, intranet, internal_hits
        site.stop.set()


HOSTS = {"news.example": "127.0.0.2", "intranet.example": "127.0.0.3"}


async def fake_resolve(host: str, port: int) -> list[str]:
    if host in HOSTS:
        return [HOSTS[host]]
    if host.startswith("127."):
        return [host]
    raise OSError(f"unknown host {host}")


def fake_public(address: str) -> bool:
    return address == "127.0.0.2"  # the simulated public internet


PATHS = [
    "/nocharset",
    "/wrongcharset",
    "/cp932",
    "/eucjp",
    "/furigana",
    "/huge",
    "/huge-unannounced",
    "/slow",
    "/chain/3",
    "/chain/7",
    "/loop",
    "/to-internal",
    "/to-ftp",
    "/pdf",
]


def config_for(tmp_path: Path, feeds: DynamicFeeds, allow_private: bool = False) -> Config:
    text = f"""
[poll]
timeout = "1s"
first_poll = "all"
host_spacing = "0s"
allow_private_addresses = {str(allow_private).lower()}
[[feeds]]
name = "site"
url = "{feeds.feed_url("site")}"
"""
    return load_config(write_toml(tmp_path, text), {})


def no_loopback(address: str) -> bool:
    """This simulated world has no loopback: 127.0.0.1 is the feed's intranet host."""
    return False


def run_poll(config: Config, clock: Clock, loopback: Callable[[str], bool] = no_loopback) -> dict[str, tuple[str, ...]]:
    async def go() -> None:
        store = open_store(config)
        try:
            async with make_client(config.poll) as client:
                pages = PageFetcher(config.poll, resolver=fake_resolve, public=fake_public, loopback=loopback)
                async with Poller(config, store, client, clock, pages) as poller:
                    (outcome,) = await poller.poll_all(config.feeds)
                    assert outcome.status == "ok"
                await pages.aclose()
        finally:
            store.close()

    asyncio.run(go())
    store = open_store(config)
    try:
        return {i.title: i.body for i in store.unbound_items()}
    finally:
        store.close()


def test_every_bad_page_ends_in_bounded_time_and_the_item_stays_listed(
    tmp_path: Path, feeds: DynamicFeeds, servers: tuple[Site, Server, list[Request]], clock: Clock
) -> None:
    site, intranet, internal_hits = servers
    links = {p: site.base + p for p in PATHS}
    links["/intranet-link"] = intranet.base.replace("127.0.0.3", "intranet.example") + "/doc"
    feeds.feeds["site"] = [
        FeedItem(f"g{n}", path, link, clock.now - timedelta(hours=1), FEED_SUMMARY)
        for n, (path, link) in enumerate(links.items())
    ]
    started = time.monotonic()
    bodies = run_poll(config_for(tmp_path, feeds), clock)
    elapsed = time.monotonic() - started

    assert set(bodies) == set(links)  # every item is listed, whatever its page did
    clean = TEXT
    assert bodies["/nocharset"] == twice(clean)
    assert bodies["/cp932"] == twice(clean)
    assert bodies["/wrongcharset"] == bodies["/eucjp"] == twice(clean.replace("①②", ""))
    assert bodies["/furigana"] == twice("首脳会談が行われました。" * 4)
    assert bodies["/chain/3"] == twice(clean)  # three redirects are fine
    assert bodies["/pdf"] == ()  # fetched, but not an article: no body
    for failed in (
        "/huge",
        "/huge-unannounced",
        "/slow",
        "/chain/7",
        "/loop",
        "/to-internal",
        "/to-ftp",
        "/intranet-link",
    ):
        assert bodies[failed] == (FEED_SUMMARY,), failed  # the feed's own text instead
    assert internal_hits == []  # the intranet was never reached
    # Bounded: the client stops reading the 50 MB bodies at 5 MB (what the
    # server could write is that plus the kernel's socket buffers), and the
    # slow page is cut at its deadline (2 × the 1 s timeout).
    assert site.sent.get("/huge", 0) < 25 * 1024 * 1024  # refused on its Content-Length
    assert site.sent.get("/huge-unannounced", 0) < 25 * 1024 * 1024
    assert elapsed < 30


def test_failures_are_logged_once_with_a_reason(
    tmp_path: Path,
    feeds: DynamicFeeds,
    servers: tuple[Site, Server, list[Request]],
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    site, _, _ = servers
    paths = ["/to-internal", "/loop", "/huge", "/to-ftp"]
    feeds.feeds["site"] = [FeedItem(p, p, site.base + p, clock.now - timedelta(hours=1), FEED_SUMMARY) for p in paths]
    with caplog.at_level("WARNING", logger="feedbot.poll"):
        run_poll(config_for(tmp_path, feeds), clock)
    lines = [r.getMessage() for r in caplog.records if "article=" in r.getMessage()]
    assert len(lines) == 4
    reasons = " ".join(lines)
    assert "refused: 127.0.0.3 is a non-public address" in reasons
    assert "more than 5 redirects" in reasons
    assert "response too large" in reasons
    assert "not an http(s) URL" in reasons


def test_private_addresses_allowed_by_config(
    tmp_path: Path, feeds: DynamicFeeds, servers: tuple[Site, Server, list[Request]], clock: Clock
) -> None:
    _site, intranet, internal_hits = servers
    link = intranet.base.replace("127.0.0.3", "intranet.example") + "/doc"
    feeds.feeds["site"] = [FeedItem("g", "intranet", link, clock.now, FEED_SUMMARY)]
    bodies = run_poll(config_for(tmp_path, feeds, allow_private=True), clock)
    assert bodies["intranet"] == twice("社外秘の文書です。" * 5)
    assert len(internal_hits) == 1


def test_pages_on_the_feeds_own_host_are_allowed(tmp_path: Path, feeds: DynamicFeeds, clock: Clock) -> None:
    """The feed is on a private (intranet) address; its own article pages are fetched."""
    link = feeds.article("/own", ["自社サイトの記事本文です。" * 3])
    feeds.feeds["site"] = [FeedItem("g", "own", link, clock.now, FEED_SUMMARY)]
    bodies = run_poll(config_for(tmp_path, feeds), clock)
    assert bodies["own"] == ("自社サイトの記事本文です。" * 3,)


def test_a_feed_on_loopback_gets_no_exception_for_its_origin(
    tmp_path: Path, feeds: DynamicFeeds, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A local bridge (RSSHub on localhost) relays links from anywhere: a link
    back to its own origin is refused like any other loopback link."""
    link = feeds.article("/own", ["ブリッジの中の文書です。" * 3])
    feeds.feeds["site"] = [FeedItem("g", "own", link, clock.now, FEED_SUMMARY)]
    from bot.guard import is_loopback

    with caplog.at_level("WARNING", logger="feedbot.poll"):
        bodies = run_poll(config_for(tmp_path, feeds), clock, loopback=is_loopback)
    assert bodies["own"] == (FEED_SUMMARY,)  # the feed's own text, not the page
    assert "refused: 127.0.0.1 is a non-public address" in caplog.text


def test_body_limits(tmp_path: Path, feeds: DynamicFeeds, clock: Clock) -> None:
    from bot.text import limit_body

    assert limit_body(["a" * 50, "b" * 50, "c" * 50], 2, None) == ("a" * 50, "b" * 50 + "…")
    assert limit_body(["a" * 50, "b" * 50], None, 70) == ("a" * 50, "b" * 20 + "…")
    assert limit_body(["a" * 50, "b" * 50], None, 55) == ("a" * 50 + "…",)
    assert limit_body(["a" * 50], 3, 100) == ("a" * 50,)
    link = feeds.article("/long", [f"{n}番目の段落です。" * 4 for n in range(10)])
    feeds.feeds["site"] = [FeedItem("g", "long", link, clock.now, FEED_SUMMARY)]
    text = f"""
[[feeds]]
name = "site"
url = "{feeds.feed_url("site")}"
max_paragraphs = 3
[poll]
first_poll = "all"
"""
    bodies = run_poll(load_config(write_toml(tmp_path, text), {}), clock)
    assert len(bodies["long"]) == 3 and bodies["long"][-1].endswith("…")


def test_one_feeds_slow_pages_do_not_hold_another_feeds_page(tmp_path: Path, feeds: DynamicFeeds, clock: Clock) -> None:
    """Feed A links 24 pages of a host that does not answer (yet); feed B one
    page of another host. B's page is fetched while all of A's wait."""
    release = threading.Event()
    asked = threading.Event()
    slow_hits: list[str] = []

    def slow(req: Request) -> Reply:
        slow_hits.append(req.path)
        asked.set()
        return Reply(
            200, {"Content-Type": "text/html"}, page("遅いサイトの記事本文です。"), before=lambda: release.wait(10)
        )

    def fast(req: Request) -> Reply:
        return Reply(200, {"Content-Type": "text/html"}, page("速いサイトの記事本文です。"))

    with Server(slow, "127.0.0.2") as x, Server(fast, "127.0.0.3") as y:
        feeds.feeds["a"] = [FeedItem(f"a{n}", f"a{n}", f"{x.base}/a{n}", clock.now, FEED_SUMMARY) for n in range(24)]
        feeds.feeds["b"] = [FeedItem("b", "b", y.base + "/b", clock.now, FEED_SUMMARY)]
        text = (
            '[poll]\ntimeout = "5s"\nfirst_poll = "all"\nhost_spacing = "0s"\nallow_private_addresses = true\n'
            f'[[feeds]]\nname = "a"\nurl = "{feeds.feed_url("a")}"\n'
            f'[[feeds]]\nname = "b"\nurl = "{feeds.feed_url("b")}"\n'
        )
        config = load_config(write_toml(tmp_path, text), {})
        store = open_store(config)

        async def go() -> tuple[object, object, int]:
            async with make_client(config.poll) as client, Poller(config, store, client, clock) as poller:
                feed_a, feed_b = config.feeds
                task_a = asyncio.create_task(poller.poll(feed_a))
                assert await asyncio.to_thread(asked.wait, 10)  # A's fetches have started (and queued)
                outcome_b = await asyncio.wait_for(poller.poll(feed_b), 4)  # A's 24 pages are all still waiting
                waiting = len(slow_hits)
                release.set()
                return await task_a, outcome_b, waiting

        try:
            outcome_a, outcome_b, waiting = asyncio.run(go())
            bodies = {i.title: i.body for i in store.unbound_items()}
        finally:
            release.set()
            store.close()
    assert outcome_b.status == "ok" and bodies["b"] == twice("速いサイトの記事本文です。")  # type: ignore[attr-defined]
    assert waiting <= 2  # A asked the slow host for two pages at a time, no more
    assert outcome_a.status == "ok" and bodies["a0"] == twice("遅いサイトの記事本文です。")  # type: ignore[attr-defined]
