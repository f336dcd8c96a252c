"""Delivery you can trust: flaky receivers, backoff, crashes in flight, secrets, pings.

Real HTTP on 127.0.0.1 and a real SQLite outbox; the clock and the sleeps
are injected, so backoff is asserted, never waited for.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import Config, load_config
from bot.deliver import Deliverer, DeliveryReport
from bot.digest import Digester
from bot.fetch import make_client
from bot.loopback import RESET, Receiver, Server
from bot.state import open_store
from tests.conftest import Clock, run_cli, write_toml
from tests.renderers import shown

T0 = datetime(2025, 1, 21, 0, 0, tzinfo=UTC)


@pytest.fixture
def hooks() -> Iterator[list[tuple[Server, Receiver]]]:
    a, b = Receiver(), Receiver()
    with Server(a) as sa, Server(b) as sb:
        yield [(sa, a), (sb, b)]


def make_config(tmp_path: Path, urls: list[tuple[str, str]], extra: str = "") -> Config:
    text = f'[poll]\ntimeout = "1s"\n{extra}\n'
    for n, (kind, url) in enumerate(urls):
        text += f'[[webhooks]]\nkind = "{kind}"\nname = "hook{n}"\nurl = "{url}"\n'
    return load_config(write_toml(tmp_path, text), {})


def add_items(config: Config, titles: list[str], body: tuple[str, ...] = ("本文です。",)) -> None:
    from bot.keys import entry_keys
    from bot.models import Entry
    from bot.state import NewItem

    store = open_store(config)
    entries = [
        NewItem(Entry(entry_keys("https://f/", t, None, t, None).keys, t, f"https://f/{t}", T0), body) for t in titles
    ]
    store.record_poll("https://f/", "F", T0, etag=None, last_modified=None, take=entries, skip=[])
    store.close()


class Run:
    """A Digester/Deliverer over one store, with a clock and recorded sleeps."""

    def __init__(self, config: Config, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.sleeps: list[float] = []

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def __call__(self, what: str = "digest") -> list[DeliveryReport]:
        async def go() -> list[DeliveryReport]:
            store = open_store(self.config)
            try:
                async with make_client(self.config.poll) as client:
                    deliverer = Deliverer(client, store, self.clock, sleep=self._sleep)
                    digester = Digester(self.config, store, deliverer, self.clock, _Null())
                    if what == "digest":
                        return list((await digester.run(T0.date())).reports)
                    return await digester.redeliver()
            finally:
                store.close()

        return asyncio.run(go())


class _Null:
    def write(self, s: str) -> int:
        return len(s)

    def flush(self) -> None:
        pass


def contents(rec: Receiver) -> list[str]:
    """What Discord shows of the accepted messages."""
    return [shown("discord", r.json()["content"]) for r in rec.accepted]


def test_flaky_receiver_every_failure_then_exactly_one_arrival(
    tmp_path: Path, hooks: list[tuple[Server, Receiver]], clock: Clock
) -> None:
    (server, rec), _ = hooks
    config = make_config(tmp_path, [("discord", server.base + "/api/webhooks/1/tok")])
    add_items(config, ["ロシア外相が会見"])
    release = threading.Event()
    rec.fail(1, 500)
    rec.fail(1, 429, {"Retry-After": "2"})
    rec.fail(1, 429, {"Content-Type": "application/json"}, b'{"message": "rate limited", "retry_after": 1.5}')
    rec.fail(1, RESET)  # connection reset
    rec.stall(1, release, 5)  # no answer within the 1 s timeout
    rec.fail(1, 502)
    run = Run(config, clock)
    try:
        first = run()  # 4 POSTs in one run: 500, 429, 429, reset
        assert (first[0].error or "").startswith("hook0: request failed (")  # the reset, last of four
        assert contents(rec) == []
        assert run.sleeps[1:3] == [2.0, 1.5]  # Retry-After and Discord's retry_after, honoured
        assert 0 < run.sleeps[0] <= 1.0  # backoff with jitter after the 500
        second = run()  # timeout, 502, then accepted
        release.set()
    finally:
        release.set()
    assert second[0].error is None and second[0].sent == 1
    assert len(contents(rec)) == 1 and contents(rec)[0].startswith("ロシア外相が会見 https://f/")
    assert run() == [DeliveryReport("hook0", 0, 0)]  # nothing more to send, nothing sent twice
    assert len(rec.accepted) == 1


def test_queue_in_backoff_waits_and_then_delivers_in_order(
    tmp_path: Path, hooks: list[tuple[Server, Receiver]], clock: Clock
) -> None:
    (down_server, down), (up_server, up) = hooks
    config = make_config(tmp_path, [("discord", down_server.base + "/d"), ("discord", up_server.base + "/u")])
    down.fail(1000, 503)
    run = Run(config, clock)
    for day in range(3):  # down across three digest times
        add_items(config, [f"day{day}"])
        reports = {r.webhook: r for r in run()}
        assert reports["hook1"].error is None  # one outage blocks no other webhook
        assert reports["hook0"].error == "hook0: HTTP 503" and reports["hook0"].retry_at is not None
        clock.advance(hours=12)
    *digests, report = contents(up)
    assert [c.split(" ")[0] for c in digests] == ["day0", "day1", "day2"]
    # Stuck for digest.health_after (a day): the other channel is told.
    assert report.startswith("⚠ feedbot: 1 webhook with undelivered messages")
    assert "- hook0: 2 message(s) waiting: HTTP 503" in report
    down.clear()
    # The service's tick does not retry before the queue's time...
    store = open_store(config)
    (backlog,) = store.backlog()
    store.close()
    assert backlog.pending == 4 and backlog.next_attempt_at is not None  # 3 digests and the report
    clock.now = backlog.next_attempt_at - timedelta(seconds=1)
    assert [r.sent for r in run("tick")] == [0, 0]
    assert contents(down) == []
    # ...and delivers everything, oldest first, once it is.
    clock.now = backlog.next_attempt_at
    assert [r.sent for r in run("tick")] == [4, 0]
    assert [c.split(" ")[0] for c in contents(down)] == ["day0", "day1", "day2", "⚠"]


def test_client_errors_are_held_and_logged_once(
    tmp_path: Path, hooks: list[tuple[Server, Receiver]], clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    (server, rec), _ = hooks
    config = make_config(tmp_path, [("discord", server.base + "/api/webhooks/1/tok")])
    add_items(config, ["a"])
    rec.fail(3, 404, {"Content-Type": "application/json"}, b'{"message": "Unknown Webhook"}')
    run = Run(config, clock)
    with caplog.at_level(logging.WARNING, logger="feedbot.deliver"):
        (first,) = run()
        assert first.error is not None and first.error.startswith("hook0: HTTP 404 (Unknown Webhook) — held")
        assert first.retry_at is not None and first.retry_at - clock.now >= timedelta(hours=6)
        assert run.sleeps == []  # not retried in the loop
        clock.advance(hours=1)
        assert run("tick")[0].sent == 0  # held: the tick does not retry it
        run()  # the next digest time tries again (forced), fails the same way
    assert len([r for r in caplog.records if "Unknown Webhook" in r.getMessage()]) == 1
    assert len(rec.accepted) == 0


def test_a_message_in_flight_at_a_crash_is_sent_again_and_counted(
    tmp_path: Path, hooks: list[tuple[Server, Receiver]], clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    (server, rec), _ = hooks
    config = make_config(tmp_path, [("discord", server.base + "/h")])
    add_items(config, ["a", "b"])
    rec.fail(1000, 500)
    Run(config, clock)()  # builds the digest; the webhook is down
    rec.clear()
    store = open_store(config)
    (msg,) = store.undelivered("name:hook0")
    store.mark_in_flight(msg, clock.now)  # ...a POST starts, and the process dies here
    store.close()
    with caplog.at_level(logging.WARNING, logger="feedbot.deliver"):
        Run(config, clock)()
    assert len(rec.accepted) == 1
    assert any("was being sent when feedbot stopped" in r.getMessage() for r in caplog.records)
    store = open_store(config)
    assert store.resent_count() == 1 and store.pending_count() == 0
    store.close()
    status = run_cli("--config", str(config.path), "status")
    assert "whose answer was lost (each may have arrived twice): 1" in status.stdout, status.stderr


def test_json_webhook_is_structured_keyed_and_signed(
    tmp_path: Path, hooks: list[tuple[Server, Receiver]], clock: Clock
) -> None:
    (server, rec), _ = hooks
    text = f"""
[[webhooks]]
kind = "json"
name = "archive"
url = "{server.base}/ingest"
secret = "${{HOOK_SECRET}}"
"""
    config = load_config(write_toml(tmp_path, text), {"HOOK_SECRET": "s3cr3t-key"})
    add_items(config, ["見出し"], ("一段落目。", "二段落目。"))
    Run(config, clock)()
    (req,) = rec.accepted
    # The verification documented in docs/webhooks.md:
    timestamp = req.headers["x-feedbot-timestamp"]
    expected = hmac.new(b"s3cr3t-key", timestamp.encode() + b"." + req.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(req.headers["x-feedbot-signature"], "sha256=" + expected)
    assert req.headers["idempotency-key"] == "feedbot-1-0"
    data = req.json()
    assert data["schema"] == "feedbot.digest/1" and data["digest_id"] == 1 and data["date"] == "2025-01-21"
    item = data["groups"][0]["items"][0]
    assert item["title"] == "見出し" and item["body"] == ["一段落目。", "二段落目。"]


@pytest.mark.parametrize("kind", ["discord", "slack", "json", "text"])
def test_feed_text_cannot_ping_or_disguise(
    tmp_path: Path, hooks: list[tuple[Server, Receiver]], clock: Clock, kind: str
) -> None:
    (server, rec), _ = hooks
    config = make_config(tmp_path, [(kind, server.base + "/h")])
    hostile = "@everyone @here <@123> <@&456> <#789> <!channel> <!here> <@U123> 🇺🇦 evil\u202egnp.exe\u200b"
    add_items(config, [hostile], ("本文 <https://evil.example|click> &amp;",))
    Run(config, clock)()
    (req,) = rec.accepted
    if kind == "discord":
        payload = req.json()
        assert payload["allowed_mentions"] == {"parse": []}
        for ping in ("@everyone", "@here", "<@123>", "<@&456>", "<#789>"):  # escaped: Discord shows them as text
            assert f"\\{ping}" in payload["content"] or f"\\{ping[0]}{ping[1]}" in payload["content"]
        text = payload["content"]
    elif kind == "slack":
        text = req.json()["text"]
        assert "<" not in text and ">" not in text  # <!channel> and links stay literal
        assert req.json()["unfurl_links"] is False and req.json()["mrkdwn"] is False
    elif kind == "json":
        text = req.json()["text"]
    else:
        text = req.body.decode("utf-8")
    assert "🇺🇦" in text  # emoji and flags are kept
    assert "\u202e" not in text and "\u200b" not in text.replace("@\u200b", "").replace("<\u200b", "")


def test_no_secret_reaches_the_logs(tmp_path: Path, hooks: list[tuple[Server, Receiver]], clock: Clock) -> None:
    """Every log record of a run with failing webhooks, at DEBUG, for every logger."""
    (server, rec), _ = hooks
    token = "T0KEN-abcdef0123456789"
    config = make_config(
        tmp_path,
        [
            ("discord", f"{server.base}/api/webhooks/1/{token}"),
            ("slack", f"http://127.0.0.1:9/services/T0/B0/{token}x"),  # refused
        ],
    )
    add_items(config, ["a"])
    rec.fail(1, 404, {"Content-Type": "application/json"}, json.dumps({"message": f"bad {token}"}).encode())
    records: list[str] = []

    class Grab(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    from bot import logs

    logs.setup(logging.DEBUG)
    root = logging.getLogger()
    grab = Grab()
    grab.setFormatter(logging.Formatter("%(name)s %(message)s"))
    root.addHandler(grab)
    logs.redact(config.secrets())  # as the CLI does, on every handler
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.DEBUG)  # the chattiest, on purpose
    try:
        reports = Run(config, clock)()
        reports += Run(config, clock)()
    finally:
        root.removeHandler(grab)
        logs.setup(logging.WARNING)
    assert records, "nothing was logged"
    assert any("webhook=hook0" in r for r in records)
    assert not [r for r in records if token in r]
    # At the source too: errors, reports and `status` never carry it.
    assert token not in repr(reports)
    store = open_store(config)
    assert token not in repr(store.backlog())
    store.close()
