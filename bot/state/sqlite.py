"""The state in SQLite under ``state_dir``: the one-machine default.

One connection, in autocommit mode with explicit ``BEGIN IMMEDIATE``
transactions; WAL with ``synchronous=NORMAL`` keeps a commit under a
millisecond.  Processes on the machine (the service, ``feedbot digest`` by
hand) share the ``leases`` table of ``exclusive``.  There is no other
instance to share feeds with: ``claim_feed`` always gives the feed.

WAL checkpoints (copying the log back into the database) run in a thread
of their own, on their own connection, not at the commit that crosses the
threshold: after a 10,000-item digest that copy is tens of megabytes, and
the statement that paid for it held the event loop for most of a second.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bot import metrics
from bot.errors import StateError
from bot.state.sql import SCHEMA_VERSION, Cursor, Store

DB_NAME = "feedbot.sqlite3"
CHECKPOINT_AFTER = 0.5  # seconds after a write transaction, its WAL frames are copied back (at most this often)

log = logging.getLogger("feedbot.state")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS feeds (
    url TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    first_ok_at INTEGER,
    last_poll_at INTEGER,
    last_ok_at INTEGER,
    last_status TEXT,
    last_error TEXT,
    last_new INTEGER NOT NULL DEFAULT 0,
    error_count INTEGER NOT NULL DEFAULT 0,
    failing_since INTEGER,
    items_taken INTEGER NOT NULL DEFAULT 0,
    next_poll_at INTEGER,  -- backing off, or the server asked to wait: not before this
    warned_at INTEGER,     -- last "failing for more than a day" warning
    current_keys BLOB      -- the keys of the entries in its last document: never pruned
);
-- feed_id: the feeds rowid of the feed that recorded the key (aliases count only for other feeds)
CREATE TABLE IF NOT EXISTS seen (
    key BLOB PRIMARY KEY, first_seen INTEGER NOT NULL, feed_id INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS digests (
    id INTEGER PRIMARY KEY,
    date TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    text TEXT NOT NULL,
    stream TEXT NOT NULL DEFAULT ''   -- the [[digests]] name it was built for (schema 5)
);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    feed_url TEXT NOT NULL,
    feed_name TEXT NOT NULL,
    title TEXT NOT NULL,
    link TEXT NOT NULL,
    published INTEGER,
    first_seen INTEGER NOT NULL,
    body TEXT NOT NULL,
    digest_id INTEGER REFERENCES digests(id),
    stream TEXT NOT NULL DEFAULT ''   -- the [[digests]] name it waits for (schema 5)
);
CREATE INDEX IF NOT EXISTS items_digest ON items(digest_id);
CREATE TABLE IF NOT EXISTS label_phrases (  -- the phrases of each digest day (bot/labels.py's background)
    day TEXT NOT NULL,
    phrase TEXT NOT NULL,
    PRIMARY KEY (day, phrase)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    digest_id INTEGER NOT NULL REFERENCES digests(id),
    webhook TEXT NOT NULL,
    seq INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    delivered_at INTEGER,
    dropped INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    last_attempt_at INTEGER,
    next_attempt_at INTEGER,   -- after a failure: not before this (backoff, Retry-After)
    in_flight_at INTEGER,      -- set, and committed, just before each POST
    resent INTEGER NOT NULL DEFAULT 0,  -- POSTs that may have repeated one that arrived
    in_flight_by TEXT,         -- the instance that set in_flight_at (schema 4)
    PRIMARY KEY (digest_id, webhook, seq)
);
CREATE TABLE IF NOT EXISTS outbox_bodies (  -- each message's bytes, apart from its state (schema 4)
    digest_id INTEGER NOT NULL, webhook TEXT NOT NULL, seq INTEGER NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (digest_id, webhook, seq)
);
CREATE TABLE IF NOT EXISTS leases (  -- who builds and delivers digests, until when (schema 4)
    name TEXT PRIMARY KEY, holder TEXT NOT NULL, token INTEGER NOT NULL, until INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(webhook, digest_id, seq) WHERE delivered_at IS NULL AND dropped = 0;
CREATE TABLE IF NOT EXISTS outbox_ids (  -- the platform's id of each accepted message (schema 3)
    digest_id INTEGER NOT NULL, webhook TEXT NOT NULL, seq INTEGER NOT NULL, remote_id TEXT NOT NULL,
    PRIMARY KEY (digest_id, webhook, seq)
);
CREATE TABLE IF NOT EXISTS digest_slots (  -- scheduled digest times served (schema 2)
    slot TEXT PRIMARY KEY, instance TEXT NOT NULL, at INTEGER NOT NULL, digest_id INTEGER
);
CREATE TABLE IF NOT EXISTS feed_streams (  -- which digests have started taking which feed (schema 5)
    feed_url TEXT NOT NULL, stream TEXT NOT NULL, since INTEGER NOT NULL, PRIMARY KEY (feed_url, stream)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS instances (  -- running services, by heartbeat (schema 2)
    id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, version TEXT NOT NULL,
    config_hash TEXT NOT NULL, started_at INTEGER NOT NULL, seen_at INTEGER NOT NULL
);
"""


class SQLiteStore(Store):
    def __init__(self, conn: sqlite3.Connection, path: Path, checkpointer: _Checkpointer | None = None) -> None:
        self.conn = conn
        self.path = path
        self.where = str(path)
        self._owns_checkpointer = checkpointer is None
        self._checkpointer = checkpointer or _Checkpointer(path)

    @classmethod
    def open(cls, state_dir: Path, busy_timeout: float = 30.0) -> SQLiteStore:
        path = state_dir / DB_NAME
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer thread does it
            conn.executescript(SCHEMA)
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is not None and int(row[0]) > SCHEMA_VERSION:
                raise StateError(f"state database {path} is from a newer feedbot (schema {row[0]})")
            store = cls(conn, path)
            if row is None or int(row[0]) < SCHEMA_VERSION:
                # Schemas 2 and 3 only added tables (CREATE ... IF NOT EXISTS above); 4 moved columns.
                store._migrate()
                conn.execute(
                    "INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                    (str(SCHEMA_VERSION),),
                )
        except sqlite3.DatabaseError as exc:
            raise StateError(f"state database {path} cannot be used: {exc}") from exc
        except OSError as exc:
            raise StateError(f"state directory {state_dir} cannot be used: {exc.strerror}") from exc
        return store

    def close(self) -> None:
        with contextlib.suppress(StateError, sqlite3.Error):
            self.flush_polls()
        if self._owns_checkpointer:
            self._checkpointer.close()
        self.conn.close()

    @contextmanager
    def _sibling(self) -> Iterator[Store]:
        # The schema is there (``open`` made it); a connection's own settings
        # are not, so they are set again.  Its commits wake the same
        # checkpointer.
        try:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA wal_autocheckpoint=0")
        except sqlite3.DatabaseError as exc:
            raise StateError(f"state database {self.path} cannot be used: {exc}") from exc
        other = SQLiteStore(conn, self.path, self._checkpointer)
        try:
            yield other
        finally:
            other.close()

    def _columns(self, table: str) -> set[str]:
        return {str(r[1]) for r in self.conn.execute(f"PRAGMA table_info({table})")}

    def _x(self, sql: str, args: Sequence[Any] = ()) -> Cursor:
        metrics.db_statements.inc()
        cur: Cursor = self.conn.execute(sql, args)
        return cur

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        metrics.db_statements.inc()
        self.conn.executemany(sql, rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StateError(f"state database {self.path} is busy or locked: {exc}") from exc
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")
            self._checkpointer.written()

    def _keep_table(self) -> None:
        self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS keep (key BLOB PRIMARY KEY) WITHOUT ROWID")
        self.conn.execute("DELETE FROM keep")


class _Checkpointer:
    """Copies the WAL back into the database in a thread, on a connection
    of its own, shortly after write transactions (PASSIVE: never waits for
    a reader or blocks a writer).  sqlite3 lets go of the GIL while it
    copies, so the event loop runs on meanwhile."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def written(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
            self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, timeout=5, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            log.warning("WAL checkpoints off (%s): the log grows until the next start", exc)
            return
        with contextlib.closing(conn):
            while True:
                self._wake.wait()
                if self._stopped.is_set():
                    return
                self._wake.clear()
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:  # busy or locked: the next write tries again
                    log.debug("WAL checkpoint skipped: %s", exc)
                if self._stopped.wait(CHECKPOINT_AFTER):  # at most this often
                    return

    def close(self) -> None:
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
