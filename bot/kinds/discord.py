"""Discord: an incoming webhook (``url``), 2,000 characters per message."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.kinds.base import HttpRequest, Kind, Message, json_message
from bot.spans import escape_line

if TYPE_CHECKING:
    from datetime import datetime

    from bot.config.webhooks import Webhook
    from bot.state.records import OutMessage

# Discord's markdown escape (simple-markdown's): a backslash before any
# ASCII punctuation shows it as itself.  Escaped in text: emphasis,
# strike, spoilers, code, the "<…>" of mentions, channels, custom emoji and
# timestamps, masked links' brackets, and the escape itself.
_MARKUP = re.compile(r"[\\*_~|`<>\[\]]")
_EVERYONE = re.compile(r"@(?=everyone|here)", re.IGNORECASE)
# Line starts that make a heading, subtext, a quote or a list.
_LINE_START = re.compile(r"^(?:#{1,3} |-# |[-+] |\d+\. )")


def text(line: str) -> str:
    """Feed text shown as written: markup escaped, ``@everyone`` and
    ``@here`` escaped (``allowed_mentions`` already keeps them silent)."""
    return _EVERYONE.sub(r"\\@", _MARKUP.sub(r"\\\g<0>", line))


def link(url: str) -> str:
    """``<url>``: Discord links exactly that (no embed under the digest);
    a URL that cannot be put in brackets stays as it is."""
    return f"<{url}>" if not any(c in url for c in "<> ") else url


def neutralise(line: str, links: Sequence[str] = ()) -> str:
    out = escape_line(line, links, text, link)
    m = _LINE_START.match(out)
    if m is None:
        return out
    marker = m.group(0)
    if marker[0].isdigit():  # "1. " -> "1\. "
        dot = marker.index(".")
        return out[:dot] + "\\" + out[dot:]
    return "\\" + out


def target_url(url: str) -> str:
    """Discord answers 204 and drops errors silently unless asked to wait."""
    if "wait=" not in url:
        return url + ("&" if "?" in url else "?") + "wait=true"
    return url


class Discord(Kind):
    name = "discord"
    limit = 2000
    https_only = True

    def escape(self, line: str, links: Sequence[str] = ()) -> str:
        return neutralise(line, links)

    def message(self, text: str, digest_id: int, seq: int, webhook: Webhook | None) -> Message:
        return json_message({"content": text, "allowed_mentions": {"parse": []}}, text)

    def request(self, webhook: Webhook, msg: OutMessage, previous: str | None, now: datetime) -> HttpRequest:
        plain = super().request(webhook, msg, previous, now)
        return HttpRequest(plain.method, target_url(plain.url), plain.headers, plain.body)


KIND = Discord()
