"""Integration: real feed server and webhook receiver on 127.0.0.1, real
databases: every test runs on SQLite and on PostgreSQL (the ``backend``
fixture; part of the state's contract suite).

The pipeline runs in-process so the clock can be injected; the CLI tests
(test_cli.py) run the same paths through subprocesses.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.config import Config, load_config
from bot.deliver import Deliverer
from bot.digest import Digester, DigestResult
from bot.fetch import make_client
from bot.loopback import Receiver, Server
from bot.poll import Poller, PollOutcome
from bot.state import open_store
from tests.conftest import Clock, DynamicFeeds, FeedItem, write_toml
from tests.renderers import shown

pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture
def receiver() -> Iterator[tuple[Server, Receiver]]:
    rec = Receiver()
    with Server(rec) as server:
        yield server, rec


def make_config(tmp_path: Path, feeds: DynamicFeeds, names: list[str], hooks: list[str], extra: str = "") -> Config:
    text = f"""
timezone = "Asia/Tokyo"
[poll]
first_poll = "1d"
max_age = "7d"
timeout = "5s"
host_spacing = "0s"
allow_private_addresses = true  # the article pages are on loopback
{extra}
[digest]
default_topic = "ニュース"
"""
    for name in names:
        text += f'[[feeds]]\nname = "{name}"\nurl = "{feeds.feed_url(name)}"\nbody = "auto"\n'
    for n, hook in enumerate(hooks):
        text += f'[[webhooks]]\nkind = "discord"\nname = "hook{n}"\nurl = "{hook}"\n'
    return load_config(write_toml(tmp_path, text), {})


async def _poll(config: Config, clock: Clock, names: list[str] | None = None) -> list[PollOutcome]:
    store = open_store(config)
    try:
        async with make_client(config.poll) as client:
            feeds = [f for f in config.feeds if names is None or f.name in names]
            async with Poller(config, store, client, clock) as poller:
                return await poller.poll_all(feeds)
    finally:
        store.close()


async def _no_sleep(seconds: float) -> None:
    return None


async def _digest(config: Config, clock: Clock) -> DigestResult:
    store = open_store(config)
    try:
        async with make_client(config.poll) as client:
            deliverer = Deliverer(client, store, clock, sleep=_no_sleep)
            return await Digester(config, store, deliverer, clock, _Sink()).run()
    finally:
        store.close()


class _Sink:
    def __init__(self) -> None:
        self.text = ""

    def write(self, s: str) -> int:
        self.text += s
        return len(s)

    def flush(self) -> None:
        pass


def poll(config: Config, clock: Clock, names: list[str] | None = None) -> list[PollOutcome]:
    return asyncio.run(_poll(config, clock, names))


def digest(config: Config, clock: Clock) -> DigestResult:
    return asyncio.run(_digest(config, clock))


def pending_count(config: Config) -> int:
    store = open_store(config)
    try:
        return store.pending_count()
    finally:
        store.close()


def delivered_text(rec: Receiver) -> str:
    """What Discord shows of the accepted messages."""
    return "\n".join(shown("discord", r.json()["content"]) for r in rec.accepted)


def add(feeds: DynamicFeeds, name: str, n: int, when: datetime, body: str | None = None) -> FeedItem:
    link = feeds.article(f"/{name}/a{n}", [body or f"記事{n}の本文です。" + "詳しい内容がここに続きます。" * 3])
    item = FeedItem(guid=f"{name}-{n}", title=f"{name} 見出し{n}", link=link, published=when)
    feeds.feeds.setdefault(name, []).insert(0, item)
    return item


def test_poll_digest_deliver_then_nothing_new(
    tmp_path: Path, feeds: DynamicFeeds, receiver: tuple[Server, Receiver], clock: Clock
) -> None:
    server, rec = receiver
    for n in range(3):
        add(feeds, "nhk", n, clock.now - timedelta(hours=n + 1))
    config = make_config(tmp_path, feeds, ["nhk"], [server.base + "/hook"])
    (outcome,) = poll(config, clock)
    assert (outcome.status, outcome.new) == ("ok", 3)
    result = digest(config, clock)
    assert result.ok and result.items == 3
    text = delivered_text(rec)
    assert [line for line in text.split("\n") if line.startswith("nhk 見出し")] == [
        f"nhk 見出し{n} {feeds.base}/nhk/a{n}"
        for n in (2, 1, 0)  # oldest first
    ]
    assert "記事0の本文です。" in text and "Copyright" not in text and "Home" not in text
    assert text.endswith("#ニュース(250121)")
    assert all(r.path.endswith("?wait=true") for r in rec.accepted)

    # A second poll takes nothing (304 or all seen) and a second digest sends nothing.
    clock.advance(minutes=15)
    (again,) = poll(config, clock)
    assert again.new == 0 and again.status == "not-modified"
    assert any(r.headers.get("if-none-match") for r in feeds.requests)
    count = len(rec.accepted)
    assert digest(config, clock).items == 0
    assert len(rec.accepted) == count


def test_feed_added_later_respects_first_poll(
    tmp_path: Path, feeds: DynamicFeeds, receiver: tuple[Server, Receiver], clock: Clock
) -> None:
    server, rec = receiver
    add(feeds, "old", 1, clock.now - timedelta(hours=1))
    config = make_config(tmp_path, feeds, ["old"], [server.base + "/hook"])
    poll(config, clock)
    # A new feed with a back catalogue: 2 fresh entries and 20 old ones.
    for n in range(20):
        add(feeds, "new", n, clock.now - timedelta(days=2 + n))
    add(feeds, "new", 100, clock.now - timedelta(hours=3))
    add(feeds, "new", 101, clock.now - timedelta(hours=20))
    config = make_config(tmp_path, feeds, ["old", "new"], [server.base + "/hook"])
    outcomes = {o.feed: o for o in poll(config, clock)}
    assert outcomes["new"].new == 2
    # The old entries were recorded as seen: moving the clock does not bring them back.
    clock.advance(hours=1)
    feeds.feeds["new"].append(FeedItem("new-x", "new x", None, clock.now))  # changes the ETag
    outcomes = {o.feed: o for o in poll(config, clock)}
    assert outcomes["new"].new == 1
    result = digest(config, clock)
    titles = [line for line in delivered_text(rec).split("\n") if line.startswith(("new ", "old "))]
    assert sorted(t.split(" ")[1] for t in titles) == sorted(["見出し1", "見出し100", "見出し101", "x"])
    assert result.items == 4


def test_max_age_never_takes_old_entries(tmp_path: Path, feeds: DynamicFeeds, clock: Clock) -> None:
    add(feeds, "f", 1, clock.now - timedelta(hours=1))
    config = make_config(tmp_path, feeds, ["f"], [])
    poll(config, clock)
    add(feeds, "f", 2, clock.now - timedelta(days=8))  # appears late, already too old
    add(feeds, "f", 3, clock.now - timedelta(days=6))
    (outcome,) = poll(config, clock)
    assert outcome.new == 1


def test_two_feeds_sharing_an_article_yield_one_item(
    tmp_path: Path, feeds: DynamicFeeds, receiver: tuple[Server, Receiver], clock: Clock
) -> None:
    server, rec = receiver
    link = feeds.article("/shared/story", ["共有された記事の本文です。" * 3])
    when = clock.now - timedelta(hours=1)
    feeds.feeds["a"] = [FeedItem(link, "共有記事", link + "?utm_source=rss", when)]
    feeds.feeds["b"] = [FeedItem("tag:b,2025:9", "共有記事(別題)", link.replace("http://", "HTTP://") + "#top", when)]
    config = make_config(tmp_path, feeds, ["a", "b"], [server.base + "/hook"])
    outcomes = poll(config, clock)
    assert sum(o.new for o in outcomes) == 1
    digest(config, clock)
    assert delivered_text(rec).count("共有された記事の本文です。") == 3  # one item, body of 3 sentences


def test_failing_webhook_keeps_items_and_next_digest_delivers_once(
    tmp_path: Path, feeds: DynamicFeeds, receiver: tuple[Server, Receiver], clock: Clock
) -> None:
    server, rec = receiver
    good = Receiver()
    with Server(good) as good_server:
        add(feeds, "f", 1, clock.now - timedelta(hours=1))
        config = make_config(tmp_path, feeds, ["f"], [server.base + "/bad", good_server.base + "/good"])
        poll(config, clock)
        rec.fail(100, 500)
        result = digest(config, clock)
        assert not result.ok
        reports = {r.webhook: r for r in result.reports}
        assert reports["hook0"].error == "hook0: HTTP 500" and reports["hook0"].pending == 1
        assert reports["hook1"].error is None and reports["hook1"].sent == 1  # one outage blocks no other
        assert pending_count(config) == 1

        # The webhook comes back; a new item arrived meanwhile.
        rec.fail(0)
        rec.clear()
        clock.advance(hours=1)
        add(feeds, "f", 2, clock.now - timedelta(minutes=5))
        poll(config, clock)
        result = digest(config, clock)
        assert result.ok and result.items == 1
        bad_text = delivered_text(rec)
        good_text = delivered_text(good)
        for text in (bad_text, good_text):
            assert text.count("f 見出し1") == 1 and text.count("f 見出し2") == 1
        # Delivered in order: the older digest first.
        assert bad_text.index("見出し1") < bad_text.index("見出し2")
        assert pending_count(config) == 0


def test_retry_after_is_honoured_then_delivered(
    tmp_path: Path, feeds: DynamicFeeds, receiver: tuple[Server, Receiver], clock: Clock
) -> None:
    server, rec = receiver
    add(feeds, "f", 1, clock.now - timedelta(hours=1))
    config = make_config(tmp_path, feeds, ["f"], [server.base + "/hook"])
    poll(config, clock)
    rec.fail(1, 429, {"Retry-After": "3", "Content-Type": "application/json"}, b'{"retry_after": 3}')
    waits: list[float] = []

    async def run() -> DigestResult:
        store = open_store(config)
        try:
            async with make_client(config.poll) as client:

                async def sleep(s: float) -> None:
                    waits.append(s)

                return await Digester(config, store, Deliverer(client, store, clock, sleep), clock, _Sink()).run()
        finally:
            store.close()

    assert asyncio.run(run()).ok
    assert waits == [3.0]
    assert len(rec.accepted) == 1


def test_client_error_is_not_retried_and_stays_pending(
    tmp_path: Path, feeds: DynamicFeeds, receiver: tuple[Server, Receiver], clock: Clock
) -> None:
    server, rec = receiver
    add(feeds, "f", 1, clock.now - timedelta(hours=1))
    config = make_config(tmp_path, feeds, ["f"], [server.base + "/api/webhooks/1/SECRET"])
    poll(config, clock)
    rec.fail(1, 404, {"Content-Type": "application/json"}, b'{"message": "Unknown Webhook"}')
    result = digest(config, clock)
    assert (result.reports[0].error or "").startswith("hook0: HTTP 404 (Unknown Webhook) — held: the destination")
    assert "SECRET" not in str(result.reports)
    store = open_store(config)
    (backlog,) = store.backlog()
    assert backlog.pending == 1 and backlog.attempts == 1 and "404" in (backlog.last_error or "")
    store.close()


def test_broken_feed_is_recorded_and_others_go_on(tmp_path: Path, feeds: DynamicFeeds, clock: Clock) -> None:
    add(feeds, "good", 1, clock.now - timedelta(hours=1))
    feeds.pages["/feed/html"] = "<html><body>not a feed</body></html>"
    text = f"""
[poll]
timeout = "5s"
host_spacing = "0s"
[[feeds]]
name = "good"
url = "{feeds.feed_url("good")}"
[[feeds]]
name = "html"
url = "{feeds.base}/feed/html"
[[feeds]]
name = "gone"
url = "{feeds.base}/feed/gone"
[[feeds]]
name = "refused"
url = "http://127.0.0.1:9/feed"
"""
    config = load_config(write_toml(tmp_path, text), {})
    outcomes = {o.feed: o for o in poll(config, clock)}
    assert outcomes["good"].new == 1 and outcomes["good"].status == "ok"
    assert outcomes["html"].status == "error" and "not a feed" in (outcomes["html"].error or "")
    assert outcomes["gone"].error == "HTTP 404 Not Found"
    assert outcomes["refused"].status == "error"
    # A failing feed backs off (never switched off): not polled before its wait is over...
    assert {o.feed: o.status for o in poll(config, clock)}["gone"] == "waiting"
    clock.advance(minutes=15)
    assert {o.feed: o.status for o in poll(config, clock)}["gone"] == "error"
    assert {o.feed: o.status for o in poll(config, clock)}["gone"] == "waiting"
    store = open_store(config)
    state = store.feed_state(f"{feeds.base}/feed/gone")
    assert state.error_count == 2 and state.last_error == "HTTP 404 Not Found" and state.failing_since is not None
    assert state.next_poll_at == clock.now + timedelta(minutes=30)  # the 15 min interval, doubled
    store.close()


def test_restarts_never_lose_or_duplicate_items(
    tmp_path: Path, feeds: DynamicFeeds, receiver: tuple[Server, Receiver], clock: Clock
) -> None:
    """Many poll/digest rounds, each in a fresh process-like state, with outages."""
    server, rec = receiver
    config = make_config(tmp_path, feeds, ["a", "b"], [server.base + "/hook"])
    taken: list[str] = []
    for round_ in range(12):
        for name in ("a", "b"):
            add(feeds, name, round_, clock.now - timedelta(minutes=10))
            taken.append(f"{name} 見出し{round_} ")
        # The same article appears in both feeds every third round.
        if round_ % 3 == 0:
            feeds.feeds["b"].insert(0, feeds.feeds["a"][0])
        poll(config, clock)
        if round_ % 4 == 1:
            rec.fail(10, 503)
        digest(config, clock)
        rec.clear()
        clock.advance(hours=2)
    digest(config, clock)
    text = delivered_text(rec)
    for title in taken:
        assert text.count(title) == 1, title
    assert pending_count(config) == 0


def test_concurrent_digest_runs_deliver_once(
    tmp_path: Path, feeds: DynamicFeeds, receiver: tuple[Server, Receiver], clock: Clock
) -> None:
    """`feedbot digest` by hand while the service delivers: nothing twice."""
    server, rec = receiver
    for n in range(5):
        add(feeds, "f", n, clock.now - timedelta(hours=1))
    config = make_config(tmp_path, feeds, ["f"], [server.base + "/hook"])
    poll(config, clock)

    async def both() -> list[DigestResult]:
        return list(await asyncio.gather(_digest(config, clock), _digest(config, clock)))

    results = asyncio.run(both())
    assert sorted(r.items for r in results) == [0, 5]
    assert len(rec.accepted) == 1
    assert delivered_text(rec).count("f 見出し3") == 1


def test_guidless_entries_sharing_a_link_are_never_taken_twice(
    tmp_path: Path, feeds: DynamicFeeds, clock: Clock
) -> None:
    """An entry first alone, then beside others with the same link or page."""
    home = feeds.base + "/"
    when = clock.now - timedelta(hours=1)
    feeds.feeds["f"] = [FeedItem(None, "A2", home, when), FeedItem(None, "P-b", home + "day.html#b", when)]
    config = make_config(tmp_path, feeds, ["f"], [])
    assert [o.new for o in poll(config, clock)] == [2]
    feeds.feeds["f"] += [FeedItem(None, "A4", home, when), FeedItem(None, "P-c", home + "day.html#c", when)]
    assert [o.new for o in poll(config, clock)] == [2]  # A4 and P-c only
    feeds.feeds["f"] = [FeedItem(None, "A4", home, when), FeedItem(None, "P-c", home + "day.html#c", when)]
    assert [o.new for o in poll(config, clock)] == [0]
    store = open_store(config)
    assert sorted(i.title for i in store.unbound_items()) == ["A2", "A4", "P-b", "P-c"]
    store.close()


def test_scheduled_polls_share_the_concurrency_bound(tmp_path: Path, clock: Clock) -> None:
    """Each feed polled on its own (as the scheduler does) still waits its turn."""
    import threading

    from bot.loopback import Reply, Request

    lock = threading.Condition()
    active = 0
    most = 0

    def slow(req: Request) -> Reply:
        nonlocal active, most
        with lock:
            active += 1
            most = max(most, active)
            lock.notify_all()
            # With no bound a second request arrives while this one waits.
            lock.wait_for(lambda: active >= 2, timeout=0.3)
            active -= 1
        return Reply(200, {"Content-Type": "application/rss+xml"}, b"<rss version='2.0'><channel></channel></rss>")

    with Server(slow) as server:
        text = '[poll]\nconcurrency = 1\nhost_spacing = "0s"\n' + "".join(
            f'[[feeds]]\nname = "s{n}"\nurl = "{server.base}/s{n}"\n' for n in range(3)
        )
        config = load_config(write_toml(tmp_path, text), {})

        async def scheduled() -> None:
            store = open_store(config)
            async with make_client(config.poll) as client, Poller(config, store, client, clock) as poller:
                await asyncio.gather(*(poller.poll(f) for f in config.feeds))
            store.close()

        asyncio.run(scheduled())
    assert most == 1


def _flaky_parse(data: bytes, url: str, headers: dict[str, str] | None = None) -> object:
    from bot.parse import parse_feed

    if url.endswith("/bad"):
        raise RuntimeError("a case nobody foresaw")
    return parse_feed(data, url, headers)


def test_an_unexpected_failure_is_recorded_on_its_feed_and_the_others_go_on(
    tmp_path: Path, feeds: DynamicFeeds, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.parse

    add(feeds, "good", 1, clock.now - timedelta(hours=1))
    add(feeds, "bad", 1, clock.now - timedelta(hours=1))
    # Module-level, so that the worker process can import it by name.
    monkeypatch.setattr(bot.parse, "parse_feed", _flaky_parse)  # bot.poll imports it when it parses
    config = make_config(tmp_path, feeds, ["good", "bad"], [])
    outcomes = {o.feed: o for o in poll(config, clock)}
    assert outcomes["good"].new == 1
    assert outcomes["bad"].error == "unexpected failure: RuntimeError: a case nobody foresaw"
    store = open_store(config)
    assert store.feed_state(feeds.feed_url("bad")).error_count == 1
    store.close()


def test_feed_asking_to_wait_is_respected_and_long_failures_warned_daily(
    tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.loopback import Reply, Request

    answers = {
        "/busy": Reply(429, {"Retry-After": "7200"}, b""),
        "/cached": Reply(
            200,
            {"Content-Type": "application/rss+xml", "Cache-Control": "max-age=5400"},
            b"<rss version='2.0'><channel><ttl>30</ttl></channel></rss>",
        ),
        "/down": Reply(503, {}, b""),
    }

    def site(req: Request) -> Reply:
        return answers[req.path]

    with Server(site) as server:
        text = '[poll]\nhost_spacing = "0s"\n' + "".join(
            f'[[feeds]]\nname = "{p[1:]}"\nurl = "{server.base}{p}"\n' for p in answers
        )
        config = load_config(write_toml(tmp_path, text), {})
        poll(config, clock)
        store = open_store(config)
        busy = store.feed_state(server.base + "/busy")
        cached = store.feed_state(server.base + "/cached")
        store.close()
        assert busy.next_poll_at == clock.now + timedelta(hours=2)
        assert cached.next_poll_at == clock.now + timedelta(minutes=90)  # max-age beats the 30 min ttl
        with caplog.at_level(logging.WARNING, logger="feedbot.poll"):
            for _ in range(40):  # ten days of tries, each when its backoff is over
                clock.advance(hours=6)
                poll(config, clock)
        warnings = [r for r in caplog.records if "has been failing since" in r.getMessage()]
        assert [w.getMessage().split(" ")[0] for w in warnings].count("feed=down") == 10  # once a day, 10 days
