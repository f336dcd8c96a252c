"""The state's SQL, written once for both backends.

Tables:

* ``feeds``: per feed URL, the HTTP validators and the record of every poll
  (last poll, result, error and counts, backoff): errors are data on the feed.
* ``seen``: dedupe keys (20-byte blobs), with the feed that recorded each;
  pruned after ``poll.retention`` unless a feed still lists the entry.
* ``items``: entries taken for a digest; ``digest_id`` is NULL until a
  digest binds them.
* ``digests`` and ``outbox``: a digest and, per webhook, the messages it was
  cut into (their bytes in ``outbox_bodies``: a row updated at every
  attempt stays small, where SQLite would rewrite a 10 MB body with it).
  A message is marked delivered only after its webhook accepted it; an item
  stays pending until every message of its digest is delivered.
  ``dropped``: 0 while a message is to be sent, 1 once it never will be
  (its webhook removed, or ``feedbot outbox drop``), 2 while it is set aside
  (refused for good by its platform: kept, out of the queue, until
  ``feedbot outbox retry`` or ``drop``).
* ``leases``: who may build and deliver digests now (``exclusive``), until
  when, in the database's clock.
* ``digest_slots``: the scheduled digest times already served (one digest
  per slot, however many instances run); ``instances``: who runs, and with
  which config; ``label_phrases``: the background of automatic labels.

Every poll is one transaction, and so is building a digest with its
messages: a crash leaves either all of it or none.  A message is marked in
flight (committed, with the instance sending it) just before each POST,
only while its instance still holds the lease: a crash or a pause there is
known, and an instance that lost the lease sends nothing more.

The SQL is the common dialect of SQLite 3.35+ and PostgreSQL: ``?``
placeholders (the PostgreSQL backend rewrites them), ``ON CONFLICT``,
``RETURNING``.  What differs (connections, transactions, locks between
processes and instances, the few statements each writes its own way) is in
``bot/state/sqlite.py`` and ``bot/state/postgres.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol, TypeVar

from bot import metrics
from bot.errors import LeaseLost, StateError
from bot.keys import Key
from bot.models import Entry, Item
from bot.state.records import (
    UNANSWERED,
    DigestSummary,
    Elsewhere,
    FeedState,
    Instance,
    Lease,
    NewItem,
    OutMessage,
    SetAside,
    WebhookBacklog,
    instance_pid,
)

T = TypeVar("T")
log = logging.getLogger("feedbot.state")

SCHEMA_VERSION = 5
SET_ASIDE = 2  # outbox.dropped of a message refused for good, kept out of the queue
LABEL_MEMORY = timedelta(days=60)  # label phrases are kept this long (the background reads 14 days)
INSTANCE_ALIVE = timedelta(seconds=60)  # an instance not heard from for this long is gone
HEARTBEAT_FRESH = 20  # seconds: an instance that beat this lately is alive (service.HEARTBEAT_SECONDS × 2)
LEASE_SECONDS = 30  # a lease lasts this long past its holder's last renewal
RENEW_SECONDS = 5.0  # how often a holder renews it
LOCK_WAIT = 0.5  # seconds between tries while another instance holds a lease

# Tables in the order a copy fills them (references first).
# Schema 5: the feeds polled before are started for the one digest there
# was ("" : a config without [[digests]] tables), so that it does not take
# their first_poll window again; a [[digests]] table's digest is new to them.
STREAMS_OF_OLD_FEEDS = (
    "INSERT INTO feed_streams SELECT url, '', first_ok_at FROM feeds WHERE first_ok_at IS NOT NULL"
    " ON CONFLICT DO NOTHING"
)

# 304 records held back and written together (``Store.flush_polls``): at
# this many, or at the service's next poll tick (5 s), whichever first.
NOT_MODIFIED_BATCH = 500
NOT_MODIFIED = (
    "UPDATE feeds SET name=?, last_poll_at=?, last_ok_at=?, last_status='not-modified', last_error=NULL,"
    " last_new=0, error_count=0, failing_since=NULL, warned_at=NULL, next_poll_at=?"
)

TABLES = (
    "meta",
    "feeds",
    "seen",
    "digests",
    "items",
    "outbox",
    "outbox_bodies",
    "outbox_ids",
    "label_phrases",
    "digest_slots",
    "feed_streams",
)


def ts(when: datetime) -> int:
    return int(when.timestamp())


def dt(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


def _opt(when: datetime | None) -> int | None:
    return ts(when) if when else None


class Cursor(Protocol):
    """What both drivers' cursors offer."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Store(ABC):
    """The state, whichever database holds it.  Methods are synchronous and
    short (one statement or one transaction); the service calls them from
    its event loop."""

    where: str  # the database, as shown to people (no password)
    FEED_ID = "rowid"  # the feeds column that seen.feed_id refers to
    shared = False  # True where several instances may use the state at once
    NOW = "CAST(strftime('%s', 'now') AS INTEGER)"  # the database's clock, in whole seconds
    lease_seconds = LEASE_SECONDS
    renew_seconds = RENEW_SECONDS

    # -- what each backend provides ------------------------------------------

    @abstractmethod
    def _x(self, sql: str, args: Sequence[Any] = ()) -> Cursor:
        """Execute one statement (in the open transaction, if any)."""

    @abstractmethod
    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Execute one statement for each of ``rows``."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """All statements in the block commit together, or none does."""

    def snapshot(self) -> AbstractContextManager[None]:
        """Reads in the block see one consistent state (for copying)."""
        return self.transaction()

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def _sibling(self) -> AbstractContextManager[Store]:
        """The same state on a connection of its own, usable from any one
        thread, closed at the end of the block."""

    async def in_thread(self, fn: Callable[[Store], T]) -> T:
        """``fn`` on a connection of its own, in a thread.  For the statements
        that move megabytes (a busy day's digest: 10,000 items read, 40 MB of
        messages written): on the event loop they stopped its watchdog pings
        for a second.  A cancelled caller does not stop ``fn``: its
        transaction commits or rolls back whole."""

        def run() -> T:
            with self._sibling() as other:
                return fn(other)

        return await asyncio.to_thread(run)

    @abstractmethod
    def _columns(self, table: str) -> set[str]:
        """The columns ``table`` has (for migrations)."""

    def _migrate(self) -> None:
        """From schema 3: message bodies to ``outbox_bodies``, the sending
        instance on each message (the new tables exist already)."""
        columns = self._columns("outbox")
        if "body" in columns:
            with self.transaction():
                self._x(
                    "INSERT INTO outbox_bodies(digest_id, webhook, seq, body)"
                    " SELECT digest_id, webhook, seq, body FROM outbox WHERE true ON CONFLICT DO NOTHING"
                )
                self._x("ALTER TABLE outbox DROP COLUMN body")
        if "in_flight_by" not in columns:
            self._x("ALTER TABLE outbox ADD COLUMN in_flight_by TEXT")
        self._add_streams()

    def _add_streams(self) -> None:
        """From schema 4: the digest (``[[digests]]`` name) each item waits
        for and each digest was built for; "" is the one digest of a config
        without ``[[digests]]`` tables, which every older row belongs to."""
        for table in ("items", "digests"):
            if "stream" not in self._columns(table):
                self._x(f"ALTER TABLE {table} ADD COLUMN stream TEXT NOT NULL DEFAULT ''")
        self._x(STREAMS_OF_OLD_FEEDS)

    def started_streams(self, feed_url: str) -> set[str]:
        """The digests that have taken entries of this feed (since its or
        their first poll): one not among them is new to the feed, and its
        first poll of it is a first poll (``poll.first_poll``)."""
        rows = self._x("SELECT stream FROM feed_streams WHERE feed_url=?", (feed_url,))
        return {str(r[0]) for r in rows}

    @abstractmethod
    def _keep_table(self) -> None:
        """An empty temporary table ``keep(key)`` for ``prune``."""

    def _take_lock(self) -> None:  # noqa: B027 - a hook: SQLite needs nothing
        """Inside a transaction: the one writer that takes items (SQLite's
        transactions are serial already; PostgreSQL takes a lock)."""

    def claim_feed(
        self, url: str, name: str, owner: str, now: datetime, min_gap: timedelta, lease: timedelta = timedelta(0)
    ) -> FeedState | Elsewhere:
        """Take the feed for one poll (for ``lease`` at most): its state, or
        ``Elsewhere`` if another instance polls it or polled it less than
        ``min_gap`` ago.  One machine's SQLite has no other instance: always
        the state."""
        return self.feed_state(url)

    def claim_feeds(
        self, feeds: Sequence[tuple[str, str, timedelta]], owner: str, now: datetime, lease: timedelta
    ) -> dict[str, FeedState | Elsewhere]:
        """``claim_feed`` for several feeds (url, name, min_gap) at once.
        Here (SQLite, one instance: a claim is the feed's state), one query
        for them all; PostgreSQL claims them in one statement of its own."""
        self.flush_polls()
        urls = [url for url, _name, _gap in feeds]
        found: dict[str, FeedState] = {}
        for start in range(0, len(urls), 500):  # well under SQLite's limit of bound parameters
            chunk = urls[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(
                (row[0], feed_state(row))
                for row in self._x(f"SELECT {FEED_COLUMNS} FROM feeds WHERE url IN ({marks})", chunk)
            )
        return {url: found.get(url) or FeedState(url=url) for url in urls}

    def release_feed(self, url: str, owner: str) -> None:  # noqa: B027 - a hook: SQLite needs nothing
        """A claimed feed not polled after all (backing off)."""

    def lease_takeovers(self) -> int:
        """Feeds taken from an instance that died while polling them."""
        return 0

    def instance_gone(self, instance: str) -> bool:
        """Whether ``instance`` is known to be dead (killed, its machine
        gone), not merely silent: a stopped one is not (``_holder_gone``)."""
        return self._holder_gone(instance)

    def free_feeds_of(self, instance: str) -> list[str]:
        """Free the feeds a gone ``instance`` had claimed (``instance_gone``):
        their URLs.  SQLite has no other instance, and no claims."""
        return []

    # -- meta ------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self._x("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._x("INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value))

    # -- instances and digest slots -----------------------------------------

    def heartbeat(self, instance: Instance) -> None:
        self._x(
            "INSERT INTO instances(id, host, pid, version, config_hash, started_at, seen_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET seen_at=excluded.seen_at,"
            " config_hash=excluded.config_hash",
            (
                instance.id,
                instance.host,
                instance.pid,
                instance.version,
                instance.config_hash,
                ts(instance.started_at),
                ts(instance.seen_at),
            ),
        )

    def leave(self, instance_id: str) -> None:
        self._x("DELETE FROM instances WHERE id=?", (instance_id,))

    def instances(self, now: datetime) -> list[Instance]:
        """Instances heard from lately (older rows are removed)."""
        self._x("DELETE FROM instances WHERE seen_at < ?", (ts(now - INSTANCE_ALIVE * 10),))
        rows = self._x(
            "SELECT id, host, pid, version, config_hash, started_at, seen_at FROM instances WHERE seen_at >= ?"
            " ORDER BY started_at, id",
            (ts(now - INSTANCE_ALIVE),),
        )
        return [Instance(r[0], r[1], int(r[2]), r[3], r[4], _dt(r[5]), _dt(r[6])) for r in rows]

    def slot_served(self, slot: str) -> bool:
        return self._x("SELECT 1 FROM digest_slots WHERE slot=?", (slot,)).fetchone() is not None

    def serve_slot(self, slot: str, owner: str, now: datetime, digest_id: int | None) -> bool:
        """Record that ``slot`` is served; False if it already was."""
        cur = self._x(
            "INSERT INTO digest_slots(slot, instance, at, digest_id) VALUES (?, ?, ?, ?) ON CONFLICT(slot) DO NOTHING",
            (slot, owner, ts(now), digest_id),
        )
        return cur.rowcount == 1

    # -- leases: who builds and delivers digests ----------------------------

    def take_lease(self, name: str, holder: str) -> Lease | None:
        """The lease ``name`` for ``holder`` if nobody holds it: never taken,
        released, lapsed (its holder stopped renewing it: stopped, or cut
        off from the database), or held by an instance that is gone (killed:
        no need to wait for the lapse).  A compare-and-swap on the token:
        of two instances taking it at once, one gets it."""
        with self.transaction():
            row = self._x(f"SELECT holder, token, until, {self.NOW} FROM leases WHERE name=?", (name,)).fetchone()
            if row is not None:
                before, token, until, now = str(row[0]), int(row[1]), int(row[2]), int(row[3])
                gone = before != holder and self._holder_gone(before)
                if until >= now and not gone:
                    return None
            taken = self._x(
                f"INSERT INTO leases(name, holder, token, until) VALUES (?, ?, 1, {self.NOW} + ?)"
                " ON CONFLICT(name) DO UPDATE SET holder=excluded.holder, token=leases.token+1, until=excluded.until"
                " WHERE leases.token = ? RETURNING token",
                (name, holder, self.lease_seconds, token if row is not None else 0),
            ).fetchone()
        if taken is None:
            return None
        if row is not None and until > 0 and before != holder:  # until 0: released, nothing to say
            metrics.lease_lapses.labels(name).inc()
            log.warning(
                "lease %s taken over from instance %s, which %s",
                name,
                before,
                "is gone" if gone else "stopped renewing it (stopped, or cut off from the database)",
            )
        return Lease(name, holder, int(taken[0]))

    def _holder_gone(self, holder: str) -> bool:
        """Whether a lease's holder is known to be dead: a process of this
        host that no longer exists (another host's: not known here)."""
        return local_process(holder) is False

    def renew_lease(self, lease: Lease) -> bool:
        """Extend it; False if it is gone (another holder took it)."""
        return (
            self._x(
                f"UPDATE leases SET until={self.NOW} + ? WHERE name=? AND holder=? AND token=? AND until >= {self.NOW}",
                (self.lease_seconds, lease.name, lease.holder, lease.token),
            ).rowcount
            == 1
        )

    def release_lease(self, lease: Lease) -> None:
        self._x(
            "UPDATE leases SET until=0 WHERE name=? AND holder=? AND token=?", (lease.name, lease.holder, lease.token)
        )

    @asynccontextmanager
    async def exclusive(self, name: str, holder: str) -> AsyncIterator[Lease]:
        """Hold the lease ``name`` (across processes and instances): digests
        are built and delivered under it, so no message is sent by two at
        once.  It is renewed while held; a holder stopped for longer than
        ``lease_seconds`` loses it to the next instance that asks, and finds
        out at its next renewal or fence (``mark_attempt``).  Two holders in
        one process wait for each other on an asyncio lock."""
        self.announce(holder)
        async with self._local_lock(name):
            started = time.monotonic()
            lease = self.take_lease(name, holder)
            waited = lease is None
            while lease is None:
                await asyncio.sleep(LOCK_WAIT)
                lease = self.take_lease(name, holder)
            if waited:
                metrics.lock_waits.labels(name).inc()
                metrics.lock_wait_seconds.labels(name).inc(time.monotonic() - started)
            keeper = asyncio.create_task(self._keep(lease))
            try:
                yield lease
            finally:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper
                with contextlib.suppress(StateError):
                    self.release_lease(lease)

    def _local_lock(self, name: str) -> asyncio.Lock:
        locks: dict[str, asyncio.Lock] = self.__dict__.setdefault("_local_locks", {})
        return locks.setdefault(name, asyncio.Lock())

    async def _keep(self, lease: Lease) -> None:
        """Renew ``lease`` while it is held; mark it lost if it went."""
        while not lease.lost:
            await asyncio.sleep(self.renew_seconds)
            try:
                if not self.renew_lease(lease):
                    lease.lost = True
                    log.warning("lease %s: another instance took it (this one was stopped or cut off)", lease.name)
            except StateError as exc:  # the database is away: the lease may lapse; the fence will tell
                log.warning("lease %s not renewed: %s", lease.name, exc)

    def announce(self, instance: str) -> None:  # noqa: B027 - a hook: SQLite needs nothing
        """Say that ``instance`` runs for as long as this connection does
        (PostgreSQL: a session lock; SQLite: the process itself)."""

    def instance_alive(self, instance: str, since: datetime | None = None) -> bool:
        """Whether ``instance`` still runs, perhaps stopped (SIGSTOP), as far
        as can be told since ``since`` (when it was last known to run): a
        process of this host that exists, or one that beat lately."""
        local = local_process(instance)
        if local is not None:
            return local
        row = self._x(
            "SELECT 1 FROM instances WHERE id=? AND seen_at >= ?", (instance, int(time.time()) - HEARTBEAT_FRESH)
        ).fetchone()
        return row is not None

    # -- feeds -----------------------------------------------------------

    def feed_state(self, url: str) -> FeedState:
        self.flush_polls()
        row = self._x(f"SELECT {FEED_COLUMNS} FROM feeds WHERE url=?", (url,)).fetchone()
        return FeedState(url=url) if row is None else feed_state(row)

    def failing_urls(self) -> set[str]:
        """Feeds whose last poll failed: one query, for the status line."""
        self.flush_polls()
        return {r[0] for r in self._x("SELECT url FROM feeds WHERE error_count > 0")}

    def failing_states(self) -> dict[str, FeedState]:
        self.flush_polls()
        return {row[0]: feed_state(row) for row in self._x(f"SELECT {FEED_COLUMNS} FROM feeds WHERE error_count > 0")}

    def all_feed_states(self) -> dict[str, FeedState]:
        self.flush_polls()
        return {row[0]: feed_state(row) for row in self._x(f"SELECT {FEED_COLUMNS} FROM feeds")}

    def _ensure_feed(self, url: str, name: str) -> None:
        self._x(
            "INSERT INTO feeds(url, name) VALUES (?, ?) ON CONFLICT(url) DO UPDATE SET name=excluded.name", (url, name)
        )

    def _held(self) -> dict[str, tuple[str, datetime, datetime | None]]:
        """url -> (name, polled at, next poll): 304s not yet written."""
        held: dict[str, tuple[str, datetime, datetime | None]] = self.__dict__.setdefault("_held_304s", {})
        return held

    def flush_polls(self) -> None:
        """Write the 304 records held back (``record_not_modified``) in one
        go; the service calls it at every poll tick, ``close`` and every
        read of feed states do (this store reads what it wrote)."""
        batch = self._held()
        if not batch:
            return
        self.__dict__["_held_304s"] = {}
        written = self._write_not_modified(batch)
        for url, (name, now, next_poll_at) in batch.items():
            if url not in written:  # a 304 before any 200: a feed not yet in the table
                self._record_not_modified_now(url, name, now, next_poll_at)

    def _write_not_modified(self, batch: dict[str, tuple[str, datetime, datetime | None]]) -> set[str]:
        """Write a batch of 304 records; return the urls written (the feeds
        in the table).  One transaction of one statement per feed here
        (SQLite: one commit instead of one each); PostgreSQL: one statement."""
        rows = [(name, ts(now), ts(now), _opt(nxt), url) for url, (name, now, nxt) in batch.items()]
        with self.transaction():
            self._many(NOT_MODIFIED + self._unlease + " WHERE url=?", rows)
            urls, known = list(batch), set[str]()
            for start in range(0, len(urls), 500):
                chunk = urls[start : start + 500]
                marks = ",".join("?" * len(chunk))
                known.update(str(r[0]) for r in self._x(f"SELECT url FROM feeds WHERE url IN ({marks})", chunk))
            return known

    def _superseded(self, url: str) -> None:
        """A later record of this feed is written now: one held back is dropped."""
        self._held().pop(url, None)

    def record_failure(self, url: str, name: str, now: datetime, status: str, error: str) -> None:
        self._superseded(url)
        with self.transaction():
            self._ensure_feed(url, name)
            self._x(
                "UPDATE feeds SET last_poll_at=?, last_status=?, last_error=?, last_new=0,"
                f" error_count=error_count+1, failing_since=COALESCE(failing_since, ?){self._unlease} WHERE url=?",
                (ts(now), status, error, ts(now), url),
            )

    _unlease = ""  # what the poll's last statement also sets: the lease goes with it

    def set_next_poll(self, url: str, when: datetime | None) -> None:
        self._x("UPDATE feeds SET next_poll_at=? WHERE url=?", (_opt(when), url))

    def set_warned(self, url: str, when: datetime) -> None:
        self._x("UPDATE feeds SET warned_at=? WHERE url=?", (ts(when), url))

    def record_not_modified(self, url: str, name: str, now: datetime, next_poll_at: datetime | None = None) -> None:
        """Held back and written with the others of the tick (``flush_polls``):
        the commonest poll of all, one statement (PostgreSQL) or one commit
        (SQLite) for hundreds.  Until then the feed stays leased to this
        instance; a crash meanwhile loses only the record, and the feed is
        polled again (a 304 again)."""
        held = self._held()
        held[url] = (name, now, next_poll_at)
        if len(held) >= NOT_MODIFIED_BATCH:
            self.flush_polls()

    def _record_not_modified_now(
        self, url: str, name: str, now: datetime, next_poll_at: datetime | None = None
    ) -> None:
        values = (name, ts(now), ts(now), _opt(next_poll_at), url)
        update = NOT_MODIFIED + self._unlease + " WHERE url=?"
        if self._x(update, values).rowcount == 0:  # a 304 before any 200: a feed not yet known
            with self.transaction():
                self._ensure_feed(url, name)
                self._x(update, values)

    def _feed_id(self, url: str) -> int | None:
        row = self._x(f"SELECT {self.FEED_ID} FROM feeds WHERE url=?", (url,)).fetchone()
        return None if row is None else int(row[0])

    def _lookup(self, keys: Iterable[Key]) -> dict[Key, int]:
        """The recorded keys among ``keys``, with the feed that recorded each."""
        wanted = list(set(keys))
        found: dict[Key, int] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._x(f"SELECT key, feed_id FROM seen WHERE key IN ({marks})", chunk)
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
        streams: Sequence[str] = ("",),
        late: Sequence[NewItem] = (),
        late_streams: Sequence[str] = (),
    ) -> int:
        """Store one successful poll atomically; returns how many items it took.

        ``streams``: the digests that take this feed; each new entry becomes
        one item per digest (pending for each, delivered by each), while its
        keys are recorded once: the dedupe is the installation's.  No
        stream: the entries are recorded as seen and no item is made (a feed
        no digest takes).  ``late``: for ``late_streams``, digests new to
        this feed, what their first poll of it takes (known entries among
        them), made only by the one transaction that records them as
        started (another instance may be doing the same).

        ``skip``: entries recorded as seen without being taken.  An item
        known meanwhile (another feed, or another instance, took the same
        article) is not stored: keys are checked again inside the
        transaction, under the lock that makes item-taking serial.
        """
        stamp = ts(now)
        self._superseded(url)
        with self.transaction():
            self._take_lock()
            self._ensure_feed(url, name)
            feed_id = self._feed_id(url) or 0
            known = self.seen(url, [n.entry for n in take])  # one lookup, inside the transaction
            rows: list[tuple[Key, int, int]] = []
            items: list[tuple[object, ...]] = []
            taken = 0
            for new in take:
                e = new.entry
                before = bool(known.intersection(e.keys)) or (e.alias is not None and e.alias in known)
                rows.extend((k, stamp, feed_id) for k in (*e.keys, *([e.alias] if e.alias else [])))
                known.update(e.keys)  # the same entry twice in one poll is one item
                if not before:
                    published = _opt(e.published)
                    body = json.dumps(list(new.body), ensure_ascii=False)
                    items.extend((url, name, e.title, e.link, published, stamp, body, s) for s in streams)
                    taken += 1
            for stream in streams:
                self._x("INSERT INTO feed_streams VALUES (?, ?, ?) ON CONFLICT DO NOTHING", (url, stream, stamp))
            for stream in late_streams:
                if self._x(
                    "INSERT INTO feed_streams VALUES (?, ?, ?) ON CONFLICT DO NOTHING", (url, stream, stamp)
                ).rowcount:
                    for new in late:
                        e = new.entry
                        body = json.dumps(list(new.body), ensure_ascii=False)
                        items.append((url, name, e.title, e.link, _opt(e.published), stamp, body, stream))
            self._many(
                "INSERT INTO items(feed_url, feed_name, title, link, published, first_seen, body, stream)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                items,
            )
            for entry in skip:
                rows.extend((k, stamp, feed_id) for k in (*entry.keys, *([entry.alias] if entry.alias else [])))
            self._many("INSERT INTO seen VALUES (?, ?, ?) ON CONFLICT DO NOTHING", rows)
            keys = b"".join(k for e in present for k in (*e.keys, *([e.alias] if e.alias else [])))
            self._x(
                "UPDATE feeds SET etag=?, last_modified=?, first_ok_at=COALESCE(first_ok_at, ?), last_poll_at=?,"
                " last_ok_at=?, last_status=?, last_error=?, last_new=?, error_count=0, failing_since=NULL,"
                f" warned_at=NULL, items_taken=items_taken+?, next_poll_at=?, current_keys=?{self._unlease}"
                " WHERE url=?",
                (
                    etag,
                    last_modified,
                    stamp,
                    stamp,
                    stamp,
                    "ok" if warning is None else "ok-with-warning",
                    warning,
                    taken,
                    taken,
                    _opt(next_poll_at),
                    keys,
                    url,
                ),
            )
        return taken

    # -- items and digests -------------------------------------------------

    def _items(self, where: str, args: Sequence[object] = ()) -> list[Item]:
        rows = self._x(
            "SELECT id, feed_name, feed_url, title, link, published, first_seen, body, stream FROM items WHERE "
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
                published=dt(r[5]),
                first_seen=dt(r[6]) or datetime.fromtimestamp(0, UTC),
                body=tuple(json.loads(r[7])),
                stream=r[8],
            )
            for r in rows
        ]

    def unbound_items(self, stream: str | None = None) -> list[Item]:
        """Items taken but not yet part of any digest: those waiting for the
        digest ``stream``, or for any (None)."""
        if stream is None:
            return self._items("digest_id IS NULL")
        return self._items("digest_id IS NULL AND stream=?", (stream,))

    def pending_count(self, stream: str | None = None) -> int:
        """Items not yet accepted by every webhook of their digest (of the
        digest ``stream``, or of any)."""
        only = "" if stream is None else " AND stream=?"
        row = self._x(
            "SELECT COUNT(*) FROM items WHERE (digest_id IS NULL OR digest_id IN"
            f" (SELECT digest_id FROM outbox WHERE delivered_at IS NULL AND dropped=0)){only}",
            () if stream is None else (stream,),
        ).fetchone()
        return int(row[0])

    def streams_pending(self) -> dict[str, int]:
        """Digest name → its items not yet in a digest (every name with any,
        configured or not: a digest removed from the config keeps them)."""
        rows = self._x("SELECT stream, COUNT(*) FROM items WHERE digest_id IS NULL GROUP BY stream").fetchall()
        return {str(s): int(n) for s, n in rows}

    def create_digest(
        self,
        date: str,
        now: datetime,
        item_ids: Sequence[int],
        text: str,
        messages: Callable[[int], dict[str, Sequence[tuple[str, bytes]]]],
        slot: tuple[str, str] | None = None,
        digest_id: int | None = None,
        lease: Lease | None = None,
        stream: str = "",
    ) -> int:
        """Bind items to a new digest and record its messages, atomically.

        ``messages(digest_id)`` returns, per webhook id, the (content type,
        body) of each message in order.  ``slot`` (slot, instance): the
        scheduled time this digest serves, recorded in the same transaction.
        ``digest_id``: the number ``reserve_digest_id`` gave it; ``lease``:
        the digest lease it is built under (checked in the transaction).
        """
        with self.transaction():
            if lease is not None and not self._holds(lease):
                raise LeaseLost(f"this instance lost the {lease.name} lease before its digest was recorded")
            if digest_id is None:
                row = self._x(
                    "INSERT INTO digests(date, created_at, text, stream) VALUES (?, ?, ?, ?) RETURNING id",
                    (date, ts(now), text, stream),
                ).fetchone()
                digest_id = int(row[0])
            else:
                self._x(
                    "INSERT INTO digests(id, date, created_at, text, stream) VALUES (?, ?, ?, ?, ?)",
                    (digest_id, date, ts(now), text, stream),
                )
            bound = 0
            for start in range(0, len(item_ids), 500):
                chunk = item_ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                bound += self._x(
                    f"UPDATE items SET digest_id=? WHERE digest_id IS NULL AND id IN ({marks})", (digest_id, *chunk)
                ).rowcount
            if bound != len(item_ids):
                # Another process bound some of them first: build nothing.
                raise LeaseLost("items changed while the digest was being built (another instance built one)")
            for webhook, msgs in messages(digest_id).items():
                self._many(
                    "INSERT INTO outbox(digest_id, webhook, seq, content_type) VALUES (?, ?, ?, ?)",
                    [(digest_id, webhook, seq, ctype) for seq, (ctype, _) in enumerate(msgs)],
                )
                self._many(
                    "INSERT INTO outbox_bodies(digest_id, webhook, seq, body) VALUES (?, ?, ?, ?)",
                    [(digest_id, webhook, seq, body) for seq, (_, body) in enumerate(msgs)],
                )
            if slot is not None and not self.serve_slot(slot[0], slot[1], now, digest_id):
                raise LeaseLost(f"the digest of {slot[0]} was built by another instance meanwhile")
        return digest_id

    def reserve_digest_id(self) -> int:
        """The number the next digest will have (its messages carry it and
        are built before its transaction).  Under the digest lock: SQLite
        gives a new row the highest id plus one, as this does."""
        return int(self._x("SELECT COALESCE(MAX(id), 0) + 1 FROM digests").fetchone()[0])

    def undelivered(self, webhook: str) -> list[OutMessage]:
        rows = self._x(
            "SELECT o.digest_id, o.webhook, o.seq, o.content_type, b.body, o.attempts, o.last_error,"
            " o.next_attempt_at, o.in_flight_at, o.in_flight_by FROM outbox o JOIN outbox_bodies b"
            " ON b.digest_id = o.digest_id AND b.webhook = o.webhook AND b.seq = o.seq"
            " WHERE o.webhook=? AND o.delivered_at IS NULL AND o.dropped=0 ORDER BY o.digest_id, o.seq",
            (webhook,),
        )
        return [OutMessage(r[0], r[1], r[2], r[3], bytes(r[4]), r[5], r[6], dt(r[7]), dt(r[8]), r[9]) for r in rows]

    def _update(self, msg: OutMessage, assignments: str, values: Sequence[object], fence: str = "") -> int:
        return self._x(
            f"UPDATE outbox SET {assignments} WHERE digest_id=? AND webhook=? AND seq=?{fence}",
            (*values, msg.digest_id, msg.webhook, msg.seq),
        ).rowcount

    def mark_in_flight(self, msg: OutMessage, now: datetime, by: str | None = None, resent: bool = False) -> int:
        """Committed before a POST: after a crash, the message is known to
        have been possibly sent (the only window for a duplicate).
        ``resent``: this POST may repeat one that arrived (counted)."""
        return self._update(
            msg,
            "in_flight_at=?, in_flight_by=?, resent=resent+?",
            (ts(now), by, int(resent)),
            " AND delivered_at IS NULL AND dropped=0",
        )

    def _holds(self, lease: Lease) -> bool:
        """Inside a transaction: the lease is this holder's and current
        (renewed, as proof of life)."""
        return self.renew_lease(lease)

    def mark_attempt(self, msg: OutMessage, now: datetime, lease: Lease, resent: bool) -> bool:
        """The fence before every POST of ``msg``: marked in flight by the
        lease's holder only while it still holds the lease (renewed in the
        same transaction) and the message is still pending; False otherwise,
        and nothing may be sent."""
        with self.transaction():
            return self._holds(lease) and self.mark_in_flight(msg, now, lease.holder, resent) == 1

    def mark_delivered(self, msg: OutMessage, now: datetime, remote_id: str | None = None) -> None:
        """Accepted; ``remote_id``: the id the platform gave it, which the
        digest's next message may refer to (a thread of replies)."""
        # Two single statements, not a transaction: each is retried on a
        # fresh connection if the database dropped the old one (a
        # transaction cannot be), so a restart right after the platform
        # accepted the message does not make it look unsent.  The id first:
        # a crash between them leaves the message in flight (sent again,
        # counted), never delivered without its id.
        if remote_id is not None:
            self._x(
                "INSERT INTO outbox_ids VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (msg.digest_id, msg.webhook, msg.seq, remote_id),
            )
        # Not fenced: an acceptance is a fact, recorded even by an instance
        # that lost its lease while the answer was on its way.
        self._update(
            msg,
            "delivered_at=?, attempts=attempts+1, last_attempt_at=?, last_error=NULL, in_flight_at=NULL",
            (ts(now), ts(now)),
            " AND delivered_at IS NULL",
        )

    def previous_remote_id(self, msg: OutMessage) -> str | None:
        """The platform's id for the digest's message before ``msg``."""
        row = self._x(
            "SELECT remote_id FROM outbox_ids WHERE digest_id=? AND webhook=? AND seq=?",
            (msg.digest_id, msg.webhook, msg.seq - 1),
        ).fetchone()
        return None if row is None else str(row[0])

    def mark_failed(
        self, msg: OutMessage, now: datetime, error: str, retry_at: datetime, unanswered: bool = False
    ) -> None:
        """Not accepted.  ``unanswered``: a POST of it may have arrived (no
        answer came): it stays marked in flight, by ``UNANSWERED``, so that
        the next POST is counted as a possible copy."""
        flight = "in_flight_by=?" if unanswered else "in_flight_at=NULL"
        params: tuple[object, ...] = (ts(now), error, ts(retry_at)) + ((UNANSWERED,) if unanswered else ())
        self._update(msg, f"attempts=attempts+1, last_attempt_at=?, last_error=?, next_attempt_at=?, {flight}", params)

    def set_aside(self, msg: OutMessage, now: datetime, error: str) -> None:
        """Refused for good (too long, invalid): out of the queue, kept with
        its refusal, so the webhook's later messages go on."""
        self._update(
            msg,
            "dropped=?, attempts=attempts+1, last_attempt_at=?, last_error=?, next_attempt_at=NULL, in_flight_at=NULL",
            (SET_ASIDE, ts(now), error),
            " AND delivered_at IS NULL AND dropped=0",
        )

    def refused_in_a_row(self, webhook: str) -> int:
        """How many of the webhook's last settled messages (accepted or set
        aside, latest first) were set aside before the last accepted one."""
        rows = self._x(
            "SELECT dropped FROM outbox WHERE webhook=? AND (delivered_at IS NOT NULL OR dropped=?)"
            " ORDER BY last_attempt_at DESC, digest_id DESC, seq DESC LIMIT 100",
            (webhook, SET_ASIDE),
        ).fetchall()
        count = 0
        for (dropped,) in rows:
            if int(dropped) != SET_ASIDE:
                break
            count += 1
        return count

    def set_aside_messages(self) -> list[SetAside]:
        """Every message set aside, oldest first."""
        rows = self._x(
            "SELECT o.digest_id, o.webhook, o.seq, o.last_error, o.last_attempt_at, d.created_at, LENGTH(b.body)"
            " FROM outbox o JOIN digests d ON d.id = o.digest_id JOIN outbox_bodies b"
            " ON b.digest_id = o.digest_id AND b.webhook = o.webhook AND b.seq = o.seq"
            " WHERE o.dropped=? AND o.delivered_at IS NULL ORDER BY o.digest_id, o.seq",
            (SET_ASIDE,),
        ).fetchall()
        return [SetAside(r[0], r[1], r[2], r[3] or "", _dt(r[4]), _dt(r[5]), int(r[6])) for r in rows]

    def requeue(self, digest_id: int, webhook: str, seq: int) -> bool:
        """A set-aside message back in its webhook's queue (in its place,
        by digest and number), to be tried at the next delivery."""
        return (
            self._x(
                "UPDATE outbox SET dropped=0, next_attempt_at=NULL WHERE digest_id=? AND webhook=? AND seq=?"
                " AND delivered_at IS NULL AND dropped=?",
                (digest_id, webhook, seq, SET_ASIDE),
            ).rowcount
            == 1
        )

    def drop_message(self, digest_id: int, webhook: str, seq: int) -> bool:
        """A pending or set-aside message never sent: its digest's items are
        then settled for that webhook (and pruned in time)."""
        return (
            self._x(
                "UPDATE outbox SET dropped=1 WHERE digest_id=? AND webhook=? AND seq=? AND delivered_at IS NULL"
                " AND dropped IN (0, ?)",
                (digest_id, webhook, seq, SET_ASIDE),
            ).rowcount
            == 1
        )

    def resent_count(self) -> int:
        """POSTs that may have repeated one that arrived: after a crash, a
        takeover, a timeout or a broken connection hid whether it did."""
        return int(self._x("SELECT COALESCE(SUM(resent), 0) FROM outbox").fetchone()[0])

    def drop_webhooks_except(self, active: Iterable[str]) -> int:
        """Messages for webhooks no longer configured will never be sent."""
        keep = list(active)
        marks = ",".join("?" * len(keep)) or "''"
        return self._x(
            f"UPDATE outbox SET dropped=1 WHERE delivered_at IS NULL AND dropped=0 AND webhook NOT IN ({marks})", keep
        ).rowcount

    def backlog(self) -> list[WebhookBacklog]:
        """Per webhook: undelivered messages and the state of the first one,
        and the messages set aside."""
        rows = self._x(
            "SELECT webhook, SUM(CASE WHEN dropped=0 THEN 1 ELSE 0 END), SUM(CASE WHEN dropped=? THEN 1 ELSE 0 END)"
            " FROM outbox WHERE delivered_at IS NULL AND dropped IN (0, ?) GROUP BY webhook ORDER BY webhook",
            (SET_ASIDE, SET_ASIDE),
        ).fetchall()
        out = []
        for webhook, count, aside in rows:
            head = self._x(
                "SELECT o.attempts, o.last_error, o.last_attempt_at, o.next_attempt_at, d.created_at FROM outbox o"
                " JOIN digests d ON d.id = o.digest_id"
                " WHERE o.webhook=? AND o.delivered_at IS NULL AND o.dropped=0 ORDER BY o.digest_id, o.seq LIMIT 1",
                (webhook,),
            ).fetchone()
            if head is None:
                out.append(WebhookBacklog(webhook, 0, 0, None, None, None, int(aside)))
                continue
            out.append(
                WebhookBacklog(
                    webhook, int(count), int(head[0]), head[1], dt(head[2]), dt(head[3]), int(aside), dt(head[4])
                )
            )
        return out

    def set_polling(self, instance: str, urls: Iterable[str], alive: Iterable[str]) -> None:
        """The feeds ``instance`` polls now (its heartbeat), for ``status``;
        the lists of instances no longer ``alive`` are dropped."""
        keep = [f"polling:{i}" for i in alive] + [f"polling:{instance}"]
        with self.transaction():
            self.set_meta(f"polling:{instance}", "\n".join(sorted(urls)))
            marks = ", ".join("?" for _ in keep)
            self._x(f"DELETE FROM meta WHERE key LIKE ? AND key NOT IN ({marks})", ("polling:%", *keep))

    def polling(self) -> dict[str, str]:
        """Feed URL -> the instance polling it now, as heartbeats last said."""
        rows = self._x("SELECT key, value FROM meta WHERE key LIKE ?", ("polling:%",)).fetchall()
        return {url: str(key).removeprefix("polling:") for key, value in rows for url in str(value).split("\n") if url}

    def last_digest(self, stream: str | None = None) -> DigestSummary | None:
        """The last digest built (of ``stream``, or of any), its items and
        how far each webhook took it."""
        only, args = ("", ()) if stream is None else (" WHERE stream=?", (stream,))
        row = self._x(f"SELECT id, date, created_at FROM digests{only} ORDER BY id DESC LIMIT 1", args).fetchone()
        if row is None:
            return None
        digest_id = int(row[0])
        (items,) = self._x("SELECT COUNT(*) FROM items WHERE digest_id=?", (digest_id,)).fetchone()
        rows = self._x(
            "SELECT webhook, COUNT(*), SUM(CASE WHEN delivered_at IS NOT NULL THEN 1 ELSE 0 END),"
            " SUM(CASE WHEN dropped=? THEN 1 ELSE 0 END) FROM outbox WHERE digest_id=? GROUP BY webhook",
            (SET_ASIDE, digest_id),
        ).fetchall()
        built = dt(row[2])
        assert built is not None
        webhooks = {str(w): (int(n), int(ok or 0), int(aside or 0)) for w, n, ok, aside in rows}
        return DigestSummary(digest_id, str(row[1]), built, int(items), webhooks)

    def oldest_pending(self) -> datetime | None:
        """When the oldest undelivered message's digest was built."""
        row = self._x(
            "SELECT MIN(d.created_at) FROM outbox o JOIN digests d ON d.id = o.digest_id"
            " WHERE o.delivered_at IS NULL AND o.dropped=0"
        ).fetchone()
        return dt(row[0]) if row else None

    def record_label_phrases(self, day: str, phrases: Iterable[str]) -> None:
        """The phrases of a digest day (``YYYY-MM-DD``), for later days' labels."""
        with self.transaction():
            self._many("INSERT INTO label_phrases VALUES (?, ?) ON CONFLICT DO NOTHING", [(day, p) for p in phrases])
            oldest = (date.fromisoformat(day) - LABEL_MEMORY).isoformat()
            self._x("DELETE FROM label_phrases WHERE day < ?", (oldest,))

    def label_background(self, day: str, days: int) -> dict[str, int]:
        """Phrase → the number of the ``days`` days before ``day`` it appeared on."""
        since = (date.fromisoformat(day) - timedelta(days=days)).isoformat()
        rows = self._x(
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
        stamp = ts(cutoff)
        with self.transaction():
            self._take_lock()
            self._keep_table()
            for (blob,) in self._x("SELECT current_keys FROM feeds WHERE current_keys IS NOT NULL").fetchall():
                data = bytes(blob)
                self._many(
                    "INSERT INTO keep VALUES (?) ON CONFLICT DO NOTHING",
                    [(data[i : i + 20],) for i in range(0, len(data), 20)],
                )
            keys = self._x(
                # An anti-join: NOT IN would rescan ``keep`` for every row
                # on PostgreSQL once it outgrows work_mem.
                "DELETE FROM seen WHERE first_seen < ? AND NOT EXISTS (SELECT 1 FROM keep WHERE keep.key = seen.key)",
                (stamp,),
            ).rowcount
            old = [
                r[0]
                for r in self._x(
                    # Set-aside messages are kept until they are retried or dropped.
                    "SELECT id FROM digests WHERE created_at < ? AND id NOT IN"
                    " (SELECT digest_id FROM outbox WHERE delivered_at IS NULL AND dropped IN (0, ?))",
                    (stamp, SET_ASIDE),
                ).fetchall()
            ]
            for start in range(0, len(old), 500):
                chunk = old[start : start + 500]
                marks = ",".join("?" * len(chunk))
                self._x(f"DELETE FROM outbox WHERE digest_id IN ({marks})", chunk)
                self._x(f"DELETE FROM outbox_bodies WHERE digest_id IN ({marks})", chunk)
                self._x(f"DELETE FROM outbox_ids WHERE digest_id IN ({marks})", chunk)
                self._x(f"DELETE FROM items WHERE digest_id IN ({marks})", chunk)
                self._x(f"DELETE FROM digests WHERE id IN ({marks})", chunk)
            self._x("DELETE FROM digest_slots WHERE at < ?", (stamp,))
        return keys, len(old)

    def seen_count(self) -> int:
        return int(self._x("SELECT COUNT(*) FROM seen").fetchone()[0])

    def digest_count(self) -> int:
        return int(self._x("SELECT COUNT(*) FROM digests").fetchone()[0])

    # -- copying (feedbot state copy) ------------------------------------------

    def columns(self, table: str) -> tuple[str, ...]:
        """The columns a copy carries for ``table`` (the feeds' id included)."""
        return COPY_COLUMNS[table] if table != "feeds" else (self.FEED_ID, *COPY_COLUMNS["feeds"])

    def dump(self, table: str, batch: int = 5000) -> Iterator[list[Sequence[Any]]]:
        cols = self.columns(table)
        rows = self._x(f"SELECT {', '.join(cols)} FROM {table}").fetchall()
        for start in range(0, len(rows), batch):
            yield rows[start : start + batch]

    def load(self, table: str, rows: Sequence[Sequence[Any]]) -> None:
        cols = self.columns(table)
        marks = ", ".join("?" * len(cols))
        self._many(f"INSERT INTO {table}({', '.join(cols)}) VALUES ({marks})", rows)

    def after_load(self) -> None:  # noqa: B027 - a hook: SQLite needs nothing
        """Once every table is loaded (PostgreSQL moves its id sequences on)."""

    def is_empty(self) -> bool:
        return all(self._x(f"SELECT 1 FROM {t} LIMIT 1").fetchone() is None for t in TABLES if t != "meta")


def local_process(instance: str) -> bool | None:
    """Whether the process of an instance of this host exists (stopped or
    not); None for another host's, or a name that is no instance id."""
    where = instance_pid(instance)
    if where is None or where[0] != socket.gethostname():
        return None
    try:
        os.kill(where[1], 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's: it exists
        pass
    # A zombie is dead: killed, and not yet reaped by its parent (a
    # supervisor slow to wait for it), only its exit status is left.  Taken
    # for alive, it held its feeds for a whole lease after a SIGKILL.
    try:
        with open(f"/proc/{where[1]}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):  # no /proc (not Linux), or the process just went
        return True
    return state not in (b"Z", b"X")


def _dt(value: int | None) -> datetime:
    return dt(value) or datetime.fromtimestamp(0, UTC)


FEED_COLUMNS = (
    "url, name, etag, last_modified, first_ok_at, last_poll_at, last_ok_at, last_status, last_error,"
    " last_new, error_count, failing_since, items_taken, next_poll_at, warned_at"
)

COPY_COLUMNS: dict[str, tuple[str, ...]] = {
    "meta": ("key", "value"),
    "feeds": (*(c.strip() for c in FEED_COLUMNS.split(",")), "current_keys"),
    "seen": ("key", "first_seen", "feed_id"),
    "digests": ("id", "date", "created_at", "text", "stream"),
    "items": ("id", "feed_url", "feed_name", "title", "link", "published", "first_seen", "body", "digest_id", "stream"),
    "outbox": tuple(
        "digest_id webhook seq content_type delivered_at dropped attempts last_error last_attempt_at"
        " next_attempt_at in_flight_at resent in_flight_by".split()
    ),
    "outbox_bodies": ("digest_id", "webhook", "seq", "body"),
    "outbox_ids": ("digest_id", "webhook", "seq", "remote_id"),
    "label_phrases": ("day", "phrase"),
    "feed_streams": ("feed_url", "stream", "since"),
    "digest_slots": ("slot", "instance", "at", "digest_id"),
}


def feed_state(row: Sequence[Any]) -> FeedState:
    return FeedState(
        url=row[0],
        name=row[1],
        etag=row[2],
        last_modified=row[3],
        first_ok_at=dt(row[4]),
        last_poll_at=dt(row[5]),
        last_ok_at=dt(row[6]),
        last_status=row[7],
        last_error=row[8],
        last_new=row[9],
        error_count=row[10],
        failing_since=dt(row[11]),
        items_taken=row[12],
        next_poll_at=dt(row[13]),
        warned_at=dt(row[14]),
    )
