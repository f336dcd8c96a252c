"""Discord: an incoming webhook (``url``), 2,000 characters per message."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from bot.kinds.base import ZWSP, HttpRequest, Kind, Message, json_message

if TYPE_CHECKING:
    from datetime import datetime

    from bot.config import Webhook
    from bot.state.records import OutMessage

_MENTION = re.compile(r"@(everyone|here)|<(@[!&]?|#)(?=\d)", re.I)
# Markdown that could make feed text pass for something else: a masked link
# ("[nhk.or.jp](https://evil.example)"), a spoiler, a code fence, and the
# line-start forms (headings, subtext, quotes).
_INLINE = re.compile(r"\]\(|\|\||```")
_LINE_START = re.compile(r"^(?:#{1,3} |-# |>>> |> )")


def neutralise(line: str) -> str:
    """``@everyone`` and ``<@123>`` shown as text, never as a ping; masked
    links, spoilers, code fences, headings and quotes shown as the text they
    are (a zero-width space breaks each, and the words read the same)."""
    line = _MENTION.sub(_broken, line)
    line = _INLINE.sub(_broken, line)
    return ZWSP + line if _LINE_START.match(line) else line


def _broken(m: re.Match[str]) -> str:
    return m.group(0)[0] + ZWSP + m.group(0)[1:]


def target_url(url: str) -> str:
    """Discord answers 204 and drops errors silently unless asked to wait."""
    if "wait=" not in url:
        return url + ("&" if "?" in url else "?") + "wait=true"
    return url


class Discord(Kind):
    name = "discord"
    limit = 2000

    def escape(self, line: str) -> str:
        return neutralise(line)

    def message(self, text: str, digest_id: int, seq: int, webhook: Webhook | None) -> Message:
        return json_message({"content": text, "allowed_mentions": {"parse": []}}, text)

    def request(self, webhook: Webhook, msg: OutMessage, previous: str | None, now: datetime) -> HttpRequest:
        plain = super().request(webhook, msg, previous, now)
        return HttpRequest(plain.method, target_url(plain.url), plain.headers, plain.body)


KIND = Discord()
