"""The ``[schedule]``, ``[poll]`` and ``[digest]`` tables: their records and their reading."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import time, timedelta
from typing import Any

from bot.config.reading import Reader
from bot.config.values import (
    _bool,
    _duration,
    _duration_between,
    _int_between,
    _interval,
    _keys,
    _nonempty_str,
    _one_of,
    _positive_duration,
    _str_list,
    _tag,
    _times_or_none,
    _window,
)

DEFAULT_USER_AGENT = "feedbot/{version} (feed-to-digest bot)"


@dataclass(frozen=True)
class Schedule:
    poll_every: timedelta = timedelta(minutes=15)
    digest_at: tuple[time, ...] = (time(7, 0),)
    digest_every: timedelta | None = None  # digests at a fixed interval too (hourly digests, tests)


@dataclass(frozen=True)
class PollSettings:
    first_poll: timedelta | None = timedelta(days=1)  # None: "all"
    max_age: timedelta | None = timedelta(days=7)  # None: "none"
    timeout: timedelta = timedelta(seconds=20)
    concurrency: int = 8
    user_agent: str = DEFAULT_USER_AGENT
    allow_private_addresses: bool = False  # article links may reach loopback/private addresses
    host_spacing: timedelta = timedelta(seconds=1)  # between two feed requests to one host
    # Article pages one poll of one feed may fetch; its other new items keep
    # the feed's own text (a feed of 10,000 new links costs 30 fetches).
    max_pages_per_poll: int = 30
    retention: timedelta | None = timedelta(days=90)  # forget seen keys and sent digests after; None: never


@dataclass(frozen=True)
class DigestSettings:
    default_topic: str = "ニュース"
    lead: tuple[str, ...] = ()
    headline_max: int = 140
    # Items one feed may add to one digest; the rest wait for the next (a
    # feed that suddenly lists 100,000 entries cannot flood the channel).
    max_items_per_feed: int = 50
    labels: str = "auto"  # a group no [[labels]] rule names: "auto" (the day's event, bot/labels.py) or "date"
    health: str = "message"  # "message": feeds failing longer than health_after, after the digest; "off"
    health_after: timedelta = timedelta(days=1)
    # The whole exchange of one message with its platform (a POST and its
    # answer, an SMTP session).  Longer than a feed's: a platform that
    # answers late has usually posted the message, and a retry after a
    # timeout may post it twice where the platform takes no idempotency key.
    delivery_timeout: timedelta = timedelta(seconds=60)


def read_schedule(r: Reader, data: Any) -> Schedule:
    t = r.table(data, "schedule", _keys(Schedule))
    d = Schedule()
    poll_every = r.get(t, "poll_every", "schedule.poll_every", _interval, d.poll_every)
    digest_at, digest_every = digest_times(r, t, "schedule", d)
    return Schedule(poll_every=poll_every, digest_at=digest_at, digest_every=digest_every)


def read_poll(r: Reader, data: Any) -> PollSettings:
    t = r.table(data, "poll", _keys(PollSettings))
    d = PollSettings()
    max_age = r.get(t, "max_age", "poll.max_age", _window("none"), d.max_age)
    return PollSettings(
        first_poll=r.get(t, "first_poll", "poll.first_poll", _window("all"), d.first_poll),
        max_age=max_age,
        timeout=r.get(t, "timeout", "poll.timeout", _positive_duration, d.timeout),
        concurrency=r.get(t, "concurrency", "poll.concurrency", _int_between(1, 64), d.concurrency),
        user_agent=r.get(t, "user_agent", "poll.user_agent", _user_agent, d.user_agent),
        allow_private_addresses=r.get(
            t, "allow_private_addresses", "poll.allow_private_addresses", _bool, d.allow_private_addresses
        ),
        host_spacing=r.get(t, "host_spacing", "poll.host_spacing", _duration, d.host_spacing),
        max_pages_per_poll=r.get(
            t, "max_pages_per_poll", "poll.max_pages_per_poll", _int_between(0, 10_000), d.max_pages_per_poll
        ),
        retention=_retention(r, t, max_age),
    )


def _retention(r: Reader, t: dict[str, Any], max_age: timedelta | None) -> timedelta | None:
    """Above max_age, or pruned entries could come back: the max-age guard
    is what keeps a forgotten entry out."""
    if "retention" not in t:
        return None if max_age is None else max(PollSettings().retention or max_age, 4 * max_age)
    value = r.get(t, "retention", "poll.retention", _window("none"), None)
    if value is None:
        return None  # "none": never forget
    if max_age is None:
        r.problem("poll.retention", 'must be "none" when poll.max_age is "none" (forgotten entries come back)')
    elif value <= max_age:
        r.problem("poll.retention", f"must be longer than poll.max_age ({t.get('max_age', '7d')})")
    return value


# The checker of each [digest] key; a [[digests]] table may override those
# of PER_DIGEST (bot/config/digests.py), with the same checkers.
DIGEST_CHECKS: dict[str, Callable[[Any], Any]] = {
    "default_topic": _tag,
    "lead": _str_list,
    "headline_max": _int_between(10, 1000),
    "max_items_per_feed": _int_between(1, 10_000),
    "labels": _one_of("auto", "date"),
    "health": _one_of("message", "off"),
    "health_after": _positive_duration,
    "delivery_timeout": _duration_between(5, 3600),
}
PER_DIGEST = ("default_topic", "lead", "labels", "max_items_per_feed", "health", "headline_max")


def read_digest(r: Reader, data: Any) -> DigestSettings:
    t = r.table(data, "digest", _keys(DigestSettings))
    return digest_settings(r, t, "digest", DigestSettings(), DIGEST_CHECKS)


def digest_settings(
    r: Reader, t: dict[str, Any], p: str, base: DigestSettings, checks: Mapping[str, Callable[[Any], Any]]
) -> DigestSettings:
    """``base`` with the keys of ``checks`` that table ``t`` (at key path ``p``) sets."""
    changes = {key: r.get(t, key, f"{p}.{key}", check, getattr(base, key)) for key, check in checks.items()}
    return replace(base, **changes)


def digest_times(r: Reader, t: dict[str, Any], p: str, d: Schedule) -> tuple[tuple[time, ...], timedelta | None]:
    """``digest_at`` and ``digest_every`` of table ``t`` (at key path ``p``):
    ``digest_every`` alone replaces the time of day ``d`` has; ``digest_at =
    []`` is allowed with it."""
    digest_every = r.get(t, "digest_every", f"{p}.digest_every", _interval, None)
    default_at = () if digest_every is not None else d.digest_at
    digest_at = r.get(t, "digest_at", f"{p}.digest_at", _times_or_none(digest_every is not None), default_at)
    return digest_at, digest_every


def _user_agent(v: Any) -> str:
    s = _nonempty_str(v)
    try:
        s.format(version="0")
    except (KeyError, IndexError, ValueError):
        raise ValueError(
            f"{s!r} may contain only the placeholder {{version}}; write {{{{ and }}}} for literal braces"
        ) from None
    return s
