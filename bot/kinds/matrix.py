"""Matrix: ``m.room.message`` through the client-server API (``url``: the
homeserver, an access ``token``, ``room``: the room's id, ``!…:server``).

A message is a ``PUT`` with a transaction id made from the message's key
and bytes: one sent again after a crash is the same transaction, which the
homeserver does not post twice.  An event is at most 64 KB: a message's
text is kept under 60,000 bytes as JSON.  ``m.notice`` without HTML, and
an empty ``m.mentions``: feed text pings nobody (``@room`` included).
Rate limits: ``Retry-After`` or ``retry_after_ms``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import quote

from bot.kinds.base import (
    HttpRequest,
    Kind,
    Message,
    Option,
    Reply,
    a_string,
    bearer,
    break_handles,
    endpoint,
    hint_number,
    json_message,
    unique_key,
)

if TYPE_CHECKING:
    from datetime import datetime

    from bot.config.webhooks import Webhook
    from bot.state.records import OutMessage


def json_bytes(text: str) -> int:
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8"))


def room_id(v: object) -> str:
    """A room id: the API sends to ids, not to aliases (#room:server)."""
    s = a_string(v)
    if s.startswith("#"):
        raise ValueError(f"{s!r} is an alias: give the room id (!abc:example.org; in Element: Settings, Advanced)")
    if not (s.startswith("!") and ":" in s and " " not in s):
        raise ValueError(f"{s!r} is not a room id (!abc:example.org)")
    return s


class Matrix(Kind):
    name = "matrix"
    limit = 60_000
    url_is_secret = False
    secret = "token"
    options: ClassVar[dict[str, Option]] = {"room": Option(room_id)}

    def measure(self, text: str) -> int:
        return json_bytes(text)

    def text(self, text: str) -> str:
        return break_handles(text)  # in text only: a link's "@" (medium.com/@writer) is not a handle

    def message(self, text: str, digest_id: int, seq: int, webhook: Webhook | None) -> Message:
        payload = {"msgtype": "m.notice", "body": text, "m.mentions": {}}
        return json_message(payload, text)

    def request(self, webhook: Webhook, msg: OutMessage, previous: str | None, now: datetime) -> HttpRequest:
        room, txn = quote(webhook.options["room"], safe=""), quote(unique_key(webhook, msg), safe="")
        url = endpoint(webhook, f"/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}")
        return HttpRequest("PUT", url, bearer(webhook), msg.body)

    def retry_hint(self, reply: Reply) -> float | None:
        header = super().retry_hint(reply)
        if header is not None:
            return header
        body = reply.json()
        return hint_number(body.get("retry_after_ms"), 0.001) if isinstance(body, dict) else None

    def reason(self, reply: Reply) -> str | None:
        body = reply.json()
        if isinstance(body, dict) and isinstance(body.get("errcode"), str):
            return f"{body['errcode']}: {body.get('error', '')}".rstrip(": ")
        return super().reason(reply)


KIND = Matrix()
