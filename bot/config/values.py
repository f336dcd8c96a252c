"""The value checkers of config.toml: each converts one TOML value or
raises ValueError/TypeError with a message for the user.

Each message shows the value it refuses (``_shown``): "must be an integer"
alone leaves the operator to find which of a hundred lines said what.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection
from dataclasses import fields
from datetime import time, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _keys(record: type) -> set[str]:
    """A section's keys are its record's fields: one list, not two to keep in step."""
    return {f.name for f in fields(record)}


def parse_duration(text: str) -> timedelta:
    """``"90s"``, ``"15m"``, ``"2h"``, ``"7d"``, ``"1w"`` → timedelta."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f'{text!r} is not a duration like "90s", "15m", "2h" or "7d"')
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


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
