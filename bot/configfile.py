"""Editing config.toml the way a careful person would by hand.

``feedbot add``, ``remove`` and ``opml import`` change ``[[feeds]]`` tables
and nothing else, but for ``add --digest``, which appends the new feed's
name to a ``[[digests]]`` table's ``feeds`` (``add_to_digest``).  tomlkit
parses the file (keeping every comment and blank line), renders new tables (its escaping, not ours) and says where each
table's text is; the edit itself is a splice of the original text, so every
byte outside the edited tables stays as it was.  A table's own text is its
header line through its last key, plus comment lines that follow that key
without a blank line between (its commented-out options); what comes after
a blank line (the next section's banner, an example) belongs to what
follows and is never moved or dropped.

An edit is validated as ``check`` does before anything is written; the file
is replaced atomically, under a lock against a second editor, and the
previous version is kept as ``config.toml.bak``.  A running service picks
the new file up through its live reload (bot/service.py).

Linear in the file (issue 24: one ``remove`` in a file of 10,000 feeds took
4.6 s): the tables are found by their header lines, and the edit is kept
only if ``tomllib`` reads the edited file as exactly the original with
that table removed (or those appended); otherwise (a header line inside a
multi-line string, an inline array of feeds) the edit is redone through
tomlkit's reading of the whole file, which is exact and some ten times
slower.  ``tomllib``'s reading of a text is made once and shared with
``validate``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import tempfile
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import AoT, Array, Comment, Table

from bot.config import Config, config_from_data
from bot.configtext import toml_problem
from bot.errors import ConfigError
from bot.keys import canonical_url


@dataclass(frozen=True)
class NewFeed:
    """A ``[[feeds]]`` table to write: only the keys that differ from the defaults."""

    name: str
    url: str
    handle: str | None = None
    body: str | None = None  # None: the default ("auto")
    enabled: bool = True
    comments: tuple[str, ...] = ()  # lines written under the table header
    tags: tuple[str, ...] = ()  # what [[digests]] tables select it by; an import's folders

    def values(self) -> dict[str, Any]:
        """The table as ``tomllib`` reads it back."""
        found: dict[str, Any] = {"name": self.name, "url": self.url}
        if self.handle:
            found["handle"] = self.handle
        if self.body is not None:
            found["body"] = self.body
        if self.tags:
            found["tags"] = list(self.tags)
        if not self.enabled:
            found["enabled"] = False
        return found

    def text(self) -> str:
        """What tomlkit renders for the table, line by line (a tomlkit table
        per feed cost 0.13 ms: a tenth of a second per 1,000 outlines)."""
        lines = ["[[feeds]]\n"]
        lines += (tomlkit.comment(" ".join(line.split())).as_string() for line in self.comments)
        for key, value in self.values().items():
            lines.append(f"{key} = {_toml_value(value)}\n")
        return "".join(lines)


_PLAIN = re.compile(r'[^"\\\x00-\x1f\x7f]*')  # a string tomlkit writes as it is, between quotes
# A [[feeds]] header line, and any table header line (where a table's text ends).
_FEEDS_HEADER = re.compile(r"^[ \t]*\[\[[ \t]*feeds[ \t]*\]\][ \t]*(?:#[^\n]*)?$", re.M)
_DIGESTS_HEADER = re.compile(r"^[ \t]*\[\[[ \t]*digests[ \t]*\]\][ \t]*(?:#[^\n]*)?$", re.M)
_GLOB = re.compile(r"[*?[]")
_ANY_HEADER = re.compile(r"^[ \t]*\[", re.M)
# A feed's own ``enabled = true|false`` line, and the comment after it.
_ENABLED = re.compile(r"^[ \t]*enabled[ \t]*=[ \t]*(?:true|false)(?P<comment>[ \t]*#[^\n]*)?[ \t]*\r?\n?$")


def _toml_value(value: Any) -> str:
    if isinstance(value, str) and _PLAIN.fullmatch(value):
        return f'"{value}"'
    if isinstance(value, list) and value and all(isinstance(v, str) and _PLAIN.fullmatch(v) for v in value):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"  # as tomlkit writes it (an import's tags)
    return str(tomlkit.item(value).as_string())


def literal_pattern(name: str) -> str:
    """A ``[[digests]]`` ``feeds`` pattern that matches ``name`` alone
    (fnmatch's ``*``, ``?`` and ``[`` each written as a class: "a*" → "a[*]")."""
    return _GLOB.sub(lambda m: f"[{m.group()}]", name)


def same_feed_url(url: str) -> str:
    """Feed identity for duplicates: http and https, a default port, the
    host's case and tracking parameters make no difference."""
    return canonical_url(url).split("://", 1)[-1]


class ConfigFile:
    """The text of one config file and the edits made to it in memory."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.original = text
        self.text = text
        self._read: tuple[str, dict[str, Any]] | None = None  # tomllib's reading of a text

    @classmethod
    def read(cls, path: Path) -> ConfigFile:
        try:
            return cls(path, path.read_bytes().decode("utf-8"))
        except FileNotFoundError:
            raise ConfigError([f"{path}: no such file"], str(path)) from None
        except UnicodeDecodeError:
            raise ConfigError([f"{path}: not UTF-8 text"], str(path)) from None
        except OSError as exc:
            raise ConfigError([f"{path}: cannot be read ({exc.strerror})"], str(path)) from None

    @property
    def changed(self) -> bool:
        return self.text != self.original

    def _problem(self, message: str) -> ConfigError:
        return ConfigError([f"{self.path}: {message}"], str(self.path))

    def _data(self, text: str | None = None) -> dict[str, Any]:
        """``tomllib``'s reading of ``text`` (the current text), made once."""
        text = self.text if text is None else text
        if self._read is None or self._read[0] is not text:
            try:
                self._read = (text, tomllib.loads(text))
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError([toml_problem(self.path, text, exc)], str(self.path)) from None
        return self._read[1]

    def _feed_values(self) -> list[dict[str, Any]]:
        feeds = self._data().get("feeds", [])
        if not isinstance(feeds, list) or not all(isinstance(t, dict) for t in feeds):
            raise self._problem("feeds is not written as [[feeds]] tables; edit it by hand")
        return feeds

    def _found_spans(self) -> list[tuple[int, int]] | None:
        """Each ``[[feeds]]`` table's own text, found by its header line;
        None if the header lines are not one per table.  Trusted only
        once the edit made with them reads back as meant (``_checked``)."""
        return self._spans(_FEEDS_HEADER, len(self._feed_values()))

    def _spans(self, header: re.Pattern[str], count: int) -> list[tuple[int, int]] | None:
        text = self.text
        starts = [m.start() for m in header.finditer(text)]
        if len(starts) != count:
            return None
        spans = []
        for start in starts:
            line_end = text.find("\n", start)
            if line_end < 0:
                spans.append((start, len(text)))
                continue
            following = _ANY_HEADER.search(text, line_end + 1)
            spans.append((start, _own_end(text, line_end + 1, following.start() if following else len(text))))
        return spans

    def _checked(self, edited: str, expected_feeds: list[dict[str, Any]]) -> bool:
        """Whether ``edited`` reads as the current text with ``expected_feeds``
        for its feeds, and nothing else changed."""
        try:
            after = tomllib.loads(edited)
        except tomllib.TOMLDecodeError:
            return False
        before = {k: v for k, v in self._data().items() if k != "feeds"}
        if {k: v for k, v in after.items() if k != "feeds"} != before or after.get("feeds", []) != expected_feeds:
            return False
        self._read = (edited, after)
        return True

    def _tables(self) -> list[tuple[dict[str, Any], int, int]]:
        """Each ``[[feeds]]`` table's values and the span of its own text,
        from tomlkit's reading of the whole file (exact, and slow)."""
        try:
            doc = tomlkit.parse(self.text)
        except (TOMLKitError, ValueError) as exc:
            raise self._problem(f"invalid TOML: {exc}") from None
        if tomlkit.dumps(doc) != self.text:  # never expected; then we would not splice
            raise self._problem("tomlkit does not read this file back unchanged; edit it by hand")
        feeds = doc.get("feeds")
        if feeds is None:
            return []
        if not isinstance(feeds, AoT):
            raise self._problem("feeds is not written as [[feeds]] tables; edit it by hand")
        spans = []
        cursor = 0
        for table in feeds:
            start, end = self._span(table, cursor)
            spans.append((table.unwrap(), start, end))
            cursor = end
        return spans

    def _span(self, table: Table, cursor: int) -> tuple[int, int]:
        """The table's own text, searched from ``cursor`` (the end of the
        table before it: tables are in file order, and a search from the
        start for each made ``remove`` quadratic)."""
        body = table.value.as_string()
        at = self.text.find(body, cursor)
        if not body or at < 0:
            raise self._problem("a [[feeds]] table cannot be told apart from another; edit it by hand")
        start = self.text.rfind("\n", 0, at - 1) + 1  # the header line
        items = table.value.body
        last = max((i for i, (key, _) in enumerate(items) if key is not None), default=-1)
        own = len(body) - sum(len(item.as_string()) for _, item in items[last + 1 :])
        for _, item in items[last + 1 :]:  # its commented-out options
            if not isinstance(item, Comment):
                break
            own += len(item.as_string())
        return start, at + own

    def feeds(self) -> list[dict[str, Any]]:
        return self._feed_values()

    def feed_comments(self) -> list[tuple[str, list[str]]]:
        """Each feed's name and the comment lines of its table's own text
        (where ``opml import`` notes the folders; ``export`` reads them)."""
        values = self._feed_values()
        spans = self._found_spans()
        if spans is None:  # a header line inside a string: tomlkit's exact reading
            spans = [(start, end) for _, start, end in self._tables()]
        found = []
        for table, (start, end) in zip(values, spans, strict=True):
            lines = self.text[start:end].splitlines()[1:]  # not the header's own comment
            comments = [line.strip() for line in lines if line.lstrip().startswith("#")]
            found.append((str(table.get("name", "")), comments))
        return found

    def add_feeds(self, new: Sequence[NewFeed]) -> None:
        """Insert ``new`` after the last ``[[feeds]]`` table (or at the end
        of the file if there is none), each after a blank line."""
        if not new:
            return
        expected = [*self._feed_values(), *(f.values() for f in new)]
        spans = self._found_spans()
        if spans is not None:
            edited = self._inserted(new, spans[-1][1] if spans else None)
            if self._checked(edited, expected):
                self.text = edited
                return
        tables = self._tables()
        self.text = self._inserted(new, tables[-1][2] if tables else None)

    def _inserted(self, new: Sequence[NewFeed], after: int | None) -> str:
        text = "".join("\n" + f.text() for f in new)
        if after is not None:
            at = after
            rest = self.text[at:]
            if rest and not rest.startswith("\n"):
                text += "\n"  # keep the next thing apart
        else:
            at = len(self.text)
            if self.text and not self.text.endswith("\n"):
                text = "\n" + text
        return self.text[:at] + text + self.text[at:]

    def remove_feed(self, name: str) -> dict[str, Any]:
        """Remove the feed called ``name`` with the blank line before its
        header (the inverse of ``add_feeds``); return its values."""
        values = self._feed_values()
        index = next((i for i, v in enumerate(values) if v.get("name") == name), None)
        if index is None:
            raise KeyError(name)
        spans = self._found_spans()
        if spans is not None:
            edited = self._cut(*spans[index])
            if self._checked(edited, values[:index] + values[index + 1 :]):
                self.text = edited
                return values[index]
        for found, start, end in self._tables():
            if found.get("name") == name:
                self.text = self._cut(start, end)
                return found
        raise KeyError(name)

    def set_enabled(self, name: str, enabled: bool) -> bool:
        """Switch the feed called ``name`` on or off; False if it already was.

        ``disable`` writes ``enabled = false`` after the table's last key
        line (or turns an ``enabled = true`` line to false, its comment
        kept); ``enable`` removes a bare ``enabled = false`` line, so that
        disable then enable gives back the file byte for byte, and turns
        one that carries a comment to true rather than lose the comment."""
        values = self._feed_values()
        index = next((i for i, v in enumerate(values) if v.get("name") == name), None)
        if index is None:
            raise KeyError(name)
        if values[index].get("enabled", True) is enabled:
            return False
        spans = self._found_spans()
        if spans is not None:
            edited, table = self._switched(*spans[index], enabled, values[index])
            expected = [*values[:index], table, *values[index + 1 :]]
            if edited is not None and self._checked(edited, expected):
                self.text = edited
                return True
        self.text = self._switched_by_tomlkit(index, enabled)
        return True

    def _switched(
        self, start: int, end: int, enabled: bool, values: dict[str, Any]
    ) -> tuple[str | None, dict[str, Any]]:
        """The text with the table at ``start:end`` switched, and the table
        as ``tomllib`` should read it then (None: not an edit this can make
        by lines, such as ``enabled`` inside an inline table)."""
        own = self.text[start:end]
        table = dict(values)
        lines = own.splitlines(keepends=True)
        found = [i for i, line in enumerate(lines) if _ENABLED.match(line)]
        if len(found) > 1:
            return None, table
        if found:
            line = lines[found[0]]
            comment = _ENABLED.match(line).group("comment")  # type: ignore[union-attr]
            if enabled and not comment:
                del lines[found[0]]
                table.pop("enabled", None)
            else:
                indent = line[: len(line) - len(line.lstrip())]
                newline = "\n" if line.endswith("\n") else ""
                lines[found[0]] = f"{indent}enabled = {'true' if enabled else 'false'}{comment or ''}{newline}"
                table["enabled"] = enabled
        elif enabled:
            return None, table  # enabled by default, and yet read as disabled: not a line of its own
        else:
            keys = [i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")]
            last = keys[-1]  # the header, at least
            if not lines[last].endswith("\n"):
                lines[last] += "\n"
            lines.insert(last + 1, "enabled = false\n")
            table["enabled"] = False
        edited = "".join(lines)
        if not own.endswith("\n") and edited.endswith("\n"):
            edited = edited[:-1]  # the end of the file, kept as it was
        return self.text[:start] + edited + self.text[end:], table

    def _switched_by_tomlkit(self, index: int, enabled: bool) -> str:
        """The same edit through tomlkit's reading of the whole file (a
        ``[[feeds]]`` header inside a string, ``enabled`` in an odd form)."""
        try:
            doc = tomlkit.parse(self.text)
        except (TOMLKitError, ValueError) as exc:
            raise self._problem(f"invalid TOML: {exc}") from None
        feeds = doc.get("feeds")
        if not isinstance(feeds, AoT):
            raise self._problem("feeds is not written as [[feeds]] tables; edit it by hand")
        table = feeds[index]
        if enabled:
            if "enabled" in table:
                del table["enabled"]
        else:
            table["enabled"] = False
        return tomlkit.dumps(doc)

    def digest_tables(self) -> list[dict[str, Any]]:
        """The ``[[digests]]`` tables as ``tomllib`` reads them."""
        digests = self._data().get("digests", [])
        if not isinstance(digests, list) or not all(isinstance(t, dict) for t in digests):
            raise self._problem("digests is not written as [[digests]] tables; edit it by hand")
        return digests

    def add_to_digest(self, digest: str, feed: str) -> list[str] | None:
        """Make the ``[[digests]]`` table named ``digest`` take the feed named
        ``feed``: its name (``literal_pattern``) appended to the table's
        ``feeds`` array, or, for a table that selects by ``tags`` only, a
        ``feeds = ["<name>"]`` line written after its last key line (its
        tags kept).  None for a table with neither key: it takes every feed
        already, and is left as it is.  Returns the table's new ``feeds``.

        Only the table's own text changes: it is edited alone through
        tomlkit and spliced back, and kept only if ``tomllib`` reads the
        file as the original with that one change; else the edit is made
        through tomlkit's reading of the whole file."""
        data = self._data()
        tables = self.digest_tables()
        index = next((i for i, t in enumerate(tables) if t.get("name") == digest), None)
        if index is None:
            raise KeyError(digest)
        table = tables[index]
        if "feeds" not in table and "tags" not in table:
            return None
        before = table.get("feeds", [])
        patterns = [*([before] if isinstance(before, str) else before), literal_pattern(feed)]
        expected = {**data, "digests": [*tables[:index], {**table, "feeds": patterns}, *tables[index + 1 :]]}
        spans = self._spans(_DIGESTS_HEADER, len(tables))
        if spans is not None:
            start, end = spans[index]
            own = _with_pattern(self.text[start:end], literal_pattern(feed))
            if own is not None:
                edited = self.text[:start] + own + self.text[end:]
                if _reads_as(edited, expected):
                    self.text = edited
                    return patterns
        try:
            doc = tomlkit.parse(self.text)
        except (TOMLKitError, ValueError) as exc:
            raise self._problem(f"invalid TOML: {exc}") from None
        found = doc.get("digests")
        if not isinstance(found, AoT):
            raise self._problem("digests is not written as [[digests]] tables; edit it by hand")
        _set_pattern(found[index], literal_pattern(feed))
        edited = tomlkit.dumps(doc)
        if not _reads_as(edited, expected):
            raise self._problem(f"the [[digests]] table {digest!r} cannot be edited safely; edit it by hand")
        self.text = edited
        return patterns

    def _cut(self, start: int, end: int) -> str:
        if self.text[:start].endswith("\n\n"):
            start -= 1
        return self.text[:start] + self.text[end:]

    def validate(self, environ: Mapping[str, str] | None = None) -> Config:
        """The edited text as ``check`` reads it; ConfigError if invalid."""
        env = os.environ if environ is None else environ
        # Lines only for the file as it is on disk: in an edited text they
        # would point the operator at lines the file does not have yet.
        text = None if self.changed else self.text
        return config_from_data(self._data(), self.path, env, need_secrets=False, text=text)


def _reads_as(text: str, expected: dict[str, Any]) -> bool:
    try:
        return tomllib.loads(text) == expected
    except tomllib.TOMLDecodeError:
        return False


def _set_pattern(table: Any, pattern: str) -> None:
    """``pattern`` appended to a tomlkit table's ``feeds`` (made if missing)."""
    found = table.get("feeds")
    if isinstance(found, Array):
        found.append(pattern)
    elif found is None:
        table["feeds"] = [pattern]
    else:
        table["feeds"] = [str(found), pattern]


def _with_pattern(own: str, pattern: str) -> str | None:
    """A ``[[digests]]`` table's own text with ``pattern`` added to its
    ``feeds``: an array appended to by tomlkit (its layout and comments
    kept), or a new ``feeds`` line after the last key line (not after the
    table's commented-out options, as tomlkit would put it); None if the
    text does not read alone."""
    try:
        doc = tomlkit.parse(own)
        table = doc["digests"][0]
    except (TOMLKitError, ValueError, KeyError, IndexError):
        return None
    if "feeds" in table:
        _set_pattern(table, pattern)
        return tomlkit.dumps(doc)
    lines = own.splitlines(keepends=True)
    keys = [i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")]
    last = keys[-1]  # the header, at least
    if not lines[last].endswith("\n"):
        lines[last] += "\n"
    lines.insert(last + 1, f"feeds = {_toml_value([pattern])}\n")
    edited = "".join(lines)
    if not own.endswith("\n") and edited.endswith("\n"):
        edited = edited[:-1]
    return edited


def _own_end(text: str, at: int, stop: int) -> int:
    """Where a table's own text ends, its header line ending at ``at`` and
    the next table's header at ``stop``: after its last key line, and the
    comment lines right after that (no blank line between), as tomlkit
    reads a table (see the module's docstring)."""
    end = at
    in_comments = True  # comment lines right after the header (a table with no keys) are its own too
    pos = at
    while pos < stop:
        nl = text.find("\n", pos, stop)
        line_end = stop if nl < 0 else nl + 1
        line = text[pos:line_end].strip()
        if not line:
            in_comments = False
        elif line.startswith("#"):
            if in_comments:
                end = line_end
        else:
            end, in_comments = line_end, True
        pos = line_end
    return end


# -- writing --------------------------------------------------------------------


@contextlib.contextmanager
def locked(path: Path) -> Iterator[ConfigFile]:
    """The file, read under an exclusive lock held until the block ends.

    Two ``feedbot add`` at once would otherwise each write its own edit of
    the same original, and one feed would be lost.  The lock is on the file
    itself; if it was replaced while we waited, the new one is locked."""
    while True:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise ConfigError([f"{path}: no such file"], str(path)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                yield ConfigFile.read(path)
                return
        finally:
            os.close(fd)


def write(file: ConfigFile) -> Path:
    """Replace the file with the edited text, atomically: a reader (the
    service's live reload) sees the old file or the new one, never half.

    The previous version is kept next to it as ``<name>.bak``; returns its
    path.  Mode and, where allowed, owner are kept."""
    path = file.path
    st = path.stat()
    saved = path.with_name(path.name + ".bak")
    shutil.copy2(path, saved)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(file.text.encode("utf-8"))
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, st.st_mode & 0o7777)
        with contextlib.suppress(PermissionError):
            os.chown(tmp, st.st_uid, st.st_gid)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return saved
