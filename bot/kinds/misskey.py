"""Misskey: ``notes/create`` on a server (``url``, an access ``token``).

The server's limit per note is read from ``meta`` (``maxNoteTextLength``;
3,000 when it cannot be read).  Feed text is made inert for MFM with MFM's
own ``<plain>``: no markup, function (``$[…]``), mention, hashtag, emoji or
search box comes out of it (``noExtractMentions`` and the rest too); links
are written ``<https://…>``, which MFM links whole.
Rate limits: ``Retry-After``, or the error's ``info.resetMs``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from bot.kinds.base import (
    ZWSP,
    HttpRequest,
    Kind,
    Message,
    Option,
    Reply,
    bearer,
    choice,
    endpoint,
    hint_number,
    json_message,
    positive,
)

if TYPE_CHECKING:
    from datetime import datetime

    from bot.config.webhooks import Webhook
    from bot.state.records import OutMessage

DEFAULT_LIMIT = 3000


def plain(text: str) -> str:
    """Text in MFM's ``<plain>``: nothing in it is markup, a mention, a
    hashtag or an emoji (an end tag in it is broken, so it ends nowhere)."""
    return f"<plain>{text.replace('</plain>', '<' + ZWSP + '/plain>')}</plain>" if text else ""


def link(url: str) -> str:
    """``<url>``: MFM links all of it (its own URL rule stops at the first
    character outside ASCII, a query in Japanese for one)."""
    return f"<{url}>" if not any(c in url for c in "<> ") else plain(url)


class Misskey(Kind):
    name = "misskey"
    limit = DEFAULT_LIMIT
    url_is_secret = False
    secret = "token"
    options: ClassVar[dict[str, Option]] = {"visibility": Option(choice("public", "home", "followers"), "home")}

    def text(self, text: str) -> str:
        return plain(text)

    def link(self, url: str) -> str:
        return link(url)

    def message(self, text: str, digest_id: int, seq: int, webhook: Webhook | None) -> Message:
        visibility = webhook.options["visibility"] if webhook is not None else "home"
        # Nothing from feed text becomes a mention, a hashtag (in the
        # server's hashtag timelines) or a custom emoji.
        payload = {
            "text": text,
            "visibility": visibility,
            "noExtractMentions": True,
            "noExtractHashtags": True,
            "noExtractEmojis": True,
        }
        return json_message(payload, text)

    def limit_request(self, webhook: Webhook) -> HttpRequest | None:
        return HttpRequest(
            "POST", endpoint(webhook, "/api/meta"), {"Content-Type": "application/json"}, b'{"detail":false}'
        )

    def limit_from(self, reply: Reply) -> int | None:
        body = reply.json()
        return positive(body.get("maxNoteTextLength")) if isinstance(body, dict) else None

    def request(self, webhook: Webhook, msg: OutMessage, previous: str | None, now: datetime) -> HttpRequest:
        assert webhook.token is not None
        return HttpRequest("POST", endpoint(webhook, "/api/notes/create"), bearer(webhook), msg.body)

    def retry_hint(self, reply: Reply) -> float | None:
        header = super().retry_hint(reply)
        if header is not None:
            return header
        body = reply.json()
        error = body.get("error") if isinstance(body, dict) else None
        info = error.get("info") if isinstance(error, dict) else None
        if isinstance(info, dict):
            return hint_number(info.get("resetMs", info.get("fullResetMs")), 0.001)
        return None


KIND = Misskey()
