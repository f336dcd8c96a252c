"""Several instances on one PostgreSQL: feeds polled by one at a time, items
taken once, one digest per slot, deliveries fenced, instances listed; the
state copied between backends; metrics scraped from a running service.

A real PostgreSQL server (the session's ``pg`` fixture), real processes
where it matters (`feedbot run`, `feedbot status`, `feedbot state copy`).
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot import metrics
from bot.config import load_config
from bot.deliver import Deliverer
from bot.digest import Digester
from bot.errors import StateError
from bot.fetch import make_client
from bot.keys import entry_keys
from bot.loopback import Receiver, Server
from bot.models import Entry
from bot.pgserver import PgServer
from bot.poll import Poller
from bot.state import Elsewhere, FeedState, Instance, NewItem, SQLiteStore, Store
from bot.state.postgres import PostgresStore
from bot.state.sql import TABLES
from tests.conftest import Clock, DynamicFeeds, FeedItem, run_cli, write_toml
from tests.test_service import spawn_run

NOW = datetime(2025, 1, 21, 0, 0, tzinfo=UTC)


@pytest.fixture
def db(pg: PgServer) -> str:
    return pg.new_database()


@pytest.fixture
def two(db: str) -> Iterator[tuple[PostgresStore, PostgresStore]]:
    a, b = PostgresStore.open(db), PostgresStore.open(db)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def entry(n: int) -> Entry:
    link = f"https://example.jp/a/{n}"
    ident = entry_keys("https://example.jp/feed", f"guid-{n}", link, f"title {n}", None)
    return Entry(ident.keys, f"title {n}", link, NOW, ("body",), ident.alias)


def test_a_feed_is_polled_by_one_instance_at_a_time(two: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = two
    url, gap, lease = "https://example.jp/feed", timedelta(minutes=7), timedelta(seconds=60)
    assert isinstance(a.claim_feed(url, "f", "A", NOW, gap, lease), FeedState)  # a new feed: A takes it
    other = b.claim_feed(url, "f", "B", NOW, gap, lease)  # A polls it now: B may try when A's lease ends
    assert isinstance(other, Elsewhere) and other.lease_until is not None and other.last_poll_at is None
    a.record_not_modified(url, "f", NOW)  # A's poll ends: its lease goes with the record...
    assert isinstance(b.claim_feed(url, "f", "B", NOW + timedelta(minutes=1), gap, lease), Elsewhere)
    a.flush_polls()  # ...once written (the service's next tick writes the tick's 304s)
    # A polled it just now: B is told when A polled, to follow A's schedule
    assert b.claim_feed(url, "f", "B", NOW + timedelta(minutes=1), gap, lease) == Elsewhere(NOW, None)
    assert isinstance(a.claim_feed(url, "f", "A", NOW + timedelta(minutes=1), gap, lease), FeedState)  # its own
    a.record_not_modified(url, "f", NOW + timedelta(minutes=1))
    a.flush_polls()
    later = b.claim_feed(url, "f", "B", NOW + timedelta(minutes=9), gap, lease)
    assert isinstance(later, FeedState) and later.last_poll_at == NOW + timedelta(minutes=1)
    assert a.lease_takeovers() == b.lease_takeovers() == 0


def _statements() -> float:
    return metrics.REGISTRY.get_sample_value("feedbot_db_statements_total") or 0.0


def test_304_records_are_written_together_and_a_later_record_wins(two: tuple[PostgresStore, PostgresStore]) -> None:
    a, _b = two
    gap, lease = timedelta(minutes=7), timedelta(seconds=60)
    urls = [f"https://example.jp/{n}.xml" for n in range(3)]
    for url in urls[:2]:
        assert isinstance(a.claim_feed(url, "f", "A", NOW, gap, lease), FeedState)
    before = a._x("SELECT COUNT(*) FROM feeds").fetchone()[0]
    for url in urls:  # the third: a 304 before the feed is in the table (written alone)
        a.record_not_modified(url, "f", NOW, NOW + timedelta(hours=1))
    # The second's next poll fails before the flush: its failure stands, not the older 304.
    a.record_failure(urls[1], "f", NOW + timedelta(seconds=1), "error", "HTTP 500")
    statements = _statements()
    a.flush_polls()
    assert _statements() - statements == 5  # one UPDATE for the known two; the unknown one alone (4)
    states = a.all_feed_states()
    assert [states[u].last_status for u in urls] == ["not-modified", "error", "not-modified"]
    assert states[urls[0]].next_poll_at == NOW + timedelta(hours=1)
    assert a._x("SELECT COUNT(*) FROM feeds WHERE lease_owner IS NOT NULL").fetchone()[0] == 0  # leases gone
    assert a._x("SELECT COUNT(*) FROM feeds").fetchone()[0] == before + 1
    statements = _statements()
    a.flush_polls()  # nothing left: no statement
    assert _statements() == statements


def test_feeds_are_claimed_together_as_one_by_one(two: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = two
    gap, lease = timedelta(minutes=7), timedelta(seconds=60)
    urls = [f"https://example.jp/many/{n}.xml" for n in range(40)]
    for url in urls[:30]:  # known to the state; the last ten are new
        a.claim_feed(url, "f", "A", NOW, gap, lease)
        a.record_not_modified(url, "f", NOW - timedelta(minutes=10))
    a.flush_polls()
    assert isinstance(b.claim_feed(urls[0], "f", "B", NOW, gap, lease), FeedState)  # B polls the first now
    statements = _statements()
    claims = a.claim_feeds([(u, "f", gap) for u in urls], "A", NOW, lease)
    assert _statements() - statements == 1 + 10 * 2  # the 30 known at once; each new one by its insert
    assert isinstance(claims[urls[0]], Elsewhere) and claims[urls[0]].lease_until is not None
    assert all(isinstance(claims[u], FeedState) for u in urls[1:])
    # The same answers as one by one: B finds them all leased to A now.
    again = b.claim_feeds([(u, "f", gap) for u in urls[1:]], "B", NOW, lease)
    assert all(isinstance(c, Elsewhere) and c.lease_until is not None for c in again.values())


def test_a_dead_instances_feed_is_taken_over_when_its_claim_runs_out(
    two: tuple[PostgresStore, PostgresStore], pg: PgServer, db: str
) -> None:
    a, b = two
    url, gap = "https://example.jp/feed", timedelta(minutes=7)
    assert isinstance(a.claim_feed(url, "f", "A", NOW, gap, timedelta(seconds=600)), FeedState)
    assert isinstance(b.claim_feed(url, "f", "B", NOW, gap, timedelta(seconds=60)), Elsewhere)
    pg.sql(db, "UPDATE feeds SET lease_until = 0")  # A died; its claim has run out
    assert isinstance(b.claim_feed(url, "f", "B", NOW, gap, timedelta(seconds=60)), FeedState)
    assert b.lease_takeovers() == 1


def test_a_killed_instances_claims_are_freed_at_its_peers_next_heartbeat(
    two: tuple[PostgresStore, PostgresStore], tmp_path: Path
) -> None:
    """A killed instance's claims (its polls', and those made ahead for
    feeds waiting for a slot) held its feeds for a whole lease: feeds due
    were polled up to a minute late (issue 27).  Its session gone, a peer's
    heartbeat frees them and stops counting it as a peer; a stopped one
    (its session kept) keeps them."""
    from bot.service import Service

    a, b = two
    dead, gap, lease = "another-host-4242-eeeeee", timedelta(minutes=7), timedelta(seconds=600)
    urls = [f"https://example.jp/claimed/{n}.xml" for n in range(5)]
    a.announce(dead)
    for url in urls:  # known to the state, last polled long ago
        a.claim_feed(url, "f", dead, NOW - timedelta(hours=1), gap, lease)
        a.record_not_modified(url, "f", NOW - timedelta(hours=1))
    a.flush_polls()
    ahead = a.claim_feeds([(u, "f", gap) for u in urls], dead, NOW, lease)  # as claims made ahead are
    assert all(isinstance(c, FeedState) for c in ahead.values())

    path = tmp_path / "config.toml"
    path.write_text('[[feeds]]\nname = "f"\nurl = "https://example.jp/claimed/0.xml"\n', encoding="utf-8")
    service = Service(load_config(path, {}), clock=lambda: datetime.now(UTC))
    service.store = b
    service.poller = Poller(service.config, b, make_client(service.config.poll), service.clock)
    # What the poller kept of a claim made ahead: a feed of the dead one's
    # (stale once it is gone), and one of its own.
    service.poller._claimed = {
        urls[0]: (Elsewhere(NOW, NOW + lease), time.monotonic()),
        "https://example.jp/mine.xml": (FeedState(url="https://example.jp/mine.xml"), time.monotonic()),
    }
    feed = service.config.feeds[0]
    later = datetime.now(UTC) + timedelta(minutes=1)  # when a try that found the claim put the next one
    service._due = {feed.url: (feed, later)}
    service._refresh_metrics = lambda now, alive: None  # type: ignore[method-assign]
    # Last beat 30 s ago: still alive by its heartbeat (60 s), and gone by
    # its session alone even on a server started a moment ago.
    beat_at = datetime.now(UTC) - timedelta(seconds=30)
    b.heartbeat(Instance(dead, "another-host", 4242, "0", "x", beat_at, beat_at))

    async def beat() -> None:
        await service._heartbeat()

    asyncio.run(beat())  # alive (its session holds its lock): its claims stand
    assert urls[0] in service.poller._claimed
    assert sorted(service._peers) == sorted([dead, service.instance_id])
    assert all(isinstance(c, Elsewhere) for c in b.claim_feeds([(u, "f", gap) for u in urls], "B", NOW, lease).values())

    assert a._alive is not None
    a._alive.close()  # what the server sees of a SIGKILL
    asyncio.run(beat())
    assert service._peers == [service.instance_id]
    assert b.lease_takeovers() == len(urls)
    assert service._due[feed.url][1] < later  # tried at the next tick, not a minute later
    assert list(service.poller._claimed) == ["https://example.jp/mine.xml"]  # no stale "elsewhere" left
    claims = b.claim_feeds([(u, "f", gap) for u in urls], "B", NOW, lease)
    assert all(isinstance(c, FeedState) for c in claims.values())
    asyncio.run(beat())  # freed once, not on every heartbeat
    assert b.lease_takeovers() == len(urls)


def test_two_instances_taking_the_same_entries_take_them_once(two: tuple[PostgresStore, PostgresStore]) -> None:
    """Two instances poll one feed (or two feeds carry one article) at the
    same moment: item-taking is serial, and each entry is taken once."""
    entries = [entry(n) for n in range(50)]
    start = threading.Barrier(2)
    taken: dict[str, int] = {}

    def poll(store: PostgresStore, name: str, url: str) -> None:
        start.wait()
        taken[name] = store.record_poll(
            url, name, NOW, etag=None, last_modified=None, take=[NewItem(e, ("b",)) for e in entries], skip=[]
        )

    threads = [
        threading.Thread(target=poll, args=(two[0], "A", "https://example.jp/feed")),
        threading.Thread(target=poll, args=(two[1], "B", "https://mirror.example.jp/feed")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(taken.values()) == [0, 50]
    assert len(two[0].unbound_items()) == 50


def test_one_digest_per_slot_across_instances(tmp_path: Path, feeds: DynamicFeeds, clock: Clock, db: str) -> None:
    feeds.feeds["f"] = [FeedItem(f"g{n}", f"記事 {n}", None, clock.now - timedelta(minutes=n)) for n in range(3)]
    text = f'[poll]\nhost_spacing = "0s"\n[[feeds]]\nname = "f"\nurl = "{feeds.feed_url("f")}"\nbody = "feed"\n'
    config = load_config(write_toml(tmp_path, text + f'[state]\nurl = "{db}"\n'), {})

    class Sink:
        def write(self, s: str) -> int:
            return len(s)

        def flush(self) -> None:
            pass

    async def go() -> list[int | None]:
        stores = [PostgresStore.open(db) for _ in range(2)]
        async with make_client(config.poll) as client:
            async with Poller(config, stores[0], client, clock) as poller:
                await poller.poll_all(config.feeds)
            digesters = [
                Digester(config, s, Deliverer(client, s, clock), clock, Sink(), owner=f"i{n}")
                for n, s in enumerate(stores)
            ]
            slot = "2025-01-21T07:00:00+09:00"
            results = await asyncio.gather(*(d.run(slot=slot) for d in digesters))
            feeds.feeds["f"].append(FeedItem("late", "遅れた記事", None, clock.now))
            async with Poller(config, stores[1], client, clock, owner="i1") as poller:
                await poller.poll_all(config.feeds, force=True)
            again = await digesters[1].run(slot=slot)  # the slot is served: the late item waits
            later = await digesters[0].run(slot="2025-01-21T19:00:00+09:00")
        for s in stores:
            s.close()
        return [r.digest_id for r in results] + [again.digest_id, later.digest_id]

    first, second, again, later = asyncio.run(go())
    assert sorted([first, second], key=lambda x: x is None) == [1, None]
    assert again is None and later == 2


def test_the_digest_lease_excludes_and_a_lapsed_one_stops_deliveries(
    two: tuple[PostgresStore, PostgresStore], pg: PgServer, db: str
) -> None:
    a, b = two
    a.record_poll(
        "https://example.jp/feed", "f", NOW, etag=None, last_modified=None, take=[NewItem(entry(1), ("b",))], skip=[]
    )
    item = a.unbound_items()[0]
    a.create_digest("2025-01-21", NOW, [item.id], "text", lambda d: {"hook": [("text/plain", b"m")]})

    async def go() -> tuple[bool, bool, bool, bool]:
        async with a.exclusive("digest", "instance-a") as lease:
            b_got_it = asyncio.create_task(_acquire(b, "instance-b"))
            await asyncio.sleep(0)  # let b try once
            blocked = not b_got_it.done()
            msg = a.undelivered("hook")[0]
            fenced = a.mark_attempt(msg, NOW, lease, resent=False)
            # A is stopped past its lease (SIGSTOP): it lapses, and B takes it.
            pg.sql(db, "UPDATE leases SET until = 1")
            await asyncio.wait_for(b_got_it, 30)
            still = a.mark_attempt(msg, NOW, lease, resent=False)  # A resumes: its fence fails
        return blocked, fenced, still, b_got_it.result()

    blocked, fenced, still, acquired = asyncio.run(go())
    assert blocked and fenced and not still and acquired
    assert a.undelivered("hook")[0].in_flight_by == "instance-a"


async def _acquire(store: Store, holder: str) -> bool:
    async with store.exclusive("digest", holder):
        return True


def test_status_lists_the_instances_and_warns_when_their_configs_differ(tmp_path: Path, db: str) -> None:
    store = PostgresStore.open(db)
    now = datetime.now(UTC)
    store.heartbeat(Instance("a-1", "host-a", 101, "0.1", "aaaaaaaaaaaa", now, now))
    store.heartbeat(Instance("b-1", "host-b", 202, "0.1", "bbbbbbbbbbbb", now, now))
    store.heartbeat(Instance("c-1", "host-c", 303, "0.1", "aaaaaaaaaaaa", now, now - timedelta(minutes=5)))  # gone
    store.close()
    path = write_toml(tmp_path, f'[state]\nurl = "{db}"\n')
    r = run_cli("--config", str(path), "status")
    assert r.returncode == 0, r.stderr
    user_db = db.split("@", 1)[1]
    assert f"state: postgresql://feedbot@{user_db}; instances (2):" in r.stdout
    assert "  host-a pid 101 (feedbot 0.1)" in r.stdout and "  host-b pid 202" in r.stdout
    assert "host-c" not in r.stdout
    assert "WARNING: the instances run different config files" in r.stdout


def test_a_bad_database_url_is_one_sentence_and_the_password_never_shows(tmp_path: Path, pg: PgServer) -> None:
    url = pg.url("no_such_db").replace("feedbot@", "feedbot:s3cret-pw@")
    path = write_toml(tmp_path, f'[state]\nurl = "{url}"\n')
    r = run_cli("--config", str(path), "status")
    assert r.returncode == 1
    assert r.stderr.startswith(f"feedbot: state database postgresql://feedbot@127.0.0.1:{pg.port}/no_such_db")
    assert "s3cret-pw" not in r.stderr + r.stdout and "Traceback" not in r.stderr
    bad = write_toml(tmp_path, '[state]\nurl = "mysql://x/y"\n')
    r = run_cli("--config", str(bad), "check")
    assert r.returncode == 2 and "state.url: must be a postgresql:// URL" in r.stderr
    # a password libpq cannot read (bad percent-encoding) is refused by check, and not echoed
    mangled = write_toml(tmp_path, '[state]\nurl = "postgresql://feedbot:hunter%zz2@127.0.0.1/db"\n')
    r = run_cli("--config", str(mangled), "check")
    assert r.returncode == 2 and "state.url: is not a URL libpq can read" in r.stderr, r.stderr
    assert "hunter" not in r.stderr + r.stdout
    query = write_toml(tmp_path, f'[state]\nurl = "{pg.url("no_such_db")}?password=qu3ry-pw"\n')
    r = run_cli("--config", str(query), "status")
    assert r.returncode == 1 and "qu3ry-pw" not in r.stderr + r.stdout


def _tables(store: Store) -> dict[str, list[tuple[object, ...]]]:
    return {t: sorted((tuple(r) for rows in store.dump(t) for r in rows), key=repr) for t in TABLES}


def test_state_copy_to_postgresql_and_back_loses_and_resends_nothing(
    tmp_path: Path, feeds: DynamicFeeds, clock: Clock, pg: PgServer
) -> None:
    rec = Receiver()
    now = datetime.now(UTC)  # the CLI runs on the real clock
    with Server(rec) as hook:
        feeds.feeds["a"] = [FeedItem(f"a{n}", f"記事 {n}", None, now - timedelta(minutes=n)) for n in range(4)]
        feeds.feeds["b"] = [FeedItem("b0", "別の記事", None, now)]
        text = (
            '[poll]\nhost_spacing = "0s"\nfirst_poll = "all"\n'
            f'[[feeds]]\nname = "a"\nurl = "{feeds.feed_url("a")}"\nbody = "feed"\n'
            f'[[feeds]]\nname = "b"\nurl = "{feeds.feed_url("b")}"\nbody = "feed"\n'
            f'[[webhooks]]\nkind = "discord"\nname = "d"\nurl = "{hook.base}/api/webhooks/1/x"\n'
        )
        sqlite_dir = tmp_path / "one"
        sqlite_dir.mkdir()
        path = write_toml(sqlite_dir, text)
        assert run_cli("--config", str(path), "poll").returncode == 0
        assert run_cli("--config", str(path), "digest").returncode == 0  # delivered
        feeds.feeds["a"].append(FeedItem("a9", "新しい記事", None, now))
        assert run_cli("--config", str(path), "poll").returncode == 0
        rec.fail(1, 403)  # the destination refused: held, not retried in this run, pending
        assert run_cli("--config", str(path), "digest").returncode == 1  # pending in the outbox
        sent_before = len(rec.requests)

        target = pg.new_database()
        r = run_cli("--config", str(path), "state", "copy", "--to", target)
        assert r.returncode == 0, r.stderr
        assert "feeds 2, seen " in r.stdout and "digests 2" in r.stdout and "items 6" in r.stdout
        source = SQLiteStore.open(sqlite_dir / "state")
        copied = PostgresStore.open(target)
        expected = _tables(source)
        got = _tables(copied)
        assert {t: len(v) for t, v in got.items()} == {t: len(v) for t, v in expected.items()}
        for table in TABLES:
            if table != "meta":
                assert got[table] == expected[table], table
        r = run_cli("--config", str(path), "state", "copy", "--to", target)
        assert r.returncode == 2 and "already holds a state" in r.stderr  # never over a state

        back = tmp_path / "back"
        pg_dir = tmp_path / "pg"
        pg_dir.mkdir()
        pg_config = write_toml(pg_dir, text + f'[state]\nurl = "{target}"\n')
        r = run_cli("--config", str(pg_config), "state", "copy", "--to", str(back))
        assert r.returncode == 0, r.stderr
        assert _tables(SQLiteStore.open(back)) == expected | {"meta": _tables(SQLiteStore.open(back))["meta"]}

        # On PostgreSQL now: the next digest sends what was pending, once, and nothing else.
        rec.requests.clear()
        assert run_cli("--config", str(pg_config), "digest").returncode == 0
        contents = [req.json()["content"] for req in rec.requests]
        assert len(contents) >= 1 and "新しい記事" in "".join(contents) and "別の記事" not in "".join(contents)
        assert sent_before >= 1 and copied.pending_count() == 0
        source.close()
        copied.close()


def test_metrics_are_served_and_count_what_happens(tmp_path: Path, feeds: DynamicFeeds, clock: Clock) -> None:
    from bot.pgserver import free_port

    feeds.feeds["f"] = [FeedItem("g1", "記事", None, datetime.now(UTC))]
    port = free_port()
    path = write_toml(
        tmp_path,
        f'[metrics]\nlisten = "127.0.0.1:{port}"\n[poll]\nhost_spacing = "0s"\nfirst_poll = "all"\n'
        f'[[feeds]]\nname = "f"\nurl = "{feeds.feed_url("f")}"\nbody = "feed"\n'
        f'[[feeds]]\nname = "broken"\nurl = "{feeds.base}/missing.xml"\n',
    )
    proc = spawn_run(path)
    try:
        samples = _scrape_until(port, lambda s: s.get(("feedbot_polls_total", (("result", "ok"),)), 0) >= 1)
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
    assert samples[("feedbot_polls_total", (("result", "error"),))] >= 1
    assert samples[("feedbot_items_taken_total", ())] >= 1
    assert samples[("feedbot_feeds_failing", ())] == 1
    assert ("feedbot_feed_failing_seconds", (("feed", "broken"),)) in samples
    assert samples[("feedbot_instances", ())] == 1
    assert ("feedbot_outbox_pending", ()) in samples and ("feedbot_lease_takeovers_total", ()) in samples


def _scrape_until(port: int, ready: object) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Scrape until ``ready(samples)`` (the service has polled and refreshed
    its gauges), for at most a minute; the endpoint's text must parse."""
    import time

    deadline = time.monotonic() + 60
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            threading.Event().wait(0.2)  # not listening yet
            continue
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        if callable(ready) and ready(samples) and samples.get(("feedbot_feeds_failing", ()), 0) >= 1:
            return samples
        threading.Event().wait(0.2)
    raise AssertionError(f"metrics never showed a poll: {sorted(samples)[:20]}")


def test_instances_share_the_feeds_and_follow_each_others_schedules(tmp_path: Path) -> None:
    """Rendezvous hashing splits the feeds evenly between the instances
    alive; a departed instance's share (and only it) moves to the others.
    A feed that is another's is tried a grace after it is due, and once
    another instance polled it, on that instance's schedule."""
    from bot.poll import PollOutcome
    from bot.service import Service

    lines = ['[schedule]\npoll_every = "10m"\n']
    lines += [f'[[feeds]]\nname = "f{n}"\nurl = "http://127.0.0.1:1/{n}"\n' for n in range(600)]
    path = tmp_path / "config.toml"
    path.write_text("".join(lines), encoding="utf-8")
    config = load_config(path, {})
    urls = [f.url for f in config.feeds]
    services = [Service(config, clock=lambda: NOW) for _ in range(3)]
    peers = sorted(s.instance_id for s in services)
    for s in services:
        s._peers = peers
    shares = [{u for u in urls if s._mine(u)} for s in services]
    assert set().union(*shares) == set(urls) and sum(map(len, shares)) == len(urls)  # each feed has one instance
    assert all(150 <= len(share) <= 250 for share in shares), [len(x) for x in shares]
    a, b, c = services
    for s in (a, b):
        s._peers = [p for p in peers if p != c.instance_id]  # c is gone
    assert {u for u in urls if a._mine(u)} >= shares[0] and {u for u in urls if b._mine(u)} >= shares[1]

    now = [NOW]
    a.clock = lambda: now[0]
    started: list[str] = []
    retry = NOW + timedelta(minutes=10)

    class Poller:  # stands in for the real one: every feed is "polled elsewhere"
        async def poll(self, feed: Any) -> PollOutcome:
            started.append(feed.url)
            return PollOutcome(feed.name, "elsewhere", retry_at=retry)

    a.poller = Poller()  # type: ignore[assignment]
    a.report = lambda: None  # type: ignore[method-assign]
    mine = next(f for f in config.feeds if a._mine(f.url))
    theirs = next(f for f in config.feeds if not a._mine(f.url))
    a._due = {mine.url: (mine, NOW), theirs.url: (theirs, NOW)}

    async def go() -> None:
        await a._tick()
        await asyncio.gather(*a.running)
        assert started == [mine.url]  # its own at once; the other's waits for its instance's turn
        now[0] = NOW + a.tick  # a tick later
        await a._tick()
        await asyncio.gather(*a.running)
        assert started == [mine.url, theirs.url]
        # the other instance polled both: a follows its schedule from now on
        assert a._due[theirs.url] == (theirs, retry) and a._due[mine.url] == (mine, retry)

    asyncio.run(go())


def test_a_running_instance_rides_out_a_database_restart(
    tmp_path: Path, pg: PgServer, db: str, feeds: DynamicFeeds
) -> None:
    """PostgreSQL restarted under `feedbot run` (every connection dropped,
    an item published meanwhile): the service keeps running, reconnects,
    and the new item is delivered, once, with no traceback."""
    import time

    rec = Receiver()
    feeds.feeds["f"] = [FeedItem("g1", "記事その一", None, datetime.now(UTC))]
    with Server(rec) as hook:
        path = write_toml(
            tmp_path,
            '[schedule]\npoll_every = "1s"\ndigest_every = "1s"\ndigest_at = []\n'
            '[poll]\nhost_spacing = "0s"\nfirst_poll = "all"\nmax_age = "none"\n'
            f'[[feeds]]\nname = "f"\nurl = "{feeds.feed_url("f")}"\nbody = "feed"\n'
            f'[[webhooks]]\nkind = "discord"\nname = "d"\nurl = "{hook.base}/api/webhooks/1/x"\n'
            f'[state]\nurl = "{db}"\n',
        )
        proc = spawn_run(path)
        try:
            assert rec.wait_for(1, 60), "no first digest"

            def meanwhile() -> None:
                feeds.feeds["f"].append(FeedItem("g2", "記事その二", None, datetime.now(UTC)))

            pg.restart(meanwhile)
            deadline = time.monotonic() + 60
            while not any("記事その二" in r.json()["content"] for r in rec.accepted) and time.monotonic() < deadline:
                rec.wait_for(len(rec.accepted) + 1, 1)
            assert proc.poll() is None, "the service exited"
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=60)
    contents = [r.json()["content"] for r in rec.accepted]
    assert sum(c.count("記事その二") for c in contents) == 1, contents
    assert sum(c.count("記事その一") for c in contents) == 1, contents
    assert "Traceback" not in err, err[-2000:]


def test_a_dropped_connection_neither_loses_a_delivery_nor_fails_a_transaction(
    two: tuple[PostgresStore, PostgresStore], pg: PgServer, db: str
) -> None:
    """The server ends the store's connection (a restart, a failover, an
    idle-connection reaper): the next delivery record and the next
    transaction go through on a fresh connection, instead of leaving a
    message that was accepted looking unsent (and sending it twice)."""
    a, _ = two
    a.record_poll("https://f/", "f", NOW, etag=None, last_modified=None, take=[NewItem(entry(1), ("b",))], skip=[])
    digest = a.create_digest(
        "2025-01-21", NOW, [i.id for i in a.unbound_items()], "t", lambda d: {"w": [("text/plain", b"x")]}
    )
    (msg,) = a.undelivered("w")
    a.mark_in_flight(msg, NOW)

    def drop() -> None:
        pid = a.conn.info.backend_pid
        pg.sql(db, f"SELECT pg_terminate_backend({pid})")

    drop()
    a.mark_delivered(msg, NOW, "remote-1")  # the platform accepted it: recorded on a fresh connection
    assert a.undelivered("w") == [] and a.resent_count() == 0
    drop()
    taken = a.record_poll(
        "https://f/", "f", NOW, etag=None, last_modified=None, take=[NewItem(entry(2), ("b",))], skip=[]
    )
    assert taken == 1 and digest is not None


def test_with_the_database_down_statements_fail_fast_and_recover(pg: PgServer, db: str) -> None:
    """The event loop waits with every statement: while the server is
    down a statement gives up within seconds, the next ones at once, and
    all is well when the server is back."""
    import time

    store = PostgresStore.open(db)
    timings: list[float] = []

    def down() -> None:
        for _ in range(3):
            started = time.monotonic()
            with pytest.raises(StateError):
                store.get_meta("x")
            timings.append(time.monotonic() - started)

    try:
        pg.restart(down)
        assert timings[0] < 8 and timings[1] < 0.5 and timings[2] < 0.5, timings
        store._down_until = 0.0  # the fail-fast window is over (it lasts seconds)
        store.set_meta("x", "back")
        assert store.get_meta("x") == "back"
    finally:
        store.close()


def test_a_nul_in_feed_text_is_stored_on_postgresql(two: tuple[PostgresStore, PostgresStore]) -> None:
    """SQLite stores NUL, PostgreSQL's text cannot: a NUL from a feed (in an
    error message, a title) must not make that feed unrecordable."""
    a, _ = two
    a.record_failure("https://f/", "f", NOW, "error", "bad\x00byte")
    assert "\ufffd" in (a.feed_state("https://f/").last_error or "")
    from bot.parse import parse_feed

    doc = (
        b'{"version": "https://jsonfeed.org/version/1.1",'
        b' "items": [{"id": "1", "url": "https://x.example/a\\u0000b\\tc", "title": "t"}]}'
    )
    (parsed_entry,) = parse_feed(doc, "https://x.example/feed.json", {"content-type": "application/feed+json"}).entries
    assert parsed_entry.link == "https://x.example/a%00bc"


def test_a_feed_another_instance_is_polling_is_tried_again_an_interval_later_not_a_lease() -> None:
    """Seen mid-poll, a feed's next turn is an interval from now (or its
    lease's end, if sooner); seen polled, an interval after that poll."""
    from bot.poll import retry_at

    interval, lease_end = timedelta(seconds=5), NOW + timedelta(seconds=80)
    assert retry_at(Elsewhere(None, lease_end), interval, NOW) == NOW + interval
    assert retry_at(Elsewhere(None, NOW + timedelta(seconds=2)), interval, NOW) == NOW + timedelta(seconds=2)
    assert retry_at(Elsewhere(NOW, None), interval, NOW + timedelta(seconds=1)) == NOW + interval
    assert retry_at(Elsewhere(None, None), interval, NOW) is None
