"""Google Chat: an incoming webhook (``url``, with its key and token).

4,096 characters per message; the messages of one digest go to one thread
(``thread.threadKey`` per digest); ``requestId`` from the message's key
and bytes, so a message sent again after a crash is not created twice.
Feed text cannot mention (``<users/all>``) or format: ``<`` and the
emphasis marks are broken by a zero-width space.
"""

from __future__ import annotations

import hashlib
import re
from datetime import tzinfo
from typing import TYPE_CHECKING
from urllib.parse import quote

from bot.kinds.base import ZWSP, HttpRequest, Kind, Message, chunks, json_message, unique_key
from bot.models import Rendered

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

    def build(
        self, rendered: Rendered, digest_id: int, zone: tzinfo, webhook: Webhook | None = None, limit: int | None = None
    ) -> list[Message]:
        # One thread per digest; the digest's text is in its key, so a digest
        # numbered again after a state reset starts a thread of its own.
        thread = f"feedbot-{digest_id}-{hashlib.sha256(rendered.text.encode()).hexdigest()[:8]}"
        texts = chunks(rendered, zone, limit or self.limit, self.escape, self.measure)
        return [json_message({"text": text, "thread": {"threadKey": thread}}, text) for text in texts]

    def request(self, webhook: Webhook, msg: OutMessage, previous: str | None, now: datetime) -> HttpRequest:
        plain = super().request(webhook, msg, previous, now)
        url = plain.url + ("&" if "?" in plain.url else "?")
        # requestId: a message sent again (after a crash) returns the one
        # created the first time instead of a second.
        url += f"messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD&requestId={quote(unique_key(webhook, msg))}"
        return HttpRequest("POST", url, plain.headers, plain.body)


KIND = GoogleChat()
