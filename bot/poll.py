"""Polling a feed: fetch → parse → choose → fetch bodies → store.

``choose`` is the pure decider: given the parsed entries, the keys already
seen and the clock, it says which entries to take and which to record as
seen without taking (old entries on a feed's first poll, entries past
``max_age``).  The rest of this module is the I/O around it.

A feed's failure is recorded on the feed (status, error, count), backs it
off (``bot.health``: never switched off) and never stops the other feeds.
Polls share one concurrency bound, and requests to one host are spaced.
One structured log line per feed per poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx

from bot import health, metrics
from bot.bodies import Bodies
from bot.config import Config, Feed, PollSettings
from bot.errors import FetchError, ParseError, StateError, WorkerError
from bot.fetch import PageFetcher, Response, fetch_feed, validator
from bot.keys import Key
from bot.logs import logfmt
from bot.models import Entry
from bot.state import Elsewhere, FeedState, NewItem, Store
from bot.workers import Workers
from bot.workers import shared as shared_workers

# Feeds claimed in one statement: one that got its slot, and the next ones
# waiting (a round of 10,000 304s on PostgreSQL: 1 claim statement per 32
# polls instead of 1 per poll).
CLAIM_AHEAD = 32
log = logging.getLogger("feedbot.poll")

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Choice:
    take: tuple[Entry, ...]
    skip: tuple[Entry, ...]  # new entries recorded as seen but not taken (too old, filtered out)


@dataclass(frozen=True)
class PollOutcome:
    feed: str
    # "ok" | "not-modified" | "error" | "waiting" (backing off) | "skipped" (stopping)
    # | "elsewhere" (another instance polls it)
    status: str
    new: int = 0
    error: str | None = None
    ms: int = 0
    retry_at: datetime | None = None  # "elsewhere": when a claim could succeed (its next poll is due)

    def line(self) -> str:
        text = f"feed={logfmt(self.feed)} status={self.status} new={self.new} ms={self.ms}"
        return text + (f" error={self.error!r}" if self.error else "")


def wanted(feed: Feed, entry: Entry) -> bool:
    """The feed's own filter, on the entry's title and the feed's text."""
    if not feed.include and not feed.exclude:
        return True
    from bot.topics import excluded, fold, matches  # only a feed with a filter needs them

    text = fold("\n".join((entry.title, *entry.content)))
    return (not feed.include or matches(feed.include, text)) and not excluded(feed.exclude, text)


def choose(
    entries: Sequence[Entry],
    seen: set[Key],
    first_poll: bool,
    now: datetime,
    settings: PollSettings,
    keep: Callable[[Entry], bool] = lambda e: True,
) -> Choice:
    """Which entries are new; which unseen ones are too old or filtered out.

    ``seen`` holds the keys by which entries are known (``Store.seen``).

    Entries not taken are recorded as seen, so a later poll does not take
    them either (a filter edit applies to entries that appear after it).
    """
    take: list[Entry] = []
    skip: list[Entry] = []
    known = set(seen)
    for entry in entries:
        if known.intersection(entry.keys) or (entry.alias is not None and entry.alias in known):
            continue
        known.update(entry.keys)
        age = now - entry.published if entry.published else None
        too_old = age is not None and settings.max_age is not None and age > settings.max_age
        if first_poll and settings.first_poll is not None:
            # A feed added to a running installation must not flood the next
            # digest with its back catalogue; undated entries count as old.
            too_old = too_old or age is None or age > settings.first_poll
        if too_old or not keep(entry):
            skip.append(entry)
        else:
            take.append(entry)
    return Choice(tuple(take), tuple(skip))


def retry_at(other: Elsewhere, interval: timedelta, now: datetime) -> datetime | None:
    """When to try again a feed another instance has: its next poll's due
    time.  One it is polling right now is done in a moment and due an
    interval from now; if that instance dies mid-poll, the feed is free
    when its lease ends, whichever comes first (waiting for the lease alone
    left a feed untried for a whole lease, minutes, after a normal poll)."""
    if other.lease_until is not None:
        return min(other.lease_until, now + interval)
    return None if other.last_poll_at is None else other.last_poll_at + interval


class Poller:
    """Polls feeds with one HTTP client, one store and one clock.

    Use as ``async with Poller(...) as poller``: it closes the page fetcher
    it made (tests pass their own, with a simulated resolver).
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        client: httpx.AsyncClient,
        clock: Clock,
        pages: PageFetcher | None = None,
        workers: Workers | None = None,
        owner: str = "local",
    ) -> None:
        self.config = config
        self.store = store
        self.owner = owner  # the instance that claims feeds (bot/state/postgres.py)
        self.client = client
        self.clock = clock
        # Parsing and extraction run in worker processes (bot/workers.py):
        # nothing a feed or page holds can stop this event loop.
        self.workers = workers or shared_workers()
        if any(f.body not in ("feed", "none") for f in config.feeds):
            from bot.workers import EXTRACT_STACK

            self.workers.preload(EXTRACT_STACK)  # article pages are extracted: their stack too
        self.bodies = Bodies(config.poll, self.workers, pages)
        self.deadline = self.bodies.deadline
        # A claim outlives a feed's fetch and parse (its pages may take longer:
        # then another instance may poll it too, which the item-taking lock
        # makes harmless); a dead instance's claims end this soon.
        self.lease = max(timedelta(seconds=self.deadline * 2), timedelta(seconds=10))
        # `feedbot poll` prints each outcome itself: logged too, a failure
        # would be shown twice on a terminal.
        self.log_outcomes = True
        self._bound = asyncio.Semaphore(config.poll.concurrency)
        self._host_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._host_next: dict[str, float] = {}
        self.stopping = asyncio.Event()
        # Claims made ahead, with the claim of a feed that got its slot, for
        # feeds still waiting for theirs (one statement for many: ``_claim``).
        self._waiting: dict[str, tuple[Feed, timedelta]] = {}
        self._claimed: dict[str, tuple[FeedState | Elsewhere, float]] = {}

    async def __aenter__(self) -> Poller:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for url, (state, _at) in self._claimed.items():  # claimed ahead, never polled: free them now
            if isinstance(state, FeedState):
                with contextlib.suppress(StateError, sqlite3.Error):
                    self.store.release_feed(url, self.owner)
        self._claimed.clear()
        await self.bodies.aclose()

    def forget_elsewhere(self) -> None:
        """Drop the claims made ahead that found a feed another instance's:
        when an instance is gone, its feeds are free, and such a claim,
        kept for up to half a lease, would leave one of them to the dead
        instance once more (and try it next when its lease would have
        ended: a minute late)."""
        self._claimed = {url: c for url, c in self._claimed.items() if not isinstance(c[0], Elsewhere)}

    async def poll_all(self, feeds: Sequence[Feed], force: bool = False) -> list[PollOutcome]:
        return list(await asyncio.gather(*(self.poll(f, force) for f in feeds)))

    async def poll(self, feed: Feed, force: bool = False) -> PollOutcome:
        """Poll one feed; never raises for the feed's sake (its error is recorded).

        At most ``poll.concurrency`` feeds are polled at once, whether the
        poll comes from ``poll_all`` or from the scheduler; once ``stopping``
        is set, feeds not yet started are skipped.
        """
        gap = timedelta(0) if force else self.config.feed_interval(feed) / 2
        self._waiting[feed.url] = (feed, gap)
        try:
            await self._bound.acquire()
        finally:
            self._waiting.pop(feed.url, None)
        try:
            return await self._poll_claimed(feed, gap, force)
        finally:
            self._bound.release()

    def _claim(self, feed: Feed, gap: timedelta, now: datetime) -> FeedState | Elsewhere:
        """This feed's claim: made ahead with another's if that is recent
        (half a lease old at most: the poll has the other half), else made
        now together with those of up to ``CLAIM_AHEAD`` feeds waiting for a
        slot (PostgreSQL: one statement for them all, not one each)."""
        ahead = self._claimed.pop(feed.url, None)
        if ahead is not None:
            state, at = ahead
            if time.monotonic() - at < self.lease.total_seconds() / 2:
                return state
            if isinstance(state, FeedState):
                self.store.release_feed(feed.url, self.owner)
        unclaimed = ((f, g) for url, (f, g) in self._waiting.items() if url not in self._claimed)
        others = list(itertools.islice(unclaimed, CLAIM_AHEAD - 1))
        wanted = [(feed, gap), *others]
        claims = self.store.claim_feeds([(f.url, f.name, g) for f, g in wanted], self.owner, now, self.lease)
        at = time.monotonic()
        for f, _g in others:
            self._claimed[f.url] = (claims[f.url], at)
        return claims[feed.url]

    async def _poll_claimed(self, feed: Feed, gap: timedelta, force: bool) -> PollOutcome:
        if self.stopping.is_set():
            return PollOutcome(feed.name, "skipped")
        # Claimed once it has a slot (or ahead, by a poll that got one
        # shortly before): only this poll writes the feed from now on.
        # Where instances share the state, a feed another one polls, or
        # polled within half an interval, is left to it.
        now = self.clock()
        state = self._claim(feed, gap, now)
        if isinstance(state, Elsewhere):
            metrics.polls.labels("elsewhere").inc()
            later = retry_at(state, self.config.feed_interval(feed), now)
            return PollOutcome(feed.name, "elsewhere", retry_at=later)
        if not force and state.next_poll_at is not None and now < state.next_poll_at:
            self.store.release_feed(feed.url, self.owner)
            return PollOutcome(feed.name, "waiting")  # backing off, or asked to wait
        await self._space(feed)
        started = time.monotonic()
        try:
            outcome = await self._poll(feed, state)
        except (StateError, sqlite3.Error):
            raise  # the state is unusable: not this feed's problem, stop
        except Exception as exc:  # a bug or a case nobody foresaw: record it, go on with the others
            log.exception("feed=%s status=error: unexpected failure", feed.name)
            outcome = self._failed(feed, f"unexpected failure: {type(exc).__name__}: {exc}"[:300])
        ms = int((time.monotonic() - started) * 1000)
        outcome = PollOutcome(outcome.feed, outcome.status, outcome.new, outcome.error, ms)
        # An unchanged feed is the common case: at DEBUG (-v), so that the
        # journal of 1,000 feeds shows what changed and what failed.
        level = (
            logging.WARNING
            if outcome.error
            else logging.DEBUG
            if outcome.status in ("not-modified", "elsewhere")
            else logging.INFO
        )
        metrics.polls.labels(outcome.status).inc()
        if outcome.new:
            metrics.items_taken.inc(outcome.new)
        if self.log_outcomes and log.isEnabledFor(level):  # built only when written (a 304 is DEBUG)
            log.log(level, "%s", outcome.line())
        return outcome

    async def _space(self, feed: Feed) -> None:
        """Requests to one host are ``host_spacing`` apart: thirty NHK
        category feeds do not hit one server at once."""
        spacing = self.config.poll.host_spacing.total_seconds()
        if spacing <= 0:
            return
        host = (urlsplit(feed.url).hostname or "").lower()
        async with self._host_locks[host]:
            wait = self._host_next.get(host, 0.0) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._host_next[host] = time.monotonic() + spacing

    def _failed(self, feed: Feed, error: str, retry_after: float | None = None) -> PollOutcome:
        """Record a failure, back off, and warn once a day about a long one."""
        now = self.clock()
        self.store.record_failure(feed.url, feed.name, now, "error", error)
        state = self.store.feed_state(feed.url)
        wait = health.after_failure(self.config.feed_interval(feed), state.error_count, retry_after)
        self.store.set_next_poll(feed.url, now + wait)
        if health.should_warn(now, state.failing_since, state.warned_at):
            since = state.failing_since.isoformat(timespec="minutes") if state.failing_since else "?"
            log.warning("feed=%s has been failing since %s (%d tries): %s", feed.name, since, state.error_count, error)
            self.store.set_warned(feed.url, now)
        return PollOutcome(feed.name, "error", 0, error)

    async def _poll(self, feed: Feed, state: FeedState) -> PollOutcome:
        try:
            response = await fetch_feed(
                self.client, feed.url, state.etag, state.last_modified, self.deadline, self.bodies.pages
            )
            log.debug(
                "feed=%s request=GET status=%d bytes=%d conditional=%s",
                feed.name,
                response.status,
                len(response.content),
                "yes" if state.etag or state.last_modified else "no",
            )
            if response.status == 304:
                now = self.clock()
                self.store.record_not_modified(feed.url, feed.name, now, self._asked_wait(feed, response, None, now))
                return PollOutcome(feed.name, "not-modified")
            # Imported here: a poll whose feeds all answer 304 parses nothing.
            from bot.parse import parse_feed, parse_feed_here

            parsed = await self.workers.run(
                parse_feed, response.content, feed.url, response.headers, inline=parse_feed_here
            )
        except FetchError as exc:
            return self._failed(feed, str(exc), exc.retry_after)
        except (ParseError, WorkerError) as exc:
            return self._failed(feed, str(exc) if isinstance(exc, ParseError) else f"parse {exc}")
        now = self.clock()
        seen = self.store.seen(feed.url, parsed.entries)
        choice = choose(
            parsed.entries, seen, state.first_ok_at is None, now, self.config.poll, lambda e: wanted(feed, e)
        )
        streams = self.config.streams_of(feed.name)
        if not streams:  # a feed no digest takes (a warning at load): its entries are only recorded
            choice = Choice((), choice.skip + choice.take)
        late_streams = self._new_streams(feed, streams, state.first_ok_at is None)
        late: tuple[Entry, ...] = ()
        if late_streams:
            # A digest new to this feed: its first poll of it, whatever the
            # other digests have taken from it already.
            late = choose(parsed.entries, set(), True, now, self.config.poll, lambda e: wanted(feed, e)).take
        taken_ids = {id(e) for e in choice.take}  # a set: a feed of 80,000 entries is 80,000 lookups, not their square
        fresh = [e for e in late if id(e) not in taken_ids]
        bodies = await self.bodies.for_entries(feed, [*choice.take, *fresh])
        body_of = {id(e): b for e, b in zip([*choice.take, *fresh], bodies, strict=True)}
        taken = self.store.record_poll(
            feed.url,
            feed.name,
            now,
            # Only what a request can carry back: a validator with a control
            # character in it would fail every later poll (issue 24).
            etag=validator(feed.url, "ETag", response.headers.get("etag")),
            last_modified=validator(feed.url, "Last-Modified", response.headers.get("last-modified")),
            take=[NewItem(e, body_of[id(e)]) for e in choice.take],
            skip=choice.skip,
            streams=[s for s in streams if s not in late_streams],
            late=[NewItem(e, body_of[id(e)]) for e in late],
            late_streams=late_streams,
            present=parsed.entries,
            warning=parsed.warning,
            next_poll_at=self._asked_wait(feed, response, parsed.ttl, now),
        )
        return PollOutcome(feed.name, "ok", taken)

    def _new_streams(self, feed: Feed, streams: Sequence[str], first_poll: bool) -> list[str]:
        """The digests taking this feed that have not started on it (added
        to the config since its first poll): their first poll of it."""
        if first_poll or not streams:
            return []
        started = self.store.started_streams(feed.url)
        return [s for s in streams if s not in started]

    def _asked_wait(self, feed: Feed, response: Response, ttl: int | None, now: datetime) -> datetime | None:
        """Not before this, if the server asked for longer than our interval."""
        wait = health.after_success(self.config.feed_interval(feed), response.headers, ttl)
        return now + wait if wait else None
