"""The SQLite state under ``state_dir``: only SQL lives here.

Tables:

* ``feeds``: per feed URL, the HTTP validators and the record of every poll
  (last poll, result, error and counts, backoff): errors are data on the feed.
* ``seen``: dedupe keys (20-byte BLOBs, ``WITHOUT ROWID``), with the feed
  that recorded each; pruned after ``poll.retention`` unless a feed still
  lists the entry.
* ``items``: entries taken for a digest; ``digest_id`` is NULL until a
  digest binds them.
* ``digests`` and ``outbox``: a digest and, per webhook, the messages it was
  cut into.  A message is marked delivered only after its webhook accepted
  it; an item stays pending until every message of its digest is delivered.

Every poll is one transaction, and so is building a digest with its
messages: a crash leaves either all of it or none.  A message is marked in
flight (committed) just before its POST, so a crash there is known.  WAL with
``synchronous=NORMAL`` keeps a commit under a millisecond.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.errors import StateError
from bot.keys import Key
from bot.models import Entry, Item

DB_NAME = "feedbot.sqlite3"
SCHEMA_VERSION = 1
LABEL_MEMORY = timedelta(days=60)  # label phrases are kept this long (the background reads 14 days)

_SCHEMA = """
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
    text TEXT NOT NULL
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
    digest_id INTEGER REFERENCES digests(id)
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
    body BLOB NOT NULL,
    delivered_at INTEGER,
    dropped INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    last_attempt_at INTEGER,
    next_attempt_at INTEGER,   -- after a failure: not before this (backoff, Retry-After)
    in_flight_at INTEGER,      -- set, and committed, just before each POST
    resent INTEGER NOT NULL DEFAULT 0,  -- POSTed again after a crash while in flight
    PRIMARY KEY (digest_id, webhook, seq)
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(webhook, digest_id, seq) WHERE delivered_at IS NULL AND dropped = 0;
"""


def _ts(when: datetime) -> int:
    return int(when.timestamp())


def _dt(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


@dataclass(frozen=True)
class FeedState:
    url: str
    name: str = ""
    etag: str | None = None
    last_modified: str | None = None
    first_ok_at: datetime | None = None
    last_poll_at: datetime | None = None
    last_ok_at: datetime | None = None
    last_status: str | None = None
    last_error: str | None = None
    last_new: int = 0
    error_count: int = 0
    failing_since: datetime | None = None
    items_taken: int = 0
    next_poll_at: datetime | None = None
    warned_at: datetime | None = None


@dataclass(frozen=True)
class NewItem:
    """An entry chosen at poll time, with the body fetched for it."""

    entry: Entry
    body: tuple[str, ...]


@dataclass(frozen=True)
class OutMessage:
    digest_id: int
    webhook: str
    seq: int
    content_type: str
    body: bytes
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    in_flight_at: datetime | None = None  # a POST started and its outcome was never recorded

    @property
    def key(self) -> str:
        """The idempotency key receivers may dedupe on."""
        return f"feedbot-{self.digest_id}-{self.seq}"


@dataclass(frozen=True)
class WebhookBacklog:
    webhook: str
    pending: int
    attempts: int
    last_error: str | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None = None


class Store:
    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, state_dir: Path, busy_timeout: float = 30.0) -> Store:
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            path = state_dir / DB_NAME
            conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.executescript(_SCHEMA)
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) > SCHEMA_VERSION:
                raise StateError(f"state database {path} is from a newer feedbot (schema {row[0]})")
        except sqlite3.DatabaseError as exc:
            raise StateError(f"state database {state_dir / DB_NAME} cannot be used: {exc}") from exc
        except OSError as exc:
            raise StateError(f"state directory {state_dir} cannot be used: {exc.strerror}") from exc
        return cls(conn, path)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StateError(f"state database {self.path} is busy or locked: {exc}") from exc
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    @asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[None]:
        """Hold the lock ``name`` of this state directory, across processes.

        Building and delivering digests happens under it, so ``feedbot
        digest`` run by hand while the service delivers cannot send a
        message twice.
        """
        fd = os.open(self.path.parent / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    # -- meta ------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value)
        )

    # -- feeds -----------------------------------------------------------

    def feed_state(self, url: str) -> FeedState:
        row = self.conn.execute(f"SELECT {_FEED_COLUMNS} FROM feeds WHERE url=?", (url,)).fetchone()
        return FeedState(url=url) if row is None else _feed_state(row)

    def failing_urls(self) -> set[str]:
        """Feeds whose last poll failed: one query, for the status line."""
        return {r[0] for r in self.conn.execute("SELECT url FROM feeds WHERE error_count > 0")}

    def all_feed_states(self) -> dict[str, FeedState]:
        return {row[0]: _feed_state(row) for row in self.conn.execute(f"SELECT {_FEED_COLUMNS} FROM feeds")}

    def _ensure_feed(self, url: str, name: str) -> None:
        self.conn.execute(
            "INSERT INTO feeds(url, name) VALUES (?, ?) ON CONFLICT(url) DO UPDATE SET name=excluded.name", (url, name)
        )

    def record_failure(self, url: str, name: str, now: datetime, status: str, error: str) -> None:
        with self.transaction():
            self._ensure_feed(url, name)
            self.conn.execute(
                "UPDATE feeds SET last_poll_at=?, last_status=?, last_error=?, last_new=0,"
                " error_count=error_count+1, failing_since=COALESCE(failing_since, ?) WHERE url=?",
                (_ts(now), status, error, _ts(now), url),
            )

    def set_next_poll(self, url: str, when: datetime | None) -> None:
        self.conn.execute("UPDATE feeds SET next_poll_at=? WHERE url=?", (_ts(when) if when else None, url))

    def set_warned(self, url: str, when: datetime) -> None:
        self.conn.execute("UPDATE feeds SET warned_at=? WHERE url=?", (_ts(when), url))

    def record_not_modified(self, url: str, name: str, now: datetime, next_poll_at: datetime | None = None) -> None:
        """One statement (the commonest poll of all: keep it cheap)."""
        values = (name, _ts(now), _ts(now), _ts(next_poll_at) if next_poll_at else None, url)
        update = (
            "UPDATE feeds SET name=?, last_poll_at=?, last_ok_at=?, last_status='not-modified', last_error=NULL,"
            " last_new=0, error_count=0, failing_since=NULL, warned_at=NULL, next_poll_at=? WHERE url=?"
        )
        if self.conn.execute(update, values).rowcount == 0:  # a 304 before any 200: a feed not yet known
            with self.transaction():
                self._ensure_feed(url, name)
                self.conn.execute(update, values)

    def _feed_id(self, url: str) -> int | None:
        row = self.conn.execute("SELECT rowid FROM feeds WHERE url=?", (url,)).fetchone()
        return None if row is None else int(row[0])

    def _lookup(self, keys: Iterable[Key]) -> dict[Key, int]:
        """The recorded keys among ``keys``, with the feed that recorded each."""
        wanted = list(set(keys))
        found: dict[Key, int] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.conn.execute(f"SELECT key, feed_id FROM seen WHERE key IN ({marks})", chunk)
            found.update((bytes(k), int(f)) for k, f in rows)
        return found

    def seen(self, feed_url: str, entries: Iterable[Entry]) -> set[Key]:
        """The keys by which ``entries`` are known already: recorded keys, and
        aliases recorded by another feed."""
        entries = list(entries)
        own = self._feed_id(feed_url)
        found = self._lookup([k for e in entries for k in e.keys] + [e.alias for e in entries if e.alias])
        aliases = {e.alias for e in entries if e.alias}
        return {k for k, feed in found.items() if k not in aliases or feed != own} | {
            k for e in entries for k in e.keys if k in found
        }

    def record_poll(
        self,
        url: str,
        name: str,
        now: datetime,
        *,
        etag: str | None,
        last_modified: str | None,
        take: Sequence[NewItem],
        skip: Sequence[Entry],
        present: Sequence[Entry] = (),
        warning: str | None = None,
        next_poll_at: datetime | None = None,
    ) -> int:
        """Store one successful poll atomically; returns how many items it took.

        ``skip``: entries recorded as seen without being taken.  An item
        known meanwhile (another feed polled at the same time carried the
        same article) is not stored: keys are checked again inside the
        transaction.
        """
        stamp = _ts(now)
        with self.transaction() as db:
            self._ensure_feed(url, name)
            feed_id = self._feed_id(url) or 0
            known = self.seen(url, [n.entry for n in take])  # one lookup, inside the transaction
            rows: list[tuple[Key, int, int]] = []
            items: list[tuple[object, ...]] = []
            for new in take:
                e = new.entry
                before = bool(known.intersection(e.keys)) or (e.alias is not None and e.alias in known)
                rows.extend((k, stamp, feed_id) for k in (*e.keys, *([e.alias] if e.alias else [])))
                known.update(e.keys)  # the same entry twice in one poll is one item
                if not before:
                    published = _ts(e.published) if e.published else None
                    body = json.dumps(list(new.body), ensure_ascii=False)
                    items.append((url, name, e.title, e.link, published, stamp, body))
            db.executemany(
                "INSERT INTO items(feed_url, feed_name, title, link, published, first_seen, body)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                items,
            )
            for entry in skip:
                rows.extend((k, stamp, feed_id) for k in (*entry.keys, *([entry.alias] if entry.alias else [])))
            db.executemany("INSERT OR IGNORE INTO seen VALUES (?, ?, ?)", rows)
            keys = b"".join(k for e in present for k in (*e.keys, *([e.alias] if e.alias else [])))
            db.execute("UPDATE feeds SET current_keys=? WHERE url=?", (keys, url))
            db.execute(
                "UPDATE feeds SET etag=?, last_modified=?, first_ok_at=COALESCE(first_ok_at, ?), last_poll_at=?,"
                " last_ok_at=?, last_status=?, last_error=?, last_new=?, error_count=0, failing_since=NULL,"
                " warned_at=NULL, items_taken=items_taken+?, next_poll_at=? WHERE url=?",
                (
                    etag,
                    last_modified,
                    stamp,
                    stamp,
                    stamp,
                    "ok" if warning is None else "ok-with-warning",
                    warning,
                    len(items),
                    len(items),
                    _ts(next_poll_at) if next_poll_at else None,
                    url,
                ),
            )
        return len(items)

    # -- items and digests -------------------------------------------------

    def _items(self, where: str, args: Sequence[object] = ()) -> list[Item]:
        rows = self.conn.execute(
            "SELECT id, feed_name, feed_url, title, link, published, first_seen, body FROM items WHERE "
            + where
            + " ORDER BY id",
            args,
        )
        return [
            Item(
                id=r[0],
                feed=r[1],
                feed_url=r[2],
                title=r[3],
                link=r[4],
                published=_dt(r[5]),
                first_seen=_dt(r[6]) or datetime.fromtimestamp(0, UTC),
                body=tuple(json.loads(r[7])),
            )
            for r in rows
        ]

    def unbound_items(self) -> list[Item]:
        """Items taken but not yet part of any digest."""
        return self._items("digest_id IS NULL")

    def pending_count(self) -> int:
        """Items not yet accepted by every webhook of their digest."""
        row = self.conn.execute(
            "SELECT COUNT(*) FROM items WHERE digest_id IS NULL OR digest_id IN"
            " (SELECT digest_id FROM outbox WHERE delivered_at IS NULL AND dropped=0)"
        ).fetchone()
        return int(row[0])

    def create_digest(
        self,
        date: str,
        now: datetime,
        item_ids: Sequence[int],
        text: str,
        messages: Callable[[int], dict[str, Sequence[tuple[str, bytes]]]],
    ) -> int:
        """Bind items to a new digest and record its messages, atomically.

        ``messages(digest_id)`` returns, per webhook id, the (content type,
        body) of each message in order.
        """
        with self.transaction() as db:
            cur = db.execute("INSERT INTO digests(date, created_at, text) VALUES (?, ?, ?)", (date, _ts(now), text))
            digest_id = int(cur.lastrowid or 0)
            marks = ",".join("?" * len(item_ids))
            bound = db.execute(
                f"UPDATE items SET digest_id=? WHERE digest_id IS NULL AND id IN ({marks})", (digest_id, *item_ids)
            ).rowcount
            if bound != len(item_ids):
                # Another process bound some of them first: build nothing.
                raise StateError("items changed while the digest was being built; try again")
            for webhook, msgs in messages(digest_id).items():
                db.executemany(
                    "INSERT INTO outbox(digest_id, webhook, seq, content_type, body) VALUES (?, ?, ?, ?, ?)",
                    [(digest_id, webhook, seq, ctype, body) for seq, (ctype, body) in enumerate(msgs)],
                )
        return digest_id

    def undelivered(self, webhook: str) -> list[OutMessage]:
        rows = self.conn.execute(
            "SELECT digest_id, webhook, seq, content_type, body, attempts, last_error, next_attempt_at, in_flight_at"
            " FROM outbox WHERE webhook=? AND delivered_at IS NULL AND dropped=0 ORDER BY digest_id, seq",
            (webhook,),
        )
        return [OutMessage(r[0], r[1], r[2], r[3], bytes(r[4]), r[5], r[6], _dt(r[7]), _dt(r[8])) for r in rows]

    def _update(self, msg: OutMessage, assignments: str, values: Sequence[object]) -> None:
        self.conn.execute(
            f"UPDATE outbox SET {assignments} WHERE digest_id=? AND webhook=? AND seq=?",
            (*values, msg.digest_id, msg.webhook, msg.seq),
        )

    def mark_in_flight(self, msg: OutMessage, now: datetime) -> None:
        """Committed before the POST: after a crash, the message is known to
        have been possibly sent (the only window for a duplicate)."""
        resent = 1 if msg.in_flight_at is not None else 0
        self._update(msg, "in_flight_at=?, resent=resent+?", (_ts(now), resent))

    def mark_delivered(self, msg: OutMessage, now: datetime) -> None:
        self._update(
            msg,
            "delivered_at=?, attempts=attempts+1, last_attempt_at=?, last_error=NULL, in_flight_at=NULL",
            (_ts(now), _ts(now)),
        )

    def mark_failed(self, msg: OutMessage, now: datetime, error: str, retry_at: datetime) -> None:
        self._update(
            msg,
            "attempts=attempts+1, last_attempt_at=?, last_error=?, next_attempt_at=?, in_flight_at=NULL",
            (_ts(now), error, _ts(retry_at)),
        )

    def resent_count(self) -> int:
        """Messages POSTed again because a crash hid whether the first POST arrived."""
        return int(self.conn.execute("SELECT COALESCE(SUM(resent), 0) FROM outbox").fetchone()[0])

    def drop_webhooks_except(self, active: Iterable[str]) -> int:
        """Messages for webhooks no longer configured will never be sent."""
        keep = list(active)
        marks = ",".join("?" * len(keep)) or "''"
        return self.conn.execute(
            f"UPDATE outbox SET dropped=1 WHERE delivered_at IS NULL AND dropped=0 AND webhook NOT IN ({marks})", keep
        ).rowcount

    def backlog(self) -> list[WebhookBacklog]:
        """Per webhook: undelivered messages, and the state of the first one."""
        rows = self.conn.execute(
            "SELECT webhook, COUNT(*) FROM outbox WHERE delivered_at IS NULL AND dropped=0 GROUP BY webhook"
            " ORDER BY webhook"
        ).fetchall()
        out = []
        for webhook, count in rows:
            head = self.undelivered(webhook)[0]
            last = self.conn.execute(
                "SELECT last_attempt_at FROM outbox WHERE digest_id=? AND webhook=? AND seq=?",
                (head.digest_id, head.webhook, head.seq),
            ).fetchone()[0]
            out.append(
                WebhookBacklog(webhook, int(count), head.attempts, head.last_error, _dt(last), head.next_attempt_at)
            )
        return out

    def record_label_phrases(self, day: str, phrases: Iterable[str]) -> None:
        """The phrases of a digest day (``YYYY-MM-DD``), for later days' labels."""
        with self.transaction() as db:
            db.executemany("INSERT OR IGNORE INTO label_phrases VALUES (?, ?)", [(day, p) for p in phrases])
            oldest = (date.fromisoformat(day) - LABEL_MEMORY).isoformat()
            db.execute("DELETE FROM label_phrases WHERE day < ?", (oldest,))

    def label_background(self, day: str, days: int) -> dict[str, int]:
        """Phrase → the number of the ``days`` days before ``day`` it appeared on."""
        since = (date.fromisoformat(day) - timedelta(days=days)).isoformat()
        rows = self.conn.execute(
            "SELECT phrase, COUNT(*) FROM label_phrases WHERE day >= ? AND day < ? GROUP BY phrase", (since, day)
        )
        return {str(p): int(n) for p, n in rows}

    def prune(self, cutoff: datetime) -> tuple[int, int]:
        """Forget what is older than ``cutoff``, so the state stays bounded:
        seen keys no longer in any feed's current document, and digests
        delivered everywhere, with their items and messages.  Returns the
        numbers of keys and digests removed.

        An entry whose key is forgotten cannot come back unless it is both
        gone from its feed for the whole retention and still undated; the
        max-age guard stops any dated one.
        """
        stamp = _ts(cutoff)
        with self.transaction() as db:
            db.execute("CREATE TEMP TABLE IF NOT EXISTS keep (key BLOB PRIMARY KEY) WITHOUT ROWID")
            db.execute("DELETE FROM keep")
            for (blob,) in db.execute("SELECT current_keys FROM feeds WHERE current_keys IS NOT NULL").fetchall():
                data = bytes(blob)
                db.executemany(
                    "INSERT OR IGNORE INTO keep VALUES (?)", [(data[i : i + 20],) for i in range(0, len(data), 20)]
                )
            keys = db.execute(
                "DELETE FROM seen WHERE first_seen < ? AND key NOT IN (SELECT key FROM keep)", (stamp,)
            ).rowcount
            old = [
                r[0]
                for r in db.execute(
                    "SELECT id FROM digests WHERE created_at < ? AND id NOT IN"
                    " (SELECT digest_id FROM outbox WHERE delivered_at IS NULL AND dropped=0)",
                    (stamp,),
                )
            ]
            for start in range(0, len(old), 500):
                chunk = old[start : start + 500]
                marks = ",".join("?" * len(chunk))
                db.execute(f"DELETE FROM outbox WHERE digest_id IN ({marks})", chunk)
                db.execute(f"DELETE FROM items WHERE digest_id IN ({marks})", chunk)
                db.execute(f"DELETE FROM digests WHERE id IN ({marks})", chunk)
        return keys, len(old)

    def seen_count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM seen").fetchone()[0])

    def digest_count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM digests").fetchone()[0])


_FEED_COLUMNS = (
    "url, name, etag, last_modified, first_ok_at, last_poll_at, last_ok_at, last_status, last_error,"
    " last_new, error_count, failing_since, items_taken, next_poll_at, warned_at"
)


def _feed_state(row: Sequence[Any]) -> FeedState:
    return FeedState(
        url=row[0],
        name=row[1],
        etag=row[2],
        last_modified=row[3],
        first_ok_at=_dt(row[4]),
        last_poll_at=_dt(row[5]),
        last_ok_at=_dt(row[6]),
        last_status=row[7],
        last_error=row[8],
        last_new=row[9],
        error_count=row[10],
        failing_since=_dt(row[11]),
        items_taken=row[12],
        next_poll_at=_dt(row[13]),
        warned_at=_dt(row[14]),
    )
