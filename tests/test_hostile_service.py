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

import signal
import time
from itertools import pairwise
from pathlib import Path

from bot.loopback import Reply, Request, Server
from tests.conftest import write_toml
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
