"""Editing config.toml the way a careful person would by hand.

``feedbot add``, ``remove`` and ``opml import`` change ``[[feeds]]`` tables
and nothing else.  tomlkit parses the file (keeping every comment and blank
line), renders new tables (its escaping, not ours) and says where each
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
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import AoT, Comment, Table

from bot.config import Config, parse_config
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

    def text(self) -> str:
        t = tomlkit.table()
        for line in self.comments:
            t.add(tomlkit.comment(" ".join(line.split())))
        t.add("name", self.name)
        t.add("url", self.url)
        if self.handle:
            t.add("handle", self.handle)
        if self.body is not None:
            t.add("body", self.body)
        if not self.enabled:
            t.add("enabled", False)
        return "[[feeds]]\n" + t.as_string()


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

    def _tables(self) -> list[tuple[dict[str, Any], int, int]]:
        """Each ``[[feeds]]`` table's values and the span of its own text."""
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
        for table in feeds:
            spans.append((table.unwrap(), *self._span(table)))
        return spans

    def _span(self, table: Table) -> tuple[int, int]:
        body = table.value.as_string()
        at = self.text.find(body)
        if not body or at < 0 or self.text.find(body, at + 1) >= 0:
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
        return [values for values, _, _ in self._tables()]

    def add_feeds(self, new: Sequence[NewFeed]) -> None:
        """Insert ``new`` after the last ``[[feeds]]`` table (or at the end
        of the file if there is none), each after a blank line."""
        if not new:
            return
        tables = self._tables()
        text = "".join("\n" + f.text() for f in new)
        if tables:
            at = tables[-1][2]
            rest = self.text[at:]
            if rest and not rest.startswith("\n"):
                text += "\n"  # keep the next thing apart
        else:
            at = len(self.text)
            if self.text and not self.text.endswith("\n"):
                text = "\n" + text
        self.text = self.text[:at] + text + self.text[at:]

    def remove_feed(self, name: str) -> dict[str, Any]:
        """Remove the feed called ``name`` with the blank line before its
        header (the inverse of ``add_feeds``); return its values."""
        for values, start, end in self._tables():
            if values.get("name") == name:
                if self.text[:start].endswith("\n\n"):
                    start -= 1
                self.text = self.text[:start] + self.text[end:]
                return values
        raise KeyError(name)

    def validate(self, environ: Mapping[str, str] | None = None) -> Config:
        """The edited text as ``check`` reads it; ConfigError if invalid."""
        env = os.environ if environ is None else environ
        return parse_config(self.text, self.path, env, need_secrets=False)


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
