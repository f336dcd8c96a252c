"""The running service against feeds built to freeze it (issue 13).

``feedbot run`` as a real process under a notify socket, as systemd runs
it, polling a feed that once froze the event loop for minutes (a run of
empty comments before a root the fast-path check then rejected: its regex
backtracked exponentially) and a 9 MB feed of 80,000 entries whose parse
takes seconds.  The service must go on pinging the watchdog on time while
they are parsed (in worker processes now), and stop promptly on SIGTERM in
the middle of it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import pytest

from bench.idle_metrics import PARTIAL, connected, limit_files, scrape
from bot.loopback import Receiver, Reply, Request, Server
from tests.conftest import DynamicFeeds, FeedItem, write_toml
from tests.test_service import NotifyListener, spawn_run

WATCHDOG_SECONDS = 2.0  # the service pings every half of it


def _bomb() -> bytes:
    """367 bytes that cost the old fast-path check minutes."""
    return (
        b'<?xml version="1.0"?>' + b"<!---->" * 28 + b'<rss xmlns:dc="http://purl.org/dc/elements/1.1/" version="2.0">'
        b"<channel><title>bomb</title><item><title>a</title><link>http://127.0.0.1/a</link></item></channel></rss>"
    )


def _big(entries: int = 80_000) -> bytes:
    items = "".join(
        f"<item><title>記事{n}</title><link>http://127.0.0.1/a/{n}</link><guid>g{n}</guid>"
        f"<pubDate>Tue, 21 Jan 2025 0{n % 10}:00:00 GMT</pubDate><description>本文{n}</description></item>"
        for n in range(entries)
    )
    head = "<?xml version='1.0' encoding='UTF-8'?><rss version='2.0'><channel><title>big</title>"
    return f"{head}{items}</channel></rss>".encode()


def test_a_hostile_feed_never_stops_the_watchdog_and_sigterm_is_answered(tmp_path: Path) -> None:
    docs = {"/bomb": _bomb(), "/big": _big()}

    def handler(req: Request) -> Reply:
        return Reply(200, {"Content-Type": "application/rss+xml"}, docs.get(req.path, b""))

    with Server(handler) as server:
        config = write_toml(
            tmp_path,
            f"""
[schedule]
poll_every = "1h"
digest_at = ["03:00"]
[poll]
first_poll = "none"
[[feeds]]
name = "bomb"
url = "{server.base}/bomb"
body = "none"
[[feeds]]
name = "big"
url = "{server.base}/big"
body = "none"
""",
        )
        listener = NotifyListener(tmp_path / "notify.sock")
        proc = spawn_run(config, NOTIFY_SOCKET=listener.path, WATCHDOG_USEC=str(int(WATCHDOG_SECONDS * 1e6)))
        try:
            listener.next("READY")
            pings: list[float] = []
            started = time.monotonic()
            while time.monotonic() - started < 6:  # the first round: both feeds fetched and parsed
                listener.next("WATCHDOG")
                pings.append(time.monotonic())
            proc.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            _out, err = proc.communicate(timeout=30)
            stopped_after = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                proc.kill()
            listener.sock.close()
    gaps = [b - a for a, b in pairwise(pings)]
    assert len(pings) >= 4 and max(gaps) < WATCHDOG_SECONDS, gaps  # systemd would have killed it otherwise
    assert proc.returncode == 0, err
    assert stopped_after < 10  # systemd's TimeoutStopSec is 30 s
    assert "feed=bomb status=ok" in err  # the bomb is an ordinary feed now


# -- issue 24: the metrics endpoint cannot take the service down ------------------------------------

IDLE_CONNECTIONS = 2_000


def _wait(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Wait for ``condition`` on the events that change it (a digest
    received, an answer from the endpoint), for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        threading.Event().wait(0.1)


def test_2000_idle_metrics_connections_stop_no_poll_and_no_digest(tmp_path: Path, feeds: DynamicFeeds) -> None:
    """The service runs with systemd's default soft limit of 1,024 open
    files; 2,000 connections to its metrics endpoint are opened and held,
    each with a request never finished.  The feed's next item is polled, built into a
    digest and delivered while they are held, and the endpoint answers
    scrapes again once its read timeout has closed the idle ones."""
    import resource
    import socket

    from bot.pgserver import free_port

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < IDLE_CONNECTIONS + 200:
        pytest.skip(f"this test holds {IDLE_CONNECTIONS} connections; the hard limit of open files is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, IDLE_CONNECTIONS + 200), hard))
    feeds.feeds["f"] = [FeedItem("g0", "最初の記事", None, datetime.now(UTC))]
    rec = Receiver()
    port = free_port()
    with Server(rec) as hook:
        config = write_toml(
            tmp_path,
            f"""
[metrics]
listen = "127.0.0.1:{port}"
[schedule]
poll_every = "1s"
digest_every = "1s"
[poll]
first_poll = "all"
host_spacing = "0s"
[[feeds]]
name = "f"
url = "{feeds.feed_url("f")}"
body = "feed"
[[webhooks]]
kind = "json"
url = "{hook.base}/hook"
""",
        )
        clean = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBOT_")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "--config", str(config), "run"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=clean,
            preexec_fn=limit_files,
        )
        held: list[socket.socket] = []
        try:
            _wait(lambda: scrape(port) == 200, 60, "the metrics endpoint")
            _wait(lambda: any("最初の記事" in r.body.decode() for r in rec.accepted), 60, "the first digest")
            # Each sends the start of a request and never ends it (a slowloris);
            # one that sent nothing might sit in the kernel's backlog unaccepted.
            for _ in range(IDLE_CONNECTIONS):
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                with contextlib.suppress(OSError):  # answered 503 and closed already: over the cap
                    s.sendall(PARTIAL)
                held.append(s)
            feeds.feeds["f"].append(FeedItem("g1", "接続の嵐の中の記事", None, datetime.now(UTC)))
            _wait(lambda: any("接続の嵐の中の記事" in r.body.decode() for r in rec.accepted), 60, "a digest")
            assert 0 < connected(held) <= 64 + 8  # the cap held: the others were answered 503 and closed
            _wait(lambda: scrape(port) == 200, 60, "a scrape after the idle connections timed out")
        finally:
            for s in held:
                s.close()
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    assert "Too many open files" not in err and "status=error" not in err, err[-3000:]


def test_the_metrics_endpoint_closes_silent_connections_and_turns_away_those_over_its_cap() -> None:
    """In process, with a cap of 2 and half a second to ask: a connection
    that sends nothing, or half a request, is closed; a third one at once
    is answered 503; a scrape after them is answered."""
    import asyncio
    import socket

    from bot import metrics
    from bot.pgserver import free_port

    port = free_port()

    def client() -> tuple[bytes, bytes, bytes, int]:
        silent = socket.create_connection(("127.0.0.1", port), timeout=10)
        half = socket.create_connection(("127.0.0.1", port), timeout=10)
        half.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        over = socket.create_connection(("127.0.0.1", port), timeout=10)
        turned_away = over.recv(1024)
        closed = [silent.recv(1024), half.recv(1024)]  # b"": closed by the server within its read time
        for s in (silent, half, over):
            s.close()
        return turned_away, closed[0], closed[1], scrape(port)

    async def go() -> tuple[bytes, bytes, bytes, int]:
        endpoint = await metrics.serve(("127.0.0.1", port), limit=2, read_seconds=0.5)
        try:
            return await asyncio.to_thread(client)
        finally:
            await endpoint.close()

    turned_away, silent, half, scraped = asyncio.run(go())
    assert turned_away.startswith(b"HTTP/1.1 503 ")
    assert silent == b"" and half == b""
    assert scraped == 200
