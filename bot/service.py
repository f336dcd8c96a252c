"""``feedbot run``: the scheduler loop (APScheduler 3.x on asyncio).

One poll job per enabled feed (its interval, first run when it is due by the
state's last poll) and one digest job per ``digest_at`` time in the
configured zone.  A digest slot missed while the service was down is caught
up at start-up, after the first round of polls.  SIGTERM and SIGINT stop the
loop between steps: running jobs get a grace period to finish their
transaction; every step is one transaction, so even a kill loses nothing.

Under systemd (``Type=notify``): READY=1 once the scheduler runs, STATUS=
after each step, WATCHDOG=1 from the loop, RELOADING=1 … READY=1 around a
reload.  SIGHUP, or an edit of config.toml (checked every few seconds),
reloads the config; an invalid one is rejected whole and the old one runs on.

APScheduler only calls pipeline functions; it holds no state of its own
that matters (its job store is in memory and rebuilt from the config).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import signal
import socket
import time as _time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any

from bot import __version__, metrics
from bot.config import Config, Feed, load_config
from bot.deliver import Deliverer
from bot.digest import Digester, last_digest_key
from bot.errors import ConfigError, FeedbotError
from bot.fetch import make_client
from bot.notify import Notifier
from bot.poll import Poller
from bot.reload import plan
from bot.state import Instance, open_store
from bot.state.records import instance_id

log = logging.getLogger("feedbot.service")
_HOST = socket.gethostname()

FIRST_START_KEY = "first_started_at"
# On SIGTERM, running steps get this long to finish before they are
# cancelled (every step is one transaction: a cancelled one leaves nothing
# half-done).  Well inside systemd's default TimeoutStopSec of 90 s.
STOP_GRACE_SECONDS = 10.0
DELIVERY_TICK_SECONDS = 30.0
CONFIG_CHECK_SECONDS = 5.0  # how often config.toml is checked for edits
HEARTBEAT_SECONDS = 10.0  # how often this instance says it runs (and metrics are refreshed)
STATUS_EVERY = 1.0  # seconds between STATUS= updates at most
POLL_TICK_SECONDS = 5.0  # how often due feeds are looked for: a poll starts at most this late
CONFIG_ERROR_KEY = "config_error"  # the last rejected reload, for `feedbot status`
# Test-only fault switch: when this variable names a file that exists, the
# watchdog ticker blocks the event loop (tests/systemd: the watchdog restarts us).
FAULT_HANG_ENV = "FEEDBOT_FAULT_HANG_FILE"


PROGRESS_EVERY = 10.0  # seconds between progress lines of the first polls


def latest_slot(now: datetime, times: Sequence[time], zone: tzinfo) -> datetime | None:
    """The most recent scheduled digest time at or before ``now``."""
    local = now.astimezone(zone)
    slots = [datetime.combine(local.date() - timedelta(days=back), t, tzinfo=zone) for back in (0, 1) for t in times]
    past = [s for s in slots if s <= local]
    return max(past) if past else None


def missed_digest(now: datetime, times: Sequence[time], zone: tzinfo, last_run: datetime | None) -> bool:
    slot = latest_slot(now, times, zone)
    return slot is not None and last_run is not None and last_run < slot


def first_due(now: datetime, last_poll: datetime | None, interval: timedelta) -> datetime:
    """When a feed's next poll is due, from its last poll (at once if never)."""
    if last_poll is None:
        return now
    return max(now, last_poll + interval)


class Service:
    """The running service: one store, one HTTP client, one scheduler.

    Jobs look up ``self.poller`` and ``self.digesters`` when they run, so a
    reload can replace them (and the config they hold) between steps.
    """

    def __init__(
        self, config: Config, clock: Callable[[], datetime] | None = None, notifier: Notifier | None = None
    ) -> None:
        self.config = config
        self.clock = clock or (lambda: datetime.now(UTC))
        self.notifier = notifier or Notifier()
        self.stop = asyncio.Event()
        self.running: set[asyncio.Task[Any]] = set()
        self._status_due = False
        self.status_every = STATUS_EVERY
        self._due: dict[str, tuple[Feed, datetime]] = {}  # url -> the feed and when it is next due
        self._polling: set[str] = set()  # urls being polled now
        self._peers: list[str] = []  # the instances alive, where several share the state
        self._freed: set[str] = set()  # instances known gone whose claims were freed
        self._config_error: str | None = None  # the last rejected edit, while it stands
        self.tick = timedelta(seconds=POLL_TICK_SECONDS)
        self.config_stamp = _stamp(config.path)
        self.config_hash = _file_hash(config.path)
        # Who this is among the instances sharing the state (their leases,
        # the slots they serve, their heartbeat rows).
        self.instance_id = instance_id()
        self.started = self.clock()

    def _tracked(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Coroutine[Any, Any, None]]:
        """Wrap a job so shutdown can wait for it, and so it never kills the loop."""

        async def guarded(*args: Any) -> None:
            try:
                await fn(*args)
            except FeedbotError as exc:  # expected (a database restarting, say): one line, the next run retries
                log.warning("job %s: %s", getattr(fn, "__name__", fn), exc)
            except Exception:
                log.exception("job %s failed", getattr(fn, "__name__", fn))

        async def job(*args: Any) -> None:
            if self.stop.is_set():
                return
            # The work runs as a task of its own, shielded: APScheduler's
            # shutdown cancels the jobs it runs, and a digest being
            # delivered must get its grace (``_drain``) instead.
            work = asyncio.ensure_future(guarded(*args))
            self.running.add(work)
            work.add_done_callback(self.running.discard)
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(work)

        return job

    # -- the jobs ------------------------------------------------------------

    async def _poll(self, feed: Feed) -> None:
        self._polling.add(feed.url)
        try:
            outcome = await self.poller.poll(feed)
        finally:
            self._polling.discard(feed.url)
        if outcome.retry_at is not None and feed.url in self._due:
            # Polled by another instance: follow its schedule, so that if it
            # dies this one polls the feed when it was due (plus the grace
            # below), not up to an interval later on a schedule of its own.
            self._due[feed.url] = (feed, outcome.retry_at)
        self.report()

    def _mine(self, url: str) -> bool:
        """Whether this instance is the one that polls ``url`` first among
        those alive (rendezvous hashing: each feed goes to the instance whose
        hash with it is highest, so the feeds spread evenly and only a
        departed instance's share moves).  The others try a feed a tick
        later, when its own instance has had its turn: nobody waits on a
        dead instance longer than that."""
        if len(self._peers) < 2:
            return True
        return max(self._peers, key=lambda peer: _affinity(url, peer)) == self.instance_id

    async def _tick(self) -> None:
        """Start the poll of every feed that is due.

        One scheduler job for all feeds, not one per feed: with 1,000 feeds,
        APScheduler's dispatch of 1,000 jobs cost about a fifth of the CPU of
        a round of unchanged feeds.  A feed is polled at most
        ``POLL_TICK_SECONDS`` late, never twice at once, and on a fixed rate
        (late rounds merged into one, as APScheduler's coalesce did)."""
        now = self.clock()
        for url, (feed, due) in list(self._due.items()):
            # Due first (cheap): the feed's owner is hashed only for feeds due.
            if due > now or url in self._polling or (due + self.tick > now and not self._mine(url)):
                continue
            interval = self.config.feed_interval(feed)
            self._due[url] = (feed, due + interval * ((now - due) // interval + 1))
            self._spawn(self._tracked(self._poll)(feed))

    def _spawn(self, job: Coroutine[Any, Any, None]) -> None:
        """Run ``job`` as a task that shutdown waits for."""
        task = asyncio.get_running_loop().create_task(job)
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    async def _digest(self, kind: str = "at", name: str = "") -> None:
        """A scheduled digest: ``kind`` "at" (a digest_at time, or the
        catch-up of a missed one) or "every" (digest_every); ``name``, which
        digest (one of ``[[digests]]``; "" without them)."""
        digester = self.digesters.get(name)
        if digester is None:  # removed by a reload since the job was due
            return
        result = await digester.run(slot_now=lambda: self._slot(digester, kind, self.clock()))
        for r in result.reports:
            if r.error:
                log.warning("digest delivery to %s incomplete: %s", r.webhook, r.error)
        self.report()

    @staticmethod
    def _slot(digester: Digester, kind: str, now: datetime) -> str | None:
        """The name of the scheduled time a digest serves: the same on every
        instance, so that one digest goes out per slot (prefixed with the
        digest's name where the config has ``[[digests]]``)."""
        schedule = digester.config.schedule
        if kind == "every" and schedule.digest_every is not None:
            every = int(schedule.digest_every.total_seconds())
            slot: str | None = f"every {every}s: {int(now.timestamp()) // every * every}"
        else:
            at = latest_slot(now, schedule.digest_at, digester.config.timezone)
            slot = at.isoformat() if at else None
        return f"{digester.stream}@{slot}" if slot and digester.stream else slot

    async def _heartbeat(self) -> None:
        """Tell the other instances (and `feedbot status`) this one runs."""
        now = self.clock()
        self.store.announce(self.instance_id)  # again after a database restart
        self.store.heartbeat(
            Instance(self.instance_id, _HOST, os.getpid(), __version__, self.config_hash, self.started, now)
        )
        alive = self.store.instances(now)
        if self.store.shared:
            # An instance killed a moment ago still beat within INSTANCE_ALIVE:
            # known gone (its session ended), it is no peer, and its claims
            # are freed now rather than when they lapse.
            gone = {i.id for i in alive if i.id != self.instance_id and self.store.instance_gone(i.id)}
            newly = gone - self._freed
            if newly:
                self.poller.forget_elsewhere()
            for peer in newly:
                for url in self.store.free_feeds_of(peer):
                    # Tried again at the next tick: the try that found its
                    # claim put the next one up to an interval away.
                    if url in self._due:
                        feed, due = self._due[url]
                        self._due[url] = (feed, min(due, now))
            self._freed = gone
            alive = [i for i in alive if i.id not in gone]
            self._peers = sorted({i.id for i in alive} | {self.instance_id})
        self.store.set_polling(self.instance_id, self._polling, (i.id for i in alive))
        self._refresh_metrics(now, len(alive))

    def _refresh_metrics(self, now: datetime, alive: int) -> None:
        """The gauges, from the state (``bot.metrics`` reads no state itself)."""
        oldest = self.store.oldest_pending()
        names = {f.url: f.name for f in self.config.enabled_feeds}
        failing = {
            names[url]: max(0.0, (now - (state.failing_since or now)).total_seconds())
            for url, state in self.store.failing_states().items()
            if url in names
        }
        backlog = self.store.backlog()
        waiting = {spec.name: 0 for spec in self.config.streams()} | self.store.streams_pending()
        metrics.refresh(
            pending=sum(b.pending for b in backlog),
            set_aside=sum(b.set_aside for b in backlog),
            oldest_age=(now - oldest).total_seconds() if oldest else 0.0,
            items=self.store.pending_count(),
            failing=failing,
            alive=alive,
            resent_total=self.store.resent_count(),
            waiting=waiting,
        )

    async def _flush_polls(self) -> None:
        self.store.flush_polls()

    async def _redeliver(self) -> None:
        # Any digester: each sends every configured webhook's queue.
        await next(iter(self.digesters.values())).redeliver()

    async def _check_config(self) -> None:
        if _stamp(self.config.path) != self.config_stamp:
            await self.reload("the file changed")

    async def _startup(self, due: list[Feed]) -> None:
        # The first round, then a digest missed while we were down.
        await self._first_round(due)
        first = self.store.get_meta(FIRST_START_KEY)
        for name, digester in list(self.digesters.items()):
            last = self.store.get_meta(last_digest_key(name)) or (first if not name else None)
            last_run = datetime.fromisoformat(last) if last else None
            if not self.stop.is_set() and missed_digest(
                self.clock(), digester.config.schedule.digest_at, self.config.timezone, last_run
            ):
                log.info("catching up a digest%s missed while the service was down", f" ({name})" if name else "")
                await self._digest(name=name)
        if not self.stop.is_set() and self.config.webhooks:
            await self._redeliver()  # what a crash or an outage left undelivered
        self.report()

    async def _first_round(self, due: list[Feed]) -> None:
        """The first polls, with a progress line every ``PROGRESS_EVERY``
        seconds while they last: a first poll of many feeds and their
        article pages takes minutes, and an operator watching the journal
        should see it move."""
        tasks = [asyncio.create_task(self._poll(feed)) for feed in due]
        pending: set[asyncio.Task[None]] = set(tasks)
        started = _time.monotonic()
        while pending:
            _done, pending = await asyncio.wait(pending, timeout=PROGRESS_EVERY)
            if pending:
                now_polling = sorted(f.name for f in due if f.url in self._polling)
                log.info(
                    "first polls: %d/%d feeds done after %.0fs; polling now: %s",
                    len(tasks) - len(pending),
                    len(tasks),
                    _time.monotonic() - started,
                    ", ".join(now_polling[:5]) + (f" and {len(now_polling) - 5} more" if len(now_polling) > 5 else ""),
                )
        for task in tasks:
            task.result()  # an exception is the job's, as with gather

    # -- building and rebuilding ---------------------------------------------

    def _make_pipeline(self, config: Config) -> None:
        self.client = make_client(config.poll)
        self.poller = Poller(config, self.store, self.client, self.clock, owner=self.instance_id)
        self._make_digesters(config, Deliverer.configured(config, self.client, self.store, self.clock))

    def _make_digesters(self, config: Config, deliverer: Deliverer) -> None:
        """One per digest the config makes (a removed one's pending items stay
        in the state, untouched, until it comes back)."""
        self.deliverer = deliverer
        self.digesters = {
            spec.name: Digester(
                config, self.store, deliverer, self.clock, _stdout(), owner=self.instance_id, stream=spec.name
            )
            for spec in config.streams()
        }
        self._mark_new_digests(config)

    def _mark_new_digests(self, config: Config) -> None:
        """A ``[[digests]]`` digest seen for the first time: its schedule
        starts now (no catch-up of slots from before it existed)."""
        now = self.clock().isoformat()
        for spec in config.streams():
            if spec.name and self.store.get_meta(last_digest_key(spec.name)) is None:
                self.store.set_meta(last_digest_key(spec.name), now)

    def _schedule(self, now: datetime) -> list[Feed]:
        """(Re)create every job from ``self.config``; returns the feeds due now."""
        from apscheduler.triggers.cron import CronTrigger

        config = self.config
        self.scheduler.remove_all_jobs()
        self._due = {}
        due_now = [f for f in config.enabled_feeds if self._schedule_feed(f, now)]
        intervals = [config.feed_interval(f).total_seconds() for f in config.enabled_feeds]
        # Another instance's feed is tried a tick after it is due (``_mine``).
        self.tick = timedelta(seconds=min([POLL_TICK_SECONDS, *intervals]))
        self._every(self._tick, self.tick.total_seconds(), "poll:tick")
        # The 304s of the last tick's polls, in one statement (PostgreSQL).
        self._every(self._flush_polls, self.tick.total_seconds(), "poll:flush")
        everies = []
        for spec in config.streams():
            name = f"{spec.name}@" if spec.name else ""
            for t in spec.schedule.digest_at:
                self.scheduler.add_job(
                    self._tracked(self._digest),
                    CronTrigger(hour=t.hour, minute=t.minute, timezone=config.timezone),
                    args=("at", spec.name),
                    id=f"digest:{name}{t.isoformat('minutes')}",
                    coalesce=True,
                    max_instances=1,
                    misfire_grace_time=3600,
                )
            every = spec.schedule.digest_every
            if every is not None:
                # At the slot boundaries themselves: whichever instances are
                # alive, the digest of a slot goes out at its start.
                self._every(
                    self._digest, every.total_seconds(), f"digest:{name}every", args=("every", spec.name), aligned=True
                )
                everies.append(every.total_seconds())
        if config.webhooks:
            # Queues in backoff (an outage, a rate limit) are retried
            # between digests, each when its wait is over.
            tick = min([DELIVERY_TICK_SECONDS, *everies])
            self._every(self._redeliver, tick, "deliver")
        self._every(self._check_config, CONFIG_CHECK_SECONDS, "config")
        self._every(self._heartbeat, HEARTBEAT_SECONDS, "heartbeat")
        return due_now

    def _schedule_feed(self, feed: Feed, now: datetime) -> bool:
        """(Re)schedule one feed's polls, the first when due; True if due now
        (the caller polls it at once, and the next is an interval later)."""
        interval = self.config.feed_interval(feed)
        state = self.store.feed_state(feed.url)
        first = first_due(now, state.last_poll_at, interval)
        due = first <= now and self._mine(feed.url)  # another instance's feed: the tick tries it after its grace
        self._due[feed.url] = (feed, now + interval if due else first)
        return due

    def _every(
        self,
        fn: Callable[..., Awaitable[Any]],
        seconds: float,
        job_id: str,
        args: Sequence[Any] = (),
        first: datetime | None = None,
        aligned: bool = False,
    ) -> None:
        """An interval job: never two at once, late runs merged into one.
        ``aligned``: at whole multiples of the interval since the epoch, the
        same instants on every instance (digest slots)."""
        from apscheduler.triggers.interval import IntervalTrigger

        options: dict[str, Any] = {"next_run_time": first} if first is not None else {}
        start = datetime.fromtimestamp(0, UTC) if aligned else None
        self.scheduler.add_job(
            self._tracked(fn),
            IntervalTrigger(seconds=seconds, start_date=start),
            args=list(args),
            id=job_id,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
            replace_existing=True,
            **options,
        )

    async def reload(self, why: str) -> bool:
        """Apply the config on disk; an invalid one is rejected as a whole."""
        self.config_stamp = _stamp(self.config.path)
        self.config_hash = _file_hash(self.config.path)
        self.notifier.reloading()
        try:
            new = load_config(self.config.path)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("config rejected (%s), keeping the running one: %s", why, problem)
            # One line: STATUS= ends at a newline, and an invalid TOML problem
            # goes on with the line quoted and its cause (bot/configtext.py).
            first = exc.problems[0].split("\n", 1)[0]
            summary = f"config error ({len(exc.problems)} problem(s): {first}); running the previous config"
            self._config_error = summary  # STATUS= keeps saying so until an edit is accepted
            self.store.set_meta(CONFIG_ERROR_KEY, f"{self.clock().isoformat()}\n" + "\n".join(exc.problems))
            self.notifier.ready(summary)
            return False
        change = plan(self.config, new)
        if change.needs_restart:
            log.warning("reload: %s keeps its old value until a restart", ", ".join(change.needs_restart))
            new = replace(new, state_dir=self.config.state_dir)
        old = (self.client, self.poller) if change.http else None
        self.config = new
        if change.http:
            self._make_pipeline(new)  # new clients: timeouts, concurrency, User-Agent
        else:
            self.poller.config = new
            self._make_digesters(new, self.deliverer)
        # New feeds, and any whose new interval is up; removed feeds are no longer scheduled.
        for feed in self._schedule(self.clock()):
            self._spawn(self._tracked(self._poll)(feed))
        self.store.set_meta(CONFIG_ERROR_KEY, "")
        self._config_error = None
        log.info("config reloaded (%s): %s", why, change.summary())
        if old is not None:
            await old[1].__aexit__()
            await old[0].aclose()
        self.notifier.ready(self.status_line())
        return True

    # -- status and watchdog ---------------------------------------------------

    def status_line(self) -> str:
        """One line for systemctl status: feeds, pending items, next digest."""
        failing_urls = self.store.failing_urls()
        feeds = self.config.enabled_feeds
        failing = sum(1 for f in feeds if f.url in failing_urls)
        jobs = [j for j in self.scheduler.get_jobs() if j.id.startswith("digest:") and j.next_run_time]
        upcoming = min((j.next_run_time for j in jobs), default=None)
        nxt = upcoming.astimezone(self.config.timezone).strftime("%m-%d %H:%M %Z") if upcoming else "none"
        line = (
            f"{len(feeds) - failing} feeds ok, {failing} failing; "
            f"{self.store.pending_count()} items pending; next digest {nxt}"
        )
        return f"{self._config_error}; {line}" if self._config_error else line

    def report(self) -> None:
        """STATUS= after a job, at most once per ``status_every`` seconds: a
        round of 1,000 polls would otherwise build the line 1,000 times.
        The line is built when the window ends, so it is never stale."""
        if not self.notifier.enabled or self._status_due:
            return
        self._status_due = True
        asyncio.get_running_loop().call_later(self.status_every, self._send_status)

    def _send_status(self) -> None:
        self._status_due = False
        if not self.stop.is_set():
            self.notifier.status(self.status_line())

    async def _watchdog(self, every: float) -> None:
        """WATCHDOG=1 from the event loop itself: a stuck loop stops the pings."""
        while not self.stop.is_set():
            hang = os.environ.get(FAULT_HANG_ENV)
            if hang and os.path.exists(hang):
                log.warning("fault switch %s present: hanging the event loop (watchdog test)", hang)
                _time.sleep(3600)  # blocks the loop on purpose: only the watchdog can end this
            self.notifier.watchdog()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=every)

    # -- the loop ----------------------------------------------------------------

    async def run(self) -> int:
        # Imported here: commands other than `run` do not pay for APScheduler.
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        logging.getLogger("apscheduler.scheduler").addFilter(_not_overlapping)

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self._tracked(self.reload)("SIGHUP")))
        self.store = open_store(self.config)
        now = self.clock()
        if self.store.get_meta(FIRST_START_KEY) is None:
            self.store.set_meta(FIRST_START_KEY, now.isoformat())
        self.store.set_meta(CONFIG_ERROR_KEY, "")
        self._make_pipeline(self.config)
        await self._heartbeat()
        exporter = await metrics.serve(self.config.metrics.listen) if self.config.metrics.listen else None
        self.scheduler = AsyncIOScheduler(timezone=self.config.timezone)
        due_now = self._schedule(now)
        self.scheduler.start()
        config = self.config
        log.info(
            "started as %s on %s: %d feeds (%d due now), digests at %s%s %s",
            self.instance_id,
            self.store.where,
            len(config.enabled_feeds),
            len(due_now),
            ", ".join(t.isoformat("minutes") for t in config.schedule.digest_at) or "-",
            f" and every {config.schedule.digest_every}" if config.schedule.digest_every else "",
            config.timezone,
        )
        self.notifier.ready(self.status_line())
        watchdog = (
            asyncio.create_task(self._watchdog(self.notifier.watchdog_seconds / 2))
            if self.notifier.watchdog_seconds
            else None
        )
        first: asyncio.Task[None] = asyncio.create_task(self._tracked(self._startup)(due_now))
        await self.stop.wait()
        log.info("stopping")
        self.notifier.stopping()
        self.poller.stopping.set()  # feeds not started yet are skipped
        self.scheduler.shutdown(wait=False)
        await self._drain()
        first.cancel()
        if watchdog is not None:
            watchdog.cancel()
        await self.poller.__aexit__()
        await self.client.aclose()
        if exporter is not None:
            await exporter.close()
        with contextlib.suppress(Exception):  # a database that went away: its row ages out
            self.store.leave(self.instance_id)
        self.store.close()
        return 0

    async def _drain(self) -> None:
        pending = [t for t in self.running if t is not asyncio.current_task()]
        if not pending:
            return
        _done, still = await asyncio.wait(pending, timeout=STOP_GRACE_SECONDS)
        for task in still:
            task.cancel()
        if still:
            await asyncio.wait(still)


def _not_overlapping(record: logging.LogRecord) -> bool:
    """APScheduler's warning that a job's run was skipped because the last
    one still runs: expected, not a problem (a digest waiting for another
    instance's lease; a tick while polls run), and it came every interval."""
    return "maximum number of running instances reached" not in record.getMessage()


def _affinity(url: str, instance: str) -> bytes:
    """A stable score (not Python's per-process ``hash``) for rendezvous hashing."""
    return hashlib.blake2b(f"{instance}\n{url}".encode(), digest_size=8).digest()


def _file_hash(path: Path) -> str:
    """Of the config file's bytes: instances whose files differ are told apart."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    except OSError:
        return "unreadable"


def _stamp(path: Path) -> tuple[int, int] | None:
    """What tells a config file changed: its mtime and size."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def _stdout() -> Any:
    import sys

    return sys.stdout
