"""Google Chat: an incoming webhook (``url``, with its key and token).

A digest goes as card messages (``cardsV2``, one text paragraph each):
a card's text is a small, documented subset of HTML, so feed text is
made inert by HTML's own escaping (``&lt;users/all&gt;`` mentions nobody,
``*bold*`` and ``_x_`` read as written), and links are ``<a href>``,
linked exactly.  A text message's markup (``*``, ``_``, ``~``, backquotes)
has no escape at all.  4,096 characters of card text per message; the
messages of one digest go to one thread (``thread.threadKey`` per digest);
``requestId`` from the message's key and bytes, so a message sent again
after a crash is not created twice.
"""

from __future__ import annotations

import hashlib
import html
from datetime import tzinfo
from typing import TYPE_CHECKING
from urllib.parse import quote

from bot.kinds.base import HttpRequest, Kind, Message, chunks, json_message, unique_key
from bot.models import Rendered
from bot.render import utf16_len

if TYPE_CHECKING:
    from datetime import datetime

    from bot.config.webhooks import Webhook
    from bot.state.records import OutMessage


def card_message(text: str, thread: str) -> dict[str, object]:
    """One card: the text's lines as one paragraph (``<br>`` between them)."""
    paragraph = {"textParagraph": {"text": "<br>".join(text.split("\n"))}}
    card = {"cardId": "digest", "card": {"sections": [{"widgets": [paragraph]}]}}
    return {"cardsV2": [card], "thread": {"threadKey": thread}}


class GoogleChat(Kind):
    name = "googlechat"
    limit = 4096
    https_only = True

    def measure(self, text: str) -> int:
        """The card text as sent: ``<br>`` between lines."""
        return utf16_len(text.replace("\n", "<br>"))

    def text(self, text: str) -> str:
        return html.escape(text, quote=False)

    def link(self, url: str) -> str:
        return f'<a href="{html.escape(url, quote=True)}">{html.escape(url, quote=False)}</a>'

    def build(
        self, rendered: Rendered, digest_id: int, zone: tzinfo, webhook: Webhook | None = None, limit: int | None = None
    ) -> list[Message]:
        # One thread per digest; the digest's text is in its key, so a digest
        # numbered again after a state reset starts a thread of its own.
        thread = f"feedbot-{digest_id}-{hashlib.sha256(rendered.text.encode()).hexdigest()[:8]}"
        texts = chunks(rendered, zone, limit or self.limit, self.escape, self.measure)
        return [json_message(card_message(text, thread), text) for text in texts]

    def request(self, webhook: Webhook, msg: OutMessage, previous: str | None, now: datetime) -> HttpRequest:
        plain = super().request(webhook, msg, previous, now)
        url = plain.url + ("&" if "?" in plain.url else "?")
        # requestId: a message sent again (after a crash) returns the one
        # created the first time instead of a second.
        url += f"messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD&requestId={quote(unique_key(webhook, msg))}"
        return HttpRequest("POST", url, plain.headers, plain.body)


KIND = GoogleChat()
