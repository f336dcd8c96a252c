"""Kill test: `feedbot run` killed with SIGKILL at random moments loses nothing.

    .venv/bin/python -m bench.killtest [--kills 30] [--seed 1]
    .venv/bin/python -m bench.killtest --instances 3 --kills 30   # three on one PostgreSQL

A local feed server makes new items on every poll, a local Discord-style
receiver accepts (and, seeded, sometimes refuses with 500 or delays) the
digests; with ``--kinds discord,telegram,email`` a Telegram Bot API
stand-in and an SMTP server (STARTTLS, AUTH; tests/platforms.py) receive
them too, as flaky.  `feedbot run` (polls and digests every second) is started and
killed with SIGKILL at random moments, ``--kills`` times, then run once more
until everything is delivered and stopped with SIGTERM.  Then:

- every item the server published was taken (in the state database);
- every item taken appears in the messages each destination received,
  exactly once;
- a message delivered twice is one that feedbot reported as in flight at a
  kill (the outbox's ``resent`` count, per destination), and no item is in
  two messages.

With ``--digests 2`` the config has two ``[[digests]]`` tables sharing a
feed (feed0 and feed1; feed1 and feed2), both sent to the Discord-style
receiver (one queue for two digests) and each to one of the other
destinations: an item of the shared feed must reach the receiver once per
digest, and every slot is served by one digest.

With ``--instances N`` (N > 1), N instances share one PostgreSQL server
that the test starts (bot/pgserver.py): each kill hits a random instance,
which is started again; at the end one instance is killed for good and the
others must poll its feeds and send the next digest on time (the seconds
from that kill to the next digest are printed).

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
from tests.platforms import Mailbox, Platform, webhook_toml
from tests.renderers import shown

FEEDS = 3


class Farm:
    """Feeds that grow on every request (until ``stop``), seeded."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.items: dict[int, list[tuple[str, datetime]]] = {n: [] for n in range(FEEDS)}
        self.lock = threading.Lock()
        self.growing = True
        self.polled = threading.Event()  # the first request: the kills begin after it

    def __call__(self, req: Request) -> Reply:
        self.polled.set()
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
            content = shown("discord", json.loads(req.body)["content"])  # what Discord shows of it
            self.accepted.append((req.headers.get("idempotency-key", ""), content))
        return Reply(200, {"Content-Type": "application/json"}, b'{"id": "1"}')


class Flaky:
    """Seeded 500s and delays in front of a platform stand-in."""

    def __init__(self, inner: Platform, rng: random.Random) -> None:
        self.inner, self.rng, self.lock = inner, rng, threading.Lock()

    def __call__(self, req: Request) -> Reply:
        with self.lock:
            roll, delay = self.rng.random(), self.rng.uniform(0, 0.05)
        if roll < 0.1:
            return Reply(500, {"Content-Type": "application/json"}, b'{"ok":false,"error_code":500}')
        time.sleep(delay)
        return self.inner(req)


# --digests 2: each digest's feeds and destinations (the others' names, as
# webhook_toml and Mailbox name them, where those run).
DIGESTS = {
    "first": (("feed0", "feed1"), ("receiver", "telegram")),
    "second": (("feed1", "feed2"), ("receiver", "mail")),
}


def digests_toml(names: set[str]) -> str:
    text = ""
    for name, (feeds, hooks) in DIGESTS.items():
        text += f'[[digests]]\nname = "{name}"\nfeeds = {list(feeds)!r}\n'.replace("'", '"')
        text += f"webhooks = {[h for h in hooks if h in names]!r}\n".replace("'", '"')
    return text


def write_config(folder: Path, feeds: str, hook: str, state_url: str | None = None, extra: str = "") -> Path:
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
    text += extra
    if state_url:
        text += f'[state]\nurl = "{state_url}"\n'
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBOT_")}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "bot", "--config", str(config), "run"], stdout=out, stderr=out, env=env
        )


class State:
    """Read-only questions to the state, in SQLite or PostgreSQL."""

    def __init__(self, db: Path | None = None, url: str | None = None) -> None:
        self.db, self.url = db, url

    def rows(self, sql: str) -> list[tuple[object, ...]]:
        if self.url is not None:
            import psycopg

            with psycopg.connect(self.url, autocommit=True) as conn:
                return list(conn.execute(sql).fetchall())  # type: ignore[arg-type]
        assert self.db is not None
        if not self.db.exists():
            return []
        conn = sqlite3.connect(self.db, timeout=5)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    def one(self, sql: str) -> object:
        rows = self.rows(sql)
        return rows[0][0] if rows else None

    def settled(self, since: float) -> bool:
        """Everything taken is delivered, and every feed was polled after ``since``."""
        try:
            polled = self.one("SELECT MIN(last_poll_at) FROM feeds") or 0
            unbound = self.one("SELECT COUNT(*) FROM items WHERE digest_id IS NULL")
            undelivered = self.one("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL")
            feeds = self.one("SELECT COUNT(*) FROM feeds")
        except Exception:  # not created yet
            return False
        return bool(feeds == FEEDS and int(str(polled)) > since + 1 and unbound == 0 and undelivered == 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-life", type=float, default=2.5, help="longest run before a kill, seconds")
    parser.add_argument("--instances", type=int, default=1, help="instances sharing one PostgreSQL (default 1: SQLite)")
    parser.add_argument("--kinds", default="discord", help="destinations: discord, plus telegram and email")
    parser.add_argument("--digests", type=int, choices=(1, 2), default=1, help="[[digests]] tables (2: see above)")
    args = parser.parse_args(argv)
    kinds = set(args.kinds.split(","))
    rng = random.Random(args.seed)
    farm, hook = Farm(random.Random(args.seed + 1)), Hook(random.Random(args.seed + 2))
    telegram = Platform("telegram")
    refusals = random.Random(args.seed + 3)
    pg = None
    if args.instances > 1:
        from bot.pgserver import PgServer

        pg = PgServer().start()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="feedbot-kill-") as tmp,
            Server(farm) as fs,
            Server(hook) as hs,
            Server(Flaky(telegram, random.Random(args.seed + 4))) as ts,
            Mailbox(Path(tmp)) as mailbox,
        ):
            folder = Path(tmp)
            mailbox.refuse = lambda: "451 4.3.0 Try again later" if refusals.random() < 0.1 else None
            extra = webhook_toml("telegram", ts.base) if "telegram" in kinds else ""
            extra += mailbox.toml() if "email" in kinds else ""
            hooks = (
                {"receiver"}
                | ({"telegram"} if "telegram" in kinds else set())
                | ({"mail"} if "email" in kinds else set())
            )
            extra += digests_toml(hooks) if args.digests == 2 else ""
            url = pg.new_database() if pg else None
            config = write_config(folder, fs.base, hs.base, url, extra)
            state = State(folder / "state" / "feedbot.sqlite3", url)
            log = folder / "feedbot.log"
            procs = [start(config, log) for _ in range(args.instances)]
            # On a loaded machine a start can outlast --max-life: kills that
            # all land before the first poll would prove nothing.
            if not farm.polled.wait(120):
                raise SystemExit("killtest: no feed was polled within 120 s of the start")
            for _ in range(args.kills):
                time.sleep(rng.uniform(0.2, args.max_life))  # a random moment: polling, digesting, or sending
                victim = rng.randrange(len(procs))
                procs[victim].send_signal(signal.SIGKILL)
                procs[victim].wait()
                procs[victim] = start(config, log)
            gone_for_good = None
            if args.instances > 1:
                time.sleep(rng.uniform(0.2, args.max_life))
                dead = procs.pop(rng.randrange(len(procs)))
                dead.send_signal(signal.SIGKILL)
                dead.wait()
                gone_for_good = time.time()
                time.sleep(3)  # the feeds still grow: the others must poll and send them
            with farm.lock:
                farm.growing = False
            stopped_growing = time.time()
            deadline = time.monotonic() + 120
            while not state.settled(stopped_growing) and time.monotonic() < deadline:
                time.sleep(0.2)
            codes = []
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                codes.append(proc.wait(timeout=60))
            code = max(codes)
            taken_in = [(str(r[0]), str(r[1])) for r in state.rows("SELECT title, stream FROM items")]
            taken = {title for title, _ in taken_in}
            built = state.one("SELECT COUNT(*) FROM digests")
            slots = state.one("SELECT COUNT(*) FROM digest_slots WHERE digest_id IS NOT NULL")
            resent = {
                str(w): int(str(n))
                for w, n in state.rows("SELECT webhook, COALESCE(SUM(resent), 0) FROM outbox GROUP BY webhook")
            }
            received = {"name:receiver": hook.accepted}
            if "telegram" in kinds:
                received["name:telegram"] = [(text, text) for text in telegram.texts]  # a copy resent is the same text
            if "email" in kinds:
                received["name:mail"] = [
                    (str(m["Message-ID"]), m.get_body(("plain",)).get_content().replace("\r\n", "\n"))  # type: ignore[union-attr]
                    for m in mailbox.messages
                ]
            after: int | None = None
            if gone_for_good is not None:
                first = state.one(f"SELECT MIN(created_at) FROM digests WHERE created_at >= {int(gone_for_good)}")
                after = None if first is None else max(0, int(str(first)) - int(gone_for_good))
            log_text = log.read_text(encoding="utf-8", errors="replace")
    finally:
        if pg is not None:
            pg.stop()

    published = farm.published()
    lost_feed = published - taken
    on_time = after is None or after <= 15  # a dead instance's feed claims last 10 s here
    where = f"{args.instances} instances on PostgreSQL" if args.instances > 1 else "one instance on SQLite"
    print(f"kills: {args.kills} (seed {args.seed}), {where}; destinations: {', '.join(sorted(kinds))}")
    print(f"items published by the feeds: {len(published)}; taken: {len(taken)}; not taken: {len(lost_feed)}")
    # Each digest built served one slot (digest_every), its own: a slot
    # served twice would be two digests for one slot row.
    print(f"digests built: {built}; slots served with a digest: {slots}")
    ok = not lost_feed and code == 0 and on_time and built == slots
    for webhook, messages in received.items():
        name = webhook.removeprefix("name:")
        # How many times each item must arrive here: once per digest that
        # takes it and is sent here (one digest without --digests).
        expected = Counter(title for title, stream in taken_in if args.digests == 1 or name in DIGESTS[stream][1])
        ok &= judge(name, messages, expected, resent.get(webhook, 0))
    if after is not None:
        print(f"one instance killed for good: the next digest came {after} s later (digest_every 1 s)")
    print(f"tracebacks in the log: {log_text.count('Traceback')}; last run exit code: {code}")
    print(f"killtest: {1 if ok else 0} passed, {0 if ok else 1} failed")
    return 0 if ok else 1


def judge(name: str, messages: list[tuple[str, str]], expected: Counter[str], resent: int) -> bool:
    """One destination: every item taken in its messages exactly as many
    times as digests sent here take it, a message twice only if it was
    reported in flight at a kill."""
    by_key = Counter(key for key, _ in messages)
    duplicate_messages = sum(count - 1 for count in by_key.values())
    first_copy = {key: content for key, content in reversed(messages)}
    counts = Counter(  # headline lines: "<title> <link>"
        line.split(" ")[0]
        for content in first_copy.values()
        for line in content.split("\n")
        if line.startswith("kill-") and " http://127.0.0.1/" in line
    )
    lost = {t for t, n in expected.items() if counts[t] < n}
    twice = {t for t, n in expected.items() if counts[t] > n}
    stray = {t for t in counts if t not in expected}  # an item of a digest not sent here
    print(
        f"{name}: items delivered as often as expected: {len(expected) - len(lost) - len(twice)}"
        f" (of which in two digests: {sum(1 for n in expected.values() if n > 1)}); lost: {len(lost)}; "
        f"in one message too many: {len(twice)}; not meant for it: {len(stray)}; messages accepted: {len(messages)};"
        f" delivered twice: {duplicate_messages}; reported in flight at a kill: {resent}"
    )
    return not lost and not twice and not stray and duplicate_messages <= resent


if __name__ == "__main__":
    sys.exit(main())
