"""The walk of config.toml's data: the ``Reader`` each table family's
reading function takes, which converts values and collects every problem
with its key path (shown with its line and the entry's name)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from bot.config.values import _did_you_mean, _shown
from bot.configtext import Places
from bot.secrets import Secret

T = TypeVar("T")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Reader:
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

    # -- secrets -------------------------------------------------------------

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
