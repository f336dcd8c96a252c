"""The state: bounded by retention, atomic, clear errors when corrupt or
locked.  Tests taking the ``backend`` fixture are the contract suite: they
run on SQLite and on a PostgreSQL server the session starts."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import load_config
from bot.deliver import Deliverer
from bot.digest import Digester
from bot.errors import ConfigError, StateError
from bot.fetch import make_client
from bot.poll import Poller
from bot.state import SQLiteStore, open_store
from tests.conftest import Clock, DynamicFeeds, FeedItem, run_cli, write_toml


class _Null:
    def write(self, s: str) -> int:
        return len(s)

    def flush(self) -> None:
        pass


def test_old_keys_and_sent_digests_are_pruned_and_do_not_come_back(
    tmp_path: Path, feeds: DynamicFeeds, clock: Clock, backend: str
) -> None:
    text = f"""
[poll]
max_age = "7d"
retention = "30d"
host_spacing = "0s"
first_poll = "all"
[[feeds]]
name = "f"
url = "{feeds.feed_url("f")}"
body = "feed"
"""
    config = load_config(write_toml(tmp_path, text), {})

    async def cycle() -> None:
        store = open_store(config)
        async with make_client(config.poll) as client, Poller(config, store, client, clock) as poller:
            await poller.poll_all(config.feeds, force=True)
            await Digester(config, store, Deliverer(client, store, clock), clock, _Null()).run()
        store.close()

    # Day 0: two dated entries and one undated one; all stay in the feed a while.
    feeds.feeds["f"] = [
        FeedItem("old-1", "old 1", None, clock.now - timedelta(hours=1)),
        FeedItem("old-2", "old 2", None, clock.now - timedelta(hours=2)),
        FeedItem("undated", "undated", None, None),
    ]
    asyncio.run(cycle())
    # Day 1: the dated ones leave the feed; the undated one stays in it.
    clock.advance(days=1)
    feeds.feeds["f"] = [FeedItem("undated", "undated", None, None), FeedItem("new", "new", None, clock.now)]
    asyncio.run(cycle())
    store = open_store(config)
    assert store.seen_count() == 4 and store.digest_count() == 2
    store.close()
    # Day 40: past retention.  Keys of entries gone for 30 days are forgotten,
    # the keys of what the feed still lists are kept, and so are the digests'
    # rows only until they are older than the retention too.
    clock.advance(days=39)
    asyncio.run(cycle())
    store = open_store(config)
    assert store.seen_count() == 2  # "undated" and "new": still in the feed
    assert store.digest_count() == 0
    store.close()
    # The old entries reappear (a feed re-publishing its archive): their dates
    # are past max_age, so the max-age guard keeps them out.
    feeds.feeds["f"] += [
        FeedItem("old-1", "old 1", None, clock.now - timedelta(days=40)),
        FeedItem("old-2", "old 2", None, clock.now - timedelta(days=40)),
    ]
    asyncio.run(cycle())
    store = open_store(config)
    assert store.unbound_items() == [] and store.pending_count() == 0
    store.close()


def test_retention_must_exceed_max_age(tmp_path: Path) -> None:
    path = write_toml(tmp_path, '[poll]\nmax_age = "7d"\nretention = "7d"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert info.value.problems == [f"{path}:3: poll.retention: must be longer than poll.max_age (7d)"]
    with pytest.raises(ConfigError) as info:
        load_config(write_toml(tmp_path, '[poll]\nmax_age = "none"\nretention = "30d"\n'), {})
    assert info.value.problems[0].startswith(f'{path}:3: poll.retention: must be "none" when poll.max_age is "none"')
    assert load_config(write_toml(tmp_path, '[poll]\nmax_age = "none"\n'), {}).poll.retention is None
    assert load_config(write_toml(tmp_path, '[poll]\nmax_age = "60d"\n'), {}).poll.retention == timedelta(days=240)


def test_a_corrupt_database_is_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "feedbot.sqlite3").write_bytes(b"this is not a database" * 100)
    path = write_toml(tmp_path, '[[feeds]]\nname = "a"\nurl = "http://127.0.0.1:9/a"\n')
    r = run_cli("--config", str(path), "status")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("feedbot: state database") and "file is not a database" in r.stderr


def test_a_locked_database_is_a_clear_error_and_nothing_is_half_written(tmp_path: Path) -> None:
    store = SQLiteStore.open(tmp_path)
    other = sqlite3.connect(tmp_path / "feedbot.sqlite3", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process holds the database
    try:
        locked = SQLiteStore.open(tmp_path, busy_timeout=0.1)
        with pytest.raises(StateError, match="busy or locked"):
            locked.record_failure("http://f", "f", datetime(2025, 1, 21, tzinfo=UTC), "error", "x")
        locked.close()
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert store.feed_state("http://f").error_count == 0  # nothing written
    store.close()


def test_a_crash_inside_a_transaction_leaves_nothing(tmp_path: Path, backend: str) -> None:
    store = open_store(load_config(write_toml(tmp_path, ""), {}))
    with pytest.raises(RuntimeError), store.transaction():
        store.serve_slot("2025-01-21T07:00+09:00", "me", datetime(2025, 1, 21, tzinfo=UTC), None)
        store.set_meta("half", "written")
        raise RuntimeError("killed mid-way")
    assert not store.slot_served("2025-01-21T07:00+09:00") and store.get_meta("half") is None
    if isinstance(store, SQLiteStore):
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()
