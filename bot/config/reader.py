"""Reading ``config.toml`` into frozen objects: the entry points, and the
``[[webhooks]]`` tables, checked by their kinds (``bot/kinds/``).

This module reads the config file and, for ``url_file`` and ``${VAR}``, the
files and environment it names; it does no other I/O.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.config.digests import read_digests
from bot.config.feeds import read_feeds, read_labels, read_topics
from bot.config.reading import Reader
from bot.config.record import Config
from bot.config.schedule import read_digest, read_poll, read_schedule
from bot.config.state import read_metrics, read_state
from bot.config.values import _did_you_mean, _http_url, _nonempty_str, _shown, _zone
from bot.config.webhooks import Webhook
from bot.configtext import toml_problem
from bot.errors import ConfigError
from bot.secrets import Secret


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
    return read_config(Reader(path, environ, need_secrets, text), data)


def read_config(r: Reader, data: dict[str, Any]) -> Config:
    top = r.table(
        data,
        "",
        set("timezone state_dir state metrics schedule poll digest feeds topics labels webhooks digests".split()),
    )
    tz = r.get(top, "timezone", "timezone", _zone, ZoneInfo("UTC"))
    state_raw = r.get(top, "state_dir", "state_dir", _nonempty_str, "state")
    state_dir = (
        Path(r.env["STATE_DIRECTORY"].split(":")[0])
        if r.env.get("STATE_DIRECTORY")
        else (r.path.parent / Path(state_raw).expanduser())
    )
    schedule = read_schedule(r, top.get("schedule", {}))
    poll = read_poll(r, top.get("poll", {}))
    digest = read_digest(r, top.get("digest", {}))
    feeds = read_feeds(r, top.get("feeds", []))
    topics = read_topics(r, top.get("topics", []))
    labels = read_labels(r, top.get("labels", []))
    webhooks = read_webhooks(r, top.get("webhooks", []))
    state = read_state(r, top.get("state", {}))
    metrics = read_metrics(r, top.get("metrics", {}))
    digests = read_digests(
        r,
        top.get("digests", []),
        feeds=feeds,
        webhooks=webhooks,
        topics=topics,
        labels=labels,
        schedule=schedule,
        digest=digest,
        raw_webhooks=top.get("webhooks", []) if isinstance(top.get("webhooks"), list) else (),
    )
    if r.problems and not r.lenient:
        raise ConfigError(r.shown(r.problems, data), str(r.path), r.unreadable)
    return Config(
        path=r.path,
        timezone=tz,
        state_dir=state_dir,
        schedule=schedule,
        poll=poll,
        digest=digest,
        feeds=feeds,
        topics=topics,
        labels=labels,
        webhooks=webhooks,
        warnings=tuple(r.shown(r.warnings, data)),
        state=state,
        metrics=metrics,
        digests=digests,
    )


def read_webhooks(r: Reader, data: Any) -> tuple[Webhook, ...]:
    if not isinstance(data, list):
        r.problem("webhooks", f"must be an array of tables ([[webhooks]]), not {_shown(data)}")
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
        t = r.table(raw, p, allowed)
        kind = r.required(t, "kind", f"{p}.kind", _kind)
        if kind is None or spec is None:
            continue
        webhook = _read_webhook(r, t, p, i, kind)
        if webhook is not None:
            out.append(webhook)
            positions.append(i)  # its index in the file: an invalid one before it is not in ``out``
    seen: dict[str, int] = {}
    for i, w in zip(positions, out, strict=True):
        for key, what in ((w.fingerprint(), "the same kind and destination as"), (w.ident, "the same name as")):
            if key in seen:
                r.problem(f"webhooks[{i}]", f"{what} webhooks[{seen[key]}]")
            seen.setdefault(key, i)
    return tuple(out)


def _read_webhook(r: Reader, t: dict[str, Any], p: str, i: int, kind: str) -> Webhook | None:
    """One ``[[webhooks]]`` table, as its kind defines it (bot/kinds/)."""
    from bot.kinds import KINDS
    from bot.kinds.base import REQUIRED, a_token

    spec = KINDS[kind]
    ok = True
    if spec.url is None:
        url: Secret | None = Secret("")
    elif spec.url is REQUIRED:
        url = r.secret_value(t, p, "url", "url_file", required=True)
    else:
        url = r.secret_value(t, p, "url", "url_file", required=False) or Secret(spec.url)
    if url is None:
        ok = False
    elif url.reveal():  # "" is the placeholder of a URL not readable here
        try:
            _http_url(url.reveal(), echo=not spec.url_is_secret)
        except ValueError as exc:
            r.problem(f"{p}.url" if "url" in t else f"{p}.url_file", str(exc))
            ok = False
    secret = r.secret_value(t, p, "secret", "secret_file", required=False)
    if secret is not None and not spec.signed:
        r.problem(f"{p}.secret", f"{kind} webhooks are not signed; a secret is for json and text webhooks")
    token = None
    if spec.secret:
        token = r.secret_value(t, p, spec.secret, f"{spec.secret}_file", required=spec.secret_required)
        if token is None and spec.secret_required:
            ok = False
    options: dict[str, Any] = {}
    for key, option in spec.options.items():
        if option.default is REQUIRED:
            value = r.required(t, key, f"{p}.{key}", option.convert)
            if value is None:
                ok = False
        else:
            value = r.get(t, key, f"{p}.{key}", option.convert, option.default)
        options[key] = value
    if ok:
        wrong = spec.check(options, token, url.reveal() if url is not None else "")
        if wrong is None and spec.secret == "token" and token is not None and token.reveal():
            try:
                a_token(token.reveal())
            except ValueError as exc:
                wrong = (spec.secret or "token", str(exc))
        if wrong is not None:
            r.problem(f"{p}.{wrong[0]}", wrong[1])
            ok = False
        elif spec.url is None:
            url = Secret(spec.address(options))  # what logs and `status` show: not a secret
    if not ok or url is None:
        return None
    name = r.get(t, "name", f"{p}.name", _nonempty_str, f"{kind}#{i}")
    ident = f"name:{name}" if "name" in t else f"{kind}#{i}"
    return Webhook(kind=kind, url=url, name=name, ident=ident, secret=secret, token=token, options=options)


def _kind(v: Any) -> str:
    s = _nonempty_str(v)
    from bot.kinds import KINDS

    if s not in KINDS:
        raise ValueError(f"{s!r} is not one of {', '.join(KINDS)}{_did_you_mean(s, KINDS)}")
    return s


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
    return read_config(Reader(path, env, need_secrets=False, lenient=True), data), problem
