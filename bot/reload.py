"""What a config reload changes (pure): old config + new config → a plan.

The service applies the plan: new feeds are scheduled (their first poll
follows ``first_poll``, as for any new feed), removed feeds stop, changed
intervals are rescheduled, and everything else (topics, labels, templates,
webhooks, digest times) takes effect for the next poll or digest.  Some
settings cannot change under a running service (the state directory): the
plan says so and the old value stays.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import Config, Feed


@dataclass(frozen=True)
class ReloadPlan:
    added: tuple[Feed, ...] = ()
    removed: tuple[Feed, ...] = ()
    rescheduled: tuple[Feed, ...] = ()  # enabled before and after, new interval
    digests: bool = False  # digest times, interval or time zone changed
    http: bool = False  # [poll] settings that the HTTP clients are built from
    webhooks: bool = False
    needs_restart: tuple[str, ...] = ()  # keys whose change waits for a restart
    digests_added: tuple[str, ...] = ()  # [[digests]] names (a new one starts on its feeds' next change)
    digests_removed: tuple[str, ...] = ()  # their items not yet in a digest stay in the state

    @property
    def empty(self) -> bool:
        return not (
            self.added
            or self.removed
            or self.rescheduled
            or self.digests
            or self.http
            or self.webhooks
            or self.digests_added
            or self.digests_removed
        )

    def summary(self) -> str:
        parts = []
        if self.added:
            parts.append("added " + ", ".join(f.name for f in self.added))
        if self.removed:
            parts.append("removed " + ", ".join(f.name for f in self.removed))
        if self.rescheduled:
            parts.append("new interval for " + ", ".join(f.name for f in self.rescheduled))
        if self.digests_added:
            parts.append("added digest " + ", ".join(self.digests_added))
        if self.digests_removed:
            parts.append("removed digest " + ", ".join(self.digests_removed))
        if self.digests:
            parts.append("digest times")
        if self.http:
            parts.append("poll settings")
        if self.webhooks:
            parts.append("webhooks")
        if self.needs_restart:
            parts.append("needs a restart: " + ", ".join(self.needs_restart))
        return "; ".join(parts) or "no scheduling change"


def plan(old: Config, new: Config) -> ReloadPlan:
    before = {f.url: f for f in old.enabled_feeds}
    after = {f.url: f for f in new.enabled_feeds}
    names_before = [d.name for d in old.digests]
    names_after = [d.name for d in new.digests]
    return ReloadPlan(
        added=tuple(f for url, f in after.items() if url not in before),
        removed=tuple(f for url, f in before.items() if url not in after),
        rescheduled=tuple(
            f for url, f in after.items() if url in before and new.feed_interval(f) != old.feed_interval(before[url])
        ),
        digests=old.schedule != new.schedule or old.timezone != new.timezone or _times(old) != _times(new),
        digests_added=tuple(n for n in names_after if n not in names_before),
        digests_removed=tuple(n for n in names_before if n not in names_after),
        http=old.poll != new.poll,
        webhooks=old.webhooks != new.webhooks,
        needs_restart=("state_dir",) if old.state_dir != new.state_dir else (),
    )


def _times(config: Config) -> list[tuple[str, object, object]]:
    return [(d.name, d.schedule.digest_at, d.schedule.digest_every) for d in config.streams()]
