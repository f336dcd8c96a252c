"""Secret values (webhook URLs) that cannot leak by accident.

``Secret`` keeps the value out of ``str``, ``repr`` and f-strings: code that
needs the value asks for it with ``reveal()``, which makes every use easy to
find.  ``redact_url`` is how a webhook is shown to people: the host and a
redacted path, since a Discord or Slack webhook URL *is* its credential.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit, urlunsplit


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def redacted(self) -> str:
        return redact_url(self._value)

    def fingerprint(self, salt: str = "") -> str:
        """A short stable id derived from the value; reveals nothing usable."""
        return hashlib.sha256(f"{salt}\0{self._value}".encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"Secret({self.redacted()!r})"

    __str__ = redacted

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def redact_url(url: str) -> str:
    """``https://discord.com/api/webhooks/123/abc`` → ``https://discord.com/…``."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<redacted>"
    if not parts.scheme or not parts.hostname:
        return "<redacted>"
    return f"{parts.scheme}://{parts.hostname}{port}/…"


def without_credentials(url: str) -> str:
    """A feed URL fit to show: ``https://user:pass@host/rss`` → ``https://host/rss``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unreadable URL>"
    if "@" not in parts.netloc:
        return url
    return urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[1], parts.path, parts.query, parts.fragment))
