"""Misskey: ``notes/create`` on a server (``url``, an access ``token``).

The server's limit per note is read from ``meta`` (``maxNoteTextLength``;
3,000 when it cannot be read).  Feed text is made inert for MFM: handles
never mention (and ``noExtractMentions``), and functions (``$[…]``),
inline tags, links, bold, code and quotes are broken by a zero-width space.
Rate limits: ``Retry-After``, or the error's ``info.resetMs``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar

from bot.kinds.base import (
    ZWSP,
    HttpRequest,
    Kind,
    Message,
    Option,
    Reply,
    bearer,
    break_handles,
    choice,
    endpoint,
    hint_number,
    json_message,
    positive,
)

if TYPE_CHECKING:
    from datetime import datetime

    from bot.config import Webhook
    from bot.state.records import OutMessage

DEFAULT_LIMIT = 3000
_MFM = re.compile(r"\$\[|\]\(|\*\*|__|~~|`|<(?=/?[a-zA-Z])|\\[(\[]")
_LINE_START = re.compile(r"^>")
# A line ending in " 検索" or " Search" (or "[検索]") becomes a search box.
_SEARCH = re.compile(r"(?<=\s)(?=(?:検索|Search|\[検索\]|\[Search\])$)", re.IGNORECASE)


def neutralise(line: str) -> str:
    line = _MFM.sub(lambda m: m.group(0)[0] + ZWSP + m.group(0)[1:], break_handles(line))
    line = _SEARCH.sub(ZWSP, line)
    return ZWSP + line if _LINE_START.match(line) else line


class Misskey(Kind):
    name = "misskey"
    limit = DEFAULT_LIMIT
    url_is_secret = False
    secret = "token"
    options: ClassVar[dict[str, Option]] = {"visibility": Option(choice("public", "home", "followers"), "home")}

    def escape(self, line: str) -> str:
        return neutralise(line)

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
