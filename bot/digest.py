"""Building a digest and handing it to delivery.

Composing is pure (``bot.compose``, run in a worker).  ``Digester.run``
binds the pending items to a new digest and records its messages for every
webhook in one transaction (the outbox), then delivers every webhook's
queue, oldest digest first.  With no webhook configured, the digest is
written to stdout and archived under ``state_dir/digests``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import TextIO

from bot import metrics
from bot.compose import Composed, compose_day, compose_plain
from bot.config import Config, Webhook
from bot.deliver import Deliverer, DeliveryReport
from bot.errors import DeliveryError, FeedbotError, LeaseLost
from bot.kinds import KINDS
from bot.labels import BACKGROUND_DAYS, Choice
from bot.models import DeliveryProblem, FailingFeed, Item, Rendered
from bot.state import Store
from bot.state.records import Lease, instance_id
from bot.text import shown
from bot.workers import Workers
from bot.workers import shared as shared_workers

log = logging.getLogger("feedbot.digest")

LAST_DIGEST_KEY = "last_digest_at"


def last_digest_key(stream: str) -> str:
    """The meta key of a digest's last run ("" keeps the key it always had)."""
    return f"{LAST_DIGEST_KEY}:{stream}" if stream else LAST_DIGEST_KEY


LAST_PRUNE_KEY = "last_prune_at"
PRUNE_EVERY = timedelta(days=1)


def cap_per_feed(items: Sequence[Item], cap: int) -> tuple[list[Item], dict[str, int]]:
    """At most ``cap`` items of each feed, the oldest taken first (by when
    they were taken: the rest go into the next digest in the same order);
    and how many each feed has left over."""
    taken: dict[str, int] = {}
    kept: list[Item] = []
    held: dict[str, int] = {}
    for item in sorted(items, key=lambda i: i.id):
        if taken.get(item.feed_url, 0) < cap:
            taken[item.feed_url] = taken.get(item.feed_url, 0) + 1
            kept.append(item)
        else:
            held[item.feed] = held.get(item.feed, 0) + 1
    return kept, held


@dataclass(frozen=True)
class DigestResult:
    digest_id: int | None  # the digest built now, if any
    items: int
    reports: tuple[DeliveryReport, ...] = ()

    @property
    def ok(self) -> bool:
        """Every message accepted (one set aside needs an operator too)."""
        return all(r.error is None and not r.set_aside for r in self.reports)


class Digester:
    def __init__(
        self,
        config: Config,
        store: Store,
        deliverer: Deliverer,
        clock: Callable[[], datetime],
        out: TextIO,
        workers: Workers | None = None,
        owner: str | None = None,
        stream: str = "",
    ) -> None:
        # ``stream``: which digest this builds (a ``[[digests]]`` name; "" the
        # one digest of a config without them).  ``config`` is the whole
        # installation's; ``self.config``, what this digest sees of it.
        self.stream = stream
        self.reconfigure(config)
        self.store = store
        self.deliverer = deliverer
        self.clock = clock
        self.out = out
        self.workers = workers or shared_workers()
        # The instance: the holder of the digest lease, recorded with the
        # slots it serves and on the messages it sends.
        self.owner = owner or instance_id()

    def reconfigure(self, config: Config) -> None:
        """The config after a reload (the digest is still in it)."""
        spec = config.digest_named(self.stream)
        if spec is None:
            raise FeedbotError(f"no digest named {self.stream!r} in {config.path}")
        self.installation = config
        self.config = config.for_digest(spec)

    def today(self) -> date:
        return self.clock().astimezone(self.config.timezone).date()

    async def preview(self, day: date | None = None) -> tuple[Rendered | None, list[Choice]]:
        """The digest that would be built now, and how its labels were chosen."""
        items, _ = cap_per_feed(self.store.unbound_items(self.stream), self.config.digest.max_items_per_feed)
        if not items:
            return None, []
        composed = await self.compose(items, day or self.today())
        return composed.rendered, list(composed.choices)

    async def compose(self, items: Sequence[Item], day: date) -> Composed:
        """The digest of ``items``, composed in a worker process (its labels'
        dictionary stays out of the service, and its CPU is limited); if the
        worker is stopped, the items in publication order under dated
        labels, composed in a thread: the loop never waits on it."""
        background = (
            self.store.label_background(day.isoformat(), BACKGROUND_DAYS) if self.config.digest.labels == "auto" else {}
        )
        try:
            composed = await self.workers.run(compose_day, self.config, items, day, background, single=True)
        except FeedbotError as exc:
            log.warning(
                "composing the digest of %d items stopped (%s): it goes out in publication order, dated labels",
                len(items),
                exc,
            )
            return await asyncio.to_thread(compose_plain, self.config, items, day)
        if composed.stories == "capped":
            log.info("digest of %d items: stories found among candidate pairs only (a busy day)", len(items))
        elif composed.stories == "off":
            log.warning(
                "digest of %d items: story grouping ran out of its budget; later groups keep publication order",
                len(items),
            )
        return composed

    def failing_feeds(self, now: datetime) -> tuple[FailingFeed, ...]:
        """Configured feeds failing for longer than ``digest.health_after``."""
        if self.config.digest.health != "message":
            return ()
        states = self.store.all_feed_states()
        found = []
        for feed in self.config.feeds:
            s = states.get(feed.url)
            if s is None or not s.error_count or s.failing_since is None:
                continue
            if now - s.failing_since >= self.config.digest.health_after:
                found.append(FailingFeed(feed.name, s.failing_since, s.error_count, shown(s.last_error or "", 160)))
        return tuple(found)

    def delivery_problems(self, now: datetime) -> tuple[DeliveryProblem, ...]:
        """Configured webhooks with messages set aside, or whose queue has
        been held or failing for longer than ``digest.health_after``, for
        the same report."""
        if self.config.digest.health != "message":
            return ()
        names = {w.ident: w.name for w in self.config.webhooks}
        refusals = {m.webhook: m.error for m in self.store.set_aside_messages()}  # the latest of each
        found = []
        for b in self.store.backlog():
            name = names.get(b.webhook)
            stuck = b.since is not None and now - b.since >= self.config.digest.health_after
            failing = bool(b.pending and b.last_error and stuck)
            if name is None or not (b.set_aside or failing):
                continue
            error = (b.last_error if failing else refusals.get(b.webhook)) or ""
            error = shown(error.removeprefix(f"{name}: "), 160)
            found.append(DeliveryProblem(name, b.set_aside, b.pending if failing else 0, error))
        return tuple(found)

    async def run(
        self, day: date | None = None, slot: str | None = None, slot_now: Callable[[], str | None] | None = None
    ) -> DigestResult:
        """Build the digest of what is pending and deliver it.

        ``slot``: the scheduled time this run serves; where instances share
        the state, the first to get there builds it and the others find it
        served and build nothing.  ``slot_now``: the slot due when the lease
        is had (a run that waited for a stopped instance's lease to lapse
        serves the slot due then, not the one due when it began waiting).
        An instance that loses the digest lease meanwhile (stopped past it)
        stops with a warning: the work is the new holder's."""
        try:
            async with self.store.exclusive("digest", self.owner) as lease:
                slot = slot_now() if slot_now is not None else slot
                if slot is not None and self.store.slot_served(slot):
                    log.info("digest slot %s already served (another instance)", slot)
                    return DigestResult(None, 0, ())
                return await self._run(day, slot, lease)
        except LeaseLost as exc:
            log.warning("digest: %s; another instance goes on with it", exc)
            return DigestResult(None, 0, ())

    async def redeliver(self) -> list[DeliveryReport]:
        """Retry the queues whose backoff is over (the service's delivery
        tick): every webhook's, whichever digest its messages are of (a
        webhook no digest sends to any more still has its queue sent)."""
        async with self.store.exclusive("digest", self.owner) as lease:
            return await self.deliverer.deliver_all(self.installation.webhooks, lease, force=False)

    async def _run(self, day: date | None, slot: str | None, lease: Lease) -> DigestResult:
        now = self.clock()
        webhooks = self.config.webhooks
        # The installation's webhooks: another digest's are not this one's to drop.
        dropped = self.store.drop_webhooks_except(w.ident for w in self.installation.webhooks)
        if dropped:
            log.warning("dropped %d undelivered message(s) of webhooks no longer configured", dropped)
        items, held = cap_per_feed(
            await self.store.in_thread(lambda s: s.unbound_items(self.stream)), self.config.digest.max_items_per_feed
        )
        for feed, count in held.items():
            log.warning(
                "feed=%s has more items than digest.max_items_per_feed (%d): %d wait for the next digest",
                feed,
                self.config.digest.max_items_per_feed,
                count,
            )
        digest_id = None
        if items:
            day = day or self.today()
            composed = await self.compose(items, day)
            rendered = replace(
                composed.rendered, health=self.failing_feeds(now), deliveries=self.delivery_problems(now)
            )
            limits = {w.ident: await self._server_limit(w) for w in webhooks}
            # Numbered first, so that its messages (which carry the number)
            # are cut in a thread, off the loop, before the transaction.
            digest_id = self.store.reserve_digest_id()
            built = await asyncio.to_thread(self._messages, rendered, digest_id, limits)

            if not webhooks:
                # stdout is the channel: write it (and the archive copy)
                # before the items are bound, so a failed write loses nothing.
                self._archive(now, rendered)
            served = (slot, self.owner) if slot else None
            ids = [i.id for i in items]
            when, text = rendered.digest.date, rendered.text
            # In a thread, on a connection of its own: tens of megabytes on a
            # busy day, which the event loop would wait for.
            await self.store.in_thread(
                lambda s: s.create_digest(
                    when,
                    now,
                    ids,
                    text,
                    lambda _: built,
                    slot=served,
                    digest_id=digest_id,
                    lease=lease,
                    stream=self.stream,
                )
            )
            metrics.digests.labels(self.stream).inc()
            log.info(
                "digest=%d%s date=%s items=%d webhooks=%d",
                digest_id,
                f" name={self.stream}" if self.stream else "",
                rendered.digest.date,
                len(items),
                len(webhooks),
            )
            if composed.phrases:
                self.store.record_label_phrases(rendered.digest.date, composed.phrases)
        elif slot is not None:
            self.store.serve_slot(slot, self.owner, now, None)  # nothing to send: served all the same
        self.store.set_meta(last_digest_key(self.stream), now.isoformat())
        reports = await self.deliverer.deliver_all(webhooks, lease) if webhooks else []
        self._prune(now)
        return DigestResult(digest_id, len(items), tuple(reports))

    def _messages(
        self, rendered: Rendered, digest_id: int, limits: dict[str, int | None]
    ) -> dict[str, Sequence[tuple[str, bytes]]]:
        """Each webhook's messages (content type, body), in order."""
        return {
            w.ident: [
                (m.content_type, m.body)
                for m in KINDS[w.kind].build(rendered, digest_id, self.config.timezone, w, limits[w.ident])
            ]
            for w in self.config.webhooks
        }

    async def _server_limit(self, webhook: Webhook) -> int | None:
        """The limit a Misskey or Mastodon server announces (its kind's
        default if it cannot be read: the digest is not held for it)."""
        kind = KINDS[webhook.kind]
        req = kind.limit_request(webhook)
        if req is None:
            return None
        try:
            reply = await self.deliverer.exchange(req, read_accepted=True)
        except DeliveryError as exc:
            log.warning("webhook=%s: the server's limit per message is unknown (%s)", webhook.name, exc)
            return None
        return kind.limit_from(reply) if reply.status == 200 else None

    def _prune(self, now: datetime) -> None:
        """Once a day at most: forget what is older than ``poll.retention``."""
        retention = self.config.poll.retention
        last = self.store.get_meta(LAST_PRUNE_KEY)
        if retention is None or (last and now - datetime.fromisoformat(last) < PRUNE_EVERY):
            return
        keys, digests = self.store.prune(now - retention)
        self.store.set_meta(LAST_PRUNE_KEY, now.isoformat())
        if keys or digests:
            log.info("pruned %d seen keys and %d delivered digests older than %s", keys, digests, retention)

    def _archive(self, now: datetime, rendered: Rendered) -> None:
        """No webhook: stdout is the channel, and a copy stays in state_dir."""
        folder = self.config.state_dir / "digests"
        stamp = now.astimezone(self.config.timezone).strftime("%H%M%S")
        path = folder / f"{self.stream + '-' if self.stream else ''}{rendered.digest.date}-{stamp}.txt"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            temp = path.with_suffix(".tmp")
            temp.write_text(rendered.text + "\n", encoding="utf-8")
            temp.replace(path)
        except OSError as exc:
            raise FeedbotError(f"cannot archive the digest in {folder}: {exc.strerror or exc}") from None
        try:
            self.out.write(rendered.text + "\n")
            self.out.flush()
        except OSError as exc:
            raise FeedbotError(f"cannot write the digest to stdout: {exc.strerror or exc}") from None
