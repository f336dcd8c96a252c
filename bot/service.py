"""``feedbot run``: the scheduler loop (APScheduler 3.x on asyncio).

One poll job per enabled feed (its interval, first run when it is due by the
state's last poll) and one digest job per ``digest_at`` time in the
configured zone.  A digest slot missed while the service was down is caught
up at start-up, after the first round of polls.  SIGTERM and SIGINT stop the
loop between steps: running jobs get a grace period to finish their
transaction; every step is one transaction, so even a kill loses nothing.

APScheduler only calls pipeline functions; it holds no state of its own
that matters (its job store is in memory and rebuilt from the config).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any

from bot.config import Config, Feed
from bot.deliver import Deliverer
from bot.digest import LAST_DIGEST_KEY, Digester
from bot.fetch import make_client
from bot.poll import Poller
from bot.state import Store

log = logging.getLogger("feedbot.service")

FIRST_START_KEY = "first_started_at"
# On SIGTERM, running steps get this long to finish before they are
# cancelled (every step is one transaction: a cancelled one leaves nothing
# half-done).  Well inside systemd's default TimeoutStopSec of 90 s.
STOP_GRACE_SECONDS = 10.0
DELIVERY_TICK_SECONDS = 30.0


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
    def __init__(self, config: Config, clock: Callable[[], datetime] | None = None) -> None:
        self.config = config
        self.clock = clock or (lambda: datetime.now(UTC))
        self.stop = asyncio.Event()
        self.running: set[asyncio.Task[Any]] = set()

    def _tracked(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Coroutine[Any, Any, None]]:
        """Wrap a job so shutdown can wait for it, and so it never kills the loop."""

        async def job(*args: Any) -> None:
            if self.stop.is_set():
                return
            task = asyncio.current_task()
            if task is not None:
                self.running.add(task)
            try:
                await fn(*args)
            except Exception:
                log.exception("job %s failed", getattr(fn, "__name__", fn))
            finally:
                if task is not None:
                    self.running.discard(task)

        return job

    async def run(self) -> int:
        # Imported here: commands other than `run` do not pay for APScheduler.
        from apscheduler.schedulers.asyncio import AsyncIOScheduler
        from apscheduler.triggers.cron import CronTrigger

        config = self.config
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        store = Store.open(config.state_dir)
        now = self.clock()
        if store.get_meta(FIRST_START_KEY) is None:
            store.set_meta(FIRST_START_KEY, now.isoformat())
        async with make_client(config.poll) as client, Poller(config, store, client, self.clock) as poller:
            digester = Digester(config, store, Deliverer(client, store, self.clock), self.clock, _stdout())

            async def poll(feed: Feed) -> None:
                await poller.poll(feed)

            async def digest() -> None:
                result = await digester.run()
                for r in result.reports:
                    if r.error:
                        log.warning("digest delivery to %s incomplete: %s", r.webhook, r.error)

            async def redeliver() -> None:
                await digester.redeliver()

            async def startup(due: list[Feed]) -> None:
                # The first round, then a digest missed while we were down.
                await poller.poll_all(due)
                last = store.get_meta(LAST_DIGEST_KEY) or store.get_meta(FIRST_START_KEY)
                last_run = datetime.fromisoformat(last) if last else None
                if not self.stop.is_set() and missed_digest(
                    self.clock(), config.schedule.digest_at, config.timezone, last_run
                ):
                    log.info("catching up a digest missed while the service was down")
                    await digest()
                if not self.stop.is_set() and config.webhooks:
                    await digester.redeliver()  # what a crash or an outage left undelivered

            scheduler = AsyncIOScheduler(timezone=config.timezone)
            due_now = self._schedule_polls(scheduler, store, now, poll)
            for t in config.schedule.digest_at:
                scheduler.add_job(
                    self._tracked(digest),
                    CronTrigger(hour=t.hour, minute=t.minute, timezone=config.timezone),
                    id=f"digest:{t.isoformat('minutes')}",
                    coalesce=True,
                    max_instances=1,
                    misfire_grace_time=3600,
                )
            every = config.schedule.digest_every
            if every is not None:
                self._every(scheduler, digest, every.total_seconds(), "digest:every")
            if config.webhooks:
                # Queues in backoff (an outage, a rate limit) are retried
                # between digests, each when its wait is over.
                tick = min(DELIVERY_TICK_SECONDS, every.total_seconds() if every else DELIVERY_TICK_SECONDS)
                self._every(scheduler, redeliver, tick, "deliver")
            scheduler.start()
            log.info(
                "started: %d feeds (%d due now), digests at %s%s %s",
                len(config.enabled_feeds),
                len(due_now),
                ", ".join(t.isoformat("minutes") for t in config.schedule.digest_at) or "-",
                f" and every {config.schedule.digest_every}" if config.schedule.digest_every else "",
                config.timezone,
            )
            first: asyncio.Task[None] = asyncio.create_task(self._tracked(startup)(due_now))
            await self.stop.wait()
            log.info("stopping")
            poller.stopping.set()  # feeds not started yet are skipped
            scheduler.shutdown(wait=False)
            await self._drain()
            first.cancel()
        store.close()
        return 0

    def _schedule_polls(
        self, scheduler: Any, store: Store, now: datetime, poll: Callable[[Feed], Awaitable[None]]
    ) -> list[Feed]:
        """One interval job per enabled feed, first run when due; returns the feeds due now."""
        states = store.all_feed_states()
        due_now: list[Feed] = []
        for feed in self.config.enabled_feeds:
            interval = self.config.feed_interval(feed)
            state = states.get(feed.url)
            first = first_due(now, state.last_poll_at if state else None, interval)
            if first <= now:
                due_now.append(feed)
                first = now + interval
            self._every(scheduler, poll, interval.total_seconds(), f"poll:{feed.url}", [feed], first)
        return due_now

    def _every(
        self,
        scheduler: Any,
        fn: Callable[..., Awaitable[Any]],
        seconds: float,
        job_id: str,
        args: Sequence[Any] = (),
        first: datetime | None = None,
    ) -> None:
        """An interval job: never two at once, late runs merged into one."""
        from apscheduler.triggers.interval import IntervalTrigger

        options: dict[str, Any] = {"next_run_time": first} if first is not None else {}
        scheduler.add_job(
            self._tracked(fn),
            IntervalTrigger(seconds=seconds),
            args=list(args),
            id=job_id,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
            **options,
        )

    async def _drain(self) -> None:
        pending = [t for t in self.running if t is not asyncio.current_task()]
        if not pending:
            return
        _done, still = await asyncio.wait(pending, timeout=STOP_GRACE_SECONDS)
        for task in still:
            task.cancel()
        if still:
            await asyncio.wait(still)


def _stdout() -> Any:
    import sys

    return sys.stdout
