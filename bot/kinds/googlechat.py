"""Google Chat: an incoming webhook (``url``, with its key and token).

4,096 characters per message; the messages of one digest go to one thread
(``threadKey`` per digest).  Feed text cannot mention (``<users/all>``) or
format: ``<`` and the emphasis marks are broken by a zero-width space.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import quote

from bot.kinds.base import ZWSP, HttpRequest, Kind, Message, json_message

if TYPE_CHECKING:
    from datetime import datetime

    from bot.config import Webhook
    from bot.state.records import OutMessage

_MARKS = re.compile(r"<|(?<!\w)[*_~`](?=\S)")


def neutralise(line: str) -> str:
    return _MARKS.sub(lambda m: m.group(0) + ZWSP, line)


class GoogleChat(Kind):
    name = "googlechat"
    limit = 4096

    def escape(self, line: str) -> str:
        return neutralise(line)

    def message(self, text: str, digest_id: int, seq: int, webhook: Webhook | None) -> Message:
        return json_message({"text": text}, text)

    def request(self, webhook: Webhook, msg: OutMessage, previous: str | None, now: datetime) -> HttpRequest:
        plain = super().request(webhook, msg, previous, now)
        thread = quote(f"feedbot-digest-{msg.digest_id}", safe="")
        url = plain.url + ("&" if "?" in plain.url else "?")
        url += f"threadKey={thread}&messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"
        return HttpRequest("POST", url, plain.headers, plain.body)


KIND = GoogleChat()
