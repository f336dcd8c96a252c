"""The ``Config`` record: the whole of config.toml, read."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.config.digests import DigestSpec
from bot.config.feeds import Feed, LabelRule, Topic
from bot.config.schedule import DigestSettings, PollSettings, Schedule
from bot.config.state import MetricsSettings, StateSettings, database_shown, password_forms
from bot.config.webhooks import Webhook


@dataclass(frozen=True)
class Config:
    path: Path
    timezone: ZoneInfo
    state_dir: Path
    schedule: Schedule = field(default_factory=Schedule)
    poll: PollSettings = field(default_factory=PollSettings)
    digest: DigestSettings = field(default_factory=DigestSettings)
    feeds: tuple[Feed, ...] = ()
    topics: tuple[Topic, ...] = ()
    labels: tuple[LabelRule, ...] = ()
    webhooks: tuple[Webhook, ...] = ()
    warnings: tuple[str, ...] = ()
    state: StateSettings = field(default_factory=StateSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    digests: tuple[DigestSpec, ...] = ()  # what the [[digests]] tables say, in order (streams(): with the implicit one)

    def feed_interval(self, feed: Feed) -> timedelta:
        return feed.poll_every or self.schedule.poll_every

    def secrets(self) -> dict[str, str]:
        """Every secret value, with how it may be shown (for log redaction)."""
        shown: dict[str, str] = {}
        for w in self.webhooks:
            if w.url.reveal():
                shown[w.url.reveal()] = w.url.redacted()
                # The path alone is the credential: redact it wherever it appears.
                path = w.url.reveal().split("://", 1)[-1].partition("/")[2]
                if len(path) >= 8:
                    shown[path] = "…"
            if w.secret is not None and w.secret.reveal():
                shown[w.secret.reveal()] = "<secret>"
            if w.token is not None and w.token.reveal():
                shown[w.token.reveal()] = "<token>"
        if self.state.url is not None and self.state.url.reveal():
            url = self.state.url.reveal()
            shown[url] = database_shown(url)
            for password in password_forms(url):
                shown[password] = "<password>"
        return shown

    def feed_named(self, name: str) -> Feed | None:
        return next((f for f in self.feeds if f.name == name), None)

    @property
    def enabled_feeds(self) -> tuple[Feed, ...]:
        return tuple(f for f in self.feeds if f.enabled)

    def streams(self) -> tuple[DigestSpec, ...]:
        """The digests this installation makes: the [[digests]] tables, or, with none, one implicit digest
        named "" taking every feed, every webhook, every topic and label rule, with the global [schedule]/[digest]."""
        return self._streams

    @cached_property
    def _streams(self) -> tuple[DigestSpec, ...]:
        # Once per config (a frozen record: ``replace`` makes a new one, without
        # this): made per poll, the implicit digest's list of every feed made a
        # first round of 100,000 feeds quadratic.
        if self.digests:
            return self.digests
        return (
            DigestSpec(
                name="",
                feeds=tuple(f.name for f in self.feeds),
                webhooks=self.webhooks,
                topics=self.topics,
                labels=self.labels,
                schedule=self.schedule,
                digest=self.digest,
            ),
        )

    def for_digest(self, spec: DigestSpec) -> Config:
        """This config as one digest sees it: only its feeds (in config order), webhooks, topics and label
        rules, its [digest] settings and its digest times (the global poll_every), and no [[digests]]."""
        taken = set(spec.feeds)
        return replace(
            self,
            feeds=tuple(f for f in self.feeds if f.name in taken),
            webhooks=spec.webhooks,
            topics=spec.topics,
            labels=spec.labels,
            digest=spec.digest,
            schedule=replace(self.schedule, digest_at=spec.schedule.digest_at, digest_every=spec.schedule.digest_every),
            digests=(),
        )

    def digest_named(self, name: str) -> DigestSpec | None:
        """The digest of that name among ``streams()`` ("" for the implicit one), or None."""
        return next((s for s in self.streams() if s.name == name), None)

    def streams_of(self, feed_name: str) -> tuple[str, ...]:
        """The names of the digests that take this feed (("",) for every feed when there is no [[digests]] table)."""
        return self._streams_by_feed.get(feed_name, ())

    @cached_property
    def _streams_by_feed(self) -> dict[str, tuple[str, ...]]:
        by_feed: dict[str, list[str]] = {}
        for spec in self.streams():
            for name in spec.feeds:
                names = by_feed.setdefault(name, [])
                if spec.name not in names:
                    names.append(spec.name)
        return {name: tuple(names) for name, names in by_feed.items()}
