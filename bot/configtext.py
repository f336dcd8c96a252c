"""Where in config.toml a problem is, and what a TOML syntax error means.

``tomllib`` returns plain dicts with no positions, and ``check`` must say
which line to edit (issue 25).  tomlkit keeps positions only implicitly,
and reading a file of 10,000 feeds through it takes seconds; the file is
already known to be valid TOML here (tomllib read it), so a scan of its
lines for table headers and ``key =`` lines finds the same tables tomllib
saw, in the same order.  The scan runs only when there is a problem to
place: a valid config never pays for it.

The scan is a hint, not a parser: a key it cannot place (one inside an
inline table, say) is shown at the line of the nearest enclosing table or
key it did place, and with no line at all if none.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from pathlib import Path
from typing import Any

_BARE = r"[A-Za-z0-9_-]+"
_QUOTED = r'"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\''
_KEY = rf"(?:{_BARE}|{_QUOTED})(?:\s*\.\s*(?:{_BARE}|{_QUOTED}))*"
_ARRAY_HEADER = re.compile(rf"\s*\[\[\s*({_KEY})\s*\]\]")
_TABLE_HEADER = re.compile(rf"\s*\[\s*({_KEY})\s*\]")
_KEY_LINE = re.compile(rf"\s*({_KEY})\s*=")
_SIMPLE = re.compile(rf"{_BARE}(?:\s*\.\s*{_BARE})*")


def _parts(key: str) -> list[str]:
    """A dotted TOML key's parts, quotes and escapes undone."""
    if _SIMPLE.fullmatch(key):
        return [p.strip() for p in key.split(".")]
    # Quoted parts: tomllib's own reading of them, not a second unescaper.
    try:
        node: Any = tomllib.loads(f"{key} = 0")
    except tomllib.TOMLDecodeError:  # not a key after all: placed at its table
        return []
    parts = []
    while isinstance(node, dict):
        name = next(iter(node))
        parts.append(name)
        node = node[name]
    return parts


def _scan_value(s: str, depth: int, in_string: str | None) -> tuple[int, str | None]:
    """The brackets still open, and the multi-line string still open, after
    the value text ``s`` (strings and comments skipped)."""
    i = 0
    while i < len(s):
        if in_string is not None:
            end = s.find(in_string, i)
            if end < 0:
                return depth, in_string
            i, in_string = end + 3, None
            continue
        c = s[i]
        if s.startswith('"""', i) or s.startswith("'''", i):
            in_string, i = s[i : i + 3], i + 3
        elif c == '"':
            i += 1
            while i < len(s) and s[i] != '"':
                i += 2 if s[i] == "\\" else 1
            i += 1
        elif c == "'":
            end = s.find("'", i + 1)
            i = len(s) if end < 0 else end + 1
        elif c == "#":
            break
        else:
            depth += (c in "[{") - (c in "]}")
            i += 1
    return depth, in_string


class Places:
    """The line of each table and key of a config text, by key path
    (``feeds[3]``, ``feeds[3].url``, ``poll.timeout``), 1-based."""

    def __init__(self, text: str) -> None:
        self.lines: dict[str, int] = {}
        arrays: dict[str, int] = {}  # an array of tables' path: tables seen so far
        table = ""  # the path of the table the lines below belong to
        # Inside a value that goes on over lines (a multi-line string or
        # array): "  [\"x\"]," there is an array's element, not a header.
        depth, in_string = 0, None
        for number, line in enumerate(text.split("\n"), 1):  # tomllib's lines: not splitlines' \u2028
            if in_string is not None or depth > 0:
                depth, in_string = _scan_value(line, depth, in_string)
                continue
            if header := _ARRAY_HEADER.match(line):
                array = self._resolve(_parts(header.group(1)), arrays)
                arrays[array] = arrays.get(array, 0) + 1
                table = f"{array}[{arrays[array] - 1}]"
                self.lines.setdefault(array, number)  # "feed: unknown key" is at its first [[feed]]
                self.lines.setdefault(table, number)
                continue
            if header := _TABLE_HEADER.match(line):
                table = self._resolve(_parts(header.group(1)), arrays)
                self.lines.setdefault(table, number)
                continue
            if key := _KEY_LINE.match(line):
                path = table
                for part in _parts(key.group(1)):
                    path = f"{path}.{part}" if path else part
                    self.lines.setdefault(path, number)
                depth, in_string = _scan_value(line[key.end() :], 0, None)

    @staticmethod
    def _resolve(parts: list[str], arrays: dict[str, int]) -> str:
        """``[feeds.x]`` under the third ``[[feeds]]`` is ``feeds[2].x``."""
        path = ""
        for i, part in enumerate(parts):
            path = f"{path}.{part}" if path else part
            if path in arrays and i < len(parts) - 1:
                path = f"{path}[{arrays[path] - 1}]"
        return path

    def line(self, key: str) -> int | None:
        """The line of ``key``, or of the nearest enclosing table or key found."""
        while key:
            if key in self.lines:
                return self.lines[key]
            cut = max(key.rfind("."), key.rfind("["))
            key = key[:cut] if cut > 0 else ""
        return None


# -- TOML syntax errors ---------------------------------------------------------

_AT = re.compile(r"\(at line (\d+), column (\d+)\)")
_STRING_AT_END = re.compile(r"Unterminated string|Expected (\"'\"|'\"')")


def _cause(message: str, line: str, column: int) -> str | None:
    """tomllib's message in plain words, with what to do, for the mistakes
    people make by hand; None for the rest (tomllib's own words stand)."""
    rest = line[column - 1 :].lstrip() if column else ""
    if message.startswith("Illegal character '\\n'") or message.startswith("Unterminated string"):
        return 'a string is not closed on this line: add its closing quote (text over several lines needs """)'
    if message.startswith('Expected "\'"') or message.startswith("Expected '\"'"):
        return "a string is not closed: add its closing quote"
    if message.startswith("Cannot overwrite a value"):
        return (
            "this key already has a value in this table: remove one of the two; if it starts another entry, "
            "put a [[feeds]] (or [[webhooks]] …) line before it"
        )
    if declared := re.match(r"Cannot declare \((.*)\) twice", message):
        name = ".".join(re.findall(r"'((?:[^'\\]|\\.)*)'", declared.group(1))) or declared.group(1)
        return (
            f"[{name}] is declared twice (or was set as a key before): keep one [{name}] and put all its keys "
            f"under it; for a list of entries write [[{name}]] before each"
        )
    if message.startswith("Expected '=' after a key"):
        return 'a key must be followed by = and a value (name = "NHK"); a key with spaces must be quoted'
    if message.startswith("Invalid value") and "end of document" in message:
        return "the file ends in the middle of a value: an array [ … ] or inline table { … } above is not closed"
    if message.startswith("Invalid value"):
        if not rest or rest.startswith("#"):
            return 'the value after = is missing (write name = "NHK", or remove the line)'
        if rest[0] in "“”‘’「」":
            return 'typographic quotes are not quotes in TOML: use straight double quotes (name = "NHK")'
        if rest.split()[0].rstrip(",]}") in ("True", "False", "TRUE", "FALSE", "yes", "no", "on", "off"):
            return "true and false are written in lower case, without quotes"
        return 'text must be in double quotes (name = "NHK"); true and false are written in lower case'
    if message.startswith("Unescaped '\\' in a string"):
        return "a backslash starts an escape in \"…\": write \\\\, or use single quotes ('C:\\dir')"
    if message.startswith("Unclosed array"):
        return "an array [ … ] is not closed before this line: add its ]"
    if message.startswith("Expected ']' at the end of a table declaration") or message.startswith(
        "Expected ']]' at the end of an array declaration"
    ):
        return "a table header is missing its closing ] (write [poll] or [[feeds]])"
    if message.startswith("Invalid initial character for a key part") and "{" in line:
        return "an inline table { … } must be on one line, with no comma after its last key"
    if message.startswith("Invalid initial character for a key part"):
        return 'a key may contain only letters, digits, - and _: quote any other ("my key" = 1)'
    if message.startswith("Expected newline or end of document after a statement") and re.search(
        r"=\s*\d+\s*[smhdw]\b", line
    ):
        return 'a duration is text: put it in quotes (timeout = "20s")'
    if message.startswith("Expected newline or end of document after a statement"):
        return "something follows the value on this line: one key = value per line; comments start with #"
    return None


def _unclosed_string(lines: list[str]) -> tuple[int, str] | None:
    """The line where a string that never ends begins, and its quote:
    tomllib notices only at the end of the file, which is no place to look."""
    opened_at, in_string = 0, None
    for number, line in enumerate(lines, 1):
        i = 0
        while i < len(line):
            if in_string is not None:
                end = line.find(in_string, i)
                if end < 0:
                    break
                i, in_string = end + 3, None
            elif line.startswith('"""', i) or line.startswith("'''", i):
                in_string, opened_at, i = line[i : i + 3], number, i + 3
            elif line[i] in "\"'":
                quote, end = line[i], i + 1
                while end < len(line) and line[end] != quote:
                    end += 2 if quote == '"' and line[end] == "\\" else 1
                if end >= len(line):
                    return number, quote
                i = end + 1
            elif line[i] == "#":
                break
            else:
                i += 1
    return (opened_at, in_string) if in_string is not None else None


def _width(text: str) -> int:
    """Columns ``text`` takes in a terminal: the caret must land under the
    character even after Japanese text."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def toml_problem(path: Path | str, text: str, exc: tomllib.TOMLDecodeError) -> str:
    """A problem line for ``check``: where, tomllib's message, the line
    itself with a caret, and the likely cause in plain words."""
    message = str(exc)
    found = _AT.search(message)
    lines = [line.removesuffix("\r") for line in text.split("\n")]  # numbered as tomllib numbers them
    unclosed = _unclosed_string(lines) if found is None and _STRING_AT_END.match(message) else None
    if unclosed is not None:
        number, column = unclosed[0], 0
        quote = unclosed[1]
    elif found is None:  # "at end of document": the last line that says anything
        number = next((i for i in range(len(lines), 0, -1) if lines[i - 1].strip()), 0)
        column = 0
    else:
        number, column = int(found.group(1)), int(found.group(2))
    shown = lines[number - 1] if 0 < number <= len(lines) else ""
    # Shown one character a column, as it is read: a tab as a space (the
    # caret stays under its character), an escape sequence not run.
    shown = "".join(" " if c == "\t" else c if c.isprintable() else "\ufffd" for c in shown)
    where = f"{path}:{number}: " if number else f"{path}: "
    out = [f"{where}invalid TOML: {message}"]
    if shown:
        out.append(f"    {number} | {shown}")
        if column:
            out.append(f"    {' ' * len(str(number))} | {' ' * _width(shown[: column - 1])}^")
    if unclosed is not None and len(quote) == 3:
        cause: str | None = f"the {quote} string that starts on this line is never closed: add the closing {quote}"
    elif unclosed is not None:
        cause = f"a string is not closed on this line: add its closing {quote}"
    else:
        cause = _cause(message, shown, column)
    if cause is not None:
        out.append(f"    {cause}")
    return "\n".join(out)
