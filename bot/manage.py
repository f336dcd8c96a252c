"""The feed-management commands: ``add``, ``list``, ``remove``, ``opml``.

Each edit goes through ``bot.configfile`` (comments and order kept, checked
as ``check`` does, written atomically with a backup); a running service
picks it up through its live reload.  Refusals a user can act on (a
duplicate, a bad option, several feeds to choose from) exit 2; what the
network or a file did (unreachable, no feed, a file that is not OPML) exits
1 with one sentence, as the other commands do.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bot.config import Config, DigestSpec, Feed, feed_table_problems
from bot.configfile import ConfigFile, NewFeed, locked, same_feed_url, write
from bot.errors import UsageError
from bot.models import Entry, Item
from bot.render import item_lines
from bot.secrets import without_credentials
from bot.text import collapse, shown, truncate
from bot.topics import haystack, is_lead, topic_of, yymmdd

if TYPE_CHECKING:  # discovery (bs4, the HTTP stack) is imported by `add` alone: `remove` starts 0.4 s sooner
    from bot.discover import Candidate

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
PREVIEW_ITEMS = 3
PREVIEW_BODY_LINES = 3
NAME_MAX = 100
RELOAD_NOTE = "a running `feedbot run` picks the change up within seconds (live reload)"

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class AddRequest:
    url: str
    name: str | None = None
    handle: str | None = None
    body: str | None = None
    pick: int | None = None
    dry_run: bool = False
    allow_private: bool = False  # addresses found in the page or a redirect may be non-public
    tags: tuple[str, ...] = ()  # --tag: written as the feed's tags
    digests: tuple[str, ...] = ()  # --digest: [[digests]] tables to take the feed


def _duplicate(feeds: Sequence[Feed], url: str, name: str | None) -> str | None:
    key = same_feed_url(url)
    for feed in feeds:
        if same_feed_url(feed.url) == key:
            return f"{without_credentials(url)} is already configured as {feed.name!r}"
        if name is not None and feed.name == name:
            return f"a feed named {name!r} already exists ({without_credentials(feed.url)}); choose another with --name"
    return None


def _check_options(name: str | None, url: str, handle: str | None, body: str | None, tags: Sequence[str] = ()) -> None:
    """Bad options are refused before anything is fetched, in ``check``'s words."""
    table = {"name": name, "url": url, "handle": handle, "body": body, "tags": list(tags) or None}
    problems = feed_table_problems({k: v for k, v in table.items() if v is not None} | {"name": name or "-"})
    if problems:
        raise UsageError(
            "; ".join(
                p.replace("url:", "the address:", 1)
                if p.startswith("url:")
                else f"--{p.replace('tags', 'tag', 1) if p.startswith('tags') else p}"
                for p in problems
            )
        )


def _check_digests(config: Config, wanted: Sequence[str]) -> None:
    """Each ``--digest`` must name a ``[[digests]]`` table (checked before anything is fetched)."""
    import difflib

    names = [d.name for d in config.digests]
    for name in wanted:
        if name in names:
            continue
        if not names:
            raise UsageError(
                f"--digest {name!r}: the config has no [[digests]] tables (its one digest takes every feed)"
            )
        close = difflib.get_close_matches(name, names, n=1)
        hint = f' (did you mean "{close[0]}"?)' if close else ""
        raise UsageError(f"--digest {name!r}: no such digest{hint}; the digests: {', '.join(names)}")


def _into_digests(file: ConfigFile, name: str, digests: Sequence[str]) -> list[str]:
    """Make each of ``digests`` take the feed ``name`` (already added to
    ``file``): its name added to the table's ``feeds``, unless the table
    takes it already.  One line per digest, saying what was done."""
    if not digests:
        return []
    config = file.validate()
    tables = {str(t.get("name")): t for t in file.digest_tables()}
    notes = []
    for digest in dict.fromkeys(digests):
        table = tables[digest]
        if "feeds" not in table and "tags" not in table:
            notes.append(f"[[digests]] {digest!r} takes every feed already (no feeds or tags key): not changed")
        elif digest in config.streams_of(name):
            notes.append(f"[[digests]] {digest!r} takes it already (by its feeds or tags): not changed")
        else:
            patterns = file.add_to_digest(digest, name) or []
            notes.append(f"[[digests]] {digest!r}: feeds = {_toml_list(patterns)}")
    return notes


def _toml_list(values: Sequence[str]) -> str:
    import tomlkit

    return str(tomlkit.item(list(values)).as_string())


def _choose(
    candidates: Sequence[Candidate], pick: int | None, out: TextIO, configured: Sequence[str | None] = ()
) -> Candidate:
    """The candidate to add: ``--pick``, the only one, or the user's answer
    at a terminal.  ``configured``: per candidate, the name it is already
    configured under (None: not configured)."""
    if pick is not None:
        if not 1 <= pick <= len(candidates):
            raise UsageError(f"--pick {pick}: there are {len(candidates)} feed(s) to pick from")
        return candidates[pick - 1]
    if len(candidates) == 1:
        return candidates[0]
    taken = list(configured) or [None] * len(candidates)
    if all(taken):
        names = ", ".join(repr(n) for n in taken)
        raise UsageError(f"every feed found is already configured (as {names}): nothing to add")
    again = f"{len(candidates)} feeds found: run again with --pick N (1-{len(candidates)})"
    if not (sys.stdin.isatty() and out is sys.stdout):
        raise UsageError(again)
    # At a terminal a slip of the finger asks again rather than throwing
    # away the discovery just made (a second run fetches everything anew);
    # an end of input (Ctrl-D) or "q" gives up.
    while True:
        try:
            answer = input(f"pick a feed [1-{len(candidates)}, q to give up]: ").strip()
        except EOFError:
            print("", file=out)
            raise UsageError(again) from None
        if answer.lower() in ("q", "quit"):
            raise UsageError("no feed picked: nothing added")
        if not (answer.isdigit() and 1 <= int(answer) <= len(candidates)):
            print(f"  {shown(answer, 40)!r} is not a number from 1 to {len(candidates)}", file=out)
            continue
        name = taken[int(answer) - 1]
        if name is not None:
            print(f"  {answer} is already configured as {name!r}: pick another", file=out)
            continue
        return candidates[int(answer) - 1]


def _name_for(candidate: Candidate) -> str:
    from urllib.parse import urlsplit

    name = collapse(candidate.title) or (urlsplit(candidate.url).hostname or candidate.url)
    return truncate(name, NAME_MAX, "…")


def _newest(entries: Sequence[Entry], count: int) -> list[Entry]:
    dated = sorted((e for e in entries if e.published), key=lambda e: e.published or 0, reverse=True)
    undated = [e for e in entries if not e.published]
    return (dated + undated)[:count]


async def _preview(config: Config, feed: Feed, candidate: Candidate, now: datetime, out: TextIO) -> None:
    """The newest items as the digest would show them, with their group."""
    from bot.bodies import Bodies
    from bot.poll import wanted
    from bot.workers import shared

    entries = _newest(candidate.feed.entries, PREVIEW_ITEMS)
    if not entries:
        print("the feed has no items yet", file=out)
        return
    print(f"\nits newest {len(entries)} item(s) as the digest would show them:", file=out)
    bodies = Bodies(config.poll, shared())
    try:
        for n, entry in enumerate(entries):
            body = await bodies.body(feed, entry)
            item = Item(-1 - n, feed.name, feed.url, entry.title, entry.link, entry.published, now, tuple(body))
            print("", file=out)
            print(f"  [{_group(config, item, now)}{_notes(config, feed, entry, now, wanted(feed, entry))}]", file=out)
            lines = item_lines(config, item)
            shown_lines = lines[: 2 + PREVIEW_BODY_LINES]
            for line in shown_lines:
                print(f"  {shown(line, 300)}", file=out)
            if len(lines) > len(shown_lines):
                print(f"  … ({len(lines) - len(shown_lines)} more body line(s))", file=out)
    finally:
        await bodies.aclose()


def _group(config: Config, item: Item, now: datetime) -> str:
    if is_lead(config.digest.lead, item):
        return "lead item, above the groups"
    index = topic_of(config.topics, haystack(item))
    if index is None:
        day = now.astimezone(config.timezone).date()
        return f"#{config.digest.default_topic}({yymmdd(day)}), the fallback group"
    return f"#{config.topics[index].tag}"


def _notes(config: Config, feed: Feed, entry: Entry, now: datetime, wanted: bool) -> str:
    notes = []
    if not wanted:
        notes.append("left out by the feed's include/exclude")
    window = config.poll.first_poll
    if window is not None and (entry.published is None or now - entry.published > window):
        notes.append("too old for the first poll (poll.first_poll)")
    return "; " + "; ".join(notes) if notes else ""


async def cmd_add(path: Path, request: AddRequest, clock: Clock, out: TextIO = sys.stdout) -> int:
    from bot.discover import REFUSED_HINT, discover
    from bot.fetch import PageFetcher, make_client
    from bot.workers import shared

    config = ConfigFile.read(path).validate()  # an invalid file is fixed first, by hand
    _check_options(request.name, request.url, request.handle, request.body, request.tags)
    _check_digests(config, request.digests)
    early = _duplicate(config.feeds, request.url, request.name)
    if early:
        raise UsageError(early)
    allow = config.poll.allow_private_addresses or request.allow_private
    pages = PageFetcher(replace(config.poll, allow_private_addresses=allow))
    try:
        async with make_client(config.poll) as client:
            found = await discover(client, request.url, shared(), config.poll.timeout.total_seconds() * 2, pages)
    finally:
        await pages.aclose()
    many = len(found.candidates) > 1
    print(f"{'feeds' if many else 'feed'} found at {without_credentials(request.url)}:", file=out)
    names = {same_feed_url(f.url): f.name for f in config.feeds}
    configured = [names.get(same_feed_url(c.url)) for c in found.candidates]
    for n, (candidate, name) in enumerate(zip(found.candidates, configured, strict=True), 1):
        mark = f" [already configured as {shown(name, 100)!r}]" if name is not None else ""
        print(f"  {n}. {shown(candidate.describe(config.timezone), 400)}{mark}", file=out)
    for note in found.notes:
        print(f"  (not readable: {shown(note, 300)})", file=out)
    if found.refused:
        print(f"  ({REFUSED_HINT})", file=out)
    chosen = _choose(found.candidates, request.pick, out, configured)
    name = request.name or _name_for(chosen)
    duplicate = _duplicate(config.feeds, chosen.url, name)
    if duplicate:
        raise UsageError(duplicate)
    now = clock()
    comment = f"added by feedbot add on {now.astimezone(config.timezone):%Y-%m-%d}"
    if same_feed_url(chosen.url) != same_feed_url(request.url):
        comment += f", found at {without_credentials(request.url)}"
    tags = tuple(dict.fromkeys(t.strip() for t in request.tags))
    new = NewFeed(name=name, url=chosen.url, handle=request.handle, body=request.body, comments=(comment,), tags=tags)
    trial = ConfigFile.read(path)
    trial.add_feeds([new])
    notes = _into_digests(trial, name, request.digests)
    preview_config = trial.validate()
    feed = preview_config.feeds[-1]
    await _preview(preview_config, feed, chosen, now, out)
    print("", file=out)
    if preview_config.digests:
        taking = ", ".join(repr(d) for d in preview_config.streams_of(name)) or "none (no [[digests]] table selects it)"
        print(f"digests that will take it: {taking}", file=out)
    if request.dry_run:
        print(f"dry run: {path} not changed; this table would be added:\n\n{new.text()}", file=out)
        if notes:
            print("and in the [[digests]] tables:", file=out)
            _listed(notes, out, None)
        return EXIT_OK
    with locked(path) as file:
        again = _duplicate(file.validate().feeds, chosen.url, name)  # edited meanwhile?
        if again:
            raise UsageError(again)
        file.add_feeds([new])
        notes = _into_digests(file, name, request.digests)
        backup = _save(file, False, "", out)
    for note in notes:
        print(note, file=out)
    print(f"added feed {name!r} to {path} (previous version: {backup}); {RELOAD_NOTE}", file=out)
    return EXIT_OK


def _save(file: ConfigFile, dry_run: bool, would: str, out: TextIO) -> Path | None:
    """Check the edited file and write it (None: a dry run, nothing written)."""
    file.validate()
    if dry_run:
        print(f"dry run: {file.path} not changed{would}", file=out)
        return None
    return write(file)


def _feed_name(file: ConfigFile, which: str) -> str:
    """The name of the feed ``which`` names (its name or its URL), or a
    UsageError with the names it may have meant."""
    # By name, from the file as read: the edit is validated as a whole
    # before it is written, and one validation of a file of 10,000 feeds
    # is a quarter of a second.  By URL, as check reads the URLs.
    if any(v.get("name") == which for v in file.feeds()):
        return which
    config = file.validate()
    key = same_feed_url(which)
    feed = next((f for f in config.feeds if f.url == which or same_feed_url(f.url) == key), None)
    if feed is not None:
        return feed.name
    raise UsageError(f"no feed named {which!r} or with that URL ({_suggestions(config.feeds, which)})")


def _suggestions(feeds: Sequence[Feed], which: str) -> str:
    """Close names (a typo, a missing suffix), else the first names: what
    the user most likely meant, without printing 10,000 names."""
    import difflib

    by_name = {f.name: f.name for f in feeds}
    by_name.update({f.name.casefold(): f.name for f in feeds})  # "nhk" finds "NHK"
    by_url = {without_credentials(f.url): f.name for f in feeds}
    close = difflib.get_close_matches(which.casefold(), list(by_name), n=3, cutoff=0.6)
    close += difflib.get_close_matches(which, list(by_url), n=3, cutoff=0.8)
    names = list(dict.fromkeys([by_name.get(c) or by_url[c] for c in close]))[:3]
    if names:
        return "did you mean " + " or ".join(repr(n) for n in names) + "?"
    listed = ", ".join(repr(f.name) for f in feeds[:20]) or "none"
    if len(feeds) > 20:
        listed += f", … and {len(feeds) - 20} more"
    return f"feeds: {listed}"


def cmd_remove(path: Path, which: str, dry_run: bool, out: TextIO = sys.stdout) -> int:
    with locked(path) as file:
        name = _feed_name(file, which)
        file.remove_feed(name)
        backup = _save(file, dry_run, f"; feed {name!r} would be removed", out)
    if backup is None:
        return EXIT_OK
    print(
        f"removed feed {name!r} from {path} (previous version: {backup}); its items already taken still"
        f" appear in the next digest; {RELOAD_NOTE}",
        file=out,
    )
    return EXIT_OK


def cmd_switch(path: Path, which: str, enabled: bool, dry_run: bool = False, out: TextIO = sys.stdout) -> int:
    """``enable`` / ``disable``: the feed's ``enabled`` key, through the same
    locked, validated edit as ``remove``."""
    done = "enabled" if enabled else "disabled"
    with locked(path) as file:
        name = _feed_name(file, which)
        if not file.set_enabled(name, enabled):
            print(f"feed {name!r} is already {done}: {path} not changed", file=out)
            return EXIT_OK
        backup = _save(file, dry_run, f"; feed {name!r} would be {done}", out)
    if backup is None:
        return EXIT_OK
    # What happens to its items (the operator's next question): its seen
    # keys are kept, so a feed switched back on takes only what it has not
    # given before, published while it was off included (within max_age).
    after = (
        "its next poll takes the entries it has not seen yet (poll.max_age applies)"
        if enabled
        else "it is no longer polled; its items already taken still appear in the next digest"
    )
    print(f"{done} feed {name!r} in {path} (previous version: {backup}); {after}; {RELOAD_NOTE}", file=out)
    return EXIT_OK


NAME_COLUMNS = 40  # at most, with no terminal width to fit (a pipe)
STATE_COLUMNS = 24  # kept for the state when a line must be cut
URL_COLUMNS = 28  # kept for the address when a line must be cut


def cmd_list(config: Config, clock: Clock, out: TextIO = sys.stdout) -> int:
    """One line per feed: name, state, URL; fit to the terminal's width."""
    from bot.state import open_store, state_exists
    from bot.termwidth import cut, elide_url, pad, terminal_columns, width

    if not config.feeds:
        print("no feeds: add one with `feedbot add URL`", file=out)
        return EXIT_OK
    states = {}
    if state_exists(config):  # else every feed is "never polled", and no state is made by asking
        store = open_store(config)
        try:
            states = store.all_feed_states()
        finally:
            store.close()
    columns = terminal_columns(out)
    # The name column: a fifth of the line at most (16 columns of 80, 24
    # of 120), so that the state and the address keep the rest.
    most = NAME_COLUMNS if columns is None else max(12, min(NAME_COLUMNS, columns // 5))
    names = [cut(shown(f.name, 200), most) for f in config.feeds]
    name_width = max(width(n) for n in names)
    now = clock()
    for feed, name in zip(config.feeds, names, strict=True):
        s = states.get(feed.url)
        if not feed.enabled:
            state = "disabled"
        elif s is None or s.last_poll_at is None:
            state = "never polled"
        elif s.error_count:
            since = s.failing_since or s.last_poll_at
            state = f"FAILING since {_when(since, config)} ({s.error_count}x): {shown(s.last_error or '', 60)}"
        else:
            state = f"ok, polled {_when(s.last_poll_at, config)}, {s.items_taken} item(s) taken"
            if s.last_ok_at and now - s.last_ok_at > config.feed_interval(feed) * 4:
                state += " (late)"
        if config.digests:  # which digests take it
            state = f"[{', '.join(config.streams_of(feed.name)) or 'no digest'}] {state}"
        url = without_credentials(feed.url)
        if columns is not None:
            room = columns - name_width - 4  # the two gaps
            # The address is cut in its middle first (host and file name
            # stay), then the state (a long error message) at its end.
            url = elide_url(url, max(URL_COLUMNS, room - width(state)))
            state = cut(state, max(STATE_COLUMNS, room - width(url)))
        print(f"{pad(name, name_width)}  {state}  {url}", file=out)
    return EXIT_OK


def _when(value: datetime, config: Config) -> str:
    return value.astimezone(config.timezone).strftime("%Y-%m-%d %H:%M %Z")


def _listed(items: Sequence[str], out: TextIO, limit: int | None = 10) -> None:
    """Each line; at most ``limit`` (None: all, as a dry run lists them)."""
    for line in items[:limit]:
        print(f"    {line}", file=out)
    if limit is not None and len(items) > limit:
        print(f"    … and {len(items) - limit} more", file=out)


IMPORT_HINT = (
    "an address found in a list is refused unless it is public: --allow-private, or [poll]"
    " allow_private_addresses = true, imports it"
)
RESOLVE_AT_ONCE = 16  # names of an OPML list looked up at a time


async def _refusals(urls: Sequence[str], deadline: float) -> dict[str, str]:
    """URL → why the address policy refuses it, each host and port looked up
    once, all within ``deadline`` seconds (a name not answered by then, or
    not at all, cannot be judged here and is not refused: its polls say)."""
    import asyncio
    from urllib.parse import urlsplit

    from bot.guard import Policy, refusal

    groups: dict[tuple[str, int], list[str]] = {}
    for url in urls:
        try:  # grouped by the standard library's reading (httpx's costs a second per 10,000)
            parts = urlsplit(url)
            key = ((parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80))
        except ValueError:
            continue  # not a feed address: the plan rejects it
        groups.setdefault(key, []).append(url)
    turn = asyncio.Semaphore(RESOLVE_AT_ONCE)
    policy = Policy()

    async def judge(first: str) -> str | None:
        async with turn:
            return await refusal(first, policy)

    tasks = {key: asyncio.ensure_future(judge(members[0])) for key, members in groups.items()}
    if not tasks:
        return {}
    _done, late = await asyncio.wait(tasks.values(), timeout=deadline)
    for task in late:
        task.cancel()
    found: dict[str, str] = {}
    for key, task in tasks.items():
        judged = task.done() and not task.cancelled() and task.exception() is None
        why = task.result() if judged else None
        if why is not None:
            found.update((url, why) for url in groups[key])
    return found


def cmd_opml_import(
    path: Path,
    source: str,
    dry_run: bool,
    body: str | None,
    enabled: bool,
    out: TextIO = sys.stdout,
    allow_private: bool = False,
) -> int:
    import asyncio

    from bot.opml import plan_import, read_opml

    if body is not None:
        _check_options(None, "https://example.org/", None, body)
    data = _read_source(source)
    opml = read_opml(data)
    label = "standard input" if source == "-" else Path(source).name
    with locked(path) as file:
        config = file.validate()
        refused: dict[str, str] = {}
        if not (allow_private or config.poll.allow_private_addresses):
            seconds = config.poll.timeout.total_seconds()
            refused = asyncio.run(_refusals([o.url for o in opml.outlines], seconds))
        plan = plan_import(opml, config.feeds, label, body, enabled, refused)
        title = f" ({shown(opml.title, 80)})" if opml.title else ""
        print(f"{label}{title}: {len(opml.outlines)} feed outline(s)", file=out)
        if opml.problem:
            print(f"  warning: {shown(opml.problem, 300)}", file=out)
        renamed = f" ({plan.renamed} renamed to keep names unique)" if plan.renamed else ""
        # A dry run is where a list is reviewed before it lands: every feed
        # it would add and every one it skips, each on its line (the import
        # itself sums up, ten of each).
        limit = None if dry_run else 10
        print(f"  {len(plan.add)} to add{renamed}{':' if dry_run and plan.add else ''}", file=out)
        if dry_run:
            _listed([_would_add(new) for new in plan.add], out, limit)
        if plan.duplicates:
            print(f"  {len(plan.duplicates)} skipped, already configured:", file=out)
            _listed([f"{shown(d.title or '-', 60)} {shown(d.url, 120)}: {d.why}" for d in plan.duplicates], out, limit)
        if plan.rejected:
            print(f"  {len(plan.rejected)} skipped, not feed addresses:", file=out)
            _listed([f"{shown(r.title or '-', 60)} {shown(r.url, 120)}: {r.why}" for r in plan.rejected], out, limit)
        if plan.refused:
            print(f"  {len(plan.refused)} skipped, not public addresses ({IMPORT_HINT}):", file=out)
            _listed([f"{shown(r.title or '-', 60)} {shown(r.url, 120)}: {r.why}" for r in plan.refused], out, limit)
        folders = [f"{shown(f, 60)} ({n})" for f, n in plan.folders.most_common() if f != "(no folder)"]
        if folders:
            print(
                f"  from {len(folders)} folder(s), each written as a tag of its feeds (tags = [...], which a"
                " [[digests]] table can select by: docs/feeds.md):",
                file=out,
            )
            _listed(folders, out, limit)
        if not plan.add:
            print(f"nothing to add: {path} not changed", file=out)
            return EXIT_OK
        file.add_feeds(plan.add)
        backup = _save(file, dry_run, "", out)
    if backup is None:
        return EXIT_OK
    print(f"added {len(plan.add)} feed(s) to {path} (previous version: {backup}); {RELOAD_NOTE}", file=out)
    return EXIT_OK


def _would_add(new: NewFeed) -> str:
    """A feed an import would add: its name, its address, and what it carries."""
    from bot.opml import FOLDER_SEPARATOR

    notes = [f"folder {FOLDER_SEPARATOR.join(new.tags)}"] if new.tags else []
    if not new.enabled:
        notes.append("disabled")
    extra = f" ({'; '.join(notes)})" if notes else ""
    return f"{shown(new.name, 100)} {shown(without_credentials(new.url), 200)}{extra}"


def _read_source(source: str) -> bytes:
    from bot.opml import MAX_OPML_BYTES

    if source == "-":
        return sys.stdin.buffer.read(MAX_OPML_BYTES + 1)
    try:
        with open(source, "rb") as f:
            return f.read(MAX_OPML_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"{source}: cannot be read ({exc.strerror})") from None


def _comments(config: Config) -> list[tuple[str, list[str]]]:
    return ConfigFile.read(config.path).feed_comments()


def cmd_opml_export(config: Config, target: str | None, out: TextIO = sys.stdout) -> int:
    from bot.opml import export, folders_noted

    # A feed's tags go out as its folder and categories; for a feed without
    # tags, the folders an older import noted in its table's comment.
    folders = {name: [f for c in comments for f in folders_noted(c)] for name, comments in _comments(config)}
    data = export(config.feeds, folders=folders)
    if target in (None, "-"):
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return EXIT_OK
    assert target is not None
    Path(target).write_bytes(data)
    print(f"wrote {len(config.feeds)} feed(s) to {target}", file=sys.stderr)
    return EXIT_OK


def cmd_pending(config: Config, digests: Sequence[DigestSpec] | None = None, out: TextIO = sys.stdout) -> int:
    """The items waiting for the next digest, by feed: what ``digest``
    would take now (``Store.unbound_items``, read only), in config order;
    with ``[[digests]]`` tables, under each of ``digests`` in turn."""
    from bot.state import open_store

    store = open_store(config)
    try:
        if digests is None:
            _pending(config, store.unbound_items(), store.pending_count(), out)
            return EXIT_OK
        for n, spec in enumerate(digests):
            print(f"{'' if n == 0 else chr(10)}== digest {spec.name} ==", file=out)
            _pending(config.for_digest(spec), store.unbound_items(spec.name), store.pending_count(spec.name), out)
    finally:
        store.close()
    return EXIT_OK


def _pending(config: Config, items: list[Item], pending: int, out: TextIO) -> None:
    from bot.digest import cap_per_feed

    in_digests = pending - len(items)  # built, not yet accepted by every webhook
    cap = config.digest.max_items_per_feed
    kept = {item.id for item in cap_per_feed(items, cap)[0]}
    by_feed: dict[str, list[Item]] = {}
    for item in sorted(items, key=lambda i: i.id):  # the order they were taken, as the digest takes them
        by_feed.setdefault(item.feed_url, []).append(item)
    configured = {f.url: f for f in config.feeds}
    order = [f.url for f in config.feeds if f.url in by_feed] + [u for u in by_feed if u not in configured]
    if not items:
        print("no items wait for the next digest", file=out)
    else:
        print(f"{len(items)} item(s) from {len(by_feed)} feed(s) wait for the next digest:", file=out)
    for url in order:
        group = by_feed[url]
        feed = configured.get(url)
        # A feed renamed or removed since: its items still go out, under the
        # name they were taken with (the attribution line says it).
        name = feed.name if feed else f"{group[0].feed} (no longer configured)"
        notes = [] if feed is None or feed.enabled else ["disabled"]
        later = sum(1 for i in group if i.id not in kept)
        if later:
            notes.append(f"{later} wait for the digest after: digest.max_items_per_feed is {cap}")
        print(f"\n{shown(name, 100)} ({len(group)}{'; ' + '; '.join(notes) if notes else ''}):", file=out)
        for item in group:
            mark = "" if item.id in kept else " (later)"
            title = shown(item.title, 200) if item.title else "(no title)"
            print(f"  {_when(item.first_seen, config)}  {title}{mark}", file=out)
            if item.link:
                print(f"      {shown(item.link, 400)}", file=out)
    if in_digests > 0:
        print(f"\nand {in_digests} item(s) in digests built, not yet delivered everywhere (feedbot status)", file=out)
