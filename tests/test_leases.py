"""A stopped process holds nothing for ever, and sends nothing twice
(issue 21): the digest lease lapses and is taken over, every POST is
fenced by it, a message in flight at a live (stopped) instance is left to
it, and a deadline does not count the time the process was stopped.

The lease tests run on both backends (``backend``); a stop is what the
database sees of one: a lease not renewed past its expiry."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot import pause
from bot.config import Config, load_config
from bot.deliver import Deliverer
from bot.fetch import make_client
from bot.keys import entry_keys
from bot.loopback import Receiver, Server
from bot.models import Entry
from bot.pgserver import PgServer
from bot.state import DB_NAME, NewItem, SQLiteStore, Store, open_store
from bot.state.postgres import PostgresStore
from bot.state.records import instance_id
from bot.state.sql import SCHEMA_VERSION, local_process
from tests.conftest import Clock, write_toml

NOW = datetime(2025, 1, 21, tzinfo=UTC)


def config_for(tmp_path: Path, hook: str) -> Config:
    return load_config(write_toml(tmp_path, f'[[webhooks]]\nkind = "discord"\nname = "hook"\nurl = "{hook}"\n'), {})


def one_message(store: Store) -> None:
    """One item, bound to a digest of one message for the webhook."""
    link = "https://example.jp/a/1"
    entry = Entry(entry_keys("https://f/", None, link, "t", None).keys, "t", link, NOW)
    store.record_poll("https://f/", "f", NOW, etag=None, last_modified=None, take=[NewItem(entry, ("b",))], skip=[])
    body = b'{"content": "m"}'
    ids = [i.id for i in store.unbound_items()]
    store.create_digest("2025-01-21", NOW, ids, "m", lambda d: {"name:hook": [("application/json", body)]})


def lapse(store: Store) -> None:
    """What the others see of a holder stopped past its lease."""
    store._x("UPDATE leases SET until = 1")


def test_a_lapsed_lease_is_taken_over_and_its_old_holder_fenced_out(
    tmp_path: Path, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = config_for(tmp_path, "http://127.0.0.1:9/hook")
    a, b = open_store(config), open_store(config)
    try:
        one_message(a)
        (msg,) = a.undelivered("name:hook")

        async def go() -> tuple[bool, bool, bool]:
            async with a.exclusive("digest", "host-1-aaaaaa") as held:
                assert b.take_lease("digest", "host-2-bbbbbb") is None  # held: the other waits
                first = a.mark_attempt(msg, NOW, held, resent=False)
                lapse(a)
                taken = b.take_lease("digest", "host-2-bbbbbb")
                after = a.mark_attempt(msg, NOW, held, resent=False)  # A resumes
                return first, taken is not None and taken.token > held.token, after

        with caplog.at_level(logging.WARNING, logger="feedbot.state"):
            first, taken, after = asyncio.run(go())
        assert first and taken and not after
        assert any("taken over from instance host-1-aaaaaa" in r.getMessage() for r in caplog.records)
        assert b.undelivered("name:hook")[0].in_flight_by == "host-1-aaaaaa"  # A's mark stays, for B to judge
    finally:
        a.close()
        b.close()


def test_a_released_lease_is_taken_at_once_without_a_takeover(tmp_path: Path, backend: str) -> None:
    config = config_for(tmp_path, "http://127.0.0.1:9/hook")
    a, b = open_store(config), open_store(config)
    try:

        async def go() -> bool:
            async with a.exclusive("digest", "host-1-aaaaaa"):
                pass
            return b.take_lease("digest", "host-2-bbbbbb") is not None

        assert asyncio.run(go())
    finally:
        a.close()
        b.close()


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def test_a_killed_process_not_yet_reaped_is_dead_and_a_stopped_one_alive() -> None:
    """A SIGKILLed instance whose parent has not waited for it yet (a
    zombie) held its feeds for a whole lease, taken for alive (issue 27)."""
    host = instance_id().rsplit("-", 2)[0]
    proc = subprocess.Popen(["sleep", "60"])
    try:
        ident = f"{host}-{proc.pid}-zzzzzz"
        assert local_process(ident) is True
        proc.send_signal(signal.SIGSTOP)
        assert local_process(ident) is True  # stopped: it may go on
        proc.kill()
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # dead, and left a zombie
        assert local_process(ident) is False
    finally:
        proc.kill()
        proc.wait()
    assert local_process(ident) is False


@pytest.mark.parametrize("alive", [True, False])
def test_a_message_in_flight_elsewhere_waits_for_a_live_instance_and_is_resent_for_a_dead_one(
    tmp_path: Path, clock: Clock, alive: bool
) -> None:
    """Another instance marked it in flight and stopped: alive (SIGSTOP:
    its answer may come), it is left to it; dead, sent again and counted."""
    rec = Receiver()
    with Server(rec) as server:
        config = config_for(tmp_path, server.base + "/api/webhooks/1/x")
        store = open_store(config)
        one_message(store)
        (msg,) = store.undelivered("name:hook")
        host = instance_id().rsplit("-", 2)[0]
        other = f"{host}-{os.getpid() if alive else _dead_pid()}-cccccc"
        store.mark_in_flight(msg, clock.now, other)

        async def go() -> int:
            async with make_client(config.poll) as client:
                deliverer = Deliverer(client, store, clock)
                async with store.exclusive("digest", "host-9-dddddd") as lease:
                    report = await deliverer.deliver(config.webhooks[0], lease)
            return report.sent

        sent = asyncio.run(go())
        resent = store.resent_count()
        store.close()
    assert (sent, len(rec.accepted), resent) == ((0, 0, 0) if alive else (1, 1, 1))


def test_a_state_of_schema_3_moves_its_message_bodies_and_keeps_its_queue(tmp_path: Path) -> None:
    path = tmp_path / DB_NAME
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '3');
        CREATE TABLE digests (
            id INTEGER PRIMARY KEY, date TEXT NOT NULL, created_at INTEGER NOT NULL, text TEXT NOT NULL
        );
        INSERT INTO digests VALUES (1, '2025-01-21', 0, 't');
        CREATE TABLE outbox (
            digest_id INTEGER NOT NULL REFERENCES digests(id), webhook TEXT NOT NULL, seq INTEGER NOT NULL,
            content_type TEXT NOT NULL, body BLOB NOT NULL, delivered_at INTEGER, dropped INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, last_attempt_at INTEGER, next_attempt_at INTEGER,
            in_flight_at INTEGER, resent INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (digest_id, webhook, seq)
        );
        CREATE INDEX outbox_pending ON outbox(webhook, digest_id, seq) WHERE delivered_at IS NULL AND dropped = 0;
        INSERT INTO outbox(digest_id, webhook, seq, content_type, body, resent)
            VALUES (1, 'w', 0, 'text/plain', x'6d', 2);
        """
    )
    conn.commit()
    conn.close()
    store = SQLiteStore.open(tmp_path)
    try:
        (msg,) = store.undelivered("w")
        assert (msg.body, msg.in_flight_by, store.resent_count()) == (b"m", None, 2)
        assert "body" not in store._columns("outbox") and store.get_meta("schema_version") == str(SCHEMA_VERSION)
    finally:
        store.close()


# -- deadlines in time the process ran -------------------------------------------------


class _StoppingLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock can jump: what a process sees of the time
    it spent stopped (SIGSTOP), without stopping anything."""

    stopped = 0.0

    def time(self) -> float:
        return super().time() + self.stopped


def _answer_after_a_stop(seconds: float, deadline: float) -> str:
    loop = _StoppingLoop()

    async def exchange() -> str:
        answer: asyncio.Future[str] = loop.create_future()

        def stop_then_answer() -> None:
            loop.stopped += seconds  # stopped for ``seconds``...
            answer.set_result("200 OK")  # ...while the answer arrived in the socket

        loop.call_later(0.05, stop_then_answer)
        async with pause.deadline(deadline):
            said = await answer
            for _ in range(5):  # reading it takes a few turns of the loop
                await asyncio.sleep(0)
            return said

    try:
        return loop.run_until_complete(exchange())
    except TimeoutError:
        return "timed out"
    finally:
        loop.close()


def test_an_answer_that_came_while_the_process_was_stopped_is_read() -> None:
    assert _answer_after_a_stop(seconds=30.0, deadline=2.0) == "200 OK"


def test_a_peer_that_never_answers_still_times_out() -> None:
    loop = _StoppingLoop()

    async def never() -> None:
        async with pause.deadline(0.3):
            await loop.create_future()

    with pytest.raises(TimeoutError):
        loop.run_until_complete(never())
    loop.close()


def test_asyncio_timeout_alone_loses_that_answer() -> None:
    """Why ``bot.pause`` exists: the plain timeout fires first."""
    loop = _StoppingLoop()

    async def exchange() -> str:
        answer: asyncio.Future[str] = loop.create_future()

        def stop_then_answer() -> None:
            loop.stopped += 30.0
            answer.set_result("200 OK")

        loop.call_later(0.05, stop_then_answer)
        async with asyncio.timeout(2.0):
            said = await answer
            for _ in range(5):
                await asyncio.sleep(0)
            return said

    with pytest.raises(TimeoutError):
        loop.run_until_complete(exchange())
    loop.close()


def test_a_postgresql_state_of_schema_3_is_migrated_by_the_first_instance(pg: PgServer) -> None:
    url = pg.new_database()
    pg.sql(
        url,
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        " INSERT INTO meta VALUES ('schema_version', '3');"
        " CREATE TABLE digests (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, date TEXT NOT NULL,"
        " created_at BIGINT NOT NULL, text TEXT NOT NULL); INSERT INTO digests VALUES (1, 'd', 0, 't');"
        " CREATE TABLE outbox (digest_id BIGINT NOT NULL REFERENCES digests(id), webhook TEXT NOT NULL,"
        " seq BIGINT NOT NULL, content_type TEXT NOT NULL, body BYTEA NOT NULL, delivered_at BIGINT,"
        " dropped BIGINT NOT NULL DEFAULT 0, attempts BIGINT NOT NULL DEFAULT 0, last_error TEXT,"
        " last_attempt_at BIGINT, next_attempt_at BIGINT, in_flight_at BIGINT, resent BIGINT NOT NULL DEFAULT 0,"
        " PRIMARY KEY (digest_id, webhook, seq));"
        " INSERT INTO outbox(digest_id, webhook, seq, content_type, body) VALUES (1, 'w', 0, 'text/plain', 'm');",
    )
    store = PostgresStore.open(url)
    try:
        (msg,) = store.undelivered("w")
        assert msg.body == b"m" and "body" not in store._columns("outbox")
        assert store.get_meta("schema_version") == str(SCHEMA_VERSION)
    finally:
        store.close()


def test_a_retry_after_an_unanswered_post_is_counted_as_a_possible_copy(tmp_path: Path, clock: Clock) -> None:
    from bot import metrics

    rec = Receiver()
    release = threading.Event()
    rec.stall(1, release, 10.0)  # the first POST gets no answer within the deadline
    with Server(rec) as server:
        config = config_for(tmp_path, server.base + "/api/webhooks/1/x")
        store = open_store(config)
        one_message(store)
        before = metrics.resent.labels("hook", "unanswered")._value.get()

        async def go() -> list[int]:
            async def no_wait(_: float) -> None:
                return None

            async with make_client(config.poll) as client:
                deliverer = Deliverer(client, store, clock, sleep=no_wait, deadline=0.5)
                sent = []
                for _ in range(2):  # the run that timed out, and the queue's next try
                    async with store.exclusive("digest", "host-9-dddddd") as lease:
                        sent.append((await deliverer.deliver(config.webhooks[0], lease)).sent)
            return sent

        try:
            sent = asyncio.run(go())
        finally:
            release.set()
        resent = store.resent_count()
        store.close()
    # Not retried in the run that reached its deadline; the next try may
    # make a copy, and is counted so.
    assert sent == [0, 1] and len(rec.accepted) == 1 and resent == 1
    assert metrics.resent.labels("hook", "unanswered")._value.get() == before + 1


def test_a_killed_holders_lease_is_taken_without_waiting_for_it_to_lapse(
    tmp_path: Path, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A stopped holder keeps its lease until it lapses; a killed one does
    not: its process is gone (this host's), its session ended (another
    host's, on PostgreSQL)."""
    config = config_for(tmp_path, "http://127.0.0.1:9/hook")
    a, b = open_store(config), open_store(config)
    host = instance_id().rsplit("-", 2)[0]
    try:
        if backend == "sqlite":
            dead = f"{host}-{_dead_pid()}-eeeeee"
            assert a.take_lease("digest", dead) is not None
        else:
            holder = "another-host-4242-eeeeee"  # not this host's: the database tells
            a.announce(holder)
            assert a.take_lease("digest", holder) is not None
            assert b.take_lease("digest", "host-2-bbbbbb") is None  # alive: it waits
            assert isinstance(a, PostgresStore) and a._alive is not None
            a._alive.close()  # what the server sees of a SIGKILL
        with caplog.at_level(logging.WARNING, logger="feedbot.state"):
            assert b.take_lease("digest", "host-2-bbbbbb") is not None
        assert any("which is gone" in r.getMessage() for r in caplog.records)
    finally:
        a.close()
        b.close()


def test_an_instance_marked_before_a_database_restart_is_not_taken_for_dead(pg: PgServer) -> None:
    """The restart took its session lock; stopped, it cannot take it again:
    the absence says nothing, so its message is left to it (for a while)."""
    store = PostgresStore.open(pg.new_database())
    try:
        assert not store.instance_alive("another-host-4242-ffffff", since=datetime.now(UTC))
        assert store.instance_alive("another-host-4242-ffffff", since=NOW)  # marked before the server started
    finally:
        store.close()
