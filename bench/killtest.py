"""Kill test: `feedbot run` killed with SIGKILL at random moments loses nothing.

    .venv/bin/python -m bench.killtest [--kills 30] [--seed 1]

A local feed server makes new items on every poll, a local Discord-style
receiver accepts (and, seeded, sometimes refuses with 500 or delays) the
digests.  `feedbot run` (polls and digests every second) is started and
killed with SIGKILL at random moments, ``--kills`` times, then run once more
until everything is delivered and stopped with SIGTERM.  Then:

- every item the server published was taken (in the state database);
- every item taken appears in the delivered messages, exactly once;
- a message delivered twice is one that feedbot reported as in flight at a
  kill (the outbox's ``resent`` count), and no item is in two messages.

It prints the counts, and ``killtest: 1 passed, 0 failed`` (or failed) last.
Only 127.0.0.1 is used.  CI runs a short version (``.ci/run``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

from bot.loopback import Reply, Request, Server

FEEDS = 3


class Farm:
    """Feeds that grow on every request (until ``stop``), seeded."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.items: dict[int, list[tuple[str, datetime]]] = {n: [] for n in range(FEEDS)}
        self.lock = threading.Lock()
        self.growing = True

    def __call__(self, req: Request) -> Reply:
        n = int(req.path.rsplit("/", 1)[-1].removesuffix(".xml"))
        with self.lock:
            if self.growing:
                for _ in range(self.rng.randint(0, 2)):
                    self.items[n].append((f"kill-{n}-{len(self.items[n]):04d}", datetime.now(UTC)))
            entries = list(self.items[n])
        parts = [f"<rss version='2.0'><channel><title>feed {n}</title>"]
        for title, when in reversed(entries):
            parts.append(
                f"<item><title>{escape(title)}</title><guid isPermaLink='false'>{title}</guid>"
                f"<link>http://127.0.0.1/{title}</link><pubDate>{format_datetime(when)}</pubDate>"
                f"<description>{escape(title)} の本文です。</description></item>"
            )
        parts.append("</channel></rss>")
        return Reply(200, {"Content-Type": "application/rss+xml; charset=utf-8"}, "".join(parts).encode())

    def published(self) -> set[str]:
        with self.lock:
            return {t for entries in self.items.values() for t, _ in entries}


class Hook:
    """Discord-like: records accepted messages; seeded 500s and delays."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.lock = threading.Lock()
        self.accepted: list[tuple[str, str]] = []  # (idempotency key, content)

    def __call__(self, req: Request) -> Reply:
        with self.lock:
            roll = self.rng.random()
            delay = self.rng.uniform(0, 0.05)
        if roll < 0.1:
            return Reply(500, {}, b"try later")
        time.sleep(delay)  # a slow receiver widens the in-flight window: the hard case
        with self.lock:
            self.accepted.append((req.headers.get("idempotency-key", ""), json.loads(req.body)["content"]))
        return Reply(200, {"Content-Type": "application/json"}, b'{"id": "1"}')


def write_config(folder: Path, feeds: str, hook: str) -> Path:
    text = f"""
timezone = "Asia/Tokyo"
[schedule]
poll_every = "1s"
digest_every = "1s"
digest_at = []
[poll]
first_poll = "all"
max_age = "none"
timeout = "2s"
host_spacing = "0s"
[digest]
default_topic = "kill"
[[webhooks]]
kind = "discord"
name = "receiver"
url = "{hook}/api/webhooks/1/token"
"""
    for n in range(FEEDS):
        text += f'[[feeds]]\nname = "feed{n}"\nurl = "{feeds}/feed/{n}.xml"\nbody = "feed"\n'
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBOT_")}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "bot", "--config", str(config), "run"], stdout=out, stderr=out, env=env
        )


def settled(db: Path, since: float) -> bool:
    """Everything taken is delivered, and every feed was polled after ``since``."""
    if not db.exists():
        return False
    conn = sqlite3.connect(db, timeout=5)
    try:
        polled = conn.execute("SELECT MIN(last_poll_at) FROM feeds").fetchone()[0] or 0
        unbound = conn.execute("SELECT COUNT(*) FROM items WHERE digest_id IS NULL").fetchone()[0]
        undelivered = conn.execute("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL").fetchone()[0]
        feeds = conn.execute("SELECT COUNT(*) FROM feeds").fetchone()[0]
    finally:
        conn.close()
    return bool(feeds == FEEDS and polled > since + 1 and unbound == 0 and undelivered == 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-life", type=float, default=2.5, help="longest run before a kill, seconds")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    farm, hook = Farm(random.Random(args.seed + 1)), Hook(random.Random(args.seed + 2))
    with tempfile.TemporaryDirectory(prefix="feedbot-kill-") as tmp, Server(farm) as fs, Server(hook) as hs:
        folder = Path(tmp)
        config = write_config(folder, fs.base, hs.base)
        log = folder / "feedbot.log"
        db = folder / "state" / "feedbot.sqlite3"
        for _ in range(args.kills):
            proc = start(config, log)
            time.sleep(rng.uniform(0.2, args.max_life))  # a random moment: polling, digesting, or sending
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        with farm.lock:
            farm.growing = False
        stopped_growing = time.time()
        proc = start(config, log)
        deadline = time.monotonic() + 120
        while not settled(db, stopped_growing) and time.monotonic() < deadline:
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        conn = sqlite3.connect(db)
        taken = {r[0] for r in conn.execute("SELECT title FROM items")}
        resent = conn.execute("SELECT COALESCE(SUM(resent), 0) FROM outbox").fetchone()[0]
        conn.close()
        log_text = log.read_text(encoding="utf-8", errors="replace")

    published = farm.published()
    messages = hook.accepted
    by_key = Counter(key for key, _ in messages)
    duplicate_messages = sum(count - 1 for count in by_key.values())
    first_copy = {key: content for key, content in reversed(messages)}
    counts = Counter(  # headline lines: "<title> <link>"
        line.split(" ")[0]
        for content in first_copy.values()
        for line in content.split("\n")
        if line.startswith("kill-") and " http://127.0.0.1/" in line
    )
    lost_feed = published - taken
    lost = {t for t in taken if counts[t] == 0}
    twice = {t for t in taken if counts[t] > 1}
    ok = not lost_feed and not lost and not twice and duplicate_messages <= resent and code == 0
    print(f"kills: {args.kills} (seed {args.seed})")
    print(f"items published by the feeds: {len(published)}; taken: {len(taken)}; not taken: {len(lost_feed)}")
    print(
        f"items delivered exactly once: {len(taken) - len(lost) - len(twice)}; lost: {len(lost)}; "
        f"in two messages: {len(twice)}"
    )
    print(
        f"messages accepted: {len(messages)}; delivered twice: {duplicate_messages}; "
        f"reported in flight at a kill: {resent}"
    )
    print(f"tracebacks in the log: {log_text.count('Traceback')}; last run exit code: {code}")
    print(f"killtest: {1 if ok else 0} passed, {0 if ok else 1} failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
