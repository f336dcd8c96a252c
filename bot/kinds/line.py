"""LINE: the Messaging API's push message (channel access ``token``, ``to``).

5,000 characters per text and at most five texts per request: a request
carries up to five pieces of the digest.  ``X-Line-Retry-Key`` is derived
from the message's key, so a request sent again after a crash is
recognised by LINE (409 with ``x-line-accepted-request-id``) and counted as
delivered, not posted twice.  Plain text: LINE reads no markup and makes no
mention out of ``@name`` in a text message.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import tzinfo
from typing import TYPE_CHECKING, Any, ClassVar

from bot.errors import Refused
from bot.kinds.base import HttpRequest, Kind, Message, Option, Reply, a_string, bearer, chunks, endpoint, unique_key
from bot.models import Rendered

if TYPE_CHECKING:
    from datetime import datetime

    from bot.config.webhooks import Webhook
    from bot.state.records import OutMessage

TEXTS_PER_REQUEST = 5
_RETRY_KEYS = uuid.UUID("6f1c1d0e-58a4-4d0f-9a55-0c3c2b7f3a11")  # namespace of feedbot's retry keys


_ID = re.compile(r"[UCR][0-9a-f]{32}")


def line_id(value: Any) -> str:
    """A user (U…), group (C…) or room (R…) id: the letter and 32 hex digits."""
    s = a_string(value)
    if not _ID.fullmatch(s):
        raise ValueError(
            f"{s!r} is not a LINE user, group or room id (U, C or R and 32 hex digits, from the webhook event)"
        )
    return s


class Line(Kind):
    name = "line"
    limit = 5000
    url = "https://api.line.me"
    url_is_secret = False
    secret = "token"
    options: ClassVar[dict[str, Option]] = {"to": Option(line_id)}

    def build(
        self, rendered: Rendered, digest_id: int, zone: tzinfo, webhook: Webhook | None = None, limit: int | None = None
    ) -> list[Message]:
        texts = chunks(rendered, zone, limit or self.limit, self.escape, self.measure)
        out = []
        for start in range(0, len(texts), TEXTS_PER_REQUEST):
            group = texts[start : start + TEXTS_PER_REQUEST]
            payload = {"messages": [{"type": "text", "text": t} for t in group]}
            out.append(Message(json.dumps(payload, ensure_ascii=False).encode(), "application/json", "\n".join(group)))
        return out

    def request(self, webhook: Webhook, msg: OutMessage, previous: str | None, now: datetime) -> HttpRequest:
        body = {"to": webhook.options["to"], **json.loads(msg.body)}
        headers = {**bearer(webhook), "X-Line-Retry-Key": str(uuid.uuid5(_RETRY_KEYS, unique_key(webhook, msg)))}
        return HttpRequest("POST", endpoint(webhook, "/v2/bot/message/push"), headers, json.dumps(body).encode())

    def refusal(self, reply: Reply) -> Refused:
        # A 400 about the ``to`` property is the destination's problem.
        body = reply.json()
        details = body.get("details") if isinstance(body, dict) else None
        details = details if isinstance(details, list) else []
        about = [str(d.get("property", "")) for d in details if isinstance(d, dict)]
        if reply.status == 400 and any(p == "to" or p.startswith("to.") for p in about):
            return "webhook"
        return super().refusal(reply)

    def already_accepted(self, reply: Reply) -> bool:
        return reply.status == 409 and bool(reply.headers.get("x-line-accepted-request-id"))


KIND = Line()
