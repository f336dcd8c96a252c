"""Feeds from a misbehaving server, and hostile text in feeds.

Every bad answer must end within the configured deadline, in bounded
memory, as an error recorded on its feed, while the good feed beside it is
polled as usual.  Hostile text must come out as one readable, safe line per
paragraph.
"""

from __future__ import annotations

import asyncio
import resource
import threading
import time
import zlib
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from bot.compose import compose
from bot.config import Config, load_config
from bot.fetch import make_client
from bot.kinds import KINDS
from bot.loopback import Reply, Request, Server
from bot.poll import Poller
from bot.state import open_store
from tests.conftest import Clock, DynamicFeeds, FeedItem, write_toml

GOOD = (
    "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>good</title>"
    "<item><title>無事な記事</title><link>http://example.org/ok</link><guid>ok-1</guid>"
    "<pubDate>Tue, 21 Jan 2025 00:00:00 GMT</pubDate></item></channel></rss>"
).encode()
LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">'.encode() for n in range(1, 10)
    )
    + b']><rss version="2.0"><channel><title>&lol9;</title><item><title>&lol9;</title></item></channel></rss>'
)


def _bomb() -> bytes:
    """200 MB of zeros, gzip-compressed (about 200 KB on the wire)."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = b"\0" * (1 << 20)
    return b"".join([*(z.compress(zeros) for _ in range(200)), z.flush()])


BOMB = _bomb()


def gzip_bomb() -> Iterator[bytes]:
    for n in range(0, len(BOMB), 1 << 16):
        yield BOMB[n : n + (1 << 16)]


class Hostile:
    def __init__(self) -> None:
        self.stop = threading.Event()

    def trickle(self) -> Iterator[bytes]:
        yield b"<"
        for _ in range(120):
            if self.stop.wait(1.0):  # one byte a second
                return
            yield b"r"

    def reset(self) -> Iterator[bytes]:
        yield GOOD[:100]
        raise ConnectionResetError("the server drops the connection mid-body")

    def __call__(self, req: Request) -> Reply:
        xml = {"Content-Type": "application/rss+xml"}
        match req.path:
            case "/good":
                return Reply(200, xml, GOOD)
            case "/huge":
                chunk = b"<!-- " + b"x" * (1 << 20) + b" -->"
                return Reply(
                    200, {**xml, "Content-Length": str(100 * len(chunk))}, stream=lambda: (chunk for _ in range(100))
                )
            case "/gzip-bomb":
                return Reply(200, {**xml, "Content-Encoding": "gzip"}, stream=gzip_bomb)
            case "/trickle":
                return Reply(200, xml, stream=self.trickle)
            case "/loop":
                return Reply(302, {"Location": "/loop"})
            case "/to-ftp":
                return Reply(301, {"Location": "ftp://example.org/feed.xml"})
            case "/html":
                return Reply(200, {"Content-Type": "text/html"}, b"<html><body><a href='/'>Home</a></body></html>")
            case "/empty":
                return Reply(200, xml, b"")
            case "/truncated":
                return Reply(200, xml, GOOD[: len(GOOD) // 2 + 40])
            case "/laughs":
                return Reply(200, xml, LAUGHS)
            case "/bad-utf8":
                return Reply(
                    200,
                    {"Content-Type": "application/rss+xml; charset=utf-8"},
                    GOOD.replace("無事".encode(), b"\xff\xfe\xc3"),
                )
            case "/error-page":
                return Reply(
                    200,
                    {"Content-Type": "text/html"},
                    b"<html><head><title>503 Service Unavailable</title></head><body>Try later</body></html>",
                )
            case "/reset":
                return Reply(200, {**xml, "Content-Length": str(len(GOOD))}, stream=self.reset)
        return Reply(404, {}, b"")


PATHS = [
    "/good",
    "/huge",
    "/gzip-bomb",
    "/trickle",
    "/loop",
    "/to-ftp",
    "/html",
    "/empty",
    "/truncated",
    "/laughs",
    "/bad-utf8",
    "/error-page",
    "/reset",
]


def config_for(tmp_path: Path, base: str, paths: list[str]) -> Config:
    text = '[poll]\ntimeout = "3s"\nfirst_poll = "all"\nmax_age = "none"\nhost_spacing = "0s"\n'
    text += "".join(f'[[feeds]]\nname = "{p[1:]}"\nurl = "{base}{p}"\nbody = "feed"\n' for p in paths)
    return load_config(write_toml(tmp_path, text), {})


def test_a_misbehaving_server_ends_in_bounded_time_and_memory(tmp_path: Path, clock: Clock) -> None:
    hostile = Hostile()
    with Server(hostile) as server:
        config = config_for(tmp_path, server.base, PATHS)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

        async def poll() -> dict[str, tuple[str, str | None]]:
            store = open_store(config)
            try:
                async with make_client(config.poll) as client, Poller(config, store, client, clock) as poller:
                    outcomes = await poller.poll_all(config.feeds)
                return {o.feed: (o.status, o.error) for o in outcomes}
            finally:
                store.close()

        started = time.monotonic()
        try:
            results = asyncio.run(poll())
        finally:
            hostile.stop.set()
        elapsed = time.monotonic() - started
        rss_growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    print(f"\nhostile feeds: {elapsed:.1f}s, peak RSS growth {rss_growth_mb:.0f} MB")
    for name, (status, error) in sorted(results.items()):
        print(f"  {name}: {status} {error or ''}")
    assert results["good"] == ("ok", None)  # unaffected by its neighbours
    expected = {
        "huge": "response too large",
        "gzip-bomb": "response too large",
        "trickle": "no complete response within 6s",
        "loop": "more than 5 redirects",
        "to-ftp": "not an http(s) URL",
        "html": "not a feed",
        "empty": "not a feed",
        "error-page": "not a feed",
        "reset": "request failed",
    }
    for name, text in expected.items():
        status, error = results[name]
        assert status == "error" and text in (error or ""), (name, status, error)
    store = open_store(config)
    states = {s.name: s for s in store.all_feed_states().values()}
    store.close()
    assert all(states[n].error_count == 1 and states[n].last_error for n in expected)
    # Survivable damage: what could be read is taken, and the problem recorded
    # as the feed's warning. Expat refuses to expand the billion laughs.
    assert "amplification" in (states["laughs"].last_error or "")
    for name in ("truncated", "bad-utf8", "laughs"):
        assert states[name].last_status in ("ok-with-warning", "error"), (name, states[name].last_status)
    assert elapsed < 20  # the trickle's 6 s deadline (2 × timeout), concurrently with everything else
    assert rss_growth_mb < 100  # neither the 100 MB body nor the 200 MB bomb was held


@pytest.mark.parametrize(
    "title",
    [
        "<script>alert(1)</script><b>太字</b>の見出し",
        "制御\x00文字\x07と\x1bエスケープ",
        "右から左\u202eexe.txt\u202c と \u2066隔離\u2069",
        "ゼロ\u200b幅\u200cの\ufeff文字",
        "絵文字 🇺🇦 👨\u200d👩\u200d👧 ❤\ufe0f は残る",
        "長い" * 50_000,
    ],
)
def test_hostile_titles_and_bodies_render_safely(tmp_path: Path, feeds: DynamicFeeds, clock: Clock, title: str) -> None:
    body = f"<p>{title}</p><p>二行目\n\n改行\r\nを含む</p><p>" + "本文" * 50_000 + "</p>"
    feeds.feeds["f"] = [FeedItem("g1", title, feeds.base + "/a", clock.now - timedelta(hours=1), body)]
    text = f'[poll]\nhost_spacing = "0s"\n[[feeds]]\nname = "f"\nurl = "{feeds.feed_url("f")}"\nbody = "feed"\n'
    config = load_config(write_toml(tmp_path, text), {})

    async def poll() -> None:
        store = open_store(config)
        async with make_client(config.poll) as client, Poller(config, store, client, clock) as poller:
            await poller.poll_all(config.feeds)
        store.close()

    asyncio.run(poll())
    store = open_store(config)
    items = store.unbound_items()
    store.close()
    rendered = compose(config, items, date(2025, 1, 21))
    lines = [line for b in rendered.blocks for line in b.all_lines]
    assert all("\n" not in line and "\r" not in line for line in lines)
    for line in lines:
        assert not any(c in line for c in "\x00\x07\x1b\u202e\u202c\u2066\u2069\u200b\u200c\ufeff"), repr(line[:80])
        assert "<script>" not in line and "<b>" not in line
    if "🇺🇦" in title:
        assert "🇺🇦" in lines[0] and "👨\u200d👩\u200d👧" in lines[0]
    for msg in KINDS["discord"].build(rendered, 1, config.timezone):
        assert len(msg.text.encode("utf-16-le")) // 2 <= 2000
