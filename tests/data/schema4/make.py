"""How state.sql and postgres.sql were made: a real state of schema 4 (the
schema until issue 26), written by feedbot at commit 5195322 itself.

    git worktree add /tmp/old 5195322
    cd /tmp/old && PYTHONPATH=/tmp/old python <this file> <out dir>

Feed "a" is polled and its digest delivered; feed "b" joins, and its
digest is refused (500: pending in the outbox); one more item of each waits
for the next digest.  The SQLite file is dumped as SQL; the same state copied
to PostgreSQL (``feedbot state copy``) is dumped with pg_dump.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.loopback import Receiver, Server
from bot.pgserver import PgServer
from tests.conftest import DynamicFeeds, FeedItem, run_cli, write_toml


def poll(path: Path) -> None:
    r = run_cli("--config", str(path), "poll")
    assert r.returncode == 0, r.stdout + r.stderr


def main(out: Path) -> None:
    now = datetime.now(UTC) - timedelta(hours=1)
    feeds = DynamicFeeds()
    feeds.feeds["a"] = [FeedItem(f"a{n}", f"ロシア記事{n}", f"/a/{n}", now - timedelta(minutes=n)) for n in range(3)]
    feeds.feeds["b"] = [
        FeedItem(f"b{n}", f"ウクライナ記事{n}", f"/b/{n}", now - timedelta(minutes=n)) for n in range(2)
    ]
    rec = Receiver()
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    with Server(feeds) as feed_server, Server(rec) as hook:
        feeds.base = feed_server.base
        text = (
            'timezone = "Asia/Tokyo"\n[schedule]\ndigest_at = ["07:00"]\n'
            f'[[feeds]]\nname = "A"\nurl = "{feed_server.base}/feed/a"\n[poll]\nfirst_poll = "all"\n'
            f'[[webhooks]]\nkind = "json"\nname = "desk"\nurl = "{hook.base}/hook"\n'
        )
        path = write_toml(work, text)
        poll(path)
        assert run_cli("--config", str(path), "digest").returncode == 0
        text = text.replace("[poll]", f'[[feeds]]\nname = "B"\nurl = "{feed_server.base}/feed/b"\n[poll]')
        path.write_text(text, encoding="utf-8")
        poll(path)
        rec.fail(5, 500)
        assert run_cli("--config", str(path), "digest").returncode == 1
        feeds.feeds["a"].append(FeedItem("a9", "ロシア新記事", "/a/9", now))
        feeds.feeds["b"].append(FeedItem("b9", "ウクライナ新記事", "/b/9", now))
        poll(path)
        state = work / "state" / "feedbot.sqlite3"
        conn = sqlite3.connect(state)
        (out / "state.sql").write_text("\n".join(conn.iterdump()) + "\n", encoding="utf-8")
        conn.close()
        pg = PgServer().start()
        try:
            url = pg.new_database()
            r = run_cli("--config", str(path), "state", "copy", "--to", url)
            assert r.returncode == 0, r.stderr
            dump = subprocess.run(
                [str(pg.bin / "pg_dump"), "--no-owner", "--no-privileges", "--inserts", url],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            # psql's own meta-commands (\restrict) are not SQL: left out.
            dump = "".join(line for line in dump.splitlines(keepends=True) if not line.startswith("\\"))
            (out / "postgres.sql").write_text(dump, encoding="utf-8")
        finally:
            pg.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
