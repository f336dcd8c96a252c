"""The ``feedbot`` command: thin wrappers over the library.

Exit codes: 0 ok, 1 operational failure (a feed or a delivery failed),
2 usage or config error.  Expected failures print one readable sentence on
stderr, never a traceback.  Modules are imported by the command that needs
them, so ``feedbot --help`` and ``feedbot check`` start fast.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import sqlite3
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot import __version__
from bot.errors import ConfigError, FeedbotError, UsageError

if TYPE_CHECKING:
    from bot.config import Config, DigestSpec

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="feedbot",
        description="Watch RSS/Atom feeds and post a daily digest to chat webhooks.",
    )
    p.add_argument("--config", metavar="PATH", help="config file (default: $FEEDBOT_CONFIG, else ./config.toml)")
    p.add_argument(
        "-v", "--verbose", action="store_true", help="log every step on stderr: each request, page and delivery"
    )
    p.add_argument("--version", action="version", version=f"feedbot {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("run", help="the service: scheduled polls and daily digests")
    poll = sub.add_parser("poll", help="poll every enabled feed (or one) once")
    poll.add_argument("--feed", metavar="NAME", help="poll only the feed with this name")
    digest = sub.add_parser("digest", help="build the digest of pending items now and deliver it")
    digest.add_argument("--dry-run", action="store_true", help="print the digest; send and record nothing")
    digest.add_argument(
        "--explain", action="store_true", help="with --dry-run: how each group's label was chosen (to stderr)"
    )
    digest.add_argument("--date", metavar="YYYY-MM-DD", type=_date, help="digest date (the YYMMDD label)")
    digest.add_argument(
        "--name", metavar="NAME", help="only the [[digests]] table of this name (default: every digest)"
    )
    check = sub.add_parser("check", help="validate the config; exit 2 listing every problem")
    check.add_argument(
        "--offline",
        action="store_true",
        help="check the config away from its secrets: one that cannot be read here is a warning, not a problem",
    )
    pending = sub.add_parser("pending", help="the items waiting for the next digest, by feed (title, link, first seen)")
    pending.add_argument("--name", metavar="NAME", help="only those of the [[digests]] table of this name")
    sub.add_parser("status", help="per feed: last poll, result, items, errors; pending deliveries")
    outbox = sub.add_parser(
        "outbox",
        help="messages waiting for an operator: set aside (refused for good) or in a held queue",
        description="List each webhook's queue and the messages its platform refused for good (set aside so the"
        " queue goes on); put one back in its queue, or give it up.  A message is named DIGEST-SEQ@WEBHOOK.",
    )
    outbox.add_argument("action", nargs="?", choices=("list", "retry", "drop"), default="list")
    outbox.add_argument("refs", nargs="*", metavar="REF", help="messages as listed: DIGEST-SEQ@WEBHOOK")
    outbox.add_argument("--all", action="store_true", help="retry or drop every set-aside message")
    sub.add_parser("demo", help="an offline tour on loopback: sample feeds, a webhook, a digest")
    add = sub.add_parser(
        "add",
        help="add a feed by its address or a page that links to it (edits the config)",
        description="Find the feed at URL (a feed, or a page whose feeds are discovered), show how its newest"
        " items would appear in the digest, and append a [[feeds]] table to the config, keeping the rest of"
        " the file as it is.",
    )
    add.add_argument("url", metavar="URL", help="the feed's address, or a page of the site")
    add.add_argument("--name", help="display name in attribution lines (default: the feed's title)")
    add.add_argument("--handle", help='account shown as "(@handle)" after the name')
    add.add_argument("--body", metavar="auto|feed|none|SELECTOR", help="what becomes each item's body (default: auto)")
    add.add_argument("--pick", type=int, metavar="N", help="the N-th of several feeds found (as listed)")
    add.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="TAG",
        help="a tag for the feed (tags = [...]), which [[digests]] tables select by; repeatable",
    )
    add.add_argument(
        "--digest",
        action="append",
        default=[],
        metavar="NAME",
        help="the [[digests]] table of this name takes the feed (its name added to its feeds); repeatable",
    )
    add.add_argument("--dry-run", action="store_true", help="show what would be added; change nothing")
    add.add_argument(
        "--allow-private",
        action="store_true",
        help="follow links and redirects to non-public addresses (the address given is always allowed)",
    )
    sub.add_parser("list", help="the configured feeds, one line each, with their state")
    remove = sub.add_parser("remove", help="remove a feed from the config (by name or URL)")
    remove.add_argument("feed", metavar="NAME", help="the feed's name (or its URL)")
    remove.add_argument("--dry-run", action="store_true", help="say what would be removed; change nothing")
    for verb, effect in (("enable", "poll it again"), ("disable", "stop polling it, keeping its table")):
        switch = sub.add_parser(verb, help=f"{verb} a feed in the config: {effect} (by name or URL)")
        switch.add_argument("feed", metavar="NAME", help="the feed's name (or its URL)")
        switch.add_argument("--dry-run", action="store_true", help=f"say what would be {verb}d; change nothing")
    opml = sub.add_parser("opml", help="import or export the feeds as an OPML subscription list")
    opml_sub = opml.add_subparsers(dest="opml_command", required=True, metavar="import|export")
    imp = opml_sub.add_parser("import", help="add the feeds of an OPML file (- for standard input)")
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--dry-run", action="store_true", help="report what would be added; change nothing")
    imp.add_argument("--body", metavar="auto|feed|none|SELECTOR", help="body setting of every imported feed")
    imp.add_argument("--disabled", action="store_true", help="add the feeds with enabled = false, to review first")
    imp.add_argument("--allow-private", action="store_true", help="import feeds on non-public addresses too")
    exp = opml_sub.add_parser("export", help="write the configured feeds as OPML 2.0")
    exp.add_argument("file", metavar="FILE", nargs="?", help="where to write (default: standard output)")
    state = sub.add_parser("state", help="the state database: copy it to PostgreSQL or to SQLite")
    state_sub = state.add_subparsers(dest="state_command", required=True, metavar="copy")
    copy = state_sub.add_parser(
        "copy",
        help="copy the whole state (feeds, seen keys, pending items, digests, outbox) into an empty database",
        description="Copy the config's state into TARGET, an empty PostgreSQL database (postgresql://user@host/db;"
        " the password from PGPASSWORD or ~/.pgpass) or a state directory for SQLite.  Stop the service first;"
        " then point [state] url (or state_dir) at the copy.",
    )
    copy.add_argument("--to", required=True, metavar="TARGET", help="postgresql://… or a directory")
    return p


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def config_path(arg: str | None) -> Path:
    return Path(arg or os.environ.get("FEEDBOT_CONFIG") or "config.toml")


def _load(arg: str | None, need_secrets: bool = True) -> Config:
    from bot.config import load_config

    return load_config(config_path(arg), need_secrets=need_secrets)


def _now() -> datetime:
    return datetime.now(UTC)


def entry() -> int:
    """The ``feedbot`` command and ``python -m bot``: ``main``, then every
    object left is frozen (``gc.freeze``) for the interpreter's exit.

    The exit's garbage collections walked the whole heap (every imported
    module's objects) for nothing: about a tenth of a `feedbot poll` of
    unchanged feeds (issue 27).  Everything that must happen at exit still
    does: the atexit handlers, logging's flush, the streams' flush; only
    the collection of cycles left is skipped, and the state is committed
    and closed before ``main`` returns."""
    try:
        return main()
    finally:
        gc.freeze()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from bot import logs

    default_level = logging.INFO if args.command == "run" else logging.WARNING
    logs.setup(logging.DEBUG if args.verbose else default_level)
    try:
        return _dispatch(args)
    except ConfigError as exc:
        print(f"feedbot: invalid config {exc.source}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        if exc.unreadable_secrets and args.command == "check":
            print(
                "  (a secret only the service can read, as systemd credentials are? "
                "`feedbot check --offline` checks the rest)",
                file=sys.stderr,
            )
        return EXIT_USAGE
    except UsageError as exc:
        print(f"feedbot {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FeedbotError as exc:
        print(f"feedbot: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except sqlite3.Error as exc:
        print(f"feedbot: the state database cannot be used: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `feedbot status | head -1`: the reader has what it wanted.  Python
        # would report the closed pipe again when it flushes stdout at exit.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a shell reports a process ended by SIGPIPE


def _dispatch(args: argparse.Namespace) -> int:
    command: str = args.command
    if command not in ("run", "demo"):
        from bot import metrics

        metrics.off()  # a one-shot command exports no metrics: prometheus-client is not even imported
    if command == "demo":
        from bot.demo import run_demo

        return run_demo(sys.stdout)
    if command in ("add", "remove", "opml", "enable", "disable"):
        return _manage(args)
    if command in ("status", "list", "outbox", "pending"):
        return _read_state(args)
    # Commands that send nothing do not need the webhook secrets, which may be
    # readable by the service only (systemd credentials).  ``check`` reads
    # them unless told it runs away from them: a secret digest cannot read is
    # a problem to find before the digest time, not at it.
    needed = command in ("run", "digest") or (command == "check" and not args.offline)
    config = _load(args.config, need_secrets=needed)
    from bot import logs

    logs.redact(config.secrets())
    if command == "check":
        return cmd_check(config)
    if command == "run":
        from bot.service import Service

        return asyncio.run(Service(config).run())
    if command == "poll":
        return asyncio.run(cmd_poll(config, args.feed))
    if command == "digest":
        return asyncio.run(cmd_digest(config, args.dry_run, args.date, args.explain, args.name))
    if command == "state":
        return cmd_state_copy(config, args.to)
    raise AssertionError(command)  # argparse only lets the commands above through


def _read_state(args: argparse.Namespace) -> int:
    """``status``, ``list``, ``outbox`` and ``pending``: what the state says, also when
    the config file is invalid (then with what it still says validly), and
    never a state created by asking."""
    from bot import logs
    from bot.config import readable_config
    from bot.state import DB_NAME, state_exists

    config, problem = readable_config(config_path(args.config))
    logs.redact(config.secrets())
    if problem is not None:
        count = len(problem.problems)
        problems = f"{count} problem{'s' if count != 1 else ''}"
        print(
            f"config: {config.path} is invalid ({problems}; `feedbot check` lists them)."
            " A running service keeps the config it last accepted; shown here: the state, with what the file"
            " still says validly."
        )
    if not state_exists(config):
        where = config.state_dir / DB_NAME
        print(
            f"feedbot: no state at {where}: nothing has run with this state yet"
            " (a service under systemd keeps it in $STATE_DIRECTORY, /var/lib/feedbot:"
            f" STATE_DIRECTORY=/var/lib/feedbot feedbot {args.command})",
            file=sys.stderr,
        )
        if args.command != "list":
            return EXIT_FAILURE
    if args.command == "status":
        return cmd_status(config)
    if args.command == "list":
        from bot.manage import cmd_list

        return cmd_list(config, _now)
    if args.command == "pending":
        from bot.manage import cmd_pending

        return cmd_pending(config, chosen_digests(config, args.name) if config.digests else None)
    return cmd_outbox(config, args.action, args.refs, args.all)


def _manage(args: argparse.Namespace) -> int:
    """The commands that edit the config file (bot/manage.py)."""
    from bot import manage

    path = config_path(args.config)
    if args.command == "add":
        request = manage.AddRequest(
            args.url.strip(),
            args.name,
            args.handle,
            args.body,
            args.pick,
            args.dry_run,
            args.allow_private,
            tuple(args.tag),
            tuple(args.digest),
        )
        return asyncio.run(manage.cmd_add(path, request, _now))
    if args.command == "remove":
        return manage.cmd_remove(path, args.feed, args.dry_run)
    if args.command in ("enable", "disable"):
        return manage.cmd_switch(path, args.feed, args.command == "enable", args.dry_run)
    if args.opml_command == "import":
        return manage.cmd_opml_import(
            path, args.file, args.dry_run, args.body, not args.disabled, allow_private=args.allow_private
        )
    config = _load(args.config, need_secrets=False)
    return manage.cmd_opml_export(config, args.file)


def cmd_check(config: Config) -> int:
    enabled = len(config.enabled_feeds)
    print(
        f"{config.path}: ok — {len(config.feeds)} feeds ({enabled} enabled), {len(config.topics)} topics, "
        f"{len(config.labels)} label rules, {len(config.webhooks)} webhooks; state in {config.state_dir}"
    )
    for w in config.webhooks:
        print(f"  webhook {w.name}: {w.kind} {w.url.redacted() if w.url.reveal() else '(URL not readable here)'}")
    for spec in config.digests:
        at = ", ".join(t.isoformat("minutes") for t in spec.schedule.digest_at)
        every = f" and every {spec.schedule.digest_every}" if spec.schedule.digest_every else ""
        where = ", ".join(w.name for w in spec.webhooks) or "stdout and the archive (no webhook)"
        print(f"  digest {spec.name}: at {at or '-'}{every}; to {where}; {len(spec.feeds)} feed(s): ", end="")
        print(", ".join(spec.feeds) or "none", end="")
        print(f"; {len(spec.topics)} topic(s)")
    for warning in config.warnings:
        print(f"  warning: {warning}")
    if not config.webhooks:
        print("  no webhook: digests are written to stdout and archived in the state directory")
    return EXIT_OK


class _NoBar:
    """tqdm's surface that ``cmd_poll`` uses, for output that is not a
    terminal: the lines alone, and tqdm not imported."""

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def write(self, line: str, file: Any) -> None:
        print(line, file=file)

    def update(self) -> None:
        return None


async def cmd_poll(config: Config, only: str | None) -> int:
    from bot.fetch import make_client
    from bot.poll import Poller
    from bot.state import open_store

    feeds = config.enabled_feeds
    if only is not None:
        feed = config.feed_named(only)
        if feed is None:
            names = ", ".join(f.name for f in config.feeds) or "none"
            print(f"feedbot: no feed named {only!r} (feeds: {names})", file=sys.stderr)
            return EXIT_USAGE
        feeds = (feed,)
    store = open_store(config)
    outcomes = []
    # A line per feed as each finishes (a first poll with article pages takes
    # minutes), under a progress bar on a terminal (stderr: stdout stays the
    # lines alone when piped).
    bar: Any = _NoBar()
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=len(feeds), unit="feed", file=sys.stderr, leave=False)
    with bar:
        try:
            async with make_client(config.poll) as client, Poller(config, store, client, _now) as poller:
                poller.log_outcomes = False
                for next_done in asyncio.as_completed([poller.poll(f, force=True) for f in feeds]):
                    outcome = await next_done  # by hand: now, backoff or not
                    outcomes.append(outcome)
                    bar.write(outcome.line(), file=sys.stdout)
                    sys.stdout.flush()
                    bar.update()
        finally:
            store.close()
    return EXIT_FAILURE if any(o.status == "error" for o in outcomes) else EXIT_OK


def _explain(choices: list[Any], config: Config) -> None:
    """Per group, the label chosen and the candidates with their scores."""
    if config.digest.labels != "auto":
        print('labels: digest.labels is "date": no automatic labels', file=sys.stderr)
    if not choices:
        print("labels: no topic group in this digest: the fallback group is dated", file=sys.stderr)
    for choice in choices:
        if choice.source:
            print(f"#{choice.tag}: {choice.label} — named by {choice.source}", file=sys.stderr)
            continue
        print(f"#{choice.tag}: {choice.label or '(the date: no candidate)'}", file=sys.stderr)
        for candidate in choice.candidates:
            print(f"  {candidate.explain()}", file=sys.stderr)


def chosen_digests(config: Config, name: str | None) -> tuple[DigestSpec, ...]:
    """``--name NAME``'s digest, or every digest the config makes."""
    if name is None:
        return config.streams()
    spec = config.digest_named(name)
    if spec is None or not name:
        names = [d.name for d in config.digests]
        if not names:
            raise UsageError(f"--name {name!r}: the config has no [[digests]] tables (one digest, without a name)")
        import difflib

        close = difflib.get_close_matches(name, names, n=1)
        hint = f' (did you mean "{close[0]}"?)' if close else ""
        raise UsageError(f"--name {name!r}: no such digest{hint}; the digests: {', '.join(names)}")
    return (spec,)


async def cmd_digest(
    config: Config, dry_run: bool, day: date | None, explain: bool = False, name: str | None = None
) -> int:
    """Build (or with ``dry_run`` show) each chosen digest now, in config order."""
    from bot.deliver import Deliverer
    from bot.digest import Digester
    from bot.fetch import make_client
    from bot.state import open_store
    from bot.text import shown

    specs = chosen_digests(config, name)
    store = open_store(config)
    ok = True
    try:
        async with make_client(config.poll) as client:
            deliverer = Deliverer.configured(config, client, store, _now)
            for spec in specs:
                digester = Digester(config, store, deliverer, _now, sys.stdout, stream=spec.name)
                label = f"digest {spec.name}: " if spec.name else ""
                if dry_run:
                    rendered, choices = await digester.preview(day)
                    if rendered is None:
                        print(f"feedbot: {label}no pending items", file=sys.stderr)
                    else:
                        if len(specs) > 1:
                            print(f"# digest {spec.name}", file=sys.stderr)
                        print(rendered.text)
                    if explain:
                        _explain(choices, digester.config)
                    continue
                result = await digester.run(day)
                if result.digest_id is None:
                    print(f"{label}no new items: no digest built", file=sys.stderr)
                for r in result.reports:
                    # A server's words: no control codes.
                    state = "ok" if r.error is None else f"failed: {shown(r.error, 300)}"
                    aside = f", {r.set_aside} refused for good and set aside (feedbot outbox)" if r.set_aside else ""
                    print(
                        f"{label}webhook {r.webhook}: sent {r.sent} message(s), {r.pending} pending{aside} — {state}",
                        file=sys.stderr,
                    )
                ok = ok and result.ok
    finally:
        store.close()
    return EXIT_OK if ok else EXIT_FAILURE


def cmd_state_copy(config: Config, to: str) -> int:
    from bot.config import database_url_problem
    from bot.state import SQLiteStore, Store, open_store
    from bot.state.copy import copy_state

    problem = database_url_problem(to) if to.startswith(("postgresql://", "postgres://")) else None
    if problem is not None:
        raise UsageError(f"--to {problem}")  # before anything connects: libpq would show part of the password
    source = open_store(config)
    target: Store
    if to.startswith(("postgresql://", "postgres://")):
        from bot.state.postgres import PostgresStore

        target = PostgresStore.open(to)
    else:
        target = SQLiteStore.open(Path(to).expanduser())
    try:
        counts = copy_state(source, target)
    finally:
        source.close()
        target.close()
    print(f"copied {source.where} to {target.where}:")
    print("  " + ", ".join(f"{table} {n:,}" for table, n in counts.items()))
    return EXIT_OK


def _instances(store: Any, config: Config) -> None:
    """Who runs on this state; a warning when their config files differ."""
    running = store.instances(_now())
    if not running:
        print(f"state: {store.where}; no `feedbot run` heard from in the last minute")
        return
    print(f"state: {store.where}; instances ({len(running)}):")
    for i in running:
        print(
            f"  {i.host} pid {i.pid} (feedbot {i.version}), up since {_when(i.started_at, config)},"
            f" last seen {_when(i.seen_at, config)}, config {i.config_hash}"
        )
    if len({i.config_hash for i in running}) > 1:
        print("  WARNING: the instances run different config files; make them the same")


def _next_digest(config: Config, last: datetime | None, now: datetime) -> datetime | None:
    """When the service builds the next digest: the next ``digest_at``
    time in the config's zone, or ``digest_every`` after the last one."""
    zone, candidates = config.timezone, []
    today = now.astimezone(zone).date()
    for t in config.schedule.digest_at:
        for day in (today, today + timedelta(days=1)):
            at = datetime.combine(day, t, zone)
            if at > now:
                candidates.append(at)
                break
    every = config.schedule.digest_every
    if every is not None:
        candidates.append(max(now, last + every) if last is not None else now)
    return min(candidates, default=None)


def _digests(last: Any, config: Config, indent: str = "") -> None:
    """The last digest (when, how many items, how far each webhook took
    it) and when the next is due."""
    names = {w.ident: w.name for w in config.webhooks}
    following = _next_digest(config, last.built_at if last else None, _now())
    if last is None:
        print(f"{indent}digests: none built yet")
    else:
        where = "; ".join(
            f"{names.get(w, w.removeprefix('name:'))} {ok}/{n} accepted" + (f", {aside} set aside" if aside else "")
            for w, (n, ok, aside) in sorted(last.webhooks.items())
        )
        print(
            f"{indent}digests: last #{last.digest_id} of {last.day}, built {_when(last.built_at, config)}, "
            f"{last.items} item(s); " + (where or "no webhook: written to stdout and the archive")
        )
    none = "none scheduled (digest_at = [])"
    print(f"{indent}  next digest: {_when(following, config) if following else none}")


def _when(value: datetime | None, config: Config) -> str:
    """A time in the config's zone, named (``2025-01-21 18:00 JST``): one
    convention for every command, labelled."""
    return value.astimezone(config.timezone).strftime("%Y-%m-%d %H:%M %Z") if value else "never"


def cmd_outbox(config: Config, action: str, refs: list[str], every: bool) -> int:
    from bot import outbox
    from bot.state import open_store

    if action == "list" and (refs or every):
        raise UsageError("feedbot outbox lists; to act on messages: feedbot outbox retry|drop REF… (or --all)")
    if action != "list" and not refs and not every:
        raise UsageError(f"feedbot outbox {action}: name the messages (REF as listed) or give --all")
    store = open_store(config)
    try:
        if action == "list":
            print("\n".join(outbox.listing(config, store, lambda when: _when(when, config))))
            return EXIT_OK
        lines, found = outbox.act(store, action, refs, every)
        print("\n".join(lines))
        return EXIT_OK if found else EXIT_FAILURE
    finally:
        store.close()


def cmd_status(config: Config) -> int:
    from bot.state import open_store
    from bot.text import shown

    store = open_store(config)
    try:
        rejected = store.get_meta("config_error")
        if rejected:
            when, _, problems = rejected.partition("\n")
            print(
                f"config: the service rejected an edit at {_when(datetime.fromisoformat(when), config)}"
                " and runs the previous config:"
            )
            for problem in problems.split("\n"):
                print(f"  {shown(problem, 300)}")
        _instances(store, config)
        states = store.all_feed_states()
        polling = store.polling() if store.instances(_now()) else {}
        print(f"feeds ({len(config.feeds)}):")
        for feed in config.feeds:
            s = states.get(feed.url)
            now_polled = f" — polling now (instance {polling[feed.url]})" if feed.url in polling else ""
            if s is None or s.last_poll_at is None:
                print(f"  {feed.name}: never polled" + ("" if feed.enabled else " (disabled)") + now_polled)
                continue
            line = (
                f"  {feed.name}: last poll {_when(s.last_poll_at, config)} {s.last_status}"
                f", new {s.last_new}, items {s.items_taken}"
            )
            if s.error_count:
                since = _when(s.failing_since, config)
                line += f", {s.error_count} error(s) since {since}: {shown(s.last_error or '')}"
                if s.failing_since and _now() - s.failing_since > timedelta(days=1):
                    line += f" — FAILING for {(_now() - s.failing_since).days} day(s)"
            if s.next_poll_at and s.next_poll_at > _now():
                why = "backing off" if s.error_count else "the server asked to wait"
                line += f"; {why} until {_when(s.next_poll_at, config)}"
            elif s.last_error:
                line += f" (warning: {shown(s.last_error)})"
            print(line + ("" if feed.enabled else " (disabled)") + now_polled)
        print(f"pending items: {store.pending_count()}")
        if config.digests:
            waiting = store.streams_pending()
            for spec in config.digests:
                view = config.for_digest(spec)
                print(
                    f"digest {spec.name}: {len(spec.feeds)} feed(s), {waiting.get(spec.name, 0)} item(s) waiting,"
                    f" {store.pending_count(spec.name)} not yet delivered everywhere"
                )
                _digests(store.last_digest(spec.name), view, indent="  ")
            for gone in sorted(set(waiting) - {d.name for d in config.digests}):
                print(f"digest {gone or '(without a name)'} (no longer configured): {waiting[gone]} item(s) kept")
        else:
            _digests(store.last_digest(), config)
        names = {
            w.ident: f"{w.name} ({w.kind} {w.url.redacted() if w.url.reveal() else 'URL not readable here'})"
            for w in config.webhooks
        }
        backlog = store.backlog()
        if not backlog:
            print("deliveries: nothing pending")
        for b in backlog:
            who = names.get(b.webhook, f"webhook {b.webhook} (no longer configured)")
            line = f"  {who}: {b.pending} message(s) pending"
            if b.pending and b.last_error:
                line += f", last attempt {_when(b.last_attempt_at, config)} failed: {shown(b.last_error)}"
            if b.pending and b.next_attempt_at:
                line += f"; next try {_when(b.next_attempt_at, config)}"
            if b.set_aside:
                line += f"; {b.set_aside} set aside, refused for good (feedbot outbox)"
            print(line)
        resent = store.resent_count()
        if resent:  # a POST cut short by a crash or a kill: its outcome unknown, it was sent again
            print(f"deliveries sent again after a POST whose answer was lost (each may have arrived twice): {resent}")
    finally:
        store.close()
    return EXIT_OK
