"""Feed health (pure): when a feed is polled next, and when to raise a flag.

A failing feed backs off exponentially (its interval doubled per failure in
a row, capped) and is never switched off: it is tried again after the wait,
for ever, and its first success resets it.  The server's own word counts
for more than ours when it asks for longer: a 429/503 ``Retry-After``, a
``Cache-Control: max-age`` or the RSS ``<ttl>`` (minutes), each capped so
that a typo on the server cannot silence a feed for weeks.  A feed failing
for more than a day is worth a warning, once a day.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache

BACKOFF_CAP = timedelta(hours=6)
HINT_CAP = timedelta(days=1)
WARN_AFTER = timedelta(days=1)


def after_failure(interval: timedelta, failures: int, retry_after: float | None) -> timedelta:
    """The wait before the next try, after ``failures`` failures in a row."""
    wait: timedelta = min(interval * 2 ** min(max(failures - 1, 0), 16), max(BACKOFF_CAP, interval))
    if retry_after is not None:
        wait = max(wait, _capped(retry_after))
    return wait


def after_success(interval: timedelta, headers: Mapping[str, str], ttl_minutes: int | None) -> timedelta | None:
    """A wait longer than the feed's interval, if the server asked for one."""
    hints = [_capped(s) for s in (max_age(headers),) if s is not None]
    if ttl_minutes is not None:
        hints.append(_capped(ttl_minutes * 60.0))
    longest = max(hints, default=timedelta(0))
    return longest if longest > interval else None


def _capped(seconds: float) -> timedelta:
    """A server's number of seconds as a wait in [0, HINT_CAP]: capped
    before it becomes a timedelta, which overflows past 10⁹ days (and
    ``inf`` or ``1e300`` are numbers a server can send)."""
    if seconds != seconds:  # NaN
        return timedelta(0)
    return timedelta(seconds=min(max(seconds, 0.0), HINT_CAP.total_seconds()))


_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)", re.I)


def max_age(headers: Mapping[str, str]) -> int | None:
    value = headers.get("cache-control")  # feedbot's responses: names lower-cased already
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == "cache-control"), None)
    return _max_age(value[:1000]) if value else None


@lru_cache(maxsize=1024)  # a feed sends the same Cache-Control on every poll
def _max_age(value: str) -> int | None:
    m = _MAX_AGE.search(value)
    return bounded_int(m.group(1)) if m else None


def bounded_int(digits: str) -> int:
    """A server's run of digits as an int, at most 10¹²: Python refuses to
    convert more than 4,300 digits, and no wait needs more than twelve."""
    return int(digits) if len(digits) <= 12 else 10**12


def should_warn(now: datetime, failing_since: datetime | None, warned_at: datetime | None) -> bool:
    """Failing for more than a day, and not warned about in the last day."""
    if failing_since is None or now - failing_since < WARN_AFTER:
        return False
    return warned_at is None or now - warned_at >= WARN_AFTER


def retry_after_seconds(value: str, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date), at most a day;
    None when it says nothing usable."""
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return cap_hint(seconds)


def cap_hint(seconds: float) -> float | None:
    """A server's wait, in [0, a day]; None for NaN."""
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), HINT_CAP.total_seconds())
