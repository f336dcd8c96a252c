"""Reading ``config.toml`` into frozen objects.

The config is parsed once, when a command starts, and every problem found is
collected with its key path so that ``feedbot check`` can list them all at
once, each with its line in the file and the feed's name, the value it
refused and, for a misspelt key, the key meant
(``config.toml:12: feeds[2] ("NHK").url: not an http(s) URL: 'ftp://x'``).
Defaults live here and nowhere else.  Unknown keys are problems too: a
misspelt key silently ignored is a setting the user believes in but does
not have.

This module reads the config file and, for ``url_file`` and ``${VAR}``, the
files and environment it names; it does no other I/O.
"""

from __future__ import annotations

import difflib
import os
import re
import string
import tomllib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import time, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.configtext import Places, toml_problem
from bot.errors import ConfigError
from bot.secrets import Secret

DEFAULT_HEADLINE = "{title} {link}"
HEADLINE_FIELDS = frozenset({"title", "link", "feed", "handle"})
BODY_MODES = ("auto", "feed", "none")
DEFAULT_USER_AGENT = "feedbot/{version} (feed-to-digest bot)"

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
T = TypeVar("T")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Feed:
    name: str
    url: str
    handle: str | None = None
    headline: str = DEFAULT_HEADLINE
    body: str = "auto"  # "auto" | "feed" | "none" | a CSS selector
    poll_every: timedelta | None = None  # None: the [schedule] default
    enabled: bool = True
    include: tuple[tuple[str, ...], ...] = ()  # entries must match this (title + feed text); () = all
    exclude: tuple[str, ...] = ()  # entries containing any of these are never taken
    max_paragraphs: int | None = None  # body lines kept at most
    max_body_chars: int | None = None  # body characters kept at most


@dataclass(frozen=True)
class Topic:
    tag: str
    match: tuple[tuple[str, ...], ...]
    exclude: tuple[str, ...] = ()
    label: str | None = None


@dataclass(frozen=True)
class LabelRule:
    text: str
    match: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Webhook:
    kind: str
    url: Secret
    name: str
    # The webhook's identity in the outbox, never derived from the URL: a
    # fixed or rotated URL keeps the pending digests.  "name:<name>" when
    # the config names it, else its kind and position ("discord#0").
    ident: str = ""
    secret: Secret | None = None  # HMAC key for json/text webhooks
    token: Secret | None = None  # the kind's credential: a bot or access token, an SMTP password
    # The kind's own keys (chat_id, room, to…), checked (bot/kinds/).
    options: Mapping[str, Any] = field(default_factory=dict, compare=True, hash=False)

    def fingerprint(self) -> str:
        """Where the messages end up: two webhooks with the same are one destination twice."""
        where = "\0".join(f"{k}={v}" for k, v in sorted(self.options.items()) if k in ("chat_id", "to", "room"))
        token = self.token.fingerprint() if self.token is not None else ""
        return self.url.fingerprint(f"{self.kind}\0{where}\0{token}")


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


@dataclass(frozen=True)
class StateSettings:
    # PostgreSQL, shared by several instances ("postgresql://user@host/db");
    # None: SQLite in state_dir.  A credential when it holds a password.
    url: Secret | None = None


@dataclass(frozen=True)
class MetricsSettings:
    listen: tuple[str, int] | None = None  # Prometheus metrics on this address; None: none


@dataclass(frozen=True)
class DigestSpec:
    """One digest the installation makes: its feeds, topics, schedule, destinations."""

    name: str = ""
    feeds: tuple[str, ...] = ()
    webhooks: tuple[Webhook, ...] = ()
    topics: tuple[Topic, ...] = ()
    labels: tuple[LabelRule, ...] = ()
    schedule: Schedule = field(default_factory=Schedule)
    digest: DigestSettings = field(default_factory=DigestSettings)


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
    digests: tuple[DigestSpec, ...] = ()

    def streams(self) -> tuple[DigestSpec, ...]:
        if self.digests:
            return self.digests
        return (
            DigestSpec(
                "",
                tuple(f.name for f in self.feeds),
                self.webhooks,
                self.topics,
                self.labels,
                self.schedule,
                self.digest,
            ),
        )

    def for_digest(self, spec: DigestSpec) -> Config:
        names = set(spec.feeds)
        return replace(
            self,
            feeds=tuple(f for f in self.feeds if f.name in names),
            webhooks=spec.webhooks,
            topics=spec.topics,
            labels=spec.labels,
            digest=spec.digest,
            schedule=replace(self.schedule, digest_at=spec.schedule.digest_at, digest_every=spec.schedule.digest_every),
            digests=(),
        )

    def digest_named(self, name: str) -> DigestSpec | None:
        return next((d for d in self.streams() if d.name == name), None)

    def streams_of(self, feed_name: str) -> tuple[str, ...]:
        return tuple(d.name for d in self.streams() if feed_name in d.feeds)

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


def _keys(record: type) -> set[str]:
    """A section's keys are its record's fields: one list, not two to keep in step."""
    return {f.name for f in fields(record)}


def parse_duration(text: str) -> timedelta:
    """``"90s"``, ``"15m"``, ``"2h"``, ``"7d"``, ``"1w"`` → timedelta."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f'{text!r} is not a duration like "90s", "15m", "2h" or "7d"')
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


def load_config(path: Path, environ: Mapping[str, str] | None = None, need_secrets: bool = True) -> Config:
    """Read and validate ``path``; raise ConfigError listing every problem.

    ``need_secrets=False`` (``check``, ``status``, ``poll``, which send
    nothing): a webhook URL or secret that cannot be read here — an unset
    variable, a credential only systemd hands to the service — is a warning
    (``Config.warnings``), not a problem.
    """
    env = os.environ if environ is None else environ
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"], str(path)) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot be read ({exc.strerror})"], str(path)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not UTF-8 text"], str(path)) from None
    return parse_config(text, path, env, need_secrets)


def parse_config(text: str, path: Path, environ: Mapping[str, str], need_secrets: bool = True) -> Config:
    """Validate config text as if read from ``path`` (relative paths in it
    are relative to its folder): what ``feedbot add`` checks before it
    writes an edit."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([toml_problem(path, text, exc)], str(path)) from None
    return config_from_data(data, path, environ, need_secrets, text)


def config_from_data(
    data: dict[str, Any], path: Path, environ: Mapping[str, str], need_secrets: bool = True, text: str | None = None
) -> Config:
    """``parse_config`` of a file already read by ``tomllib`` (``data`` is not changed).

    ``text``, the file's text, places each problem at its line; without it
    problems are shown by key path alone."""
    return _Reader(path, environ, need_secrets, text).config(data)


class _Reader:
    """Walks the TOML data, converting values and collecting problems."""

    def __init__(
        self,
        path: Path,
        env: Mapping[str, str],
        need_secrets: bool = True,
        text: str | None = None,
        lenient: bool = False,
    ) -> None:
        self.path = path
        self.env = env
        self.need_secrets = need_secrets
        self.text = text
        self.lenient = lenient  # a Config of what is valid, whatever the problems (readable_config)
        # (key path, message): named and placed only when shown (``shown``),
        # so a valid config never pays for the scan of its lines.
        self.problems: list[tuple[str, str]] = []
        self.warnings: list[tuple[str, str]] = []
        self.unreadable = 0  # secrets not readable here, among the problems

    def unavailable(self, key: str, message: str) -> Secret | None:
        """A secret that cannot be read here: a problem, or a warning and a placeholder."""
        if self.need_secrets:
            self.problem(key, message)
            self.unreadable += 1
            return None
        self.warnings.append((key, f"{message} (needed by digest and run, not here)"))
        return Secret("")

    # -- helpers -------------------------------------------------------------

    def problem(self, key: str, message: str) -> None:
        self.problems.append((key, message))

    def shown(self, found: list[tuple[str, str]], data: dict[str, Any]) -> list[str]:
        """``config.toml:42: feeds[37] ("NHK 国際").handel: unknown key``: the
        file and line for an editor to jump to, then the key path as before
        (what logs are grepped for), with the feed's or webhook's own name:
        in a file of a hundred feeds, an index alone sends the operator
        counting tables."""
        places = Places(self.text) if self.text is not None and found else None
        placed = [(places.line(key) if places is not None else None, key, message) for key, message in found]
        # In the file's order, as the operator reads and fixes it; a problem
        # with no line of its own keeps its place after them.
        placed.sort(key=lambda p: p[0] if p[0] is not None else 1 << 62)
        return [
            f"{f'{self.path}:{line}: ' if line is not None else ''}{_named(key, data)}: {message}"
            for line, key, message in placed
        ]

    def table(self, data: Any, key: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(data, dict):
            self.problem(key, f"must be a table, not {_shown(data)}")
            return {}
        for unknown in sorted(set(data) - allowed):
            # A misspelling is the usual cause: name the key that was meant.
            self.problem(
                f"{key}.{unknown}" if key else unknown, f"unknown key{_did_you_mean(unknown, sorted(allowed))}"
            )
        return data

    def get(self, data: dict[str, Any], key: str, path: str, convert: Callable[[Any], T], default: T) -> T:
        if key not in data:
            return default
        try:
            return convert(data[key])
        except (ValueError, TypeError) as exc:
            self.problem(path, str(exc))
            return default

    def required(self, data: dict[str, Any], key: str, path: str, convert: Callable[[Any], T]) -> T | None:
        if key not in data:
            self.problem(path, "missing (required)")
            return None
        try:
            return convert(data[key])
        except (ValueError, TypeError) as exc:
            self.problem(path, str(exc))
            return None

    # -- sections ------------------------------------------------------------

    def config(self, data: dict[str, Any]) -> Config:
        top = self.table(
            data,
            "",
            set("timezone state_dir state metrics schedule poll digest feeds topics labels webhooks".split()),
        )
        tz = self.get(top, "timezone", "timezone", _zone, ZoneInfo("UTC"))
        state_raw = self.get(top, "state_dir", "state_dir", _nonempty_str, "state")
        state_dir = (
            Path(self.env["STATE_DIRECTORY"].split(":")[0])
            if self.env.get("STATE_DIRECTORY")
            else (self.path.parent / Path(state_raw).expanduser())
        )
        schedule = self.schedule(top.get("schedule", {}))
        poll = self.poll(top.get("poll", {}))
        digest = self.digest(top.get("digest", {}))
        feeds = self.feeds(top.get("feeds", []))
        topics = self.topics(top.get("topics", []))
        labels = self.labels(top.get("labels", []))
        webhooks = self.webhooks(top.get("webhooks", []))
        state = self.state(top.get("state", {}))
        metrics = self.metrics(top.get("metrics", {}))
        if self.problems and not self.lenient:
            raise ConfigError(self.shown(self.problems, data), str(self.path), self.unreadable)
        return Config(
            path=self.path,
            timezone=tz,
            state_dir=state_dir,
            schedule=schedule,
            poll=poll,
            digest=digest,
            feeds=feeds,
            topics=topics,
            labels=labels,
            webhooks=webhooks,
            warnings=tuple(self.shown(self.warnings, data)),
            state=state,
            metrics=metrics,
        )

    def state(self, data: Any) -> StateSettings:
        t = self.table(data, "state", {"url", "url_file"})
        url = self.secret_value(t, "state", "url", "url_file", required=False)
        if url is not None and url.reveal():
            try:
                _database_url(url.reveal())
            except ValueError as exc:
                self.problem("state.url" if "url" in t else "state.url_file", str(exc))
                return StateSettings()
        return StateSettings(url=url)

    def metrics(self, data: Any) -> MetricsSettings:
        t = self.table(data, "metrics", _keys(MetricsSettings))
        return MetricsSettings(listen=self.get(t, "listen", "metrics.listen", _listen, None))

    def schedule(self, data: Any) -> Schedule:
        t = self.table(data, "schedule", _keys(Schedule))
        d = Schedule()
        poll_every = self.get(t, "poll_every", "schedule.poll_every", _interval, d.poll_every)
        digest_every = self.get(t, "digest_every", "schedule.digest_every", _interval, None)
        # digest_every alone replaces the default 07:00; "digest_at = []" is allowed with it.
        default_at = () if digest_every is not None else d.digest_at
        digest_at = self.get(t, "digest_at", "schedule.digest_at", _times_or_none(digest_every is not None), default_at)
        return Schedule(poll_every=poll_every, digest_at=digest_at, digest_every=digest_every)

    def poll(self, data: Any) -> PollSettings:
        t = self.table(data, "poll", _keys(PollSettings))
        d = PollSettings()
        max_age = self.get(t, "max_age", "poll.max_age", _window("none"), d.max_age)
        return PollSettings(
            first_poll=self.get(t, "first_poll", "poll.first_poll", _window("all"), d.first_poll),
            max_age=max_age,
            timeout=self.get(t, "timeout", "poll.timeout", _positive_duration, d.timeout),
            concurrency=self.get(t, "concurrency", "poll.concurrency", _int_between(1, 64), d.concurrency),
            user_agent=self.get(t, "user_agent", "poll.user_agent", _user_agent, d.user_agent),
            allow_private_addresses=self.get(
                t, "allow_private_addresses", "poll.allow_private_addresses", _bool, d.allow_private_addresses
            ),
            host_spacing=self.get(t, "host_spacing", "poll.host_spacing", _duration, d.host_spacing),
            max_pages_per_poll=self.get(
                t, "max_pages_per_poll", "poll.max_pages_per_poll", _int_between(0, 10_000), d.max_pages_per_poll
            ),
            retention=self.retention(t, max_age),
        )

    def retention(self, t: dict[str, Any], max_age: timedelta | None) -> timedelta | None:
        """Above max_age, or pruned entries could come back: the max-age guard
        is what keeps a forgotten entry out."""
        if "retention" not in t:
            return None if max_age is None else max(PollSettings().retention or max_age, 4 * max_age)
        value = self.get(t, "retention", "poll.retention", _window("none"), None)
        if value is None:
            return None  # "none": never forget
        if max_age is None:
            self.problem("poll.retention", 'must be "none" when poll.max_age is "none" (forgotten entries come back)')
        elif value <= max_age:
            self.problem("poll.retention", f"must be longer than poll.max_age ({t.get('max_age', '7d')})")
        return value

    def digest(self, data: Any) -> DigestSettings:
        t = self.table(data, "digest", _keys(DigestSettings))
        d = DigestSettings()
        return DigestSettings(
            default_topic=self.get(t, "default_topic", "digest.default_topic", _tag, d.default_topic),
            lead=self.get(t, "lead", "digest.lead", _str_list, d.lead),
            headline_max=self.get(t, "headline_max", "digest.headline_max", _int_between(10, 1000), d.headline_max),
            max_items_per_feed=self.get(
                t, "max_items_per_feed", "digest.max_items_per_feed", _int_between(1, 10_000), d.max_items_per_feed
            ),
            labels=self.get(t, "labels", "digest.labels", _one_of("auto", "date"), d.labels),
            health=self.get(t, "health", "digest.health", _one_of("message", "off"), d.health),
            health_after=self.get(t, "health_after", "digest.health_after", _positive_duration, d.health_after),
            delivery_timeout=self.get(
                t, "delivery_timeout", "digest.delivery_timeout", _duration_between(5, 3600), d.delivery_timeout
            ),
        )

    def feeds(self, data: Any) -> tuple[Feed, ...]:
        if not isinstance(data, list):
            self.problem("feeds", f"must be an array of tables ([[feeds]]), not {_shown(data)}")
            return ()
        out: list[Feed] = []
        names: dict[str, int] = {}
        urls: dict[str, int] = {}
        allowed = _keys(Feed)
        for i, raw in enumerate(data):
            p = f"feeds[{i}]"
            t = self.table(raw, p, allowed)
            name = self.required(t, "name", f"{p}.name", _nonempty_str)
            url = self.required(t, "url", f"{p}.url", _http_url)
            feed = Feed(
                name=name or "",
                url=url or "",
                handle=self.get(t, "handle", f"{p}.handle", _handle, None),
                headline=self.get(t, "headline", f"{p}.headline", _headline, DEFAULT_HEADLINE),
                body=self.get(t, "body", f"{p}.body", _body, "auto"),
                poll_every=self.get(t, "poll_every", f"{p}.poll_every", _interval, None),
                enabled=self.get(t, "enabled", f"{p}.enabled", _bool, True),
                include=self.get(t, "include", f"{p}.include", _match, ()),
                exclude=self.get(t, "exclude", f"{p}.exclude", _str_list, ()),
                max_paragraphs=self.get(t, "max_paragraphs", f"{p}.max_paragraphs", _int_between(1, 1000), None),
                max_body_chars=self.get(t, "max_body_chars", f"{p}.max_body_chars", _int_between(20, 100_000), None),
            )
            if name is not None:
                if name in names:
                    self.problem(f"{p}.name", f"{name!r} is already the name of feeds[{names[name]}]")
                names.setdefault(name, i)
            if url is not None:
                if url in urls:
                    self.problem(f"{p}.url", f"the same URL as feeds[{urls[url]}]")
                urls.setdefault(url, i)
            out.append(feed)
        return tuple(out)

    def topics(self, data: Any) -> tuple[Topic, ...]:
        if not isinstance(data, list):
            self.problem("topics", f"must be an array of tables ([[topics]]), not {_shown(data)}")
            return ()
        out: list[Topic] = []
        for i, raw in enumerate(data):
            p = f"topics[{i}]"
            t = self.table(raw, p, _keys(Topic))
            tag = self.required(t, "tag", f"{p}.tag", _tag)
            match = self.required(t, "match", f"{p}.match", _match)
            out.append(
                Topic(
                    tag=tag or "",
                    match=match or (),
                    exclude=self.get(t, "exclude", f"{p}.exclude", _str_list, ()),
                    label=self.get(t, "label", f"{p}.label", _label, None),
                )
            )
        return tuple(out)

    def labels(self, data: Any) -> tuple[LabelRule, ...]:
        if not isinstance(data, list):
            self.problem("labels", f"must be an array of tables ([[labels]]), not {_shown(data)}")
            return ()
        out: list[LabelRule] = []
        for i, raw in enumerate(data):
            p = f"labels[{i}]"
            t = self.table(raw, p, _keys(LabelRule))
            text = self.required(t, "text", f"{p}.text", _label)
            match = self.required(t, "match", f"{p}.match", _match)
            out.append(LabelRule(text=text or "", match=match or ()))
        return tuple(out)

    def webhooks(self, data: Any) -> tuple[Webhook, ...]:
        if not isinstance(data, list):
            self.problem("webhooks", f"must be an array of tables ([[webhooks]]), not {_shown(data)}")
            return ()
        if not data:
            return ()  # and the kinds' modules are not imported (`feedbot poll` has no use for them)
        from bot.kinds import KINDS  # here: the kinds' modules use this one

        out: list[Webhook] = []
        positions: list[int] = []
        for i, raw in enumerate(data):
            p = f"webhooks[{i}]"
            kind_raw = raw.get("kind") if isinstance(raw, dict) else None
            spec = KINDS.get(kind_raw) if isinstance(kind_raw, str) else None
            allowed = {"kind", "name"}
            if spec is not None:
                allowed |= {"url", "url_file"} if spec.url is not None else set()
                allowed |= {"secret", "secret_file"}
                allowed |= {spec.secret, f"{spec.secret}_file"} if spec.secret else set()
                allowed |= set(spec.options)
            else:
                allowed |= set(raw) if isinstance(raw, dict) else set()  # the kind is the problem
            t = self.table(raw, p, allowed)
            kind = self.required(t, "kind", f"{p}.kind", _kind)
            if kind is None or spec is None:
                continue
            webhook = self.webhook(t, p, i, kind)
            if webhook is not None:
                out.append(webhook)
                positions.append(i)  # its index in the file: an invalid one before it is not in ``out``
        seen: dict[str, int] = {}
        for i, w in zip(positions, out, strict=True):
            for key, what in ((w.fingerprint(), "the same kind and destination as"), (w.ident, "the same name as")):
                if key in seen:
                    self.problem(f"webhooks[{i}]", f"{what} webhooks[{seen[key]}]")
                seen.setdefault(key, i)
        return tuple(out)

    def webhook(self, t: dict[str, Any], p: str, i: int, kind: str) -> Webhook | None:
        """One ``[[webhooks]]`` table, as its kind defines it (bot/kinds/)."""
        from bot.kinds import KINDS
        from bot.kinds.base import REQUIRED, a_token

        spec = KINDS[kind]
        ok = True
        if spec.url is None:
            url: Secret | None = Secret("")
        elif spec.url is REQUIRED:
            url = self.secret_value(t, p, "url", "url_file", required=True)
        else:
            url = self.secret_value(t, p, "url", "url_file", required=False) or Secret(spec.url)
        if url is None:
            ok = False
        elif url.reveal():  # "" is the placeholder of a URL not readable here
            try:
                _http_url(url.reveal(), echo=not spec.url_is_secret)
            except ValueError as exc:
                self.problem(f"{p}.url" if "url" in t else f"{p}.url_file", str(exc))
                ok = False
        secret = self.secret_value(t, p, "secret", "secret_file", required=False)
        if secret is not None and not spec.signed:
            self.problem(f"{p}.secret", f"{kind} webhooks are not signed; a secret is for json and text webhooks")
        token = None
        if spec.secret:
            token = self.secret_value(t, p, spec.secret, f"{spec.secret}_file", required=spec.secret_required)
            if token is None and spec.secret_required:
                ok = False
        options: dict[str, Any] = {}
        for key, option in spec.options.items():
            if option.default is REQUIRED:
                value = self.required(t, key, f"{p}.{key}", option.convert)
                if value is None:
                    ok = False
            else:
                value = self.get(t, key, f"{p}.{key}", option.convert, option.default)
            options[key] = value
        if ok:
            wrong = spec.check(options, token, url.reveal() if url is not None else "")
            if wrong is None and spec.secret == "token" and token is not None and token.reveal():
                try:
                    a_token(token.reveal())
                except ValueError as exc:
                    wrong = (spec.secret or "token", str(exc))
            if wrong is not None:
                self.problem(f"{p}.{wrong[0]}", wrong[1])
                ok = False
            elif spec.url is None:
                url = Secret(spec.address(options))  # what logs and `status` show: not a secret
        if not ok or url is None:
            return None
        name = self.get(t, "name", f"{p}.name", _nonempty_str, f"{kind}#{i}")
        ident = f"name:{name}" if "name" in t else f"{kind}#{i}"
        return Webhook(kind=kind, url=url, name=name, ident=ident, secret=secret, token=token, options=options)

    def secret_value(self, t: dict[str, Any], p: str, key: str, file_key: str, required: bool) -> Secret | None:
        """``key`` (with ``${VAR}`` from the environment) or the content of ``file_key``."""
        if key in t and file_key in t:
            self.problem(f"{p}.{key}", f"give {key} or {file_key}, not both")
            return None
        if key not in t and file_key not in t:
            if required:
                self.problem(f"{p}.{key}", f"missing (required): give {key} or {file_key}")
            return None
        if key in t:
            raw = t[key]
            if not isinstance(raw, str) or not raw.strip():
                self.problem(f"{p}.{key}", "must be a non-empty string")
                return None
            missing = [m.group(1) for m in _ENV_REF.finditer(raw) if m.group(1) not in self.env]
            if missing:
                return self.unavailable(f"{p}.{key}", f"environment variable {missing[0]} is not set")
            value = _ENV_REF.sub(lambda m: self.env[m.group(1)], raw).strip()
        else:
            file_raw = t[file_key]
            if not isinstance(file_raw, str) or not file_raw:
                self.problem(f"{p}.{file_key}", f"must be a path, not {_shown(file_raw)}")
                return None
            unset = [m.group(1) for m in _ENV_REF.finditer(file_raw) if m.group(1) not in self.env]
            if unset:
                return self.unavailable(f"{p}.{file_key}", f"environment variable {unset[0]} is not set")
            file_path = self.path.parent / Path(_ENV_REF.sub(lambda m: self.env[m.group(1)], file_raw))
            try:
                value = file_path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                return self.unavailable(f"{p}.{file_key}", f"cannot read {file_path} ({exc.strerror})")
            except (ValueError, UnicodeDecodeError) as exc:  # a NUL in the path, a binary file
                self.problem(f"{p}.{file_key}", f"cannot read {file_path!r} ({exc})")
                return None
        if not value:
            self.problem(f"{p}.{key}", "is empty")
            return None
        return Secret(value)


_ENTRY = re.compile(r"(feeds|webhooks)\[(\d+)\]")


def _named(key: str, data: dict[str, Any]) -> str:
    """``feeds[37].handel`` → ``feeds[37] ("NHK 国際").handel``: the entry's
    own name when it has one (a webhook's is optional)."""
    m = _ENTRY.match(key)
    if m is None:
        return key
    tables = data.get(m.group(1))
    i = int(m.group(2))
    entry = tables[i] if isinstance(tables, list) and i < len(tables) else None
    name = entry.get("name") if isinstance(entry, dict) else None
    if not isinstance(name, str) or not name.strip():
        return key
    name = name.strip()
    if len(name) > 40:
        name = name[:39] + "…"
    # Quoted, with what a terminal would not show as itself escaped (a
    # newline, U+2028 would break the problem's line).
    quoted = "".join(
        "\\" + c if c in '"\\' else c if c.isprintable() else c.encode("unicode_escape").decode() for c in name
    )
    return f'{m.group(0)} ("{quoted}"){key[m.end() :]}'


def _shown(v: Any) -> str:
    """A value as a problem echoes it, so the operator sees what was read:
    strings quoted, TOML's true/false, long values cut."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        return "a table"
    if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
        return "an array of tables"
    s = repr(v)
    return s if len(s) <= 80 else s[:79] + "…"


# -- converters: raise ValueError/TypeError with a message for the user --------
# Each message shows the value it refuses (``_shown``): "must be an integer"
# alone leaves the operator to find which of a hundred lines said what.


def _nonempty_str(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError(f"must be a string, not {_shown(v)}")
    if not v.strip():
        raise ValueError("must not be empty" if not v else f"must not be only spaces, not {_shown(v)}")
    if "\0" in v:
        raise ValueError(f"{_shown(v)} must not contain a NUL character")
    return v.strip()


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise TypeError(f"must be true or false, not {_shown(v)}")
    return v


def _int_between(lo: int, hi: int) -> Callable[[Any], int]:
    def convert(v: Any) -> int:
        if not isinstance(v, int) or isinstance(v, bool):
            raise TypeError(f"must be an integer, not {_shown(v)}")
        if not lo <= v <= hi:
            raise ValueError(f"must be between {lo} and {hi}, not {v}")
        return v

    return convert


def _zone(v: Any) -> ZoneInfo:
    name = _nonempty_str(v)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f'{name!r} is not an IANA time zone name such as "Asia/Tokyo"') from None


def _duration(v: Any) -> timedelta:
    if not isinstance(v, str):
        raise TypeError(f'must be a duration string such as "15m", not {_shown(v)}')
    return parse_duration(v)


def _positive_duration(v: Any) -> timedelta:
    d = _duration(v)
    if d <= timedelta(0):
        raise ValueError(f"must be longer than zero, not {_shown(v)}")
    return d


def _duration_between(low: int, high: int) -> Callable[[Any], timedelta]:
    """A duration of ``low`` to ``high`` seconds."""

    def convert(v: Any) -> timedelta:
        d = _duration(v)
        if not timedelta(seconds=low) <= d <= timedelta(seconds=high):
            raise ValueError(f"must be between {low}s and {high // 60}m, not {_shown(v)}")
        return d

    return convert


def _interval(v: Any) -> timedelta:
    """Intervals of seconds are for tests and local feeds; news sites deserve minutes."""
    d = _duration(v)
    if d < timedelta(seconds=1):
        raise ValueError(f"must be at least 1s, not {_shown(v)}")
    return d


def _window(unlimited: str) -> Callable[[Any], timedelta | None]:
    """A duration, or the word meaning "no limit" (None), or "none" (zero)."""

    def convert(v: Any) -> timedelta | None:
        if v == unlimited:
            return None
        if v == "none":
            return timedelta(0)
        try:
            return _duration(v)
        except (TypeError, ValueError):
            raise ValueError(
                f"{_shown(v)} is not "
                + f'"{unlimited}"'
                + (', "none"' if unlimited != "none" else "")
                + ' or a duration such as "1d"'
            ) from None

    return convert


def _times_or_none(empty_ok: bool) -> Callable[[Any], tuple[time, ...]]:
    def convert(v: Any) -> tuple[time, ...]:
        if empty_ok and v == []:
            return ()
        return _times(v)

    return convert


def _times(v: Any) -> tuple[time, ...]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not v:
        raise TypeError(f'must be a list of times of day such as ["07:00"], not {_shown(v)}')
    out: list[time] = []
    bad: list[str] = []
    for item in v:
        m = re.fullmatch(r"(\d{1,2}):(\d{2})", item) if isinstance(item, str) else None
        if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
            bad.append(repr(item))
            continue
        out.append(time(int(m.group(1)), int(m.group(2))))
    if bad:
        raise ValueError(f"{', '.join(bad)} {'is not a time' if len(bad) == 1 else 'are not times'} of day HH:MM")
    return tuple(sorted(set(out)))


def _str_list(v: Any) -> tuple[str, ...]:
    given = v
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
        raise TypeError(f"must be a list of non-empty strings, not {_shown(given)}")
    return tuple(x.strip() for x in v)


def _match(v: Any) -> tuple[tuple[str, ...], ...]:
    """``["a", ["b", "c"]]``: all elements must hold; a list is alternatives."""
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not v:
        raise TypeError(f"must be a non-empty list of strings or lists of alternatives, not {_shown(v)}")
    out: list[tuple[str, ...]] = []
    for element in v:
        alternatives = [element] if isinstance(element, str) else element
        if (
            not isinstance(alternatives, list)
            or not alternatives
            or not all(isinstance(a, str) and a.strip() for a in alternatives)
        ):
            raise TypeError(
                f"each element must be a non-empty string or a non-empty list of strings, not {_shown(element)}"
            )
        out.append(tuple(a.strip() for a in alternatives))
    return tuple(out)


def _tag(v: Any) -> str:
    s = _nonempty_str(v)
    if any(c.isspace() for c in s) or any(c in s for c in "#()"):
        raise ValueError(f"{s!r} must not contain spaces, '#' or parentheses")
    return s


def _label(v: Any) -> str:
    s = _nonempty_str(v)
    if any(c in s for c in "()\n"):
        raise ValueError(f"{s!r} must not contain parentheses or newlines")
    return s


def _handle(v: Any) -> str:
    s = _nonempty_str(v).removeprefix("@")
    if any(c.isspace() for c in s):
        raise ValueError(f"{s!r} must not contain spaces")
    return s


def _user_agent(v: Any) -> str:
    s = _nonempty_str(v)
    try:
        s.format(version="0")
    except (KeyError, IndexError, ValueError):
        raise ValueError(
            f"{s!r} may contain only the placeholder {{version}}; write {{{{ and }}}} for literal braces"
        ) from None
    return s


def _headline(v: Any) -> str:
    s = _nonempty_str(v)
    try:
        fields = {f for _, f, _spec, _conv in string.Formatter().parse(s) if f is not None}
    except ValueError as exc:
        raise ValueError(f"{s!r} is not a valid template ({exc}); write {{{{ and }}}} for literal braces") from None
    unknown = fields - HEADLINE_FIELDS
    if unknown:
        names = ", ".join("{" + u + "}" for u in sorted(unknown))
        raise ValueError(
            f"{s!r} has an unknown placeholder {names}; use {{title}}, {{link}}, {{feed}} or {{handle}}"
        ) from None
    if "title" not in fields:
        raise ValueError(f"{s!r} must contain {{title}}")
    try:  # conversions and format specs ("{title!x}", "{title:d}") fail only when used
        s.format_map(dict.fromkeys(HEADLINE_FIELDS, "x"))
    except (ValueError, KeyError, IndexError, AttributeError) as exc:
        raise ValueError(f"{s!r} is not a valid template ({exc}); use plain {{title}}, {{link}} and so on") from None
    return s


def _body(v: Any) -> str:
    s = _nonempty_str(v)
    if s in BODY_MODES:
        return s
    import soupsieve  # CSS selectors are checked here, not at first use

    try:
        soupsieve.compile(s)
    except Exception as exc:  # SelectorSyntaxError, NotImplementedError ("p::before"), ...
        first = str(exc).splitlines()[0]
        raise ValueError(f"{s!r} is neither auto, feed, none nor a valid CSS selector ({first})") from None
    return s


def _did_you_mean(v: Any, choices: Collection[str]) -> str:
    """``; did you mean "discord"?`` when ``v`` is a near miss of one of ``choices``."""
    close = difflib.get_close_matches(v, list(choices), n=1) if isinstance(v, str) else []
    return f'; did you mean "{close[0]}"?' if close else ""


def _one_of(*choices: str) -> Callable[[Any], str]:
    def convert(v: Any) -> str:
        if v not in choices:
            raise ValueError(
                f"{_shown(v)} is not one of {', '.join(repr(c) for c in choices)}{_did_you_mean(v, choices)}"
            )
        return str(v)

    return convert


def _kind(v: Any) -> str:
    s = _nonempty_str(v)
    from bot.kinds import KINDS

    if s not in KINDS:
        raise ValueError(f"{s!r} is not one of {', '.join(KINDS)}{_did_you_mean(s, KINDS)}")
    return s


def _http_url(v: Any, echo: bool = True) -> str:
    try:
        s = _nonempty_str(v)
    except (TypeError, ValueError):
        if echo:
            raise
        # _nonempty_str shows the value, and this one is a credential.
        raise ValueError("must be a non-empty string without NUL characters") from None
    shown = f": {s!r}" if echo else ""
    try:
        parts = urlsplit(s)
    except ValueError:
        raise ValueError(f"not an http(s) URL{shown}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL{shown}")
    if not s.isprintable() or " " in s:  # every whitespace but the space is unprintable: one C pass
        # A URL never holds them; a two-line url_file or a pasted tab would
        # otherwise pass here and fail at every delivery.
        raise ValueError(f"contains whitespace or control characters{shown}")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError:
        raise ValueError(f"has an invalid port (0-65535){shown}") from None
    return s


LIBPQ_READS_OTHERWISE = (
    "is read one way by libpq (PostgreSQL's client library) and another by feedbot: an '@', '/', '?' or '#'"
    " in the user name or password must be written percent-encoded (percent-encode it: @ as %40, / as %2F,"
    " ? as %3F, # as %23), or the password left out of the URL and given in a file (~/.pgpass, PGPASSFILE;"
    " the whole URL can be a root-only url_file or a systemd credential)"
)


def database_url_problem(url: str) -> str | None:
    """Why libpq would read ``url``'s user part otherwise than feedbot, or None.

    libpq ends the user part at the first "@" (and looks no further than
    the first "/"); a URL reader at the last "@" of the authority, which
    ends at the first "/", "?" or "#".  With an unencoded "@" in the
    password, libpq took the rest of the password for the host name, then
    printed it and asked DNS about it (issue 24).  The message quotes
    nothing of the URL."""
    rest = url.split("://", 1)[-1]
    stop = re.search(r"[@/]", rest)
    libpq = rest[: stop.start()] if stop is not None and stop.group() == "@" else None
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    ours = authority.rpartition("@")[0] if "@" in authority else None
    # A "/" in the password puts the rest of it, and the host, in the path.
    path = rest[len(authority) :].split("?", 1)[0]
    if libpq != ours or "@" in path:
        return LIBPQ_READS_OTHERWISE
    return None


def _database_url(v: str) -> str:
    parts = urlsplit(v)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError("must be a postgresql:// URL (leave it out for SQLite in state_dir)")
    problem = database_url_problem(v)
    if problem is not None:
        raise ValueError(problem)
    from psycopg.conninfo import conninfo_to_dict  # libpq's own reading of it: here, not at every start-up

    try:
        conninfo_to_dict(v)
    except Exception as exc:  # libpq echoes the part it cannot read: the password out
        said = " ".join(str(exc).split())
        for secret in password_forms(v):
            said = said.replace(secret, "<password>")
        raise ValueError(f"is not a URL libpq can read ({said[:200]})") from None
    return v


def password_forms(url: str) -> list[str]:
    """The password of a database URL as it may appear in a message: raw
    and decoded, from the user part or a ``password=`` parameter."""
    found: set[str] = set()
    try:
        parts = urlsplit(url)
        if parts.password:
            found.add(parts.password)
        found.update(v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k == "password" and v)
        raw = parts.netloc.rpartition("@")[0].partition(":")[2]
        if raw:
            found.add(raw)
    except ValueError:
        pass
    found |= {unquote(x) for x in found}
    return sorted((x for x in found if len(x) >= 3), key=len, reverse=True)


def database_shown(url: str) -> str:
    """A database URL fit to show: the password out."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "postgresql://<unreadable URL>"
    user = f"{parts.username}@" if parts.username else ""
    query = "?…" if parts.query else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}{query}"


def _listen(v: Any) -> tuple[str, int]:
    s = _nonempty_str(v)
    host, sep, port = s.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f'{s!r} is not "host:port" (e.g. "127.0.0.1:9464")')
    return host, int(port)


def feed_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a feed's ``url`` (the check ``check`` makes), or None."""
    try:
        _http_url(url, echo=False)
    except (ValueError, TypeError) as exc:
        return str(exc)
    return None


def feed_table_problems(table: Mapping[str, Any]) -> list[str]:
    """What ``check`` would say of one ``[[feeds]]`` table on its own, each
    problem keyed by the table's key (``body: ...``)."""
    reader = _Reader(Path("."), {}, need_secrets=False)
    reader.feeds([dict(table)])
    return [f"{key.removeprefix('feeds[0].')}: {message}" for key, message in reader.problems]


def readable_config(path: Path, environ: Mapping[str, str] | None = None) -> tuple[Config, ConfigError | None]:
    """The config for commands that only read the state (``status``,
    ``list``, ``outbox``), and the file's problems if it is invalid.

    An invalid edit is when an operator most needs them, and a running
    service then keeps the config it last accepted: so they go on with
    what the file still says validly (the valid feeds and webhooks; where
    the state is, or its default if even that is unreadable), and say why.
    """
    env = os.environ if environ is None else environ
    try:
        return load_config(path, env, need_secrets=False), None
    except ConfigError as exc:
        if not path.is_file() or any(re.search(r"(^|: )state(\.|_dir)", p) for p in exc.problems):
            raise  # where the state is cannot be known: nothing to read
        problem = exc
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        if "state" in text:
            raise problem from None  # a [state] or state_dir it cannot read: the default would mislead
        data = {}  # not even TOML: the default state folder beside the file, or $STATE_DIRECTORY
    return _Reader(path, env, need_secrets=False, lenient=True).config(data), problem
