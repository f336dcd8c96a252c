"""Secret values (webhook URLs) that cannot leak by accident.

``Secret`` keeps the value out of ``str``, ``repr`` and f-strings: code that
needs the value asks for it with ``reveal()``, which makes every use easy to
find.  ``redact_url`` is how a webhook is shown to people: the host and a
redacted path, since a Discord or Slack webhook URL *is* its credential.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
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


def encoded_pattern(secret: str) -> str:
    """A regex for ``secret`` as written or percent-encoded, each character
    on its own, once or twice (``%3A``, ``%3a``, ``%253A``): receivers and
    proxies echo a request's URL in any of these forms."""

    def hex_byte(b: int) -> str:
        return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in f"{b:02X}")

    parts = []
    for ch in secret:
        encoded = "".join(f"%(?:25)?{hex_byte(b)}" for b in ch.encode("utf-8"))
        parts.append(f"(?:{re.escape(ch)}|{encoded})")
    return "".join(parts)


class Scrubber:
    """Replaces secrets, in any of their encoded forms, with how each may be
    shown (longest first: a URL before its path)."""

    def __init__(self, secrets: Mapping[str, str]) -> None:
        ordered = sorted(((k, v) for k, v in secrets.items() if len(k) >= 3), key=lambda kv: -len(kv[0]))
        self._items = [(k, v, re.compile(encoded_pattern(k))) for k, v in ordered]

    def __call__(self, text: str) -> str:
        for secret, shown, pattern in self._items:
            if secret in text or "%" in text:
                text = pattern.sub(shown.replace("\\", "\\\\"), text)  # a literal replacement
        return text
