"""Building a digest and handing it to delivery.

``compose`` is pure: items + config + day → Rendered.  ``Digester.run``
binds the pending items to a new digest and records its messages for every
webhook in one transaction (the outbox), then delivers every webhook's
queue, oldest digest first.  With no webhook configured, the digest is
written to stdout and archived under ``state_dir/digests``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import TextIO

from bot import metrics
from bot.config import Config, Webhook
from bot.deliver import Deliverer, DeliveryReport
from bot.errors import DeliveryError, FeedbotError
from bot.kinds import KINDS
from bot.labels import BACKGROUND_DAYS, Choice, GroupText, ItemText, label_groups
from bot.models import FailingFeed, Item, Rendered
from bot.render import render
from bot.state import Store
from bot.text import shown
from bot.topics import assign, build_digest, choose_label, haystack, topic_words
from bot.workers import Workers
from bot.workers import shared as shared_workers

log = logging.getLogger("feedbot.digest")

LAST_DIGEST_KEY = "last_digest_at"
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


def compose(config: Config, items: Sequence[Item], day: date, auto: Mapping[str, str] | None = None) -> Rendered:
    """``auto``: the labels ``bot.labels`` chose, by topic tag."""
    digest = build_digest(items, day, config.topics, config.labels, config.digest, auto)
    return render(config, digest)


def label_input(config: Config, items: Sequence[Item]) -> list[GroupText]:
    """The day's groups as ``bot.labels`` reads them; ``auto`` for the topic
    groups that neither a fixed label nor a ``[[labels]]`` rule names."""
    plan = assign(items, config.topics, config.digest)

    def texts(group: Sequence[Item]) -> tuple[ItemText, ...]:
        return tuple(ItemText(i.title or (i.body[0] if i.body else ""), i.body) for i in group)

    groups = [GroupText("", (), texts(plan.lead), auto=False)]
    for topic, members in zip(config.topics, plan.members, strict=True):
        if members:
            named = topic.label or choose_label(config.labels, [haystack(i) for i in members])
            groups.append(GroupText(topic.tag, topic_words(topic), texts(members), auto=named is None))
    groups.append(GroupText(config.digest.default_topic, (), texts(plan.rest), auto=False))
    return groups


@dataclass(frozen=True)
class DigestResult:
    digest_id: int | None  # the digest built now, if any
    items: int
    reports: tuple[DeliveryReport, ...] = ()

    @property
    def ok(self) -> bool:
        return all(r.error is None for r in self.reports)


class Digester:
    def __init__(
        self,
        config: Config,
        store: Store,
        deliverer: Deliverer,
        clock: Callable[[], datetime],
        out: TextIO,
        workers: Workers | None = None,
        owner: str = "local",
    ) -> None:
        self.config = config
        self.store = store
        self.deliverer = deliverer
        self.clock = clock
        self.out = out
        self.workers = workers or shared_workers()
        self.owner = owner  # the instance, recorded with the slots it serves

    def today(self) -> date:
        return self.clock().astimezone(self.config.timezone).date()

    async def preview(self, day: date | None = None) -> tuple[Rendered | None, list[Choice]]:
        """The digest that would be built now, and how its labels were chosen."""
        items, _ = cap_per_feed(self.store.unbound_items(), self.config.digest.max_items_per_feed)
        if not items:
            return None, []
        day = day or self.today()
        auto, choices, _ = await self.auto_labels(items, day)
        return compose(self.config, items, day, auto), choices

    async def auto_labels(self, items: Sequence[Item], day: date) -> tuple[dict[str, str], list[Choice], set[str]]:
        """The day's event of each group no rule names (``bot.labels``), in a
        worker of its own: the dictionary takes ~80 MB, which the service's
        process does not keep."""
        if self.config.digest.labels != "auto":
            return {}, [], set()
        groups = label_input(self.config, items)
        if not any(g.auto for g in groups):
            return {}, [], set()
        background = self.store.label_background(day.isoformat(), BACKGROUND_DAYS)
        try:
            choices, phrases = await self.workers.run(label_groups, groups, background, single=True)
        except FeedbotError as exc:  # labels are a nicety: the digest goes out with dates
            log.warning("automatic labels failed (%s): the groups are labelled with the date", exc)
            return {}, [], set()
        return {c.tag: c.label for c in choices if c.label}, choices, phrases

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

    async def run(self, day: date | None = None, slot: str | None = None) -> DigestResult:
        """Build the digest of what is pending and deliver it.

        ``slot``: the scheduled time this run serves; where instances share
        the state, the first to get there builds it and the others find it
        served and build nothing."""
        async with self.store.exclusive("digest"):
            if slot is not None and self.store.slot_served(slot):
                log.info("digest slot %s already served (another instance)", slot)
                return DigestResult(None, 0, ())
            return await self._run(day, slot)

    async def redeliver(self) -> list[DeliveryReport]:
        """Retry the queues whose backoff is over (the service's delivery tick)."""
        async with self.store.exclusive("digest"):
            return await self.deliverer.deliver_all(self.config.webhooks, force=False)

    async def _run(self, day: date | None, slot: str | None = None) -> DigestResult:
        now = self.clock()
        webhooks = self.config.webhooks
        dropped = self.store.drop_webhooks_except(w.ident for w in webhooks)
        if dropped:
            log.warning("dropped %d undelivered message(s) of webhooks no longer configured", dropped)
        items, held = cap_per_feed(self.store.unbound_items(), self.config.digest.max_items_per_feed)
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
            auto, _choices, phrases = await self.auto_labels(items, day)
            rendered = replace(compose(self.config, items, day, auto), health=self.failing_feeds(now))

            limits = {w.ident: await self._server_limit(w) for w in webhooks}

            def messages(did: int) -> dict[str, Sequence[tuple[str, bytes]]]:
                return {
                    w.ident: [
                        (m.content_type, m.body)
                        for m in KINDS[w.kind].build(rendered, did, self.config.timezone, w, limits[w.ident])
                    ]
                    for w in webhooks
                }

            if not webhooks:
                # stdout is the channel: write it (and the archive copy)
                # before the items are bound, so a failed write loses nothing.
                self._archive(now, rendered)
            digest_id = self.store.create_digest(
                rendered.digest.date,
                now,
                [i.id for i in items],
                rendered.text,
                messages,
                slot=(slot, self.owner) if slot else None,
            )
            metrics.digests.inc()
            log.info(
                "digest=%d date=%s items=%d webhooks=%d", digest_id, rendered.digest.date, len(items), len(webhooks)
            )
            if phrases:
                self.store.record_label_phrases(rendered.digest.date, phrases)
        elif slot is not None:
            self.store.serve_slot(slot, self.owner, now, None)  # nothing to send: served all the same
        self.store.set_meta(LAST_DIGEST_KEY, now.isoformat())
        reports = await self.deliverer.deliver_all(webhooks) if webhooks else []
        self._prune(now)
        return DigestResult(digest_id, len(items), tuple(reports))

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
        path = folder / f"{rendered.digest.date}-{stamp}.txt"
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
